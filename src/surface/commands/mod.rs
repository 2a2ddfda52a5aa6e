//! One module per user-facing command group. Each turns parsed arguments into
//! calls on the library modules and prints the result (human or `--json`).
//! [`internal`] holds the entry points of the `_name` commands muxvisor
//! starts for itself, which do the same without printing. Every command
//! gets a [`Ctx`]: the root it works under, opened here, and the output mode.

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

use anyhow::{Context, Result};

use crate::ground::fsutil;
use crate::ground::paths::{self, Root};

/// What every command gets: the opened root and the output mode.
#[derive(Debug)]
pub struct Ctx {
    pub root: Root,
    pub json: bool,
}

/// The root directory chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME
/// (not opened, not checked).
pub fn root_dir(flag: Option<std::path::PathBuf>) -> Result<std::path::PathBuf> {
    paths::resolve_root(
        flag,
        std::env::var_os("MUXVISOR_ROOT"),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
    .context("cannot choose a state root: set --root, MUXVISOR_ROOT or HOME")
}

/// The root chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME, spelled as
/// every command opens it (`link/` is `link`), NOT opened: nothing is
/// created or checked (for `doctor`, and for previews, which write nothing).
pub fn unopened_root(flag: Option<std::path::PathBuf>) -> Result<Root> {
    let dir = root_dir(flag)?;
    let cwd = if dir.is_absolute() {
        std::path::PathBuf::new()
    } else {
        std::env::current_dir().context("finding the current directory")?
    };
    Ok(Root::new(paths::root_spelling(&dir, &cwd)))
}

/// Open (create and check) the root chosen by `--root`, `MUXVISOR_ROOT`, XDG or HOME.
pub fn open_root(flag: Option<std::path::PathBuf>) -> Result<Root> {
    fsutil::open_root(&root_dir(flag)?)
}
