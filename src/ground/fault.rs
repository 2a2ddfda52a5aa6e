//! Test-only crash points. With the `fault-injection` feature, a process
//! reaching the step named by `MUXVISOR_FAULT` `_exit`s at once (no
//! cleanup, like kill -9), so a test can stop a protocol between any two of
//! its durable steps. `MUXVISOR_FAULT_ONCE=<path>` makes the crash happen
//! only in the first process that gets there (it creates that file), for
//! steps that every later process would otherwise reach again (a runner
//! started by the recovery of the crash inherits the environment).
//! `MUXVISOR_FAULT=hold:<step>` with `MUXVISOR_FAULT_HOLD=<path>` makes
//! the process wait at that step instead: it creates the file and goes on
//! once the test removed it (at most [`HOLD_MAX`]), so that a test can act
//! at that exact moment (stop a tmux server between two commands of a
//! delivery; the hold points are in `tmux::paste`, and
//! `MUXVISOR_FAULT_SETTLE_MAX_MS` shortens how long such a delivery is
//! then settled for, in `agent::confirm`).
//! Without the feature, every function here is an empty inline stub.

/// Crash here if `MUXVISOR_FAULT` names `step`.
#[cfg(feature = "fault-injection")]
pub fn point(step: &str) {
    if armed(step) {
        // SAFETY: _exit ends the process at once; that is the point.
        unsafe { libc::_exit(86) };
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point(_step: &str) {}

/// The longest a hold waits for its file to go.
#[cfg(feature = "fault-injection")]
pub const HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// Wait here if `MUXVISOR_FAULT` is `hold:<step>`: create the file named by
/// `MUXVISOR_FAULT_HOLD`, then wait until it is gone (bounded by
/// [`HOLD_MAX`]).
#[cfg(feature = "fault-injection")]
pub fn hold(step: &str) {
    if !armed(&format!("hold:{step}")) {
        return;
    }
    let Some(file) = std::env::var_os("MUXVISOR_FAULT_HOLD") else { return };
    let file = std::path::PathBuf::from(file);
    if std::fs::write(&file, b"held\n").is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + HOLD_MAX;
    while file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn hold(_step: &str) {}

/// An `EIO` in place of the operation named `step` (`eio-file-fsync`,
/// `eio-dir-fsync`), to prove a failed fsync is reported, not retried.
#[cfg(feature = "fault-injection")]
pub fn eio(step: &str) -> std::io::Result<()> {
    if armed(step) {
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn eio(_step: &str) -> std::io::Result<()> {
    Ok(())
}

#[cfg(feature = "fault-injection")]
fn armed(step: &str) -> bool {
    if !std::env::var("MUXVISOR_FAULT").is_ok_and(|s| s == step) {
        return false;
    }
    match std::env::var_os("MUXVISOR_FAULT_ONCE") {
        None => true,
        Some(p) => std::fs::OpenOptions::new().write(true).create_new(true).open(p).is_ok(),
    }
}
