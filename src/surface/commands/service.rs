//! `service install|uninstall|status`: install the periodic tick under
//! launchd, systemd or cron. The work is in `crate::surface::service`; this module picks
//! the kind, assembles the spec from the running binary and the tmux found
//! now, records the change in the lifecycle log, and prints the result.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::Ctx;
use crate::ground::output;
use crate::model::logfmt::Event;
use crate::surface::cli::{ServiceAction, ServiceArgs};
use crate::surface::service::{self, Host, Kind, Report, Spec};

fn asked_kind(args: &ServiceArgs) -> Option<Kind> {
    if args.launchd {
        Some(Kind::Launchd)
    } else if args.systemd {
        Some(Kind::Systemd)
    } else if args.cron {
        Some(Kind::Cron)
    } else {
        None
    }
}

/// The kind asked for with a flag, else the one for this machine; and why.
fn kind_and_why(args: &ServiceArgs) -> (Kind, String) {
    match asked_kind(args) {
        Some(k) => (k, format!("--{k} was given")),
        None => {
            let (k, why) = service::default_kind();
            (k, why.to_string())
        }
    }
}

/// The spec for this root: this binary, the interval, a PATH with tmux in it.
pub fn spec_for(ctx: &Ctx, interval: std::time::Duration) -> Result<Spec> {
    let exe = std::env::current_exe().context("finding the muxvisor binary to install")?;
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let argv0 = std::env::args_os().next();
    let exe =
        service::stable_exe(argv0.as_deref(), std::env::var_os("PATH").as_deref(), &cwd, &exe);
    let tmux_dir = crate::tmux::tmux_path().ok().and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let current = std::env::var("PATH").unwrap_or_default();
    let path = service::search_path(tmux_dir.as_deref(), exe.parent(), &current);
    let mut spec = Spec::new(&exe, &ctx.root, interval, path)?;
    spec.env = carried_env();
    Ok(spec)
}

/// What selects muxvisor's behaviour here and must select it in the tick
/// too: the tmux found now (so the tick runs the same one, whatever its
/// PATH), and every [`service::CARRIED`] setting that is set. A value with a
/// control character cannot be written safely and is left out.
fn carried_env() -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(t) = crate::tmux::tmux_path().ok().and_then(|p| p.to_str().map(str::to_string)) {
        env.push(("MUXVISOR_TMUX".to_string(), t));
    }
    for k in service::CARRIED {
        if let Ok(v) = std::env::var(k)
            && !v.is_empty()
        {
            env.push((k.to_string(), v));
        }
    }
    env.retain(|(_, v)| !v.chars().any(char::is_control));
    env
}

/// The admission options `service install` passes on to the tick.
fn admission_args(args: &ServiceArgs) -> Result<Vec<String>> {
    // Checked as the tick will read them (the environment is the tick's).
    crate::lifecycle::admission::Limits::default()
        .with_flags(args.max_starting, args.min_mem_available.as_deref())?;
    let mut v = Vec::new();
    if let Some(n) = args.max_starting {
        v.extend(["--max-starting".to_string(), n.to_string()]);
    }
    if let Some(m) = &args.min_mem_available {
        v.extend(["--min-mem-available".to_string(), m.trim().to_string()]);
    }
    Ok(v)
}

pub fn run(ctx: &Ctx, args: ServiceArgs) -> Result<ExitCode> {
    let host = Host::from_env();
    let root = ctx.root.dir().to_str().context("the root path is not valid UTF-8")?.to_string();
    match args.action {
        ServiceAction::Status => status(ctx, &args, &host, &root),
        ServiceAction::Install => {
            let (kind, why) = kind_and_why(&args);
            let mut spec = spec_for(ctx, args.interval)?;
            spec.extra = admission_args(&args)?;
            let mut report = service::install(kind, &why, &spec, &host, args.print)?;
            if crate::tmux::tmux_path().is_err() {
                report.notes.push(
                    "tmux is not on PATH now; the tick will fail until it is installed".into(),
                );
            }
            if !args.print {
                report.notes.push(format!(
                    "the tick runs {}; if you move or rebuild muxvisor elsewhere, install again",
                    spec.exe
                ));
                let path = report.changes.first().map(|c| c.target.clone()).unwrap_or_default();
                log(
                    ctx,
                    Event::new("service-install")
                        .kv("kind", kind)
                        .kv("interval_s", spec.interval_s)
                        .kv("path", path),
                );
            }
            let code = print_report(ctx, &report, Some(&spec))?;
            // A preview of an install that cannot run here is a "no".
            Ok(if report.would_fail { ExitCode::from(1) } else { code })
        }
        ServiceAction::Uninstall => {
            let (kind, why) = match (asked_kind(&args), installed_kind(&host, &root)) {
                (Some(_), _) | (None, None) => kind_and_why(&args),
                (None, Some(k)) => (k, "it is the kind installed for this root".to_string()),
            };
            let report = service::uninstall(kind, &why, &root, &host, args.print)?;
            if !args.print && !report.changes.is_empty() {
                let path = report.changes.first().map(|c| c.target.clone()).unwrap_or_default();
                log(ctx, Event::new("service-uninstall").kv("kind", kind).kv("path", path));
            }
            print_report(ctx, &report, None)
        }
    }
}

/// The first kind installed for this root, to uninstall without a flag.
fn installed_kind(host: &Host, root: &str) -> Option<Kind> {
    Kind::ALL
        .into_iter()
        .find(|k| service::status(*k, root, host).is_ok_and(|s| s.installed && s.for_this_root))
}

fn log(ctx: &Ctx, ev: Event) {
    if let Err(e) = ev.append_to(&ctx.root.lifecycle_log()) {
        output::warn(format!("could not record the change in the lifecycle log: {e:#}"));
    }
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Launchd => "a launchd agent",
        Kind::Systemd => "a systemd user timer",
        Kind::Cron => "a crontab line",
    }
}

fn print_report(ctx: &Ctx, r: &Report, spec: Option<&Spec>) -> Result<ExitCode> {
    if ctx.json {
        output::json(r)?;
        return Ok(ExitCode::SUCCESS);
    }
    if r.dry_run {
        output::line(format!(
            "# muxvisor service {}: {}, because {}",
            r.action,
            describe(r.kind),
            r.why
        ))?;
        for c in &r.changes {
            match (c.op, c.target.as_str()) {
                ("remove", "crontab") => {
                    output::line(format!(
                        "# would remove this line from your crontab:\n{}",
                        c.content.as_deref().unwrap_or("")
                    ))?;
                }
                ("remove", path) => output::line(format!("# would remove {path}"))?,
                (op, "crontab") => output::line(format!(
                    "# {} your crontab: this line\n{}",
                    if op == "unchanged" { "already in" } else { "would add to" },
                    c.content.as_deref().unwrap_or("")
                ))?,
                (op, path) => output::line(format!(
                    "# {} {path}\n{}",
                    if op == "unchanged" { "already up to date:" } else { "would write" },
                    c.content.as_deref().unwrap_or("").trim_end()
                ))?,
            }
        }
    } else {
        let every = spec.map(|s| format!(" (every {}s)", s.interval_s)).unwrap_or_default();
        match r.action {
            "install" => {
                output::line(format!("installed the tick as {}{every}", describe(r.kind)))?
            }
            _ if r.changes.is_empty() => {}
            _ => output::line(format!("removed the {} tick", r.kind))?,
        }
        for c in &r.changes {
            let what = match c.op {
                "write" => "wrote",
                "remove" => "removed",
                _ => "unchanged",
            };
            if c.target == "crontab" {
                output::line(format!(
                    "  {what} crontab line: {}",
                    c.content.as_deref().unwrap_or("")
                ))?;
            } else {
                output::line(format!("  {what} {}", c.target))?;
            }
        }
        match r.enabled {
            Some(true) => output::line("  enabled and started")?,
            Some(false) => output::line("  NOT enabled (see below)")?,
            None => {}
        }
    }
    for n in &r.notes {
        output::warn(n);
    }
    Ok(ExitCode::SUCCESS)
}

fn status(ctx: &Ctx, args: &ServiceArgs, host: &Host, root: &str) -> Result<ExitCode> {
    let kinds: Vec<Kind> = match asked_kind(args) {
        Some(k) => vec![k],
        None => Kind::ALL.to_vec(),
    };
    let mut found = Vec::new();
    for k in kinds {
        match service::status(k, root, host) {
            Ok(s) => found.push(s),
            // One unreadable manager (a broken crontab binary) must not hide the others.
            Err(e) if asked_kind(args).is_none() => {
                output::warn(format!("could not check {k}: {e:#}"));
            }
            Err(e) => return Err(e),
        }
    }
    let installed = found.iter().any(|s| s.installed && s.for_this_root);
    if ctx.json {
        output::json(&json!({ "root": root, "installed": installed, "services": found }))?;
    } else {
        for s in &found {
            if !s.installed && s.locations.is_empty() {
                output::line(format!("{}: not installed", s.kind))?;
                continue;
            }
            let loaded = match s.loaded {
                Some(true) => ", loaded",
                Some(false) => ", NOT loaded",
                None => "",
            };
            let every = s.interval_s.map(|i| format!(", every {i}s")).unwrap_or_default();
            let other = if s.for_this_root { "" } else { ", for ANOTHER root" };
            output::line(format!(
                "{}: installed{every}{loaded}{other}: {}",
                s.kind,
                s.locations.join(", ")
            ))?;
            if let Some(d) = &s.detail {
                output::line(format!("  {d}"))?;
            }
        }
    }
    Ok(if installed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
