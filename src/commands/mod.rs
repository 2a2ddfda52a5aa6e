//! One module per user-facing command group. Each turns parsed arguments into
//! calls on the library modules and prints the result (human or `--json`).
//! [`internal`] holds the entry points of the `_name` commands muxvisor
//! starts for itself, which do the same without printing.

pub mod clean;
pub mod completions;
pub mod doctor;
pub mod events;
pub mod internal;
pub mod lifecycle;
pub mod mark;
pub mod peers;
pub mod queue;
pub mod send;
pub mod service;
pub mod status;
pub mod supervise;
pub mod view;
