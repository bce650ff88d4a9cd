//! RESIZE_NEAREST_NEIGHBOR on NHWC tensors, any dtype (values are copied, so int8 output
//! carries the input's quantization, as in TFLite).
//!
//! The source row of output row `y` (and likewise the column) is TFLite's
//! `GetNearestNeighbor` (`reference_ops::ResizeNearestNeighbor`): with
//! `scale = (in - 1) / (out - 1)` when `align_corners` (and `out > 1`), else `in / out`,
//! and `offset = 0.5` with `half_pixel_centers`, the index is `round((y + offset) * scale)`
//! with `align_corners`, else `floor(…)`, capped at `in - 1` (and at 0 from below with
//! `half_pixel_centers`), all in single precision as the reference computes it.

use edgeflow_format::graph::{DType, ResizeNearestParams, TensorDef};

use super::{TensorIn, TensorOut};

/// Verifies every precondition of [`eval`].
pub(crate) fn check(
    p: &ResizeNearestParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    // TFLite passes the output size as a second (constant int32) input; folded.
    let x = match inputs {
        [x] => x,
        [x, size] if size.dtype == DType::I32 => x,
        _ => {
            return Err(why!(
                "resize.rs",
                "needs the input and optionally the (folded) int32 size"
            ))
        }
    };
    if x.dtype != output.dtype {
        return Err(why!("resize.rs", "input and output types differ"));
    }
    if x.shape.rank != 4 || output.shape.rank != 4 {
        return Err(why!("resize.rs", "input and output must be 4-D (NHWC)"));
    }
    if x.shape.dim(0) != output.shape.dim(0) || x.shape.dim(3) != output.shape.dim(3) {
        return Err(why!(
            "resize.rs",
            "batch and channels of input and output differ"
        ));
    }
    if p.align_corners && p.half_pixel_centers {
        return Err(why!(
            "resize.rs",
            "align_corners and half_pixel_centers cannot both be set"
        ));
    }
    if x.dtype == DType::I8 {
        let (iq, oq) = (
            x.quant
                .as_ref()
                .ok_or(why!("resize.rs", "int8 input without quantization"))?,
            output
                .quant
                .as_ref()
                .ok_or(why!("resize.rs", "int8 output without quantization"))?,
        );
        if iq.scale.to_bits() != oq.scale.to_bits() || iq.zero_point != oq.zero_point {
            return Err(why!(
                "resize.rs",
                "int8 input and output quantizations differ (values are copied)"
            ));
        }
    }
    // Indices stay below 2^24, where f32 counts exactly, as the reference assumes.
    if [
        x.shape.dim(1),
        x.shape.dim(2),
        output.shape.dim(1),
        output.shape.dim(2),
    ]
    .iter()
    .any(|&d| d >= 1 << 24)
    {
        return Err(why!("resize.rs", "a spatial dimension is 2^24 or more"));
    }
    Ok(())
}

/// TFLite's `GetNearestNeighbor`.
fn nearest(p: &ResizeNearestParams, value: usize, input_size: usize, output_size: usize) -> usize {
    let scale = if p.align_corners && output_size > 1 {
        (input_size - 1) as f32 / (output_size - 1) as f32
    } else {
        input_size as f32 / output_size as f32
    };
    let offset = if p.half_pixel_centers { 0.5f32 } else { 0.0 };
    let v = (value as f32 + offset) * scale;
    let v = if p.align_corners {
        libm::roundf(v)
    } else {
        libm::floorf(v)
    } as i64;
    let v = v.min(input_size as i64 - 1);
    // Without half-pixel centres the value is never negative.
    v.max(0) as usize
}

/// Runs RESIZE_NEAREST_NEIGHBOR on a checked op.
pub(crate) fn eval(
    p: &ResizeNearestParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let Some(x) = inputs.first() else {
        return;
    };
    let (batches, ih, iw, c) = (
        x.def.shape.dim(0),
        x.def.shape.dim(1),
        x.def.shape.dim(2),
        x.def.shape.dim(3),
    );
    let (oh, ow) = (output.def.shape.dim(1), output.def.shape.dim(2));
    let row = c * x.def.dtype.size();
    let mut o = 0usize;
    for b in 0..batches {
        for y in 0..oh {
            let sy = nearest(p, y, ih, oh);
            for xx in 0..ow {
                let sx = nearest(p, xx, iw, ow);
                let src = ((b * ih + sy) * iw + sx) * row;
                let (Some(s), Some(d)) =
                    (x.data.get(src..src + row), output.data.get_mut(o..o + row))
                else {
                    return;
                };
                d.copy_from_slice(s);
                o += row;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn nearest_indices_hand_checked() {
        let p = |a, h| ResizeNearestParams {
            align_corners: a,
            half_pixel_centers: h,
        };
        let idx = |q: ResizeNearestParams, i, o| {
            (0..o)
                .map(|v| nearest(&q, v, i, o))
                .collect::<std::vec::Vec<_>>()
        };
        // 2 -> 5, plain: floor(v * 0.4).
        assert_eq!(idx(p(false, false), 2, 5), [0, 0, 0, 1, 1]);
        // align corners: round(v * 0.25).
        assert_eq!(idx(p(true, false), 2, 5), [0, 0, 1, 1, 1]);
        // half pixel: floor((v + 0.5) * 0.4).
        assert_eq!(idx(p(false, true), 2, 5), [0, 0, 1, 1, 1]);
        // Downscale 5 -> 2: floor(v * 2.5).
        assert_eq!(idx(p(false, false), 5, 2), [0, 2]);
        assert_eq!(idx(p(true, false), 5, 1), [0]);
    }

    /// Random shapes, dtypes and modes: whatever passes `check` runs without panicking
    /// and fills the output from input rows only.
    #[test]
    fn checked_random_cases_never_panic() {
        use crate::kernels::testutil::simple::{tensor, Rng};
        use edgeflow_format::graph::DType;
        let mut r = Rng(99);
        for _ in 0..300 {
            let d = |r: &mut Rng| r.range(1, 9) as u32;
            let (n, c) = (r.range(1, 2) as u32, r.range(1, 3) as u32);
            let i = [n, d(&mut r), d(&mut r), c];
            let o = [n, d(&mut r), d(&mut r), c];
            let dt = if r.range(0, 1) == 0 {
                DType::I8
            } else {
                DType::F32
            };
            let q = (dt == DType::I8).then_some((0.5, 1));
            let (x, y) = (tensor(dt, &i, q), tensor(dt, &o, q));
            let p = ResizeNearestParams {
                align_corners: r.range(0, 1) == 1,
                half_pixel_centers: r.range(0, 1) == 1,
            };
            if check(&p, &[x], &y).is_err() {
                assert!(p.align_corners && p.half_pixel_centers);
                continue;
            }
            let data = r.bytes(x.shape.num_elements().unwrap() * dt.size());
            let mut out = std::vec![0u8; y.shape.num_elements().unwrap() * dt.size()];
            eval(
                &p,
                &[TensorIn {
                    def: &x,
                    data: &data,
                }],
                TensorOut {
                    def: &y,
                    data: &mut out,
                },
            );
            let row = (c as usize) * dt.size();
            for chunk in out.chunks(row) {
                assert!(data.chunks(row).any(|s| s == chunk));
            }
        }
    }
}
