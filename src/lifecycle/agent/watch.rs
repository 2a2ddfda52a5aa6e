//! Looking at an agent: read its visible screen (never the scrollback), ask
//! [`classify::decide`], and fold the answer into the record (which logs a
//! transition once). One-shot callers (`status`, the tick, `send`, `mark`)
//! pay one tmux call per look; loops (the courier, `launch --wait-ready`)
//! keep a control-mode client, so a look is one round trip on a socket, and
//! measure quiet from their own successive looks.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeZone, Utc};

use crate::ground::paths::Root;
use crate::model::agent::classify::{self, Facts, Rules, View};
use crate::model::agent::presets::{self, Patterns};
use crate::model::agent::record::{self, Record};
use crate::model::peer::PeerSpec;
use crate::tmux::control::{Control, parse_meta};
use crate::tmux::{Cmd, Tmux, TmuxError};

/// Deadline of one look.
const LOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// The spec's patterns, compiled: per kind, the ones given to `add`, else
/// the preset's. True when a ready pattern is configured.
pub fn patterns(spec: &PeerSpec) -> Result<(Patterns, bool)> {
    let preset = match &spec.agent {
        Some(name) => Some(presets::preset(name).with_context(|| {
            let known: Vec<&str> = presets::PRESETS.iter().map(|p| p.name).collect();
            format!("unknown --agent {name:?}: muxvisor knows {}", known.join(", "))
        })?),
        None => None,
    };
    let pick = |mine: &[String], theirs: Option<&[&'static str]>| -> Vec<String> {
        if !mine.is_empty() {
            return mine.to_vec();
        }
        theirs.unwrap_or(&[]).iter().map(|s| s.to_string()).collect()
    };
    let ready = pick(&spec.ready_patterns, preset.map(|p| p.ready));
    let busy = pick(&spec.busy_patterns, preset.map(|p| p.busy));
    let blocked: Vec<(String, String)> = if spec.blocked_patterns.is_empty() {
        preset
            .map(|p| p.blocked.iter().map(|(r, re)| (r.to_string(), re.to_string())).collect())
            .unwrap_or_default()
    } else {
        spec.blocked_patterns.iter().map(|b| (b.reason.clone(), b.pattern.clone())).collect()
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let blocked_refs: Vec<(&str, &str)> =
        blocked.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = Patterns::new(&strs(&ready), &strs(&busy), &blocked_refs, preset.and_then(|p| p.reset))
        .map_err(|e| {
            anyhow::anyhow!("peer {}: a screen pattern does not compile: {e}", spec.identity)
        })?;
    // The settle belongs to the preset's own ready patterns.
    let p = match preset {
        Some(pre) if spec.ready_patterns.is_empty() => p.with_settle(pre.settle),
        _ => p,
    };
    Ok((p, !ready.is_empty()))
}

/// One look at the pane.
#[derive(Clone, Debug)]
pub struct Sight {
    pub screen: String,
    pub dead: bool,
    pub last_output: Option<DateTime<Utc>>,
    /// When the capture was asked for: the screen is no older than this.
    pub taken_at: DateTime<Utc>,
}

/// What [`Looker::look_and_record`] found, decided.
#[derive(Clone, Debug)]
pub struct Look {
    pub view: View,
    /// When the current state began (as logged).
    pub since: DateTime<Utc>,
    pub screen: Option<String>,
    pub fingerprint: Option<u64>,
    pub record: Record,
}

/// Looks at one peer's pane, remembering what it needs between looks.
pub struct Looker {
    control: Option<Control>,
    keep_control: bool,
    /// Fingerprint of the last screen and since when it has not changed.
    last: Option<(u64, Instant)>,
    /// The spec's compiled patterns (compiling a preset costs about as
    /// much as a look): the spec they were compiled from, as JSON.
    compiled: Option<(String, Patterns, bool)>,
}

impl Looker {
    /// A looker for one look (plain tmux calls; quiet from tmux's activity).
    pub fn once() -> Looker {
        Looker { control: None, keep_control: false, last: None, compiled: None }
    }

    /// A looker for a loop: a control-mode client, quiet from its own looks.
    pub fn for_loop() -> Looker {
        Looker { control: None, keep_control: true, last: None, compiled: None }
    }

    /// The spec's patterns, compiled once per spec; true when a ready
    /// pattern is configured.
    pub fn patterns(&mut self, spec: &PeerSpec) -> Result<(Patterns, bool)> {
        let key = serde_json::to_string(spec)?;
        if let Some((k, p, r)) = &self.compiled
            && *k == key
        {
            return Ok((p.clone(), *r));
        }
        let (p, r) = patterns(spec)?;
        self.compiled = Some((key, p.clone(), r));
        Ok((p, r))
    }

    /// Read the pane: screen, dead or not, last output. `None` when no
    /// server answers.
    pub fn sight(&mut self, root: &Root, spec: &PeerSpec) -> Result<Option<Sight>> {
        let id = &spec.identity;
        if std::fs::symlink_metadata(root.socket(id)).is_err() {
            self.control = None;
            return Ok(None);
        }
        let tmux = Tmux::new(root.socket(id)).map_err(TmuxError::into_anyhow)?;
        let taken_at = Utc::now();
        if self.keep_control {
            if self.control.is_none() {
                self.control = Control::attach(&tmux, id, LOOK_TIMEOUT).ok();
            }
            if let Some(c) = self.control.as_mut() {
                match c.look(id, LOOK_TIMEOUT) {
                    Ok((screen, dead, act)) => {
                        let screen = classify::normalize(&screen);
                        return Ok(Some(Sight { screen, dead, last_output: time(act), taken_at }));
                    }
                    Err(_) => self.control = None,
                }
            }
        }
        let t = id.target();
        let cmd = Cmd::new("capture-pane")
            .args(["-p", "-t", t.as_str()])
            .then("display-message")
            .args(["-p", "-t", t.as_str(), "#{pane_dead} #{window_activity}"]);
        match tmux.with_timeout(LOOK_TIMEOUT).run(&cmd) {
            Ok(out) => {
                let body = out.stdout.trim_end_matches('\n');
                let (screen, meta) = body.rsplit_once('\n').unwrap_or(("", body));
                let (dead, act) = parse_meta(meta);
                Ok(Some(Sight {
                    screen: classify::normalize(screen),
                    dead,
                    last_output: time(act),
                    taken_at,
                }))
            }
            Err(e) if e.is_gone() => Ok(None),
            Err(TmuxError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e.into_anyhow()),
        }
    }

    /// Look, decide, and fold the result into the record (which logs a
    /// change of state): every look is recorded, so a look by `status` is
    /// as honest as the tick's.
    pub fn look_and_record(&mut self, root: &Root, spec: &PeerSpec) -> Result<Look> {
        let id = &spec.identity;
        if spec.policy != crate::model::peer::Policy::Persistent {
            bail!("{id} is ephemeral: only persistent peers have an agent state");
        }
        let (pats, has_ready) = self.patterns(spec)?;
        let launched_at = crate::model::peer_state::load(root, id)?.launched_at;
        let sight = self.sight(root, spec)?;
        let now = Utc::now();
        let fp = sight.as_ref().map(|s| classify::fingerprint(&s.screen));
        let own_quiet = match (fp, self.last) {
            (Some(f), Some((g, since))) if f == g => Some(since.elapsed()),
            _ => {
                self.last = fp.map(|f| (f, Instant::now()));
                None
            }
        };
        let quiet_for = if self.keep_control {
            own_quiet
        } else {
            sight
                .as_ref()
                .and_then(|s| s.last_output)
                .map(|t| (now - t).to_std().unwrap_or_default())
        };
        let decide = |rec: &Record| {
            classify::decide(
                &Facts {
                    running: sight.as_ref().is_some_and(|s| !s.dead),
                    screen: sight.as_ref().map(|s| s.screen.as_str()),
                    quiet_for,
                    mark: rec.mark.as_ref(),
                    delivery: rec.delivery.as_ref(),
                    undelivered: rec.undelivered.as_ref(),
                    seen_at: sight.as_ref().map(|s| s.taken_at),
                    ever_ready: rec.ever_ready,
                    parked_until: rec.parked.as_ref().map(|p| p.until),
                    now,
                },
                &Rules { patterns: &pats, has_ready, quiet: spec.quiet },
            )
        };
        let taken_at = sight.as_ref().map(|s| s.taken_at);
        let conclude = |rec: &mut Record| {
            // Only a screen asked for after the delivery shows that it
            // was taken in: a capture from before it (a looker that was
            // slower than the deliverer) proves nothing.
            if let (Some(d), Some(f), Some(t)) = (rec.delivery.as_mut(), fp, taken_at)
                && d.taken_in_by(f, t)
            {
                d.changed = true;
            }
            let mut view = decide(rec);
            if park(rec, &view, &pats, sight.as_ref().map(|s| s.screen.as_str())) {
                view = decide(rec);
            }
            view
        };
        let (view, since, rec) = record::update(root, id, launched_at, |rec| {
            let view = conclude(rec);
            let since = record::note(rec, id, &view, now, &root.lifecycle_log());
            (view, since, rec.clone())
        })?;
        Ok(Look { view, since, screen: sight.map(|s| s.screen), fingerprint: fp, record: rec })
    }
}

/// A usage-limit block whose notice shows a reset time the record does not
/// have yet: park the agent until then. True when the record changed.
fn park(rec: &mut Record, view: &View, pats: &Patterns, screen: Option<&str>) -> bool {
    use crate::model::agent::presets::reason::USAGE_LIMIT;
    if view.reason.as_deref() != Some(USAGE_LIMIT) {
        return false;
    }
    // The preset's reset pattern, else the lines the blocked pattern matched.
    let joined = view.lines.join(" ");
    let text = screen.and_then(|s| pats.reset_time(s)).unwrap_or(joined.as_str());
    if rec.parked.as_ref().is_some_and(|p| p.text == text) {
        return false;
    }
    match crate::model::agent::limit::parse_reset_local(text) {
        Some(until) => {
            rec.parked = Some(record::Parked { text: text.to_string(), until, continued: false });
            true
        }
        // Another notice, with no reset time (Gemini's daily quota): an
        // older notice's time is not this one's. Blocked, with no end known.
        None => rec.parked.take().is_some(),
    }
}

fn time(unix: Option<i64>) -> Option<DateTime<Utc>> {
    unix.and_then(|t| Utc.timestamp_opt(t, 0).single())
}
