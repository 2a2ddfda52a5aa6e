//! Reading the end of a growing log file, for `logs` and `events`: the last
//! N lines in bounded memory (read backwards in blocks, never the whole
//! file), and a [`Follower`] that hands out what was appended since the last
//! poll and survives rotation (the path now names a new inode: the old file
//! is drained, then the new one read from its start) and truncation (the
//! file shrank below our offset: start again from 0).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ground::fsutil;

const BLOCK: u64 = 8 * 1024;

/// The last `n` lines of `file` (a final line without newline counts), and
/// the offset of the end that was read. Reads at most what those lines need.
pub fn last_lines_of(file: &mut File, n: usize) -> std::io::Result<(Vec<u8>, u64)> {
    let end = file.seek(SeekFrom::End(0))?;
    if n == 0 || end == 0 {
        return Ok((Vec::new(), end));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut start = end;
    loop {
        let from = start.saturating_sub(BLOCK);
        let mut chunk = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        start = from;
        if let Some(cut) = cut_for_last_lines(&buf, n) {
            buf.drain(..cut);
            return Ok((buf, end));
        }
        if start == 0 {
            return Ok((buf, end));
        }
    }
}

/// Where the last `n` lines of `buf` begin, if `buf` holds more than `n`
/// lines' worth of newlines; `None` if the start may lie further back.
fn cut_for_last_lines(buf: &[u8], n: usize) -> Option<usize> {
    // A trailing newline ends the last line; it does not start a new one.
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Count the lines in `bytes` (a final line without newline counts).
pub fn count_lines(bytes: &[u8]) -> usize {
    let nl = bytes.iter().filter(|b| **b == b'\n').count();
    if bytes.last().is_some_and(|b| *b != b'\n') { nl + 1 } else { nl }
}

/// Follows one path across appends, rotation and truncation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    pos: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Follow `path` from `pos` of the file it names now (or from the start
    /// of whatever appears there later).
    pub fn new(path: &Path, pos: u64) -> Result<Follower> {
        let mut f =
            Follower { path: path.to_path_buf(), file: None, ino: 0, pos: 0, partial: Vec::new() };
        if let Some(file) = fsutil::open_read(path)? {
            f.ino = file.metadata().with_context(|| format!("stat {}", path.display()))?.ino();
            f.pos = pos;
            f.file = Some(file);
        }
        Ok(f)
    }

    /// Bytes appended since the last call, across rotation and truncation.
    pub fn poll(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_rest(&mut out)?;
        let now = std::fs::symlink_metadata(&self.path).ok().map(|m| m.ino());
        if now.is_some() && (self.file.is_none() || now != Some(self.ino)) {
            // Rotated or created: what was left in the old file is already
            // read above; the new file starts from 0.
            if let Some(file) = fsutil::open_read(&self.path)? {
                self.ino = file.metadata().with_context(|| self.ctx())?.ino();
                self.file = Some(file);
                self.pos = 0;
                self.read_rest(&mut out)?;
            }
        }
        Ok(out)
    }

    /// Complete lines appended since the last call (without their newline);
    /// a line still being written waits for its end.
    pub fn poll_lines(&mut self) -> Result<Vec<String>> {
        let bytes = self.poll()?;
        self.partial.extend_from_slice(&bytes);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let done: Vec<u8> = self.partial.drain(..=last_nl).collect();
        Ok(String::from_utf8_lossy(&done).lines().map(str::to_string).collect())
    }

    fn read_rest(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let ctx = self.ctx();
        let Some(file) = self.file.as_mut() else { return Ok(()) };
        let len = file.metadata().with_context(|| ctx.clone())?.len();
        if len < self.pos {
            // Truncated in place: whatever is there now is new.
            self.pos = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.pos)).with_context(|| ctx.clone())?;
        let n = file.read_to_end(out).with_context(|| ctx)?;
        self.pos += n as u64;
        Ok(())
    }

    fn ctx(&self) -> String {
        format!("reading {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("mvtail").tempdir_in("/tmp").unwrap()
    }

    fn tail(content: &[u8], n: usize) -> Vec<u8> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        last_lines_of(&mut f, n).unwrap().0
    }

    #[test]
    fn last_lines_small_and_edge_cases() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"", 5), b"");
        assert_eq!(tail(b"a\n", 0), b"");
        assert_eq!(tail(b"\n\n\n", 2), b"\n\n");
    }

    #[test]
    fn last_lines_across_blocks() {
        let mut content = Vec::new();
        for i in 0..5000 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let got = tail(&content, 3);
        assert_eq!(got, b"line 4997\nline 4998\nline 4999\n");
        let got = tail(&content, 2000);
        assert_eq!(count_lines(&got), 2000);
        assert!(got.starts_with(b"line 3000\n"));
    }

    #[test]
    fn follower_sees_appends_truncation_and_rotation() {
        let t = tmp();
        let p = t.path().join("x.log");
        std::fs::write(&p, b"old\n").unwrap();
        let mut f = Follower::new(&p, 4).unwrap();
        assert!(f.poll().unwrap().is_empty());

        let mut w = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(f.poll_lines().unwrap(), ["one"]);
        w.write_all(b"o\n").unwrap();
        assert_eq!(f.poll_lines().unwrap(), ["two"]);

        // Rotation: the tail of the old file, then the new file from 0.
        w.write_all(b"last-old\n").unwrap();
        std::fs::rename(&p, t.path().join("x.log.1")).unwrap();
        std::fs::write(&p, b"first-new\n").unwrap();
        assert_eq!(f.poll_lines().unwrap(), ["last-old", "first-new"]);

        // Truncation in place.
        std::fs::write(&p, b"").unwrap();
        assert!(f.poll().unwrap().is_empty());
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"again\n").unwrap();
        assert_eq!(f.poll_lines().unwrap(), ["again"]);
    }

    #[test]
    fn follower_waits_for_a_missing_file() {
        let t = tmp();
        let p = t.path().join("later.log");
        let mut f = Follower::new(&p, 0).unwrap();
        assert!(f.poll().unwrap().is_empty());
        std::fs::write(&p, b"hello\n").unwrap();
        assert_eq!(f.poll_lines().unwrap(), ["hello"]);
    }
}
