//! What CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED share: the checks of their bias,
//! weights, requantization and clamp, and one check / scratch / eval skeleton.

use edgeflow_format::graph::{Clamp, DType, Requant, TensorDef};

use super::arch::Isa;
use super::generic::elem::{check_clamp_f, check_clamp_q, zero_point};
use super::generic::requant::check_requant;
use super::{TensorIn, TensorOut};

/// The weights of an int8 convolution must be symmetric (zero point 0).
pub(crate) fn check_symmetric_weights(w: &TensorDef<'_>) -> Result<(), &'static str> {
    if zero_point(w)? != 0 {
        return Err(why!("weighted.rs", "int8 weights must have zero point 0"));
    }
    Ok(())
}

/// The checks shared by CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED once their shapes
/// and types are known (the type is the output's): an optional bias of `channels` elements of the right type, and for int8
/// symmetric weights, a requantization matching the tensors and an int8 clamp; for f32
/// no requantization and an ordered float clamp.
pub(crate) fn check_weighted_op(
    input: &TensorDef<'_>,
    weights: &TensorDef<'_>,
    bias: Option<&TensorDef<'_>>,
    output: &TensorDef<'_>,
    requant: Option<&Requant<'_>>,
    clamp: &Clamp,
    channels: usize,
) -> Result<(), &'static str> {
    let dtype = output.dtype;
    check_bias(bias, dtype, channels)?;
    if dtype == DType::I8 {
        check_symmetric_weights(weights)?;
        check_requant(requant, channels, input, output)?;
        check_clamp_q(clamp)
    } else {
        if requant.is_some() {
            return Err(why!(
                "weighted.rs",
                "f32 op with int8 requantization parameters"
            ));
        }
        check_clamp_f(clamp)
    }
}

/// Checks an optional bias input: `O` elements of `I32` (int8 ops) or `F32` (f32 ops).
pub(crate) fn check_bias(
    bias: Option<&TensorDef<'_>>,
    dtype: DType,
    channels: usize,
) -> Result<(), &'static str> {
    if let Some(b) = bias {
        let want = if dtype == DType::I8 {
            DType::I32
        } else {
            DType::F32
        };
        if b.dtype != want {
            return Err(why!(
                "weighted.rs",
                "bias must be I32 for int8 ops and F32 for f32 ops"
            ));
        }
        if b.shape.num_elements() != Some(channels) {
            return Err(why!(
                "weighted.rs",
                "bias must have one element per output channel"
            ));
        }
    }
    Ok(())
}

/// What differs between the weighted ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED);
/// [`check`], [`scratch_bytes`] and [`eval`] are the one skeleton they share.
///
/// Every weighted op takes `[input, weights]` or `[input, weights, bias]`, all int8
/// (bias int32, per-channel requantization) or all f32.
pub(crate) trait Weighted {
    /// The validated geometry.
    type Geom;
    /// The error for a wrong number of inputs.
    const ARITY: &'static str;
    /// Validates the shapes (and the op's own parameters) and derives the geometry.
    fn geom(
        &self,
        x: &TensorDef<'_>,
        w: &TensorDef<'_>,
        out: &TensorDef<'_>,
    ) -> Result<Self::Geom, &'static str>;
    /// Output channels (bias elements, requantization entries).
    fn channels(g: &Self::Geom) -> usize;
    /// Scratch bytes of the int8 kernel (the f32 kernels need none).
    fn int8_scratch(g: &Self::Geom) -> usize;
    /// The requantization record (int8).
    fn requant(&self) -> Option<&Requant<'_>>;
    /// The fused activation.
    fn clamp(&self) -> &Clamp;
    /// The int8 kernel on the inner-kernel family `isa` ([`Isa::ArmDsp`]: the packed
    /// 16-bit kernels of [`super::arch::arm_dsp`], on the host only in tests).
    fn eval_i8(
        g: &Self::Geom,
        rq: &Requant<'_>,
        clamp: &Clamp,
        xwb: (&[u8], &[u8], Option<&[u8]>),
        out: &mut [u8],
        scratch: &mut [u8],
        isa: Isa,
    );
    /// The f32 kernel.
    fn eval_f32(
        g: &Self::Geom,
        clamp: &Clamp,
        x: &[u8],
        w: &[u8],
        bias: Option<&[u8]>,
        out: &mut [u8],
    );
}

/// Scratch bytes a weighted op needs (0 for f32 or an op whose shapes do not check).
pub(crate) fn scratch_bytes<K: Weighted>(
    op: &K,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> usize {
    let (Some(x), Some(w)) = (inputs.first(), inputs.get(1)) else {
        return 0;
    };
    if output.dtype != DType::I8 {
        return 0;
    }
    op.geom(x, w, output).map_or(0, |g| K::int8_scratch(&g))
}

/// Verifies every precondition of [`eval`]: the arity, the geometry, the types, the
/// bias, weights, requantization and clamp ([`check_weighted_op`]) and the scratch size.
pub(crate) fn check<K: Weighted>(
    op: &K,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    scratch_len: usize,
) -> Result<(), &'static str> {
    let [x, w, rest @ ..] = inputs else {
        return Err(K::ARITY);
    };
    if rest.len() > 1 {
        return Err(K::ARITY);
    }
    let g = op.geom(x, w, output)?;
    let dt = output.dtype;
    if x.dtype != dt || w.dtype != dt || !matches!(dt, DType::I8 | DType::F32) {
        return Err(why!(
            "weighted.rs",
            "supported types: all int8 (bias int32) or all f32"
        ));
    }
    check_weighted_op(
        x,
        w,
        rest.first(),
        output,
        op.requant(),
        op.clamp(),
        K::channels(&g),
    )?;
    if scratch_len < scratch_bytes(op, inputs, output) {
        return Err(super::SCRATCH_TOO_SMALL);
    }
    Ok(())
}

/// Executes a weighted op that passed [`check`], with the int8 inner kernels of `isa`
/// ([`Isa::detect`] outside tests). Inlined into the op dispatch, as
/// each op's `eval` was before the skeleton was shared (instruction counts and the
/// panic audit depend on it).
#[inline(always)]
pub(crate) fn eval<K: Weighted>(
    op: &K,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
    isa: Isa,
) {
    let (Some(x), Some(w)) = (inputs.first(), inputs.get(1)) else {
        return;
    };
    let bias = inputs.get(2).map(|b| b.data);
    // Borrowed from the `Result`, not moved out of it: moved, the geometry was copied
    // into a second stack slot, both in the frame the kernel runs under.
    let geom = op.geom(x.def, w.def, output.def);
    let Ok(g) = &geom else {
        return;
    };
    match output.def.dtype {
        DType::I8 => {
            if let Some(rq) = op.requant() {
                K::eval_i8(
                    g,
                    rq,
                    op.clamp(),
                    (x.data, w.data, bias),
                    output.data,
                    scratch,
                    isa,
                );
            }
        }
        // Without `edgeflow_f32` (EDGEFLOW_NN_F32=0), `kernels::check` rejected f32.
        #[cfg(edgeflow_f32)]
        DType::F32 => K::eval_f32(g, op.clamp(), x.data, w.data, bias, output.data),
        #[cfg(not(edgeflow_f32))]
        DType::F32 => {}
        DType::I32 => {}
    }
}
