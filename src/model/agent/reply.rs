//! An agent pool task's result (SPEC §10): the agent's reply, read from
//! the agent's own record where its hook names one ([`from_transcript`]:
//! Claude Code's `Stop` hook passes `transcript_path`, a JSONL file), else
//! from the pane ([`from_screen`]: the text between the prompt's line and
//! the ready prompt drawn again). Pure, but for reading the transcript.

use std::path::Path;

use super::presets::Patterns;

/// Longest transcript tail read, from its end.
const TRANSCRIPT_TAIL: u64 = 4 * 1024 * 1024;

/// The reply in a Claude Code transcript: the text blocks of the assistant
/// entries after the last prompt a person (or muxvisor) typed, joined by
/// blank lines. `None` when the file cannot be read or holds none.
pub fn from_transcript(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len > TRANSCRIPT_TAIL {
        f.seek(SeekFrom::Start(len - TRANSCRIPT_TAIL)).ok()?;
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    transcript_reply(&String::from_utf8_lossy(&buf))
}

/// [`from_transcript`] over the file's text. Pure.
pub fn transcript_reply(jsonl: &str) -> Option<String> {
    let entries: Vec<serde_json::Value> =
        jsonl.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let is_prompt = |e: &serde_json::Value| {
        e.get("type").and_then(|t| t.as_str()) == Some("user")
            && match e.pointer("/message/content") {
                Some(serde_json::Value::String(_)) => true,
                Some(serde_json::Value::Array(blocks)) => {
                    blocks.iter().any(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
                }
                _ => false,
            }
            && e.get("isMeta").and_then(|m| m.as_bool()) != Some(true)
    };
    let from = entries.iter().rposition(is_prompt).map(|i| i + 1).unwrap_or(0);
    let texts: Vec<&str> = entries[from..]
        .iter()
        .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some("assistant"))
        .filter_map(|e| e.pointer("/message/content").and_then(|c| c.as_array()))
        .flatten()
        .filter(|b| b.get("type").and_then(|t| t.as_str()) == Some("text"))
        .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n\n").trim().to_string())
}

/// The reply on the pane: `text` is the pane's capture (scrollback and
/// screen, ANSI stripped), `prompt` the task as typed. The reply is what
/// stands after the last line that shows the prompt's first line, up to
/// the block (lines without a blank one between) that holds the ready
/// prompt at the bottom; blank edges and an agent's leading bullet
/// (`⏺`, `●`) are trimmed. Pure.
pub fn from_screen(text: &str, prompt: &str, patterns: &Patterns) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let end = ready_block_start(&lines, patterns);
    let first = prompt.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    // Agents echo the prompt cut to the width: match on its start.
    let probe: String = first.chars().take(40).collect();
    // The echo starts with the prompt (after the agent's prompt marks); a
    // reply that quotes the prompt does not.
    let echoed =
        |l: &&str| l.trim_start_matches([' ', '>', '❯', '│', '\u{a0}']).starts_with(&probe);
    let start = if probe.is_empty() {
        None
    } else {
        lines[..end]
            .iter()
            .rposition(echoed)
            .or_else(|| lines[..end].iter().rposition(|l| l.contains(probe.as_str())))
    };
    let mut body: Vec<&str> = lines[start.map(|i| i + 1).unwrap_or(0)..end].to_vec();
    while body.first().is_some_and(|l| l.trim().is_empty()) {
        body.remove(0);
    }
    while body.last().is_some_and(|l| l.trim().is_empty()) {
        body.pop();
    }
    let mut out = body.join("\n");
    for bullet in ["⏺ ", "● "] {
        if let Some(rest) = out.strip_prefix(bullet) {
            out = rest.to_string();
            break;
        }
    }
    out
}

/// Index of the first line of the ready prompt's block at the bottom of
/// `lines`: the last line a ready pattern matches, and the lines above it
/// up to a blank one. `lines.len()` when no ready pattern matches.
fn ready_block_start(lines: &[&str], patterns: &Patterns) -> usize {
    let text = lines.join("\n");
    let Some(offset) = patterns.last_ready_at(&text) else {
        return lines.len();
    };
    let mut i = text[..offset].matches('\n').count();
    while i > 0 && !lines[i - 1].trim().is_empty() {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_is_the_last_assistant_text_after_the_prompt() {
        let jsonl = [
            r#"{"type":"user","message":{"role":"user","content":"first"}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"old"}]}}"#,
            r#"{"type":"user","message":{"role":"user","content":"second"}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"x"}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"ok"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"new answer"}]}}"#,
            "not json",
        ]
        .join("\n");
        assert_eq!(transcript_reply(&jsonl).as_deref(), Some("new answer"));
        assert_eq!(transcript_reply(r#"{"type":"user","message":{"content":"x"}}"#), None);
    }

    #[test]
    fn the_screen_reply_stands_between_the_prompt_and_the_ready_box() {
        let p = Patterns::new(&[r"^│ > *│[ \t]*\n╰"], &["esc to interrupt"], &[], None).unwrap();
        let screen = "fake-agent\n\n> an old one\n● old\n> what is 2+2?\n● 4\n  and more\n\n\
                      ╭────╮\n│ >  │\n╰────╯\n  ? for shortcuts";
        assert_eq!(from_screen(screen, "what is 2+2?", &p), "4\n  and more");
        // A reply that quotes the prompt is not its echo.
        let quoted = "> q1\n● reply to: q1\n\n╭────╮\n│ >  │\n╰────╯";
        assert_eq!(from_screen(quoted, "q1", &p), "reply to: q1");
        // No ready prompt drawn: up to the end.
        assert_eq!(from_screen("> hi\n● there", "hi", &p), "there");
    }
}
