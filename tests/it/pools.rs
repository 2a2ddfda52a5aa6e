//! Agent pools (SPEC §10, issue 22 part 2): an ephemeral peer with
//! `--agent` runs agent instances (the fake agent, `tests/fake-agent/`,
//! with `--reply echo`: a finished turn shows `● reply to: <prompt>`), types
//! each task into a ready one, and keeps the agent's reply as the task's
//! result. Every wait polls against a deadline; the timings of a warm and a
//! cold start are measured by `bench/pools.py`, not asserted here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fixture::*;

const WAIT: Duration = Duration::from_secs(60);

fn fake() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fake-agent/agent.py")
        .to_string_lossy()
        .into_owned()
}

/// Register a pool of the fake agent as `id`; its turns go to `log`.
fn add_pool(env: &Env, id: &str, log: &Path, pool: &[&str], fake_args: &[&str]) {
    let fake = fake();
    let log = log.to_string_lossy().into_owned();
    let mut args = vec!["add", id, "--ephemeral", "--agent", "claude", "--backoff", "100ms"];
    args.extend_from_slice(pool);
    args.extend_from_slice(&["--", "python3", &fake, "--reply", "echo", "--log", &log]);
    args.extend_from_slice(fake_args);
    env.mv(&args).ok();
}

/// The texts the fake agents took as turns, with how many times each.
fn turns(log: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
        if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
            *out.entry(t.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// The pool's instances as `status --json` lists them: (task, agent state).
fn instances(env: &Env, id: &str) -> Vec<(Option<String>, Option<String>)> {
    let v = env.mv(&["status", id, "--json"]).json();
    v[0]["workers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|w| {
            (
                w["task"].as_str().map(str::to_string),
                w["agent"]["state"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn ready_count(env: &Env, id: &str) -> usize {
    instances(env, id).iter().filter(|(_, s)| s.as_deref() == Some("ready")).count()
}

#[test]
fn twenty_prompts_from_five_scripts_each_get_their_own_reply() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "pool", &log, &["--workers", "3", "--warm", "1"], &["--busy", "0.3"]);
    let threads: Vec<_> = (0..5)
        .map(|s| {
            let root: PathBuf = env.root().to_path_buf();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0..4 {
                    let prompt = format!("script {s} asks question {n}");
                    let mut c = std::process::Command::new(BIN);
                    c.arg("--root").arg(&root).args(["send", "pool", &prompt, "--wait", "90s"]);
                    c.env_remove("MUXVISOR_ROOT").env_remove("TMUX").env_remove("TMUX_PANE");
                    let out = run_deadline(c, None, Duration::from_secs(120));
                    got.push((prompt, out));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().expect("a sender thread"));
    }
    assert_eq!(all.len(), 20);
    for (prompt, out) in &all {
        out.ok();
        assert_eq!(out.stdout.trim_end(), format!("reply to: {prompt}"), "{out:#?}");
    }
    // Each prompt was typed into an agent exactly once.
    let taken = turns(&log);
    for (prompt, _) in &all {
        assert_eq!(taken.get(prompt), Some(&1), "{prompt}: {taken:#?}");
    }
    // Never more instances than --workers, and the replies are on record.
    let listed = env.mv(&["queue", "pool", "list", "--json"]).json();
    assert_eq!(listed["pending"].as_array().map(Vec::len), Some(0), "{listed}");
    let starts = env.events("lifecycle", "instance-start");
    let slots: std::collections::BTreeSet<String> = starts
        .iter()
        .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("slot=")).map(str::to_string))
        .collect();
    assert!(slots.len() <= 3, "{starts:#?}");
    let task = env.events("lifecycle", "task-done")[0]
        .split(' ')
        .find_map(|kv| kv.strip_prefix("task="))
        .expect("a task id")
        .to_string();
    let shown = env.mv(&["queue", "pool", "show", &task, "--json"]).json();
    let reply = shown["reply"].as_str().unwrap_or_default().to_string();
    assert!(reply.starts_with("reply to: script "), "{shown}");
}

#[test]
fn warm_instances_are_started_ahead_refilled_and_idle_ones_stop() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(
        &env,
        "warm",
        &log,
        &["--workers", "3", "--warm", "1", "--reuse", "2s", "--idle-ttl", "2s"],
        &["--busy", "6", "--slow-start", "1"],
    );
    // The tick starts the warm instance with nothing queued.
    env.mv(&["supervise", "--once"]).ok();
    assert!(wait_until(WAIT, || ready_count(&env, "warm") == 1), "{:?}", instances(&env, "warm"));
    let human = env.mv(&["status", "warm"]).ok().stdout.clone();
    assert!(human.contains("warm instance 0: ready"), "{human}");
    // A task taken by the warm one: another is started to stand warm
    // while it works.
    let mut c = env.command(&["send", "warm", "first", "--wait", "30s"]);
    c.stdin(std::process::Stdio::null());
    let sender = std::thread::spawn(move || run_deadline(c, None, Duration::from_secs(60)));
    let refilled = |v: &[(Option<String>, Option<String>)]| {
        v.iter().any(|(t, _)| t.is_some())
            && v.iter().any(|(t, s)| t.is_none() && s.as_deref() == Some("ready"))
    };
    assert!(
        wait_until(WAIT, || refilled(&instances(&env, "warm"))),
        "no refill: {:?}",
        instances(&env, "warm")
    );
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: first");
    // Refilled a few seconds after the task was taken (REFILL_AFTER, 3 s),
    // not at once by the send, where it would compete with the instance
    // taking the task.
    let ts = |l: &String| -> chrono::DateTime<chrono::Utc> {
        let t = l.split(' ').find_map(|kv| kv.strip_prefix("ts=")).expect("a ts");
        t.parse().expect("an RFC 3339 ts")
    };
    let taken = ts(&env.events("lifecycle", "task-start")[0]);
    let starts = env.events("lifecycle", "instance-start");
    assert_eq!(starts.len(), 2, "{starts:#?}");
    let after = (ts(&starts[1]) - taken).num_milliseconds();
    assert!((2_500..10_000).contains(&after), "refilled {after} ms after the take: {starts:#?}");
    // Idle past --reuse / --idle-ttl: back down to --warm.
    assert!(
        wait_until(WAIT, || instances(&env, "warm").len() == 1),
        "{:?}",
        instances(&env, "warm")
    );
    assert!(wait_until(WAIT, || !env.events("lifecycle", "reaped-idle").is_empty()));
    assert_eq!(ready_count(&env, "warm"), 1);
}

#[test]
fn reset_text_is_typed_between_two_tasks() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "rs", &log, &["--reset", "/clear"], &["--busy", "0.2"]);
    env.mv(&["send", "rs", "one", "--wait", "30s"]).ok();
    let out = env.mv(&["send", "rs", "two", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: two");
    let texts: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_string))
        .collect();
    assert_eq!(texts, ["one", "/clear", "two"]);
}

#[test]
fn a_dead_instance_is_replaced_and_its_task_follows_the_retry_policy() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    // Every agent dies as its first turn ends: each attempt fails.
    add_pool(&env, "dies", &log, &["--max-attempts", "2"], &["--busy", "0.2", "--die-after", "1"]);
    let out = env.mv(&["send", "dies", "doomed", "--wait", "60s"]);
    out.code(1);
    assert!(out.stderr.contains("dead-lettered"), "{out:#?}");
    assert_eq!(turns(&log).get("doomed"), Some(&2), "one typing per attempt");
    let exits = exits(&env, "session-exit", "dies");
    assert!(exits.iter().any(|l| l.contains("task=")), "{exits:#?}");
    assert!(env.events("lifecycle", "instance-start").len() >= 2, "the instance was replaced");
}

#[test]
fn send_wait_to_a_pool_exits_75_past_its_deadline() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "slow", &log, &[], &["--busy", "30"]);
    let out = env.mv(&["send", "slow", "long one", "--wait", "1s", "--json"]);
    out.code(75);
    let v = out.json();
    assert!(v["task"].is_string() && v["reply"].is_null(), "{v}");
    env.mv(&["stop", "slow"]).ok();
}

/// The pool's instances as `status --json` lists them, whole.
fn worker_rows(env: &Env, id: &str) -> Vec<serde_json::Value> {
    env.mv(&["status", id, "--json"]).json()[0]["workers"].as_array().cloned().unwrap_or_default()
}

/// Admission (SPEC §9) applies to every instance start: with
/// `MUXVISOR_MAX_STARTING=1`, a pool that wants two warm instances of an
/// agent that takes 2 s to start starts the second only once the first is
/// ready; meanwhile the second says why in `status` and its hold is logged.
#[test]
fn admission_holds_a_pool_instance_while_another_starts() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "adm", &log, &["--workers", "2", "--warm", "2"], &["--slow-start", "2"]);
    mv_env(&env, &["supervise", "--once"], &[("MUXVISOR_MAX_STARTING", "1")]).ok();
    let (mut seen_held, mut seen_human) = (None, None);
    let both_ready = wait_until(WAIT, || {
        let rows = worker_rows(&env, "adm");
        let starting = rows
            .iter()
            .filter(|w| w["agent"]["state"] == "starting" && w["held"].is_null())
            .count();
        assert!(starting <= 1, "two instances starting at once: {rows:#?}");
        if let Some(h) = rows.iter().find_map(|w| w["held"].as_str()) {
            assert!(rows.iter().any(|w| w["held"].is_string() && w["pid"].is_null()), "{rows:#?}");
            seen_held = Some(h.to_string());
        }
        let human = env.mv(&["status", "adm"]).ok().stdout.clone();
        if human.contains("queued (held: ") {
            seen_human = Some(human);
        }
        rows.len() == 2 && rows.iter().all(|w| w["agent"]["state"] == "ready")
    });
    assert!(both_ready, "{:#?}", worker_rows(&env, "adm"));
    let why = seen_held.expect("the second instance's start was held a while");
    assert!(why.contains("MUXVISOR_MAX_STARTING=1"), "{why}");
    let human = seen_human.expect("status showed the hold");
    assert!(
        human.contains("adm instance ") && human.contains("MUXVISOR_MAX_STARTING=1"),
        "{human}"
    );
    let holds = env.events("lifecycle", "admission-held");
    assert_eq!(holds.len(), 1, "{holds:#?}");
    assert!(holds[0].contains("slot="), "{holds:#?}");
    // The pid of an instance is its agent's, the runner's is apart.
    let rows = worker_rows(&env, "adm");
    assert!(rows.iter().all(|w| w["pid"].is_i64() && w["pid"] != w["runner_pid"]), "{rows:#?}");
    env.mv(&["stop", "adm"]).ok();
}

/// `supervise --max-starting 1` reaches a pool's instances, whose runners
/// live in the pool's server and never see the tick's flags: the tick
/// records the limits it runs with, and the runners take them (on the old
/// code they took their environment's default of 2 and started both).
#[test]
fn supervise_max_starting_holds_a_pool_instance_too() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "adm", &log, &["--workers", "2", "--warm", "2"], &["--slow-start", "2"]);
    env.mv(&["supervise", "--once", "--max-starting", "1"]).ok();
    let mut seen_held = None;
    let both_ready = wait_until(WAIT, || {
        let rows = worker_rows(&env, "adm");
        let starting = rows
            .iter()
            .filter(|w| w["agent"]["state"] == "starting" && w["held"].is_null())
            .count();
        assert!(starting <= 1, "two instances starting at once: {rows:#?}");
        if let Some(h) = rows.iter().find_map(|w| w["held"].as_str()) {
            seen_held = Some(h.to_string());
        }
        rows.len() == 2 && rows.iter().all(|w| w["agent"]["state"] == "ready")
    });
    assert!(both_ready, "{:#?}", worker_rows(&env, "adm"));
    let why = seen_held.expect("the second instance's start was held a while");
    assert!(why.contains("agents are starting"), "{why}");
    env.mv(&["stop", "adm"]).ok();
}

/// A blocked instance (SPEC §10) takes no task and is not counted free:
/// the pool's first instance stops at Claude Code's trust dialog (the
/// fake's, for slot 0 only), `status` says why, and a second instance is
/// started for the pending prompt and answers it, with no tick.
#[test]
fn a_blocked_instance_takes_no_task_and_another_starts_for_it() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    let fake = fake();
    let log_s = log.to_string_lossy().into_owned();
    // The preset appends its own arguments (a conversation id): "$@".
    let script = format!(
        "if [ \"$MUXVISOR_SLOT\" = 0 ]; then set -- --trust-dialog \"$@\"; fi; \
         exec python3 '{fake}' --reply echo --busy 0.2 --log '{log_s}' \"$@\""
    );
    let args = ["add", "bl", "--ephemeral", "--agent", "claude", "--workers", "2"];
    env.mv(&[&args[..], &["--", "sh", "-c", &script, "sh"]].concat()).ok();
    let mut c = env.command(&["send", "bl", "the question", "--wait", "60s"]);
    c.stdin(std::process::Stdio::null());
    let sender = std::thread::spawn(move || run_deadline(c, None, Duration::from_secs(90)));
    let blocked = || {
        worker_rows(&env, "bl").iter().any(|w| {
            w["slot"] == 0 && w["agent"]["state"] == "blocked" && w["agent"]["reason"] == "trust"
        })
    };
    assert!(wait_until(WAIT, blocked), "{:#?}", worker_rows(&env, "bl"));
    let human = env.mv(&["status", "bl"]).ok().stdout.clone();
    assert!(human.contains("bl instance 0: blocked (trust)"), "{human}");
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: the question");
    // Typed once, into the other instance; the blocked one still waits.
    assert_eq!(turns(&log).get("the question"), Some(&1), "{:#?}", turns(&log));
    let starts = env.events("lifecycle", "task-start");
    assert!(starts.len() == 1 && starts[0].contains("slot=1"), "{starts:#?}");
    assert!(blocked(), "{:#?}", worker_rows(&env, "bl"));
    env.mv(&["stop", "bl"]).ok();
}

/// A `--reset` the agent does not take in is not ignored (the next task
/// would meet the last one's context): `ev=reset-failed` is logged, the
/// instance's agent is ended and a new one started in its place, which
/// answers the next task.
#[test]
fn a_reset_not_taken_in_replaces_the_instance() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "rf", &log, &["--reset", "/clear"], &["--busy", "0.2", "--ignore", "/clear"]);
    let out = env.mv(&["send", "rf", "one", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: one");
    let first = env.mv(&["status", "rf", "--json"]).json()[0]["workers"][0]["pid"].clone();
    assert!(first.is_i64(), "{first}");
    assert!(wait_until(WAIT, || !env.events("lifecycle", "reset-failed").is_empty()));
    let failed = &env.events("lifecycle", "reset-failed")[0];
    assert!(failed.contains("reason=not-taken") && failed.contains("slot=0"), "{failed}");
    assert!(failed.contains(&format!("pid={first}")), "{failed}");
    assert!(wait_until(WAIT, || env.events("lifecycle", "instance-start").len() == 2));
    let out = env.mv(&["send", "rf", "two", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: two");
    let now = env.mv(&["status", "rf", "--json"]).json()[0]["workers"][0]["pid"].clone();
    assert!(now.is_i64() && now != first, "{first} -> {now}");
    assert!(!alive(first.as_i64().unwrap_or_default() as i32), "the old agent was ended");
    env.mv(&["stop", "rf"]).ok();
}

/// An agent that dies while the `--reset` is typed into it (the soak
/// killed one there) is recorded as a death, with its exit, not as a reset
/// it did not take in: one `ev=session-exit` for its pid (`signal=9`), no
/// `ev=reset-failed`; the instance is replaced and answers the next task.
#[test]
fn an_agent_killed_while_its_reset_is_typed_is_recorded_as_a_death() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(
        &env,
        "rk",
        &log,
        &["--reset", "/clear"],
        &["--busy", "0.2", "--die-on-paste", "/clear"],
    );
    let out = env.mv(&["send", "rk", "one", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: one");
    let first = field(&env.events("lifecycle", "instance-start")[0], "pid");
    assert!(!first.is_empty(), "the first agent's pid");
    let deaths = || -> Vec<String> {
        exits(&env, "session-exit", "rk")
            .into_iter()
            .filter(|l| l.contains(&format!(" pid={first} ")))
            .collect()
    };
    assert!(
        wait_until(WAIT, || !deaths().is_empty()
            || !env.events("lifecycle", "reset-failed").is_empty()),
        "neither a death nor a failed reset was recorded"
    );
    let failed = env.events("lifecycle", "reset-failed");
    assert!(failed.is_empty(), "the agent's death was taken for a reset not taken in: {failed:#?}");
    let d = deaths();
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].contains("signal=9") && !d[0].contains("task="), "{d:#?}");
    let out = env.mv(&["send", "rk", "two", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: two");
    assert!(env.events("lifecycle", "instance-start").len() >= 2, "the instance was replaced");
    env.mv(&["stop", "rk"]).ok();
}

/// A replaced agent's screen is not the new agent's: the soak killed an
/// idle agent, and its runner read the dead agent's ready prompt, still on
/// the pane, as the new agent's, typed the next prompt into an agent still
/// starting (which lost it and took the Enter as an empty turn), and kept
/// a screen with another prompt's text as the reply. Here every agent but
/// the first takes 2 s before it draws anything.
#[test]
fn a_new_agent_takes_no_prompt_before_it_drew_its_own_screen() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    let mark = env.scratch().join("started-once");
    let fake = fake();
    let (log_s, mark_s) = (log.to_string_lossy(), mark.to_string_lossy());
    let script = format!(
        "if [ -e '{mark_s}' ]; then sleep 2; fi; touch '{mark_s}'; \
         exec python3 '{fake}' --reply echo --busy 0.2 --log '{log_s}' \"$@\""
    );
    let args = ["add", "nd", "--ephemeral", "--agent", "claude", "--backoff", "100ms"];
    env.mv(&[&args[..], &["--", "sh", "-c", &script, "sh"]].concat()).ok();
    let out = env.mv(&["send", "nd", "one", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: one");
    let row = worker_rows(&env, "nd").into_iter().next().expect("the instance");
    let agent = row["pid"].as_i64().expect("its agent") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(agent), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the idle agent");
    assert!(wait_until(WAIT, || !alive(agent)));
    let out = env.mv(&["send", "nd", "two", "--wait", "30s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: two", "{out:#?}");
    let taken = turns(&log);
    assert_eq!(taken.get("two"), Some(&1), "{taken:#?}");
    assert_eq!(taken.get(""), None, "an empty turn: {taken:#?}");
    env.mv(&["stop", "nd"]).ok();
}

/// kill -9 of a pool instance's runner while its agent works on a task,
/// with the `pane-died` hook unable to run (the binary that started the
/// pool was moved away, as an upgrade does): the agent dies with its
/// runner, the tick records the death with its task, the task is retried
/// by the queue's policy and answered, and the instance is replaced.
#[test]
fn a_pool_runner_killed_mid_task_leaves_its_task_retried_and_the_instance_replaced() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "k9", &log, &["--workers", "2"], &["--busy", "3"]);
    let dir = env.scratch().join("old-bin");
    std::fs::create_dir_all(&dir).expect("a dir for the old binary");
    let old = dir.join("muxvisor");
    if std::fs::hard_link(BIN, &old).is_err() {
        std::fs::copy(BIN, &old).expect("a copy of the binary");
    }
    let mut c = std::process::Command::new(&old);
    c.arg("--root").arg(env.root()).args(["send", "k9", "survive this", "--wait", "60s"]);
    c.env_remove("MUXVISOR_ROOT").env_remove("TMUX").env_remove("TMUX_PANE");
    c.stdin(std::process::Stdio::null());
    let sender = std::thread::spawn(move || run_deadline(c, None, Duration::from_secs(90)));
    let working =
        || worker_rows(&env, "k9").into_iter().find(|w| w["task"].is_string() && w["pid"].is_i64());
    assert!(wait_until(WAIT, || working().is_some()), "{:#?}", worker_rows(&env, "k9"));
    let row = working().expect("an instance at work");
    let task = row["task"].as_str().expect("its task").to_string();
    let runner = row["runner_pid"].as_i64().expect("its runner") as i32;
    let agent = row["pid"].as_i64().expect("its agent") as i32;
    assert!(wait_until(WAIT, || !env.events("lifecycle", "task-start").is_empty()));
    std::fs::remove_file(&old).expect("move the old binary away");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(runner), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the runner");
    assert!(wait_until(WAIT, || !alive(agent)), "the agent dies with its runner");
    let answered = wait_until(WAIT, || {
        env.mv(&["supervise", "--once"]);
        sender.is_finished()
    });
    assert!(answered, "no reply");
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: survive this");
    let deaths: Vec<String> = exits(&env, "session-exit", "k9")
        .into_iter()
        .filter(|l| l.contains(&format!(" pid={runner} ")))
        .collect();
    assert_eq!(deaths.len(), 1, "{deaths:#?}");
    assert!(
        deaths[0].contains("source=tick") && deaths[0].contains(&format!(" task={task}")),
        "{deaths:#?}"
    );
    let retries = env.events("lifecycle", "task-retry");
    assert!(retries.iter().any(|l| l.contains(&format!("task={task}"))), "{retries:#?}");
    assert_eq!(turns(&log).get("survive this"), Some(&2), "typed once per attempt");
    assert!(env.events("lifecycle", "instance-start").len() >= 2, "the instance was replaced");
    env.mv(&["stop", "k9"]).ok();
}

/// `clean` removes the state files of a pool instance whose runner is dead
/// (kill -9 leaves them behind) and keeps those of live instances.
#[test]
fn clean_removes_the_state_of_dead_instances_only() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "cl", &log, &["--workers", "2", "--warm", "2"], &[]);
    env.mv(&["supervise", "--once"]).ok();
    assert!(wait_until(WAIT, || ready_count(&env, "cl") == 2), "{:?}", instances(&env, "cl"));
    let state = env.root().join("state");
    // A mark from each instance's hook, as Claude Code's would write.
    for slot in ["0", "1"] {
        mv_env(&env, &["mark", "cl", "ready"], &[("MUXVISOR_SLOT", slot)]).ok();
    }
    // No warm instance wanted any more: nothing refills the slot killed.
    add_pool(&env, "cl", &log, &["--workers", "2"], &[]);
    let row = worker_rows(&env, "cl").into_iter().find(|w| w["slot"] == 1).expect("slot 1");
    let runner = row["runner_pid"].as_i64().expect("its runner") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(runner), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the runner of slot 1");
    assert!(wait_until(WAIT, || !alive(runner)));
    for f in ["cl.pool-1.json", "cl.pool-1.mark.json"] {
        assert!(state.join(f).exists(), "{f} is left behind");
    }
    let v = env.mv(&["clean", "--json"]).ok().json();
    let removed: Vec<&str> = v["stale_instances"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(removed.len(), 2, "{v}");
    assert!(removed.iter().all(|p| p.contains("cl.pool-1.")), "{v}");
    for f in ["cl.pool-1.json", "cl.pool-1.mark.json"] {
        assert!(!state.join(f).exists(), "{f} removed");
    }
    for f in ["cl.pool-0.json", "cl.pool-0.mark.json"] {
        assert!(state.join(f).exists(), "{f} of a live instance kept");
    }
    env.mv(&["stop", "cl"]).ok();
}

/// Soak regression (a prompt typed twice after a hung server): the pool's
/// tmux server was SIGSTOPped between the paste of a task and its Enter.
/// The Enter timed out and the task was failed and retried, but the server
/// ran the Enter once it was continued: the agent took the prompt in, and
/// the retry typed it a second time. Now the typing is unknown, not failed
/// (`ev=delivery-unknown`): the runner waits for the server, sees the agent
/// took the prompt in, and the task runs once, with its reply.
#[cfg(feature = "fault-injection")]
#[test]
fn a_prompt_whose_enter_a_stopped_server_did_not_answer_runs_once() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "hang", &log, &[], &["--busy", "0.3"]);
    let (sender, hold) = send_held(
        &env,
        &["send", "hang", "only once", "--wait", "90s"],
        "typing-pasted",
        &[],
        Duration::from_secs(120),
    );
    // Before the fix the timeout failed the attempt (task-retry).
    let timed_out = stop_server_while_held(&env, WAIT, "hang", &hold, || {
        !env.events("lifecycle", "delivery-unknown").is_empty()
            || !env.events("lifecycle", "task-retry").is_empty()
    });
    assert!(timed_out, "the Enter never timed out: {}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: only once");
    assert_eq!(turns(&log).get("only once"), Some(&1), "typed once: {:#?}", turns(&log));
    let unknown = env.events("lifecycle", "delivery-unknown");
    assert_eq!(unknown.len(), 1, "{unknown:#?}");
    assert!(unknown[0].contains("task=") && unknown[0].contains("slot=0"), "{unknown:#?}");
    assert!(unknown[0].contains("reason=\"enter: "), "{unknown:#?}");
    assert!(env.events("lifecycle", "task-retry").is_empty(), "no attempt failed");
    env.mv(&["stop", "hang"]).ok();
}

/// Soak regression (seed 97): an idle instance's agent was SIGKILLed while
/// its runner typed the `--reset`, and the pool's server was killed 2 s
/// later, before the runner looked at its agent again. The hang-up ended
/// the instance and nothing recorded the agent's death (the server's own
/// record says nothing of it). Now a death that came before the hang-up is
/// recorded by it. Held at the paste of the reset: the agent is killed,
/// then the server, then the typing goes on against no server.
#[cfg(feature = "fault-injection")]
#[test]
fn an_agent_killed_while_its_reset_is_typed_is_recorded_though_its_server_dies_next() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "rk", &log, &["--reset", "/clear"], &["--busy", "0.3"]);
    // Every typing of the runner holds here: the task's, let go at once,
    // then the reset's.
    let args = ["send", "rk", "first", "--wait", "60s"];
    let (sender, hold) =
        send_held_each_time(&env, &args, "typing-pasted", &[], Duration::from_secs(90));
    assert!(wait_until(WAIT, || hold.exists()), "the task's typing never held");
    std::fs::remove_file(&hold).expect("let the task's typing go");
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: first");
    assert!(wait_until(WAIT, || hold.exists()), "the reset's typing never held");
    let starts = env.events("lifecycle", "instance-start");
    assert_eq!(starts.len(), 1, "{starts:#?}");
    let agent: i32 = field(&starts[0], "pid").parse().expect("the agent's pid");
    kill(Pid::from_raw(agent), Signal::SIGKILL).expect("SIGKILL the agent");
    kill(checked_server_pid(&env, "rk"), Signal::SIGKILL).expect("SIGKILL the server");
    std::fs::remove_file(&hold).expect("let the reset's typing go");
    let mine = |l: &String| l.contains(&format!(" pid={agent} "));
    let recorded = wait_until(WAIT, || exits(&env, "session-exit", "rk").iter().any(mine));
    assert!(recorded, "the agent's death was not recorded: {}", env.read("logs/exits.log"));
    let exit: Vec<String> = exits(&env, "session-exit", "rk").into_iter().filter(mine).collect();
    assert!(
        exit.len() == 1 && exit[0].contains(" signal=9 ") && exit[0].contains(" slot=0"),
        "{exit:#?}"
    );
}

/// The same, stopped between the load of the text and its paste: the
/// paste times out and lands once the server is continued, with no Enter.
/// Before the fix the task was retried and the paste left its text in the
/// agent's prompt; the instance never read ready again. Now the text is
/// seen in the prompt and submitted, once.
#[cfg(feature = "fault-injection")]
#[test]
fn a_prompt_whose_paste_a_stopped_server_did_not_answer_is_submitted_once() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "hangp", &log, &[], &["--busy", "0.3"]);
    let (sender, hold) = send_held(
        &env,
        &["send", "hangp", "pasted once", "--wait", "60s"],
        "typing-loaded",
        &[],
        Duration::from_secs(90),
    );
    let timed_out = stop_server_while_held(&env, WAIT, "hangp", &hold, || {
        !env.events("lifecycle", "delivery-unknown").is_empty()
            || !env.events("lifecycle", "task-retry").is_empty()
    });
    assert!(timed_out, "the paste never timed out: {}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: pasted once");
    assert_eq!(turns(&log).get("pasted once"), Some(&1), "typed once: {:#?}", turns(&log));
    let unknown = env.events("lifecycle", "delivery-unknown");
    assert!(unknown.len() == 1 && unknown[0].contains("reason=\"paste: "), "{unknown:#?}");
    env.mv(&["stop", "hangp"]).ok();
}

/// A server that stays stopped past the task's --task-timeout: whether
/// the agent took the prompt in cannot be told, so the task is neither
/// typed again nor given a reply: it is dead-lettered `delivery-unknown`
/// (`send --wait` exits 1 and says so), and the instance's agent is
/// replaced. Before the fix the task was retried, typed again once the
/// server answered, and run twice.
#[cfg(feature = "fault-injection")]
#[test]
fn a_prompt_still_unanswered_at_its_task_timeout_is_dead_lettered_not_retyped() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "hangt", &log, &["--task-timeout", "5s"], &["--busy", "0.3"]);
    let (sender, hold) = send_held(
        &env,
        &["send", "hangt", "at most once", "--wait", "60s"],
        "typing-pasted",
        &[],
        Duration::from_secs(90),
    );
    // The server stays stopped until the task has ended one way or another.
    let ended = stop_server_while_held(&env, WAIT, "hangt", &hold, || {
        !env.events("lifecycle", "task-dead").is_empty()
            || !env.events("lifecycle", "task-retry").is_empty()
    });
    assert!(ended, "{}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    out.code(1);
    assert!(out.stderr.contains("dead-lettered: delivery-unknown"), "{out:#?}");
    let dead = env.events("lifecycle", "task-dead");
    assert!(dead.len() == 1 && dead[0].contains("reason=delivery-unknown"), "{dead:#?}");
    assert!(env.events("lifecycle", "task-retry").is_empty(), "never retried");
    // The Enter the server ran late may reach the old agent or none; the
    // prompt is never typed a second time.
    assert!(turns(&log).get("at most once").is_none_or(|n| *n <= 1), "{:#?}", turns(&log));
    assert!(wait_until(WAIT, || env.events("lifecycle", "instance-start").len() == 2));
    env.mv(&["stop", "hangt"]).ok();
}

/// An instance whose agent goes blocked while it works a task (here the
/// fake's usage-limit notice as its turn ends, for slot 0 only) no longer
/// keeps the task until --task-timeout: after a short grace the task fails
/// as `agent-blocked: usage-limit` (`ev=task-blocked`), the queue's retry
/// policy sends it to another instance, which answers it; the blocked
/// instance keeps its agent, takes no task, and says why in `status`.
#[test]
fn a_task_whose_agent_goes_blocked_fails_and_is_retried_on_another_instance() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    let fake = fake();
    let log_s = log.to_string_lossy().into_owned();
    let script = format!(
        "if [ \"$MUXVISOR_SLOT\" = 0 ]; then set -- --usage-limit-after 1 \"$@\"; fi; \
         exec python3 '{fake}' --reply echo --busy 0.3 --log '{log_s}' \"$@\""
    );
    let args = ["add", "lim", "--ephemeral", "--agent", "claude", "--workers", "2"];
    let args = [&args[..], &["--backoff", "100ms", "--", "sh", "-c", &script, "sh"]].concat();
    env.mv(&args).ok();
    let out = env.mv(&["send", "lim", "the question", "--wait", "45s"]);
    assert_eq!(out.ok().stdout.trim_end(), "reply to: the question");
    let blocked = env.events("lifecycle", "task-blocked");
    assert!(
        blocked.len() == 1 && blocked[0].contains("slot=0") && blocked[0].contains("usage-limit"),
        "{blocked:#?}"
    );
    let retries = env.events("lifecycle", "task-retry");
    assert!(
        retries.len() == 1 && retries[0].contains("reason=\"agent-blocked: usage-limit\""),
        "{retries:#?}"
    );
    let starts = env.events("lifecycle", "task-start");
    assert!(starts.len() == 2 && starts[1].contains("slot=1"), "{starts:#?}");
    assert_eq!(turns(&log).get("the question"), Some(&2), "typed once per attempt");
    // The blocked instance keeps its agent and says why.
    let row = worker_rows(&env, "lim").into_iter().find(|w| w["slot"] == 0).expect("slot 0");
    assert!(
        row["agent"]["state"] == "blocked"
            && row["agent"]["reason"] == "usage-limit"
            && row["task"].is_null(),
        "{row:#?}"
    );
    let human = env.mv(&["status", "lim"]).ok().stdout.clone();
    assert!(human.contains("lim instance 0: blocked (usage-limit"), "{human}");
    env.mv(&["stop", "lim"]).ok();
}

/// A permission prompt mid-task is the exception: the turn goes on once a
/// person answers it, so the task keeps its instance (past the blocked
/// grace, which fails a usage-limited task after a second) and, answered,
/// ends with its reply, typed once (before this rule: failed as
/// `agent-blocked: permission` and typed again into another instance).
#[test]
fn a_permission_prompt_mid_task_waits_for_a_person_and_the_task_goes_on() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "ask", &log, &["--workers", "2"], &["--permission-every", "1", "--busy", "0.4"]);
    env.mv(&["send", "ask", "may I"]).ok();
    // The instance at work shows the prompt, with its task.
    let mut asked: Option<(std::time::Instant, i64)> = None;
    let waited = wait_until(WAIT, || {
        let rows = worker_rows(&env, "ask");
        let row = rows.iter().find(|w| {
            w["agent"]["state"] == "blocked"
                && w["agent"]["reason"] == "permission"
                && w["task"].is_string()
        });
        match (row, asked) {
            (Some(w), None) => {
                asked = Some((std::time::Instant::now(), w["runner_pid"].as_i64().unwrap_or(0)));
                false
            }
            // Still blocked with its task well past the one-second grace.
            (Some(_), Some((t, _))) => t.elapsed() >= Duration::from_secs(3),
            (None, Some(_)) => panic!("the task left the blocked instance: {rows:#?}"),
            (None, None) => false,
        }
    });
    assert!(waited, "{:#?}", worker_rows(&env, "ask"));
    assert!(env.events("lifecycle", "task-blocked").is_empty());
    // A person answers (Enter on "1. Yes") in that instance's pane.
    let runner = asked.expect("seen blocked").1;
    let panes =
        env.tmux("ask", &["list-panes", "-a", "-F", "#{pane_pid} #{pane_id}"]).ok().stdout.clone();
    let pane = panes
        .lines()
        .find_map(|l| l.split_once(' ').filter(|(pid, _)| *pid == runner.to_string()))
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| panic!("no pane runs the runner {runner}: {panes}"));
    env.tmux("ask", &["send-keys", "-t", &pane, "Enter"]).ok();
    let done = wait_until(WAIT, || !env.events("lifecycle", "task-done").is_empty());
    assert!(done, "{}", env.mv(&["queue", "ask", "list"]).stdout);
    assert!(env.events("lifecycle", "task-blocked").is_empty());
    assert!(env.events("lifecycle", "task-retry").is_empty());
    assert_eq!(turns(&log).get("may I"), Some(&1), "typed once");
    env.mv(&["stop", "ask"]).ok();
}

/// The same, stopped before the text was loaded: the load times out, so
/// nothing can have been pasted. The task goes back to the head with no
/// attempt charged (before the fix: failed as `deliver-failed`, attempt
/// 1 spent) and is typed once when the server answers.
#[cfg(feature = "fault-injection")]
#[test]
fn a_prompt_whose_load_a_stopped_server_did_not_answer_is_typed_once_uncharged() {
    let env = Env::new();
    let log = env.scratch().join("turns.jsonl");
    add_pool(&env, "hangl", &log, &[], &["--busy", "0.3"]);
    let (sender, hold) = send_held(
        &env,
        &["send", "hangl", "loaded once", "--wait", "60s"],
        "typing-read",
        &[],
        Duration::from_secs(90),
    );
    let timed_out = stop_server_while_held(&env, WAIT, "hangl", &hold, || {
        !env.events("lifecycle", "delivery-unknown").is_empty()
            || !env.events("lifecycle", "task-retry").is_empty()
    });
    assert!(timed_out, "the load never timed out: {}", env.read("logs/lifecycle.log"));
    let out = sender.join().expect("the sender");
    assert_eq!(out.ok().stdout.trim_end(), "reply to: loaded once");
    assert_eq!(turns(&log).get("loaded once"), Some(&1), "typed once: {:#?}", turns(&log));
    let unknown = env.events("lifecycle", "delivery-unknown");
    assert!(unknown.len() == 1 && unknown[0].contains("reason=\"load: "), "{unknown:#?}");
    assert!(env.events("lifecycle", "task-retry").is_empty(), "no attempt charged");
    let starts = env.events("lifecycle", "task-start");
    assert!(starts.len() == 1 && starts[0].contains("attempt=1"), "{starts:#?}");
    env.mv(&["stop", "hangl"]).ok();
}
