//! The lifecycle: what happens to a live peer. Launching and stopping its
//! server ([`session`]), watching it die ([`canary`], [`hook`]), looking at
//! it ([`observe`]), admitting launches by capacity ([`admission`]), feeding
//! an ephemeral peer's program ([`dispatch`], [`runner`]), an agent's mailbox
//! and resume ([`agent`]), telling someone ([`notify`]), and what crashes
//! leave behind ([`ghosts`], [`strays`]). It takes plain values, never clap
//! types, and never calls the tick: where a hand-over is due, it returns a
//! value that says so and the caller above runs it. Imports tmux, the model
//! and the ground.

pub mod admission;
pub mod agent;
pub mod canary;
pub mod dispatch;
pub mod ghosts;
pub mod hook;
pub mod notify;
pub mod observe;
pub mod runner;
pub mod session;
pub mod strays;
