//! Agents as data: what muxvisor knows about the interactive programs it
//! supervises. [`presets`] holds the screen patterns (ready, busy, blocked)
//! and resume arguments for the agents that `add --agent NAME` names,
//! [`classify`] the pure classifier over the visible screen, [`record`] the
//! agent record kept between looks, and [`limit`] the usage-limit reset
//! times (SPEC §8, §9); [`instance`] an agent pool's instances and
//! [`reply`] how a pool task's reply is read (SPEC §10). What is done to a live agent (looking at it,
//! delivering to it, resuming it) is in `lifecycle::agent`.

pub mod classify;
pub mod instance;
pub mod limit;
pub mod presets;
pub mod record;
pub mod reply;
