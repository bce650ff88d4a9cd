//! Physical lines of text files, shared by the line-based readers (text lines, JSON
//! Lines) and the CSV reader's input, so that every text format agrees on what a line is
//! and on the cap of one record's size.
//!
//! A line ends at `\n`, at `\r\n`, or at a lone `\r` (the old Mac OS convention, still
//! written by some spreadsheet exports); a last line without an ending is a line. This
//! is Python's "universal newlines" and the rule of the `csv` crate, so the line numbers
//! in the messages of the CSV, JSON Lines and text readers agree. (tf.data's
//! `TextLineDataset` splits on `\n` only and strips a `\r` before it; it keeps a lone
//! `\r` inside the line.)
//!
//! A record (one line; for CSV, one physical line of a record) may hold at most
//! [`max_record_bytes`] bytes, so a file that is one huge line without an ending costs
//! bounded memory and is reported as an error naming the file, the line and the limit.

use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The default cap on one record of a text format: 64 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 << 20;

/// 0 = not set: use the environment or the default.
static OVERRIDE: AtomicUsize = AtomicUsize::new(0);

/// The cap on one record (line) of a text format (CSV, JSON Lines, text lines), read when
/// a reader opens its file: the value given to [`set_max_record_bytes`] if any, else
/// `EDGEFLOW_MAX_RECORD_BYTES` (a byte count) when set and valid, else
/// [`DEFAULT_MAX_RECORD_BYTES`].
pub fn max_record_bytes() -> usize {
    match OVERRIDE.load(Ordering::Relaxed) {
        0 => std::env::var("EDGEFLOW_MAX_RECORD_BYTES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_RECORD_BYTES),
        n => n,
    }
}

/// Sets the cap on one record for the whole process (what the CLI's
/// `--max-record-bytes` does); `None` goes back to the environment / default. A cap of
/// 0 is taken as 1.
pub fn set_max_record_bytes(limit: Option<usize>) {
    OVERRIDE.store(limit.map_or(0, |n| n.max(1)), Ordering::Relaxed);
}

/// What [`LineReader::read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadLine {
    /// End of file: no more lines.
    Eof,
    /// A line (in the buffer, without its ending).
    Line,
    /// A line longer than the cap: the buffer is empty, the line's bytes were read past
    /// (so the next call reads the next line); the field is its length.
    TooLong(u64),
}

/// Splits a buffered reader into lines (see the module docs) with a size cap.
pub(crate) struct LineReader<R> {
    inner: R,
    /// Lines returned so far, so the 1-based number of the last one returned.
    pub line: u64,
    max: usize,
    /// The last line ended with `\r`: a `\n` right after it belongs to that ending.
    after_cr: bool,
}

impl<R: BufRead> LineReader<R> {
    /// Lines of `inner`, at most `max` bytes each.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            line: 0,
            max,
            after_cr: false,
        }
    }

    /// The cap, in bytes.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Reads the next line into `buf` (cleared first), without its ending.
    ///
    /// Errors: the underlying read fails.
    pub fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<ReadLine> {
        buf.clear();
        let mut started = false;
        let mut len = 0u64;
        let mut too_long = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                if !started {
                    return Ok(ReadLine::Eof);
                }
                self.line += 1;
                return Ok(if too_long {
                    ReadLine::TooLong(len)
                } else {
                    ReadLine::Line
                });
            }
            if self.after_cr {
                self.after_cr = false;
                if avail.first() == Some(&b'\n') {
                    self.inner.consume(1);
                    continue;
                }
            }
            started = true;
            match memchr::memchr2(b'\n', b'\r', avail) {
                Some(i) => {
                    let cr = avail.get(i) == Some(&b'\r');
                    len = len.saturating_add(i as u64);
                    if !too_long && buf.len().saturating_add(i) <= self.max {
                        buf.extend_from_slice(avail.get(..i).unwrap_or_default());
                    } else {
                        too_long = true;
                        buf.clear();
                    }
                    self.inner.consume(i + 1);
                    self.after_cr = cr;
                    self.line += 1;
                    return Ok(if too_long {
                        ReadLine::TooLong(len)
                    } else {
                        ReadLine::Line
                    });
                }
                None => {
                    let n = avail.len();
                    len = len.saturating_add(n as u64);
                    if !too_long && buf.len().saturating_add(n) <= self.max {
                        buf.extend_from_slice(avail);
                    } else {
                        too_long = true;
                        buf.clear();
                    }
                    self.inner.consume(n);
                }
            }
        }
    }
}

/// The message for a line over the cap.
pub(crate) fn too_long(len: u64, max: usize) -> String {
    format!(
        "the line is {len} bytes, over the limit of {max} bytes per record \
         (raise it with --max-record-bytes or EDGEFLOW_MAX_RECORD_BYTES)"
    )
}

/// The input side of the CSV parser: fails once a physical line grows over `max` bytes
/// (so a huge line costs bounded memory), and turns each line ending outside a quoted
/// field into one `\n`, because the `csv` crate ends records at `\r` too but counts
/// lines by `\n` only: without this, every record of a file with lone-`\r` endings
/// would be reported at line 1. Quoted fields pass unchanged (a quote toggles the
/// state, as `""` inside a quoted field toggles twice); the records and values the
/// parser sees are the same.
///
/// The error is `io::ErrorKind::InvalidData` naming the limit.
///
/// It also notes the empty lines outside quoted fields: the `csv` crate skips them but
/// reports a record as starting on the line after the previous record, so a record
/// after a blank line would be reported one line early; [`LineCap::record_line`]
/// corrects that.
pub(crate) struct LineCap<R> {
    inner: R,
    max: usize,
    run: usize,
    in_quotes: bool,
    after_cr: bool,
    /// 1-based number of the line being read (counted by the `\n`s passed on).
    line: u64,
    /// Whether the current line has no byte yet.
    empty: bool,
    /// Numbers of the empty lines outside quoted fields, ascending, from the earliest
    /// one that a later record can still start before.
    blanks: std::collections::VecDeque<u64>,
}

impl<R> LineCap<R> {
    /// Caps the lines of `inner` at `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineCap {
            inner,
            max,
            run: 0,
            in_quotes: false,
            after_cr: false,
            line: 1,
            empty: true,
            blanks: std::collections::VecDeque::new(),
        }
    }

    /// The line a record really starts on, given the line the `csv` crate reports for it
    /// (the line after the previous record): past the blank lines in between. Calls must
    /// come in non-decreasing order of `reported`.
    pub fn record_line(&mut self, reported: u64) -> u64 {
        while self.blanks.front().is_some_and(|&b| b < reported) {
            self.blanks.pop_front();
        }
        let mut line = reported;
        for &b in &self.blanks {
            if b == line {
                line += 1;
            } else if b > line {
                break;
            }
        }
        line
    }
}

impl<R: BufRead> Read for LineCap<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.inner.fill_buf()?;
        let (mut r, mut w) = (0usize, 0usize);
        let mut over = false;
        while let (Some(&b), true) = (avail.get(r), w < out.len()) {
            r += 1;
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            let o = match b {
                b'"' => {
                    self.in_quotes = !self.in_quotes;
                    self.run += 1;
                    self.empty = false;
                    b
                }
                b'\r' | b'\n' if !self.in_quotes => {
                    self.after_cr = b == b'\r';
                    self.run = 0;
                    if self.empty {
                        self.blanks.push_back(self.line);
                    }
                    self.line += 1;
                    self.empty = true;
                    b'\n'
                }
                b'\n' | b'\r' => {
                    self.run = 0;
                    if b == b'\n' {
                        self.line += 1;
                    }
                    b
                }
                _ => {
                    self.run += 1;
                    self.empty = false;
                    b
                }
            };
            if self.run > self.max {
                // Leave the byte unread: pass on what came before it first; the next
                // call meets it again and fails.
                r -= 1;
                self.run -= 1;
                if b == b'"' {
                    self.in_quotes = !self.in_quotes;
                }
                over = w == 0;
                break;
            }
            if let Some(slot) = out.get_mut(w) {
                *slot = o;
            }
            w += 1;
        }
        self.inner.consume(r);
        if over {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a line is longer than the limit of {} bytes per record \
                     (raise it with --max-record-bytes or EDGEFLOW_MAX_RECORD_BYTES)",
                    self.max
                ),
            ));
        }
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(bytes: &[u8], max: usize) -> Vec<(u64, Result<String, u64>)> {
        // A tiny buffer, so endings fall across buffer boundaries too.
        let mut r = LineReader::new(io::BufReader::with_capacity(3, bytes), max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.read_line(&mut buf).unwrap() {
                ReadLine::Eof => break,
                ReadLine::Line => out.push((r.line, Ok(String::from_utf8(buf.clone()).unwrap()))),
                ReadLine::TooLong(n) => out.push((r.line, Err(n))),
            }
        }
        out
    }

    fn ok(v: &[(u64, &str)]) -> Vec<(u64, Result<String, u64>)> {
        v.iter().map(|&(l, s)| (l, Ok(s.to_string()))).collect()
    }

    #[test]
    fn every_line_ending() {
        let want = ok(&[(1, "a"), (2, "bb"), (3, ""), (4, "c")]);
        assert_eq!(split(b"a\nbb\n\nc\n", 99), want);
        assert_eq!(split(b"a\r\nbb\r\n\r\nc\r\n", 99), want);
        assert_eq!(split(b"a\rbb\r\rc\r", 99), want);
        assert_eq!(split(b"a\r\nbb\r\n\nc", 99), want);
        assert_eq!(split(b"a\rbb\n\r\nc", 99), want);
        assert_eq!(split(b"", 99), vec![]);
        assert_eq!(split(b"\n", 99), ok(&[(1, "")]));
        assert_eq!(split(b"\r", 99), ok(&[(1, "")]));
        assert_eq!(split(b"x", 99), ok(&[(1, "x")]));
    }

    #[test]
    fn a_line_over_the_cap_is_reported_and_passed() {
        let got = split(b"abc\nabcdefgh\r\nxy\nabcdefghij", 4);
        assert_eq!(
            got,
            vec![
                (1, Ok("abc".to_string())),
                (2, Err(8)),
                (3, Ok("xy".to_string())),
                (4, Err(10)),
            ]
        );
    }

    #[test]
    fn line_cap_reader() {
        let read = |bytes: &[u8], max: usize| {
            let mut s = String::new();
            LineCap::new(io::BufReader::with_capacity(3, bytes), max)
                .read_to_string(&mut s)
                .map(|_| s)
        };
        // Every ending outside quotes becomes one \n; quoted fields are untouched.
        assert_eq!(read(b"abcd\r\nabcd\nab", 4).unwrap(), "abcd\nabcd\nab");
        assert_eq!(read(b"a\rb\r\rc\r", 4).unwrap(), "a\nb\n\nc\n");
        assert_eq!(
            read(b"\"x\ry\r\nz\"\r\"q\"\"\"\r1", 9).unwrap(),
            "\"x\ry\r\nz\"\n\"q\"\"\"\n1"
        );
        let e = LineCap::new(&b"abcd\nabcde\n"[..], 4)
            .read_to_string(&mut String::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("limit of 4 bytes"), "{e}");
    }
}
