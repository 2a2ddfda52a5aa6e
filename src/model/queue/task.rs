//! The pure parts of the queue: task ids, entry names, the task file format
//! and its checksum, the retry backoff, and what a task becomes in its
//! program's argv (the one `{task}` expansion: `send` measures it, the
//! runner runs it). No I/O here, so every rule the
//! protocol depends on (names sort by sequence, a torn or foreign file is
//! recognised, backoff is capped) is unit-tested without a filesystem.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Largest payload `send` accepts.
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Largest header line we ever write (dedupe keys are capped to keep it so).
pub const MAX_HEADER: usize = 4096;
/// Largest file a queue directory may hold; anything bigger is foreign.
pub const MAX_FILE: u64 = (MAX_PAYLOAD + MAX_HEADER) as u64;
/// Longest dedupe key.
pub const MAX_DEDUPE: usize = 256;

/// FNV-1a, 64 bit: small, well known, good enough to catch torn writes and
/// bit rot (it is not a defence against a deliberate forger, who would need
/// our uid anyway).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A ULID-like task id: 48 bits of milliseconds, 16 bits of a counter (the
/// queue's sequence number, see `new_task_id`), 64 random bits, in 26
/// lowercase Crockford base32 characters. Ids sort by creation time; the
/// counter keeps one queue's ids ordered within a millisecond, the random
/// part keeps queues apart.
pub fn task_id(unix_ms: u64, counter: u16, random: u64) -> String {
    let hi: u128 = (u128::from(unix_ms & 0xffff_ffff_ffff) << 80)
        | (u128::from(counter) << 64)
        | u128::from(random);
    let mut out = [0u8; 26];
    let mut v = hi;
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `s` looks like one of our task ids.
pub fn is_task_id(s: &str) -> bool {
    s.len() == 26 && s.bytes().all(|c| CROCKFORD.contains(&c))
}

/// The name of a task's entry: `<seq:020>.<task-id>`. Zero-padded so that a
/// plain byte sort of a directory listing is sequence order.
pub fn entry_name(seq: u64, task: &str) -> String {
    format!("{seq:020}.{task}")
}

/// `(seq, task-id)` from an entry name, or `None` for anything else
/// (side files like `.reason`, strays, hostile names).
pub fn parse_entry_name(name: &str) -> Option<(u64, &str)> {
    let (seq, task) = name.split_once('.')?;
    if seq.len() != 20 || !seq.bytes().all(|c| c.is_ascii_digit()) || !is_task_id(task) {
        return None;
    }
    Some((seq.parse().ok()?, task))
}

/// The first line of a task file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Format version.
    pub v: u32,
    pub task: String,
    pub seq: u64,
    pub enqueued_at: DateTime<Utc>,
    /// Attempts started so far (0 while never claimed).
    pub attempt: u32,
    /// Not to be started before this time (retry backoff).
    pub not_before: Option<DateTime<Utc>>,
    /// When the current (last) attempt was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub dedupe: Option<String>,
    /// Payload length in bytes.
    pub len: u64,
    /// FNV-1a 64 of the payload, 16 hex digits.
    pub fnv: String,
    /// A mailbox message typed without the final Enter (`send --no-enter`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_enter: bool,
    /// Queued as a mailbox message (`send` to a persistent peer). Only such
    /// entries are ever typed into an agent's pane: a task queued for an
    /// argv worker is data, and stays data whatever the peer becomes later.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub message: bool,
    /// The worker slot that claimed it (`add --workers N`, N > 1): slot
    /// `k` of `1..N`; absent for slot 0, the only slot of one worker, so
    /// the entries of a one-worker queue are what they always were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// Set on every entry written into `new/` (by `send` or a requeue): a
    /// claim for worker slot 0 may then MOVE the entry into `cur/` as it is
    /// (one rename, no new file, no sync before the program starts) instead
    /// of rewriting it. While such an entry is claimed or finished its
    /// header is one claim behind; [`Header::claimed_by_move`] gives the
    /// true one. Absent in entries written by earlier versions, which are
    /// claimed by a rewrite as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub movable: bool,
}

impl Header {
    pub fn new(
        task: &str,
        seq: u64,
        now: DateTime<Utc>,
        dedupe: Option<&str>,
        payload: &[u8],
    ) -> Header {
        Header {
            v: 1,
            task: task.to_string(),
            seq,
            enqueued_at: now,
            attempt: 0,
            not_before: None,
            started_at: None,
            last_error: None,
            dedupe: dedupe.map(str::to_string),
            len: payload.len() as u64,
            fnv: format!("{:016x}", fnv1a64(payload)),
            no_enter: false,
            message: false,
            slot: None,
            movable: true,
        }
    }

    pub fn name(&self) -> String {
        entry_name(self.seq, &self.task)
    }

    /// The header of a `movable` entry read from `cur/`, `done/` or
    /// `dead/`, where a claim moved it unchanged at `moved_at` (the entry's
    /// modification time, which the claim sets): the claim's attempt
    /// counted, its start recorded, and no longer movable (a header written
    /// back from here, into `dead/` say, is the true one). Any other
    /// header is returned as it is.
    pub fn claimed_by_move(mut self, moved_at: DateTime<Utc>) -> Header {
        if self.movable {
            self.attempt += 1;
            self.started_at = Some(moved_at);
            self.movable = false;
        }
        self
    }
}

/// The bytes of a task file: header line, `\n`, payload.
pub fn encode(h: &Header, payload: &[u8]) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec(h).context("encoding a task header")?;
    if out.len() > MAX_HEADER {
        bail!("task header is {} bytes, over the {MAX_HEADER}-byte limit", out.len());
    }
    out.push(b'\n');
    out.extend_from_slice(payload);
    Ok(out)
}

/// Parse and verify a task file read from the entry `name`. Any mismatch is
/// an error whose text becomes the quarantine reason.
pub fn decode(name: &str, bytes: &[u8]) -> Result<(Header, Vec<u8>)> {
    let Some(nl) = bytes.iter().take(MAX_HEADER + 1).position(|b| *b == b'\n') else {
        bail!("no header line in the first {MAX_HEADER} bytes");
    };
    let h: Header = serde_json::from_slice(&bytes[..nl])
        .context("the header line is not a valid task header")?;
    if h.v != 1 {
        bail!("unknown task format version {}", h.v);
    }
    let payload = &bytes[nl + 1..];
    if payload.len() as u64 != h.len {
        bail!("payload is {} bytes, the header says {} (torn write?)", payload.len(), h.len);
    }
    let sum = format!("{:016x}", fnv1a64(payload));
    if sum != h.fnv {
        bail!("payload checksum {sum} does not match the header's {}", h.fnv);
    }
    if h.name() != name {
        bail!("the header names entry {}, but the file is named {name}", h.name());
    }
    Ok((h, payload.to_vec()))
}

/// Capped exponential backoff with "equal jitter": after attempt `n` (1 for
/// the first failure) wait `d/2 + rand(0..=d/2)` with `d = min(base * 2^(n-1),
/// max)`. The jitter keeps many failing identities from retrying in step.
pub fn backoff_delay(base: Duration, max: Duration, attempt: u32, random: u64) -> Duration {
    let exp = attempt.saturating_sub(1).min(32);
    let d = base.saturating_mul(1u32 << exp.min(31)).min(max);
    let half = d / 2;
    let span = half.as_millis() as u64;
    let jitter = if span == 0 { 0 } else { random % (span + 1) };
    half + Duration::from_millis(jitter)
}

/// Check a dedupe key: printable, bounded.
pub fn check_dedupe(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_DEDUPE || key.chars().any(char::is_control) {
        bail!(
            "invalid --dedupe key: it must be 1 to {MAX_DEDUPE} bytes with no control characters"
        );
    }
    Ok(())
}

/// Length of every task id ([`task_id`]).
pub const TASK_ID_LEN: usize = 26;

/// The argv placeholder for the task's text.
pub const TASK_TEXT: &str = "{task}";
/// The argv placeholder for the path of the task's payload file.
pub const TASK_FILE: &str = "{task_file}";

/// Does `command` put the task's text itself into an argument?
pub fn takes_text(command: &[String]) -> bool {
    command.iter().any(|a| a.contains(TASK_TEXT))
}

/// `command` as the program of one task runs: in each argument `{task_file}`
/// is replaced by `file`, then `{task}` by `text`. This is the one
/// expansion: the runner runs it, and `send` measures it before it queues a
/// task, so the two cannot disagree on what a task's argv is. A text that
/// itself holds `{task}` or `{task_file}` is inserted as it is, never
/// expanded again. Pure.
pub fn expand_argv(command: &[String], file: &str, text: &str) -> Vec<String> {
    command.iter().map(|a| a.replace(TASK_FILE, file).replace(TASK_TEXT, text)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn fnv_known_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn ids_sort_by_time_then_counter() {
        let a = task_id(1000, 0, u64::MAX);
        let b = task_id(1000, 1, 0);
        let c = task_id(1001, 0, 0);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(is_task_id(&a));
        assert_eq!(a.len(), 26);
        assert!(!is_task_id("../etc/passwd"));
        assert!(!is_task_id(&a.to_uppercase()));
    }

    #[test]
    fn names_sort_by_sequence_and_round_trip() {
        let id = task_id(5, 0, 7);
        let mut names = [entry_name(10, &id), entry_name(9, &id), entry_name(100, &id)];
        names.sort();
        let seqs: Vec<u64> = names.iter().map(|n| parse_entry_name(n).unwrap().0).collect();
        assert_eq!(seqs, [9, 10, 100]);
        assert_eq!(parse_entry_name(&entry_name(u64::MAX, &id)), Some((u64::MAX, id.as_str())));
        for bad in ["x", "0001.abc", &format!("{}.reason", entry_name(1, &id)), ".hidden", ""] {
            assert_eq!(parse_entry_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let id = task_id(5, 0, 7);
        let payload = b"line one\n'; rm -rf ~ #\x1b[201~";
        let h = Header::new(&id, 42, now(), Some("k"), payload);
        let bytes = encode(&h, payload).unwrap();
        let (h2, p2) = decode(&h.name(), &bytes).unwrap();
        assert_eq!(h2, h);
        assert_eq!(p2, payload);
    }

    #[test]
    fn decode_catches_damage() {
        let id = task_id(5, 0, 7);
        let h = Header::new(&id, 1, now(), None, b"hello");
        let good = encode(&h, b"hello").unwrap();
        let torn = &good[..good.len() - 2];
        assert!(format!("{:#}", decode(&h.name(), torn).unwrap_err()).contains("torn"));
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(format!("{:#}", decode(&h.name(), &flipped).unwrap_err()).contains("checksum"));
        assert!(decode(&entry_name(2, &id), &good).is_err(), "renamed entry");
        assert!(decode(&h.name(), b"garbage\nhello").is_err());
        assert!(decode(&h.name(), &[b'x'; 5000]).is_err());
        assert!(decode(&h.name(), b"").is_err());
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..40 {
            for r in [0, 1, 12345, u64::MAX] {
                let d = backoff_delay(base, max, attempt, r);
                let full = base.saturating_mul(1 << (attempt - 1).min(31)).min(max);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} vs {full:?}");
            }
        }
        assert_eq!(backoff_delay(base, max, 1, 0), Duration::from_millis(500));
        assert_eq!(backoff_delay(base, max, 3, 0), Duration::from_secs(2));
        assert_eq!(backoff_delay(base, max, 30, 0), Duration::from_secs(30));
        assert_eq!(backoff_delay(Duration::ZERO, max, 3, 9), Duration::ZERO);
    }

    #[test]
    fn dedupe_keys_are_checked() {
        assert!(check_dedupe("cron-0900").is_ok());
        assert!(check_dedupe("").is_err());
        assert!(check_dedupe("a\nb").is_err());
        assert!(check_dedupe(&"k".repeat(300)).is_err());
    }

    #[test]
    fn the_argv_expansion_inserts_a_hostile_text_verbatim() {
        let cmd: Vec<String> =
            ["sh", "-c", "{task}", "sh", "--in={task_file}", "{task}{task}", "plain"]
                .iter()
                .map(|a| a.to_string())
                .collect();
        let text = "{task_file} {task} $(id) `id` \"'\\ \n\t;|&<>*? é \u{202e}";
        let got = expand_argv(&cmd, "/r/queues/w/work/x", text);
        assert_eq!(got[2], text, "not expanded again");
        assert_eq!(got[4], "--in=/r/queues/w/work/x");
        assert_eq!(got[5], format!("{text}{text}"));
        assert_eq!(got[6], "plain");
        assert!(takes_text(&cmd));
        assert!(!takes_text(&cmd[3..5]));
        assert_eq!(task_id(0, 0, 0).len(), TASK_ID_LEN);
    }
}
