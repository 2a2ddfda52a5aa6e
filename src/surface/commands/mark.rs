//! `mark <id> ready|busy|blocked [--reason TEXT] [--session-id ID]
//! [--hook-json]`: an agent's own report of its state, from its hooks (for
//! Claude Code: `UserPromptSubmit` -> busy, `Stop` -> ready, `Notification`
//! -> blocked). A mark is the strongest source of the agent state until the
//! next mark or a restart (see `agent::classify` for how long it beats the
//! screen). `mark ready` also starts the courier when messages wait, whose
//! first look delivers the next one at once, so a turn's end is a
//! message's start with no poll in between.
//!
//! It runs inside the agent's hook, so it is quick: one look at the screen
//! (to log the transition), no typing (an agent may not take input while
//! its own hook runs, and a delivery waits for its proof).

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde_json::json;

use super::Ctx;
use crate::ground::output;
use crate::lifecycle::agent::mailbox;
use crate::lifecycle::agent::watch::Looker;
use crate::model::agent::classify::{AgentState, Mark};
use crate::model::agent::record::{self, SessionId};
use crate::model::peer::{self, Identity, Policy};
use crate::model::queue::Queue;
use crate::surface::cli::{MarkArgs, MarkState};

/// Longest hook payload read from stdin.
const MAX_PAYLOAD: u64 = 1024 * 1024;

/// A conversation id goes into a program's argv on a resume: keep it plain.
pub fn check_session_id(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c));
    if !ok {
        bail!(
            "invalid session id {s:?}: 1 to 128 letters, digits, '-', '_', '.' or ':' (it is \
             passed to the program's argv on a resume)"
        );
    }
    Ok(())
}

/// `session_id`, `message` and `transcript_path` of a hook's JSON payload.
fn hook_payload() -> Result<(Option<String>, Option<String>, Option<String>)> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_PAYLOAD)
        .read_to_end(&mut buf)
        .context("reading the hook's JSON from stdin")?;
    let v: serde_json::Value =
        serde_json::from_slice(&buf).context("--hook-json: stdin is not a JSON object")?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok((field("session_id"), field("message"), field("transcript_path")))
}

fn state_of(m: &MarkState) -> AgentState {
    match m {
        MarkState::Ready => AgentState::Ready,
        MarkState::Busy => AgentState::Busy,
        MarkState::Blocked => AgentState::Blocked,
    }
}

/// A mark from an agent pool instance's hook: the agent's environment
/// names its slot (`MUXVISOR_SLOT`, set by the runner that started it),
/// and the instance's runner reads the mark (and the transcript a `Stop`
/// hook names, for the task's reply) at its next look.
fn mark_instance(
    ctx: &Ctx,
    spec: &crate::model::peer::PeerSpec,
    args: &MarkArgs,
    hook_sid: Option<String>,
    hook_msg: Option<String>,
    transcript: Option<String>,
) -> Result<ExitCode> {
    use crate::model::agent::instance::{self, SlotMark};
    let id = &spec.identity;
    let slot: u32 =
        std::env::var("MUXVISOR_SLOT").ok().and_then(|s| s.parse().ok()).with_context(|| {
            format!(
                "{id} is an agent pool: a mark comes from one instance's hook, whose environment \
                 has MUXVISOR_SLOT (none here)"
            )
        })?;
    let state = state_of(&args.state);
    let reason = args.reason.clone().or(if state == AgentState::Blocked { hook_msg } else { None });
    let session_id = args.session_id.clone().or(hook_sid);
    if let Some(s) = &session_id {
        check_session_id(s)?;
    }
    let m = SlotMark {
        mark: Mark { state, reason: reason.clone(), at: Utc::now() },
        transcript_path: transcript.map(std::path::PathBuf::from),
        session_id: session_id.clone(),
    };
    instance::write_mark(&ctx.root, id, slot, &m)?;
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "slot": slot,
            "state": state,
            "reason": reason,
            "session_id": session_id,
        }))?;
    } else {
        output::line(format!("marked {id} instance {slot} {state}"))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Ctx, args: MarkArgs) -> Result<ExitCode> {
    let id = Identity::parse(&args.id)?;
    let spec = peer::require(&ctx.root, &id)?;
    let (hook_sid, hook_msg, transcript) =
        if args.hook_json { hook_payload()? } else { (None, None, None) };
    if spec.is_pool() {
        return mark_instance(ctx, &spec, &args, hook_sid, hook_msg, transcript);
    }
    if spec.policy != Policy::Persistent {
        bail!("{id} is ephemeral: only a persistent peer's agent has a state to mark");
    }
    let state = state_of(&args.state);
    let reason = args.reason.clone().or(if state == AgentState::Blocked { hook_msg } else { None });
    let session_id = args.session_id.clone().or(hook_sid);
    if let Some(s) = &session_id {
        check_session_id(s)?;
    }
    let now = Utc::now();
    let launched_at = crate::model::peer_state::load(&ctx.root, &id)?.launched_at;
    record::update(&ctx.root, &id, launched_at, |rec| {
        rec.mark = Some(Mark { state, reason: reason.clone(), at: now });
        if let Some(s) = &session_id {
            rec.session_id = Some(SessionId { id: s.clone(), source: "mark".into(), at: now });
        }
    })?;
    // On ready, the courier delivers (at once: its first look comes now).
    // Not here: a hook that typed into its own agent and waited for the
    // proof would hold up the agent, which may not take input while its
    // hook runs. The look logs the transition from the mark's point of view.
    let waiting = match Queue::open_existing(&ctx.root, &id)? {
        Some(q) => q.counts()?.pending > 0,
        None => false,
    };
    let agent = Looker::once().look_and_record(&ctx.root, &spec)?.view.state;
    let courier = waiting && state == AgentState::Ready;
    if courier {
        mailbox::ensure_courier(&ctx.root, &id)?;
    }
    if ctx.json {
        output::json(&json!({
            "identity": id,
            "state": state,
            "reason": reason,
            "session_id": session_id,
            "agent": agent,
            "courier": courier,
        }))?;
    } else {
        let mut line = format!("marked {id} {state}");
        if courier {
            line.push_str("; the courier delivers the next message");
        }
        output::line(line)?;
    }
    Ok(ExitCode::SUCCESS)
}
