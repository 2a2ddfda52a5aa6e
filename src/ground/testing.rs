//! Helpers for the unit tests.

/// Report that `test` was skipped and why, visibly (as the integration
/// suite's `fixture::skip`): libtest captures only the `print!` and
/// `eprint!` macros, not a write to the stderr descriptor.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {reason}");
}
