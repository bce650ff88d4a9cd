//! MAXIMUM and MINIMUM (NumPy broadcasting, rank <= 6) and REDUCE_MAX, int8 and f32.
//!
//! TFLite's reference kernels compare the stored values: `reference_ops::
//! MaximumMinimumBroadcastSlow` with `el1 > el2 ? el1 : el2` (MINIMUM: `el1 < el2 ? el1 :
//! el2`), and `reference_ops::ReduceGeneric` for REDUCE_MAX, which starts every output at
//! the type's lowest value and folds the inputs in row-major order with
//! `in > current ? in : current`. int8 values are compared as stored, which is only the
//! real-valued maximum when inputs and output share one scale and zero point; the checks
//! require that (TFLite's converter writes it so). These kernels do the same comparisons
//! in the same order, so f32 results (NaN included) are the reference's too.

use edgeflow_format::graph::{DType, ReduceMaxParams, TensorDef, MAX_RANK};

use super::elementwise::{binary_f32, binary_i8, check_binary};
use super::generic::broadcast::Broadcast;
use super::generic::elem::f32_of as rd_f32;
use super::mean::{is_reduced, reduced_dims};
use super::{TensorIn, TensorOut};

/// int8 tensors must all carry the same scale and zero point.
fn same_quant(ts: &[&TensorDef<'_>]) -> Result<(), &'static str> {
    let mut first = None;
    for t in ts {
        if t.dtype != DType::I8 {
            continue;
        }
        let q = t
            .quant
            .as_ref()
            .ok_or(why!("minmax.rs", "int8 tensor without quantization"))?;
        let k = (q.scale.to_bits(), q.zero_point);
        if *first.get_or_insert(k) != k {
            return Err(why!(
                "minmax.rs",
                "int8 inputs and output must share one scale and zero point"
            ));
        }
    }
    Ok(())
}

/// Verifies every precondition of [`eval_max_min`] (MAXIMUM and MINIMUM alike).
pub(crate) fn check_max_min(
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    check_binary(inputs, output)?;
    let [a, b] = inputs else {
        return Err(why!("minmax.rs", "needs exactly two inputs"));
    };
    same_quant(&[a, b, output])
}

/// Runs MAXIMUM (`max`) or MINIMUM on a checked op.
pub(crate) fn eval_max_min(max: bool, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let [a, b] = inputs else {
        return;
    };
    let Some(plan) = Broadcast::new(&a.def.shape, &b.def.shape) else {
        return;
    };
    match output.def.dtype {
        DType::I8 => {
            let id = |x: i8| i32::from(x);
            if max {
                binary_i8(&plan, a.data, b.data, output.data, id, id, |x, y| {
                    (if x > y { x } else { y }) as i8
                });
            } else {
                binary_i8(&plan, a.data, b.data, output.data, id, id, |x, y| {
                    (if x < y { x } else { y }) as i8
                });
            }
        }
        DType::F32 => {
            if max {
                binary_f32(&plan, a.data, b.data, output.data, |x, y| {
                    if x > y {
                        x
                    } else {
                        y
                    }
                });
            } else {
                binary_f32(&plan, a.data, b.data, output.data, |x, y| {
                    if x < y {
                        x
                    } else {
                        y
                    }
                });
            }
        }
        DType::I32 => {}
    }
}

/// Verifies every precondition of [`eval_reduce_max`].
pub(crate) fn check_reduce_max(
    p: &ReduceMaxParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let input = match inputs {
        [input] => input,
        [input, axes] if axes.dtype == DType::I32 => input,
        _ => {
            return Err(why!(
                "minmax.rs",
                "needs one input (and optionally the folded int32 axes)"
            ))
        }
    };
    if input.dtype != output.dtype {
        return Err(why!("minmax.rs", "input and output types differ"));
    }
    if !matches!(input.dtype, DType::I8 | DType::F32) {
        return Err(why!("minmax.rs", "only int8 and f32 are supported"));
    }
    let (dims, n) = reduced_dims(input.shape.dims(), p.axes_mask, p.keep_dims)?;
    let out = output.shape.dims();
    if dims.get(..n) != Some(out) && !(n == 0 && out == [1]) {
        return Err(why!(
            "minmax.rs",
            "output shape does not match the reduction"
        ));
    }
    same_quant(&[input, output])
}

/// For each input dimension, the stride of the output element it moves (0 for reduced
/// dimensions); the output is row-major over the kept dimensions.
fn output_steps(dims: &[u32], axes_mask: u8) -> [usize; MAX_RANK] {
    let mut steps = [0usize; MAX_RANK];
    let mut acc = 1usize;
    for (i, &d) in dims.iter().enumerate().rev() {
        if i < MAX_RANK && !is_reduced(axes_mask, i) {
            steps[i] = acc;
            acc = acc.wrapping_mul(d as usize);
        }
    }
    steps
}

/// Calls `f(input_index, output_index)` for every input element in row-major order.
fn walk(dims: &[u32], steps: &[usize; MAX_RANK], mut f: impl FnMut(usize, usize)) {
    let total: usize = dims.iter().map(|&d| d as usize).product();
    let rank = dims.len().min(MAX_RANK);
    let mut idx = [0usize; MAX_RANK];
    let mut o = 0usize;
    for i in 0..total {
        f(i, o);
        for d in (0..rank).rev() {
            idx[d] += 1;
            o = o.wrapping_add(steps[d]);
            if idx[d] < dims[d] as usize {
                break;
            }
            o = o.wrapping_sub(steps[d].wrapping_mul(dims[d] as usize));
            idx[d] = 0;
        }
    }
}

/// Runs REDUCE_MAX on a checked op.
pub(crate) fn eval_reduce_max(
    p: &ReduceMaxParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let Some(x) = inputs.first() else {
        return;
    };
    let dims = x.def.shape.dims();
    let steps = output_steps(dims, p.axes_mask);
    let out = output.data;
    match x.def.dtype {
        DType::I8 => {
            out.fill(i8::MIN as u8);
            walk(dims, &steps, |i, o| {
                if let (Some(&v), Some(cur)) = (x.data.get(i), out.get_mut(o)) {
                    if (v as i8) > (*cur as i8) {
                        *cur = v;
                    }
                }
            });
        }
        DType::F32 => {
            for c in out.chunks_exact_mut(4) {
                c.copy_from_slice(&f32::MIN.to_le_bytes());
            }
            walk(dims, &steps, |i, o| {
                let src = x
                    .data
                    .get(i.wrapping_mul(4)..i.wrapping_mul(4).wrapping_add(4));
                let dst = out.get_mut(o.wrapping_mul(4)..o.wrapping_mul(4).wrapping_add(4));
                if let (Some(s), Some(d)) = (src, dst) {
                    let (v, cur) = (rd_f32(s), rd_f32(d));
                    if v > cur {
                        d.copy_from_slice(s);
                    }
                }
            });
        }
        DType::I32 => {}
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::kernels::testutil::simple::*;

    fn run_bin(
        max: bool,
        a: (&TensorDef<'_>, &[u8]),
        b: (&TensorDef<'_>, &[u8]),
        o: &TensorDef<'_>,
    ) -> Vec<u8> {
        check_max_min(&[*a.0, *b.0], o).unwrap();
        let n = o.shape.num_elements().unwrap() * o.dtype.size();
        let mut out = std::vec![0u8; n];
        eval_max_min(
            max,
            &[
                TensorIn {
                    def: a.0,
                    data: a.1,
                },
                TensorIn {
                    def: b.0,
                    data: b.1,
                },
            ],
            TensorOut {
                def: o,
                data: &mut out,
            },
        );
        out
    }

    #[test]
    fn max_min_broadcast_matches_element_by_element() {
        let mut r = Rng(11);
        let (a, b, o) = (
            i8t(&[2, 3, 4], 0.1, 3),
            i8t(&[3, 1], 0.1, 3),
            i8t(&[2, 3, 4], 0.1, 3),
        );
        let (xa, xb) = (r.bytes(24), r.bytes(3));
        for max in [true, false] {
            let got = run_bin(max, (&a, &xa), (&b, &xb), &o);
            for i in 0..24 {
                let (x, y) = (xa[i] as i8, xb[(i / 4) % 3] as i8);
                let want = if max { x.max(y) } else { x.min(y) };
                assert_eq!(got[i] as i8, want, "at {i}");
            }
        }
        let (fa, fb, fo) = (f32t(&[4]), f32t(&[]), f32t(&[4]));
        let xa = f32_bytes(&[-1.0, 2.0, f32::NAN, 0.5]);
        let xb = f32_bytes(&[0.5]);
        let got = run_bin(true, (&fa, &xa), (&fb, &xb), &fo);
        // `el1 > el2 ? el1 : el2`: a NaN first operand yields the second.
        assert_eq!(got, f32_bytes(&[0.5, 2.0, 0.5, 0.5]));
    }

    #[test]
    fn reduce_max_matches_a_direct_reduction() {
        let mut r = Rng(5);
        let x = i8t(&[2, 3, 4], 0.2, -1);
        let data = r.bytes(24);
        for (mask, keep, out_dims) in [
            (0b010u8, false, std::vec![2u32, 4]),
            (0b101, true, std::vec![1, 3, 1]),
            (0b111, false, std::vec![]),
        ] {
            let p = ReduceMaxParams {
                axes_mask: mask,
                keep_dims: keep,
            };
            let o = i8t(&out_dims, 0.2, -1);
            check_reduce_max(&p, &[x], &o).unwrap();
            let n = o.shape.num_elements().unwrap();
            let mut out = std::vec![0u8; n];
            eval_reduce_max(
                &p,
                &[TensorIn {
                    def: &x,
                    data: &data,
                }],
                TensorOut {
                    def: &o,
                    data: &mut out,
                },
            );
            let mut want = std::vec![i8::MIN; n];
            for i in 0..24 {
                let idx = [i / 12, (i / 4) % 3, i % 4];
                let mut k = 0;
                for d in 0..3 {
                    if mask >> d & 1 == 0 {
                        k = k * [2, 3, 4][d] + idx[d];
                    }
                }
                want[k] = want[k].max(data[i] as i8);
            }
            assert_eq!(
                out.iter().map(|&b| b as i8).collect::<Vec<_>>(),
                want,
                "mask {mask:b}"
            );
        }
    }

    #[test]
    fn checks_reject() {
        let (a, o) = (i8t(&[3], 0.1, 0), i8t(&[3], 0.2, 0));
        assert!(check_max_min(&[a, a], &o).is_err(), "output scale differs");
        assert!(
            check_max_min(&[a, i8t(&[2], 0.1, 0)], &a).is_err(),
            "no broadcast"
        );
        let p = ReduceMaxParams {
            axes_mask: 0b1,
            keep_dims: false,
        };
        assert!(
            check_reduce_max(&p, &[a], &i8t(&[], 0.2, 0)).is_err(),
            "scale differs"
        );
        assert!(
            check_reduce_max(&p, &[a], &i8t(&[3], 0.1, 0)).is_err(),
            "shape"
        );
        let p = ReduceMaxParams {
            axes_mask: 0b10,
            keep_dims: false,
        };
        assert!(
            check_reduce_max(&p, &[a], &i8t(&[], 0.1, 0)).is_err(),
            "axis past rank"
        );
    }

    /// Random shapes and masks: whatever passes `check` runs without panicking.
    #[test]
    fn checked_random_reductions_never_panic() {
        let mut r = Rng(3);
        for _ in 0..500 {
            let rank = r.range(0, 6) as usize;
            let dims: Vec<u32> = (0..rank).map(|_| r.range(1, 4) as u32).collect();
            let mask = r.range(0, 255) as u8;
            let keep = r.range(0, 1) == 1;
            let x = i8t(&dims, 0.1, 0);
            let out_dims: Vec<u32> = dims
                .iter()
                .enumerate()
                .filter_map(|(i, &d)| match (mask >> i & 1 != 0, keep) {
                    (false, _) => Some(d),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect();
            let o = i8t(&out_dims, 0.1, 0);
            let p = ReduceMaxParams {
                axes_mask: mask,
                keep_dims: keep,
            };
            if check_reduce_max(&p, &[x], &o).is_err() {
                continue;
            }
            let data = r.bytes(x.shape.num_elements().unwrap());
            let mut out = std::vec![0u8; o.shape.num_elements().unwrap()];
            eval_reduce_max(
                &p,
                &[TensorIn {
                    def: &x,
                    data: &data,
                }],
                TensorOut {
                    def: &o,
                    data: &mut out,
                },
            );
            // Every output is one of the inputs.
            for b in &out {
                assert!(data.contains(b));
            }
        }
    }
}
