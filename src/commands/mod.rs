//! One module per user-facing command group. Each turns parsed arguments into
//! calls on the library modules and prints the result (human or `--json`).

pub mod clean;
pub mod completions;
pub mod doctor;
pub mod events;
pub mod lifecycle;
pub mod mark;
pub mod peers;
pub mod queue;
pub mod send;
pub mod service;
pub mod status;
pub mod supervise;
pub mod view;
