//! The man pages under `man/` and the completion scripts under `completions/`
//! are generated from the clap definitions (plus `muxvisor::surface::manual` for the
//! sections clap cannot know) and checked in. These tests fail when a checked-in
//! copy drifts from what the code generates; `MUXVISOR_REGEN=1 cargo test --test
//! it docs::` rewrites them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use std::time::Duration;

use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use muxvisor::surface::commands::completions;
use muxvisor::surface::manual::{self, Block, pages};

use crate::fixture::*;

const REGEN: &str = "MUXVISOR_REGEN=1 cargo test --test it docs::";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CLI as the generators see it (and as `--help` shows it, with each
/// page's contract attached): built, without clap's `help` subcommand.
fn command() -> clap::Command {
    let mut cmd = muxvisor::surface::cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Render manual sections as roff, without the apostrophe preamble (the page
/// they are spliced into already has it).
fn render_sections(sections: &[manual::Section]) -> String {
    let mut r = Roff::new();
    for s in sections {
        r.control("SH", [s.title]);
        for b in &s.blocks {
            match b {
                Block::Para(t) => {
                    r.control("PP", []);
                    r.text([roman(t.as_str())]);
                }
                Block::Item { tag, body } => {
                    r.control("TP", []);
                    r.text([bold(tag.as_str())]);
                    r.text([roman(body.as_str())]);
                }
                Block::Pre(lines) => {
                    r.control("PP", []);
                    r.control("nf", []);
                    for l in lines {
                        r.text([roman(l.as_str())]);
                    }
                    r.control("fi", []);
                }
            }
        }
    }
    let preamble = Roff::new().render();
    let full = r.render();
    full.strip_prefix(&preamble).unwrap_or(&full).to_string()
}

/// clap_mangen's page with `extra` spliced in before its VERSION section.
/// The `--help` text of `manual::pages` is rendered by us, as sections, not
/// by clap_mangen as one unformatted EXTRA section.
fn page(cmd: clap::Command, extra: &str) -> (String, Vec<u8>) {
    let man = Man::new(cmd.after_long_help(None::<&'static str>));
    let name = man.get_filename();
    let mut buf = Vec::new();
    man.render(&mut buf).expect("render man page");
    let text = String::from_utf8(buf).expect("man page is UTF-8");
    let text = match text.find("\n.SH VERSION") {
        Some(i) => format!("{}\n{}{}", &text[..i], extra, &text[i + 1..]),
        None => format!("{text}{extra}"),
    };
    (name, text.into_bytes())
}

/// Every generated file, by path relative to the repository.
fn generated() -> BTreeMap<PathBuf, Vec<u8>> {
    let cmd = command();
    let mut files = BTreeMap::new();

    let (name, top) = page(cmd.clone(), &render_sections(&manual::sections()));
    files.insert(Path::new("man").join(name), top);

    // One page per visible subcommand, and per action of `queue` (its page
    // names them: muxvisor-queue-list(1), ...), each with its contract.
    let mut subs: Vec<(String, clap::Command, String)> = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        subs.push((sub.get_name().to_string(), sub.clone(), "muxvisor(1)".to_string()));
        for action in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let path = format!("{} {}", sub.get_name(), action.get_name());
            let parent = format!("muxvisor-{}(1), muxvisor(1)", sub.get_name());
            subs.push((path, action.clone(), parent));
        }
    }
    for (path, sub, see_also) in subs {
        let contract = pages::page(&path).unwrap_or_else(|| panic!("no manual page for {path}"));
        let mut sections = pages::sections(contract);
        sections.push(manual::Section { title: "SEE ALSO", blocks: vec![Block::Para(see_also)] });
        let (name, body) = page(sub, &render_sections(&sections));
        files.insert(Path::new("man").join(name), body);
    }

    for (shell, file) in
        [(Shell::Bash, "muxvisor.bash"), (Shell::Zsh, "_muxvisor"), (Shell::Fish, "muxvisor.fish")]
    {
        files.insert(Path::new("completions").join(file), completions::script(shell));
    }
    files
}

/// Files now in `dir` (relative paths), to catch pages of removed commands.
fn checked_in(dir: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(repo().join(dir)) else { return Vec::new() };
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| Path::new(dir).join(e.file_name())).collect();
    v.sort();
    v
}

#[test]
fn checked_in_man_pages_and_completions_match_the_cli() {
    let want = generated();
    if std::env::var_os("MUXVISOR_REGEN").is_some_and(|v| v == "1") {
        for dir in ["man", "completions"] {
            fs::create_dir_all(repo().join(dir)).expect("create docs dir");
            for old in checked_in(dir) {
                if !want.contains_key(&old) {
                    fs::remove_file(repo().join(&old)).expect("remove stale generated file");
                }
            }
        }
        for (rel, bytes) in &want {
            fs::write(repo().join(rel), bytes).expect("write generated file");
        }
        return;
    }
    let mut drift = Vec::new();
    for (rel, bytes) in &want {
        match fs::read(repo().join(rel)) {
            Ok(have) if &have == bytes => {}
            Ok(_) => drift.push(format!("{} differs", rel.display())),
            Err(_) => drift.push(format!("{} is missing", rel.display())),
        }
    }
    for dir in ["man", "completions"] {
        for have in checked_in(dir) {
            if !want.contains_key(&have) {
                drift.push(format!("{} is no longer generated", have.display()));
            }
        }
    }
    assert!(
        drift.is_empty(),
        "generated docs drifted from the CLI:\n  {}\nregenerate with: {REGEN}",
        drift.join("\n  ")
    );
}

#[test]
fn top_page_documents_files_environment_exit_status_logs_and_every_event() {
    let files = generated();
    let top = String::from_utf8(files[&PathBuf::from("man/muxvisor.1")].clone()).unwrap();
    for section in [".SH FILES", ".SH ENVIRONMENT", ".SH \"EXIT STATUS\"", ".SH \"LOG FORMAT\""] {
        assert!(top.contains(section), "missing {section}");
    }
    for ev in manual::EVENTS {
        // roff escapes '-' as '\-'.
        let tag = format!("ev={}", ev.ev.replace('-', "\\-"));
        assert!(top.contains(&tag), "event {} not documented", ev.ev);
    }
    for var in ["MUXVISOR_ROOT", "XDG_STATE_HOME", "MUXVISOR_TMUX", "MUXVISOR_TASK_FILE"] {
        assert!(top.contains(var), "{var}");
    }
    for code in ["\\fB69\\fR", "\\fB75\\fR"] {
        assert!(top.contains(code), "{code}");
    }
    // The extra sections come before clap's VERSION section.
    let files_at = top.find(".SH FILES").unwrap();
    if let Some(v) = top.find(".SH VERSION") {
        assert!(files_at < v);
    }
}

/// Issue 10: every page has an EXIT STATUS section and, for a command with
/// `--json`, its document and fields; every page another page names exists
/// (muxvisor-queue(1) named muxvisor-queue-list(1), which did not).
#[test]
fn every_page_has_its_contract_and_names_only_pages_that_exist() {
    let files = generated();
    for (path, bytes) in &files {
        let Some(name) = path.to_str().and_then(|p| p.strip_prefix("man/")) else { continue };
        let body = String::from_utf8(bytes.clone()).unwrap();
        assert!(body.contains(".SH \"EXIT STATUS\""), "{name}");
        if name != "muxvisor.1" {
            assert!(body.contains(".SH \"JSON OUTPUT\""), "{name}");
        }
        assert!(!body.contains(".SH EXTRA"), "{name}: --help text rendered raw");
        // Every `muxvisor-xxx(1)` reference names a generated page.
        let text = body.replace("\\-", "-");
        for (i, _) in text.match_indices("muxvisor-") {
            let rest = &text[i..];
            let Some(end) = rest.find("(1)") else { continue };
            let page_name = &rest[..end];
            if page_name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                let file = PathBuf::from(format!("man/{page_name}.1"));
                assert!(files.contains_key(&file), "{name} names {page_name}(1), not generated");
            }
        }
    }
    let send = String::from_utf8(files[Path::new("man/muxvisor-send.1")].clone()).unwrap();
    for want in ["\\fB75\\fR", "NOT queued", "\\fBqueued\\fR", "\\fBdepth\\fR"] {
        assert!(send.contains(want), "muxvisor-send(1) lacks {want}");
    }
}

#[test]
fn one_page_per_visible_subcommand_and_none_for_internal_ones() {
    let files = generated();
    let cmd = command();
    let mut visible = 0;
    for sub in cmd.get_subcommands() {
        let page = PathBuf::from(format!("man/muxvisor-{}.1", sub.get_name()));
        if sub.is_hide_set() {
            assert!(!files.contains_key(&page), "hidden {} has a page", sub.get_name());
        } else {
            visible += 1;
            let body = String::from_utf8(files[&page].clone()).unwrap();
            assert!(body.contains(".SH SYNOPSIS"), "{}", page.display());
        }
    }
    assert!(visible >= 17, "only {visible} visible subcommands");
    assert!(files.keys().all(|p| !p.to_string_lossy().contains("muxvisor-_")));
    assert!(!files.contains_key(Path::new("man/muxvisor-help.1")));
}

#[test]
fn completions_know_the_commands_and_the_binary_prints_the_same() {
    let files = generated();
    let bash = String::from_utf8(files[Path::new("completions/muxvisor.bash")].clone()).unwrap();
    for sub in ["supervise", "service", "doctor", "clean", "send"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    // `muxvisor completions <shell>` is what users pipe into their shell: it
    // must be the checked-in script, byte for byte.
    let env = crate::fixture::Env::new();
    for (shell, file) in
        [("bash", "muxvisor.bash"), ("zsh", "_muxvisor"), ("fish", "muxvisor.fish")]
    {
        let out = env.mv(&["completions", shell]);
        out.ok();
        assert_eq!(
            out.stdout.as_bytes(),
            files[&Path::new("completions").join(file)].as_slice(),
            "{shell}"
        );
    }
}

#[test]
fn bash_completion_completes_commands_and_hides_internal_ones() {
    let complete = |word: &str| {
        let script = format!(
            "source {}; COMP_WORDS=(muxvisor '{word}'); COMP_CWORD=1; \
             _muxvisor muxvisor '{word}' muxvisor; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            repo().join("completions/muxvisor.bash").display()
        );
        let mut c = std::process::Command::new("bash");
        c.arg("--noprofile").arg("--norc").arg("-c").arg(script);
        let out = crate::fixture::run_deadline(c, None, std::time::Duration::from_secs(30));
        assert_eq!(out.code, 0, "{out:?}");
        out.stdout
    };
    assert_eq!(complete("serv").trim(), "service");
    let all = complete("");
    assert!(all.lines().any(|l| l == "supervise"), "{all}");
    assert!(!all.lines().any(|l| l.starts_with('_')), "{all}");
}

/// Every path in `v`: `a`, `a.b`, `[].a`, `a[].b`. Maps (documented as
/// `object, string to string`) are not descended into.
fn json_paths(v: &serde_json::Value, prefix: &str, maps: &[&str], out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, child) in o {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                out.push(p.clone());
                if !maps.contains(&p.as_str()) {
                    json_paths(child, &p, maps, out);
                }
            }
        }
        serde_json::Value::Array(a) => {
            for child in a {
                json_paths(child, &format!("{prefix}[]"), maps, out);
            }
        }
        _ => {}
    }
}

/// Every key `doc` has is documented on `command`'s page (a field `x.*`
/// covers everything under `x`).
fn assert_documented(command: &str, doc: &serde_json::Value) {
    let page = pages::page(command).unwrap_or_else(|| panic!("no page for {command}"));
    let fields = page.json.unwrap_or_else(|| panic!("{command} prints JSON, its page says none"));
    let maps: Vec<&str> =
        fields.fields.iter().filter(|f| f.1.contains("string to string")).map(|f| f.0).collect();
    let mut paths = Vec::new();
    json_paths(doc, "", &maps, &mut paths);
    for p in paths {
        let covered = fields
            .fields
            .iter()
            .any(|(f, _, _)| *f == p || f.strip_suffix('*').is_some_and(|pre| p.starts_with(pre)));
        assert!(
            covered,
            "muxvisor {command} --json writes {p}, which its page does not list:\n{doc}"
        );
    }
}

/// Issue 10 (the scripting contract): each command's real `--json` document
/// has only keys its page documents.
#[test]
fn every_json_document_is_documented_on_its_page() {
    let env = Env::new();
    let doc = |command: &str, args: &[&str], code: i32| {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = env.mv(&full);
        out.code(code);
        let v = out.json();
        assert_documented(command, &v);
        v
    };
    let echo = "while read -r l; do echo got:$l; done";
    doc("add", &["add", "p", "--idle-ttl", "1h", "--max-age", "1d", "--", "sh", "-c", echo], 0);
    doc("launch", &["launch", "p"], 0);
    doc("launch", &["launch", "p"], 0);
    doc("send", &["send", "p", "hello"], 0);
    doc("add", &["add", "gone", "--", "sh", "-c", "exit 3"], 0);
    doc("launch", &["launch", "gone"], 1);
    doc("restart", &["restart", "gone"], 1);
    doc("add", &["add", "w", "--ephemeral", "--max-attempts", "1", "--", "sh", "-c", "exit 0"], 0);
    doc("send", &["send", "w", "one"], 0);
    let queued = doc("send", &["send", "w", "two", "--no-kick"], 0);
    doc("status", &["status"], 0);
    doc("supervise", &["supervise", "--once"], 0);
    doc("queue", &["queue", "w"], 0);
    doc("queue list", &["queue", "w", "list", "--dead"], 0);
    let task = queued["task"].as_str().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["supervise", "--once"]).ok();
        env.mv(&["--json", "queue", "w", "show", task]).json()["stage"] == "done"
    }));
    doc("queue show", &["queue", "w", "show", task], 0);
    // A dead letter, retried, removed, purged (with no runner left to pick
    // the retried task up before it is removed).
    env.mv(&["add", "w", "--ephemeral", "--linger", "0s", "--", "sh", "-c", "exit 1"]).ok();
    let bad = doc("send", &["send", "w", "bad"], 0);
    let bad = bad["task"].as_str().unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["supervise", "--once"]).ok();
        env.mv(&["--json", "queue", "w", "show", bad]).json()["stage"] == "dead"
    }));
    assert!(wait_until(Duration::from_secs(10), || !env.root().join("run/w.sock").exists()));
    doc("queue list", &["queue", "w", "list"], 0);
    doc("queue show", &["queue", "w", "show", bad], 0);
    doc("queue retry", &["queue", "w", "retry", bad], 0);
    doc("queue rm", &["queue", "w", "rm", bad], 0);
    env.mv(&["send", "w", "three", "--no-kick"]).ok();
    doc("queue purge", &["queue", "w", "purge"], 0);
    assert!(wait_until(Duration::from_secs(10), || {
        env.mv(&["screen", "p"]).stdout.contains("got:hello")
            && env.read("logs/panes/p.log").contains("got:hello")
    }));
    doc("screen", &["screen", "p"], 0);
    doc("logs", &["logs", "p"], 0);
    doc("events", &["events"], 0);
    doc("stop", &["stop", "p"], 0);
    doc("stop", &["stop", "p"], 0);
    doc("restart", &["restart", "p"], 0);
    doc("rm", &["rm", "w", "--force"], 0);
    doc("clean", &["clean", "--dry-run"], 0);
    let out = env.mv(&["--json", "doctor"]);
    assert_documented("doctor", &out.json());

    let fake = crate::service::Fake::new(&env, false);
    for args in [
        &["--json", "service", "install", "--cron", "--print"][..],
        &["--json", "service", "status"][..],
    ] {
        let out = run_deadline(fake.cmd(env.root(), args), None, CMD_DEADLINE);
        assert_documented("service", &out.json());
    }
    // A status row that could not be read has an error.
    fs::write(env.root().join("state/p.json"), b"{ torn").unwrap();
    let out = env.mv(&["--json", "status"]);
    out.code(1);
    assert_documented("status", &out.json());
}

/// Issue 18: a skipped test must be visible as skipped. libtest captures
/// `eprintln!`, so a skip written with it vanished behind the test's "ok";
/// every skip goes through `fixture::skip` (or `testing::skip` in unit
/// tests), which writes to the stderr descriptor itself.
#[test]
fn every_skip_is_visible() {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    rust_files(&repo().join("tests"), &mut files);
    let mut hidden = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            // The macro, and its first argument on this line or the next.
            let call = format!("{l} {}", lines.get(i + 1).copied().unwrap_or_default());
            let printed = ["eprintln", "println", "eprint", "print"]
                .iter()
                .any(|m| l.contains(&format!("{m}!(")));
            if printed && call.to_ascii_lowercase().contains("skip") {
                hidden.push(format!("{}:{}: {}", f.display(), i + 1, l.trim()));
            }
        }
    }
    assert!(
        hidden.is_empty(),
        "skips that cargo test would hide; use skip():\n{}",
        hidden.join("\n")
    );
}
