//! Data movement: TRANSPOSE and STRIDED_SLICE, for int8, f32 and int32 tensors.
//!
//! Both ops only move elements: the output element at row-major position `(i_0, …)` is the
//! input element at `base + Σ i_k · step_k` (in elements). TFLite's reference kernels
//! (`reference_ops::Transpose`, `reference_ops::StridedSlice`) copy int8 values unchanged,
//! without requantizing, and so do these; an int8 output therefore has to carry its
//! input's quantization for the real values to be the same (the importer and the
//! quantizer see to it; TFLite's converter does the same).
//!
//! [`check_transpose`] / [`check_strided_slice`] prove at parse time that every index
//! `eval` forms lies inside the input; `eval` still reads through `get` and stops at the
//! first index that would not, so it cannot panic even if called unchecked.

use edgeflow_format::graph::{DType, StridedSliceParams, TensorDef, TransposeParams, MAX_RANK};

use super::{TensorIn, TensorOut};

/// Row-major element strides of `t` extended to `MAX_RANK` dims (trailing dims 1).
fn strides(t: &TensorDef<'_>) -> [i64; MAX_RANK] {
    let rank = (t.shape.rank as usize).min(MAX_RANK);
    let mut s = [0i64; MAX_RANK];
    let mut acc = 1i64;
    for d in (0..rank).rev() {
        s[d] = acc;
        acc = acc.saturating_mul(t.shape.dim(d) as i64);
    }
    s
}

fn same_dtype(x: &TensorDef<'_>, out: &TensorDef<'_>) -> Result<(), &'static str> {
    if x.dtype != out.dtype {
        return Err(why!("movement.rs", "input and output types differ"));
    }
    if out.dtype == DType::I8 && (x.quant.is_none() || out.quant.is_none()) {
        return Err(why!("movement.rs", "int8 tensor without quantization"));
    }
    Ok(())
}

/// Verifies every precondition of [`eval_transpose`].
pub(crate) fn check_transpose(
    p: &TransposeParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    // TFLite's TRANSPOSE lists the permutation as a second (constant int32) input; it was
    // folded into the parameters and is ignored here.
    let x = match inputs {
        [x] => x,
        [x, perm] if perm.dtype == DType::I32 => x,
        _ => {
            return Err(why!(
                "movement.rs",
                "TRANSPOSE takes the input and optionally the (folded) int32 permutation"
            ))
        }
    };
    same_dtype(x, output)?;
    let rank = x.shape.rank as usize;
    if rank > MAX_RANK || output.shape.rank != x.shape.rank {
        return Err(why!("movement.rs", "input and output ranks differ"));
    }
    let mut seen = [false; MAX_RANK];
    for (i, &pi) in p.perm.iter().enumerate() {
        let pi = pi as usize;
        if i >= rank {
            if pi != i {
                return Err(why!(
                    "movement.rs",
                    "permutation entry past the rank is not the identity"
                ));
            }
            continue;
        }
        if pi >= rank || seen[pi] {
            return Err(why!(
                "movement.rs",
                "perm is not a permutation of the input dimensions"
            ));
        }
        seen[pi] = true;
        if output.shape.dim(i) != x.shape.dim(pi) {
            return Err(why!(
                "movement.rs",
                "output shape is not the permuted input shape"
            ));
        }
    }
    Ok(())
}

/// Verifies every precondition of [`eval_strided_slice`].
pub(crate) fn check_strided_slice(
    p: &StridedSliceParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    // TFLite's begin/end/strides inputs (constant int32) were folded into the parameters.
    let x = match inputs {
        [x, rest @ ..] if rest.len() <= 3 && rest.iter().all(|t| t.dtype == DType::I32) => x,
        _ => return Err(why!("movement.rs", "STRIDED_SLICE takes the input and optionally its (folded) int32 begin, end and strides")),
    };
    same_dtype(x, output)?;
    let rank = x.shape.rank as usize;
    if rank > MAX_RANK {
        return Err(why!("movement.rs", "input rank above the maximum"));
    }
    let mut elems = 1u64;
    for d in 0..MAX_RANK {
        let (b, s, c) = (
            i64::from(p.begin[d]),
            i64::from(p.stride[d]),
            u64::from(p.count[d]),
        );
        if d >= rank {
            if (b, s, c) != (0, 1, 1) {
                return Err(why!(
                    "movement.rs",
                    "slice given for a dimension past the rank"
                ));
            }
            continue;
        }
        let size = x.shape.dim(d) as i64;
        if c == 0 || s == 0 {
            return Err(why!("movement.rs", "a slice count or stride is zero"));
        }
        // (count - 1) * stride fits i64: count < 2^32, |stride| <= 2^31.
        let last = b + (c as i64 - 1) * s;
        if b < 0 || b >= size || last < 0 || last >= size {
            return Err(why!("movement.rs", "a slice index lies outside the input"));
        }
        elems = elems.saturating_mul(c);
    }
    if output.shape.num_elements().map(|n| n as u64) != Some(elems) {
        return Err(why!(
            "movement.rs",
            "output element count is not the product of the slice counts"
        ));
    }
    Ok(())
}

/// Copies `counts` (row-major odometer) elements of `elem` bytes: output element
/// `(i_0, …)` comes from input element `base + Σ i_k · steps[k]`. Stops at the first
/// index outside `src` or `dst` (never the case after the op's check).
fn gather(
    src: &[u8],
    dst: &mut [u8],
    elem: usize,
    counts: &[usize; MAX_RANK],
    base: i64,
    steps: &[i64; MAX_RANK],
) {
    if elem == 0 || counts.contains(&0) {
        return;
    }
    let mut idx = [0usize; MAX_RANK];
    let mut at = base;
    for o in dst.chunks_exact_mut(elem) {
        let Some(s) = usize::try_from(at)
            .ok()
            .and_then(|i| i.checked_mul(elem))
            .and_then(|i| src.get(i..i.checked_add(elem)?))
        else {
            return;
        };
        o.copy_from_slice(s);
        // Odometer step: the innermost dimension first.
        for d in (0..MAX_RANK).rev() {
            idx[d] += 1;
            at = at.wrapping_add(steps[d]);
            if idx[d] < counts[d] {
                break;
            }
            at = at.wrapping_sub(steps[d].wrapping_mul(counts[d] as i64));
            idx[d] = 0;
        }
    }
}

/// Executes a TRANSPOSE that passed [`check_transpose`].
pub(crate) fn eval_transpose(
    p: &TransposeParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let Some(x) = inputs.first() else {
        return;
    };
    let rank = (x.def.shape.rank as usize).min(MAX_RANK);
    let in_strides = strides(x.def);
    let mut counts = [1usize; MAX_RANK];
    let mut steps = [0i64; MAX_RANK];
    for i in 0..rank {
        let pi = (p.perm[i] as usize).min(MAX_RANK - 1);
        counts[i] = output.def.shape.dim(i);
        steps[i] = in_strides[pi];
    }
    gather(
        x.data,
        output.data,
        output.def.dtype.size(),
        &counts,
        0,
        &steps,
    );
}

/// Executes a STRIDED_SLICE that passed [`check_strided_slice`].
pub(crate) fn eval_strided_slice(
    p: &StridedSliceParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
) {
    let Some(x) = inputs.first() else {
        return;
    };
    let rank = (x.def.shape.rank as usize).min(MAX_RANK);
    let in_strides = strides(x.def);
    let mut counts = [1usize; MAX_RANK];
    let mut steps = [0i64; MAX_RANK];
    let mut base = 0i64;
    for d in 0..rank {
        counts[d] = p.count[d] as usize;
        steps[d] = i64::from(p.stride[d]).wrapping_mul(in_strides[d]);
        base = base.wrapping_add(i64::from(p.begin[d]).wrapping_mul(in_strides[d]));
    }
    gather(
        x.data,
        output.data,
        output.def.dtype.size(),
        &counts,
        base,
        &steps,
    );
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::prelude::rust_2021::*;
    use std::vec;

    use super::*;
    use crate::kernels::testutil::*;

    /// Multi-index of row-major position `flat` in `dims`.
    fn unflatten(mut flat: usize, dims: &[usize]) -> Vec<usize> {
        let mut idx = vec![0; dims.len()];
        for d in (0..dims.len()).rev() {
            idx[d] = flat % dims[d];
            flat /= dims[d];
        }
        idx
    }

    fn flatten(idx: &[usize], dims: &[usize]) -> usize {
        idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
    }

    /// TFLite's reference `Transpose`, element by element.
    fn transpose_ref(perm: &[usize], dims: &[usize], x: &[u8], elem: usize) -> Vec<u8> {
        let odims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let n: usize = odims.iter().product();
        let mut out = Vec::new();
        for f in 0..n {
            let oi = unflatten(f, &odims);
            let mut ii = vec![0; dims.len()];
            for (k, &p) in perm.iter().enumerate() {
                ii[p] = oi[k];
            }
            let s = flatten(&ii, dims) * elem;
            out.extend_from_slice(&x[s..s + elem]);
        }
        out
    }

    /// Index by index: `begin + k * stride` along each dimension.
    fn slice_ref(p: &StridedSliceParams, dims: &[usize], x: &[u8], elem: usize) -> Vec<u8> {
        let counts: Vec<usize> = (0..dims.len()).map(|d| p.count[d] as usize).collect();
        let n: usize = counts.iter().product();
        let mut out = Vec::new();
        for f in 0..n {
            let k = unflatten(f, &counts);
            let ii: Vec<usize> = (0..dims.len())
                .map(|d| (p.begin[d] as i64 + k[d] as i64 * p.stride[d] as i64) as usize)
                .collect();
            let s = flatten(&ii, dims) * elem;
            out.extend_from_slice(&x[s..s + elem]);
        }
        out
    }

    fn random_perm(r: &mut Rng, rank: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            p.swap(i, r.usize(0, i));
        }
        p
    }

    #[test]
    fn transpose_matches_reference_on_random_cases() {
        let mut r = Rng::new(71);
        for case in 0..1500 {
            let rank = r.usize(0, MAX_RANK);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let dims: Vec<usize> = (0..rank).map(|_| r.usize(1, 4)).collect();
            let perm = random_perm(&mut r, rank);
            let u: Vec<u32> = dims.iter().map(|&d| d as u32).collect();
            let ou: Vec<u32> = perm.iter().map(|&p| dims[p] as u32).collect();
            let xd = tensor(dtype, &u, 0.5, 3);
            let od = tensor(dtype, &ou, 0.5, 3);
            let mut pp = TransposeParams {
                perm: core::array::from_fn(|i| i as u8),
            };
            for (i, &p) in perm.iter().enumerate() {
                pp.perm[i] = p as u8;
            }
            let x = r.bytes(xd.shape.num_elements().unwrap() * dtype.size());
            check_transpose(&pp, &[xd], &od).expect("check");
            let got = run(&[xd], &[x.clone()], &od, |i, o| eval_transpose(&pp, i, o));
            assert_eq!(
                got,
                transpose_ref(&perm, &dims, &x, dtype.size()),
                "case {case} perm {perm:?} dims {dims:?}"
            );
        }
    }

    #[test]
    fn strided_slice_matches_reference_on_random_cases() {
        let mut r = Rng::new(72);
        for case in 0..1500 {
            let rank = r.usize(0, MAX_RANK);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let dims: Vec<usize> = (0..rank).map(|_| r.usize(1, 5)).collect();
            let mut p = StridedSliceParams {
                begin: [0; MAX_RANK],
                stride: [1; MAX_RANK],
                count: [1; MAX_RANK],
            };
            for d in 0..rank {
                let size = dims[d] as i64;
                let b = r.range(0, size - 1);
                let s = loop {
                    let s = r.range(-3, 3);
                    if s != 0 {
                        break s;
                    }
                };
                // Indices b, b+s, … while inside [0, size).
                let max = if s > 0 {
                    (size - 1 - b) / s + 1
                } else {
                    b / -s + 1
                };
                p.begin[d] = b as i32;
                p.stride[d] = s as i32;
                p.count[d] = r.range(1, max) as u32;
            }
            let u: Vec<u32> = dims.iter().map(|&d| d as u32).collect();
            // The output drops count-1 dimensions now and then (shrink_axis_mask).
            let ou: Vec<u32> = (0..rank)
                .filter(|&d| p.count[d] != 1 || r.bool())
                .map(|d| p.count[d])
                .collect();
            let xd = tensor(dtype, &u, 0.5, -2);
            let od = tensor(dtype, &ou, 0.5, -2);
            let x = r.bytes(xd.shape.num_elements().unwrap() * dtype.size());
            check_strided_slice(&p, &[xd], &od).expect("check");
            let got = run(&[xd], &[x.clone()], &od, |i, o| {
                eval_strided_slice(&p, i, o)
            });
            assert_eq!(
                got,
                slice_ref(&p, &dims, &x, dtype.size()),
                "case {case} {p:?} dims {dims:?}"
            );
        }
    }

    #[test]
    fn hand_computed() {
        // [[1, 2, 3], [4, 5, 6]] transposed.
        let xd = tensor(DType::I8, &[2, 3], 1.0, 0);
        let od = tensor(DType::I8, &[3, 2], 1.0, 0);
        let mut pp = TransposeParams {
            perm: core::array::from_fn(|i| i as u8),
        };
        pp.perm[0] = 1;
        pp.perm[1] = 0;
        check_transpose(&pp, &[xd], &od).unwrap();
        let got = run(&[xd], &[vec![1, 2, 3, 4, 5, 6]], &od, |i, o| {
            eval_transpose(&pp, i, o)
        });
        assert_eq!(got, vec![1, 4, 2, 5, 3, 6]);
        // x[1, ::-2] of the same matrix: [6, 4].
        let mut p = StridedSliceParams {
            begin: [0; MAX_RANK],
            stride: [1; MAX_RANK],
            count: [1; MAX_RANK],
        };
        (p.begin[0], p.begin[1], p.stride[1], p.count[1]) = (1, 2, -2, 2);
        let od = tensor(DType::I8, &[2], 1.0, 0);
        check_strided_slice(&p, &[xd], &od).unwrap();
        let got = run(&[xd], &[vec![1, 2, 3, 4, 5, 6]], &od, |i, o| {
            eval_strided_slice(&p, i, o)
        });
        assert_eq!(got, vec![6, 4]);
    }

    #[test]
    fn checks_reject_bad_ops() {
        let xd = tensor(DType::F32, &[2, 3], 1.0, 0);
        let id = TransposeParams {
            perm: core::array::from_fn(|i| i as u8),
        };
        assert!(check_transpose(&id, &[xd], &xd).is_ok());
        let mut dup = id;
        dup.perm[1] = 0;
        assert!(check_transpose(&dup, &[xd], &xd).is_err());
        let mut past = id;
        past.perm[4] = 5;
        past.perm[5] = 4;
        assert!(check_transpose(&past, &[xd], &xd).is_err());
        let mut swap = id;
        (swap.perm[0], swap.perm[1]) = (1, 0);
        assert!(
            check_transpose(&swap, &[xd], &xd).is_err(),
            "shape not permuted"
        );
        let i8d = tensor(DType::I8, &[2, 3], 1.0, 0);
        assert!(check_transpose(&id, &[xd], &i8d).is_err(), "dtype");
        assert!(check_transpose(&id, &[], &xd).is_err());

        let ok = StridedSliceParams {
            begin: [0; MAX_RANK],
            stride: [1; MAX_RANK],
            count: {
                let mut c = [1; MAX_RANK];
                (c[0], c[1]) = (2, 3);
                c
            },
        };
        assert!(check_strided_slice(&ok, &[xd], &xd).is_ok());
        let mut over = ok;
        over.begin[1] = 1;
        assert!(
            check_strided_slice(&over, &[xd], &xd).is_err(),
            "runs past the end"
        );
        let mut back = ok;
        (back.begin[1], back.stride[1]) = (1, -1);
        assert!(
            check_strided_slice(&back, &[xd], &xd).is_err(),
            "runs below 0"
        );
        let mut zero = ok;
        zero.stride[0] = 0;
        assert!(check_strided_slice(&zero, &[xd], &xd).is_err());
        let mut empty = ok;
        empty.count[0] = 0;
        assert!(check_strided_slice(&empty, &[xd], &xd).is_err());
        let mut past = ok;
        past.count[3] = 2;
        assert!(check_strided_slice(&past, &[xd], &xd).is_err());
        let od = tensor(DType::F32, &[5], 1.0, 0);
        assert!(
            check_strided_slice(&ok, &[xd], &od).is_err(),
            "element count"
        );
        let mut neg = ok;
        neg.begin[0] = -1;
        assert!(check_strided_slice(&neg, &[xd], &xd).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        // Valid ops with one field mutated (and sometimes the output shape): whatever
        // passes the check must run without panicking.
        let mut r = Rng::new(73);
        let mut evaluated = 0;
        for _ in 0..4000 {
            let rank = r.usize(0, MAX_RANK);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let dims: Vec<u32> = (0..rank).map(|_| r.usize(1, 4) as u32).collect();
            let xd = tensor(dtype, &dims, 0.5, 1);
            let perm = random_perm(&mut r, rank);
            let mut tp = TransposeParams {
                perm: core::array::from_fn(|i| i as u8),
            };
            for (i, &p) in perm.iter().enumerate() {
                tp.perm[i] = p as u8;
            }
            let pd: Vec<u32> = perm.iter().map(|&p| dims[p]).collect();
            let mut tod = tensor(dtype, &pd, 0.5, 1);
            let mut sp = StridedSliceParams {
                begin: [0; MAX_RANK],
                stride: [1; MAX_RANK],
                count: [1; MAX_RANK],
            };
            for d in 0..rank {
                sp.count[d] = dims[d];
            }
            let mut sod = xd;
            let k = r.usize(0, MAX_RANK - 1);
            match r.range(0, 4) {
                0 => tp.perm[k] = r.range(0, 7) as u8,
                1 => sp.begin[k] = r.range(-3, 4) as i32,
                2 => sp.stride[k] = r.range(-3, 3) as i32,
                3 => sp.count[k] = r.range(0, 5) as u32,
                _ => {
                    fuzz_dims(&mut r, &mut tod);
                    fuzz_dims(&mut r, &mut sod);
                }
            }
            let defs = [xd];
            let data = fuzz_data(&mut r, &defs);
            if check_transpose(&tp, &defs, &tod).is_ok() {
                run(&defs, &data, &tod, |i, o| eval_transpose(&tp, i, o));
                evaluated += 1;
            }
            if check_strided_slice(&sp, &defs, &sod).is_ok() {
                run(&defs, &data, &sod, |i, o| eval_strided_slice(&sp, i, o));
                evaluated += 1;
            }
        }
        assert!(evaluated > 2000, "{evaluated}");
    }
}
