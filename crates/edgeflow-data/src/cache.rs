//! Caching a dataset in memory or in a file.
//!
//! The first complete iteration fills the cache; later iterations read from it and do
//! not open the upstream at all. A cache is committed only when an iteration reaches
//! the end of the upstream without an error item: an iteration that is dropped early
//! or sees an error leaves no cache behind (for a file cache: the partial file is
//! removed), so an incompletely filled cache is never reused. Because later
//! iterations replay the first one, anything upstream that varies with the epoch
//! (a shuffle, random augmentation) is frozen by a cache: put those after it.
//!
//! File format (little-endian): magic `EFCACHE1`, `u32` length + UTF-8 pipeline
//! description (a cache written by a different pipeline is an error, not a silent
//! reuse), then records `u32 length, u32 CRC-32C, postcard bytes`, then the trailer
//! `u64 record count, magic EFCEND01`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dataset::{BoxStream, Dataset, IterStream, Stream};
use crate::error::{Error, Result};
use crate::stats::Counters;

const MAGIC: &[u8; 8] = b"EFCACHE1";
const END: &[u8; 8] = b"EFCEND01";
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

type Slot<T> = Arc<Mutex<Option<Arc<Vec<T>>>>>;

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
    slot: Slot<T>,
}

impl<T: Clone + Send + Sync> Stream<T> for FillStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        match self.up.next() {
            Some(Ok(x)) => {
                if self.clean {
                    self.buf.push(x.clone());
                }
                Some(Ok(x))
            }
            Some(Err(e)) => {
                self.clean = false;
                self.buf = Vec::new();
                Some(Err(e))
            }
            None => {
                if self.clean {
                    self.clean = false;
                    let items = Arc::new(std::mem::take(&mut self.buf));
                    let mut s = self.slot.lock().unwrap_or_else(|p| p.into_inner());
                    s.get_or_insert(items);
                }
                None
            }
        }
    }
}

struct FileWriteStream<T> {
    up: BoxStream<T>,
    out: Option<BufWriter<File>>,
    tmp: PathBuf,
    path: PathBuf,
    count: u64,
    scratch: Vec<u8>,
}

impl<T> FileWriteStream<T> {
    fn abandon(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
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
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl<T: Serialize + Send> Stream<T> for FileWriteStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        match self.up.next() {
            Some(Ok(x)) => {
                if let Some(out) = &mut self.out {
                    let tmp = &self.tmp;
                    let mut buf = std::mem::take(&mut self.scratch);
                    buf.clear();
                    let w = postcard::to_extend(&x, buf)
                        .map_err(|e| Error::file(tmp, format!("cannot encode element: {e}")))
                        .and_then(|buf| {
                            let len = u32::try_from(buf.len())
                                .map_err(|_| Error::file(tmp, "element larger than 4 GiB"))?;
                            out.write_all(&len.to_le_bytes())
                                .and_then(|_| out.write_all(&CRC32C.checksum(&buf).to_le_bytes()))
                                .and_then(|_| out.write_all(&buf))
                                .map_err(|e| Error::io(tmp, e))?;
                            Ok(buf)
                        })
                        .map(|buf| self.scratch = buf);
                    if let Err(e) = w {
                        self.abandon();
                        return Some(Err(e));
                    }
                    self.count += 1;
                }
                Some(Ok(x))
            }
            Some(Err(e)) => {
                self.abandon();
                Some(Err(e))
            }
            None => match self.finish() {
                Ok(()) => None,
                Err(e) => {
                    self.abandon();
                    Some(Err(e))
                }
            },
        }
    }
}

impl<T> Drop for FileWriteStream<T> {
    fn drop(&mut self) {
        self.abandon();
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
        let mut head = [0u8; 8];
        self.r
            .read_exact(&mut head)
            .map_err(|e| rec(format!("truncated record header: {e}")))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        self.buf.resize(len, 0);
        self.r
            .read_exact(&mut self.buf)
            .map_err(|e| rec(format!("truncated record: {e}")))?;
        if CRC32C.checksum(&self.buf) != crc {
            return Err(rec("CRC mismatch".into()));
        }
        self.counters.add_bytes(8 + len as u64);
        postcard::from_bytes(&self.buf).map_err(|e| rec(format!("cannot decode: {e}")))
    }
}

impl<T: DeserializeOwned + Send> Stream<T> for FileReadStream<T> {
    fn next(&mut self) -> Option<Result<T>> {
        if self.left == 0 {
            return None;
        }
        let r = self.read_one();
        self.index += 1;
        self.left = if r.is_ok() { self.left - 1 } else { 0 };
        Some(r)
    }
}

/// Opens a committed cache file, checks its magic, fingerprint and trailer, and leaves
/// the reader at the first record. Returns the record count.
fn open_cache(path: &Path, fingerprint: &str) -> Result<(BufReader<File>, u64)> {
    let io = |e| Error::io(path, e);
    let mut f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let bad = |reason: &str| Error::file(path, format!("not a usable cache file: {reason}"));
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
        return Err(Error::file(
            path,
            format!(
                "the cache was written by a different pipeline ({:?}); this one is {:?}: delete the file to rebuild it",
                String::from_utf8_lossy(&fp),
                fingerprint
            ),
        ));
    }
    Ok((r, count))
}

fn create_cache(tmp: &Path, fingerprint: &str) -> Result<BufWriter<File>> {
    let io = |e| Error::io(tmp, e);
    let mut w = BufWriter::new(File::create(tmp).map_err(io)?);
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
            let filled = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match filled {
                Some(items) => Box::new(ReplayStream { items, pos: 0 }),
                None => Box::new(FillStream {
                    up: up.open_from(cx),
                    buf: Vec::new(),
                    clean: true,
                    slot: Arc::clone(&slot),
                }),
            }
        })
    }
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Dataset<T> {
    /// Caches the elements in the file `path` (see the module documentation for the
    /// format and the guarantees). While filling, the data goes to `path` + `.partial`,
    /// renamed to `path` only when complete.
    pub fn cache_to_file(&self, path: impl Into<PathBuf>) -> Dataset<T> {
        let path: PathBuf = path.into();
        let up = self.clone();
        let fingerprint = self.describe();
        let name = format!("cache({})", path.display());
        Dataset::from_op(name, vec![self.meta()], move |cx| -> BoxStream<T> {
            if path.exists() {
                return match open_cache(&path, &fingerprint) {
                    Ok((r, count)) => Box::new(FileReadStream {
                        r,
                        path: path.clone(),
                        left: count,
                        index: 0,
                        buf: Vec::new(),
                        counters: Arc::clone(&cx.counters),
                        _t: std::marker::PhantomData,
                    }),
                    Err(e) => Box::new(IterStream(std::iter::once(Err(e)))),
                };
            }
            let mut tmp = path.clone().into_os_string();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            match create_cache(&tmp, &fingerprint) {
                Ok(w) => Box::new(FileWriteStream {
                    up: up.open_from(cx),
                    out: Some(w),
                    tmp,
                    path: path.clone(),
                    count: 0,
                    scratch: Vec::new(),
                }),
                Err(e) => Box::new(IterStream(std::iter::once(Err(e)))),
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
    fn damaged_or_foreign_cache_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.bin");
        Dataset::range(0, 20)
            .cache_to_file(&p)
            .collect_vec()
            .unwrap();
        let e = Dataset::range(0, 21)
            .cache_to_file(&p)
            .collect_vec()
            .unwrap_err();
        assert!(e.to_string().contains("different pipeline"), "{e}");
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 17] ^= 0xff; // the payload of the last record
        std::fs::write(&p, &bytes).unwrap();
        let items: Vec<_> = Dataset::range(0, 20).cache_to_file(&p).iter().collect();
        let err = items
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap()
            .to_string();
        assert!(
            err.contains("c.bin") && err.contains("record 19") && err.contains("CRC"),
            "{err}"
        );
        std::fs::write(&p, &bytes[..n - 4]).unwrap();
        let e = Dataset::range(0, 20)
            .cache_to_file(&p)
            .collect_vec()
            .unwrap_err();
        assert!(e.to_string().contains("incomplete"), "{e}");
    }
}
