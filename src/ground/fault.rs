//! Test-only crash points. With the `fault-injection` feature, a process
//! reaching the step named by `MUXVISOR_FAULT` `_exit`s at once (no
//! cleanup, like kill -9), so a test can stop a protocol between any two of
//! its durable steps. `MUXVISOR_FAULT_ONCE=<path>` makes the crash happen
//! only in the first process that gets there (it creates that file), for
//! steps that every later process would otherwise reach again (a runner
//! started by the recovery of the crash inherits the environment).
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
