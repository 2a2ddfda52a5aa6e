//! The binary starts, parses, and refuses bad input the documented way.

use crate::fixture::*;

#[test]
fn help_and_version() {
    let env = Env::new();
    env.mv(&["--help"]).ok();
    let v = env.mv(&["--version"]);
    assert!(v.stdout.starts_with("muxvisor "), "{v:?}");
}

#[test]
fn usage_error_is_exit_2() {
    let env = Env::new();
    env.mv(&["no-such-command"]).code(2);
    env.mv(&["supervise", "--interval", "5x"]).code(2);
}
