//! Pure edits of a user's crontab text. The user's own lines are sacred: we
//! add one line and remove only lines that carry our marker for this root AND
//! run the tick for this root, so a hostile or odd root path that happens to
//! contain another root's marker cannot make us delete someone else's line.

use super::render::cron_marker;

/// True when `line` is the entry `service install` wrote for `root`.
pub fn is_ours(line: &str, root: &str) -> bool {
    let line = line.trim_end();
    let runs_this_root =
        format!("'--root' {} >>", crate::tmux::quote::sh(root).replace('%', "\\%"));
    line.ends_with(&format!(" {}", cron_marker(root))) && line.contains(&runs_this_root)
}

/// Our entries for `root` in `crontab`.
pub fn entries<'a>(crontab: &'a str, root: &str) -> Vec<&'a str> {
    crontab.lines().filter(|l| is_ours(l, root)).collect()
}

/// `crontab` without our entries for `root`, and how many were removed.
/// Every other line (comments, blank lines, other roots) is kept verbatim.
pub fn without(crontab: &str, root: &str) -> (String, usize) {
    let mut out = String::with_capacity(crontab.len());
    let mut removed = 0;
    for line in crontab.split_inclusive('\n') {
        if is_ours(line.trim_end_matches('\n'), root) {
            removed += 1;
        } else {
            out.push_str(line);
        }
    }
    (out, removed)
}

/// `crontab` with exactly one entry `line` for `root` (replacing any older
/// one in place of the first, else appended), ending with a newline as cron
/// requires.
pub fn with(crontab: &str, root: &str, line: &str) -> String {
    let mut out = String::with_capacity(crontab.len() + line.len() + 1);
    let mut placed = false;
    for l in crontab.split_inclusive('\n') {
        if is_ours(l.trim_end_matches('\n'), root) {
            if !placed {
                out.push_str(line);
                out.push('\n');
                placed = true;
            }
        } else {
            out.push_str(l);
        }
    }
    if !placed {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surface::service::Spec;
    use crate::surface::service::render::cron_line;

    fn line(root: &str) -> String {
        cron_line(&Spec {
            exe: "/bin/mv".into(),
            root: root.into(),
            interval_s: 60,
            path: "/usr/bin:/bin".into(),
            stdout_log: format!("{root}/logs/service.out"),
            stderr_log: format!("{root}/logs/service.err"),
            extra: Vec::new(),
            env: Vec::new(),
        })
        .unwrap()
    }

    const USER: &str = "# my jobs\nMAILTO=me\n0 3 * * * /usr/bin/backup # nightly\n\n";

    #[test]
    fn add_is_idempotent_and_keeps_user_lines() {
        let once = with(USER, "/r", &line("/r"));
        let twice = with(&once, "/r", &line("/r"));
        assert_eq!(once, twice);
        assert!(once.starts_with(USER));
        assert_eq!(entries(&once, "/r").len(), 1);
        let (back, n) = without(&twice, "/r");
        assert_eq!((back.as_str(), n), (USER, 1));
    }

    #[test]
    fn roots_do_not_touch_each_other() {
        let both = with(&with(USER, "/r", &line("/r")), "/r/a", &line("/r/a"));
        assert_eq!(entries(&both, "/r").len(), 1);
        assert_eq!(entries(&both, "/r/a").len(), 1);
        let (only_a, n) = without(&both, "/r");
        assert_eq!(n, 1);
        assert_eq!(entries(&only_a, "/r/a").len(), 1);
    }

    #[test]
    fn a_root_containing_another_roots_marker_is_not_confused() {
        let hostile = "/a # muxvisor-supervise root=/b";
        let ct = with("", hostile, &line(hostile));
        assert!(entries(&ct, "/b").is_empty(), "{ct}");
        assert_eq!(without(&ct, "/b").1, 0);
        assert_eq!(without(&ct, hostile).1, 1);
    }

    #[test]
    fn missing_final_newline_is_repaired() {
        let ct = with("0 1 * * * x", "/r", &line("/r"));
        assert!(ct.starts_with("0 1 * * * x\n"));
        assert!(ct.ends_with('\n'));
        assert_eq!(with("", "/r", &line("/r")).lines().count(), 1);
    }

    #[test]
    fn replacing_an_old_entry_keeps_its_place() {
        let old = with(USER, "/r", &line("/r"));
        let ct = format!("{old}5 5 * * * later\n");
        let newer = line("/r").replacen("* * * * *", "*/5 * * * *", 1);
        let ct2 = with(&ct, "/r", &newer);
        assert!(ct2.ends_with("5 5 * * * later\n"), "{ct2}");
        assert_eq!(entries(&ct2, "/r"), [newer.as_str()]);
    }
}
