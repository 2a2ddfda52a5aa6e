//! Printing results: exactly one JSON document with `--json`, human lines
//! otherwise. A closed stdout surfaces as a BrokenPipe error, which `main`
//! treats as success.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Print `value` as one JSON document and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Print one human line.
pub fn line(s: impl AsRef<str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_ref().as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A diagnostic on stderr, prefixed `muxvisor: `.
pub fn warn(s: impl AsRef<str>) {
    eprintln!("muxvisor: {}", s.as_ref());
}
