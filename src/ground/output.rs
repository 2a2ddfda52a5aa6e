//! Printing results: exactly one JSON document with `--json`, human lines
//! otherwise. A reader that went away (a closed pipe, `muxvisor status |
//! head -1`; a terminal that hung up, as the pane's own terminal does under
//! `restart` run from inside the peer) never stops the work a command is
//! doing: such a write is dropped, and so is a diagnostic nobody can read.
//!
//! Everything printed here may hold text muxvisor did not write: a reason
//! from an agent's hook or screen, a payload, a file name, an error that
//! quotes one. A terminal acts on control characters (`ESC ] 0;` sets the
//! window title, `ESC ] 52;` writes the clipboard, a newline starts a fake
//! row), so this is the one place that makes them inert:
//! - [`line`] and [`warn`] print control characters other than newline and
//!   tab as `\u{1b}`: newline and tab are the layout of multi-line output;
//! - [`inert_line`] is for a value inside a one-line layout (a table cell, a
//!   list entry): newline, tab and carriage return become `\n`, `\t`, `\r`
//!   too, so a value can never break the line it sits in;
//! - [`json`] escapes DEL and the C1 controls (U+0080..U+009F, which some
//!   terminals read as `CSI`, `OSC`, ...) as `\u007f`, `\u009b`: serde_json
//!   escapes only the C0 controls.
//!
//! Only `screen --raw` and `logs --raw` print a pane's bytes as written, by
//! design (their own stdout, not through here).

use std::borrow::Cow;
use std::io::{self, Write};

use anyhow::Result;
use serde::Serialize;

/// Print `value` as one JSON document and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let doc = json_string(value)?;
    let mut out = std::io::stdout().lock();
    unread(
        out.write_all(doc.as_bytes()).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush()),
    )
}

/// A write's result, with "nobody reads this any more" (EPIPE, and EIO from
/// a terminal that hung up) taken as done: the command's work goes on.
fn unread(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe || e.raw_os_error() == Some(libc::EIO) => {
            Ok(())
        }
        other => Ok(other?),
    }
}

/// `value` as compact JSON with every control character escaped (one line
/// of JSON Lines, or the document [`json`] prints).
pub fn json_string<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, InertFormatter);
    value.serialize(&mut ser)?;
    // serde_json writes UTF-8 only.
    Ok(String::from_utf8(buf)?)
}

/// Print one human line (control characters made inert, see the module doc).
pub fn line(s: impl AsRef<str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    unread(out.write_all(inert(s.as_ref()).as_bytes()).and_then(|_| out.write_all(b"\n")))
}

/// A diagnostic on stderr, prefixed `muxvisor: ` (control characters made
/// inert). A stderr nobody reads any more is no reason to fail (`eprintln!`
/// would panic).
pub fn warn(s: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr().lock(), "muxvisor: {}", inert(s.as_ref()));
}

/// `s` with control characters other than newline and tab shown as
/// `\u{..}`.
pub fn inert(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` made safe inside one line: every control character escaped,
/// newline, tab and carriage return as `\n`, `\t`, `\r`.
pub fn inert_line(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, one_line: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && (one_line || (c != '\n' && c != '\t'));
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            _ if !bad(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.extend(c.escape_unicode()),
        }
    }
    Cow::Owned(out)
}

/// serde_json's compact formatter, with DEL and C1 controls escaped too.
struct InertFormatter;

impl serde_json::ser::Formatter for InertFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(|c: char| c.is_control()) {
            writer.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod unread_tests {
    use super::*;

    #[test]
    fn a_reader_that_went_away_is_no_error() {
        assert!(unread(Err(io::Error::from(io::ErrorKind::BrokenPipe))).is_ok());
        assert!(unread(Err(io::Error::from_raw_os_error(libc::EIO))).is_ok());
        assert!(unread(Err(io::Error::from_raw_os_error(libc::ENOSPC))).is_err());
        assert!(unread(Ok(())).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inert_escapes_terminal_controls_but_keeps_the_layout() {
        assert_eq!(inert("a\x1b[2Jb\n\tc"), "a\\u{1b}[2Jb\n\tc");
        assert_eq!(
            inert("\x1b]52;c;eA==\x07\u{9b}1m\x7f"),
            "\\u{1b}]52;c;eA==\\u{7}\\u{9b}1m\\u{7f}"
        );
        assert!(matches!(inert("plain ✓ text"), Cow::Borrowed(_)));
    }

    #[test]
    fn inert_line_keeps_a_value_on_its_line() {
        assert_eq!(
            inert_line("one\ntwo\tthree\r\x1b]0;t\x07"),
            "one\\ntwo\\tthree\\r\\u{1b}]0;t\\u{7}"
        );
    }

    #[test]
    fn json_escapes_every_control_character() {
        let v = serde_json::json!({"k": "a\x1b[31m\x7f\u{9b}\u{85}b\n", "n": 1});
        let s = json_string(&v).unwrap();
        assert_eq!(s, r#"{"k":"a\u001b[31m\u007f\u009b\u0085b\n","n":1}"#);
        assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b) || b >= 0x80), "{s:?}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}
