//! `send`: make a task durable for an ephemeral peer (then kick a worker), or
//! type text into a persistent peer's pane (waking it first).
//!
//! The payload comes from TEXT, `--file F`, or stdin (`-`), and is refused
//! above 1 MiB before anything is written. For an ephemeral peer the only
//! thing that can make `send` fail after the task is durable is nothing: a
//! failed kick is a warning (the next tick starts the worker), so exit 0
//! always means "queued".

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::Ctx;
use crate::cli::SendArgs;
use crate::observe::{self, Seen};
use crate::output;
use crate::peer::{self, Identity, PeerSpec, Policy};
use crate::queue::{MAX_PAYLOAD, Queue};
use crate::session;
use crate::tmux::{Tmux, TmuxError, paste};
use crate::worker;

/// How long a woken persistent peer may take to go quiet before the text is
/// typed anyway.
const WAKE_MAX_WAIT: Duration = Duration::from_secs(10);

pub fn run(ctx: &Ctx, args: SendArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    let spec = peer::require(&ctx.root, &id)?;
    let payload = read_payload(&args)?;
    match spec.policy {
        Policy::Ephemeral => queue_task(ctx, &spec, &payload, &args),
        Policy::Persistent => deliver(ctx, &spec, &payload, &args),
    }
}

fn too_big(what: &str, n: u64) -> anyhow::Error {
    anyhow::anyhow!(
        "task NOT queued: {what} is {n} bytes or more, over the limit of {MAX_PAYLOAD} bytes \
         (1 MiB); put large inputs in a file and send its path instead"
    )
}

/// TEXT, `--file F` or stdin (`-`), at most [`MAX_PAYLOAD`] bytes.
fn read_payload(args: &SendArgs) -> Result<Vec<u8>> {
    let limit = MAX_PAYLOAD as u64;
    let read_bounded = |r: &mut dyn Read, what: &str| -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        r.take(limit + 1).read_to_end(&mut buf).with_context(|| format!("reading {what}"))?;
        if buf.len() as u64 > limit {
            return Err(too_big(what, limit + 1));
        }
        Ok(buf)
    };
    match (&args.text, &args.file) {
        (Some(t), None) if t == "-" => read_bounded(&mut std::io::stdin().lock(), "standard input"),
        (Some(t), None) => {
            if t.len() as u64 > limit {
                return Err(too_big("the text", t.len() as u64));
            }
            Ok(t.clone().into_bytes())
        }
        (None, Some(f)) => {
            let what = format!("file {}", f.display());
            let mut file = File::open(f).with_context(|| format!("opening {what}"))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len > limit {
                return Err(too_big(&what, len));
            }
            read_bounded(&mut file, &what)
        }
        (None, None) => bail!("nothing to send: give the TEXT, --file FILE, or - to read stdin"),
        (Some(_), Some(_)) => bail!("give either TEXT or --file, not both"),
    }
}

fn queue_task(ctx: &Ctx, spec: &PeerSpec, payload: &[u8], args: &SendArgs) -> Result<ExitCode> {
    let id = &spec.identity;
    // A task its worker could never receive is refused now, not accepted
    // and dead-lettered later.
    worker::check_deliverable(&ctx.root, spec, payload)
        .map_err(|m| anyhow::anyhow!("task NOT queued for {id}: {m}"))?;
    let q = Queue::open(&ctx.root, id)?;
    let e = q.enqueue(payload, args.dedupe.as_deref())?;
    if ctx.json {
        output::json(&json!({
            "queued": true,
            "identity": id,
            "task": e.task,
            "depth": e.depth,
            "deduped": e.deduped,
        }))?;
    } else if e.deduped {
        output::line(format!(
            "already queued for {id}: task {} has dedupe key {:?}; no second task, depth {}",
            e.task,
            args.dedupe.as_deref().unwrap_or_default(),
            e.depth
        ))?;
    } else {
        output::line(format!("queued for {id}, depth {}, task {}", e.depth, e.task))?;
    }
    if let Err(e) = session::check_startable(spec) {
        // Queued all the same (the program may be installed before the
        // next attempt), but say so now rather than in the events only.
        output::warn(format!(
            "the task is queued, but {e:#}; each attempt will fail until that is fixed, then the \
             task is dead-lettered"
        ));
    }
    if !args.no_kick
        && let Err(err) = worker::kick(&ctx.root, spec)
    {
        output::warn(format!(
            "the task is queued, but starting a worker for {id} failed: {err:#}; the next tick \
             will try again"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn deliver(ctx: &Ctx, spec: &PeerSpec, payload: &[u8], args: &SendArgs) -> Result<ExitCode> {
    let id = &spec.identity;
    if args.dedupe.is_some() || args.no_kick {
        bail!("--dedupe and --no-kick apply to ephemeral peers; {id} is persistent");
    }
    let text = std::str::from_utf8(payload)
        .with_context(|| format!("the text for {id} is not valid UTF-8; nothing was typed"))?;
    paste::check_text(text).map_err(|m| anyhow::anyhow!("nothing was typed into {id}: {m}"))?;
    let text = text.trim_end_matches('\n');
    let tmux = Tmux::new(ctx.root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let seen = observe::observe(&ctx.root, id, Duration::from_secs(3))?.seen;
    match seen {
        Seen::Alive => {}
        Seen::Hung => bail!("{id}'s tmux server does not answer (hung?); nothing was typed"),
        _ => {
            session::launch(&ctx.root, spec, session::Start::Program)
                .with_context(|| format!("waking {id} to deliver the text"))?;
            paste::wait_quiet(&tmux, id, worker::QUIET, WAKE_MAX_WAIT);
        }
    }
    paste::paste(&tmux, id, text.as_bytes(), true)
        .map_err(TmuxError::into_anyhow)
        .with_context(|| format!("typing into {id}"))?;
    if ctx.json {
        output::json(&json!({"delivered": true, "identity": id}))?;
    } else {
        output::line(format!("delivered to {id}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
