//! Host-only execution (`std` feature): weights packed once per model for the host SIMD
//! kernels, and optional threads for large ops.
//!
//! The microcontroller path is untouched: [`crate::Runtime::invoke`] reads weights in
//! place and uses only the arena the host planned for the device. A host that can spare
//! memory prepares a [`PackedModel`] once (after [`crate::Model::parse`]) and runs
//! [`crate::Runtime::invoke_packed`]: CONV_2D and FULLY_CONNECTED then compute eight
//! output channels per vector (16 with AVX-512 VNNI) from weights laid out for that,
//! and on x86_64 the 3x3 DEPTHWISE_CONV_2D 32 channels per vector (see
//! `kernels/packed.rs`), bit-identical to `invoke`.

use std::cell::RefCell;
use std::vec::Vec;

use crate::kernels::{self, PackedOp};
use crate::model::Model;

/// A model's weights packed for the host kernels, owned (no borrow of the artifact), so
/// a server can keep it beside the artifact bytes and share it between threads.
///
/// Holds one entry per op in execution order: packed weights for each int8 CONV_2D
/// (ungrouped) and FULLY_CONNECTED whose weights are constants (x86_64: AVX-512 VNNI,
/// AVX-VNNI or AVX2 layouts; aarch64: `SDOT` or `SMLAL` layouts), for each int8 3x3
/// DEPTHWISE_CONV_2D with depth multiplier 1 and single-shift requantization (x86_64
/// only), nothing for the other ops (they run on the ordinary kernels). On a machine
/// without packed kernels (no AVX2, or neither x86_64 nor aarch64) or with
/// `EDGEFLOW_NN_PORTABLE=1`, nothing is packed and [`crate::Runtime::invoke_packed`]
/// equals [`crate::Runtime::invoke`].
#[derive(Debug)]
pub struct PackedModel {
    ops: Vec<Option<PackedOp>>,
    /// Addresses and lengths of the graph and weights sections it was prepared from.
    from: [usize; 4],
    threads: usize,
}

impl PackedModel {
    /// Packs `model`'s weighted ops (one pass over the weights; never fails: an op that
    /// cannot be packed runs unpacked). One thread per op; see [`PackedModel::with_threads`].
    pub fn new(model: &Model<'_>) -> Self {
        let mut ops = Vec::new();
        // The portable kernels were asked for (or this host has no SIMD family): the
        // packed kernels would not be them, so nothing is packed.
        let simd = kernels::host_simd();
        for d in model.ops() {
            if !simd {
                ops.push(None);
                continue;
            }
            let Some(out) = d.outputs.first() else {
                ops.push(None);
                continue;
            };
            let defs: Vec<_> = d.inputs.iter().copied().collect();
            let consts: Vec<Option<&[u8]>> = d.inputs.iter().map(|t| model.const_data(t)).collect();
            ops.push(kernels::pack(&d.op, &defs, &consts, out));
        }
        PackedModel {
            ops,
            from: fingerprint(model),
            threads: 1,
        }
    }

    /// The same, running large CONV_2D ops on up to `threads` threads (at least 1). The
    /// results do not depend on the thread count.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Threads a large op may use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How many ops run on packed weights.
    pub fn packed_ops(&self) -> usize {
        self.ops.iter().flatten().count()
    }

    /// Heap bytes of the packed weights and per-channel constants (outside the arena).
    pub fn bytes(&self) -> usize {
        self.ops.iter().flatten().map(PackedOp::bytes).sum()
    }

    /// Whether this was prepared from `model` (the same graph and weights in memory).
    pub(crate) fn prepared_from(&self, model: &Model<'_>) -> bool {
        self.from == fingerprint(model)
    }

    /// The packed weights of op `position`, if any.
    pub(crate) fn op(&self, position: usize) -> Option<&PackedOp> {
        self.ops.get(position).and_then(Option::as_ref)
    }
}

/// Where the model's graph and weights sections are (a model is immutable while it
/// lives, so equal sections at equal addresses are the same model).
fn fingerprint(model: &Model<'_>) -> [usize; 4] {
    let a = model.artifact();
    [
        a.graph.as_ptr().addr(),
        a.graph.len(),
        a.weights.as_ptr().addr(),
        a.weights.len(),
    ]
}

thread_local! {
    /// The packed kernels' work buffer of this thread (their row buffers, the packed
    /// CONV_2D's framed input copy, the aarch64 depthwise frame), kept between inferences.
    static WORK: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's row buffer (a fresh one if it is already in use).
pub(crate) fn with_work<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    WORK.with(|w| match w.try_borrow_mut() {
        Ok(mut w) => f(&mut w),
        Err(_) => f(&mut Vec::new()),
    })
}
