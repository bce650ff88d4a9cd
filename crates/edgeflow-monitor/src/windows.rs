//! Groups stored frames into analysis windows — per device or for the whole fleet, by a
//! count of summary frames or by receive-time width — and analyses each against the baseline.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::analysis::{analyze, ShapeError, Thresholds, WindowReport};
use crate::baseline::Baseline;
use crate::store::{Frame, Store, StoreError};
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
    /// Receive time of the first frame, µs since the epoch.
    pub start_us: i64,
    /// Receive time of the last frame.
    pub end_us: i64,
    /// Summary frames merged.
    pub summaries: u64,
    /// The merged counts (latency from prediction frames, resets from hello frames after a
    /// device's first, gaps as stored with each frame: the device's frames missing before it
    /// by sequence number — frames received but not stored, such as logs, are not missing).
    pub summary: WindowSummary,
}

#[derive(Default)]
struct Open {
    w: Option<Window>,
}

/// Reads frames from `store` (one device, or all) within `[from_us, to_us)` and cuts windows.
/// With `fleet`, all devices go into one group. Windows come out ordered by group, then time.
pub fn collect_windows(
    store: &Store,
    device: Option<&str>,
    fleet: bool,
    by: WindowBy,
    from_us: Option<i64>,
    to_us: Option<i64>,
) -> Result<Vec<Window>, StoreError> {
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let mut done: BTreeMap<String, Vec<Window>> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    store.for_each_frame(device, from_us, to_us, |dev, _seq, recv, gap, frame| {
        let group = if fleet {
            "fleet".to_string()
        } else {
            dev.to_string()
        };
        let seen_before = !seen.insert(dev.to_string());
        let o = open.entry(group.clone()).or_default();
        if let (WindowBy::Micros(width), Some(w)) = (by, &o.w) {
            if width > 0 && recv.div_euclid(width) != w.start_us.div_euclid(width) {
                if let Some(w) = o.w.take() {
                    done.entry(group.clone()).or_default().push(w);
                }
            }
        }
        let w = o.w.get_or_insert_with(|| Window {
            group: group.clone(),
            start_us: recv,
            end_us: recv,
            summaries: 0,
            summary: WindowSummary::default(),
        });
        w.end_us = recv;
        w.summary.health.gaps += gap;
        match frame {
            // A hello after earlier frames of the device is a reboot; its first is not.
            Frame::Hello { .. } => w.summary.health.resets += u32::from(seen_before),
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
                        if let Some(w) = o.w.take() {
                            done.entry(group).or_default().push(w);
                        }
                    }
                }
            }
        }
    })?;
    for (g, o) in open {
        if let Some(w) = o.w {
            if w.summaries > 0 {
                done.entry(g).or_default().push(w);
            }
        }
    }
    Ok(done.into_values().flatten().collect())
}

/// Analysis failures.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A window does not fit the baseline (the device runs another model?).
    #[error("{group} window starting at {start_us} µs: {source}")]
    Shape {
        /// The window's group.
        group: String,
        /// Its start.
        start_us: i64,
        /// The mismatch.
        #[source]
        source: ShapeError,
    },
}

/// Analyses every window; realised accuracy comes from labelled prediction frames of the
/// same device and time span.
pub fn analyze_windows(
    store: &Store,
    baseline: &Baseline,
    thresholds: &Thresholds,
    windows: &[Window],
) -> Result<Vec<WindowReport>, WindowError> {
    windows
        .iter()
        .map(|w| {
            let dev = (w.group != "fleet").then_some(w.group.as_str());
            let realised = store.realised(dev, Some(w.start_us), Some(w.end_us + 1))?;
            analyze(baseline, &w.summary, thresholds, Some(realised)).map_err(|source| {
                WindowError::Shape {
                    group: w.group.clone(),
                    start_us: w.start_us,
                    source,
                }
            })
        })
        .collect()
}
