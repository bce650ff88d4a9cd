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
