//! Unit tests of the notifier: what notifies, the hook's checks, and reading
//! the logs past the cursor across rotations (a real filesystem, no tmux).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::cursor::{Batch, Cursor, Mark, keep_present, read_batch, start_offset};
use super::runner::{cut, merge};
use super::*;
use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::logfmt::Event;

fn at(s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, s).unwrap()
}

#[test]
fn quiet_events_and_task_exits_do_not_notify() {
    for ev in QUIET {
        assert!(!notifies(ev, None), "{ev}");
    }
    for ev in ["server-exit", "gone", "failed", "agent-state", "task-dead", "resume-failed"] {
        assert!(notifies(ev, None), "{ev}");
    }
    assert!(notifies("session-exit", None));
    assert!(notifies("session-exit", Some("")));
    assert!(!notifies("session-exit", Some("t-1")));
    assert!(notifies("task-dead", Some("t-1")));
}

#[test]
fn the_manual_names_every_quiet_event() {
    let (_, text) =
        crate::surface::manual::FILES.iter().find(|(f, _)| *f == "hooks/on-event").unwrap();
    for ev in QUIET {
        assert!(text.contains(ev), "{ev}");
    }
}

#[test]
fn config_from_values() {
    let d = Config { timeout: DEFAULT_TIMEOUT, backlog: DEFAULT_BACKLOG };
    assert_eq!(Config::from_values(None, None), d);
    assert_eq!(Config::from_values(Some("0".into()), Some("0".into())), d);
    assert_eq!(Config::from_values(Some("x".into()), Some("-1".into())), d);
    let c = Config::from_values(Some("500ms".into()), Some("7".into()));
    assert_eq!(c, Config { timeout: Duration::from_millis(500), backlog: 7 });
}

#[test]
fn only_the_event_logs_of_a_root_notify() {
    let r = root_of_log(Path::new("/t/r/logs/lifecycle.log")).unwrap();
    assert_eq!(r.dir(), Path::new("/t/r"));
    assert!(root_of_log(Path::new("/t/r/logs/exits.log")).is_some());
    assert!(root_of_log(Path::new("/t/r/logs/notify.log")).is_none());
    assert!(root_of_log(Path::new("/t/r/other/lifecycle.log")).is_none());
    assert!(root_of_log(Path::new("lifecycle.log")).is_none());
}

#[test]
fn start_offsets() {
    let m = |ino, head: &str, offset| Mark { dev: 1, ino, head: head.into(), offset };
    let known = [m(10, "ts=a", 100), m(11, "", 0)];
    // Known file: from its mark; shrunk: from its start.
    assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 150), 100);
    assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 100), 100);
    assert_eq!(start_offset(&known, &m(10, "ts=a", 0), 50), 0);
    // A reused inode with another first line is another file.
    assert_eq!(start_offset(&known, &m(10, "ts=b", 0), 150), 0);
    // Marked while empty: any first line is that file's.
    assert_eq!(start_offset(&known, &m(11, "ts=c", 0), 10), 0);
    // Never seen (a new file, or a generation renamed in between).
    assert_eq!(start_offset(&known, &m(12, "ts=a", 0), 150), 0);
    let other_dev = Mark { dev: 2, ..m(10, "ts=a", 0) };
    assert_eq!(start_offset(&known, &other_dev, 150), 0);
}

#[test]
fn merge_orders_by_time_and_keeps_each_logs_order() {
    // The lifecycle log holds a line stamped before the one ahead of it
    // (concurrent writers): it stays behind it.
    let a = vec![(1, "a1"), (5, "a2"), (3, "a3"), (9, "a4")];
    let b = vec![(2, "b1"), (4, "b2"), (10, "b3")];
    let got: Vec<&str> = merge(vec![a, b], |t| at(t.0)).into_iter().map(|t| t.1).collect();
    assert_eq!(got, ["a1", "b1", "b2", "a2", "a3", "a4", "b3"]);
    let none: Vec<Vec<(u32, &str)>> = vec![vec![], vec![]];
    assert!(merge(none, |t| at(t.0)).is_empty());
}

#[test]
fn a_backlog_is_cut_from_its_oldest_end() {
    assert_eq!(cut(vec![1, 2, 3], 3), (vec![1, 2, 3], vec![]));
    assert_eq!(cut(vec![1, 2, 3, 4, 5], 2), (vec![4, 5], vec![1, 2, 3]));
}

fn tmp_root() -> (tempfile::TempDir, Root) {
    let t = tempfile::Builder::new().prefix("mvn").tempdir_in("/tmp").unwrap();
    let root = fsutil::open_root(&t.path().join("r")).unwrap();
    (t, root)
}

fn line(s: u32, ev: &str) -> String {
    Event::at(at(s), ev).kv("n", s).line()
}

fn items(b: &Batch) -> Vec<String> {
    b.items
        .iter()
        .flatten()
        .filter_map(|i| i.rec.as_ref().and_then(|r| r.get("n")).map(str::to_string))
        .collect()
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// Read everything new and move the cursor to its end, as a pass that
/// delivered it all would.
fn consume(root: &Root, cursor: &mut Cursor) -> Vec<String> {
    let b = read_batch(root, cursor).unwrap();
    keep_present(cursor, &b);
    for (log, end) in &b.ends {
        cursor.advance(log, end, end.offset);
    }
    items(&b)
}

#[test]
fn rotation_loses_and_repeats_nothing() {
    let (_t, root) = tmp_root();
    let log = root.lifecycle_log();
    let mut c = Cursor::default();
    append(&log, &line(1, "gone"));
    append(&log, &line(2, "gone"));
    assert_eq!(consume(&root, &mut c), ["1", "2"]);
    assert!(consume(&root, &mut c).is_empty());
    // A partial line waits for its newline.
    append(&log, &line(3, "gone"));
    append(&log, "ts=2026-11-22T03:00:04.000Z ev=gone n=4");
    assert_eq!(consume(&root, &mut c), ["3"]);
    append(&log, "\n");
    assert_eq!(consume(&root, &mut c), ["4"]);
    // Rotated with an unread tail, which comes before the new file.
    append(&log, &line(5, "gone"));
    crate::ground::rotate::rotate(&log, 1, false).unwrap().unwrap();
    append(&log, &line(6, "gone"));
    assert_eq!(consume(&root, &mut c), ["5", "6"]);
    // A late write to the renamed file is still seen.
    append(&crate::ground::rotate::rotated_name(&log), &line(7, "gone"));
    assert_eq!(consume(&root, &mut c), ["7"]);
    // Rotated twice unseen: both generations on disk are read whole.
    append(&log, &line(8, "gone"));
    crate::ground::rotate::rotate(&log, 1, false).unwrap().unwrap();
    append(&log, &line(9, "gone"));
    crate::ground::rotate::rotate(&log, 1, false).unwrap().unwrap();
    append(&log, &line(10, "gone"));
    assert_eq!(consume(&root, &mut c), ["9", "10"]);
    assert!(consume(&root, &mut c).is_empty());
    assert_eq!(c.logs["lifecycle"].len(), 2, "{c:?}");
}

#[test]
fn a_first_read_starts_at_the_start_of_both_generations() {
    let (_t, root) = tmp_root();
    let log = root.exits_log();
    append(&log, &line(1, "server-exit"));
    crate::ground::rotate::rotate(&log, 1, false).unwrap().unwrap();
    append(&log, &line(2, "server-exit"));
    let b = read_batch(&root, &Cursor::default()).unwrap();
    assert_eq!(items(&b), ["1", "2"]);
    let since = at(2);
    let chosen: Vec<bool> =
        b.items.iter().flatten().map(|i| deliverable(i.rec.as_ref().unwrap(), since)).collect();
    assert_eq!(chosen, [false, true], "lines from before the hook are not delivered");
}

#[test]
fn hook_checks() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, root) = tmp_root();
    assert_eq!(check(&root), Hook::Absent);
    std::fs::create_dir(root.hooks_dir()).unwrap();
    let set = |p: &Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&root.hooks_dir(), 0o755);
    assert_eq!(check(&root), Hook::Absent);
    let hook = root.on_event_hook();
    std::fs::write(&hook, "#!/bin/sh\n").unwrap();
    set(&hook, 0o644);
    assert_eq!(check(&root), Hook::Disabled);
    set(&hook, 0o755);
    assert!(matches!(check(&root), Hook::Ready { .. }));
    set(&hook, 0o757);
    assert!(matches!(check(&root), Hook::Refused { fix, .. } if fix.contains("chmod go-w")));
    set(&hook, 0o700);
    set(&root.hooks_dir(), 0o777);
    assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("hooks")));
    set(&root.hooks_dir(), 0o700);
    std::fs::remove_file(&hook).unwrap();
    std::os::unix::fs::symlink("/bin/true", &hook).unwrap();
    assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("symlink")));
    std::fs::remove_file(&hook).unwrap();
    std::fs::create_dir(&hook).unwrap();
    assert!(matches!(check(&root), Hook::Refused { why, .. } if why.contains("regular file")));
}
