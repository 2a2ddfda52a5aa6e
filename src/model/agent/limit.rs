//! Usage-limit parking (SPEC §9): an agent blocked with reason
//! `usage-limit` is parked until the reset time its screen shows. This
//! module reads that time (pure, table-tested); `agent::watch` stores it,
//! `agent::classify` treats the notice as stale once it has passed (the notice
//! stays in the transcript after the limit resets), and the tick then
//! delivers again (and, if configured, queues a "continue" message).
//!
//! The formats, as the presets document them: Claude Code `resets 4:20pm
//! (Asia/Tbilisi)`, `resets 10pm`; Codex `try again at 3:28 PM.`, `try again
//! at Aug 8th, 2026 12:30 PM.`, `try again in 3 days 6 hours 57 minutes.`;
//! Gemini `Access resets at 3:45 PM PDT.`. A clock time is taken in the IANA
//! zone the text names in parentheses (Claude Code prints the account's
//! zone, which need not be the machine's), else in the machine's own time
//! zone (the agent runs here, and prints local time; an abbreviation such
//! as `PDT` is ambiguous and not converted), as its next occurrence unless
//! a date is given. The screen shows minutes at most, and the limit resets
//! somewhere within the minute shown: the time read is the END of that
//! minute, so an agent is never unparked early.

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::OnceLock;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("a fixed pattern compiles"))
}

/// The reset time in `text` (the part a preset's reset pattern captured,
/// or a whole screen line), relative to `now`: in the IANA zone the text
/// names in parentheses, else in `now`'s zone. The end of the minute shown.
pub fn parse_reset<Tz: TimeZone>(text: &str, now: DateTime<Tz>) -> Option<DateTime<Utc>> {
    static ZONE: OnceLock<Regex> = OnceLock::new();
    let zone = re(&ZONE, r"\(([A-Za-z_]+(?:/[A-Za-z0-9_+-]+)+|UTC)\)");
    let shown = match zone.captures(text).and_then(|c| c[1].parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => parse_shown(text, now.with_timezone(&tz)),
        None => parse_shown(text, now),
    };
    shown.map(|t| t + Duration::minutes(1))
}

/// The minute `text` shows, in `now`'s zone.
fn parse_shown<Tz: TimeZone>(text: &str, now: DateTime<Tz>) -> Option<DateTime<Utc>> {
    static REL: OnceLock<Regex> = OnceLock::new();
    static CLOCK: OnceLock<Regex> = OnceLock::new();
    static DATE: OnceLock<Regex> = OnceLock::new();
    let rel = re(
        &REL,
        r"(?i)\bin\s+(?:(\d+)\s*days?)?[\s,]*(?:(\d+)\s*h(?:ours?)?)?[\s,]*(?:(\d+)\s*m(?:in(?:utes?)?)?)?",
    );
    if let Some(c) = rel.captures(text) {
        let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i64>().ok()).unwrap_or(0);
        let secs = n(1) * 86_400 + n(2) * 3_600 + n(3) * 60;
        if secs > 0 {
            return Some(now.with_timezone(&Utc) + Duration::seconds(secs));
        }
    }
    let clock = re(&CLOCK, r"(?i)\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\b");
    let c = clock.captures(text)?;
    let mut hour: u32 = c[1].parse().ok()?;
    let minute: u32 = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
    if hour == 0 || hour > 12 || minute > 59 {
        return None;
    }
    let pm = c[3].eq_ignore_ascii_case("p");
    hour = match (hour, pm) {
        (12, false) => 0,
        (12, true) => 12,
        (h, true) => h + 12,
        (h, false) => h,
    };
    let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
    let tz = now.timezone();
    let date = re(
        &DATE,
        r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})",
    );
    if let Some(d) = date.captures(text) {
        let months =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let month = months.iter().position(|m| *m == &d[1])? as u32 + 1;
        let day = NaiveDate::from_ymd_opt(d[3].parse().ok()?, month, d[2].parse().ok()?)?;
        let at = tz.from_local_datetime(&day.and_time(time)).earliest()?;
        return Some(at.with_timezone(&Utc));
    }
    let today = now.date_naive();
    for offset in 0..2 {
        let day = today + Duration::days(offset);
        if let Some(at) = tz.from_local_datetime(&day.and_time(time)).earliest()
            && at > now
        {
            return Some(at.with_timezone(&Utc));
        }
    }
    None
}

/// [`parse_reset`] in this machine's time zone, now.
pub fn parse_reset_local(text: &str) -> Option<DateTime<Utc>> {
    parse_reset(text, Local::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        at(s).with_timezone(&Utc)
    }

    #[test]
    fn clock_times_are_the_end_of_the_minute_shown_at_its_next_occurrence() {
        let now = at("2026-11-30T13:00:00+04:00");
        let cases = [
            ("resets 4:20pm (Asia/Tbilisi)", "2026-11-30T16:21:00+04:00"),
            ("resets 10pm", "2026-11-30T22:01:00+04:00"),
            ("resets 9am", "2026-12-01T09:01:00+04:00"),
            ("try again at 3:28 PM.", "2026-11-30T15:29:00+04:00"),
            ("Access resets at 12:15 AM PDT.", "2026-12-01T00:16:00+04:00"),
            ("resets 12pm", "2026-12-01T12:01:00+04:00"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_reset(text, now), Some(utc(want)), "{text}");
        }
    }

    /// Issue 18 item 7: `resets 11pm (Asia/Tbilisi)` on a UTC machine was
    /// parked until 23:00 UTC; Tbilisi is UTC+4, so the reset is 19:00 UTC.
    #[test]
    fn an_iana_zone_in_the_notice_is_the_zone_of_its_clock_time() {
        let now = at("2026-11-30T10:00:00+00:00");
        let cases = [
            ("resets 11pm (Asia/Tbilisi)", "2026-11-30T19:01:00+00:00"),
            ("resets 4:20pm (America/New_York)", "2026-11-30T21:21:00+00:00"),
            ("Your limit will reset at 3pm (America/New_York).", "2026-11-30T20:01:00+00:00"),
            ("resets 9am (UTC)", "2026-12-01T09:01:00+00:00"),
            // Already past in that zone today: tomorrow there.
            ("resets 1pm (Asia/Tbilisi)", "2026-12-01T09:01:00+00:00"),
            // An unknown zone name: the machine's zone.
            ("resets 11pm (Mars/Olympus_Mons)", "2026-11-30T23:01:00+00:00"),
        ];
        for (text, want) in cases {
            assert_eq!(parse_reset(text, now), Some(utc(want)), "{text}");
        }
    }

    #[test]
    fn dates_and_durations() {
        let now = at("2026-08-01T10:00:00+00:00");
        assert_eq!(
            parse_reset("try again at Aug 8th, 2026 12:30 PM.", now),
            Some(utc("2026-08-08T12:31:00+00:00"))
        );
        assert_eq!(
            parse_reset("try again in 3 days 6 hours 57 minutes.", now),
            Some(utc("2026-08-04T16:58:00+00:00"))
        );
        assert_eq!(
            parse_reset("try again in 45 minutes", now),
            Some(utc("2026-08-01T10:46:00+00:00"))
        );
        for bad in ["", "no time here", "resets 13pm", "at 99:00"] {
            assert_eq!(parse_reset(bad, now), None, "{bad}");
        }
    }
}
