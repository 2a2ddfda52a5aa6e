//! The decide table, case by case, on a synthetic clock.

use super::*;
use crate::model::agent::classify::AgentState;
use crate::model::peer::Identity;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    t0() + TimeDelta::milliseconds(ms)
}

fn at(s: i64) -> DateTime<Utc> {
    at_ms(s * 1000)
}

fn spec(policy: Policy) -> PeerSpec {
    let mut s = PeerSpec::new(Identity::parse("p").unwrap(), policy, vec!["x".into()], "/".into());
    s.backoff = Duration::from_millis(100);
    s.max_backoff = Duration::from_millis(400);
    s.restart_burst = 3;
    s.restart_window = Duration::from_secs(60);
    s.max_attempts = 3;
    s.task_timeout = Duration::from_secs(30);
    s
}

fn obs(seen: Seen) -> Observed {
    Observed {
        seen,
        pane_pid: Some(10),
        server_pid: Some(9),
        last_output: Some(at(9)),
        dead_at: None,
    }
}

/// An observation as tmux gives it: a dead pane has its death time (3.3+),
/// here one second after the incarnation's launch at 0; a missing session
/// or server has none.
fn tmux_obs(seen: Seen) -> Observed {
    let dead_at = matches!(seen, Seen::PaneDead { .. }).then(|| at(1));
    Observed { dead_at, ..obs(seen) }
}

fn dead(status: i32) -> Seen {
    Seen::PaneDead { status: Some(status), signal: None }
}

fn state(phase: Phase) -> State {
    let mut st = State::default();
    match phase {
        Phase::Never => {}
        Phase::Stopped => {
            st.launched_at = Some(at(0));
            st.stopped = true;
            st.stop_reason = Some("stop".into());
        }
        Phase::Failed => {
            st.launched_at = Some(at(0));
            st.failed = true;
        }
        Phase::Live => st.launched_at = Some(at(0)),
    }
    assert_eq!(Phase::of(&st), phase);
    st
}

/// The decision without its `RecordExit` (a record of the death, not a
/// decision; [`a_dead_pane_is_recorded_once_by_the_tick_too`] pins it).
fn run(o: &Observed, st: &State, spec: &PeerSpec, q: &QueueFacts, now: DateTime<Utc>) -> Plan {
    let mut p = run_all(o, st, spec, q, now);
    p.actions.retain(|a| !matches!(a, Action::RecordExit { .. }));
    p
}

fn run_all(o: &Observed, st: &State, spec: &PeerSpec, q: &QueueFacts, now: DateTime<Utc>) -> Plan {
    decide(&Input {
        observed: o,
        recorded: st,
        spec,
        queue: q,
        now,
        seed: 7,
        maintenance: true,
        agent: None,
    })
}

fn kinds(p: &Plan) -> Vec<&'static str> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::RecordExit { .. } => "record-exit",
            Action::ReportHung { .. } => "hung",
            Action::RecordGone { .. } => "gone",
            Action::NudgeServer => "nudge",
            Action::CleanStaleSocket => "clean-socket",
            Action::EnsureCanary => "canary",
            Action::ReapIdle { .. } => "reap-idle",
            Action::ReapAge { .. } => "reap-age",
            Action::Restart { .. } => "restart",
            Action::RestartPending { .. } => "pending",
            Action::MarkFailed { .. } => "failed",
            Action::FailTask { .. } => "fail",
            Action::StopWorker { .. } => "stop-worker",
            Action::EndSlot { .. } => "end-slot",
            Action::Teardown => "teardown",
            Action::ExpireTasks => "expire",
            Action::StartNext => "start-next",
            Action::FillSlots => "fill-slots",
            Action::RespawnRunner => "respawn-runner",
            Action::RecordWorkerExits => "worker-exits",
            Action::EnsureCourier => "courier",
            Action::LaunchHeld => "launch-held",
            Action::SendContinue => "continue",
        })
        .collect()
}

const SEENS: [&str; 6] = ["alive", "dead1", "session-gone", "no-socket", "stale", "hung"];

fn seen(name: &str) -> Seen {
    match name {
        "alive" => Seen::Alive,
        "dead1" => dead(1),
        "dead0" => dead(0),
        "session-gone" => Seen::SessionGone,
        "no-socket" => Seen::NoSocket,
        "stale" => Seen::StaleSocket,
        "hung" => Seen::Hung,
        _ => unreachable!(),
    }
}

/// Every (observed, recorded) pair of the persistent table, ten seconds after
/// the launch: a dead pane died at 1 s, long enough ago for its restart; a
/// missing session or server dies when the tick sees it, so its restart
/// waits its backoff.
#[test]
fn persistent_table_every_pair() {
    use Phase::*;
    let table: &[(&str, Phase, &[&str])] = &[
        ("alive", Never, &["canary"]),
        ("alive", Stopped, &[]),
        ("alive", Failed, &[]),
        ("alive", Live, &["canary"]),
        ("dead1", Never, &[]),
        ("dead1", Stopped, &[]),
        ("dead1", Failed, &[]),
        ("dead1", Live, &["restart"]),
        ("session-gone", Never, &[]),
        ("session-gone", Stopped, &[]),
        ("session-gone", Failed, &[]),
        ("session-gone", Live, &["gone", "pending"]),
        ("no-socket", Never, &[]),
        ("no-socket", Stopped, &[]),
        ("no-socket", Failed, &[]),
        ("no-socket", Live, &["gone", "pending"]),
        ("stale", Never, &["clean-socket"]),
        ("stale", Stopped, &["clean-socket"]),
        ("stale", Failed, &["clean-socket"]),
        ("stale", Live, &["clean-socket", "gone", "pending"]),
        ("hung", Never, &["hung"]),
        ("hung", Stopped, &["hung"]),
        ("hung", Failed, &["hung"]),
        ("hung", Live, &["hung"]),
    ];
    assert_eq!(table.len(), SEENS.len() * 4, "every pair is listed");
    let s = spec(Policy::Persistent);
    for (name, phase, want) in table {
        let p = run(&tmux_obs(seen(name)), &state(*phase), &s, &QueueFacts::default(), at(10));
        assert_eq!(kinds(&p), *want, "({name}, {phase:?})");
    }
}

/// Every (observed, runner, task) triple of the ephemeral table, with one
/// more task pending.
#[test]
fn ephemeral_table_every_pair() {
    let table: &[(&str, bool, bool, &[&str])] = &[
        ("alive", true, true, &["expire", "canary"]),
        ("alive", true, false, &["expire", "canary"]),
        ("alive", false, true, &["expire", "stop-worker", "fail", "start-next"]),
        ("alive", false, false, &["expire", "stop-worker", "start-next"]),
        ("dead1", true, true, &["expire"]),
        ("dead1", true, false, &["expire"]),
        ("dead1", false, true, &["expire", "teardown", "fail", "start-next"]),
        ("dead1", false, false, &["expire", "teardown", "start-next"]),
        ("session-gone", true, true, &["expire"]),
        ("session-gone", true, false, &["expire"]),
        ("session-gone", false, true, &["expire", "gone", "teardown", "fail", "start-next"]),
        ("session-gone", false, false, &["expire", "gone", "start-next"]),
        ("no-socket", true, true, &["expire"]),
        ("no-socket", true, false, &["expire"]),
        ("no-socket", false, true, &["expire", "gone", "teardown", "fail", "start-next"]),
        ("no-socket", false, false, &["expire", "gone", "start-next"]),
        ("stale", true, true, &["expire"]),
        ("stale", true, false, &["expire"]),
        (
            "stale",
            false,
            true,
            &["expire", "clean-socket", "gone", "teardown", "fail", "start-next"],
        ),
        ("stale", false, false, &["expire", "clean-socket", "gone", "start-next"]),
        ("hung", true, true, &["expire", "hung"]),
        ("hung", true, false, &["expire", "hung"]),
        ("hung", false, true, &["expire", "hung"]),
        ("hung", false, false, &["expire", "hung"]),
    ];
    assert_eq!(table.len(), SEENS.len() * 4, "every triple is listed");
    let s = spec(Policy::Ephemeral);
    let st = state(Phase::Live);
    for (name, runner, has_task, want) in table {
        let q = QueueFacts {
            running: has_task.then(|| running("t1", 1)),
            pending: 1,
            runner: *runner,
            ..QueueFacts::default()
        };
        let p = run(&obs(seen(name)), &st, &s, &q, at(10));
        assert_eq!(kinds(&p), *want, "({name}, runner: {runner}, task running: {has_task})");
    }
}

fn running(task: &str, attempt: u32) -> RunningTask {
    RunningTask { task: task.into(), attempt, started_at: at(0) }
}

#[test]
fn labels_follow_status_states() {
    let live = state(Phase::Live);
    let l = |seen: Seen, st: &State| label(&obs(seen), st);
    assert_eq!(l(Seen::Alive, &live), "running");
    assert_eq!(l(dead(0), &live), "exited");
    assert_eq!(l(Seen::SessionGone, &live), "session-gone");
    assert_eq!(l(Seen::NoSocket, &live), "server-dead");
    assert_eq!(l(Seen::StaleSocket, &live), "server-dead");
    assert_eq!(l(Seen::Hung, &live), "hung");
    assert_eq!(l(Seen::NoSocket, &state(Phase::Stopped)), "stopped");
    assert_eq!(l(Seen::NoSocket, &state(Phase::Never)), "stopped");
    assert_eq!(l(Seen::NoSocket, &state(Phase::Failed)), "failed");
    let p =
        run(&obs(Seen::NoSocket), &live, &spec(Policy::Persistent), &QueueFacts::default(), at(1));
    assert_eq!(p.state.last_observed.as_deref(), Some("server-dead"));
}

/// Issue #19 item 4: a dead pane whose hook did not run (its binary moved)
/// was restarted with no recorded cause. The tick records the death (the
/// act layer writes it only if the hook has not), once per incarnation.
#[test]
fn a_dead_pane_is_recorded_once_by_the_tick_too() {
    let mut s = spec(Policy::Persistent);
    s.restart = Restart::Never;
    let q = QueueFacts::default();
    let first = run_all(&obs(dead(1)), &state(Phase::Live), &s, &q, at(10));
    assert_eq!(first.actions, vec![Action::RecordExit { status: Some(1), signal: None }]);
    let again = run_all(&obs(dead(1)), &first.state, &s, &q, at(70));
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    let e = spec(Policy::Ephemeral);
    let plan = run_all(&obs(dead(1)), &state(Phase::Live), &e, &q, at(10));
    assert!(plan.actions.contains(&Action::RecordExit { status: Some(1), signal: None }));
}

#[test]
fn a_death_is_recorded_once() {
    let mut s = spec(Policy::Persistent);
    s.restart = Restart::Never;
    let q = QueueFacts::default();
    let first = run(&obs(Seen::NoSocket), &state(Phase::Live), &s, &q, at(10));
    assert_eq!(
        first.actions,
        vec![Action::RecordGone {
            death: SessionDeath::ServerDead,
            reason: "tmux server is not running".into()
        }]
    );
    let again = run(&obs(Seen::NoSocket), &first.state, &s, &q, at(70));
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.state, first.state);
    let sg = run(&obs(Seen::SessionGone), &state(Phase::Live), &s, &q, at(10));
    assert!(matches!(sg.actions[0], Action::RecordGone { death: SessionDeath::SessionGone, .. }));
}

#[test]
fn restart_policies() {
    let q = QueueFacts::default();
    let live = state(Phase::Live);
    let mut s = spec(Policy::Persistent);
    let cases = [
        (Restart::OnFailure, dead(0), vec![]),
        (Restart::OnFailure, dead(3), vec!["restart"]),
        (
            Restart::OnFailure,
            Seen::PaneDead { status: None, signal: Some("9".into()) },
            vec!["restart"],
        ),
        (Restart::Always, dead(0), vec!["restart"]),
        (Restart::Never, dead(3), vec![]),
        (Restart::Never, Seen::SessionGone, vec!["gone"]),
        (Restart::Always, Seen::NoSocket, vec!["gone", "pending"]),
    ];
    for (policy, seen, want) in cases {
        s.restart = policy;
        let p = run(&tmux_obs(seen.clone()), &live, &s, &q, at(10));
        assert_eq!(kinds(&p), want, "{policy:?} {seen:?}");
    }
}

#[test]
fn lost_exit_status_nudges_and_counts_as_failure() {
    let p = run(
        &tmux_obs(Seen::PaneDead { status: None, signal: None }),
        &state(Phase::Live),
        &spec(Policy::Persistent),
        &QueueFacts::default(),
        at(10),
    );
    assert_eq!(kinds(&p), vec!["nudge", "restart"]);
}

#[test]
fn backoff_doubles_is_capped_and_jittered_down_by_at_most_a_quarter() {
    let s = spec(Policy::Persistent);
    for seed in 0..200u64 {
        let b: Vec<u64> = (1..=5).map(|n| backoff_for(&s, n, seed).as_millis() as u64).collect();
        for (n, ms) in b.iter().enumerate() {
            let full = (100u64 << n).min(400);
            assert!(*ms <= full && *ms >= full - full / 4, "seed {seed} attempt {}: {ms}", n + 1);
        }
        assert!(b[0] < b[1] && b[1] < b[2], "grows until the cap: {b:?}");
        assert_eq!(backoff_for(&s, 2, seed), backoff_for(&s, 2, seed), "pure");
    }
    assert!(backoff_for(&s, u32::MAX, 1).as_millis() as u64 <= 400);
}

/// A program that dies at once, ticked every 50 ms: restarts wait a growing
/// backoff, and the third death within the window marks the peer failed.
#[test]
fn crash_loop_grows_backoff_then_fails() {
    let s = spec(Policy::Persistent);
    let q = QueueFacts::default();
    let mut st = state(Phase::Live);
    let mut restarts = Vec::new();
    let mut now_ms = 0;
    let mut failed = None;
    while now_ms < 10_000 && failed.is_none() {
        now_ms += 50;
        let seen = if st.launched_at == Some(at_ms(now_ms)) { Seen::Alive } else { dead(1) };
        let p = run(&obs(seen), &st, &s, &q, at_ms(now_ms));
        st = p.state;
        for a in p.actions {
            match a {
                Action::Restart { attempt, backoff_ms } => {
                    restarts.push((attempt, backoff_ms, now_ms));
                    after_restart(&mut st, attempt);
                    st.launched_at = Some(at_ms(now_ms));
                }
                Action::MarkFailed { restarts, failures, window_s } => {
                    failed = Some((restarts, failures, window_s))
                }
                Action::RestartPending { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(failed, Some((2, 3, 60)), "restarts: {restarts:?}");
    assert_eq!(restarts.len(), 2);
    assert_eq!((restarts[0].0, restarts[1].0), (1, 2));
    assert!(restarts[0].1 < restarts[1].1, "backoff grows: {restarts:?}");
    assert!(st.failed);
    // Failed is terminal: later ticks do nothing, however much time passes.
    let p = run(&obs(dead(1)), &st, &s, &q, at(3600));
    assert!(p.actions.is_empty());
}

#[test]
fn a_restart_not_yet_due_is_taken_by_a_later_tick() {
    let s = spec(Policy::Persistent);
    let q = QueueFacts::default();
    let mut st = state(Phase::Live);
    st.launched_at = Some(at_ms(1000));
    st.restart_attempt = 2; // next is attempt 3: 300..400 ms after the death
    let p = run(&obs(dead(1)), &st, &s, &q, at_ms(1100));
    let due = p.state.next_restart_at.expect("scheduled");
    assert!(due >= at_ms(1400) && due <= at_ms(1500), "{due}");
    let b = p.state.pending_backoff_ms;
    assert_eq!(
        p.actions,
        vec![Action::RestartPending { attempt: 3, backoff_ms: b, due_in_ms: b }],
        "the tick says when"
    );
    assert_eq!(p.state.pending_attempt, 3);
    let early = run(&obs(dead(1)), &p.state, &s, &q, at_ms(1150));
    assert_eq!(
        early.actions,
        vec![Action::RestartPending { attempt: 3, backoff_ms: b, due_in_ms: b - 50 }]
    );
    let p2 = run(&obs(dead(1)), &p.state, &s, &q, due);
    assert_eq!(
        p2.actions,
        vec![Action::Restart { attempt: 3, backoff_ms: p.state.pending_backoff_ms }]
    );
    assert_eq!(p2.state.failures.len(), 1, "the death counted once");
}

#[test]
fn a_healthy_run_resets_the_attempt_counter() {
    let s = spec(Policy::Persistent);
    let mut st = state(Phase::Live);
    st.restart_attempt = 4;
    let died = |t: i64| Observed { dead_at: Some(at(t)), ..obs(dead(1)) };
    // Died in its 61st second: lived the healthy minute.
    let long = run(&died(60), &st, &s, &QueueFacts::default(), at(65));
    assert!(matches!(long.actions[..], [Action::Restart { attempt: 1, .. }]), "{long:?}");
    let short = run(&died(58), &st, &s, &QueueFacts::default(), at(65));
    assert!(matches!(short.actions[..], [Action::Restart { attempt: 5, .. }]), "{short:?}");
}

/// Issue 10, item 14: the backoff was counted from the launch, so a peer
/// that had run for a while was restarted the moment its death was seen,
/// while the tick printed "backoff 881ms". It is counted from the death.
#[test]
fn backoff_counts_from_the_death_not_the_launch() {
    let s = spec(Policy::Persistent);
    let q = QueueFacts::default();
    let mut st = state(Phase::Live);
    st.restart_attempt = 1; // the last run was short: attempt 2, 150..200 ms
    st.launched_at = Some(at(30));
    // The server was killed; the tick at 50 s is the first to know.
    let seen_at = at(50);
    let p = run(&obs(Seen::NoSocket), &st, &s, &q, seen_at);
    assert_eq!(kinds(&p), ["gone", "pending"]);
    let b = p.state.pending_backoff_ms;
    assert!((150..=200).contains(&b), "{b}");
    assert_eq!(p.state.next_restart_at, Some(seen_at + TimeDelta::milliseconds(b as i64)));
    let just_before = seen_at + TimeDelta::milliseconds(b as i64 - 1);
    assert_eq!(kinds(&run(&obs(Seen::NoSocket), &p.state, &s, &q, just_before)), ["pending"]);
    let due = p.state.next_restart_at.unwrap();
    let r = run(&obs(Seen::NoSocket), &p.state, &s, &q, due);
    assert_eq!(r.actions, vec![Action::Restart { attempt: 2, backoff_ms: b }]);

    // A dead pane carries its death time (whole seconds, so the end of that
    // second, or now if that is sooner): a death long before the tick
    // restarts at once, a fresh one waits its backoff.
    let old = Observed { dead_at: Some(at(40)), ..obs(dead(1)) };
    assert_eq!(kinds(&run(&old, &st, &s, &q, seen_at)), ["restart"]);
    let fresh = Observed { dead_at: Some(at(50)), ..obs(dead(1)) };
    let p = run(&fresh, &st, &s, &q, at_ms(50_300));
    assert_eq!(kinds(&p), ["pending"]);
    assert_eq!(p.state.next_restart_at, Some(at_ms(50_300) + TimeDelta::milliseconds(b as i64)));
}

#[test]
fn failures_outside_the_window_do_not_count() {
    let s = spec(Policy::Persistent);
    let mut st = state(Phase::Live);
    st.launched_at = Some(at(200));
    st.failures = vec![at(0), at(1), at(190)];
    let p = run(&obs(dead(1)), &st, &s, &QueueFacts::default(), at(201));
    assert_eq!(kinds(&p), vec!["pending"], "two failures in the window: not failed");
    assert_eq!(p.state.failures, vec![at(190), at(201)]);
}

#[test]
fn a_failed_launch_counts_and_backs_off_from_now() {
    let s = spec(Policy::Persistent);
    let mut st = state(Phase::Live);
    st.pending_attempt = 1;
    after_failed_restart(&mut st, &s, at(5), 3);
    assert_eq!(st.failures, vec![at(5)]);
    assert_eq!(st.restart_attempt, 1);
    assert_eq!(st.pending_attempt, 2);
    let due = st.next_restart_at.unwrap();
    assert!(due > at(5) && due <= at_ms(5200), "{due}");
}

#[test]
fn reaping_by_age_beats_idleness_and_needs_a_ttl() {
    let mut s = spec(Policy::Persistent);
    let live = state(Phase::Live);
    let q = QueueFacts::default();
    let mut o = obs(Seen::Alive);
    o.last_output = Some(at(7));
    assert_eq!(kinds(&run(&o, &live, &s, &q, at(10))), vec!["canary"]);
    s.idle_ttl = Some(Duration::from_secs(2));
    // tmux gives output to the second: output "at 7" may be 7.999.
    let p = run(&o, &live, &s, &q, at(11));
    assert_eq!(p.actions, vec![Action::EnsureCanary, Action::ReapIdle { idle_s: 3 }]);
    assert_eq!(kinds(&run(&o, &live, &s, &q, at(10))), vec!["canary"], "2 s is not idle > 2 s");
    // A message delivered is activity too.
    let a = AgentFacts { last_delivery: Some(at(10)), ..agent(AgentState::Busy, true, 0, false) };
    assert_eq!(kinds(&with_agent(&o, &live, &s, a, at(11))), vec!["canary"]);
    s.max_age = Some(Duration::from_secs(5));
    let p = run(&o, &live, &s, &q, at(10));
    assert_eq!(p.actions, vec![Action::EnsureCanary, Action::ReapAge { age_s: 10 }]);
    // Never any output: idleness counts from the launch.
    s.max_age = None;
    o.last_output = None;
    let p = run(&o, &live, &s, &q, at(10));
    assert_eq!(p.actions, vec![Action::EnsureCanary, Action::ReapIdle { idle_s: 10 }]);
}

#[test]
fn a_reaped_or_stopped_peer_is_not_restarted() {
    let s = spec(Policy::Persistent);
    let mut st = state(Phase::Stopped);
    st.stop_reason = Some("reaped-idle".into());
    for seen in [Seen::NoSocket, Seen::SessionGone, dead(1)] {
        let p = run(&obs(seen), &st, &s, &QueueFacts::default(), at(100));
        assert!(p.actions.is_empty());
    }
}

#[test]
fn hung_is_news_once() {
    let s = spec(Policy::Persistent);
    let p = run(&obs(Seen::Hung), &state(Phase::Live), &s, &QueueFacts::default(), at(1));
    assert_eq!(p.actions, vec![Action::ReportHung { first: true }]);
    let p2 = run(&obs(Seen::Hung), &p.state, &s, &QueueFacts::default(), at(2));
    assert_eq!(p2.actions, vec![Action::ReportHung { first: false }]);
}

fn eph(seen: Seen, runner: bool, task: RunningTask, s: &PeerSpec, now: DateTime<Utc>) -> Plan {
    let q = QueueFacts { running: Some(task), pending: 0, runner, ..QueueFacts::default() };
    run(&obs(seen), &state(Phase::Live), s, &q, now)
}

fn fail(task: &str, reason: &str) -> Action {
    Action::FailTask { task: task.into(), reason: reason.into() }
}

/// `--workers N`: a dead worker slot's task is retried whatever the first
/// runner does (but not while the server hangs); a live first runner gets
/// more workers when they are wanted; a dead first pane while workers live
/// is respawned in place, never torn down under them.
#[test]
fn worker_slots() {
    let s = spec(Policy::Ephemeral);
    let q = QueueFacts {
        running: None,
        pending: 3,
        runner: true,
        orphans: vec![running("t9", 1)],
        workers_alive: true,
        slots_wanted: true,
        slot_tasks: vec![],
    };
    let p = run(&obs(Seen::Alive), &state(Phase::Live), &s, &q, at(10));
    assert_eq!(kinds(&p), vec!["expire", "worker-exits", "fail", "canary", "fill-slots"]);
    assert_eq!(p.actions[2], fail("t9", "runner-died"));
    // Its task goes back to the queue: a worker for it, wanted or not yet.
    let retried = QueueFacts { slots_wanted: false, pending: 0, ..q.clone() };
    let p = run(&obs(Seen::Alive), &state(Phase::Live), &s, &retried, at(10));
    assert_eq!(kinds(&p), vec!["expire", "worker-exits", "fail", "canary", "fill-slots"]);
    let p = run(&obs(Seen::Hung), &state(Phase::Live), &s, &q, at(10));
    assert!(!kinds(&p).contains(&"fail"), "{:?}", p.actions);
    assert!(!kinds(&p).contains(&"worker-exits"), "{:?}", p.actions);
    let lead = QueueFacts { running: Some(running("t1", 1)), runner: false, ..q.clone() };
    let p = run(&obs(dead(1)), &state(Phase::Live), &s, &lead, at(10));
    assert_eq!(kinds(&p), vec!["expire", "worker-exits", "fail", "fail", "respawn-runner"]);
    assert_eq!(p.actions[3], fail("t1", "runner-died"));
    // Without live workers the dead first pane is torn down as before.
    let alone = QueueFacts { workers_alive: false, orphans: vec![], ..lead };
    let p = run(&obs(dead(1)), &state(Phase::Live), &s, &alone, at(10));
    assert!(kinds(&p).contains(&"teardown") && kinds(&p).contains(&"start-next"));
}

/// `--workers N`: the `--task-timeout` backstop ends only the overdue
/// worker slot and charges only its task; the server is never stopped for
/// it. A first worker ended so gets no new slots from this look (it is
/// respawned by the next).
#[test]
fn an_overdue_worker_slot_is_ended_alone() {
    let s = spec(Policy::Ephemeral); // --task-timeout 30s
    let young = RunningTask { started_at: at(25), ..running("young", 1) };
    let q = QueueFacts {
        running: Some(young.clone()),
        pending: 1,
        runner: true,
        workers_alive: true,
        slots_wanted: true,
        slot_tasks: vec![(2, running("old", 1)), (1, young.clone())],
        ..QueueFacts::default()
    };
    let p = run(&obs(Seen::Alive), &state(Phase::Live), &s, &q, at(40));
    let want = ["expire", "worker-exits", "canary", "end-slot", "fail", "fill-slots"];
    assert_eq!(kinds(&p), want, "{:?}", p.actions);
    assert_eq!(p.actions[3], Action::EndSlot { slot: 2, reason: "task-timeout".into() });
    assert_eq!(p.actions[4], fail("old", "timeout"));
    // The first worker's own task overdue: that slot alone, no new slots.
    let lead = QueueFacts { running: Some(running("lead", 1)), slot_tasks: vec![], ..q.clone() };
    let p = run(&obs(Seen::Alive), &state(Phase::Live), &s, &lead, at(40));
    let want = ["expire", "worker-exits", "canary", "end-slot", "fail"];
    assert_eq!(kinds(&p), want, "{:?}", p.actions);
    assert_eq!(p.actions[3], Action::EndSlot { slot: 0, reason: "task-timeout".into() });
    // One worker: the whole worker is stopped, as before.
    let one = QueueFacts { workers_alive: false, slot_tasks: vec![], ..lead };
    let p = run(&obs(Seen::Alive), &state(Phase::Live), &spec(Policy::Ephemeral), &one, at(40));
    assert!(kinds(&p).contains(&"stop-worker"), "{:?}", p.actions);
}

#[test]
fn a_runner_that_died_has_its_task_failed_after_the_teardown() {
    let s = spec(Policy::Ephemeral);
    let sig = Seen::PaneDead { status: None, signal: Some("9".into()) };
    let p = eph(sig, false, running("t1", 1), &s, at(1));
    assert_eq!(
        p.actions,
        vec![
            Action::ExpireTasks,
            Action::Teardown,
            fail("t1", "runner-died: signal 9"),
            Action::StartNext
        ],
        "the leftovers die before the task is put back"
    );
    let p = eph(dead(1), false, running("t1", 1), &s, at(1));
    assert!(p.actions.contains(&fail("t1", "runner-died: exit 1")));
}

#[test]
fn the_tick_never_acknowledges_a_task_from_a_pane() {
    // The pane's program is the runner: its exit 0 says nothing about the
    // task (issue: a dead pane of task A was read as task B's exit).
    let s = spec(Policy::Ephemeral);
    for seen in [dead(0), Seen::NoSocket, Seen::SessionGone, Seen::Alive] {
        let p = eph(seen.clone(), false, running("t1", 1), &s, at(1));
        assert!(p.actions.iter().any(|a| matches!(a, Action::FailTask { .. })), "{seen:?}");
    }
}

#[test]
fn a_task_past_its_timeout_is_stopped_and_failed() {
    let s = spec(Policy::Ephemeral);
    assert_eq!(
        kinds(&eph(Seen::Alive, true, running("t1", 1), &s, at(30))),
        vec!["expire", "canary"]
    );
    let p = eph(Seen::Alive, true, running("t1", 1), &s, at(31));
    assert_eq!(kinds(&p), vec!["expire", "canary", "stop-worker", "fail", "start-next"]);
    assert!(p.actions.contains(&Action::StopWorker { reason: "task-timeout".into() }));
    assert!(p.actions.contains(&fail("t1", "timeout")));
}

#[test]
fn the_kick_and_the_hand_over_skip_the_housekeeping() {
    let s = spec(Policy::Ephemeral);
    let q = QueueFacts { running: None, pending: 2, runner: false, ..QueueFacts::default() };
    let st = state(Phase::Stopped);
    let p = decide(&Input {
        observed: &obs(Seen::NoSocket),
        recorded: &st,
        spec: &s,
        queue: &q,
        now: at(1),
        seed: 7,
        maintenance: false,
        agent: None,
    });
    assert_eq!(p.actions, vec![Action::StartNext]);
}

#[test]
fn an_empty_queue_starts_nothing() {
    let s = spec(Policy::Ephemeral);
    let p = run(&obs(Seen::NoSocket), &state(Phase::Stopped), &s, &QueueFacts::default(), at(1));
    assert_eq!(kinds(&p), vec!["expire"]);
    let q = QueueFacts { running: None, pending: 2, runner: false, ..QueueFacts::default() };
    let p = run(&obs(Seen::NoSocket), &state(Phase::Stopped), &s, &q, at(1));
    assert_eq!(kinds(&p), vec!["expire", "start-next"]);
}

#[test]
fn a_vanished_worker_is_recorded_gone_once() {
    let s = spec(Policy::Ephemeral);
    let p = eph(Seen::NoSocket, false, running("t1", 1), &s, at(2));
    assert!(matches!(p.actions[1], Action::RecordGone { death: SessionDeath::ServerDead, .. }));
    let q = QueueFacts {
        running: Some(running("t1", 2)),
        pending: 0,
        runner: false,
        ..QueueFacts::default()
    };
    let p2 = run(&obs(Seen::NoSocket), &p.state, &s, &q, at(3));
    assert!(!kinds(&p2).contains(&"gone"), "{:?}", p2.actions);
}

fn agent(state: AgentState, ever_ready: bool, mailbox: usize, courier: bool) -> AgentFacts {
    AgentFacts {
        state: Some(state),
        ever_ready,
        tracked: true,
        mailbox,
        courier,
        limit_reset: false,
        parked_until: None,
        last_delivery: None,
    }
}

fn with_agent(o: &Observed, st: &State, s: &PeerSpec, a: AgentFacts, now: DateTime<Utc>) -> Plan {
    let q = QueueFacts::default();
    let mut p = decide(&Input {
        observed: o,
        recorded: st,
        spec: s,
        queue: &q,
        now,
        seed: 7,
        maintenance: true,
        agent: Some(a),
    });
    p.actions.retain(|a| !matches!(a, Action::RecordExit { .. }));
    p
}

#[test]
fn waiting_messages_get_a_courier_and_expire() {
    let s = spec(Policy::Persistent);
    let live = state(Phase::Live);
    let p =
        with_agent(&obs(Seen::Alive), &live, &s, agent(AgentState::Busy, true, 2, false), at(1));
    assert_eq!(kinds(&p), vec!["expire", "canary", "courier"]);
    let p = with_agent(&obs(Seen::Alive), &live, &s, agent(AgentState::Busy, true, 2, true), at(1));
    assert_eq!(kinds(&p), vec!["expire", "canary"], "one courier is enough");
    let p =
        with_agent(&obs(Seen::Alive), &live, &s, agent(AgentState::Ready, true, 0, false), at(1));
    assert_eq!(kinds(&p), vec!["canary"]);
}

#[test]
fn a_blocked_agent_is_not_reaped_idle() {
    let mut s = spec(Policy::Persistent);
    s.idle_ttl = Some(Duration::from_secs(1));
    let live = state(Phase::Live);
    let idle = obs(Seen::Alive); // last output at 9 s, now 100 s
    let p = with_agent(&idle, &live, &s, agent(AgentState::Blocked, true, 0, false), at(100));
    assert_eq!(kinds(&p), vec!["canary"], "it waits for a person");
    let p = with_agent(&idle, &live, &s, agent(AgentState::Ready, true, 0, false), at(100));
    assert_eq!(kinds(&p), vec!["canary", "reap-idle"]);
    // Parked on a usage limit until 99 s: idle counts from the reset.
    let parked =
        AgentFacts { parked_until: Some(at(99)), ..agent(AgentState::Ready, true, 0, false) };
    let p = with_agent(&idle, &live, &s, parked, at(100));
    assert_eq!(kinds(&p), vec!["canary"], "not reaped for the hours it waited");
}

#[test]
fn a_reset_usage_limit_queues_the_continue_message_once_configured() {
    let mut s = spec(Policy::Persistent);
    let live = state(Phase::Live);
    let reset = AgentFacts { limit_reset: true, ..agent(AgentState::Ready, true, 0, false) };
    let p = with_agent(&obs(Seen::Alive), &live, &s, reset, at(1));
    assert_eq!(kinds(&p), vec!["canary"], "no continue message configured");
    s.continue_message = Some("continue".into());
    let p = with_agent(&obs(Seen::Alive), &live, &s, reset, at(1));
    assert_eq!(kinds(&p), vec!["canary", "continue", "courier"]);
}

#[test]
fn an_agent_that_exits_before_it_was_ever_ready_is_a_failed_start() {
    let s = spec(Policy::Persistent); // --restart on-failure
    let live = state(Phase::Live);
    let p =
        with_agent(&obs(dead(0)), &live, &s, agent(AgentState::Unknown, false, 0, false), at(10));
    assert_eq!(kinds(&p), vec!["pending"], "exit 0 before ready counts as a failure");
    assert_eq!(p.state.failures.len(), 1);
    let p =
        with_agent(&obs(dead(0)), &live, &s, agent(AgentState::Unknown, true, 0, false), at(10));
    assert_eq!(kinds(&p), Vec::<&str>::new(), "a clean exit after work is not restarted");
    let untracked = AgentFacts { tracked: false, ..agent(AgentState::Unknown, false, 0, false) };
    let p = with_agent(&obs(dead(0)), &live, &s, untracked, at(10));
    assert_eq!(kinds(&p), Vec::<&str>::new(), "a plain program's exit 0 stays clean");
}

/// A runner that retired is on record as stopped: its missing server is no
/// death, and the pending task just starts a new runner.
#[test]
fn a_retired_runner_s_missing_server_is_no_death() {
    let s = spec(Policy::Ephemeral);
    let q = QueueFacts { running: None, pending: 1, runner: false, ..QueueFacts::default() };
    for name in ["no-socket", "stale"] {
        let p = run(&obs(seen(name)), &state(Phase::Stopped), &s, &q, at(10));
        assert!(!kinds(&p).contains(&"gone"), "{name}: {:?}", kinds(&p));
        assert!(kinds(&p).contains(&"start-next"), "{name}: {:?}", kinds(&p));
    }
}

/// A time in a minute when `s`'s periodic tmux look is not due.
fn no_tmux_look_due(s: &PeerSpec) -> DateTime<Utc> {
    (0..TMUX_LOOK_EVERY)
        .map(|m| at(600 + m * 60))
        .find(|t| !tmux_look_due(&s.identity, *t))
        .expect("nine minutes in ten are not due")
}

/// The kernel's word is enough only for a healthy, plain, persistent peer
/// that the last tick saw running; anything else is asked of tmux.
#[test]
fn the_kernel_may_answer_only_for_a_healthy_plain_peer() {
    let plain = spec(Policy::Persistent);
    let now = no_tmux_look_due(&plain);
    let running = State { last_observed: Some("running".into()), ..state(Phase::Live) };
    assert!(kernel_may_answer(&plain, &running, 0, now));
    // max-age needs only the launch time: still the kernel's.
    let old = PeerSpec { max_age: Some(Duration::from_secs(5)), ..plain.clone() };
    assert!(kernel_may_answer(&old, &running, 0, now));

    type Spec = fn(&mut PeerSpec);
    let specs: Vec<(&str, Spec)> = vec![
        ("ephemeral", |s| s.policy = Policy::Ephemeral),
        ("an agent (its state needs its screen)", |s| s.ready_patterns = vec!["> ".into()]),
        ("an idle TTL (needs tmux's last output)", |s| s.idle_ttl = Some(Duration::from_secs(9))),
        ("a continue message", |s| s.continue_message = Some("go on".into())),
    ];
    for (why, change) in specs {
        let mut s = plain.clone();
        change(&mut s);
        assert!(!kernel_may_answer(&s, &running, 0, now), "{why}");
    }
    assert!(!kernel_may_answer(&plain, &running, 1, now), "messages wait in its mailbox");

    type Record = fn(&mut State);
    let records: Vec<(&str, Record)> = vec![
        ("never launched", |st| st.launched_at = None),
        ("stopped", |st| st.stopped = true),
        ("failed", |st| st.failed = true),
        ("held by admission", |st| {
            st.held = Some(crate::model::peer_state::Held {
                reason: "capacity".into(),
                since: at(0),
                fresh: false,
            })
        }),
        ("not seen running by the last tick", |st| st.last_observed = Some("hung".into())),
        ("not looked at since its launch", |st| st.last_observed = None),
        ("a restart scheduled", |st| st.next_restart_at = Some(at(5))),
        ("its death on record", |st| st.dead_incarnation = st.launched_at),
    ];
    for (why, change) in records {
        let mut st = running.clone();
        change(&mut st);
        assert!(!kernel_may_answer(&plain, &st, 0, now), "{why}");
    }
    let due = (0..TMUX_LOOK_EVERY)
        .map(|m| at(600 + m * 60))
        .find(|t| tmux_look_due(&plain.identity, *t))
        .unwrap();
    assert!(!kernel_may_answer(&plain, &running, 0, due), "its periodic tmux look");
}

/// Each peer is asked of tmux in one minute of every ten, and a fleet's
/// peers in different minutes.
#[test]
fn the_periodic_tmux_look_is_once_in_ten_minutes_spread_over_peers() {
    let ids: Vec<Identity> = (0..200).map(|n| Identity::parse(&format!("p{n}")).unwrap()).collect();
    let minutes: Vec<DateTime<Utc>> = (0..3 * TMUX_LOOK_EVERY).map(|m| at(m * 60 + 7)).collect();
    for id in &ids {
        let due: Vec<i64> =
            (0..minutes.len() as i64).filter(|m| tmux_look_due(id, minutes[*m as usize])).collect();
        assert_eq!(due.len(), 3, "{id}: {due:?}");
        assert!(due.windows(2).all(|w| w[1] - w[0] == TMUX_LOOK_EVERY), "{id}: {due:?}");
        // Within the minute, every second agrees.
        assert_eq!(tmux_look_due(id, at(due[0] * 60)), tmux_look_due(id, at(due[0] * 60 + 59)));
    }
    for t in &minutes {
        let n = ids.iter().filter(|id| tmux_look_due(id, *t)).count();
        assert!((5..=40).contains(&n), "{n} of 200 due at {t}");
    }
}

/// The kernel's `Alive` (no last output) decides what tmux's would for the
/// peers it may answer for: the same actions, the same record.
#[test]
fn the_kernel_s_alive_decides_as_tmux_s() {
    let running = State { last_observed: Some("running".into()), ..state(Phase::Live) };
    let kernel = Observed { last_output: None, ..obs(Seen::Alive) };
    for max_age in [None, Some(Duration::from_secs(5)), Some(Duration::from_secs(5000))] {
        let s = PeerSpec { max_age, ..spec(Policy::Persistent) };
        let now = no_tmux_look_due(&s);
        assert!(kernel_may_answer(&s, &running, 0, now));
        let facts = AgentFacts::default();
        let by_tmux = with_agent(&obs(Seen::Alive), &running, &s, facts, now);
        let by_kernel = with_agent(&kernel, &running, &s, facts, now);
        assert_eq!(by_kernel, by_tmux, "max-age {max_age:?}");
    }
}
