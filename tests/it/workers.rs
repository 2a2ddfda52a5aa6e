//! Parallel workers (SPEC §10, issue 22 part 1): `add --workers N` runs up
//! to N tasks of an ephemeral queue at once, each in its own pane, started
//! in queue order, with every guarantee of one worker per task. The tasks
//! here wait for gate files the test creates, so concurrency and order are
//! proved by what has started while everything else waits, never by timing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use muxvisor::ground::paths::Root;
use muxvisor::model::peer::Identity;
use muxvisor::model::queue::{Queue, QueueLock};

use crate::fixture::*;

const WAIT: Duration = Duration::from_secs(30);

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// A gated worker: it appends its task text to `started`, waits for
/// `go.<text>` or `go.all` in the scratch directory, then appends its text
/// to `done`.
struct Gated {
    dir: PathBuf,
}

impl Gated {
    fn add(env: &Env, id: &str, workers: &str) -> Gated {
        let dir = env.scratch().to_path_buf();
        let script = "echo \"$1\" >> started; \
                      while [ ! -e \"go.$1\" ] && [ ! -e go.all ]; do sleep 0.02; done; \
                      echo \"$1\" >> done";
        let cwd = dir.to_string_lossy().into_owned();
        env.mv(&[
            "add",
            id,
            "--ephemeral",
            "--workers",
            workers,
            "--cwd",
            &cwd,
            "--backoff",
            "100ms",
            "--max-backoff",
            "200ms",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            "{task}",
        ])
        .ok();
        Gated { dir }
    }

    fn started(&self) -> Vec<String> {
        lines(&self.dir.join("started"))
    }

    fn done(&self) -> Vec<String> {
        lines(&self.dir.join("done"))
    }

    fn open(&self, which: &str) {
        fs::write(self.dir.join(format!("go.{which}")), b"").unwrap();
    }
}

fn send_all(env: &Env, id: &str, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .map(|t| {
            let out = env.mv(&["--json", "send", id, t]);
            out.ok();
            out.json()["task"].as_str().unwrap().to_string()
        })
        .collect()
}

fn queue(env: &Env, id: &str) -> Queue {
    Queue::open(&Root::new(env.root().to_path_buf()), &Identity::parse(id).unwrap()).unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A JSON array of strings.
fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

/// `queue ID list --json`'s pending tasks with their attempts, in order.
fn pending_attempts(listed: &serde_json::Value) -> Vec<(String, u64)> {
    listed["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["task"].as_str().unwrap().to_string(), t["attempt"].as_u64().unwrap()))
        .collect()
}

/// `ids` with no attempt charged.
fn uncharged(ids: &[String]) -> Vec<(String, u64)> {
    ids.iter().map(|t| (t.clone(), 0)).collect()
}

fn life(env: &Env, ev: &str, id: &str) -> Vec<String> {
    env.events("lifecycle", ev)
        .into_iter()
        .filter(|l| format!("{l} ").contains(&format!(" identity={id} ")))
        .collect()
}

/// Three workers run three tasks at once: all three have started while
/// none may finish. `status --json` lists the three workers with their
/// tasks and pids, and `queue list` names the worker of each running task.
/// Then everything finishes exactly once.
#[test]
fn three_workers_run_three_tasks_at_once_and_show_in_status_and_queue_list() {
    let env = Env::new();
    let g = Gated::add(&env, "par", "3");
    let ids = send_all(&env, "par", &["a", "b", "c"]);
    assert!(
        wait_until(WAIT, || g.started().len() == 3),
        "three tasks at once: {:?}\n{}",
        g.started(),
        env.read("logs/lifecycle.log")
    );
    assert!(g.done().is_empty());

    let status = env.mv(&["--json", "status", "par"]);
    status.ok();
    let workers = status.json()[0]["workers"].as_array().unwrap().clone();
    assert_eq!(workers.len(), 3, "{workers:?}");
    let tasks: Vec<String> =
        workers.iter().map(|w| w["task"].as_str().unwrap().to_string()).collect();
    assert_eq!(sorted(tasks), sorted(ids.clone()));
    let slots: Vec<u64> = workers.iter().map(|w| w["slot"].as_u64().unwrap()).collect();
    assert_eq!(sorted(slots.iter().map(u64::to_string).collect()), ["0", "1", "2"]);
    for w in &workers {
        assert!(w["pid"].as_i64().is_some_and(|p| alive(p as i32)), "{w}");
        assert!(w["since"].is_string() && w["agent"].is_null(), "{w}");
    }

    let listed = env.mv(&["queue", "par", "list"]);
    listed.ok();
    for k in 0..3 {
        assert!(listed.stdout.contains(&format!("  worker {k} (pid ")), "{}", listed.stdout);
    }
    let json = env.mv(&["--json", "queue", "par", "list"]).json();
    let running = json["running"].as_array().unwrap();
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|t| t["worker"].is_u64()), "{running:?}");

    g.open("all");
    assert!(wait_until(WAIT, || g.done().len() == 3), "{:?}", g.done());
    assert_eq!(sorted(g.done()), ["a", "b", "c"]);
    // The acks follow the programs' ends by a moment.
    assert!(wait_until(WAIT, || life(&env, "task-done", "par").len() == 3));
    assert!(life(&env, "task-retry", "par").is_empty());
    // Every program's end is on record with its task.
    let exits = exits(&env, "session-exit", "par");
    for id in &ids {
        assert!(exits.iter().any(|l| l.contains(&format!(" task={id}"))), "{exits:?}");
    }
    // Drained: the worker windows retire, then the first runner ends the server.
    assert!(
        wait_until(WAIT, || life(&env, "stop", "par").iter().any(|l| l.contains("drained"))),
        "{}",
        env.read("logs/lifecycle.log")
    );
    assert!(env.events("lifecycle", "tick").is_empty(), "no tick ran");
}

/// Tasks start in queue order with several workers: of six tasks, the
/// first three start while the rest wait; each task that finishes lets the
/// next one in the queue start, never a later one.
#[test]
fn several_workers_start_tasks_in_queue_order() {
    let env = Env::new();
    let g = Gated::add(&env, "fifo", "3");
    let texts = ["t1", "t2", "t3", "t4", "t5", "t6"];
    send_all(&env, "fifo", &texts);
    assert!(wait_until(WAIT, || g.started().len() == 3), "{:?}", g.started());
    assert_eq!(sorted(g.started()), ["t1", "t2", "t3"]);
    for (i, done) in ["t2", "t1", "t3"].iter().enumerate() {
        g.open(done);
        assert!(wait_until(WAIT, || g.started().len() == 4 + i), "{:?}", g.started());
        assert_eq!(g.started()[3 + i], texts[3 + i], "{:?}", g.started());
    }
    g.open("all");
    assert!(wait_until(WAIT, || g.done().len() == 6), "{:?}", g.done());
    assert_eq!(sorted(g.done()), sorted(texts.iter().map(|t| t.to_string()).collect()));
}

/// kill -9 of one worker slot's runner while three tasks run: its death is
/// recorded with its task, that task (and only it) is retried, the other
/// two finish once each, and nothing is lost or doubled. Then the same for
/// the first runner, which owns the server: it is started again in its own
/// pane and the other workers run on.
#[test]
fn a_killed_worker_retries_only_its_own_task() {
    let env = Env::new();
    let g = Gated::add(&env, "kw", "3");
    let ids = send_all(&env, "kw", &["a", "b", "c"]);
    assert!(wait_until(WAIT, || g.started().len() == 3), "{:?}", g.started());
    let q = queue(&env, "kw");
    let victim_slot = 1;
    let runner = q.lock_holder(QueueLock::slot(victim_slot)).expect("slot 1 runs");
    let task = q.running_all().unwrap().into_iter().find(|c| c.slot() == victim_slot).unwrap();
    let task = task.task().to_string();
    unsafe { libc::kill(runner, libc::SIGKILL) };
    assert!(
        wait_until(WAIT, || life(&env, "task-retry", "kw").len() == 1),
        "{}",
        env.read("logs/lifecycle.log")
    );
    let retry = &life(&env, "task-retry", "kw")[0];
    assert!(retry.contains(&format!(" task={task} ")), "{retry}");
    let died = exits(&env, "session-exit", "kw");
    assert!(
        died.iter().any(|l| l.contains(&format!(" pid={runner} ")) && l.contains(&task)),
        "the death names its task: {died:?}"
    );
    // The retried task starts again (a second line for its text).
    assert!(wait_until(WAIT, || g.started().len() == 4), "{:?}", g.started());

    // Now the first runner, while three run again.
    let lead = q.lock_holder(QueueLock::Runner).expect("the first runner runs");
    let lead_task = q.running_all().unwrap().into_iter().find(|c| c.slot() == 0).unwrap();
    unsafe { libc::kill(lead, libc::SIGKILL) };
    assert!(
        wait_until(WAIT, || life(&env, "task-retry", "kw").len() == 2),
        "{}",
        env.read("logs/lifecycle.log")
    );
    assert!(life(&env, "task-retry", "kw")[1].contains(lead_task.task()));
    assert!(
        wait_until(WAIT, || q.lock_holder(QueueLock::Runner).is_some_and(|p| p != lead)),
        "the first runner is started again"
    );
    g.open("all");
    assert!(wait_until(WAIT, || g.done().len() == 3), "{:?}", g.done());
    assert_eq!(sorted(g.done()), ["a", "b", "c"], "each task finished once");
    assert!(wait_until(WAIT, || life(&env, "task-done", "kw").len() >= 3));
    let done = life(&env, "task-done", "kw");
    assert_eq!(done.len(), 3, "{done:?}");
    for id in &ids {
        assert_eq!(done.iter().filter(|l| l.contains(id.as_str())).count(), 1, "{done:?}");
    }
    assert!(env.events("lifecycle", "tick").is_empty(), "no tick ran");
}

/// A deliberate stop while three workers run: every slot's runner ends,
/// and all three tasks go back to the head in their order, uncharged.
#[test]
fn a_stop_requeues_every_running_task_uncharged() {
    let env = Env::new();
    let g = Gated::add(&env, "st", "3");
    let ids = send_all(&env, "st", &["a", "b", "c", "d"]);
    assert!(wait_until(WAIT, || g.started().len() == 3), "{:?}", g.started());
    let q = queue(&env, "st");
    let pids: Vec<i32> = q.live_slots().into_iter().filter_map(|(_, p)| p).collect();
    assert_eq!(pids.len(), 3);
    let out = env.mv(&["--json", "stop", "st"]);
    out.ok();
    let v = out.json();
    let tasks = strings(&v["tasks"]);
    assert_eq!(tasks, ids[..3], "{v}");
    assert_eq!(v["task_outcome"], "requeued");
    let listed = env.mv(&["--json", "queue", "st", "list"]).json();
    assert_eq!(pending_attempts(&listed), uncharged(&ids), "all back, in order, uncharged");
    assert!(listed["running"].as_array().unwrap().is_empty());
    assert!(wait_until(WAIT, || pids.iter().all(|p| !alive(*p))), "every runner ended");
    assert!(g.done().is_empty(), "nothing finished");
    assert!(exits(&env, "session-exit", "st").is_empty(), "a stop is not a death");
}

/// A stop of a hung server (SIGSTOP) while three workers run: the worker
/// slots' runners, which the stopped server cannot end, are ended by the
/// stop itself before it settles their tasks, so none of them sees its
/// program die of the server's kill and charges its task a retry: all
/// three are back at the head, uncharged, and listed by the stop.
#[test]
fn a_stop_of_a_hung_server_requeues_every_running_task_uncharged() {
    let env = Env::new();
    let g = Gated::add(&env, "hs", "3");
    let ids = send_all(&env, "hs", &["a", "b", "c"]);
    assert!(wait_until(WAIT, || g.started().len() == 3), "{:?}", g.started());
    let q = queue(&env, "hs");
    let pids: Vec<i32> = q.live_slots().into_iter().filter_map(|(_, p)| p).collect();
    assert_eq!(pids.len(), 3);
    let server = env.server_pid("hs").unwrap();
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let out = env.mv(&["--json", "stop", "hs", "--grace", "500ms"]);
    unsafe { libc::kill(server, libc::SIGCONT) };
    out.ok();
    let v = out.json();
    let tasks = strings(&v["tasks"]);
    assert_eq!(tasks, ids, "{v}\n{}", env.read("logs/lifecycle.log"));
    assert!(wait_until(WAIT, || pids.iter().all(|p| !alive(*p))), "every runner ended");
    assert!(wait_until(WAIT, || !alive(server)));
    let listed = env.mv(&["--json", "queue", "hs", "list"]).json();
    assert_eq!(pending_attempts(&listed), uncharged(&ids), "all back, in order, uncharged");
    assert!(life(&env, "task-retry", "hs").is_empty(), "{}", env.read("logs/lifecycle.log"));
    assert!(g.done().is_empty(), "nothing finished");
}

/// `--workers` lowered (3 to 2) while three tasks run: the third slot's
/// runner still runs its task, so the tick must not take that task for a
/// dead runner's and run it again; it finishes once, and the runner of the
/// slot the spec no longer has retires afterwards.
#[test]
fn lowering_workers_while_they_run_runs_nothing_twice() {
    let env = Env::new();
    let g = Gated::add(&env, "lw", "3");
    let ids = send_all(&env, "lw", &["a", "b", "c"]);
    assert!(wait_until(WAIT, || g.started().len() == 3), "{:?}", g.started());
    let q = queue(&env, "lw");
    let third = q.lock_holder(QueueLock::slot(2)).expect("slot 2 runs");
    Gated::add(&env, "lw", "2");
    env.mv(&["supervise", "--once"]).ok();
    assert!(life(&env, "task-retry", "lw").is_empty(), "{}", env.read("logs/lifecycle.log"));
    let v = env.mv(&["--json", "status", "lw"]).json();
    let slots: Vec<u64> =
        v[0]["workers"].as_array().unwrap().iter().map(|w| w["slot"].as_u64().unwrap()).collect();
    assert_eq!(sorted(slots.iter().map(u64::to_string).collect()), ["0", "1", "2"], "{v}");
    g.open("all");
    assert!(wait_until(WAIT, || life(&env, "task-done", "lw").len() >= 3));
    assert!(wait_until(WAIT, || !alive(third)), "the third slot's runner retires");
    assert_eq!(sorted(g.started()), ["a", "b", "c"], "each task started once");
    let done = life(&env, "task-done", "lw");
    for id in &ids {
        assert_eq!(done.iter().filter(|l| l.contains(id.as_str())).count(), 1, "{done:?}");
    }
    assert!(life(&env, "task-retry", "lw").is_empty(), "{}", env.read("logs/lifecycle.log"));
}

/// A worker slot's runner killed after the binary that started the server
/// moved away (an upgrade): its `pane-died` hook cannot run, so nobody
/// recorded the death. The tick records it (`source=tick`), with the task
/// the runner left, before it retries that task, as it does for the first
/// pane; and only once.
#[test]
fn a_worker_death_the_hook_missed_is_recorded_by_the_tick_with_its_task() {
    let env = Env::new();
    let g = Gated::add(&env, "mh", "2");
    let dir = env.scratch().join("old-bin");
    fs::create_dir_all(&dir).unwrap();
    let old = dir.join("muxvisor");
    if fs::hard_link(BIN, &old).is_err() {
        fs::copy(BIN, &old).unwrap();
    }
    let old_mv = |args: &[&str]| {
        let mut c = std::process::Command::new(&old);
        c.arg("--root").arg(env.root()).args(args);
        c.env_remove("MUXVISOR_ROOT").env_remove("TMUX").env_remove("TMUX_PANE");
        run_deadline(c, None, CMD_DEADLINE).ok();
    };
    old_mv(&["send", "mh", "a"]);
    old_mv(&["send", "mh", "b"]);
    assert!(wait_until(WAIT, || g.started().len() == 2), "{:?}", g.started());
    fs::remove_file(&old).unwrap(); // the upgrade moved it away
    let q = queue(&env, "mh");
    let runner = q.lock_holder(QueueLock::slot(1)).expect("slot 1 runs");
    let task = q.running_all().unwrap().into_iter().find(|c| c.slot() == 1).unwrap();
    let task = task.task().to_string();
    unsafe { libc::kill(runner, libc::SIGKILL) };
    assert!(wait_until(WAIT, || !q.lock_held(QueueLock::slot(1))));
    let v = env.mv(&["--json", "supervise", "--once"]).ok().json();
    let died: Vec<String> = exits(&env, "session-exit", "mh")
        .into_iter()
        .filter(|l| l.contains(&format!(" pid={runner} ")))
        .collect();
    assert_eq!(died.len(), 1, "{v}\n{died:?}");
    assert!(
        died[0].contains("source=tick") && died[0].contains(&format!(" task={task}")),
        "{died:?}"
    );
    let retry = life(&env, "task-retry", "mh");
    assert!(retry.len() == 1 && retry[0].contains(&task), "{retry:?}");
    env.mv(&["supervise", "--once"]).ok();
    assert_eq!(exits(&env, "session-exit", "mh").len(), 1, "recorded once");
    g.open("all");
    assert!(wait_until(WAIT, || life(&env, "task-done", "mh").len() == 2));
}

/// The tick's `--task-timeout` backstop ends only the overdue worker. A
/// runner ends its own program on time, from the timeout it read when the
/// task started; lowering `--task-timeout` while tasks run leaves the
/// backstop to the tick (as does a runner that cannot act). Here the first
/// worker's task is past the new timeout and the second's is not: the tick
/// ends the first worker alone and retries its task as `timeout`, while the
/// server and the second task go on, uncharged, and the first worker is
/// started again.
#[test]
fn the_tick_ends_only_the_worker_past_its_timeout() {
    let env = Env::new();
    let dir = env.scratch().to_path_buf();
    let script = "echo \"$1\" >> started; \
                  while [ ! -e \"go.$1\" ]; do sleep 0.02; done; echo \"$1\" >> done";
    let cwd = dir.to_string_lossy().into_owned();
    let add = |timeout: &str| {
        env.mv(&[
            "add",
            "to",
            "--ephemeral",
            "--workers",
            "2",
            "--task-timeout",
            timeout,
            "--cwd",
            &cwd,
            "--backoff",
            "100ms",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            "{task}",
        ])
        .ok();
    };
    add("1h");
    let started = || lines(&dir.join("started"));
    let done = || lines(&dir.join("done"));
    let a = send_all(&env, "to", &["a"]).remove(0);
    assert!(wait_until(WAIT, || started().len() == 1), "{:?}", started());
    let since = std::time::Instant::now();
    // Condition, not a pause: "a" must be older than the timeout set below,
    // "b" (sent after) younger by a wide margin.
    assert!(wait_until(WAIT, || since.elapsed() > Duration::from_secs(5)));
    let b = send_all(&env, "to", &["b"]).remove(0);
    assert!(wait_until(WAIT, || started().len() == 2), "{:?}", started());
    let server = env.server_pid("to").expect("the server runs");
    let q = queue(&env, "to");
    let first = q.lock_holder(QueueLock::Runner).expect("the first runner runs");
    let slot_of =
        |task: &str| q.running_all().unwrap().iter().find(|c| c.task() == task).map(|c| c.slot());
    assert_eq!((slot_of(&a), slot_of(&b)), (Some(0), Some(1)));
    add("4s");
    env.mv(&["supervise", "--once"]).ok();
    let retries = life(&env, "task-retry", "to");
    assert!(
        retries.iter().any(|l| l.contains(&format!(" task={a} ")) && l.contains("reason=timeout")),
        "{}",
        env.read("logs/lifecycle.log")
    );
    assert!(!muxvisor::ground::proc::alive(first), "the first worker was ended");
    assert_eq!(env.server_pid("to"), Some(server), "the server was not stopped");
    assert!(life(&env, "stop", "to").is_empty(), "{}", env.read("logs/lifecycle.log"));
    assert!(!retries.iter().any(|l| l.contains(&b)), "the other task was not charged: {retries:?}");
    assert_eq!(slot_of(&b), Some(1), "the other task still runs");
    // The first worker is started again and takes the retried task.
    assert!(
        wait_until(WAIT, || {
            env.mv(&["supervise", "--once"]).ok();
            started().len() == 3
        }),
        "{:?} {}",
        started(),
        env.read("logs/lifecycle.log")
    );
    fs::write(dir.join("go.b"), b"").unwrap();
    fs::write(dir.join("go.a"), b"").unwrap();
    assert!(wait_until(WAIT, || done().len() == 2), "{:?}", done());
    assert_eq!(sorted(done()), ["a", "b"]);
}
