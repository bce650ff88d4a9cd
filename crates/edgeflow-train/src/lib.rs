//! # edgeflow-train
//!
//! Training and evaluation of edgeflow models on the host, on features computed by the
//! device's own code.
//!
//! - [`config`]: the `train.toml` schema — data sources, split, feature pipeline, the model
//!   as data (layers edgeflow-nn runs in int8 after export), optimiser and schedule;
//! - [`data`]: sources read through edgeflow-data, stratified splits that keep the windows
//!   of one recording together, features computed by the edgeflow-dsp pipeline;
//! - [`model`]: the shape plan and the burn module;
//! - [`prepare`]: what a run computes before its first epoch (data, splits, features, the
//!   model plan), for training and evaluation;
//! - [`train`]: the deterministic training loop (burn autodiff + Adam/SGD), checkpoints,
//!   `--resume`, the JSON-lines log;
//! - [`export`]: the trained weights as a float32 edgeflow-compile IR graph (batch norm
//!   folded, ReLU fused), written as an ordinary artifact;
//! - [`output`]: the artifact's labels, monitoring baseline and provenance metadata;
//! - [`evaluate`] and [`metrics`]: metrics on the test split through edgeflow-nn, float and
//!   int8, with float-vs-int8 agreement.
//!
//! burn (CPU backend `flex`; `wgpu` behind the `wgpu` feature) is a dependency of this
//! crate only; the run-time crates and the firmware never see it.
#![warn(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod data;
mod error;
pub mod evaluate;
pub mod export;
pub mod metrics;
pub mod model;
pub mod output;
pub mod prepare;
pub mod train;

pub use config::TrainConfig;
pub use error::{DataProblem, HeadError, InputMismatch, RunError, TrainError};
pub use evaluate::{evaluate, Evaluation};
pub use train::{train, EpochLog, TrainOptions, Trained};
