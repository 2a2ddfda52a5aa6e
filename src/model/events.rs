//! The event logs as data: `logs/lifecycle.log` and `logs/exits.log` read,
//! parsed (`logfmt::parse`), merged by timestamp and filtered. Used by the
//! `events` command and by anything else that needs past events (the tick
//! may ask "when did this identity last die?"). The JSON type of every
//! key ([`KEY_TYPES`]) is part of this model: `events --json` types values
//! by it, and the manual documents it from here.
//!
//! Reading is lenient on purpose: a line without a parseable `ts` and an `ev`
//! (a torn write from a crashed writer, a hand edit) is skipped, never fatal.
//! A final line without its newline is left for the next reader: it may
//! still be being written.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use crate::ground::fsutil;
use crate::ground::paths::Root;
use crate::model::logfmt;

/// The JSON type a logfmt value becomes in `muxvisor events --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    Integer,
    /// Written `true`/`false` (or `1`/`0`).
    Boolean,
    String,
    /// An RFC 3339 UTC timestamp, as a string.
    Time,
}

impl JsonType {
    pub fn name(self) -> &'static str {
        match self {
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::String => "string",
            JsonType::Time => "string, RFC 3339",
        }
    }
}

/// The type of every key an event line can carry: the one table that
/// drives `events --json` (a key not listed is a string) and the types the
/// manual's EVENTS section shows. A key means the same type in every event.
pub const KEY_TYPES: &[(&str, JsonType)] = &[
    ("ts", JsonType::Time),
    ("ev", JsonType::String),
    ("identity", JsonType::String),
    ("actions", JsonType::Integer),
    ("age_s", JsonType::Integer),
    ("attempt", JsonType::Integer),
    ("backoff_ms", JsonType::Integer),
    ("count", JsonType::Integer),
    ("crash", JsonType::String),
    ("death", JsonType::String),
    ("delivered_at", JsonType::Time),
    ("new_session_id", JsonType::String),
    ("depth", JsonType::Integer),
    ("detail", JsonType::String),
    ("dropped", JsonType::Integer),
    ("done_tasks", JsonType::Integer),
    ("duration_ms", JsonType::Integer),
    ("entry", JsonType::String),
    ("event", JsonType::String),
    ("event_ts", JsonType::Time),
    ("failures", JsonType::Integer),
    ("first_ts", JsonType::Time),
    ("forensics", JsonType::String),
    ("grace_ms", JsonType::Integer),
    ("how", JsonType::String),
    ("idle_s", JsonType::Integer),
    ("interval_s", JsonType::Integer),
    ("killed", JsonType::Integer),
    ("kind", JsonType::String),
    ("last_ts", JsonType::Time),
    ("not_before", JsonType::Time),
    ("orphan_canaries", JsonType::Integer),
    ("orphan_couriers", JsonType::Integer),
    ("orphan_waiters", JsonType::Integer),
    ("path", JsonType::String),
    ("peers", JsonType::Integer),
    ("pids", JsonType::String),
    ("pid", JsonType::Integer),
    ("policy", JsonType::String),
    ("purge", JsonType::Boolean),
    ("reason", JsonType::String),
    ("restarts", JsonType::Integer),
    ("retry", JsonType::Boolean),
    ("runner", JsonType::Boolean),
    ("rotated", JsonType::Integer),
    ("screen", JsonType::String),
    ("server_pid", JsonType::Integer),
    ("session_id", JsonType::String),
    ("signal", JsonType::Integer),
    ("signal_name", JsonType::String),
    ("slot", JsonType::Integer),
    ("socket", JsonType::String),
    ("source", JsonType::String),
    ("timeout_ms", JsonType::Integer),
    ("started_as", JsonType::String),
    ("state", JsonType::String),
    ("stage", JsonType::String),
    ("stale_instances", JsonType::Integer),
    ("stale_sockets", JsonType::Integer),
    ("status", JsonType::Integer),
    ("stopped", JsonType::Boolean),
    ("stopped_servers", JsonType::Integer),
    ("strays", JsonType::Integer),
    ("task", JsonType::String),
    ("tmp_files", JsonType::Integer),
    ("until", JsonType::Time),
    ("updated", JsonType::Boolean),
    ("wait_rc", JsonType::Integer),
    ("when", JsonType::String),
    ("window_s", JsonType::Integer),
];

/// The JSON type of `key` (string for a key not in [`KEY_TYPES`]).
pub fn key_type(key: &str) -> JsonType {
    KEY_TYPES.iter().find(|(k, _)| *k == key).map_or(JsonType::String, |(_, t)| *t)
}

/// One parsed event line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub ts: DateTime<Utc>,
    /// The line as written, without its newline.
    pub raw: String,
    pub pairs: Vec<(String, String)>,
}

impl Record {
    /// Parse a line; `None` unless it has an RFC 3339 `ts` and a non-empty `ev`.
    pub fn parse(line: &str) -> Option<Record> {
        let raw = line.trim_end_matches(['\n', '\r']);
        let pairs = logfmt::parse(raw);
        let ts = DateTime::parse_from_rfc3339(logfmt::get(&pairs, "ts")?).ok()?;
        logfmt::get(&pairs, "ev").filter(|e| !e.is_empty())?;
        Some(Record { ts: ts.with_timezone(&Utc), raw: raw.to_string(), pairs })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        logfmt::get(&self.pairs, key)
    }

    pub fn ev(&self) -> &str {
        self.get("ev").unwrap_or_default()
    }

    pub fn identity(&self) -> Option<&str> {
        self.get("identity")
    }

    /// A JSON object with every key (first wins on a repeated key, as `get`
    /// does), each value typed by [`KEY_TYPES`]: an empty value is
    /// null, a number or boolean is one, and a value that does not parse as
    /// its type stays a string, so nothing is lost.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (k, v) in &self.pairs {
            map.entry(k.clone()).or_insert_with(|| typed(key_type(k), v));
        }
        serde_json::Value::Object(map)
    }
}

/// One logfmt value as JSON of type `ty`. Pure.
pub fn typed(ty: JsonType, v: &str) -> serde_json::Value {
    use serde_json::Value;
    if v.is_empty() {
        return Value::Null;
    }
    match ty {
        JsonType::Integer => v.parse::<i64>().map_or_else(|_| Value::from(v), Value::from),
        JsonType::Boolean => match v {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => Value::from(v),
        },
        JsonType::String | JsonType::Time => Value::from(v),
    }
}

/// Which events to keep.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub identity: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn matches(&self, r: &Record) -> bool {
        let id_ok = self.identity.as_deref().is_none_or(|id| r.identity() == Some(id));
        let time_ok = self.since.is_none_or(|since| r.ts >= since);
        id_ok && time_ok
    }
}

/// Merge several time-ordered (or not) lists into one ordered by `ts`.
/// Stable: equal timestamps keep the order of the lists, then of the lines.
pub fn merge(lists: Vec<Vec<Record>>) -> Vec<Record> {
    let mut all: Vec<Record> = lists.into_iter().flatten().collect();
    all.sort_by_key(|r| r.ts);
    all
}

/// The parseable records of one log file that `filter` keeps, and the
/// offset just past the last complete line (where a follower should
/// continue). A missing file is empty. Only kept records are held in memory.
pub fn read_file(path: &Path, filter: &Filter) -> Result<(Vec<Record>, u64)> {
    let Some(file) = fsutil::open_read(path)? else {
        return Ok((Vec::new(), 0));
    };
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut offset = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        offset += n as u64;
        if let Some(r) = Record::parse(&String::from_utf8_lossy(&line))
            && filter.matches(&r)
        {
            records.push(r);
        }
    }
    Ok((records, offset))
}

/// The two event logs of `root`, in merge order (lifecycle first on ties).
pub fn log_paths(root: &Root) -> [std::path::PathBuf; 2] {
    [root.lifecycle_log(), root.exits_log()]
}

/// Every event under `root` that `filter` keeps, in time order.
pub fn read_all(root: &Root, filter: &Filter) -> Result<Vec<Record>> {
    let mut lists = Vec::new();
    for p in log_paths(root) {
        lists.push(read_file(&p, filter)?.0);
    }
    Ok(merge(lists))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> Record {
        Record::parse(line).unwrap_or_else(|| panic!("should parse: {line}"))
    }

    #[test]
    fn parse_needs_ts_and_ev() {
        assert!(Record::parse("garbage").is_none());
        assert!(Record::parse("").is_none());
        assert!(Record::parse("ts=yesterday ev=x").is_none());
        assert!(Record::parse("ts=2026-11-22T03:04:05Z ev=").is_none());
        assert!(Record::parse("ev=x identity=a").is_none());
        let r = rec("ts=2026-11-22T03:04:05.250Z ev=launch identity=a pid=7\n");
        assert_eq!(r.ev(), "launch");
        assert_eq!(r.identity(), Some("a"));
        assert_eq!(r.raw, "ts=2026-11-22T03:04:05.250Z ev=launch identity=a pid=7");
        assert_eq!(r.ts.timestamp_subsec_millis(), 250);
    }

    /// Issue 10, item 8: every value came out a string (`"pid":"3838"`,
    /// `"updated":"false"`, `"signal":""`).
    #[test]
    fn json_values_have_their_documented_types() {
        use serde_json::json;
        let r = rec(
            r#"ts=2026-11-22T03:04:05Z ev=session-exit identity=a status=3 signal= pid=3838 reason="two words" x=7"#,
        );
        assert_eq!(
            r.to_json(),
            json!({"ts": "2026-11-22T03:04:05Z", "ev": "session-exit", "identity": "a",
                   "status": 3, "signal": null, "pid": 3838, "reason": "two words", "x": "7"})
        );
        let r = rec("ts=2026-11-22T03:04:05Z ev=add identity=a policy=persistent updated=false");
        assert_eq!(r.to_json()["updated"], json!(false));
        let r = rec("ts=2026-11-22T03:04:05Z ev=enqueue identity=a task=t depth=2 retry=1");
        assert_eq!(r.to_json()["retry"], json!(true));
        assert_eq!(r.to_json()["depth"], json!(2));
        assert_eq!(r.to_json()["task"], json!("t"));
        // What does not parse as its type is kept, as a string.
        assert_eq!(typed(JsonType::Integer, "SIGTERM"), json!("SIGTERM"));
        assert_eq!(typed(JsonType::Boolean, "maybe"), json!("maybe"));
        assert_eq!(typed(JsonType::Integer, "-1"), json!(-1));
        assert_eq!(typed(JsonType::Time, ""), json!(null));
    }

    #[test]
    fn merge_orders_by_ts_and_is_stable() {
        let a = vec![
            rec("ts=2026-11-22T03:00:01Z ev=a1"),
            rec("ts=2026-11-22T03:00:03Z ev=a3"),
            rec("ts=2026-11-22T03:00:03Z ev=a3b"),
        ];
        let b = vec![rec("ts=2026-11-22T03:00:02Z ev=b2"), rec("ts=2026-11-22T03:00:03Z ev=b3")];
        let evs: Vec<String> = merge(vec![a, b]).iter().map(|r| r.ev().to_string()).collect();
        assert_eq!(evs, ["a1", "b2", "a3", "a3b", "b3"]);
    }

    #[test]
    fn filter_by_identity_and_since() {
        let r1 = rec("ts=2026-11-22T03:00:01Z ev=x identity=a");
        let r2 = rec("ts=2026-11-22T03:00:05+00:00 ev=x identity=b");
        let r3 = rec("ts=2026-11-22T03:00:09Z ev=tick");
        let f = Filter { identity: Some("a".into()), since: None };
        assert!(f.matches(&r1) && !f.matches(&r2) && !f.matches(&r3));
        let since =
            DateTime::parse_from_rfc3339("2026-11-22T03:00:05Z").unwrap().with_timezone(&Utc);
        let f = Filter { identity: None, since: Some(since) };
        assert!(!f.matches(&r1) && f.matches(&r2) && f.matches(&r3));
    }

    #[test]
    fn read_file_skips_garbage_and_leaves_a_torn_tail() {
        let t = tempfile::Builder::new().prefix("mvev").tempdir_in("/tmp").unwrap();
        let p = t.path().join("l.log");
        let good = "ts=2026-11-22T03:00:01Z ev=a identity=x\n";
        let content =
            format!("{good}not logfmt at all\n\u{0}\u{ff}\n{good}ts=2026-11-22T03:00:02Z ev=torn");
        std::fs::write(&p, content).unwrap();
        let (rs, off) = read_file(&p, &Filter::default()).unwrap();
        assert_eq!(rs.len(), 2);
        let whole = std::fs::read(&p).unwrap();
        assert_eq!(&whole[off as usize..], b"ts=2026-11-22T03:00:02Z ev=torn");
        let only_y = Filter { identity: Some("y".into()), since: None };
        assert_eq!(read_file(&p, &only_y).unwrap(), (Vec::new(), off));
        assert_eq!(read_file(&t.path().join("missing"), &only_y).unwrap().0.len(), 0);
    }
}
