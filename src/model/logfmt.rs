//! Event lines in logfmt, the format of `logs/lifecycle.log` and
//! `logs/exits.log`:
//!
//! ```text
//! ts=2026-11-22T03:04:05.123Z ev=launch identity=claude-bob pid=4242 policy=persistent
//! ```
//!
//! `ts` and `ev` come first, then `identity` where one applies. A value with a
//! space, `=`, `"`, or a non-printable character is double-quoted, with `\"`,
//! `\\`, `\n`, `\r`, `\t` and `\u{..}` escapes; an absent value is written
//! empty (`status=`), as the contract's tables show. Each line
//! goes out in one `write(2)` on an `O_APPEND` descriptor, so concurrent
//! writers never interleave inside a line.
//!
//! After its write, [`Event::append_to`] hands the event to the **append
//! listener**, if one is registered ([`on_append`]). The binary registers
//! the notifier there (`lib::run`, first thing), so every event that is
//! worth a notification wakes it whoever writes it (the queue, the tick, a
//! hook) while this module, part of the model, stays below the lifecycle:
//! it calls what it was given and knows nothing of notifications. Without
//! a listener (unit tests, a library caller) an append only writes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::ground::fsutil;
use crate::model::peer::Identity;

/// What hears of each appended event: the file and the event, after its
/// write. It must not fail or wait (the notifier's only costs a `stat`).
pub type AppendListener = fn(&Path, &Event);

static LISTENER: OnceLock<AppendListener> = OnceLock::new();

/// Register the process's append listener, once, before any event is
/// written (a later call is ignored: there is one notifier per process).
pub fn on_append(listener: AppendListener) {
    let _ = LISTENER.set(listener);
}

/// One event line under construction.
#[derive(Clone, Debug)]
pub struct Event {
    pairs: Vec<(String, String)>,
}

impl Event {
    /// An event stamped now.
    pub fn new(ev: &str) -> Event {
        Event::at(Utc::now(), ev)
    }

    /// An event stamped `ts` (tests use a fixed clock).
    pub fn at(ts: DateTime<Utc>, ev: &str) -> Event {
        Event {
            pairs: vec![
                ("ts".into(), ts.to_rfc3339_opts(SecondsFormat::Millis, true)),
                ("ev".into(), ev.into()),
            ],
        }
    }

    /// Add `identity=<id>`; call it first after `new`.
    pub fn id(self, id: &Identity) -> Event {
        self.kv("identity", id.as_str())
    }

    /// Add one `key=value`.
    pub fn kv(mut self, key: &str, value: impl ToString) -> Event {
        self.pairs.push((key.into(), value.to_string()));
        self
    }

    /// Add `key=value`, or `key=` when absent.
    pub fn opt(self, key: &str, value: Option<impl ToString>) -> Event {
        let v = value.map(|v| v.to_string()).unwrap_or_default();
        self.kv(key, v)
    }

    /// The line, with its trailing newline.
    pub fn line(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(k);
            out.push('=');
            push_value(&mut out, v);
        }
        out.push('\n');
        out
    }

    /// The value of `key`, if the event has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        get(&self.pairs, key)
    }

    /// Its `ev=`.
    pub fn ev(&self) -> &str {
        self.get("ev").unwrap_or_default()
    }

    /// Append the line to `path` in a single write, then hand it to the
    /// append listener, if one is registered ([`on_append`]).
    pub fn append_to(&self, path: &Path) -> Result<()> {
        let line = self.line();
        let mut f = fsutil::open_append(path)?;
        f.write_all(line.as_bytes())
            .with_context(|| format!("appending an event to {}", path.display()))?;
        if let Some(listener) = LISTENER.get() {
            listener(path, self);
        }
        Ok(())
    }
}

fn needs_quotes(v: &str) -> bool {
    v.chars().any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || !is_printable(c))
}

fn is_printable(c: char) -> bool {
    !c.is_control()
}

fn push_value(out: &mut String, v: &str) {
    if !needs_quotes(v) {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !is_printable(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parse one logfmt line into its pairs, in order. Lenient: a malformed tail
/// is dropped rather than failing the whole line.
pub fn parse(line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = line.trim_end_matches(['\n', '\r']).chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('r') => value.push('\r'),
                            Some('t') => value.push('\t'),
                            Some('u') => {
                                let hex: String = chars
                                    .by_ref()
                                    .skip_while(|c| *c == '{')
                                    .take_while(|c| *c != '}')
                                    .collect();
                                if let Some(ch) =
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                                {
                                    value.push(ch);
                                }
                            }
                            Some(other) => value.push(other),
                            None => break,
                        },
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        pairs.push((key, value));
    }
    pairs
}

/// The value of `key` in parsed pairs.
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 3, 4, 5).unwrap()
    }

    #[test]
    fn plain_line_starts_with_ts_ev_identity() {
        let id = Identity::parse("claude-bob").unwrap();
        let l = Event::at(at(), "launch").id(&id).kv("pid", 42).kv("policy", "persistent").line();
        assert_eq!(
            l,
            "ts=2026-11-22T03:04:05.000Z ev=launch identity=claude-bob pid=42 policy=persistent\n"
        );
    }

    #[test]
    fn quoting_and_escapes() {
        let l = Event::at(at(), "x")
            .kv("a", "two words")
            .kv("b", "k=v")
            .kv("c", "say \"hi\"")
            .kv("d", "back\\slash")
            .kv("e", "nl\nx\u{1b}")
            .kv("f", "")
            .line();
        assert!(l.contains(r#"a="two words""#), "{l}");
        assert!(l.contains(r#"b="k=v""#), "{l}");
        assert!(l.contains(r#"c="say \"hi\"""#), "{l}");
        assert!(l.contains(r#"d="back\\slash""#), "{l}");
        assert!(l.contains(r#"e="nl\nx\u{1b}""#), "{l}");
        assert!(l.ends_with(" f=\n"), "{l}");
        assert_eq!(l.matches('\n').count(), 1);
    }

    #[test]
    fn parse_round_trips() {
        let values = ["plain", "two words", "k=v", "q\"uote", "b\\s", "nl\n\t\u{7}", "", "ünï"];
        let mut ev = Event::at(at(), "rt");
        for (i, v) in values.iter().enumerate() {
            ev = ev.kv(&format!("k{i}"), v);
        }
        let pairs = parse(&ev.line());
        assert_eq!(get(&pairs, "ev"), Some("rt"));
        for (i, v) in values.iter().enumerate() {
            assert_eq!(get(&pairs, &format!("k{i}")), Some(*v), "k{i}");
        }
    }
}
