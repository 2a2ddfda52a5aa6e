//! `events`: lifecycle and exit events, merged in time order.
//!
//! Human output is the log lines as written. `--json` prints one JSON array
//! of objects, each value typed as `muxvisor(1)` EVENTS documents (numbers,
//! booleans, null for an empty value; `events::KEY_TYPES`). The log files
//! stay logfmt; the typing happens here. `--follow --json` cannot end
//! its array, so it prints JSON Lines instead: one object per line, the
//! backlog first, then each new event as it is appended. `--follow` polls
//! both logs every 200 ms and runs until interrupted or its reader goes away.

use std::io::Write;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;

use super::Ctx;
use crate::ground::output;
use crate::ground::tail::Follower;
use crate::model::events::{self, Filter, Record};
use crate::surface::cli::EventsArgs;

const POLL: Duration = Duration::from_millis(200);

pub fn run(ctx: &Ctx, args: EventsArgs) -> Result<ExitCode> {
    let since = args.since.and_then(|d| {
        chrono::TimeDelta::from_std(d).ok().and_then(|d| Utc::now().checked_sub_signed(d))
    });
    let filter = Filter { identity: args.id, since };
    if !args.follow {
        let records = events::read_all(&ctx.root, &filter)?;
        if ctx.json {
            let all: Vec<serde_json::Value> = records.iter().map(Record::to_json).collect();
            output::json(&all)?;
        } else {
            print(&records, false)?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut lists = Vec::new();
    let mut followers = Vec::new();
    for path in events::log_paths(&ctx.root) {
        let (records, offset) = events::read_file(&path, &filter)?;
        lists.push(records);
        followers.push(Follower::new(&path, offset)?);
    }
    print(&events::merge(lists), ctx.json)?;
    loop {
        thread::sleep(POLL);
        let mut lists = Vec::new();
        for f in &mut followers {
            let new: Vec<Record> = f
                .poll_lines()?
                .iter()
                .filter_map(|l| Record::parse(l))
                .filter(|r| filter.matches(r))
                .collect();
            lists.push(new);
        }
        print(&events::merge(lists), ctx.json)?;
    }
}

/// Raw lines, or one JSON object per line.
fn print(records: &[Record], json_lines: bool) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for r in records {
        if json_lines {
            // Serialized first so that a closed pipe surfaces as io::Error.
            let line = output::json_string(&r.to_json())?;
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        } else {
            // Lines muxvisor wrote are escaped already; one written by
            // anything else is made inert here.
            out.write_all(output::inert(&r.raw).as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
