//! Groups stored frames into analysis windows — per device or for the whole fleet, and
//! always per model: a window only holds frames sent under one model hash, so after a model
//! update the old and the new model are analysed apart, each against its own baseline
//! ([`Baselines`], [`analyze_windows_by_model`]). Windows are cut by a count of summary
//! frames or by receive-time width.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::analysis::{analyze, ShapeError, Thresholds, WindowReport};
use crate::baseline::Baseline;
use crate::store::{Frame, FrameRow, Store, StoreError};
use crate::window::WindowSummary;

/// How windows are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowBy {
    /// Every `n` summary frames (per group).
    Summaries(u64),
    /// Fixed receive-time slots of this many microseconds.
    Micros(i64),
}

/// One analysis window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    /// Device name, or `"fleet"`.
    pub group: String,
    /// The model hash (hex) every frame of the window was sent under; `None` for frames
    /// stored without one.
    pub model: Option<String>,
    /// Receive time of the first frame, µs since the epoch.
    pub start_us: i64,
    /// Receive time of the last frame.
    pub end_us: i64,
    /// Summary frames merged.
    pub summaries: u64,
    /// The merged counts (latency from prediction frames, resets from hello frames after a
    /// device's first that announce the model it already ran — a hello with a new model
    /// hash is a model update, not a reset — gaps as stored with each frame: the device's frames missing before it
    /// by sequence number — frames received but not stored, such as logs, are not missing).
    pub summary: WindowSummary,
}

impl Window {
    /// The model hash as printed: the hex hash, or `"unknown"`.
    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or("unknown")
    }
}

/// Which frames [`collect_windows_in`] reads and how it groups them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Select<'a> {
    /// Only this device.
    pub device: Option<&'a str>,
    /// Only this model (hex hash as stored).
    pub model: Option<&'a str>,
    /// All devices in one group per model (`"fleet"`), instead of one group per device and
    /// model.
    pub fleet: bool,
    /// Frames received at or after this time (µs since the epoch).
    pub from_us: Option<i64>,
    /// Frames received before this time.
    pub to_us: Option<i64>,
}

/// Reads frames from `store` (one device, or all) within `[from_us, to_us)` and cuts windows
/// per device and model, or with `fleet` per model across all devices. See
/// [`collect_windows_in`].
pub fn collect_windows(
    store: &Store,
    device: Option<&str>,
    fleet: bool,
    by: WindowBy,
    from_us: Option<i64>,
    to_us: Option<i64>,
) -> Result<Vec<Window>, StoreError> {
    collect_windows_in(
        store,
        &Select {
            device,
            model: None,
            fleet,
            from_us,
            to_us,
        },
        by,
    )
}

/// Cuts the frames `sel` selects into windows. A window holds the frames of one group
/// (a device, or `"fleet"`) sent under one model hash. Per device, a frame under another
/// model than the device's open window closes that window (the model was updated); in a
/// fleet, each model's window stays open while others receive frames. Windows without a
/// summary frame are dropped. Windows come out ordered by group, then by model (in the
/// order each model was first seen in the group), then by time.
pub fn collect_windows_in(
    store: &Store,
    sel: &Select<'_>,
    by: WindowBy,
) -> Result<Vec<Window>, StoreError> {
    type Key = (String, Option<String>);
    let mut open: HashMap<Key, Window> = HashMap::new();
    // Per group, its models in first-seen order, and each (group, model)'s closed windows.
    let mut models: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    let mut done: HashMap<Key, Vec<Window>> = HashMap::new();
    // Per device (not per group): the model of its open window, to close it on a switch.
    let mut current: HashMap<String, Option<String>> = HashMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let close = |open: &mut HashMap<Key, Window>, done: &mut HashMap<Key, Vec<Window>>, k: &Key| {
        if let Some(w) = open.remove(k) {
            if w.summaries > 0 {
                done.entry(k.clone()).or_default().push(w);
            }
        }
    };
    store.for_each_row(
        sel.device,
        sel.model,
        sel.from_us,
        sel.to_us,
        |row: FrameRow<'_>| {
            let dev = row.device;
            let recv = row.recv_us;
            let group = if sel.fleet {
                "fleet".to_string()
            } else {
                dev.to_string()
            };
            let model = row.model.map(str::to_string);
            let key: Key = (group.clone(), model.clone());
            let switched = current.get(dev).is_some_and(|prev| *prev != model);
            if switched && !sel.fleet {
                if let Some(prev) = current.get(dev) {
                    close(&mut open, &mut done, &(group.clone(), prev.clone()));
                }
            }
            current.insert(dev.to_string(), model.clone());
            let ms = models.entry(group.clone()).or_default();
            if !ms.contains(&model) {
                ms.push(model.clone());
            }
            let seen_before = !seen.insert(dev.to_string());
            if let (WindowBy::Micros(width), Some(w)) = (by, open.get(&key)) {
                if width > 0 && recv.div_euclid(width) != w.start_us.div_euclid(width) {
                    close(&mut open, &mut done, &key);
                }
            }
            let w = open.entry(key.clone()).or_insert_with(|| Window {
                group: group.clone(),
                model: model.clone(),
                start_us: recv,
                end_us: recv,
                summaries: 0,
                summary: WindowSummary::default(),
            });
            w.end_us = recv;
            w.summary.health.gaps += row.gap;
            match row.frame {
                // A hello after earlier frames of the device is a reboot; its first is not, nor
                // one announcing a new model (an update restarts the device on purpose).
                Frame::Hello { .. } => {
                    w.summary.health.resets += u32::from(seen_before && !switched)
                }
                Frame::Prediction { latency_us, .. } => {
                    let h = &mut w.summary.health;
                    h.latency_max_us = h.latency_max_us.max(latency_us);
                    h.latency_sum_us += u64::from(latency_us);
                }
                Frame::Summary(s) => {
                    w.summary.merge(&s);
                    w.summaries += 1;
                    if let WindowBy::Summaries(n) = by {
                        if w.summaries >= n.max(1) {
                            close(&mut open, &mut done, &key);
                        }
                    }
                }
            }
        },
    )?;
    let keys: Vec<Key> = open.keys().cloned().collect();
    for k in keys {
        close(&mut open, &mut done, &k);
    }
    let mut out = Vec::new();
    for (group, ms) in models {
        for m in ms {
            if let Some(ws) = done.remove(&(group.clone(), m)) {
                out.extend(ws);
            }
        }
    }
    Ok(out)
}

/// The baselines `check` and `report` compare against, by model hash: each artifact's
/// monitoring baseline under the artifact's hash (the CRC-32 of its body, header bytes
/// 12..16: what its device sends as `model_hash`), or one bare baseline section (which
/// carries no hash) for every model.
#[derive(Clone, Debug, Default)]
pub struct Baselines {
    by_model: BTreeMap<String, (String, Baseline)>,
    any: Option<(String, Baseline)>,
}

/// Why a baseline could not be added to [`Baselines`].
#[derive(Debug, thiserror::Error)]
pub enum BaselinesError {
    /// Two artifacts of one model hash (the same artifact given twice, or a CRC collision).
    #[error("{second} and {first} are both model {model}: give each model once")]
    Duplicate {
        /// The model hash.
        model: String,
        /// Where the first came from.
        first: String,
        /// Where the second came from.
        second: String,
    },
    /// A bare baseline section mixed with other baselines: it has no model hash, so which
    /// windows it is for would be a guess.
    #[error(
        "{origin} is a bare monitoring-baseline section (no model hash): it can only be given alone; give artifacts to check several models"
    )]
    BareAmongSeveral {
        /// Where the bare section came from.
        origin: String,
    },
}

impl Baselines {
    /// No baselines.
    pub fn new() -> Self {
        Self::default()
    }

    /// One bare baseline for every model (the way a single baseline section is used).
    pub fn single(origin: &str, baseline: Baseline) -> Self {
        Self {
            by_model: BTreeMap::new(),
            any: Some((origin.to_string(), baseline)),
        }
    }

    /// Adds the baseline of the artifact with model hash `model` (hex, as stored).
    pub fn add(
        &mut self,
        model: &str,
        origin: &str,
        baseline: Baseline,
    ) -> Result<(), BaselinesError> {
        if let Some((o, _)) = &self.any {
            return Err(BaselinesError::BareAmongSeveral { origin: o.clone() });
        }
        if let Some((first, _)) = self.by_model.get(model) {
            return Err(BaselinesError::Duplicate {
                model: model.to_string(),
                first: first.clone(),
                second: origin.to_string(),
            });
        }
        self.by_model
            .insert(model.to_string(), (origin.to_string(), baseline));
        Ok(())
    }

    /// Adds a bare baseline section for every model; only allowed as the only baseline.
    pub fn add_bare(&mut self, origin: &str, baseline: Baseline) -> Result<(), BaselinesError> {
        if self.any.is_some() || !self.by_model.is_empty() {
            return Err(BaselinesError::BareAmongSeveral {
                origin: origin.to_string(),
            });
        }
        self.any = Some((origin.to_string(), baseline));
        Ok(())
    }

    /// The baseline for windows of `model` and where it came from: the artifact of that
    /// hash, else the bare section if one was given, else `None` (the model is unknown;
    /// its windows must not be compared with another model's baseline).
    pub fn get(&self, model: Option<&str>) -> Option<(&str, &Baseline)> {
        model
            .and_then(|m| self.by_model.get(m))
            .or(self.any.as_ref())
            .map(|(o, b)| (o.as_str(), b))
    }

    /// The known model hashes with their origins (empty with a bare section).
    pub fn models(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_model
            .iter()
            .map(|(m, (o, _))| (m.as_str(), o.as_str()))
    }

    /// Whether no baseline was added.
    pub fn is_empty(&self) -> bool {
        self.by_model.is_empty() && self.any.is_none()
    }
}

/// The model hash of an artifact as devices send it and the store keeps it (hex of the
/// CRC-32 of the body, header bytes 12..16), and its monitoring baseline section if any.
///
/// Errors: the bytes are not a valid artifact (the format error). Never panics.
pub fn artifact_model(
    bytes: &[u8],
) -> Result<(String, Option<&[u8]>), edgeflow_format::FormatError> {
    let a = edgeflow_format::Artifact::parse(bytes)?;
    // parse checked the header (at least 32 bytes) and its body CRC at bytes 12..16.
    let crc = bytes
        .get(12..16)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b));
    Ok((crate::ingest::model_hash_hex(crc), a.monitoring_baseline))
}

/// Analysis failures.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A window does not fit the baseline (the device runs another model?).
    #[error("{group} window of model {model} starting at {start_us} µs: {source}")]
    Shape {
        /// The window's group.
        group: String,
        /// The window's model hash (or "unknown").
        model: String,
        /// Its start.
        start_us: i64,
        /// The mismatch.
        #[source]
        source: ShapeError,
    },
}

/// Analyses every window against one `baseline`, whatever model the window is of (callers
/// that know several models use [`analyze_windows_by_model`]); realised accuracy comes from
/// labelled prediction frames of the same device, model and time span.
pub fn analyze_windows(
    store: &Store,
    baseline: &Baseline,
    thresholds: &Thresholds,
    windows: &[Window],
) -> Result<Vec<WindowReport>, WindowError> {
    windows
        .iter()
        .map(|w| analyze_one(store, baseline, thresholds, w))
        .collect()
}

fn analyze_one(
    store: &Store,
    baseline: &Baseline,
    thresholds: &Thresholds,
    w: &Window,
) -> Result<WindowReport, WindowError> {
    let dev = (w.group != "fleet").then_some(w.group.as_str());
    let realised = store.realised_model(
        dev,
        w.model.as_deref(),
        Some(w.start_us),
        Some(w.end_us + 1),
    )?;
    analyze(baseline, &w.summary, thresholds, Some(realised)).map_err(|source| WindowError::Shape {
        group: w.group.clone(),
        model: w.model_name().to_string(),
        start_us: w.start_us,
        source,
    })
}

/// Analyses every window against the baseline of its own model ([`Baselines::get`]); a
/// window whose model has no baseline gets `None` (not analysed: reported as such by the
/// caller, never compared with another model's baseline).
pub fn analyze_windows_by_model(
    store: &Store,
    baselines: &Baselines,
    thresholds: &Thresholds,
    windows: &[Window],
) -> Result<Vec<Option<WindowReport>>, WindowError> {
    windows
        .iter()
        .map(|w| match baselines.get(w.model.as_deref()) {
            Some((_, b)) => analyze_one(store, b, thresholds, w).map(Some),
            None => Ok(None),
        })
        .collect()
}
