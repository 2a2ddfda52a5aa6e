//! Agents: what muxvisor knows about the interactive programs it
//! supervises. `presets` holds the screen patterns (ready, busy, blocked)
//! and resume arguments for the agents that `add --agent NAME` names, and
//! a pure classifier over the visible screen (SPEC §8, §9).

pub mod confirm;
pub mod limit;
pub mod mailbox;
pub mod presets;
pub mod record;
pub mod resume;
pub mod state;
pub mod watch;
