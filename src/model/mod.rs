//! The model: what the files under the root mean. Peer specs and
//! identities, a peer's recorded state, the durable queue, the event-log
//! line format and its reader, and what muxvisor knows about agents (presets,
//! the screen classifier, the agent record). Data reads and writes itself;
//! it starts no process, runs no tmux, does not tick and knows no CLI.
//! Imports only the ground.

pub mod agent;
pub mod events;
pub mod logfmt;
pub mod peer;
pub mod peer_env;
pub mod peer_state;
pub mod queue;
