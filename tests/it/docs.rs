//! The man pages under `man/` and the completion scripts under `completions/`
//! are generated from the clap definitions (plus `muxvisor::manual` for the
//! sections clap cannot know) and checked in. These tests fail when a checked-in
//! copy drifts from what the code generates; `MUXVISOR_REGEN=1 cargo test --test
//! it docs::` rewrites them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use muxvisor::cli::Cli;
use muxvisor::commands::completions;
use muxvisor::manual::{self, Block};

const REGEN: &str = "MUXVISOR_REGEN=1 cargo test --test it docs::";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CLI as the generators see it: built, without clap's `help` subcommand.
fn command() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
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
fn page(cmd: clap::Command, extra: &str) -> (String, Vec<u8>) {
    let man = Man::new(cmd);
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

    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let see_also = render_sections(&[manual::Section {
            title: "SEE ALSO",
            blocks: vec![Block::Para("muxvisor(1)".into())],
        }]);
        let (name, body) = page(sub.clone(), &see_also);
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
