//! The ground: operating-system and filesystem primitives that every layer
//! above stands on. Nothing here knows what a peer is: a path is a path, a
//! process a pid, a log a file that grows. Imports nothing of this crate
//! outside `ground/`.

pub mod ansi;
pub mod detach;
pub mod duration;
pub mod exit;
pub mod fault;
pub mod fsutil;
pub mod output;
pub mod paths;
pub mod proc;
pub mod rotate;
pub mod start;
pub mod tail;
#[cfg(test)]
pub(crate) mod testing;
pub mod trace;
pub mod watch;
