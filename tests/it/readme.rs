//! The README cannot rot: its tour blocks (fenced as `sh tour`) are run
//! verbatim against a private root, and its test command must be the one
//! `.ci/run` runs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fixture::*;

const README: &str = include_str!("../../README.md");
const CI: &str = include_str!("../../.ci/run");

fn blocks(tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in README.lines() {
        match &mut cur {
            None if line.trim_start() == format!("```{tag}") => cur = Some(String::new()),
            None => {}
            Some(_) if line.trim_start() == "```" => out.push(cur.take().unwrap_or_default()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    out
}

#[test]
fn readme_test_command_is_what_ci_runs() {
    let setup = blocks("sh").into_iter().next().expect("a set-up block");
    let test_cmd = setup
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .and_then(|l| l.split('#').next())
        .map(str::trim)
        .expect("a cargo test line in the set-up block");
    assert!(
        CI.lines().any(|l| l.trim() == test_cmd),
        ".ci/run must run the README's test command {test_cmd:?} exactly"
    );
    assert!(setup.lines().any(|l| l.starts_with("cargo run --release -- supervise --once")));
}

/// The install lines name files that exist in the repository (man pages and
/// completions are generated and checked in; see docs.rs).
#[test]
fn readme_install_lines_name_files_that_exist() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let install = blocks("sh").into_iter().nth(1).expect("an install block");
    let mut named = 0;
    for word in install.split_whitespace() {
        if word.starts_with("man/") || word.starts_with("completions/") {
            named += 1;
            let found = if let Some(dir) = word.strip_suffix("*.1") {
                std::fs::read_dir(repo.join(dir)).map(|d| d.count() > 1).unwrap_or(false)
            } else {
                repo.join(word).is_file()
            };
            assert!(found, "README install line names {word}, which is not in the repository");
        }
    }
    assert!(named >= 4, "the install block names the man pages and three completions");
    // Issue 10: the versions the tests ran, and a manpath that finds the pages.
    assert!(install.contains("cargo install --locked --path ."), "{install}");
    assert!(README.contains("MANPATH=\"$HOME/.local/share/man:"), "how to find the man pages");
    assert!(CI.contains("cargo run --locked --release -- supervise --once"));
}

#[test]
fn readme_tour_runs_verbatim() {
    let env = Env::new();
    let tour = blocks("sh tour");
    assert!(tour.len() >= 3, "the README tour has its blocks");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for (i, block) in tour.iter().enumerate() {
        let mut c = Command::new("bash");
        c.arg("-euo").arg("pipefail").arg("-c").arg(block);
        c.env("PATH", &path).env("MUXVISOR_ROOT", env.root()).env_remove("TMUX");
        c.current_dir(env.scratch());
        let out = run_deadline(c, None, Duration::from_secs(60));
        assert_eq!(out.code, 0, "README tour block {i} failed:\n{block}\n{out:#?}");
        if i == 0 {
            // The agent really got the text.
            assert!(
                wait_until(Duration::from_secs(10), || {
                    env.mv(&["screen", "claude"]).stdout.contains("agent got: hello agent")
                }),
                "the persistent peer never showed the sent text"
            );
        }
    }
    // The agent got its three messages, one per prompt.
    let bob = env.mv(&["screen", "bob", "--lines", "20"]).stdout.clone();
    assert!(bob.contains("bob works on: third"), "{bob}");
    assert!(bob.find("works on: first") < bob.find("works on: second"), "{bob}");
    assert_eq!(env.events("lifecycle", "msg-delivered").len(), 3);
    // The tour's promise: the death is recorded with its cause.
    assert!(
        wait_until(Duration::from_secs(10), || !env.events("exits", "server-exit").is_empty()),
        "no ev=server-exit after kill -9 of the server"
    );
    assert!(
        env.events("lifecycle", "gone").iter().any(|l| l.contains("death=server-dead")),
        "the tick did not record the server death"
    );
    assert!(
        env.events("lifecycle", "restart").iter().any(|l| l.contains("identity=claude")),
        "the tick after the backoff did not restart the agent"
    );
    let done = env.events("lifecycle", "task-done");
    assert!(
        wait_until(Duration::from_secs(10), || {
            env.mv(&["supervise", "--once"]).ok();
            env.events("lifecycle", "task-done").len() >= 2
        }),
        "both worker tasks finish: {done:?}"
    );
}

/// Issue 18: the README's `status --json` example names every key of the
/// real rows' `queue` object (it lacked `quarantined`).
#[test]
fn the_status_json_example_names_every_queue_key() {
    let env = Env::new();
    env.mv(&["add", "w", "--", "sleep", "1000"]).ok();
    let rows = env.mv(&["status", "--json"]).ok().json();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let example = readme
        .lines()
        .find(|l| l.starts_with("`{\"identity\",\"policy\",\"state\""))
        .expect("the status --json example line");
    let (_, queue) = example.split_once("\"queue\":").expect("a queue object in the example");
    for k in rows[0]["queue"].as_object().unwrap().keys() {
        assert!(queue.contains(&format!("\"{k}\"")), "queue key {k} missing from: {example}");
    }
}
