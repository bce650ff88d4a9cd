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

use std::collections::hash_map::Entry;
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
    // 2: per-frame gaps. Frames the ingester decodes but does not keep (log frames, kinds
    // it does not know) advance the device's sequence without a row, so the gap before a
    // stored frame can no longer be derived from stored sequence numbers alone: it is
    // stored with the frame, and a gap seen before an unstored frame waits in
    // `devices.pending_gap` for the device's next stored frame. Rows of schema 1 get the
    // gap schema-1 readers derived from neighbouring stored rows (the unstored frames'
    // numbers were never recorded, so their gaps stay as counted then).
    "ALTER TABLE frames ADD COLUMN gap INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE devices ADD COLUMN pending_gap INTEGER NOT NULL DEFAULT 0;
     UPDATE frames SET gap = g.gap FROM (
        SELECT id, CASE WHEN prev IS NULL THEN 0
                        WHEN seq > prev THEN seq - prev - 1
                        WHEN seq < prev THEN seq
                        ELSE 0 END AS gap
        FROM (SELECT id, seq, LAG(seq) OVER (PARTITION BY device ORDER BY id) AS prev FROM frames)
     ) AS g WHERE g.id = frames.id AND g.gap <> 0;",
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
    #[error("frame {id}: stored payload does not decode: {source}")]
    BadPayload {
        /// Row id.
        id: i64,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A frame could not be encoded for storage (postcard).
    #[error("frame {seq} of device {device:?} could not be encoded: {source}")]
    Encode {
        /// The device the frame came from.
        device: String,
        /// The frame's sequence number.
        seq: u32,
        /// The encoder's error.
        #[source]
        source: postcard::Error,
    },
    /// Parquet export failed.
    #[error("parquet export to {path}: {source}")]
    Parquet {
        /// Output path.
        path: String,
        /// The writer's error (file creation included).
        #[source]
        source: parquet::errors::ParquetError,
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

/// A stored frame as read back ([`Store::for_each_row`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FrameRow<'a> {
    /// Device name.
    pub device: &'a str,
    /// Frame sequence number.
    pub seq: u32,
    /// Receive time, microseconds since the Unix epoch.
    pub recv_us: i64,
    /// Frames of the device missing just before this one (see [`Store::append`]).
    pub gap: u64,
    /// The model hash (hex) the frame was sent under: its telemetry header's, or the
    /// device's last known one for a frame without (`None` if never known).
    pub model: Option<&'a str>,
    /// The decoded frame.
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
    /// Gaps seen before frames that were not stored; attached to the next stored frame.
    pending_gap: u64,
    corrupt: u64,
    model_hash: Option<String>,
    dirty: bool,
}

impl DeviceState {
    /// Takes `seq` as the device's newest sequence number and returns the frames missing
    /// just before it (the telemetry decoder's rule): the next number is no gap, a repeat is
    /// none, a step forward by less than 2³¹ (wrapping) misses the numbers in between, and a
    /// step back is a restart whose own number counts (the new boot's earlier frames are
    /// missing).
    fn advance(&mut self, seq: u32) -> u64 {
        let gap = match self.last_seq {
            None => 0,
            Some(last) => {
                let d = seq.wrapping_sub(last);
                if d == 0 {
                    0
                } else if d < 1 << 31 {
                    d - 1
                } else {
                    seq
                }
            }
        };
        self.last_seq = Some(seq);
        self.gaps += u64::from(gap);
        self.dirty = true;
        u64::from(gap)
    }
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
            .prepare(
                "SELECT id, name, model_hash, last_seq, frames, gaps, corrupt, pending_gap FROM devices",
            )
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
                        pending_gap: r.get::<_, i64>(7)? as u64,
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
        match self.devices.entry(name.to_string()) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(v) => {
                self.conn
                    .prepare_cached("INSERT INTO devices(name) VALUES (?1)")
                    .and_then(|mut s| s.execute([name]))
                    .map_err(sql(|| format!("adding device {name:?}")))?;
                Ok(v.insert(DeviceState {
                    id: self.conn.last_insert_rowid(),
                    ..DeviceState::default()
                }))
            }
        }
    }

    /// Appends a frame to the open batch (opening one if needed). It is acknowledged by the
    /// next [`Store::commit`]. The frames of a device missing just before it — by the
    /// device's sequence numbers, counting frames passed to [`Store::skip`] as received —
    /// are added to the device's gaps and stored with the frame (see `DeviceState::advance`
    /// for the rule: wrapping at 2³², a step back is a restart, a repeat counts nothing).
    pub fn append(&mut self, rec: &Record) -> Result<(), StoreError> {
        self.begin()?;
        self.buf.clear();
        let buf = std::mem::take(&mut self.buf);
        let buf = postcard::to_extend(&rec.frame, buf).map_err(|source| StoreError::Encode {
            device: rec.device.clone(),
            seq: rec.seq,
            source,
        })?;
        let dev = self.device(&rec.device)?;
        let gap = dev.advance(rec.seq) + std::mem::take(&mut dev.pending_gap);
        dev.frames += 1;
        if rec.model_hash.is_some() && rec.model_hash != dev.model_hash {
            dev.model_hash = rec.model_hash.clone();
        }
        if let Frame::Hello { model_hash } = &rec.frame {
            dev.model_hash = Some(model_hash.clone());
        }
        let id = dev.id;
        let model = dev.model_hash.clone();
        self.conn
            .prepare_cached(
                "INSERT INTO frames(device, seq, kind, recv_us, model_hash, payload, gap) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| s.execute(params![id, i64::from(rec.seq), rec.frame.kind(), rec.recv_us, model, &buf, gap as i64]))
            .map_err(sql(|| format!("storing frame {} of {}", rec.seq, rec.device)))?;
        self.buf = buf;
        self.pending += 1;
        Ok(())
    }

    /// Notes a frame of `device` with sequence number `seq` that was received intact but is
    /// deliberately not stored (a log frame, a kind this reader does not know). The device
    /// numbers every frame it sends with one counter, so such a frame is not a gap; frames
    /// missing before it are, and they are stored with the device's next stored frame.
    pub fn skip(&mut self, device: &str, seq: u32) -> Result<(), StoreError> {
        self.begin()?;
        let dev = self.device(device)?;
        let gap = dev.advance(seq);
        dev.pending_gap += gap;
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

    /// Counts `n` frames lost by a decoder's own sequence check (added to the gaps, and
    /// stored with the device's next stored frame).
    pub fn count_gaps(&mut self, device: &str, n: u64) -> Result<(), StoreError> {
        self.begin()?;
        let dev = self.device(device)?;
        dev.gaps += n;
        dev.pending_gap += n;
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
                    "UPDATE devices SET model_hash=?2, last_seq=?3, frames=?4, gaps=?5, corrupt=?6, pending_gap=?7 WHERE id=?1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        dev.id,
                        dev.model_hash,
                        dev.last_seq.map(i64::from),
                        dev.frames as i64,
                        dev.gaps as i64,
                        dev.corrupt as i64,
                        dev.pending_gap as i64
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
    /// time, the frames of the device missing just before this one (see [`Store::append`])
    /// and the decoded frame. [`Store::for_each_row`] also gives each frame's model hash.
    pub fn for_each_frame(
        &self,
        device: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        mut f: impl FnMut(&str, u32, i64, u64, Frame),
    ) -> Result<u64, StoreError> {
        self.for_each_row(device, None, from_us, to_us, |r| {
            f(r.device, r.seq, r.recv_us, r.gap, r.frame)
        })
    }

    /// Visits stored frames in receive order, optionally of one device, of one model (hex
    /// hash as stored) and in a receive-time window `[from_us, to_us)`, as [`FrameRow`]s.
    pub fn for_each_row(
        &self,
        device: Option<&str>,
        model: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        mut f: impl FnMut(FrameRow<'_>),
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
                "SELECT id, device, seq, recv_us, payload, gap, model_hash FROM frames
                 WHERE (?1 IS NULL OR device = ?1) AND (?2 IS NULL OR recv_us >= ?2) AND (?3 IS NULL OR recv_us < ?3)
                   AND (?4 IS NULL OR model_hash = ?4)
                 ORDER BY id",
            )
            .map_err(sql(|| "querying frames".into()))?;
        let mut rows = st
            .query(params![dev_id, from_us, to_us, model])
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
            let frame: Frame = postcard::from_bytes(payload)
                .map_err(|e| StoreError::BadPayload { id, source: e })?;
            let gap: i64 = r.get(5).map_err(sql(|| "reading a frame".into()))?;
            let model = r
                .get_ref(6)
                .and_then(|v| v.as_str_or_null().map_err(Into::into))
                .map_err(sql(|| "reading a frame's model hash".into()))?;
            f(FrameRow {
                device: names.get(&dev).copied().unwrap_or("?"),
                seq: seq as u32,
                recv_us: recv,
                gap: gap.max(0) as u64,
                model,
                frame,
            });
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
        self.realised_model(device, None, from_us, to_us)
    }

    /// [`Store::realised`] restricted to the prediction frames of one model (hex hash as
    /// stored), when `model` is given.
    pub fn realised_model(
        &self,
        device: Option<&str>,
        model: Option<&str>,
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
                 WHERE f.kind = 1 AND (?1 IS NULL OR f.device = ?1) AND (?2 IS NULL OR f.recv_us >= ?2) AND (?3 IS NULL OR f.recv_us < ?3)
                   AND (?4 IS NULL OR f.model_hash = ?4)",
            )
            .map_err(sql(|| "joining labels".into()))?;
        let mut rows = st
            .query(params![dev_id, from_us, to_us, model])
            .map_err(sql(|| "joining labels".into()))?;
        let (mut correct, mut total) = (0, 0);
        while let Some(r) = rows.next().map_err(sql(|| "reading a label".into()))? {
            let id: i64 = r.get(0).map_err(sql(|| "reading a label".into()))?;
            let payload: Vec<u8> = r.get(1).map_err(sql(|| "reading a label".into()))?;
            let label: i64 = r.get(2).map_err(sql(|| "reading a label".into()))?;
            if let Frame::Prediction { class, .. } = postcard::from_bytes(&payload)
                .map_err(|e| StoreError::BadPayload { id, source: e })?
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
        s.for_each_frame(None, Some(2000), None, |_, seq, _, _, f| {
            kinds.push((seq, f.kind()))
        })
        .expect("iterate");
        assert_eq!(kinds, vec![(2, 1), (5, 1), (6, 1)]);
        assert_eq!(s.apply_retention(2000).expect("retention"), 2);
        assert_eq!(s.frame_count().expect("count"), 3);
        assert_eq!(s.integrity_check().expect("check"), "ok");
    }

    #[test]
    fn skipped_frames_advance_the_sequence_and_carry_their_gap() {
        let mut s = Store::in_memory().expect("open");
        let p = || Frame::Prediction {
            class: 0,
            score: 0.5,
            latency_us: 1,
        };
        s.append(&rec("a", 0, p())).expect("append");
        s.skip("a", 1).expect("skip"); // a log frame: received, not kept
        s.append(&rec("a", 2, p())).expect("append");
        s.skip("a", 4).expect("skip"); // seq 3 lost before a log frame
        s.skip("a", 5).expect("skip");
        s.append(&rec("a", 6, p())).expect("append");
        s.append(&rec("a", 2, p())).expect("append"); // a restart: its 0 and 1 are missing
        s.append(&rec("b", u32::MAX - 1, p())).expect("append");
        s.skip("b", u32::MAX).expect("skip");
        s.append(&rec("b", 0, p())).expect("append"); // wraps: the next number
        s.commit().expect("commit");
        let mut gaps = Vec::new();
        s.for_each_frame(None, None, None, |d, seq, _, gap, _| {
            gaps.push((d.to_string(), seq, gap))
        })
        .expect("iterate");
        let g = |d: &str, seq: u32, gap: u64| (d.to_string(), seq, gap);
        assert_eq!(
            gaps,
            vec![
                g("a", 0, 0),
                g("a", 2, 0),
                g("a", 6, 1),
                g("a", 2, 2),
                g("b", u32::MAX - 1, 0),
                g("b", 0, 0)
            ]
        );
        let d = s.devices();
        assert_eq!(
            (d[0].frames, d[0].gaps, d[1].frames, d[1].gaps),
            (4, 3, 2, 0)
        );
    }

    #[test]
    fn schema_1_databases_get_their_gaps_on_migration() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("m.db");
        let c = Connection::open(&path).expect("open");
        c.execute_batch(MIGRATIONS[0]).expect("schema 1");
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO devices(id, name, last_seq, frames, gaps) VALUES (1, 'a', 9, 4, 6), (2, 'b', 1, 2, 0);
             INSERT INTO frames(device, seq, kind, recv_us, payload) VALUES
               (1, 0, 0, 1, x''), (2, 0, 0, 2, x''), (1, 3, 1, 3, x''), (1, 9, 1, 4, x''),
               (2, 1, 1, 5, x''), (1, 2, 0, 6, x'');",
        )
        .expect("rows");
        drop(c);
        let s = Store::open(&path, Durability::Process).expect("migrate");
        assert_eq!(s.schema_version().expect("v"), SCHEMA_VERSION);
        let c = Connection::open(&path).expect("reopen");
        let gaps: Vec<(i64, i64)> = c
            .prepare("SELECT seq, gap FROM frames ORDER BY id")
            .expect("q")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(gaps, vec![(0, 0), (0, 0), (3, 2), (9, 5), (1, 0), (2, 2)]);
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
