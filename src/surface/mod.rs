//! The surface: where a person (or a service manager) meets muxvisor. The
//! command line as clap types ([`cli`]), one module per command and the
//! internal `_name` entry points ([`commands`]), which turn arguments into
//! plain values and call down, the manual's prose ([`manual`]) and the
//! service files that run the tick periodically ([`service`]). Nothing
//! below imports it.

pub mod cli;
pub mod commands;
pub mod manual;
pub mod service;
