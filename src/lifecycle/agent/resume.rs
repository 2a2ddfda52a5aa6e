//! Resume-aware starts (SPEC §9): a persistent peer can carry a
//! conversation id, so that a crashed, reaped or rebooted agent comes back
//! in the same conversation instead of a fresh one.
//!
//! Where the arguments come from, per peer: `add --fresh-arg ARG` and
//! `--resume-arg ARG` (each repeatable, appended to the program's argv at a
//! fresh start and at a resume), else the `--agent` preset's (Claude Code:
//! `--session-id {session_id}` and `--resume {session_id}`), else a
//! `{session_id}` placeholder in the program's own argv. `{session_id}` is
//! replaced everywhere by the id.
//!
//! Which start, decided at each launch ([`plan`], pure):
//! - **fresh** when asked (`launch/restart --fresh`), when no id is known,
//!   when the peer cannot resume, and once after a resume whose program died
//!   before it was ever ready (logged `ev=resume-failed`): muxvisor then
//!   assigns a new id (a random UUID) if the fresh arguments use one;
//! - **resume** otherwise, with the id on record: the one muxvisor assigned
//!   at the last fresh start, or the one the agent's hook reported with
//!   `mark --session-id` (stored with its source). Ids are never guessed
//!   from files on disk.

use crate::model::agent::presets;
use crate::model::agent::record::Record;
use crate::model::peer::PeerSpec;

/// The placeholder for the conversation id.
pub const SESSION_ID: &str = "{session_id}";

/// How a peer resumes: arguments added at a fresh start and at a resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    pub fresh: Vec<String>,
    pub resume: Vec<String>,
}

/// The peer's resume arguments, if it can resume at all.
pub fn resume_of(spec: &PeerSpec) -> Option<Resume> {
    if !spec.fresh_args.is_empty() || !spec.resume_args.is_empty() {
        return Some(Resume { fresh: spec.fresh_args.clone(), resume: spec.resume_args.clone() });
    }
    if let Some(r) = spec.agent.as_deref().and_then(presets::preset).and_then(|p| p.resume) {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        return Some(Resume { fresh: own(r.fresh), resume: own(r.resume) });
    }
    spec.command
        .iter()
        .any(|a| a.contains(SESSION_ID))
        .then(|| Resume { fresh: Vec::new(), resume: Vec::new() })
}

/// The start decided for one launch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub argv: Vec<String>,
    /// `fresh` or `resume`.
    pub started_as: &'static str,
    /// The id this start uses, and whether it was assigned now.
    pub session_id: Option<(String, bool)>,
    /// The id of a resume that died before it was ready: this start is the
    /// fallback (log `ev=resume-failed`).
    pub resume_failed: Option<String>,
}

/// Decide the argv of a launch of `spec`, given the record of its previous
/// incarnation and a fresh id to use if one is needed. Pure.
pub fn plan(spec: &PeerSpec, prev: &Record, fresh: bool, new_id: &str) -> Plan {
    let Some(r) = resume_of(spec) else {
        return Plan {
            argv: spec.command.clone(),
            started_as: "fresh",
            session_id: None,
            resume_failed: None,
        };
    };
    let known = prev.session_id.as_ref().map(|s| s.id.clone());
    let failed_resume = prev.incarnation.is_some()
        && prev.started_as.as_deref() == Some("resume")
        && !prev.ever_ready;
    let can_resume = !r.resume.is_empty() || spec.command.iter().any(|a| a.contains(SESSION_ID));
    let resume_id = known.clone().filter(|_| !fresh && can_resume && !failed_resume);
    let fill = |v: &[String], id: &str| -> Vec<String> {
        v.iter().map(|a| a.replace(SESSION_ID, id)).collect()
    };
    if let Some(id) = resume_id {
        let mut argv = fill(&spec.command, &id);
        argv.extend(fill(&r.resume, &id));
        return Plan {
            argv,
            started_as: "resume",
            session_id: Some((id, false)),
            resume_failed: None,
        };
    }
    let uses_id = r.fresh.iter().chain(&spec.command).any(|a| a.contains(SESSION_ID));
    let mut argv = fill(&spec.command, new_id);
    argv.extend(fill(&r.fresh, new_id));
    Plan {
        argv,
        started_as: "fresh",
        session_id: uses_id.then(|| (new_id.to_string(), true)),
        resume_failed: if failed_resume && !fresh { known } else { None },
    }
}

/// A random (version 4) UUID.
pub fn new_uuid() -> String {
    let a = crate::model::queue::random_u64();
    let b = crate::model::queue::random_u64();
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000; // version 4
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000; // variant 10
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent::record::SessionId;
    use crate::model::peer::{Identity, Policy};
    use chrono::Utc;

    fn claude() -> PeerSpec {
        let mut s = PeerSpec::new(
            Identity::parse("c").unwrap(),
            Policy::Persistent,
            vec!["claude".into()],
            "/".into(),
        );
        s.agent = Some("claude".into());
        s
    }

    fn prev(id: Option<&str>, started_as: Option<&str>, ever_ready: bool) -> Record {
        Record {
            incarnation: Some(Utc::now()),
            ever_ready,
            started_as: started_as.map(str::to_string),
            session_id: id.map(|i| SessionId {
                id: i.into(),
                source: "assigned".into(),
                at: Utc::now(),
            }),
            ..Record::default()
        }
    }

    #[test]
    fn claude_gets_an_id_then_resumes_it() {
        let s = claude();
        let p = plan(&s, &Record::default(), false, "new-1");
        assert_eq!(p.argv, ["claude", "--session-id", "new-1"]);
        assert_eq!((p.started_as, p.session_id), ("fresh", Some(("new-1".into(), true))));
        let p = plan(&s, &prev(Some("old-9"), Some("fresh"), true), false, "new-2");
        assert_eq!(p.argv, ["claude", "--resume", "old-9"]);
        assert_eq!(p.started_as, "resume");
        // --fresh skips it.
        let p = plan(&s, &prev(Some("old-9"), Some("fresh"), true), true, "new-3");
        assert_eq!(p.argv, ["claude", "--session-id", "new-3"]);
        assert_eq!(p.resume_failed, None);
    }

    #[test]
    fn a_resume_that_never_got_ready_falls_back_to_fresh_once() {
        let s = claude();
        let p = plan(&s, &prev(Some("old-9"), Some("resume"), false), false, "new-4");
        assert_eq!(p.argv, ["claude", "--session-id", "new-4"]);
        assert_eq!(p.resume_failed.as_deref(), Some("old-9"));
        // The fresh start's own death resumes its new id next time.
        let p = plan(&s, &prev(Some("new-4"), Some("fresh"), false), false, "new-5");
        assert_eq!(p.argv, ["claude", "--resume", "new-4"]);
        // A resume that did get ready and died later resumes again.
        let p = plan(&s, &prev(Some("old-9"), Some("resume"), true), false, "x");
        assert_eq!(p.started_as, "resume");
    }

    #[test]
    fn generic_peers_use_placeholders_and_plain_peers_are_untouched() {
        let mut s = claude();
        s.agent = None;
        s.command = vec!["repl".into(), "--log".into(), "/tmp/{session_id}.log".into()];
        let p = plan(&s, &Record::default(), false, "u1");
        assert_eq!(p.argv, ["repl", "--log", "/tmp/u1.log"]);
        let p = plan(&s, &prev(Some("u1"), Some("fresh"), true), false, "u2");
        assert_eq!((p.argv[2].as_str(), p.started_as), ("/tmp/u1.log", "resume"));
        s.command = vec!["repl".into()];
        s.fresh_args = vec!["--new".into(), "{session_id}".into()];
        s.resume_args = vec!["--continue".into(), "{session_id}".into()];
        let p = plan(&s, &prev(Some("u1"), Some("fresh"), true), false, "u2");
        assert_eq!(p.argv, ["repl", "--continue", "u1"]);
        // An id reported by the agent's hook is resumed the same way.
        s.command = vec!["sh".into()];
        s.fresh_args.clear();
        s.resume_args.clear();
        let p = plan(&s, &prev(Some("m1"), Some("fresh"), true), false, "u3");
        assert_eq!((p.argv.clone(), p.session_id), (vec!["sh".to_string()], None));
    }

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
        assert_ne!(new_uuid(), u);
    }
}
