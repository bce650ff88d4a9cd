//! Caching a dataset in memory or in a file.
//!
//! The first complete iteration fills the cache; later iterations read from it and do
//! not open the upstream at all. A cache is committed when an iteration reaches the end
//! of the upstream without an error item, or when an iteration that has taken every
//! element is dropped (it then pulls once more to see the end, as `tf.data` commits
//! once it has seen the full count). An iteration that is dropped earlier or sees an
//! error leaves no cache behind (for a file cache: its partial file is removed) and
//! records a warning in the operator's counters and on standard error (see
//! [`crate::stats::Counters::warn`]), so an upstream that is silently recomputed every
//! epoch does not go unnoticed. Because later iterations replay the first one, anything
//! upstream that varies with the epoch (a shuffle, random augmentation) is frozen by a
//! cache: put those after it.
//!
//! # File caches and concurrent iterations
//!
//! - One writer per cache file in a process: the first iteration that finds no
//!   committed file writes it; iterations opened meanwhile read through to the upstream
//!   (recompute) and write nothing.
//! - The writer's partial file is private (`<path>.partial.<pid>.<n>`), so no other
//!   iteration or process can truncate or interleave with it.
//! - The commit is verified and atomic: the partial file is read back (every record's
//!   CRC and the count) before it is renamed to `<path>`.
//! - A committed file is verified (the same scan) the first time a pipeline opens it and
//!   whenever its size or modification time changed; a corrupt or incomplete file is
//!   removed with a warning and rebuilt, never served. A record that fails its CRC
//!   later (the file changed under the reader) is an error item, and the file is
//!   removed so that the next iteration rebuilds it. A file written by a *different*
//!   pipeline is an error, not a silent reuse (it is left in place).
//!
//! File format (little-endian): magic `EFCACHE1`, `u32` length + UTF-8 pipeline
//! description, then records `u32 length, u32 CRC-32C, postcard bytes`, then the trailer
//! `u64 record count, magic EFCEND01`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dataset::{BoxStream, Dataset, IterStream, Stream};
use crate::error::{Error, Result};
use crate::stats::Counters;

const MAGIC: &[u8; 8] = b"EFCACHE1";
const END: &[u8; 8] = b"EFCEND01";
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

type Slot<T> = Arc<Mutex<Option<Arc<Vec<T>>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct ReplayStream<T> {
    items: Arc<Vec<T>>,
    pos: usize,
}

impl<T: Clone + Send + Sync> Stream<T> for ReplayStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        let x = self.items.get(self.pos)?.clone();
        self.pos += 1;
        Some(Ok(x))
    }
    fn skip_items(&mut self, n: u64) -> u64 {
        let k = (n as usize).min(self.items.len().saturating_sub(self.pos));
        self.pos += k;
        k as u64
    }
}

struct FillStream<T> {
    up: BoxStream<T>,
    buf: Vec<T>,
    clean: bool,
    finished: bool,
    slot: Slot<T>,
    counters: Arc<Counters>,
    name: String,
}

impl<T> FillStream<T> {
    fn commit(&mut self) {
        self.finished = true;
        if self.clean {
            let items = Arc::new(std::mem::take(&mut self.buf));
            lock(&self.slot).get_or_insert(items);
        }
    }
}

impl<T: Clone + Send + Sync> Stream<T> for FillStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.finished {
            return None;
        }
        match self.up.next() {
            Some(Ok(x)) => {
                if self.clean {
                    self.buf.push(x.clone());
                }
                Some(Ok(x))
            }
            Some(Err(e)) => {
                if self.clean {
                    self.counters.warn(format!(
                        "{}: not filled in this epoch: an error item came from upstream",
                        self.name
                    ));
                }
                self.clean = false;
                self.buf = Vec::new();
                Some(Err(e))
            }
            None => {
                self.commit();
                None
            }
        }
    }
}

impl<T> Drop for FillStream<T> {
    fn drop(&mut self) {
        if self.finished || !self.clean || std::thread::panicking() {
            return;
        }
        // Dropped after exactly the last element: one more pull shows the end.
        if self.up.next().is_none() {
            self.commit();
        } else {
            self.counters.warn(format!(
                "{}: not filled: the iteration stopped after {} elements, before the end; \
                 the upstream will be computed again next time",
                self.name,
                self.buf.len()
            ));
        }
    }
}

/// The cache files being written in this process: one writer per file.
static WRITERS: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
/// Numbers the private partial files of this process.
static PARTIALS: AtomicU64 = AtomicU64::new(0);

/// The claim of being the one writer of a cache file; released on drop.
struct WriterClaim {
    path: PathBuf,
}

impl WriterClaim {
    fn try_claim(path: &Path) -> Option<WriterClaim> {
        let key = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut w = lock(&WRITERS);
        let set = w.get_or_insert_with(HashSet::new);
        if set.insert(key.clone()) {
            Some(WriterClaim { path: key })
        } else {
            None
        }
    }
}

impl Drop for WriterClaim {
    fn drop(&mut self) {
        if let Some(set) = lock(&WRITERS).as_mut() {
            set.remove(&self.path);
        }
    }
}

struct FileWriteStream<T> {
    up: BoxStream<T>,
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    fingerprint: String,
    count: u64,
    scratch: Vec<u8>,
    counters: Arc<Counters>,
    /// Released after the commit or the abandon.
    claim: Option<WriterClaim>,
}

impl<T> FileWriteStream<T> {
    fn abandon(&mut self, why: Option<String>) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
            if let Some(why) = why {
                self.counters.warn(format!(
                    "cache {}: not written: {why}; the upstream will be computed again next time",
                    self.path.display()
                ));
            }
        }
        self.claim = None;
    }
    fn finish(&mut self) -> Result<()> {
        let Some(mut out) = self.out.take() else {
            return Ok(());
        };
        let io = |e| Error::io(&self.tmp, e);
        out.write_all(&self.count.to_le_bytes()).map_err(io)?;
        out.write_all(END).map_err(io)?;
        let f = out.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        drop(f);
        // Verified commit: read the private file back before it becomes the cache.
        let (_, count) = verify(&self.tmp, &self.fingerprint).map_err(|e| e.into_error())?;
        if count != self.count {
            return Err(Error::file(
                &self.tmp,
                format!("holds {count} records after writing {}", self.count),
            ));
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.claim = None;
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let len = u32::try_from(bytes.len())
            .map_err(|_| Error::file(&self.tmp, "element larger than 4 GiB"))?;
        out.write_all(&len.to_le_bytes())
            .and_then(|_| out.write_all(&CRC32C.checksum(bytes).to_le_bytes()))
            .and_then(|_| out.write_all(bytes))
            .map_err(|e| Error::io(&self.tmp, e))?;
        self.count += 1;
        Ok(())
    }
}

impl<T: Serialize + Send> Stream<T> for FileWriteStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        match self.up.next() {
            Some(Ok(x)) => {
                if self.out.is_some() {
                    let mut buf = std::mem::take(&mut self.scratch);
                    buf.clear();
                    let w = match postcard::to_extend(&x, buf) {
                        Ok(buf) => {
                            let r = self.write(&buf);
                            self.scratch = buf;
                            r
                        }
                        Err(e) => Err(Error::file(
                            &self.tmp,
                            format!("cannot encode element: {e}"),
                        )),
                    };
                    if let Err(e) = w {
                        self.abandon(Some(e.to_string()));
                        return Some(Err(e));
                    }
                }
                Some(Ok(x))
            }
            Some(Err(e)) => {
                self.abandon(Some("an error item came from upstream".into()));
                Some(Err(e))
            }
            None => match self.finish() {
                Ok(()) => None,
                Err(e) => {
                    self.abandon(Some(e.to_string()));
                    Some(Err(e))
                }
            },
        }
    }
}

impl<T> Drop for FileWriteStream<T> {
    fn drop(&mut self) {
        if self.out.is_some() && !std::thread::panicking() {
            // Dropped after exactly the last element: one more pull shows the end.
            if self.up.next().is_none() {
                if let Err(e) = self.finish() {
                    self.abandon(Some(e.to_string()));
                }
                return;
            }
            let n = self.count;
            self.abandon(Some(format!(
                "the iteration stopped after {n} elements, before the end"
            )));
        }
        self.abandon(None);
    }
}

struct FileReadStream<T> {
    r: BufReader<File>,
    path: PathBuf,
    left: u64,
    index: u64,
    buf: Vec<u8>,
    counters: Arc<Counters>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> FileReadStream<T> {
    fn read_one(&mut self) -> Result<T> {
        let rec = |reason: String| Error::record(&self.path, self.index, reason);
        let len = read_record(&mut self.r, &mut self.buf).map_err(rec)?;
        self.counters.add_bytes(8 + len as u64);
        postcard::from_bytes(&self.buf).map_err(|e| rec(format!("cannot decode: {e}")))
    }
}

/// Reads one record into `buf`, checking its CRC; returns its length.
fn read_record(r: &mut impl Read, buf: &mut Vec<u8>) -> std::result::Result<usize, String> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)
        .map_err(|e| format!("truncated record header: {e}"))?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    buf.clear();
    r.by_ref()
        .take(len as u64)
        .read_to_end(buf)
        .map_err(|e| format!("truncated record: {e}"))?;
    if buf.len() != len {
        return Err(format!("truncated record: {} of {len} bytes", buf.len()));
    }
    if CRC32C.checksum(buf) != crc {
        return Err("CRC mismatch".into());
    }
    Ok(len)
}

impl<T: DeserializeOwned + Send> Stream<T> for FileReadStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.left == 0 {
            return None;
        }
        let r = self.read_one();
        self.index += 1;
        self.left = if r.is_ok() { self.left - 1 } else { 0 };
        if let Err(e) = &r {
            // Never serve it again: the next iteration rebuilds the cache.
            let _ = std::fs::remove_file(&self.path);
            self.counters.warn(format!(
                "{e}; the cache file was removed and will be rebuilt"
            ));
        }
        Some(r)
    }
}

/// Why a committed cache file cannot be used.
enum Unusable {
    /// It was written by another pipeline: an error, the file is left alone.
    Foreign(Error),
    /// It is corrupt or incomplete: rebuild it.
    Corrupt(Error),
    /// It cannot be read at all.
    Io(Error),
}

impl Unusable {
    fn into_error(self) -> Error {
        match self {
            Unusable::Foreign(e) | Unusable::Corrupt(e) | Unusable::Io(e) => e,
        }
    }
}

/// Opens a committed cache file, checks its magic, fingerprint and trailer, and leaves
/// the reader at the first record. Returns the record count.
fn open_cache(
    path: &Path,
    fingerprint: &str,
) -> std::result::Result<(BufReader<File>, u64), Unusable> {
    let io = |e| Unusable::Io(Error::io(path, e));
    let mut f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let bad = |reason: &str| {
        Unusable::Corrupt(Error::file(
            path,
            format!("not a usable cache file: {reason}"),
        ))
    };
    if size < 8 + 4 + 16 {
        return Err(bad("too short"));
    }
    f.seek(SeekFrom::Start(size - 16)).map_err(io)?;
    let mut tail = [0u8; 16];
    f.read_exact(&mut tail).map_err(io)?;
    if &tail[8..] != END {
        return Err(bad("no end marker (the file is incomplete)"));
    }
    let count = u64::from_le_bytes(tail[..8].try_into().unwrap_or_default());
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut r = BufReader::new(f);
    let mut head = [0u8; 12];
    r.read_exact(&mut head).map_err(io)?;
    if &head[..8] != MAGIC {
        return Err(bad("bad magic"));
    }
    let n = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64;
    if n > size {
        return Err(bad("bad header"));
    }
    let mut fp = vec![0u8; n as usize];
    r.read_exact(&mut fp).map_err(io)?;
    if fp != fingerprint.as_bytes() {
        return Err(Unusable::Foreign(Error::file(
            path,
            format!(
                "the cache was written by a different pipeline ({:?}); this one is {:?}: delete the file to rebuild it",
                String::from_utf8_lossy(&fp),
                fingerprint
            ),
        )));
    }
    Ok((r, count))
}

/// Opens a cache file and reads it through: every record's CRC, the record count
/// against the trailer. Returns the file's size and the count.
fn verify(path: &Path, fingerprint: &str) -> std::result::Result<(u64, u64), Unusable> {
    let (mut r, count) = open_cache(path, fingerprint)?;
    let mut buf = Vec::new();
    for i in 0..count {
        read_record(&mut r, &mut buf)
            .map_err(|reason| Unusable::Corrupt(Error::record(path, i, reason)))?;
    }
    let mut tail = [0u8; 16];
    r.read_exact(&mut tail)
        .map_err(|e| Unusable::Corrupt(Error::file(path, format!("bad trailer: {e}"))))?;
    let mut extra = [0u8; 1];
    if r.read(&mut extra)
        .map_err(|e| Unusable::Io(Error::io(path, e)))?
        != 0
    {
        return Err(Unusable::Corrupt(Error::file(
            path,
            format!("bytes after the {count} records and the trailer"),
        )));
    }
    let size = std::fs::metadata(path)
        .map_err(|e| Unusable::Io(Error::io(path, e)))?
        .len();
    Ok((size, count))
}

fn create_cache(tmp: &Path, fingerprint: &str) -> Result<BufWriter<File>> {
    let io = |e| Error::io(tmp, e);
    let mut w = BufWriter::new(File::create_new(tmp).map_err(io)?);
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&(fingerprint.len() as u32).to_le_bytes())
        .map_err(io)?;
    w.write_all(fingerprint.as_bytes()).map_err(io)?;
    Ok(w)
}

impl<T: Clone + Send + Sync + 'static> Dataset<T> {
    /// Caches the elements in memory (see the module documentation). Memory: the whole
    /// dataset, by the user's choice.
    pub fn cache(&self) -> Dataset<T> {
        let up = self.clone();
        let slot: Slot<T> = Arc::default();
        Dataset::from_op("cache(memory)", vec![self.meta()], move |cx| {
            let filled = lock(&slot).clone();
            match filled {
                Some(items) => Box::new(ReplayStream { items, pos: 0 }),
                None => Box::new(FillStream {
                    up: up.open_from(cx),
                    buf: Vec::new(),
                    clean: true,
                    finished: false,
                    slot: Arc::clone(&slot),
                    counters: Arc::clone(&cx.counters),
                    name: "cache(memory)".into(),
                }),
            }
        })
    }
}

/// The size and modification time of a file, to notice that it changed.
fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Dataset<T> {
    /// Caches the elements in the file `path` (see the module documentation for the
    /// format, concurrent iterations and the guarantees).
    pub fn cache_to_file(&self, path: impl Into<PathBuf>) -> Dataset<T> {
        let path: PathBuf = path.into();
        let up = self.clone();
        let fingerprint = self.describe();
        let name = format!("cache({})", path.display());
        // The stamp of the committed file last verified by this pipeline.
        let verified: Arc<Mutex<Option<(u64, SystemTime)>>> = Arc::default();
        Dataset::from_op(name, vec![self.meta()], move |cx| -> BoxStream<T> {
            let err = |e: Error| -> BoxStream<T> { Box::new(IterStream(std::iter::once(Err(e)))) };
            if path.exists() {
                let now = stamp(&path);
                let known = now.is_some() && *lock(&verified) == now;
                let checked = if known {
                    Ok(())
                } else {
                    verify(&path, &fingerprint).map(|_| {
                        *lock(&verified) = now;
                    })
                };
                match checked.and_then(|()| open_cache(&path, &fingerprint)) {
                    Ok((r, count)) => {
                        return Box::new(FileReadStream {
                            r,
                            path: path.clone(),
                            left: count,
                            index: 0,
                            buf: Vec::new(),
                            counters: Arc::clone(&cx.counters),
                            _t: std::marker::PhantomData,
                        })
                    }
                    Err(Unusable::Corrupt(e)) => {
                        cx.counters
                            .warn(format!("{e}; the cache file was removed and is rebuilt"));
                        let _ = std::fs::remove_file(&path);
                    }
                    Err(Unusable::Foreign(e)) | Err(Unusable::Io(e)) => return err(e),
                }
            }
            let Some(claim) = WriterClaim::try_claim(&path) else {
                // Another iteration is writing this cache: read through, write nothing.
                return up.open_from(cx);
            };
            let mut tmp = path.clone().into_os_string();
            tmp.push(format!(
                ".partial.{}.{}",
                std::process::id(),
                PARTIALS.fetch_add(1, Ordering::Relaxed)
            ));
            let tmp = PathBuf::from(tmp);
            match create_cache(&tmp, &fingerprint) {
                Ok(w) => Box::new(FileWriteStream {
                    up: up.open_from(cx),
                    out: Some(w),
                    tmp,
                    path: path.clone(),
                    fingerprint: fingerprint.clone(),
                    count: 0,
                    scratch: Vec::new(),
                    counters: Arc::clone(&cx.counters),
                    claim: Some(claim),
                }),
                Err(e) => err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counting(n: i64) -> (Dataset<i64>, Arc<AtomicU64>) {
        let opens = Arc::new(AtomicU64::new(0));
        let o = Arc::clone(&opens);
        let d = Dataset::from_fn("src", move |_| {
            o.fetch_add(1, Ordering::SeqCst);
            (0..n).map(Ok)
        });
        (d, opens)
    }

    #[test]
    fn memory_cache_fills_once_and_replays() {
        let (d, opens) = counting(5);
        let c = d.cache();
        assert_eq!(c.collect_vec().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(c.collect_vec().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn partial_memory_cache_is_not_reused() {
        let (d, opens) = counting(5);
        let c = d.cache();
        assert_eq!(c.iter().take(2).count(), 2);
        assert_eq!(c.collect_vec().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(opens.load(Ordering::SeqCst), 2);
        c.collect_vec().unwrap();
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn memory_cache_with_an_error_is_not_committed() {
        let (d, opens) = counting(4);
        let c = d
            .try_map(|x| if x == 2 { Err("boom") } else { Ok(x) })
            .cache();
        assert_eq!(c.iter().count(), 4);
        assert_eq!(c.iter().count(), 4);
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn file_cache_round_trips_and_survives_a_new_pipeline_object() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        let (d, opens) = counting(100);
        let c = d.map(|x| (x, format!("s{x}"))).cache_to_file(&p);
        let first = c.collect_vec().unwrap();
        assert!(p.exists());
        let second = c.collect_vec().unwrap();
        assert_eq!(first, second);
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        let (d2, opens2) = counting(100);
        let c2 = d2.map(|x| (x, format!("s{x}"))).cache_to_file(&p);
        assert_eq!(c2.collect_vec().unwrap(), first);
        assert_eq!(opens2.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn partial_file_cache_is_never_committed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        let (d, opens) = counting(50);
        let c = d.cache_to_file(&p);
        assert_eq!(c.iter().take(10).count(), 10);
        assert!(!p.exists());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "partial file left behind"
        );
        assert_eq!(c.collect_vec().unwrap().len(), 50);
        assert!(p.exists());
        assert_eq!(opens.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn foreign_cache_files_are_errors_and_damaged_ones_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        counting(20).0.cache_to_file(&p).collect_vec().unwrap();
        let e = Dataset::range(0, 21)
            .cache_to_file(&p)
            .collect_vec()
            .unwrap_err();
        assert!(e.to_string().contains("different pipeline"), "{e}");
        let good = std::fs::read(&p).unwrap();
        let n = good.len();
        let mut bytes = good.clone();
        bytes[n - 17] ^= 0xff; // the payload of the last record
        for damaged in [bytes.clone(), good[..n - 4].to_vec()] {
            std::fs::write(&p, &damaged).unwrap();
            let (d, opens) = counting(20);
            let c = d.cache_to_file(&p);
            // Detected before a single record is served, and rebuilt from upstream.
            assert_eq!(c.collect_vec().unwrap(), (0..20).collect::<Vec<_>>());
            assert_eq!(opens.load(Ordering::SeqCst), 1);
            let st = c.stats();
            let op = st.find("cache(").unwrap();
            assert_eq!(op.values.warnings, 1);
            assert!(
                op.last_warning.as_deref().unwrap().contains("rebuilt"),
                "{:?}",
                op.last_warning
            );
            assert_eq!(std::fs::read(&p).unwrap().len(), n, "rebuilt in full");
            assert_eq!(c.collect_vec().unwrap().len(), 20);
            assert_eq!(opens.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn a_record_damaged_after_verification_is_an_error_and_the_file_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        let (d, opens) = counting(20);
        let c = d.cache_to_file(&p);
        assert_eq!(c.collect_vec().unwrap().len(), 20);
        assert_eq!(c.collect_vec().unwrap().len(), 20); // verified and read
                                                        // Same size, same modification time: only the per-record CRC can tell.
        let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 17] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let items: Vec<_> = c.iter().collect();
        let err = items
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap()
            .to_string();
        assert!(
            err.contains("c.bin") && err.contains("record 19") && err.contains("CRC"),
            "{err}"
        );
        assert!(!p.exists(), "a damaged cache is not served again");
        assert_eq!(c.collect_vec().unwrap(), (0..20).collect::<Vec<_>>());
        assert_eq!(opens.load(Ordering::SeqCst), 2);
        assert!(p.exists());
    }

    #[test]
    fn a_cache_consumed_to_exactly_its_length_is_committed() {
        let (d, opens) = counting(5);
        let c = d.cache();
        assert_eq!(c.iter().take(5).count(), 5);
        assert_eq!(c.collect_vec().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(opens.load(Ordering::SeqCst), 1);
        assert_eq!(c.stats().ops[0].values.warnings, 0);

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        let (d, opens) = counting(5);
        let c = d.cache_to_file(&p);
        assert_eq!(c.iter().take(5).count(), 5);
        assert!(p.exists());
        assert_eq!(c.collect_vec().unwrap(), [0, 1, 2, 3, 4]);
        assert_eq!(opens.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_partly_consumed_cache_warns() {
        let (d, _) = counting(5);
        let c = d.cache();
        assert_eq!(c.iter().take(2).count(), 2);
        let st = c.stats();
        assert_eq!(st.ops[0].values.warnings, 1);
        let w = st.ops[0].last_warning.clone().unwrap();
        assert!(w.contains("stopped after 2 elements"), "{w}");
        assert!(st.table().contains("stopped after 2 elements"));

        let dir = tempfile::tempdir().unwrap();
        let (d, _) = counting(5);
        let c = d.cache_to_file(dir.path().join("c.bin"));
        assert_eq!(c.iter().take(3).count(), 3);
        let st = c.stats();
        assert_eq!(st.ops[0].values.warnings, 1);
        assert!(st.ops[0]
            .last_warning
            .as_deref()
            .unwrap()
            .contains("stopped after 3 elements"));
    }

    /// DATASET.md: two iterations of one file cache at once.
    #[test]
    fn concurrent_iterations_never_corrupt_or_abort_each_other() {
        for shuffled in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("c.bin");
            let src = Dataset::range(0, 3000);
            let src = if shuffled { src.shuffle(100, 3) } else { src };
            let c = src.cache_to_file(&p);
            let mut a = c.iter();
            let mut first = Vec::new();
            for _ in 0..2000 {
                first.push(a.next().unwrap().unwrap());
            }
            // A peek while the first epoch fills.
            assert!(c.iter().next().unwrap().is_ok());
            let mut b = c.iter();
            assert!(b.next().unwrap().is_ok());
            for x in a.by_ref() {
                first.push(x.unwrap());
            }
            drop(a);
            drop(b);
            assert!(p.exists());
            let again: Vec<i64> = c.iter().map(|x| x.unwrap()).collect();
            assert_eq!(again, first, "shuffled={shuffled}");
            let mut sorted = again;
            sorted.sort();
            assert_eq!(sorted, (0..3000).collect::<Vec<_>>());
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(left.len(), 1, "partial files left behind: {left:?}");
        }
    }
}
