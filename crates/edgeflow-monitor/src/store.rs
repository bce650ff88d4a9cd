//! The SQLite store: every accepted frame with its device, sequence number, model hash and
//! receive time; per-device gap and corrupt-frame counters; late labels.
//!
//! # Durability
//!
//! Frames are appended inside a transaction that [`Store::commit`] closes; a frame is
//! *acknowledged* once the `commit` that covers it has returned. The database runs in WAL
//! mode; with [`Durability::Process`] (the default, `synchronous=NORMAL`) a committed frame
//! survives the ingesting process being killed at any instant, and with
//! [`Durability::PowerLoss`] (`synchronous=FULL`) also an OS crash or power cut. The crash
//! test (`edgeflow-cli/tests/monitor_crash.rs`) kills an ingester at random points and
//! checks that every acknowledged frame is there.
//!
//! # Schema
//!
//! Versioned with `PRAGMA user_version`; [`MIGRATIONS`] lists the steps, applied in order
//! inside one transaction on open. A database newer than this reader is refused.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::window::WindowSummary;

/// One step per schema version: `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: devices, frames, labels.
    "CREATE TABLE devices (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        model_hash TEXT,
        last_seq INTEGER,
        frames INTEGER NOT NULL DEFAULT 0,
        gaps INTEGER NOT NULL DEFAULT 0,
        corrupt INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        device INTEGER NOT NULL REFERENCES devices(id),
        seq INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        recv_us INTEGER NOT NULL,
        model_hash TEXT,
        payload BLOB NOT NULL
     );
     CREATE INDEX frames_by_time ON frames(recv_us);
     CREATE INDEX frames_by_device ON frames(device, kind, seq);
     CREATE TABLE labels (
        device INTEGER NOT NULL REFERENCES devices(id),
        seq INTEGER NOT NULL,
        label INTEGER NOT NULL,
        PRIMARY KEY (device, seq)
     );",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What a store operation failed on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("{context}: {source}")]
    Sql {
        /// What was being done.
        context: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer edgeflow.
    #[error(
        "database schema version {found} is newer than this edgeflow reads ({SCHEMA_VERSION})"
    )]
    TooNew {
        /// The version found.
        found: i64,
    },
    /// A stored payload did not decode.
    #[error("frame {id}: stored payload does not decode: {reason}")]
    BadPayload {
        /// Row id.
        id: i64,
        /// Decoder's message.
        reason: String,
    },
    /// A frame could not be encoded.
    #[error("frame could not be encoded: {0}")]
    Encode(String),
    /// Parquet export failed.
    #[error("parquet export to {path}: {reason}")]
    Parquet {
        /// Output path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

fn sql(context: impl FnOnce() -> String) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql {
        context: context(),
        source,
    }
}

/// What the monitor keeps of a frame (the decoded meaning, independent of the wire version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// A device (re)started: its firmware announced the model it runs.
    Hello {
        /// Model hash (hex).
        model_hash: String,
    },
    /// One prediction.
    Prediction {
        /// Predicted class.
        class: u16,
        /// Top-1 score (or anomaly score).
        score: f32,
        /// Inference latency, microseconds.
        latency_us: u32,
    },
    /// A summary of a window of inferences.
    Summary(WindowSummary),
}

impl Frame {
    /// The `kind` column: 0 hello, 1 prediction, 2 summary.
    pub fn kind(&self) -> i64 {
        match self {
            Frame::Hello { .. } => 0,
            Frame::Prediction { .. } => 1,
            Frame::Summary(_) => 2,
        }
    }
}

/// A frame as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Device name.
    pub device: String,
    /// Model hash the device reported (hex), if known.
    pub model_hash: Option<String>,
    /// Frame sequence number (per device, wrapping at 2³²).
    pub seq: u32,
    /// Receive time, microseconds since the Unix epoch.
    pub recv_us: i64,
    /// The frame.
    pub frame: Frame,
}

/// How hard commits are pushed to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process being killed (`synchronous=NORMAL` in WAL mode).
    #[default]
    Process,
    /// Survives a power cut (`synchronous=FULL`).
    PowerLoss,
}

/// Per-device counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    /// Device name.
    pub name: String,
    /// Last model hash seen.
    pub model_hash: Option<String>,
    /// Frames stored.
    pub frames: u64,
    /// Frames missing by sequence number.
    pub gaps: u64,
    /// Frames rejected as corrupt.
    pub corrupt: u64,
}

#[derive(Default)]
struct DeviceState {
    id: i64,
    last_seq: Option<u32>,
    frames: u64,
    gaps: u64,
    corrupt: u64,
    model_hash: Option<String>,
    dirty: bool,
}

/// An open store.
pub struct Store {
    conn: Connection,
    devices: HashMap<String, DeviceState>,
    in_tx: bool,
    pending: u64,
    acked: u64,
    buf: Vec<u8>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(sql(|| format!("opening {}", path.display())))?;
        Self::init(conn, durability, &path.display().to_string())
    }

    /// An in-memory store (tests, benchmarks of the analysis).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(sql(|| "opening in-memory db".into()))?;
        Self::init(conn, Durability::Process, ":memory:")
    }

    fn init(mut conn: Connection, durability: Durability, name: &str) -> Result<Self, StoreError> {
        let sync = match durability {
            Durability::Process => "NORMAL",
            Durability::PowerLoss => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
        ))
        .map_err(sql(|| format!("setting pragmas on {name}")))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(|| format!("reading schema version of {name}")))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { found: version });
        }
        if version < SCHEMA_VERSION {
            let tx = conn
                .transaction()
                .map_err(sql(|| "starting migration".into()))?;
            for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                tx.execute_batch(step).map_err(sql(|| {
                    format!("migrating {name} from schema {i} to {}", i + 1)
                }))?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                .map_err(sql(|| "recording schema version".into()))?;
            tx.commit().map_err(sql(|| "committing migration".into()))?;
        }
        let mut store = Self {
            conn,
            devices: HashMap::new(),
            in_tx: false,
            pending: 0,
            acked: 0,
            buf: Vec::with_capacity(256),
        };
        store.load_devices()?;
        Ok(store)
    }

    fn load_devices(&mut self) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, model_hash, last_seq, frames, gaps, corrupt FROM devices")
            .map_err(sql(|| "reading devices".into()))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    DeviceState {
                        id: r.get(0)?,
                        model_hash: r.get(2)?,
                        last_seq: r.get::<_, Option<i64>>(3)?.map(|s| s as u32),
                        frames: r.get::<_, i64>(4)? as u64,
                        gaps: r.get::<_, i64>(5)? as u64,
                        corrupt: r.get::<_, i64>(6)? as u64,
                        dirty: false,
                    },
                ))
            })
            .map_err(sql(|| "reading devices".into()))?;
        for row in rows {
            let (name, st) = row.map_err(sql(|| "reading a device row".into()))?;
            self.devices.insert(name, st);
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if !self.in_tx {
            self.conn
                .execute_batch("BEGIN")
                .map_err(sql(|| "beginning a batch".into()))?;
            self.in_tx = true;
        }
        Ok(())
    }

    fn device(&mut self, name: &str) -> Result<&mut DeviceState, StoreError> {
        if !self.devices.contains_key(name) {
            self.conn
                .prepare_cached("INSERT INTO devices(name) VALUES (?1)")
                .and_then(|mut s| s.execute([name]))
                .map_err(sql(|| format!("adding device {name:?}")))?;
            let id = self.conn.last_insert_rowid();
            self.devices.insert(
                name.to_string(),
                DeviceState {
                    id,
                    ..DeviceState::default()
                },
            );
        }
        self.devices
            .get_mut(name)
            .ok_or_else(|| StoreError::Encode("device vanished".into()))
    }

    /// Appends a frame to the open batch (opening one if needed). It is acknowledged by the
    /// next [`Store::commit`]. A sequence number more than one past the device's last counts
    /// the frames in between as gaps; a smaller one is a restart, and its own number counts
    /// (the frames of the new boot before it are missing); a repeat counts nothing.
    pub fn append(&mut self, rec: &Record) -> Result<(), StoreError> {
        self.begin()?;
        self.buf.clear();
        let buf = std::mem::take(&mut self.buf);
        let buf =
            postcard::to_extend(&rec.frame, buf).map_err(|e| StoreError::Encode(e.to_string()))?;
        let dev = self.device(&rec.device)?;
        if let Some(last) = dev.last_seq {
            if rec.seq > last {
                dev.gaps += u64::from(rec.seq - last - 1);
            } else if rec.seq < last {
                // A restart: the frames of the new boot before this one are missing.
                dev.gaps += u64::from(rec.seq);
            }
        }
        dev.last_seq = Some(rec.seq);
        dev.frames += 1;
        if rec.model_hash.is_some() && rec.model_hash != dev.model_hash {
            dev.model_hash = rec.model_hash.clone();
        }
        if let Frame::Hello { model_hash } = &rec.frame {
            dev.model_hash = Some(model_hash.clone());
        }
        dev.dirty = true;
        let id = dev.id;
        let model = dev.model_hash.clone();
        self.conn
            .prepare_cached(
                "INSERT INTO frames(device, seq, kind, recv_us, model_hash, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![id, i64::from(rec.seq), rec.frame.kind(), rec.recv_us, model, &buf]))
            .map_err(sql(|| format!("storing frame {} of {}", rec.seq, rec.device)))?;
        self.buf = buf;
        self.pending += 1;
        Ok(())
    }

    /// Counts `n` corrupt frames against a device (stored with the next commit).
    pub fn count_corrupt(&mut self, device: &str, n: u64) -> Result<(), StoreError> {
        self.begin()?;
        let dev = self.device(device)?;
        dev.corrupt += n;
        dev.dirty = true;
        Ok(())
    }

    /// Counts `n` frames lost by a decoder's own sequence check (added to the gaps).
    pub fn count_gaps(&mut self, device: &str, n: u64) -> Result<(), StoreError> {
        self.begin()?;
        let dev = self.device(device)?;
        dev.gaps += n;
        dev.dirty = true;
        Ok(())
    }

    /// Frames appended since the last commit.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// Commits the open batch; returns the total number of frames acknowledged by this
    /// store handle so far.
    pub fn commit(&mut self) -> Result<u64, StoreError> {
        if !self.in_tx {
            return Ok(self.acked);
        }
        for dev in self.devices.values_mut().filter(|d| d.dirty) {
            self.conn
                .prepare_cached(
                    "UPDATE devices SET model_hash=?2, last_seq=?3, frames=?4, gaps=?5, corrupt=?6 WHERE id=?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        dev.id,
                        dev.model_hash,
                        dev.last_seq.map(i64::from),
                        dev.frames as i64,
                        dev.gaps as i64,
                        dev.corrupt as i64
                    ])
                })
                .map_err(sql(|| "updating device counters".into()))?;
            dev.dirty = false;
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(sql(|| "committing a batch".into()))?;
        self.in_tx = false;
        self.acked += self.pending;
        self.pending = 0;
        Ok(self.acked)
    }

    /// Deletes frames received before `cutoff_us` (retention); returns how many.
    pub fn apply_retention(&mut self, cutoff_us: i64) -> Result<u64, StoreError> {
        self.commit()?;
        let n = self
            .conn
            .execute("DELETE FROM frames WHERE recv_us < ?1", [cutoff_us])
            .map_err(sql(|| "applying retention".into()))?;
        Ok(n as u64)
    }

    /// Records the true label of prediction `seq` of `device` (replacing an earlier one).
    pub fn add_label(&mut self, device: &str, seq: u32, label: u16) -> Result<(), StoreError> {
        self.begin()?;
        let id = self.device(device)?.id;
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO labels(device, seq, label) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![id, i64::from(seq), i64::from(label)]))
            .map_err(sql(|| format!("storing label of {device} #{seq}")))?;
        Ok(())
    }

    /// Every device's counters, by name.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        let mut v: Vec<DeviceInfo> = self
            .devices
            .iter()
            .map(|(name, d)| DeviceInfo {
                name: name.clone(),
                model_hash: d.model_hash.clone(),
                frames: d.frames,
                gaps: d.gaps,
                corrupt: d.corrupt,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Visits stored frames in receive order, optionally of one device and in a receive-time
    /// window `[from_us, to_us)`. The callback gets the device name, sequence number, receive
    /// time and the decoded frame.
    pub fn for_each_frame(
        &self,
        device: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        mut f: impl FnMut(&str, u32, i64, Frame),
    ) -> Result<u64, StoreError> {
        let names: HashMap<i64, &str> = self
            .devices
            .iter()
            .map(|(n, d)| (d.id, n.as_str()))
            .collect();
        let dev_id = match device {
            Some(d) => match self.devices.get(d) {
                Some(s) => Some(s.id),
                None => return Ok(0),
            },
            None => None,
        };
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, device, seq, recv_us, payload FROM frames
                 WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR recv_us >= ?2) AND (?3 IS NULL OR recv_us < ?3)
                 ORDER BY id",
            )
            .map_err(sql(|| "querying frames".into()))?;
        let mut rows = st
            .query(params![dev_id, from_us, to_us])
            .map_err(sql(|| "querying frames".into()))?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(sql(|| "reading a frame".into()))? {
            let id: i64 = r.get(0).map_err(sql(|| "reading a frame".into()))?;
            let dev: i64 = r.get(1).map_err(sql(|| "reading a frame".into()))?;
            let seq: i64 = r.get(2).map_err(sql(|| "reading a frame".into()))?;
            let recv: i64 = r.get(3).map_err(sql(|| "reading a frame".into()))?;
            let payload = r
                .get_ref(4)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(sql(|| "reading a frame".into()))?;
            let frame: Frame =
                postcard::from_bytes(payload).map_err(|e| StoreError::BadPayload {
                    id,
                    reason: e.to_string(),
                })?;
            f(
                names.get(&dev).copied().unwrap_or("?"),
                seq as u32,
                recv,
                frame,
            );
            n += 1;
        }
        Ok(n)
    }

    /// `(correct, labelled)` over the labelled prediction frames of `device` (or all) in a
    /// receive-time window.
    pub fn realised(
        &self,
        device: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
    ) -> Result<(u64, u64), StoreError> {
        let dev_id = device.and_then(|d| self.devices.get(d)).map(|d| d.id);
        if device.is_some() && dev_id.is_none() {
            return Ok((0, 0));
        }
        // Without any label the join would still scan every prediction frame of the window.
        let any: bool = self
            .conn
            .query_row("SELECT EXISTS(SELECT 1 FROM labels)", [], |r| r.get(0))
            .map_err(sql(|| "checking for labels".into()))?;
        if !any {
            return Ok((0, 0));
        }
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT f.id, f.payload, l.label FROM frames f JOIN labels l ON l.device = f.device AND l.seq = f.seq
                 WHERE f.kind = 1 AND (?1 IS NULL OR f.device = ?1) AND (?2 IS NULL OR f.recv_us >= ?2) AND (?3 IS NULL OR f.recv_us < ?3)",
            )
            .map_err(sql(|| "joining labels".into()))?;
        let mut rows = st
            .query(params![dev_id, from_us, to_us])
            .map_err(sql(|| "joining labels".into()))?;
        let (mut correct, mut total) = (0, 0);
        while let Some(r) = rows.next().map_err(sql(|| "reading a label".into()))? {
            let id: i64 = r.get(0).map_err(sql(|| "reading a label".into()))?;
            let payload: Vec<u8> = r.get(1).map_err(sql(|| "reading a label".into()))?;
            let label: i64 = r.get(2).map_err(sql(|| "reading a label".into()))?;
            if let Frame::Prediction { class, .. } =
                postcard::from_bytes(&payload).map_err(|e| StoreError::BadPayload {
                    id,
                    reason: e.to_string(),
                })?
            {
                total += 1;
                correct += u64::from(i64::from(class) == label);
            }
        }
        Ok((correct, total))
    }

    /// Number of stored frames.
    pub fn frame_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM frames", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql(|| "counting frames".into()))
    }

    /// The sequence numbers stored for `device`, in insertion order (tests, audits).
    pub fn sequences(&self, device: &str) -> Result<Vec<u32>, StoreError> {
        let Some(id) = self.devices.get(device).map(|d| d.id) else {
            return Ok(Vec::new());
        };
        let mut st = self
            .conn
            .prepare("SELECT seq FROM frames WHERE device = ?1 ORDER BY id")
            .map_err(sql(|| "listing sequences".into()))?;
        let v = st
            .query_map([id], |r| r.get::<_, i64>(0))
            .map_err(sql(|| "listing sequences".into()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql(|| "listing sequences".into()))?;
        Ok(v.into_iter().map(|s| s as u32).collect())
    }

    /// `PRAGMA integrity_check` result (`"ok"` when sound).
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql(|| "integrity check".into()))
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql(|| "reading schema version".into()))
    }

    /// The last stored sequence number of `device`.
    pub fn last_seq(&self, device: &str) -> Option<u32> {
        self.devices.get(device).and_then(|d| d.last_seq)
    }

    /// The row id of the newest frame, if any (live views poll it).
    pub fn newest_frame_id(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row("SELECT MAX(id) FROM frames", [], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(sql(|| "reading newest frame".into()))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Best effort: a dropped store commits what it holds (a killed one cannot).
        let _ = self.commit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(device: &str, seq: u32, frame: Frame) -> Record {
        Record {
            device: device.into(),
            model_hash: None,
            seq,
            recv_us: i64::from(seq) * 1000,
            frame,
        }
    }

    #[test]
    fn frames_gaps_labels_and_retention() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.db");
        {
            let mut s = Store::open(&path, Durability::Process).expect("open");
            assert_eq!(s.schema_version().expect("v"), SCHEMA_VERSION);
            s.append(&rec(
                "a",
                0,
                Frame::Hello {
                    model_hash: "abcd".into(),
                },
            ))
            .expect("append");
            for seq in [1, 2, 5, 6] {
                let class = (seq % 2) as u16;
                s.append(&rec(
                    "a",
                    seq,
                    Frame::Prediction {
                        class,
                        score: 0.9,
                        latency_us: 10,
                    },
                ))
                .expect("append");
            }
            s.count_corrupt("a", 2).expect("corrupt");
            s.add_label("a", 1, 1).expect("label");
            s.add_label("a", 2, 1).expect("label");
            assert_eq!(s.commit().expect("commit"), 5);
        }
        let mut s = Store::open(&path, Durability::Process).expect("reopen");
        let d = &s.devices()[0];
        assert_eq!((d.frames, d.gaps, d.corrupt), (5, 2, 2));
        assert_eq!(d.model_hash.as_deref(), Some("abcd"));
        assert_eq!(s.sequences("a").expect("seq"), vec![0, 1, 2, 5, 6]);
        assert_eq!(s.realised(Some("a"), None, None).expect("realised"), (1, 2));
        let mut kinds = Vec::new();
        s.for_each_frame(None, Some(2000), None, |_, seq, _, f| {
            kinds.push((seq, f.kind()))
        })
        .expect("iterate");
        assert_eq!(kinds, vec![(2, 1), (5, 1), (6, 1)]);
        assert_eq!(s.apply_retention(2000).expect("retention"), 2);
        assert_eq!(s.frame_count().expect("count"), 3);
        assert_eq!(s.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.db");
        let c = Connection::open(&path).expect("open");
        c.execute_batch("PRAGMA user_version = 99").expect("set");
        drop(c);
        assert!(matches!(
            Store::open(&path, Durability::Process),
            Err(StoreError::TooNew { found: 99 })
        ));
    }
}
