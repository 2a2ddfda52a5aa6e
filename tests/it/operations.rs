//! Issue #19, "Operations keep their promises": stop, restart, timeouts,
//! upgrades and retention. One test per behaviour the issue pins, each named
//! after it; the item number is in its header.

use std::fs;

use crate::fixture::*;

/// Item 9: `supervise --interval 0s` spun (21,582 ticks in 3 s) where
/// `service install` refused the same value. Both refuse it now.
#[test]
fn a_supervise_loop_refuses_an_interval_under_a_second() {
    let env = Env::new();
    for bad in ["0s", "0", "500ms"] {
        let out = env.mv(&["supervise", "--interval", bad]);
        out.code(2);
        assert!(out.stderr.contains("at least 1s"), "{out:?}");
    }
    assert!(env.events("lifecycle", "tick").is_empty(), "no tick ran");
}

/// Item 10: peers named like a verb of `queue` (`list`, `rm`, `purge`) had
/// no usable queue. `queue --id ID VERB` reaches every identity.
#[test]
fn every_identity_reaches_its_queue_even_one_named_like_a_verb() {
    let env = Env::new();
    for id in ["list", "rm", "purge", "show", "retry"] {
        env.mv(&["add", id, "--ephemeral", "--", "true"]).ok();
        env.mv(&["send", id, "hello", "--no-kick"]).ok();
        let v = env.mv(&["queue", "--id", id, "list", "--json"]).ok().json();
        assert_eq!(v["identity"], id, "{v}");
        assert_eq!(v["pending"].as_array().map(Vec::len), Some(1), "{v}");
        let v = env.mv(&["queue", "--id", id, "--json"]).ok().json();
        assert_eq!(v["identity"], id, "{v}");
        env.mv(&["queue", "--id", id, "purge"]).ok();
        let v = env.mv(&["queue", "--id", id, "list", "--json"]).ok().json();
        assert_eq!(v["pending"].as_array().map(Vec::len), Some(0), "{v}");
    }
    // The positional form still works for every other name.
    env.mv(&["add", "plain", "--ephemeral", "--", "true"]).ok();
    env.mv(&["queue", "plain", "list"]).ok();
}

/// Item 11: a relative `XDG_STATE_HOME` made the root depend on the current
/// directory. It is ignored, as the XDG spec says: the root is
/// `~/.local/state/muxvisor` from any directory.
#[test]
fn a_relative_xdg_state_home_is_ignored() {
    let env = Env::new();
    let home = env.scratch().join("h");
    let (a, b) = (env.scratch().join("a"), env.scratch().join("b"));
    for d in [&home, &a, &b] {
        fs::create_dir_all(d).unwrap();
    }
    for (cwd, id) in [(&a, "one"), (&b, "two")] {
        let mut c = std::process::Command::new(BIN);
        c.args(["add", id, "--", "true"])
            .current_dir(cwd)
            .env_remove("MUXVISOR_ROOT")
            .env("HOME", &home)
            .env("XDG_STATE_HOME", "state");
        run_deadline(c, None, CMD_DEADLINE).ok();
    }
    let root = home.join(".local/state/muxvisor/peers");
    assert!(root.join("one.json").exists() && root.join("two.json").exists());
    assert!(!a.join("state").exists() && !b.join("state").exists());
}
