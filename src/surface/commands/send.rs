//! `send`: make a task durable for an ephemeral peer (then kick a runner),
//! or deliver text to a persistent peer (waking it first): typed at once
//! (`--when now`), or made durable in its mailbox and pasted when the agent
//! is ready, one message per turn (`--when idle`, see `agent::mailbox`).
//! `--keys` sends tmux key names at once.
//!
//! The payload comes from TEXT, `--file F`, or stdin (`-`), and is refused
//! above 1 MiB before anything is written. Text is delivered byte for byte
//! (trailing newlines kept: a REPL block can end with its own blank line);
//! only the final Enter is added, unless `--no-enter`. For a queued task or
//! message, nothing can make `send` fail once it is durable: a failed kick
//! or wake is a warning (the next tick starts it), so exit 0 always means
//! "queued" (with `--wait`, 75 means queued but not yet delivered).

use std::fs::File;
use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::Ctx;
use crate::ground::output;
use crate::lifecycle::dispatch;
use crate::lifecycle::observe::{self, Seen};
use crate::lifecycle::session;
use crate::model::peer::{self, Identity, PeerSpec, Policy, When};
use crate::model::queue::{MAX_PAYLOAD, Queue};
use crate::surface::cli::SendArgs;
use crate::tmux::{Tmux, TmuxError, paste};

/// How long a woken persistent peer may take to go quiet before the text is
/// typed anyway.
const WAKE_MAX_WAIT: Duration = Duration::from_secs(10);

pub fn run(ctx: &Ctx, args: SendArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    let spec = peer::require(&ctx.root, &id)?;
    crate::ground::trace::mark("spec");
    if !args.keys.is_empty() {
        return send_keys(ctx, &spec, &args);
    }
    let payload = read_payload(&args)?;
    match spec.policy {
        Policy::Ephemeral => {
            if args.when.is_some() || (args.wait.is_some() && !spec.is_pool()) || args.no_enter {
                bail!(
                    "--when, --wait and --no-enter apply to persistent peers; {id} is ephemeral \
                     (its tasks are queued and run one at a time)"
                );
            }
            queue_task(ctx, &spec, &payload, &args)
        }
        Policy::Persistent => {
            let when = match args.when {
                Some(crate::surface::cli::When::Now) => When::Now,
                Some(crate::surface::cli::When::Idle) => When::Idle,
                None => spec.when(),
            };
            match when {
                When::Now => deliver(ctx, &spec, &payload, &args),
                When::Idle => mail(ctx, &spec, &payload, &args),
            }
        }
    }
}

/// The text of a message, checked before anything is queued or typed.
/// The same rule typing applies ([`paste::typable`]), said before anything
/// is queued.
fn message_text<'a>(id: &Identity, payload: &'a [u8], what: &str) -> Result<&'a str> {
    paste::typable(payload).map_err(|m| anyhow::anyhow!("{what} for {id}: {m}"))
}

/// `--keys`: tmux key names, at once, to a running peer.
fn send_keys(ctx: &Ctx, spec: &PeerSpec, args: &SendArgs) -> Result<ExitCode> {
    let id = &spec.identity;
    if spec.policy != Policy::Persistent {
        bail!("--keys types into a persistent peer's pane; {id} is ephemeral");
    }
    for k in &args.keys {
        paste::check_key(k).map_err(|m| anyhow::anyhow!("nothing was sent to {id}: {m}"))?;
    }
    if observe::observe(&ctx.root, id, Duration::from_secs(3))?.seen != Seen::Alive {
        bail!("{id} is not running; nothing was sent (start it with `muxvisor launch {id}`)");
    }
    let tmux = Tmux::new(ctx.root.socket(id)).map_err(TmuxError::into_anyhow)?;
    paste::keys(&tmux, id, &args.keys)
        .map_err(TmuxError::into_anyhow)
        .with_context(|| format!("sending keys to {id}"))?;
    if ctx.json {
        output::json(&json!({"delivered": true, "identity": id, "keys": args.keys}))?;
    } else {
        output::line(format!("sent {} to {id}", args.keys.join(" ")))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Start `spec`'s program if it is not running (a message needs a reader).
/// A failure is a warning: what was queued stays queued.
fn wake(ctx: &Ctx, spec: &PeerSpec) -> Result<bool> {
    let id = &spec.identity;
    match observe::observe(&ctx.root, id, Duration::from_secs(3))?.seen {
        Seen::Alive => Ok(false),
        Seen::Hung => bail!("{id}'s tmux server does not answer (hung?)"),
        _ => {
            session::launch(&ctx.root, spec, session::Start::Program)
                .with_context(|| format!("waking {id}"))?;
            Ok(true)
        }
    }
}

/// `--when idle`: durable first, then delivered when the agent is ready.
fn mail(ctx: &Ctx, spec: &PeerSpec, payload: &[u8], args: &SendArgs) -> Result<ExitCode> {
    use crate::lifecycle::agent::mailbox::{self, DeliveryOutcome};
    let id = &spec.identity;
    message_text(id, payload, "NOT queued")?;
    let q = Queue::open(&ctx.root, id)?;
    let e = q.enqueue_message(payload, args.dedupe.as_deref(), args.no_enter)?;
    if !ctx.json {
        output::line(format!("queued for {id}, depth {}, task {}", e.depth, e.task))?;
    }
    let mut delivered = false;
    if !args.no_kick {
        if let Err(err) = wake(ctx, spec) {
            output::warn(format!("the message is queued, but {err:#}; the next tick will retry"));
        }
        let mut looker = crate::lifecycle::agent::watch::Looker::once();
        match mailbox::deliver_next(&ctx.root, spec, &q, &mut looker) {
            Ok(DeliveryOutcome::Delivered { task }) => delivered |= task == e.task,
            Ok(DeliveryOutcome::Undelivered { task }) => output::warn(format!(
                "message {task} was typed into {id}, but {id} did not take it in (twice); it \
                 stays queued and {id} reads blocked (undelivered): see `muxvisor screen {id}`, \
                 submit or clear the prompt, then `muxvisor mark {id} ready`"
            )),
            Ok(DeliveryOutcome::Refused { task, reason }) => {
                output::warn(format!("message {task} was dead-lettered, never typed: {reason}"))
            }
            Ok(DeliveryOutcome::Unknown { task, reason }) => output::warn(format!(
                "message {task}: {id}'s tmux server did not answer while it was typed, and \
                 whether {id} took it in cannot be told ({reason}); it was dead-lettered \
                 (delivery-unknown), not typed again, and {id} reads blocked (undelivered): see \
                 `muxvisor screen {id}`, then `muxvisor mark {id} ready`, and `muxvisor queue {id} \
                 retry {task}` to send it again"
            )),
            Ok(_) => {}
            Err(err) => output::warn(format!("delivering to {id}: {err:#}")),
        }
        if q.counts()?.pending > 0
            && let Err(err) = mailbox::ensure_courier(&ctx.root, id)
        {
            output::warn(format!(
                "the message is queued, but starting its courier failed: {err:#}; the next tick \
                 will start one"
            ));
        }
    }
    let mut code = ExitCode::SUCCESS;
    let mut dead = None;
    if let Some(limit) = args.wait
        && !delivered
    {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let shown = q.show(&e.task)?;
            if shown.outcome.as_ref().is_some_and(|o| o.delivered_at.is_some()) {
                delivered = true;
                break;
            }
            if shown.stage == "dead" {
                dead = Some(shown.reason.unwrap_or_default());
                break;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(reason) = &dead {
            output::warn(format!(
                "message {} for {id} was dead-lettered, not delivered: {} (see `muxvisor queue \
                 {id} show {}`; `muxvisor queue {id} retry {}` sends it again)",
                e.task,
                reason.trim().replace('\n', ": "),
                e.task,
                e.task
            ));
            code = ExitCode::from(crate::ground::exit::Exit::Failure.code());
        } else if !delivered {
            output::warn(format!(
                "message {} for {id} was not delivered within {}; it stays queued (see \
                 `muxvisor queue {id} show {}` and `muxvisor status {id}`)",
                e.task,
                crate::ground::duration::format(limit),
                e.task
            ));
            code = ExitCode::from(crate::ground::exit::Exit::TempFail.code());
        }
    }
    if ctx.json {
        output::json(&json!({
            "queued": true,
            "identity": id,
            "task": e.task,
            "depth": e.depth,
            "deduped": e.deduped,
            "delivered": delivered,
        }))?;
    } else if delivered {
        output::line(format!("delivered message {} to {id}", e.task))?;
    }
    Ok(code)
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
    dispatch::check_deliverable(&ctx.root, spec, payload)
        .map_err(|m| anyhow::anyhow!("task NOT queued for {id}: {m:#}"))?;
    if spec.is_pool() {
        // A pool's task is a prompt, typed into an agent.
        message_text(id, payload, "task NOT queued")?;
    }
    let waits = args.wait.is_some();
    crate::ground::trace::mark("checked");
    let q = Queue::open(&ctx.root, id)?;
    crate::ground::trace::mark("opened");
    let e = q.enqueue(payload, args.dedupe.as_deref())?;
    if waits {
        // One document at the end, with the reply.
    } else if ctx.json {
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
    crate::ground::trace::mark("printed");
    if let Err(e) = session::check_startable(spec) {
        // Queued all the same (the program may be installed before the
        // next attempt), but say so now rather than in the events only.
        output::warn(format!(
            "the task is queued, but {e:#}; each attempt will fail until that is fixed, then the \
             task is dead-lettered"
        ));
    }
    if !args.no_kick
        && let Err(err) = crate::tick::demand::kick(&ctx.root, spec, &q)
    {
        output::warn(format!(
            "the task is queued, but starting a worker for {id} failed: {err:#}; the next tick \
             will try again"
        ));
    }
    crate::ground::trace::mark("kicked");
    crate::ground::trace::flush("send");
    match args.wait {
        Some(limit) => wait_reply(ctx, &q, id, &e.task, e.depth, limit),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// `send --wait` to an agent pool: wait for the task's end, then print its
/// reply (exit 0), or say why it failed (exit 1), or that the deadline
/// passed (75; the task stays queued or running).
fn wait_reply(
    ctx: &Ctx,
    q: &Queue,
    id: &Identity,
    task: &str,
    depth: usize,
    limit: Duration,
) -> Result<ExitCode> {
    let deadline = std::time::Instant::now() + limit;
    let mut pause = Duration::from_millis(5);
    // A task committed to done/ has its outcome written right after; a
    // done task whose outcome never comes (its writer died in between)
    // has lost its reply.
    let mut done_without_outcome: Option<std::time::Instant> = None;
    loop {
        let shown = q.show(task)?;
        match shown.stage {
            "done" => {
                if let Some(o) = shown.outcome {
                    let reply = o.reply.unwrap_or_default();
                    if ctx.json {
                        output::json(&json!({
                            "queued": true,
                            "identity": id,
                            "task": task,
                            "depth": depth,
                            "stage": "done",
                            "reply": reply,
                            "duration_ms": o.duration_ms,
                        }))?;
                    } else {
                        output::line(reply.trim_end_matches('\n'))?;
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                let since = *done_without_outcome.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    return failed_reply(ctx, id, task, "done, but its reply was lost");
                }
            }
            "dead" => {
                let reason = shown.reason.unwrap_or_default();
                return failed_reply(ctx, id, task, &format!("dead-lettered: {}", reason.trim()));
            }
            _ => {}
        }
        if std::time::Instant::now() >= deadline {
            output::warn(format!(
                "task {task} of {id} has no reply within {}; it stays queued (see `muxvisor \
                 queue {id} show {task}`)",
                crate::ground::duration::format(limit)
            ));
            if ctx.json {
                output::json(&json!({
                    "queued": true, "identity": id, "task": task, "depth": depth,
                    "stage": shown.stage, "reply": null,
                }))?;
            }
            return Ok(ExitCode::from(crate::ground::exit::Exit::TempFail.code()));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn failed_reply(ctx: &Ctx, id: &Identity, task: &str, why: &str) -> Result<ExitCode> {
    output::warn(format!("task {task} of {id} has no reply: {why}"));
    if ctx.json {
        output::json(&json!({
            "queued": true, "identity": id, "task": task, "stage": "dead", "reply": null,
            "reason": why,
        }))?;
    }
    Ok(ExitCode::from(crate::ground::exit::Exit::Failure.code()))
}

/// `--when now`: type the text at once (waking the peer first).
fn deliver(ctx: &Ctx, spec: &PeerSpec, payload: &[u8], args: &SendArgs) -> Result<ExitCode> {
    let id = &spec.identity;
    if args.dedupe.is_some() || args.no_kick || args.wait.is_some() {
        bail!(
            "--dedupe, --no-kick and --wait need the mailbox; {id} types at once (add --when idle)"
        );
    }
    let text = message_text(id, payload, "nothing was typed")?;
    let tmux = Tmux::new(ctx.root.socket(id)).map_err(TmuxError::into_anyhow)?;
    let seen = observe::observe(&ctx.root, id, Duration::from_secs(3))?.seen;
    match seen {
        Seen::Alive => {}
        Seen::Hung => bail!("{id}'s tmux server does not answer (hung?); nothing was typed"),
        _ => {
            session::launch(&ctx.root, spec, session::Start::Program)
                .with_context(|| format!("waking {id} to deliver the text"))?;
            paste::wait_quiet(&tmux, id, dispatch::QUIET, WAKE_MAX_WAIT);
        }
    }
    // Paste, then Enter as its own step once the text shows: an agent may
    // drop an Enter that arrives while it still takes the paste in.
    paste::type_text(&tmux, id, text.as_bytes(), !args.no_enter)
        .map_err(TmuxError::into_anyhow)
        .with_context(|| format!("typing into {id}"))?;
    if ctx.json {
        output::json(&json!({"delivered": true, "identity": id}))?;
    } else {
        output::line(format!("delivered to {id}"))?;
    }
    Ok(ExitCode::SUCCESS)
}
