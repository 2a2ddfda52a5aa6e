//! Running the service managers (`systemctl --user`, `crontab`, `launchctl`)
//! with a deadline. Like tmux calls, output goes to temp files and the child
//! runs in its own process group, so a wedged manager (a user bus that never
//! answers) costs a bounded wait and is killed, never a hung `service` command.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// How long one manager call may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished call returned.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// A one-line description for error messages.
    pub fn describe(&self) -> String {
        let code = self.code.map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        let err = self.stderr.trim();
        if err.is_empty() { format!("exit {code}") } else { format!("exit {code}: {err}") }
    }
}

/// `program` looked up on PATH now; `None` if it is not installed.
pub fn find(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

/// Run `program args...` (stdin from `input` if given) within `timeout`.
/// `Ok(None)` when the program is not installed; an error when it could not be
/// run or did not finish in time.
pub fn run(
    program: &str,
    args: &[&str],
    input: Option<&Path>,
    timeout: Duration,
) -> Result<Option<Ran>> {
    let Some(bin) = find(program) else { return Ok(None) };
    let mut out = tempfile::tempfile().context("creating a temp file for command output")?;
    let mut err = tempfile::tempfile().context("creating a temp file for command output")?;
    let stdin = match input {
        Some(p) => {
            Stdio::from(std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?)
        }
        None => Stdio::null(),
    };
    let shown = format!("{program} {}", args.join(" "));
    let child = Command::new(&bin)
        .args(args)
        .stdin(stdin)
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .process_group(0)
        .spawn()
        .with_context(|| format!("running `{shown}` ({})", bin.display()))?;
    let status = crate::ground::proc::wait_deadline(child, timeout)
        .with_context(|| format!("waiting for `{shown}`"))?
        .with_context(|| {
            format!("`{shown}` did not finish within {} s and was killed", timeout.as_secs())
        })?;
    let read = |f: &mut std::fs::File| -> Result<String> {
        let mut b = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    };
    Ok(Some(Ran {
        ok: status.success(),
        code: status.code(),
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    }))
}
