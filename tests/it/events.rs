//! `events` through the binary: both logs merged in time order, filters,
//! `--json`, `--follow` (JSON Lines), and garbage lines skipped.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Child, Stdio};

use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta, Utc};

use crate::fixture::*;

fn ts(ago_s: i64) -> String {
    (Utc::now() - TimeDelta::seconds(ago_s)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn plant(env: &Env) -> Vec<String> {
    env.mv(&["status"]).ok(); // creates the root
    let l1 = format!("ts={} ev=launch identity=a pid=1 policy=persistent", ts(7200));
    let l2 = format!("ts={} ev=launch identity=b pid=2 policy=persistent", ts(30));
    let e1 = format!("ts={} ev=session-exit identity=a status=3 signal=", ts(3600));
    let e2 = format!(
        "ts={} ev=server-exit identity=b server_pid=9 wait_rc=1 forensics=\"/x y\"",
        ts(10)
    );
    let life = format!("{l1}\nnot a log line\n\n{l2}\n");
    let exits = format!("{e1}\nts=garbage ev=x\n{e2}\n");
    fs::write(env.root().join("logs/lifecycle.log"), life).unwrap();
    fs::write(env.root().join("logs/exits.log"), exits).unwrap();
    vec![l1, e1, l2, e2]
}

#[test]
fn merged_in_time_order_filtered_and_json() {
    let env = Env::new();
    let want = plant(&env);
    let out = env.mv(&["events"]);
    let got: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(got, want);

    let out = env.mv(&["events", "--id", "a"]);
    let got: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(got, [&want[0], &want[1]]);

    let out = env.mv(&["events", "--since", "90m"]);
    let got: Vec<&str> = out.ok().stdout.lines().collect();
    assert_eq!(got, [&want[1], &want[2], &want[3]]);

    let j = env.mv(&["events", "--json", "--id", "b"]).ok().json();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["ev"], "launch");
    assert_eq!(arr[0]["pid"], 2, "numbers are numbers");
    assert_eq!(arr[1]["ev"], "server-exit");
    assert_eq!(arr[1]["forensics"], "/x y");
    assert_eq!(arr[1]["wait_rc"], 1);

    let empty = Env::new();
    assert_eq!(empty.mv(&["events", "--json"]).ok().json(), serde_json::json!([]));
}

/// A `muxvisor ... --follow` child writing to a file we can poll.
pub struct Follow {
    child: Child,
    out: fs::File,
}

impl Follow {
    pub fn start(env: &Env, args: &[&str]) -> Follow {
        let out = tempfile::tempfile().unwrap();
        let child = env
            .command(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Follow { child, out }
    }

    pub fn text(&mut self) -> String {
        let mut s = String::new();
        self.out.seek(SeekFrom::Start(0)).unwrap();
        self.out.read_to_string(&mut s).unwrap();
        s
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_prints_json_lines_as_events_arrive() {
    let env = Env::new();
    plant(&env);
    let mut f = Follow::start(&env, &["events", "--follow", "--json", "--id", "b"]);
    assert!(wait_until(Duration::from_secs(10), || f.text().lines().count() == 2), "{}", f.text());

    let append = |name: &str, bytes: &[u8]| {
        let path = env.root().join(format!("logs/{name}.log"));
        let mut w = fs::OpenOptions::new().append(true).open(path).unwrap();
        w.write_all(bytes).unwrap();
    };
    // Another identity's event is filtered out; a line written in two
    // pieces is printed once, whole.
    append(
        "exits",
        format!("ts={} ev=session-exit identity=a status=0 signal=\n", ts(0)).as_bytes(),
    );
    let new = format!("ts={} ev=session-exit identity=b status= signal=9\n", ts(0));
    let (head, tail) = new.split_at(25);
    append("exits", head.as_bytes());
    append("exits", tail.as_bytes());
    assert!(wait_until(Duration::from_secs(10), || f.text().lines().count() == 3), "{}", f.text());
    let t = f.text();
    for l in t.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["identity"], "b", "{t}");
    }
    let last: serde_json::Value = serde_json::from_str(t.lines().last().unwrap()).unwrap();
    assert_eq!(last["signal"], 9);
    assert!(last["status"].is_null(), "an empty value is null: {last}");
}

/// Issue 10, item 8: `events --json` wrote every value as a string. Events
/// written by a real run come out with the types `muxvisor(1)` documents,
/// and every event and key written is documented.
#[test]
fn json_events_of_a_real_run_have_their_documented_types() {
    use muxvisor::model::events::{JsonType, key_type};
    use muxvisor::surface::manual;
    let env = Env::new();
    env.mv(&["add", "w", "--restart", "never", "--", "sh", "-c", "exit 3"]).ok();
    env.mv(&["add", "w", "--restart", "never", "--", "sh", "-c", "exit 3"]).ok();
    env.mv(&["launch", "w"]).code(1);
    env.mv(&["add", "e", "--ephemeral", "--", "sh", "-c", "true"]).ok();
    env.mv(&["send", "e", "one"]).ok();
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["supervise", "--once"]).ok();
        !env.events("lifecycle", "task-done").is_empty()
    }));
    let j = env.mv(&["events", "--json"]).ok().json();
    let all = j.as_array().unwrap();
    let first = |ev: &str| all.iter().find(|o| o["ev"] == ev).unwrap_or_else(|| panic!("{ev}"));
    assert_eq!(first("add")["updated"], false);
    assert_eq!(all.iter().filter(|o| o["ev"] == "add" && o["updated"] == true).count(), 1);
    assert!(first("launch")["pid"].is_i64(), "{j}");
    let exit = first("session-exit");
    assert_eq!(exit["status"], 3, "{exit}");
    assert!(exit["signal"].is_null(), "{exit}");
    assert!(first("enqueue")["depth"].is_i64(), "{j}");
    assert!(first("task-done")["duration_ms"].is_i64(), "{j}");
    assert!(first("tick")["peers"].is_i64(), "{j}");
    for o in all {
        let ev = o["ev"].as_str().unwrap();
        let doc = manual::EVENTS.iter().find(|e| e.ev == ev);
        let doc = doc.unwrap_or_else(|| panic!("ev={ev} is written but not documented"));
        for (k, v) in o.as_object().unwrap() {
            if ["ts", "ev", "identity"].contains(&k.as_str()) {
                assert!(v.is_string(), "{o}");
                continue;
            }
            assert!(doc.keys.iter().any(|(d, _)| d == k), "ev={ev} writes undocumented key {k}");
            let ok = v.is_null()
                || match key_type(k) {
                    JsonType::Integer => v.is_i64(),
                    JsonType::Boolean => v.is_boolean(),
                    JsonType::String | JsonType::Time => v.is_string(),
                };
            assert!(ok, "ev={ev} {k}={v} is not a {:?}", key_type(k));
        }
    }
}

#[test]
fn launched_peer_shows_up_in_events() {
    let env = Env::new();
    env.mv(&["add", "w", "--restart", "never", "--", "sleep", "1000"]).ok();
    env.mv(&["launch", "w"]).ok();
    let j = env.mv(&["events", "--json", "--id", "w"]).ok().json();
    let evs: Vec<&str> = j.as_array().unwrap().iter().map(|o| o["ev"].as_str().unwrap()).collect();
    assert!(evs.contains(&"add") && evs.contains(&"launch"), "{evs:?}");
    let add = evs.iter().position(|e| *e == "add").unwrap();
    let launch = evs.iter().position(|e| *e == "launch").unwrap();
    assert!(add < launch, "{evs:?}");
}
