//! PAD (constant padding), int8 / f32 / int32, matching TFLM's reference `Pad`: the pad
//! value is the output zero point for int8 and zero otherwise; input bytes are copied
//! unchanged. The paddings (TFLite's second input) were folded into [`PadParams`] by the
//! compiler; if the op still lists the paddings tensor it is ignored.
//!
//! Works on whole innermost rows: each output row is either all padding or
//! `before | input row | after`.

use edgeflow_format::graph::{DType, PadParams, TensorDef, MAX_RANK};

use super::{TensorIn, TensorOut};

/// Verifies every precondition of [`eval`].
pub(crate) fn check(
    p: &PadParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let x = match inputs {
        [x] => x,
        [x, paddings] if paddings.dtype == DType::I32 => x,
        _ => {
            return Err(why!(
                "pad.rs",
                "PAD takes the input and optionally the (folded) int32 paddings"
            ))
        }
    };
    if x.dtype != output.dtype {
        return Err(why!("pad.rs", "input and output types differ"));
    }
    if x.shape.rank != output.shape.rank || x.shape.rank as usize > MAX_RANK {
        return Err(why!("pad.rs", "input and output ranks differ"));
    }
    let rank = x.shape.rank as usize;
    for d in 0..MAX_RANK {
        let (b, a) = (p.before[d] as u64, p.after[d] as u64);
        if d >= rank {
            if b != 0 || a != 0 {
                return Err(why!(
                    "pad.rs",
                    "padding given for a dimension past the rank"
                ));
            }
        } else if x.shape.dim(d) as u64 + b + a != output.shape.dim(d) as u64 {
            return Err(why!(
                "pad.rs",
                "output shape is not input shape plus paddings"
            ));
        }
    }
    if output.dtype == DType::I8 && output.quant.is_none() {
        return Err(why!("pad.rs", "int8 tensor without quantization"));
    }
    Ok(())
}

/// Executes a PAD that passed [`check`].
pub(crate) fn eval(p: &PadParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let Some(x) = inputs.first() else {
        return;
    };
    let elem = output.def.dtype.size();
    let pad_byte = match output.def.dtype {
        DType::I8 => output.def.quant.map_or(0, |q| q.zero_point as i8 as u8),
        // 0.0f32 and 0i32 are all-zero bytes.
        DType::F32 | DType::I32 => 0,
    };
    // Shapes extended to MAX_RANK dims with leading ones.
    let rank = (output.def.shape.rank as usize).min(MAX_RANK);
    let lead = MAX_RANK - rank;
    let mut in_d = [1usize; MAX_RANK];
    let mut out_d = [1usize; MAX_RANK];
    let mut before = [0usize; MAX_RANK];
    for d in 0..rank {
        in_d[lead + d] = x.def.shape.dim(d);
        out_d[lead + d] = output.def.shape.dim(d);
        before[lead + d] = p.before[d] as usize;
    }
    let last = MAX_RANK - 1;
    let in_row = in_d[last] * elem;
    let out_row = out_d[last] * elem;
    if in_row == 0 || out_row == 0 {
        return;
    }
    let pre = before[last] * elem;
    let mut src = x.data.chunks_exact(in_row);
    // Odometer over the outer output dims.
    let mut idx = [0usize; MAX_RANK];
    for orow in output.data.chunks_exact_mut(out_row) {
        let inside = (0..last).all(|d| idx[d] >= before[d] && idx[d] - before[d] < in_d[d]);
        if inside {
            let Some(s) = src.next() else {
                return;
            };
            let (a, rest) = orow.split_at_mut(pre.min(out_row));
            a.fill(pad_byte);
            let n = in_row.min(rest.len());
            let (m, z) = rest.split_at_mut(n);
            m.copy_from_slice(&s[..n]);
            z.fill(pad_byte);
        } else {
            orow.fill(pad_byte);
        }
        for d in (0..last).rev() {
            idx[d] += 1;
            if idx[d] < out_d[d] {
                break;
            }
            idx[d] = 0;
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

    /// TFLM's `PadImpl`, generalised to any rank <= 6: element by element.
    fn reference(p: &PadParams, xd: &TensorDef<'_>, x: &[u8], od: &TensorDef<'_>) -> Vec<u8> {
        let elem = od.dtype.size();
        let pad: Vec<u8> = match od.dtype {
            DType::I8 => vec![od.quant.unwrap().zero_point as i8 as u8],
            _ => vec![0; elem],
        };
        let rank = od.shape.rank as usize;
        let n = od.shape.num_elements().unwrap();
        let mut out = Vec::new();
        let mut src = x.chunks_exact(elem);
        for flat in 0..n {
            let mut rem = flat;
            let mut inside = true;
            for d in (0..rank).rev() {
                let i = rem % od.shape.dim(d);
                rem /= od.shape.dim(d);
                if i < p.before[d] as usize || i >= od.shape.dim(d) - p.after[d] as usize {
                    inside = false;
                }
            }
            if inside {
                out.extend_from_slice(src.next().unwrap());
            } else {
                out.extend_from_slice(&pad);
            }
        }
        let _ = xd;
        out
    }

    #[test]
    fn matches_reference_on_random_cases() {
        let mut r = Rng::new(41);
        for case in 0..1000 {
            let rank = r.usize(0, 6);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let mut before = [0u32; MAX_RANK];
            let mut after = [0u32; MAX_RANK];
            let mut idims = Vec::new();
            let mut odims = Vec::new();
            for d in 0..rank {
                let i = r.usize(1, if rank > 4 { 3 } else { 5 }) as u32;
                if r.range(0, 2) != 0 {
                    before[d] = r.usize(0, 3) as u32;
                    after[d] = r.usize(0, 3) as u32;
                }
                idims.push(i);
                odims.push(i + before[d] + after[d]);
            }
            let zp = r.range(-128, 127) as i32;
            let xd = tensor(dtype, &idims, 0.5, zp);
            let od = tensor(dtype, &odims, 0.5, zp);
            let p = PadParams { before, after };
            let x = r.bytes(xd.shape.num_elements().unwrap() * dtype.size());
            let mut defs = vec![xd];
            let mut data = vec![x.clone()];
            if r.bool() {
                defs.push(tensor(DType::I32, &[rank as u32, 2], 1.0, 0));
                data.push(vec![0; rank * 8]);
            }
            check(&p, &defs, &od).expect("check");
            let got = run(&defs, &data, &od, |i, o| eval(&p, i, o));
            assert_eq!(got, reference(&p, &xd, &x, &od), "case {case}");
        }
    }

    #[test]
    fn hand_computed_int8() {
        let xd = tensor(DType::I8, &[1, 2], 1.0, -3);
        let od = tensor(DType::I8, &[2, 4], 1.0, -3);
        let mut p = PadParams {
            before: [0; MAX_RANK],
            after: [0; MAX_RANK],
        };
        p.before[0] = 1;
        p.before[1] = 1;
        p.after[1] = 1;
        check(&p, &[xd], &od).unwrap();
        let got: Vec<i8> = run(&[xd], &[vec![7, 9]], &od, |i, o| eval(&p, i, o))
            .into_iter()
            .map(|v| v as i8)
            .collect();
        assert_eq!(got, vec![-3, -3, -3, -3, -3, 7, 9, -3]);
    }

    #[test]
    fn check_rejects_bad_ops() {
        let xd = tensor(DType::F32, &[2, 3], 1.0, 0);
        let od = tensor(DType::F32, &[2, 5], 1.0, 0);
        let mut p = PadParams {
            before: [0; MAX_RANK],
            after: [0; MAX_RANK],
        };
        p.before[1] = 1;
        p.after[1] = 1;
        assert!(check(&p, &[xd], &od).is_ok());
        p.after[1] = 2;
        assert!(check(&p, &[xd], &od).is_err());
        p.after[1] = 1;
        p.before[3] = 1;
        assert!(check(&p, &[xd], &od).is_err());
        p.before[3] = 0;
        let od2 = tensor(DType::I8, &[2, 5], 1.0, 0);
        assert!(check(&p, &[xd], &od2).is_err());
        assert!(check(&p, &[xd, xd], &od).is_err());
        assert!(check(&p, &[], &od).is_err());
    }

    #[test]
    fn eval_never_panics_after_check() {
        let mut r = Rng::new(44);
        let mut evaluated = 0;
        for _ in 0..3000 {
            let rank = r.usize(0, 6);
            let dtype = [DType::I8, DType::F32, DType::I32][r.usize(0, 2)];
            let idims: Vec<u32> = (0..rank).map(|_| r.usize(1, 3) as u32).collect();
            let mut odims = idims.clone();
            let mut p = PadParams {
                before: [0; MAX_RANK],
                after: [0; MAX_RANK],
            };
            for d in 0..MAX_RANK {
                p.before[d] = r.range(0, 2) as u32;
                p.after[d] = r.range(0, 2) as u32;
                if d < rank {
                    odims[d] += p.before[d] + p.after[d];
                }
            }
            let xd = tensor(dtype, &idims, 0.5, 1);
            let mut od = tensor(dtype, &odims, 0.5, 1);
            if r.bool() {
                fuzz_dims(&mut r, &mut od);
            }
            let defs = [xd];
            if check(&p, &defs, &od).is_err() {
                continue;
            }
            let data = fuzz_data(&mut r, &defs);
            run(&defs, &data, &od, |i, o| eval(&p, i, o));
            evaluated += 1;
        }
        assert!(evaluated > 100, "{evaluated}");
    }
}
