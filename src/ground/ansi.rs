//! Program output made safe to print: terminal escape sequences removed.
//!
//! A program in a pane can write anything: colours, but also a window title
//! (`OSC 0`), a clipboard write (`OSC 52`), device-control strings that some
//! terminals act on. `screen` and `logs` show that output on the user's own
//! terminal, so unless `--raw` is given they pass it through this one
//! stripper, which keeps printable text, tab and newline, and drops:
//!
//! - CSI sequences (`ESC [ ... final`, and 8-bit CSI),
//! - OSC, DCS, SOS, PM and APC strings (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`,
//!   `ESC _`, and their 8-bit forms), up to BEL, ST (`ESC \` or 8-bit ST),
//!   CAN or SUB,
//! - every other escape sequence (`ESC` + intermediates + final byte),
//! - C1 controls (U+0080..U+009F, UTF-8 encoded or as raw bytes) and C0
//!   controls other than tab and newline (so `\r\n` becomes `\n`).
//!
//! Bytes that are not UTF-8 become U+FFFD. It is a state machine over bytes,
//! so `logs --follow` can feed it whatever each read returned: a sequence
//! split across reads is still removed whole, never half printed.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;
/// 8-bit String Terminator.
const ST: u8 = 0x9c;
const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Esc,
    /// After ESC and intermediate bytes (`ESC ( B`).
    EscInter,
    /// Inside a control sequence, before its final byte.
    Csi,
    /// Inside an OSC/DCS/SOS/PM/APC string.
    Str,
    /// ESC inside a string: `\` ends it, anything else starts a new sequence.
    StrEsc,
}

/// Removes escape sequences from a byte stream fed in pieces.
#[derive(Clone, Debug, Default)]
pub struct Stripper {
    state: State,
    /// A UTF-8 character begun in ground state, and how long it will be.
    utf8: Vec<u8>,
    utf8_len: usize,
    /// The previous byte inside a string (an ST byte is a terminator only
    /// on its own or after 0xC2, not as the tail of another character).
    prev: u8,
}

impl Stripper {
    pub fn new() -> Stripper {
        Stripper::default()
    }

    /// Append the printable part of `input` to `out`; state carries over to
    /// the next call.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    /// The end of the stream: a character cut short becomes U+FFFD; an
    /// unfinished sequence is dropped.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.utf8.is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
        *self = Stripper::default();
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground => self.ground(b, out),
            State::Esc => self.esc(b, out),
            State::EscInter => match b {
                0x20..=0x2f => {}
                0x30..=0x7e => self.state = State::Ground,
                ESC => self.state = State::Esc,
                _ => self.reground(b, out),
            },
            State::Csi => match b {
                0x20..=0x3f => {}
                0x40..=0x7e => self.state = State::Ground,
                ESC => self.state = State::Esc,
                CAN | SUB => self.state = State::Ground,
                _ => self.reground(b, out),
            },
            State::Str => {
                let st = b == ST && (self.prev == 0xc2 || self.prev < 0x80);
                match b {
                    _ if st => self.state = State::Ground,
                    BEL | CAN | SUB => self.state = State::Ground,
                    ESC => self.state = State::StrEsc,
                    _ => {}
                }
                self.prev = b;
            }
            State::StrEsc => {
                if b == b'\\' {
                    self.state = State::Ground;
                } else {
                    self.state = State::Esc;
                    self.esc(b, out);
                }
            }
        }
    }

    /// A sequence broken by a byte that cannot be part of it: the sequence
    /// is dropped and the byte read as ordinary input.
    fn reground(&mut self, b: u8, out: &mut Vec<u8>) {
        self.state = State::Ground;
        self.ground(b, out);
    }

    fn esc(&mut self, b: u8, out: &mut Vec<u8>) {
        match b {
            b'[' => self.state = State::Csi,
            b']' | b'P' | b'X' | b'^' | b'_' => self.start_string(),
            0x20..=0x2f => self.state = State::EscInter,
            0x30..=0x7e => self.state = State::Ground,
            ESC => {}
            CAN | SUB => self.state = State::Ground,
            _ => self.reground(b, out),
        }
    }

    fn start_string(&mut self) {
        self.state = State::Str;
        self.prev = 0;
    }

    fn ground(&mut self, b: u8, out: &mut Vec<u8>) {
        if !self.utf8.is_empty() {
            if (0x80..=0xbf).contains(&b) {
                self.utf8.push(b);
                if self.utf8.len() == self.utf8_len {
                    let seq = std::mem::take(&mut self.utf8);
                    self.char_done(&seq, out);
                }
                return;
            }
            // Cut short by a byte that cannot continue it.
            self.utf8.clear();
            out.extend_from_slice(REPLACEMENT);
        }
        match b {
            ESC => self.state = State::Esc,
            b'\t' | b'\n' => out.push(b),
            0x00..=0x1f | 0x7f => {}
            0x20..=0x7e => out.push(b),
            0x80..=0x9f => self.c1(b),
            0xc2..=0xdf => self.begin_char(b, 2),
            0xe0..=0xef => self.begin_char(b, 3),
            0xf0..=0xf4 => self.begin_char(b, 4),
            _ => out.extend_from_slice(REPLACEMENT),
        }
    }

    fn begin_char(&mut self, lead: u8, len: usize) {
        self.utf8.push(lead);
        self.utf8_len = len;
    }

    fn char_done(&mut self, seq: &[u8], out: &mut Vec<u8>) {
        match std::str::from_utf8(seq).ok().and_then(|s| s.chars().next()) {
            Some(c) if ('\u{80}'..='\u{9f}').contains(&c) => self.c1(c as u8),
            Some(_) => out.extend_from_slice(seq),
            None => out.extend_from_slice(REPLACEMENT),
        }
    }

    /// A C1 control: the 8-bit introducers start their sequence; the rest
    /// are dropped.
    fn c1(&mut self, code: u8) {
        match code {
            0x9b => self.state = State::Csi,
            0x90 | 0x98 | 0x9d | 0x9e | 0x9f => self.start_string(),
            _ => {}
        }
    }
}

/// `text` without escape sequences and control characters (tab and newline
/// kept).
pub fn strip(text: &str) -> String {
    let mut s = Stripper::new();
    let mut out = Vec::with_capacity(text.len());
    s.push(text.as_bytes(), &mut out);
    s.finish(&mut out);
    // Only whole UTF-8 characters and U+FFFD are ever written.
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_bytes(input: &[u8]) -> Vec<u8> {
        let mut s = Stripper::new();
        let mut out = Vec::new();
        s.push(input, &mut out);
        s.finish(&mut out);
        out
    }

    /// No byte of `out` can start or be part of a control sequence.
    fn assert_inert(out: &[u8], input: &[u8]) {
        let text = std::str::from_utf8(out)
            .unwrap_or_else(|e| panic!("not UTF-8 ({e}) for {input:?}: {out:?}"));
        for c in text.chars() {
            assert!(
                !c.is_control() || c == '\t' || c == '\n',
                "control {c:?} left in {text:?} from {input:?}"
            );
        }
    }

    #[test]
    fn strips_every_kind_of_sequence() {
        let cases: &[(&str, &str)] = &[
            ("\u{1b}[31mred\u{1b}[0m plain", "red plain"),
            ("\u{1b}[1;38;5;208mbold\u{1b}[m", "bold"),
            ("\u{1b}[?1049h\u{1b}[2J\u{1b}[Hscreen", "screen"),
            ("\u{1b}]0;window title\u{7}text", "text"),
            ("\u{1b}]52;c;c2VjcmV0\u{7}after", "after"),
            ("\u{1b}]52;c;c2VjcmV0\u{1b}\\after", "after"),
            ("\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\", "link"),
            ("\u{1b}(Bcharset", "charset"),
            ("\u{1b}=keypad\u{1b}>", "keypad"),
            ("\u{1b}P1$r0m\u{1b}\\dcs", "dcs"),
            ("\u{1b}_apc string\u{1b}\\apc", "apc"),
            ("\u{1b}^pm string\u{1b}\\pm", "pm"),
            ("\u{1b}Xsos string\u{1b}\\sos", "sos"),
            ("\u{9b}32mC1", "C1"),
            ("\u{9d}0;t\u{9c}osc8", "osc8"),
            ("\u{90}dcs\u{9c}dcs8", "dcs8"),
            ("\u{85}next-line\u{84}", "next-line"),
            ("bell\u{7}\r\n", "bell\n"),
            ("back\u{8}space\u{7f}", "backspace"),
            ("tab\there\nnext", "tab\there\nnext"),
            ("ünïcödé ✓ 漢字 🎉", "ünïcödé ✓ 漢字 🎉"),
            ("\u{1b}[", ""),
            ("cut\u{1b}]unterminated", "cut"),
            ("\u{1b}]0;title with ĜĜ\u{7}kept", "kept"),
            ("\u{1b}[31\nm", "\nm"),
            ("\u{1b}]0;x\u{1b}[31mred", "red"),
            ("\u{1b}\u{1b}[1mx", "x"),
            ("a\u{1b}cb", "ab"),
            ("a\u{18}b\u{1b}]0;t\u{18}c", "abc"),
        ];
        for (input, want) in cases {
            assert_eq!(strip(input), *want, "{input:?}");
        }
    }

    #[test]
    fn raw_bytes_are_made_inert() {
        // 8-bit C1 as raw bytes (a Latin-1 program), invalid UTF-8.
        let cases: &[(&[u8], &[u8])] = &[
            (b"\x9b31mred", b"red"),
            (b"\x9d52;c;eA==\x07ok", b"ok"),
            (b"\x9d0;title\x9cok", b"ok"),
            (b"caf\xe9!", "caf\u{fffd}!".as_bytes()),
            (b"\xc0\xaf", "\u{fffd}\u{fffd}".as_bytes()),
            (b"\xed\xa0\x80x", "\u{fffd}x".as_bytes()),
            (b"cut\xe2\x82", "cut\u{fffd}".as_bytes()),
        ];
        for (input, want) in cases {
            let out = strip_bytes(input);
            assert_eq!(out, *want, "{input:?}");
            assert_inert(&out, input);
        }
    }

    /// A sequence split at any byte, across any number of reads, is removed
    /// exactly as if it came in one piece (what `logs --follow` relies on).
    #[test]
    fn splitting_the_input_anywhere_changes_nothing() {
        let inputs: &[&[u8]] = &[
            b"before\x1b]52;c;c2VjcmV0\x07after\n",
            b"x\x1b]0;title\x1b\\y\x1b[1;31mz\x1b[0m\n",
            "\u{9b}2J\u{9d}0;t\u{9c}ü漢🎉\r\n".as_bytes(),
            b"\x1bP1$r0m\x1b\\\x1b_apc\x1b\\\x1b(Bq\x9b1m",
        ];
        for input in inputs {
            let whole = strip_bytes(input);
            assert_inert(&whole, input);
            for cut in 0..=input.len() {
                let mut s = Stripper::new();
                let mut out = Vec::new();
                s.push(&input[..cut], &mut out);
                s.push(&input[cut..], &mut out);
                s.finish(&mut out);
                assert_eq!(out, whole, "cut at {cut} of {input:?}");
            }
            let mut s = Stripper::new();
            let mut out = Vec::new();
            for b in input.iter() {
                s.push(std::slice::from_ref(b), &mut out);
            }
            s.finish(&mut out);
            assert_eq!(out, whole, "byte by byte: {input:?}");
        }
    }

    #[test]
    fn any_bytes_come_out_inert() {
        // Every byte value, in every position after every other, once.
        let mut input = Vec::new();
        for a in 0..=255u8 {
            for b in [0x1b, 0x9b, 0x9d, 0xc2, 0x5b, 0x5d, 0x07, 0x41] {
                input.extend_from_slice(&[a, b, a]);
            }
        }
        let out = strip_bytes(&input);
        assert_inert(&out, b"(all bytes)");
    }
}
