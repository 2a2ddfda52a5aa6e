//! The documented exit statuses. Scripts branch on these, so they are an API:
//! 0 success, 1 failure or "no", 2 usage, 69 tmux unusable, 75 retry later.
//!
//! Code that wants a specific status attaches an [`Exit`] to its error with
//! `anyhow::Error::new(Exit::TempFail).context("...")` or [`fail`]; everything
//! else maps to 1.

use std::fmt;
use std::process::ExitCode;

/// One documented exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command did what was asked.
    Ok,
    /// 1: failure, or a "no" answer (peer not found, not running).
    Failure,
    /// 2: the command line was wrong.
    Usage,
    /// 69 (EX_UNAVAILABLE): tmux is missing or unusable.
    Unavailable,
    /// 75 (EX_TEMPFAIL): try again later; nothing was changed.
    TempFail,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Unavailable => 69,
            Exit::TempFail => 75,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Exit::Ok => "success",
            Exit::Failure => "failure",
            Exit::Usage => "usage error",
            Exit::Unavailable => "tmux is missing or unusable",
            Exit::TempFail => "temporary failure, try again",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Exit {}

/// An error carrying `code` with `msg` as its message.
pub fn fail(code: Exit, msg: impl fmt::Display + Send + Sync + 'static) -> anyhow::Error {
    anyhow::Error::new(code).context(msg)
}

/// The exit status for an error: the first [`Exit`] found in its chain, else 1.
pub fn code_for(err: &anyhow::Error) -> Exit {
    err.chain().find_map(|e| e.downcast_ref::<Exit>().copied()).unwrap_or(Exit::Failure)
}

/// True when the error is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let all = [
            (Exit::Ok, 0),
            (Exit::Failure, 1),
            (Exit::Usage, 2),
            (Exit::Unavailable, 69),
            (Exit::TempFail, 75),
        ];
        for (e, c) in all {
            assert_eq!(e.code(), c, "{e:?}");
        }
    }

    #[test]
    fn code_is_found_through_context() {
        let err = fail(Exit::TempFail, "disk full").context("task NOT queued");
        assert_eq!(code_for(&err), Exit::TempFail);
        assert_eq!(code_for(&anyhow::anyhow!("plain")), Exit::Failure);
    }

    #[test]
    fn broken_pipe_is_recognised() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(io).context("writing")));
        assert!(!is_broken_pipe(&anyhow::anyhow!("x")));
    }
}
