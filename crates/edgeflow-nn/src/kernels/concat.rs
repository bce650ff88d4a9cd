//! CONCATENATION, int8 / f32 / int32, matching TFLM's reference `Concatenation`: a
//! sequence of block copies. int8 inputs must share the output's scale and zero point
//! (TFLM's requirement; no rescaling) and carry no fused activation; f32 applies the
//! fused clamp (TFLM itself only accepts no activation, for which the clamp is a no-op).

use edgeflow_format::graph::{ConcatParams, DType, TensorDef, MAX_OP_INPUTS};

use super::generic::elem::{check_clamp_f, clamp_f32};
use super::{TensorIn, TensorOut};

/// Verifies every precondition of [`eval`].
pub(crate) fn check(
    p: &ConcatParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    if inputs.is_empty() || inputs.len() > MAX_OP_INPUTS {
        return Err(why!("concat.rs", "CONCATENATION takes 1 to 8 inputs"));
    }
    let rank = output.shape.rank as usize;
    let axis = p.axis as usize;
    if axis >= rank {
        return Err(why!("concat.rs", "axis out of range"));
    }
    let dt = output.dtype;
    let mut sum: u64 = 0;
    for t in inputs {
        if t.dtype != dt {
            return Err(why!("concat.rs", "input and output types differ"));
        }
        if t.shape.rank != output.shape.rank {
            return Err(why!("concat.rs", "input and output ranks differ"));
        }
        for d in 0..rank {
            if d != axis && t.shape.dim(d) != output.shape.dim(d) {
                return Err(why!(
                    "concat.rs",
                    "inputs differ from the output outside the axis"
                ));
            }
        }
        sum += t.shape.dim(axis) as u64;
        if dt == DType::I8 {
            let (Some(qi), Some(qo)) = (&t.quant, &output.quant) else {
                return Err(why!("concat.rs", "int8 tensor without quantization"));
            };
            if qi.scale != qo.scale || qi.zero_point != qo.zero_point {
                return Err(why!(
                    "concat.rs",
                    "int8 inputs must have the output's scale and zero point"
                ));
            }
        }
    }
    if sum != output.shape.dim(axis) as u64 {
        return Err(why!(
            "concat.rs",
            "input extents along the axis do not add up to the output's"
        ));
    }
    match dt {
        DType::I8 => {
            if p.clamp.min_q > -128 || p.clamp.max_q < 127 {
                return Err(why!("concat.rs", "fused activation on int8 CONCATENATION"));
            }
            Ok(())
        }
        DType::F32 => check_clamp_f(&p.clamp),
        DType::I32 => Ok(()),
    }
}

/// Executes a CONCATENATION that passed [`check`].
pub(crate) fn eval(p: &ConcatParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let od = output.def;
    let rank = (od.shape.rank as usize).min(od.shape.dims().len());
    let axis = p.axis as usize;
    if axis >= rank {
        return;
    }
    let elem = od.dtype.size();
    let outer: usize = od.shape.dims()[..axis]
        .iter()
        .map(|&d| d as usize)
        .product();
    let inner: usize = od.shape.dims()[axis + 1..]
        .iter()
        .map(|&d| d as usize)
        .product::<usize>()
        * elem;
    let mut pos = 0usize;
    for k in 0..outer {
        for t in inputs {
            let n = t.def.shape.dim(axis) * inner;
            let (Some(src), Some(dst)) = (
                t.data.get(k * n..(k + 1) * n),
                output.data.get_mut(pos..pos + n),
            ) else {
                return;
            };
            dst.copy_from_slice(src);
            pos += n;
        }
    }
    let c = p.clamp;
    // No activation (the full finite range or wider): copy exactly, as TFLite does.
    if od.dtype == DType::F32 && !(c.min_f <= f32::MIN && c.max_f >= f32::MAX) {
        for v in output.data.chunks_exact_mut(4) {
            let x = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            v.copy_from_slice(&clamp_f32(x, c.min_f, c.max_f).to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use super::*;
    use crate::kernels::testutil::*;
    use edgeflow_format::graph::Clamp;

    /// Element-wise reference: output element at index `i` along the axis comes from the
    /// input whose range covers `i`.
    fn reference(
        p: &ConcatParams,
        defs: &[TensorDef<'_>],
        data: &[Vec<u8>],
        od: &TensorDef<'_>,
    ) -> Vec<u8> {
        let elem = od.dtype.size();
        let rank = od.shape.rank as usize;
        let axis = p.axis as usize;
        let n = od.shape.num_elements().unwrap();
        let mut out = Vec::new();
        for flat in 0..n {
            let mut idx = vec![0; rank];
            let mut rem = flat;
            for d in (0..rank).rev() {
                idx[d] = rem % od.shape.dim(d);
                rem /= od.shape.dim(d);
            }
            let mut a = idx[axis];
            let mut which = 0;
            while a >= defs[which].shape.dim(axis) {
                a -= defs[which].shape.dim(axis);
                which += 1;
            }
            idx[axis] = a;
            let mut off = 0;
            for d in 0..rank {
                off = off * defs[which].shape.dim(d) + idx[d];
            }
            let mut v = data[which][off * elem..off * elem + elem].to_vec();
            if od.dtype == DType::F32 {
                let x = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                v = clamp_f32(x, p.clamp.min_f, p.clamp.max_f)
                    .to_le_bytes()
                    .to_vec();
            }
            out.extend_from_slice(&v);
        }
        out
    }

    #[test]
    fn matches_reference_on_random_cases() {
        let mut r = Rng::new(51);
        for case in 0..800 {
            let rank = r.usize(1, 5);
            let axis = r.usize(0, rank - 1);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let dims: Vec<u32> = (0..rank).map(|_| r.usize(1, 4) as u32).collect();
            let k = r.usize(1, 8);
            let mut defs = Vec::new();
            let mut data = Vec::new();
            let mut total = 0;
            for _ in 0..k {
                let mut d = dims.clone();
                d[axis] = r.usize(1, 4) as u32;
                total += d[axis];
                let t = tensor(dtype, &d, 0.5, 3);
                data.push(if dtype == DType::F32 {
                    r.f32_bytes(t.shape.num_elements().unwrap())
                } else {
                    r.bytes(t.shape.num_elements().unwrap() * dtype.size())
                });
                defs.push(t);
            }
            let mut od_dims = dims.clone();
            od_dims[axis] = total;
            let od = tensor(dtype, &od_dims, 0.5, 3);
            let clamp = if dtype == DType::F32 {
                random_clamp_f(&mut r)
            } else {
                Clamp::NONE
            };
            let p = ConcatParams {
                axis: axis as u8,
                clamp,
            };
            check(&p, &defs, &od).expect("check");
            let got = run(&defs, &data, &od, |i, o| eval(&p, i, o));
            assert_eq!(got, reference(&p, &defs, &data, &od), "case {case}");
        }
    }

    #[test]
    fn check_rejects_bad_ops() {
        let a = tensor(DType::I8, &[1, 2, 3], 0.5, 1);
        let b = tensor(DType::I8, &[1, 4, 3], 0.5, 1);
        let od = tensor(DType::I8, &[1, 6, 3], 0.5, 1);
        let p = ConcatParams {
            axis: 1,
            clamp: Clamp::NONE,
        };
        assert!(check(&p, &[a, b], &od).is_ok());
        let b2 = tensor(DType::I8, &[1, 4, 3], 0.25, 1);
        assert!(check(&p, &[a, b2], &od).is_err());
        let b3 = tensor(DType::I8, &[1, 4, 3], 0.5, 0);
        assert!(check(&p, &[a, b3], &od).is_err());
        assert!(check(&ConcatParams { axis: 2, ..p }, &[a, b], &od).is_err());
        assert!(check(&ConcatParams { axis: 3, ..p }, &[a, b], &od).is_err());
        let relu = ConcatParams {
            axis: 1,
            clamp: Clamp {
                min_q: 1,
                ..Clamp::NONE
            },
        };
        assert!(check(&relu, &[a, b], &od).is_err());
        assert!(check(&p, &[a, a], &od).is_err());
        assert!(check(&p, &[], &od).is_err());
        let f = tensor(DType::F32, &[1, 2, 3], 0.5, 1);
        assert!(check(&p, &[f, b], &od).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(54);
        let mut evaluated = 0;
        for _ in 0..3000 {
            let rank = r.usize(1, 4);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let dims: Vec<u32> = (0..rank).map(|_| r.usize(1, 3) as u32).collect();
            let mut defs: Vec<TensorDef<'static>> = (0..r.usize(1, 9))
                .map(|_| tensor(dtype, &dims, 0.5, 0))
                .collect();
            for t in defs.iter_mut() {
                if r.bool() {
                    fuzz_dims(&mut r, t);
                }
            }
            let axis = r.usize(0, rank);
            let mut od = tensor(dtype, &dims, 0.5, 0);
            if axis < rank {
                od.shape.dims[axis] = if r.bool() {
                    defs.iter().map(|t| t.shape.dims[axis]).sum()
                } else {
                    r.usize(1, 20) as u32
                };
            }
            let clamp = if r.bool() {
                Clamp::NONE
            } else {
                fuzz_clamp(&mut r)
            };
            let p = ConcatParams {
                axis: axis as u8,
                clamp,
            };
            if check(&p, &defs, &od).is_err() {
                continue;
            }
            let data = fuzz_data(&mut r, &defs);
            run(&defs, &data, &od, |i, o| eval(&p, i, o));
            evaluated += 1;
        }
        assert!(evaluated > 50, "{evaluated}");
    }
}
