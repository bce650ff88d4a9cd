//! Model monitoring on the host.
//!
//! A deployed device sends compact summaries — per monitored feature, the count of values in
//! each bin of the artifact's monitoring baseline; class counts; a score histogram;
//! data-quality and health counters. This crate turns them into answers: has a feature's
//! distribution drifted from training ([`stats`], [`analysis`]), have predictions drifted,
//! is the model probably still accurate (confidence-based estimation, and realised accuracy
//! once labels arrive), is the data clean and the device healthy. [`store`] keeps frames in
//! SQLite.
//!
//! Every statistic works on binned data; how each relates to the sample-based statistic of
//! scipy / Evidently is stated on the function and checked by golden tests generated with
//! `scripts/make_goldens.py`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod baseline;
pub mod export;
pub mod ingest;
pub mod sim;
pub mod stats;
pub mod store;
pub mod window;
pub mod windows;

pub use analysis::{analyze, Alert, Method, Thresholds, WindowReport};
pub use baseline::{Baseline, FeatureKind};
pub use window::{DataQuality, Health, WindowSummary};
