//! File sources.
//!
//! Every reader opens its file lazily (when the dataset is iterated), counts the bytes
//! it reads in its operator's counters, and reports a corrupt record as an
//! [`Error::Record`] naming the file and the record (and line,
//! for text formats). Under [`BadRecords::Skip`] such records are dropped and counted
//! as `skipped` instead. Errors that concern the whole file (it cannot be opened, a bad
//! header) are always error items.
//!
//! Many files are read by composing a listing with a reader, as in `tf.data`:
//! `Dataset::list_files("data/*.csv", None).interleave(4, 16, true, |p| csv_rows(p, opts))`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dataset::{BoxStream, Dataset, IterStream, Stream};
use crate::error::{Error, Result};
use crate::stats::Counters;

pub mod csv;
pub mod files;
pub mod image;
pub mod jsonl;
pub mod lines;
pub mod npy;
pub mod parquet;
pub mod text;
pub mod tfrecord;
pub mod ts;
pub mod wav;

/// What a reader does with a corrupt record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRecords {
    /// Yield an error item naming the file and record, then go on with the next record
    /// where the format allows it (the default).
    #[default]
    Error,
    /// Drop the record and count it as `skipped` in the reader's counters.
    Skip,
}

/// How many corrupt records a whole read of a source may meet and still succeed (what
/// `--max-bad-records` sets). The default is strict: no bad record.
///
/// Whatever the limit, a read fails when the source could not be read as a whole (a
/// file-level error) or when it had bad records and no good one: a script must be able
/// to tell a failed read from an empty file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BadRecordLimit {
    /// At most this many bad records.
    Count(u64),
    /// At most this fraction (0 to 1) of the records read (good + bad).
    Fraction(f64),
}

impl Default for BadRecordLimit {
    fn default() -> Self {
        BadRecordLimit::Count(0)
    }
}

impl std::fmt::Display for BadRecordLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRecordLimit::Count(n) => write!(f, "{n}"),
            BadRecordLimit::Fraction(x) => write!(f, "{x}"),
        }
    }
}

impl std::str::FromStr for BadRecordLimit {
    type Err = String;

    /// `N` (a count), `0.05` (a fraction in `[0, 1]`) or `5%`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a count (10), a fraction (0.05) or a percentage (5%)");
        if let Ok(n) = s.parse::<u64>() {
            return Ok(BadRecordLimit::Count(n));
        }
        let x = match s.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
            None => s.parse::<f64>().map_err(|_| bad())?,
        };
        if (0.0..=1.0).contains(&x) {
            Ok(BadRecordLimit::Fraction(x))
        } else {
            Err(bad())
        }
    }
}

/// What a whole read of a source met: good and bad records, and the first messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadTally {
    /// Records read.
    pub good: u64,
    /// Bad records (error items).
    pub bad: u64,
    /// The first error that concerned the whole file (it could not be opened or read).
    pub fatal: Option<String>,
    /// The first few bad-record messages (each names the file, record and reason).
    pub first: Vec<String>,
}

impl ReadTally {
    /// Counts one item.
    pub fn add<T>(&mut self, item: &Result<T>) {
        match item {
            Ok(_) => self.good += 1,
            Err(e) => {
                self.bad += 1;
                if !e.is_record_level() && self.fatal.is_none() {
                    self.fatal = Some(e.to_string());
                }
                if self.first.len() < 5 {
                    self.first.push(e.to_string());
                }
            }
        }
    }

    /// Checks the tally against `limit`: `Ok(None)` if clean, `Ok(Some(note))` with a
    /// note saying how many records were skipped and why, or an error.
    ///
    /// Errors ([`Error::File`] for `path`, naming the count, the limit and the first
    /// bad record's file, record and reason): a file-level error; bad records and no
    /// good one; more bad records than `limit` allows.
    pub fn check(&self, path: &Path, limit: BadRecordLimit) -> Result<Option<String>> {
        if let Some(f) = &self.fatal {
            return Err(Error::file(path, format!("cannot be read: {f}")));
        }
        if self.bad == 0 {
            return Ok(None);
        }
        let first = self.first.first().cloned().unwrap_or_default();
        let total = self.good + self.bad;
        if self.good == 0 {
            return Err(Error::file(
                path,
                format!(
                    "every record is bad ({} of {total}); first: {first}",
                    self.bad
                ),
            ));
        }
        let ok = match limit {
            BadRecordLimit::Count(n) => self.bad <= n,
            BadRecordLimit::Fraction(x) => (self.bad as f64) <= x * total as f64,
        };
        if !ok {
            return Err(Error::file(
                path,
                format!(
                    "{} bad records of {total} (allowed: {limit}; see --max-bad-records); first: {first}",
                    self.bad
                ),
            ));
        }
        Ok(Some(format!(
            "skipped {} bad records of {total} (allowed: {limit}); first: {first}",
            self.bad
        )))
    }
}

/// A reader that counts the bytes it reads.
pub(crate) struct Counted<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.add_bytes(n as u64);
        Ok(n)
    }
}

/// Opens `path` for buffered, counted reading.
pub(crate) fn open_counted(
    path: &Path,
    counters: &Arc<Counters>,
) -> Result<BufReader<Counted<File>>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(
        1 << 16,
        Counted {
            inner: f,
            counters: Arc::clone(counters),
        },
    ))
}

/// Opens a text file for buffered, counted reading, past a UTF-8 byte-order mark (which
/// Excel and Windows tools write, and which would otherwise end up in the first field).
///
/// Errors: the file cannot be opened or read; it starts with a UTF-16 or UTF-32
/// byte-order mark ([`Error::File`] naming the encoding: convert the file to UTF-8).
pub(crate) fn open_text(path: &Path, counters: &Arc<Counters>) -> Result<BufReader<Counted<File>>> {
    use std::io::BufRead;
    let mut r = open_counted(path, counters)?;
    let head = r.fill_buf().map_err(|e| Error::io(path, e))?;
    check_text_encoding(path, head)?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        r.consume(3);
    }
    Ok(r)
}

/// Refuses text that starts with a UTF-16 or UTF-32 byte-order mark.
pub(crate) fn check_text_encoding(path: &Path, head: &[u8]) -> Result<()> {
    let enc = if head.starts_with(b"\xFF\xFE\0\0") {
        "UTF-32LE"
    } else if head.starts_with(b"\0\0\xFE\xFF") {
        "UTF-32BE"
    } else if head.starts_with(b"\xFF\xFE") {
        "UTF-16LE"
    } else if head.starts_with(b"\xFE\xFF") {
        "UTF-16BE"
    } else {
        return Ok(());
    };
    Err(Error::file(
        path,
        format!(
            "the text is {enc} (byte-order mark); only UTF-8 is read: convert the file to UTF-8"
        ),
    ))
}

/// A stream that yields one error item.
pub(crate) fn fail<T: Send + 'static>(e: Error) -> BoxStream<T> {
    Box::new(IterStream(std::iter::once(Err(e))))
}

/// Applies a [`BadRecords`] policy to a reader's stream: under `Skip`, record-level
/// errors are dropped and counted.
pub(crate) struct Policy<S> {
    pub inner: S,
    pub policy: BadRecords,
    pub counters: Arc<Counters>,
}

impl<T, S: Stream<T>> Stream<T> for Policy<S> {
    fn next(&mut self) -> Option<Result<T>> {
        loop {
            match self.inner.next()? {
                Err(e) if self.policy == BadRecords::Skip && e.is_record_level() => {
                    self.counters.add_skipped();
                }
                other => return Some(other),
            }
        }
    }
}

/// A source over one file: `open` builds the reader's stream for each iteration.
pub(crate) fn file_source<T, S>(
    kind: &str,
    path: PathBuf,
    policy: BadRecords,
    open: impl Fn(&Path, &Arc<Counters>) -> Result<S> + Send + Sync + 'static,
) -> Dataset<T>
where
    T: Send + 'static,
    S: Stream<T> + 'static,
{
    let name = format!("{kind}({})", path.display());
    Dataset::from_op(name, vec![], move |cx| match open(&path, &cx.counters) {
        Ok(s) => Box::new(Policy {
            inner: s,
            policy,
            counters: Arc::clone(&cx.counters),
        }),
        Err(e) => fail(e),
    })
}
