//! # edgeflow-data
//!
//! A `tf.data`-style input pipeline in Rust: composable, lazily evaluated, typed
//! datasets that stream with memory bounded by their buffer sizes.
//!
//! ```
//! use edgeflow_data::{Dataset, Parallel};
//!
//! let batches = Dataset::range(0, 10)
//!     .shuffle(4, 42)
//!     .par_map_with_rng(Parallel::threads(2), 7, |x, rng| x as f32 + rng.uniform(-0.1, 0.1))
//!     .batch(4, true)
//!     .prefetch(2);
//! let all: Vec<Vec<f32>> = batches.collect_vec()?;
//! assert_eq!(all.len(), 2);
//! println!("{}", batches.stats().table());
//! # Ok::<(), edgeflow_data::Error>(())
//! ```
//!
//! - **Sources**: in-memory ([`Dataset::from_vec`], [`Dataset::range`],
//!   [`Dataset::from_fn`]) and files (see [`sources`]).
//! - **Transformations**: methods of [`Dataset`]: `map`, `par_map`, `filter`,
//!   `filter_map`, `flat_map`, `interleave`, `shuffle`, `batch`, `padded_batch`,
//!   `bucket_by_sequence_length`, `unbatch`, `window`, `repeat`, `take`, `skip`,
//!   `take_while`, `shard`, `enumerate`, `zip`, `concatenate`, `sample_from`,
//!   `rejection_resample`, `cache`, `cache_to_file`, `prefetch`, `ignore_errors`. Where
//!   error items count in each is stated in [`ops`] (as in `tf.data`).
//! - **Epochs**: [`Dataset::iter`] iterates the next epoch (0, 1, 2, …), so a second
//!   pass reshuffles, as in `tf.data`; [`Dataset::iter_epoch`] names the epoch.
//! - **Determinism**: every random decision is keyed by `(seed, epoch, element index)`
//!   and, inside an interleave/concatenate/sample_from, by the stream ([`OpenCx::stream`],
//!   [`rng`]); an iteration resumes from a [`Checkpoint`] `(epoch, position)`.
//! - **Observability**: [`Dataset::stats`] gives per-operator counters as a table.
//! - **Bad data**: errors are items ([`Error`] names the file and record); sources take
//!   a [`sources::BadRecords`] policy and [`Dataset::ignore_errors`] skips and counts;
//!   a batch or window spoiled by an error counts its lost elements as `dropped`.
//!   Nothing in this crate panics on any input.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analyze;
pub mod batching;
pub mod cache;
pub mod combine;
pub mod dataset;
pub mod error;
pub mod ops;
pub mod parallel;
pub mod rng;
pub mod schema;
pub mod sources;
pub mod stats;
pub mod table;
pub mod value;

pub use batching::{PadTo, PaddedBatch};
pub use dataset::{BoxStream, Checkpoint, Dataset, Element, Iter, OpenCx, Stream};
pub use error::{BoxError, Error, Result};
pub use parallel::{Parallel, Threads};
pub use rng::Rng;
pub use sources::{BadRecordLimit, BadRecords, ReadTally};
pub use stats::StatsReport;
pub use value::{Column, ColumnType, Row, Schema, Value};
