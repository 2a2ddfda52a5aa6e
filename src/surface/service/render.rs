//! Pure renderers for what `service install` writes: the launchd plist, the
//! systemd user service and timer, and the crontab line. Each format has its
//! own quoting language (XML, systemd's C-like quoting with `%` specifiers and
//! `$` expansion, POSIX sh plus cron's `%`), so each renderer quotes for its
//! own and is unit-tested with hostile paths.

use super::Spec;

/// The launchd label, also the plist's file stem.
pub const LAUNCHD_LABEL: &str = "io.muxvisor.supervise";
/// The systemd unit names (one service, one timer).
pub const SYSTEMD_SERVICE: &str = "muxvisor-supervise.service";
pub const SYSTEMD_TIMER: &str = "muxvisor-supervise.timer";
/// The tag that marks files and lines written by `service install`;
/// uninstall touches only what carries it.
pub const MARK: &str = "muxvisor-supervise";

/// The argv the service runs: `<exe> supervise --once --root <root>`, then
/// any admission options given to `service install`.
pub fn argv(spec: &Spec) -> Vec<String> {
    let mut v = vec![
        spec.exe.clone(),
        "supervise".into(),
        "--once".into(),
        "--root".into(),
        spec.root.clone(),
    ];
    v.extend(spec.extra.iter().cloned());
    v
}

/// Escape text for XML character data and attribute values.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The LaunchAgent plist. No `ProcessType`: `Background` would give the
/// tick, and the tmux servers, agents and canaries it starts, background
/// CPU and I/O throttling; unset is launchd's `Standard`.
pub fn plist(spec: &Spec) -> String {
    let args: String =
        argv(spec).iter().map(|a| format!("    <string>{}</string>\n", xml(a))).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `muxvisor service install` ({MARK}); `muxvisor service uninstall` removes it. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{label}</string>
  <key>ProgramArguments</key>
  <array>
{args}  </array>
  <key>StartInterval</key>
  <integer>{interval}</integer>
  <key>RunAtLoad</key>
  <true/>
  <key>EnvironmentVariables</key>
  <dict>
    <key>PATH</key>
    <string>{path}</string>
{env}  </dict>
  <key>Umask</key>
  <integer>63</integer>
  <key>StandardOutPath</key>
  <string>{out}</string>
  <key>StandardErrorPath</key>
  <string>{err}</string>
</dict>
</plist>
"#,
        label = LAUNCHD_LABEL,
        interval = spec.interval_s,
        path = xml(&spec.path),
        env = spec
            .env
            .iter()
            .map(|(k, v)| format!("    <key>{}</key>\n    <string>{}</string>\n", xml(k), xml(v)))
            .collect::<String>(),
        out = xml(&spec.stdout_log),
        err = xml(&spec.stderr_log),
    )
}

/// Quote one word for a systemd unit file: double quotes with C escapes,
/// `%` doubled (specifier expansion) and, when `dollar` is set (ExecStart=),
/// `$` doubled (environment variable expansion).
pub fn systemd_word(s: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The systemd user service: one tick, run by the timer.
pub fn systemd_service(spec: &Spec) -> String {
    let exec: Vec<String> = argv(spec).iter().map(|a| systemd_word(a, true)).collect();
    format!(
        "# Written by `muxvisor service install` ({MARK}); `muxvisor service uninstall` removes it.\n\
         [Unit]\n\
         Description=muxvisor supervision tick (root {root})\n\
         Documentation=man:muxvisor(1)\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         Environment={env}\n\
         {more}\
         ExecStart={exec}\n",
        root = spec.root.replace('%', "%%"),
        env = systemd_word(&format!("PATH={}", spec.path), false),
        more = spec
            .env
            .iter()
            .map(|(k, v)| format!("Environment={}\n", systemd_word(&format!("{k}={v}"), false)))
            .collect::<String>(),
        exec = exec.join(" "),
    )
}

/// The systemd user timer that starts the service every interval.
pub fn systemd_timer(spec: &Spec) -> String {
    format!(
        "# Written by `muxvisor service install` ({MARK}); `muxvisor service uninstall` removes it.\n\
         [Unit]\n\
         Description=Run the muxvisor tick every {i}s\n\
         Documentation=man:muxvisor(1)\n\
         \n\
         [Timer]\n\
         OnBootSec={i}s\n\
         OnUnitActiveSec={i}s\n\
         AccuracySec=1s\n\
         Persistent=true\n\
         Unit={SYSTEMD_SERVICE}\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        i = spec.interval_s,
    )
}

/// Escape cron's `%` (which cron turns into a newline) after shell quoting.
fn cron_escape(s: &str) -> String {
    s.replace('%', "\\%")
}

/// The marker comment that ends the crontab line for `root`.
pub fn cron_marker(root: &str) -> String {
    cron_escape(&format!("# {MARK} root={root}"))
}

/// The cron schedule for an interval, or why cron cannot express it evenly.
pub fn cron_schedule(interval_s: u64) -> Result<String, String> {
    if interval_s < 60 || !interval_s.is_multiple_of(60) {
        return Err(format!(
            "cron runs at most once a minute and only on whole minutes; --interval {interval_s}s \
             cannot be installed with --cron. Use --interval 60s (or a whole number of minutes), \
             or use --systemd / --launchd for shorter intervals"
        ));
    }
    let min = interval_s / 60;
    if min == 1 {
        return Ok("* * * * *".into());
    }
    if min < 60 && 60 % min == 0 {
        return Ok(format!("*/{min} * * * *"));
    }
    let hours = min / 60;
    if min.is_multiple_of(60) && hours < 24 && 24 % hours == 0 {
        return Ok(if hours == 1 { "0 * * * *".into() } else { format!("0 */{hours} * * *") });
    }
    if min == 24 * 60 {
        return Ok("0 0 * * *".into());
    }
    Err(format!(
        "cron cannot run every {min} minutes evenly; use an interval that divides an hour \
         (1m 2m 3m 4m 5m 6m 10m 12m 15m 20m 30m) or a day (1h 2h 3h 4h 6h 8h 12h 1d), \
         or use --systemd"
    ))
}

/// The one crontab line: schedule, PATH, the tick with its output appended to
/// the root's logs, and the marker naming the root.
pub fn cron_line(spec: &Spec) -> Result<String, String> {
    let schedule = cron_schedule(spec.interval_s)?;
    let q = crate::tmux::quote::sh;
    let cmd: Vec<String> = argv(spec).iter().map(|a| q(a)).collect();
    let env: String = spec.env.iter().map(|(k, v)| format!("{k}={} ", q(v))).collect();
    let body = format!(
        "umask 077; PATH={} {env}{} >>{} 2>>{}",
        q(&spec.path),
        cmd.join(" "),
        q(&spec.stdout_log),
        q(&spec.stderr_log)
    );
    Ok(format!("{schedule} {} {}", cron_escape(&body), cron_marker(&spec.root)))
}

/// Undo [`xml`].
fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The PATH written into an installed entry of `kind` (the file's content, or
/// for cron our crontab line), so doctor can check what the tick will find.
pub fn path_from(kind: super::Kind, content: &str) -> Option<String> {
    use super::Kind;
    match kind {
        Kind::Launchd => {
            let rest = &content[content.find("<key>PATH</key>")?..];
            let start = rest.find("<string>")? + "<string>".len();
            let end = rest[start..].find("</string>")? + start;
            Some(xml_unescape(&rest[start..end]))
        }
        Kind::Systemd => {
            let line = content.lines().find(|l| l.starts_with("Environment=\"PATH="))?;
            let inner = line.strip_prefix("Environment=\"PATH=")?.strip_suffix('"')?;
            let mut out = String::new();
            let mut chars = inner.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    '%' if chars.peek() == Some(&'%') => {
                        chars.next();
                        out.push('%');
                    }
                    c => out.push(c),
                }
            }
            Some(out)
        }
        Kind::Cron => {
            let line = content.replace("\\%", "%");
            let rest = &line[line.find("PATH='")? + "PATH=".len()..];
            sh_word(rest).map(|(w, _)| w)
        }
    }
}

/// The muxvisor binary an installed entry of `kind` runs (the first word of
/// its command), so doctor can tell when it is gone (moved by an upgrade).
pub fn exe_from(kind: super::Kind, content: &str) -> Option<String> {
    use super::Kind;
    match kind {
        Kind::Launchd => {
            let rest = &content[content.find("<key>ProgramArguments</key>")?..];
            let start = rest.find("<string>")? + "<string>".len();
            let end = rest[start..].find("</string>")? + start;
            Some(xml_unescape(&rest[start..end]))
        }
        Kind::Systemd => {
            let line = content.lines().find(|l| l.starts_with("ExecStart=\""))?;
            let mut out = String::new();
            let mut chars = line.strip_prefix("ExecStart=\"")?.chars();
            loop {
                match chars.next()? {
                    '"' => return Some(out),
                    '\\' => out.push(chars.next()?),
                    c @ ('%' | '$') => {
                        // Written doubled: `%%`, `$$`.
                        chars.next()?;
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
        }
        Kind::Cron => {
            let line = content.replace("\\%", "%");
            let rest = &line[line.find("PATH='")? + "PATH=".len()..];
            let (_, mut rest) = sh_word(rest)?;
            // Then the settings, `NAME='value' `, then the binary's word.
            loop {
                rest = rest.strip_prefix(' ')?;
                match rest.split_once('=') {
                    Some((name, value))
                        if !name.is_empty()
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                    {
                        rest = sh_word(value)?.1;
                    }
                    _ => return sh_word(rest).map(|(w, _)| w),
                }
            }
        }
    }
}

/// One word as [`crate::tmux::quote::sh`] writes it (`'...'`, with `'\''`
/// for a quote) at the start of `s`: the word and the text after it.
fn sh_word(s: &str) -> Option<(String, &str)> {
    let mut rest = s.strip_prefix('\'')?;
    let mut out = String::new();
    loop {
        let end = rest.find('\'')?;
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        match rest.strip_prefix("'\\''") {
            Some(r) => {
                out.push('\'');
                rest = r;
            }
            None => return Some((out, &rest[1..])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(root: &str) -> Spec {
        Spec {
            exe: "/opt/mv bin/muxvisor".into(),
            root: root.into(),
            interval_s: 60,
            path: "/usr/local/bin:/usr/bin:/bin".into(),
            stdout_log: format!("{root}/logs/service.out"),
            stderr_log: format!("{root}/logs/service.err"),
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Issue #19 item 8: the entry dropped `MUXVISOR_TMUX`, so the installed
    /// tick ran another tmux than the one chosen. Every format carries the
    /// settings, quoted for its own language.
    #[test]
    fn every_format_carries_the_settings_chosen_at_install() {
        let mut s = spec("/r");
        s.env = vec![
            ("MUXVISOR_TMUX".into(), "/opt/tmux 3.5/bin/tmux".into()),
            ("MUXVISOR_LOG_MAX".into(), "5%".into()),
        ];
        let p = plist(&s);
        assert!(
            p.contains("<key>MUXVISOR_TMUX</key>\n    <string>/opt/tmux 3.5/bin/tmux</string>")
        );
        let u = systemd_service(&s);
        assert!(u.contains("Environment=\"MUXVISOR_TMUX=/opt/tmux 3.5/bin/tmux\"\n"), "{u}");
        assert!(u.contains("Environment=\"MUXVISOR_LOG_MAX=5%%\"\n"), "{u}");
        let c = cron_line(&s).unwrap();
        assert!(c.contains("MUXVISOR_TMUX='/opt/tmux 3.5/bin/tmux' "), "{c}");
        assert!(c.contains("MUXVISOR_LOG_MAX='5\\%'"), "{c}");
        // The PATH readers still find the PATH.
        assert_eq!(path_from(super::super::Kind::Systemd, &u).as_deref(), Some(s.path.as_str()));
        assert_eq!(path_from(super::super::Kind::Cron, &c).as_deref(), Some(s.path.as_str()));
    }

    #[test]
    fn xml_escapes_markup() {
        assert_eq!(xml(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        let p = plist(&spec("/r/<x>&"));
        assert!(p.contains("<string>/r/&lt;x&gt;&amp;</string>"), "{p}");
        assert!(!p.contains("<x>"), "{p}");
        assert!(p.contains("<integer>60</integer>"));
        assert!(!p.contains("ProcessType"), "no Background throttling: {p}");
    }

    #[test]
    fn systemd_words_escape_specifiers_and_variables() {
        assert_eq!(systemd_word(r#"a b"c\d%e$f"#, true), r#""a b\"c\\d%%e$$f""#);
        assert_eq!(systemd_word("$x", false), "\"$x\"");
        let s = systemd_service(&spec("/r/100%"));
        assert!(s.contains("ExecStart=\"/opt/mv bin/muxvisor\" \"supervise\" \"--once\""), "{s}");
        assert!(s.contains("\"--root\" \"/r/100%%\""), "{s}");
        assert!(s.contains("Type=oneshot"));
        assert!(s.contains("Environment=\"PATH=/usr/local/bin:/usr/bin:/bin\""), "{s}");
        let t = systemd_timer(&Spec { interval_s: 90, ..spec("/r") });
        for l in
            ["OnBootSec=90s", "OnUnitActiveSec=90s", "Persistent=true", "WantedBy=timers.target"]
        {
            assert!(t.contains(l), "{l} in {t}");
        }
    }

    #[test]
    fn cron_schedules() {
        assert_eq!(cron_schedule(60).unwrap(), "* * * * *");
        assert_eq!(cron_schedule(300).unwrap(), "*/5 * * * *");
        assert_eq!(cron_schedule(3600).unwrap(), "0 * * * *");
        assert_eq!(cron_schedule(7200).unwrap(), "0 */2 * * *");
        assert_eq!(cron_schedule(86400).unwrap(), "0 0 * * *");
        assert!(cron_schedule(30).unwrap_err().contains("at most once a minute"));
        assert!(cron_schedule(90).unwrap_err().contains("whole minutes"));
        assert!(cron_schedule(7 * 60).unwrap_err().contains("evenly"));
    }

    #[test]
    fn cron_line_quotes_for_sh_and_escapes_percent() {
        let l = cron_line(&spec("/r/it's 50%")).unwrap();
        // umask first: the shell creates the log files, and they must be 0600.
        assert!(l.starts_with("* * * * * umask 077; PATH='/usr/local/bin:/usr/bin:/bin' "), "{l}");
        assert!(l.contains("'/opt/mv bin/muxvisor' 'supervise' '--once' '--root'"), "{l}");
        assert!(l.contains("'/r/it'\\''s 50\\%'"), "{l}");
        assert!(l.ends_with("# muxvisor-supervise root=/r/it's 50\\%"), "{l}");
        assert!(!l.contains('\n'));
        // Every % that reaches cron is escaped.
        assert_eq!(l.matches('%').count(), l.matches("\\%").count());
    }

    #[test]
    fn path_reads_back_from_every_format() {
        use crate::surface::service::Kind;
        let odd = "/a b:/c'd:/e%f:/g\\h:/i\"j:/k&<l>";
        let sp = Spec { path: odd.into(), ..spec("/r") };
        assert_eq!(path_from(Kind::Launchd, &plist(&sp)).as_deref(), Some(odd));
        assert_eq!(path_from(Kind::Systemd, &systemd_service(&sp)).as_deref(), Some(odd));
        assert_eq!(path_from(Kind::Cron, &cron_line(&sp).unwrap()).as_deref(), Some(odd));
        assert_eq!(path_from(Kind::Systemd, "[Service]\n"), None);
    }

    /// Issue #19 item 4: doctor names the binary an installed entry runs, so
    /// it can say when an upgrade moved it away.
    #[test]
    fn the_binary_reads_back_from_every_format() {
        use crate::surface::service::Kind;
        for exe in ["/opt/mv bin/muxvisor", "/a'b/100%/$HOME/\"x\"/<m>&/muxvisor"] {
            let mut sp = Spec { exe: exe.into(), ..spec("/r") };
            sp.env = vec![("MUXVISOR_TMUX".into(), "/t 'x'=y".into())];
            assert_eq!(exe_from(Kind::Launchd, &plist(&sp)).as_deref(), Some(exe));
            assert_eq!(exe_from(Kind::Systemd, &systemd_service(&sp)).as_deref(), Some(exe));
            assert_eq!(exe_from(Kind::Cron, &cron_line(&sp).unwrap()).as_deref(), Some(exe));
            sp.env.clear();
            assert_eq!(exe_from(Kind::Cron, &cron_line(&sp).unwrap()).as_deref(), Some(exe));
        }
        assert_eq!(exe_from(Kind::Systemd, "[Service]\n"), None);
    }
}
