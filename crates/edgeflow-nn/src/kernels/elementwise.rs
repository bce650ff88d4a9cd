//! ADD and MUL with NumPy broadcasting (rank <= 6), int8 and f32.
//!
//! int8 reproduces TFLM's `reference_integer_ops::AddFunc` (via `Add` /
//! `BroadcastAdd6DSlow`) and `reference_integer_ops::MulElementwise` /
//! `BroadcastMul6DSlow`; f32 reproduces `reference_ops::Add` / `BroadcastAdd6DSlow` and
//! `Mul` / `BroadcastMul6DSlow` (`a + b` / `a * b`, then C++'s
//! `min(max(x, lo), hi)`). Every output element depends only on its two input elements,
//! so the iteration order is free: dims are coalesced and the innermost run is a tight
//! loop (same-shape tensors and scalar operands are a single run).

use edgeflow_format::graph::{AddParams, DType, MulParams, TensorDef};

use super::arch::{self, Isa};
use super::generic::broadcast::{broadcast_shape, Broadcast};
use super::generic::elem::{check_clamp, clamp_f32, clamp_i32, f32_of as rd_f32, zero_point};
use super::generic::requant::Soa;
use super::{TensorIn, TensorOut};
use crate::fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_smaller_than_one_exp,
};

/// Broadcast binary op on int8 tensors: `pre1`/`pre2` map each input element to an `i32`
/// (computed once for a broadcast scalar run), `comb` makes the output.
#[inline(always)]
pub(crate) fn binary_i8(
    plan: &Broadcast,
    in1: &[u8],
    in2: &[u8],
    out: &mut [u8],
    pre1: impl Fn(i8) -> i32,
    pre2: impl Fn(i8) -> i32,
    comb: impl Fn(i32, i32) -> i8,
) {
    plan.for_each_run(|o1, st1, o2, st2, oo, len| {
        let Some(dst) = out.get_mut(oo..oo.wrapping_add(len)) else {
            return;
        };
        match (st1 != 0, st2 != 0) {
            (true, true) => {
                let (Some(a), Some(b)) = (
                    in1.get(o1..o1.wrapping_add(len)),
                    in2.get(o2..o2.wrapping_add(len)),
                ) else {
                    return;
                };
                for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                    *d = comb(pre1(x as i8), pre2(y as i8)) as u8;
                }
            }
            (false, true) => {
                let (Some(&x), Some(b)) = (in1.get(o1), in2.get(o2..o2.wrapping_add(len))) else {
                    return;
                };
                let x = pre1(x as i8);
                for (d, &y) in dst.iter_mut().zip(b) {
                    *d = comb(x, pre2(y as i8)) as u8;
                }
            }
            (true, false) => {
                let (Some(a), Some(&y)) = (in1.get(o1..o1.wrapping_add(len)), in2.get(o2)) else {
                    return;
                };
                let y = pre2(y as i8);
                for (d, &x) in dst.iter_mut().zip(a) {
                    *d = comb(pre1(x as i8), y) as u8;
                }
            }
            (false, false) => {
                let (Some(&x), Some(&y)) = (in1.get(o1), in2.get(o2)) else {
                    return;
                };
                dst.fill(comb(pre1(x as i8), pre2(y as i8)) as u8);
            }
        }
    });
}

/// Broadcast binary op on f32 tensors.
#[inline(always)]
pub(crate) fn binary_f32(
    plan: &Broadcast,
    in1: &[u8],
    in2: &[u8],
    out: &mut [u8],
    f: impl Fn(f32, f32) -> f32,
) {
    let bytes = |o: usize, n: usize| o.wrapping_mul(4)..o.wrapping_add(n).wrapping_mul(4);
    plan.for_each_run(|o1, st1, o2, st2, oo, len| {
        let Some(dst) = out.get_mut(bytes(oo, len)) else {
            return;
        };
        let dst = dst.chunks_exact_mut(4);
        let a_len = if st1 != 0 { len } else { 1 };
        let b_len = if st2 != 0 { len } else { 1 };
        let (Some(a), Some(b)) = (in1.get(bytes(o1, a_len)), in2.get(bytes(o2, b_len))) else {
            return;
        };
        match (st1 != 0, st2 != 0) {
            (true, true) => {
                for ((d, x), y) in dst.zip(a.chunks_exact(4)).zip(b.chunks_exact(4)) {
                    d.copy_from_slice(&f(rd_f32(x), rd_f32(y)).to_le_bytes());
                }
            }
            (false, true) => {
                let x = rd_f32(a);
                for (d, y) in dst.zip(b.chunks_exact(4)) {
                    d.copy_from_slice(&f(x, rd_f32(y)).to_le_bytes());
                }
            }
            (true, false) => {
                let y = rd_f32(b);
                for (d, x) in dst.zip(a.chunks_exact(4)) {
                    d.copy_from_slice(&f(rd_f32(x), y).to_le_bytes());
                }
            }
            (false, false) => {
                let v = f(rd_f32(a), rd_f32(b)).to_le_bytes();
                for d in dst {
                    d.copy_from_slice(&v);
                }
            }
        }
    });
}

/// Shape and type checks shared by ADD and MUL.
pub(crate) fn check_binary(
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<DType, &'static str> {
    let [a, b] = inputs else {
        return Err(why!("elementwise.rs", "needs exactly two inputs"));
    };
    if a.dtype != b.dtype || a.dtype != output.dtype {
        return Err(why!("elementwise.rs", "input and output types differ"));
    }
    if !matches!(output.dtype, DType::I8 | DType::F32) {
        return Err(why!("elementwise.rs", "only int8 and f32 are supported"));
    }
    let shape = broadcast_shape(&a.shape, &b.shape)
        .ok_or(why!("elementwise.rs", "input shapes do not broadcast"))?;
    // The output is the broadcast shape, possibly with extra leading 1s (TFLM accepts those).
    let (want, got) = (shape.dims(), output.shape.dims());
    let split = got
        .len()
        .checked_sub(want.len())
        .and_then(|e| got.split_at_checked(e));
    if !split.is_some_and(|(ones, rest)| rest == want && ones.iter().all(|&d| d == 1)) {
        return Err(why!(
            "elementwise.rs",
            "output shape is not the broadcast of the input shapes"
        ));
    }
    Ok(output.dtype)
}

/// Checks the offsets against the tensors' zero points.
fn check_offsets(
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
    input1_offset: i32,
    input2_offset: i32,
    output_offset: i32,
) -> Result<(), &'static str> {
    let [a, b] = inputs else {
        return Err(why!("elementwise.rs", "needs exactly two inputs"));
    };
    if input1_offset != zero_point(a)?.wrapping_neg()
        || input2_offset != zero_point(b)?.wrapping_neg()
    {
        return Err(why!(
            "elementwise.rs",
            "input offsets do not match the input zero points"
        ));
    }
    if output_offset != zero_point(output)? {
        return Err(why!(
            "elementwise.rs",
            "output offset does not match the output zero point"
        ));
    }
    Ok(())
}

/// Whether ADD's broadcast path (any broadcast shapes, f32) is linked: a DSP build
/// (Cortex-M4/M7) with `EDGEFLOW_NN_ADD_BROADCAST=0` (build.rs) links only the int8 ADD
/// of two inputs with the output's shape, and [`check_add`] then rejects the others;
/// every other build links it.
const BROADCAST_LINKED: bool = !cfg!(all(edgeflow_arm_dsp, not(edgeflow_add_broadcast)));

pub(crate) fn check_add(
    p: &AddParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let dtype = check_binary(inputs, output)?;
    if !BROADCAST_LINKED
        && (dtype != DType::I8 || inputs.iter().any(|t| t.shape.dims() != output.shape.dims()))
    {
        return Err("only int8 ADD of two inputs with the output's shape is linked into this build (EDGEFLOW_NN_ADD_BROADCAST=0 at build time)");
    }
    check_clamp(&p.clamp, dtype)?;
    if dtype == DType::I8 {
        check_offsets(
            inputs,
            output,
            p.input1_offset,
            p.input2_offset,
            p.output_offset,
        )?;
        // 255 << left_shift must fit in an i32.
        if !(0..=23).contains(&p.left_shift) {
            return Err(why!("elementwise.rs", "ADD left shift outside [0, 23]"));
        }
        for m in [&p.input1, &p.input2, &p.output] {
            if m.multiplier < 0 || !(-31..=0).contains(&m.shift) {
                return Err(why!(
                    "elementwise.rs",
                    "ADD multiplier negative or shift outside [-31, 0]"
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_mul(
    p: &MulParams,
    inputs: &[TensorDef<'_>],
    output: &TensorDef<'_>,
) -> Result<(), &'static str> {
    let dtype = check_binary(inputs, output)?;
    check_clamp(&p.clamp, dtype)?;
    if dtype == DType::I8 {
        check_offsets(
            inputs,
            output,
            p.input1_offset,
            p.input2_offset,
            p.output_offset,
        )?;
        if p.output.multiplier < 0 || !(-31..=30).contains(&p.output.shift) {
            return Err(why!(
                "elementwise.rs",
                "MUL multiplier negative or shift outside [-31, 30]"
            ));
        }
    }
    Ok(())
}

/// int8 ADD on a host SIMD family, after the tables: same-shape runs 64 elements at a
/// time (the two tabled rescales summed, then `arch::requant_soa` with the output
/// multiplier `m`, right exponent minus one `r1` and `(offset, lo, hi)` for every
/// element), broadcast runs on `comb`. `comb` is
/// `clamp(RoundingDivideByPOT(SRDHM(s, m), r1 + 1) + offset)`, which for `m >= 0` and a
/// right shift equals the single-shift form `requant_single` the vector epilogue
/// computes (`generic::requant`, tested against `fixedpoint`).
#[allow(clippy::type_complexity)]
fn add_runs_simd(
    isa: Isa,
    plan: &Broadcast,
    (in1, in2): (&[u8], &[u8]),
    out: &mut [u8],
    get: &impl Fn(usize, i8) -> i32,
    comb: &impl Fn(i32, i32) -> i8,
    (m, r1, q): (i32, u32, (i32, i32, i32)),
) {
    const N: usize = 64;
    let mut params = [0u8; 12 * N];
    let (_, rest) = params.split_at_mut(4 * N);
    let (mb, rb) = rest.split_at_mut(4 * N);
    for (d, r) in mb.chunks_exact_mut(4).zip(rb.chunks_exact_mut(4)) {
        d.copy_from_slice(&m.to_le_bytes());
        r.copy_from_slice(&r1.to_le_bytes());
    }
    let soa = Soa::new(&params, N);
    let mut acc = [0i32; N];
    plan.for_each_run(|o1, st1, o2, st2, oo, len| {
        let Some(dst) = out.get_mut(oo..oo.wrapping_add(len)) else {
            return;
        };
        if st1 != 0 && st2 != 0 {
            let (Some(a), Some(b)) = (
                in1.get(o1..o1.wrapping_add(len)),
                in2.get(o2..o2.wrapping_add(len)),
            ) else {
                return;
            };
            for ((d, a), b) in dst.chunks_mut(N).zip(a.chunks(N)).zip(b.chunks(N)) {
                let acc = &mut acc[..d.len()];
                for ((s, &x), &y) in acc.iter_mut().zip(a).zip(b) {
                    *s = get(0, x as i8).wrapping_add(get(1024, y as i8));
                }
                arch::requant_soa(isa, acc, &soa, q, d);
            }
            return;
        }
        for (j, d) in dst.iter_mut().enumerate() {
            let x = in1
                .get(o1.wrapping_add(j.wrapping_mul(st1)))
                .copied()
                .unwrap_or(0);
            let y = in2
                .get(o2.wrapping_add(j.wrapping_mul(st2)))
                .copied()
                .unwrap_or(0);
            *d = comb(get(0, x as i8), get(1024, y as i8)) as u8;
        }
    });
}

/// Plan and byte-length sanity shared by the two evals (all verified by `check`).
fn prepare<'a>(
    inputs: &'a [TensorIn<'_, '_>],
    output: &TensorOut<'_, '_>,
) -> Option<(Broadcast, &'a [u8], &'a [u8])> {
    let [a, b] = inputs else {
        return None;
    };
    let plan = Broadcast::new(&a.def.shape, &b.def.shape)?;
    let size = output.def.dtype.size();
    let n = output.def.shape.num_elements()?;
    if output.data.len() != n.checked_mul(size)?
        || a.data.len() != a.def.shape.num_elements()?.checked_mul(size)?
        || b.data.len() != b.def.shape.num_elements()?.checked_mul(size)?
    {
        return None;
    }
    Some((plan, a.data, b.data))
}

/// Output elements from which int8 ADD tabulates its per-input rescale (two 256-entry
/// tables in scratch) instead of computing it twice per element.
const ADD_LUT_MIN_ELEMENTS: usize = 1024;
/// Scratch bytes for the two int8 ADD tables.
const ADD_LUT_BYTES: usize = 2 * 256 * 4;

/// Scratch an ADD wants: the rescale tables for large int8 tensors, else nothing.
pub(crate) fn add_scratch_bytes(output: &TensorDef<'_>) -> usize {
    match (output.dtype, output.shape.num_elements()) {
        (DType::I8, Some(n)) if n >= ADD_LUT_MIN_ELEMENTS => ADD_LUT_BYTES,
        _ => 0,
    }
}

/// int8 ADD's element functions from its parameters: the rescale of an input-1 and an
/// input-2 value (TFLM's `AddFunc` up to the sum) and the output from the two rescaled
/// values.
#[inline(always)]
fn add_fns(
    p: AddParams,
) -> (
    impl Fn(i8) -> i32 + Copy,
    impl Fn(i8) -> i32 + Copy,
    impl Fn(i32, i32) -> i8 + Copy,
) {
    let pre = move |x: i8, offset: i32, m: i32, shift: i32| {
        let shifted = offset
            .wrapping_add(x as i32)
            .wrapping_shl(p.left_shift as u32);
        multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m, shift)
    };
    let pre1 = move |x: i8| pre(x, p.input1_offset, p.input1.multiplier, p.input1.shift);
    let pre2 = move |y: i8| pre(y, p.input2_offset, p.input2.multiplier, p.input2.shift);
    let comb = move |s1: i32, s2: i32| {
        let raw = multiply_by_quantized_multiplier_smaller_than_one_exp(
            s1.wrapping_add(s2),
            p.output.multiplier,
            p.output.shift,
        )
        .wrapping_add(p.output_offset);
        clamp_i32(raw, p.clamp.min_q, p.clamp.max_q) as i8
    };
    (pre1, pre2, comb)
}

/// int8 ADD's rescale tables in `scratch` (input 1's 256 values, then input 2's, as
/// little-endian `i32`), when the op's scratch holds them and the output has at least
/// [`ADD_LUT_MIN_ELEMENTS`] elements (the planner gives such ops the scratch).
#[inline(always)]
fn add_lut(
    scratch: &mut [u8],
    elements: usize,
    pre1: impl Fn(i8) -> i32,
    pre2: impl Fn(i8) -> i32,
) -> Option<&[u8; ADD_LUT_BYTES]> {
    let lut: &mut [u8; ADD_LUT_BYTES] = scratch
        .get_mut(..ADD_LUT_BYTES)
        .and_then(|s| s.try_into().ok())
        .filter(|_| elements >= ADD_LUT_MIN_ELEMENTS)?;
    for v in 0..256usize {
        let x = v as u8 as i8;
        lut[4 * v..4 * v + 4].copy_from_slice(&pre1(x).to_le_bytes());
        lut[1024 + 4 * v..1024 + 4 * v + 4].copy_from_slice(&pre2(x).to_le_bytes());
    }
    Some(lut)
}

/// Executes an ADD that passed [`check_add`]. Two int8 inputs of the output's shape (a
/// residual connection) take one loop here, without the broadcast plan; the rest
/// ([`eval_add_broadcast`]: broadcasting, f32, the host SIMD runs) has a frame of its
/// own, so the plan is not on the stack under the common case.
pub(crate) fn eval_add(
    p: &AddParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
    isa: Isa,
) {
    if let [a, b] = inputs {
        let n = output.data.len();
        if isa.host_simd()
            && output.def.dtype == DType::I8
            && a.def.shape.dims() == output.def.shape.dims()
            && b.def.shape.dims() == output.def.shape.dims()
            && a.data.len() == n
            && b.data.len() == n
        {
            // Host vector kernel on a prefix (no tables), the element loop on the rest.
            let done = arch::add_same_shape(isa, p, a.data, b.data, output.data);
            if done > 0 {
                let (pre1, pre2, comb) = add_fns(*p);
                let rest = output.data.iter_mut().zip(a.data).zip(b.data).skip(done);
                for ((d, &x), &y) in rest {
                    *d = comb(pre1(x as i8), pre2(y as i8)) as u8;
                }
                return;
            }
        }
        // Without the broadcast path `check_add` admitted only int8 inputs of the
        // output's shape: the shape comparisons are left out.
        let same_shape = !BROADCAST_LINKED
            || (output.def.dtype == DType::I8
                && !isa.host_simd()
                && a.def.shape.dims() == output.def.shape.dims()
                && b.def.shape.dims() == output.def.shape.dims());
        if same_shape && a.data.len() == n && b.data.len() == n {
            // The same element order and arithmetic as `binary_i8` on the single run
            // the broadcast plan makes of equal shapes.
            let (pre1, pre2, comb) = add_fns(*p);
            match add_lut(scratch, n, pre1, pre2) {
                Some(lut) => {
                    let get = |base: usize, x: u8| {
                        let i = base + 4 * (x as usize);
                        i32::from_le_bytes([lut[i], lut[i + 1], lut[i + 2], lut[i + 3]])
                    };
                    for ((d, &x), &y) in output.data.iter_mut().zip(a.data).zip(b.data) {
                        *d = comb(get(0, x), get(1024, y)) as u8;
                    }
                }
                None => {
                    for ((d, &x), &y) in output.data.iter_mut().zip(a.data).zip(b.data) {
                        *d = comb(pre1(x as i8), pre2(y as i8)) as u8;
                    }
                }
            }
            return;
        }
    }
    // Without the broadcast path, `check_add` admitted only the case above.
    if BROADCAST_LINKED {
        eval_add_broadcast(p, inputs, output, scratch, isa);
    }
}

/// [`eval_add`] through the broadcast plan (every shape, int8 and f32).
#[inline(never)]
fn eval_add_broadcast(
    p: &AddParams,
    inputs: &[TensorIn<'_, '_>],
    output: TensorOut<'_, '_>,
    scratch: &mut [u8],
    isa: Isa,
) {
    let Some((plan, in1, in2)) = prepare(inputs, &output) else {
        return;
    };
    match output.def.dtype {
        DType::I8 => {
            let (pre1, pre2, comb) = add_fns(*p);
            // The rescale of an int8 value depends on the value alone: tabulate it once
            // (bit-identical by construction) when the tensor is large enough to pay off.
            let lut = add_lut(scratch, output.data.len(), pre1, pre2);
            match lut {
                Some(lut) => {
                    let get = |base: usize, x: i8| {
                        let i = base + 4 * (x as u8 as usize);
                        i32::from_le_bytes([lut[i], lut[i + 1], lut[i + 2], lut[i + 3]])
                    };
                    // Host SIMD: same-shape runs requantize the sums 64 at a time on the
                    // vector epilogue, which equals `comb` when the output rescale is a
                    // right shift with a non-negative multiplier (see `add_runs_simd`).
                    let (m, sh) = (p.output.multiplier, p.output.shift);
                    if isa.host_simd() && m >= 0 && sh <= -1 {
                        let q = (p.output_offset, p.clamp.min_q, p.clamp.max_q);
                        let r1 = (sh.saturating_neg().min(31) - 1) as u32;
                        add_runs_simd(isa, &plan, (in1, in2), output.data, &get, &comb, (m, r1, q));
                        return;
                    }
                    binary_i8(
                        &plan,
                        in1,
                        in2,
                        output.data,
                        |x| get(0, x),
                        |y| get(1024, y),
                        comb,
                    );
                }
                None => binary_i8(&plan, in1, in2, output.data, pre1, pre2, comb),
            }
        }
        DType::F32 => {
            let (lo, hi) = (p.clamp.min_f, p.clamp.max_f);
            binary_f32(&plan, in1, in2, output.data, |a, b| {
                clamp_f32(a + b, lo, hi)
            });
        }
        DType::I32 => {}
    }
}

pub(crate) fn eval_mul(p: &MulParams, inputs: &[TensorIn<'_, '_>], output: TensorOut<'_, '_>) {
    let Some((plan, in1, in2)) = prepare(inputs, &output) else {
        return;
    };
    match output.def.dtype {
        DType::I8 => {
            let p = *p;
            binary_i8(
                &plan,
                in1,
                in2,
                output.data,
                |x| p.input1_offset.wrapping_add(x as i32),
                |y| p.input2_offset.wrapping_add(y as i32),
                |a, b| {
                    let raw = p
                        .output_offset
                        .wrapping_add(multiply_by_quantized_multiplier(
                            a.wrapping_mul(b),
                            p.output.multiplier,
                            p.output.shift,
                        ));
                    clamp_i32(raw, p.clamp.min_q, p.clamp.max_q) as i8
                },
            );
        }
        DType::F32 => {
            let (lo, hi) = (p.clamp.min_f, p.clamp.max_f);
            binary_f32(&plan, in1, in2, output.data, |a, b| {
                clamp_f32(a * b, lo, hi)
            });
        }
        DType::I32 => {}
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::kernels::testutil::simple::*;
    use crate::params::elementwise::{add_params, mul_params};
    use edgeflow_format::graph::Clamp;

    /// Computed by TFLM 90b983c2's `reference_integer_ops` ADD / MUL (with the parameters
    /// of `CalculateOpDataAdd` / `CalculateOpDataMul`).
    #[test]
    fn int8_matches_tflm_vectors() {
        // Scalar + [1, 4, 2], clamp [-12, 92].
        let (s1, s2, so) = (
            f32::from_bits(0x3cfe_92d6),
            f32::from_bits(0x3f60_6f6e),
            f32::from_bits(0x3f1d_93e3),
        );
        let p = add_params(
            (s1, 42),
            (s2, -78),
            (so, 28),
            Clamp {
                min_q: -12,
                max_q: 92,
                ..Clamp::NONE
            },
        );
        assert_eq!(
            [
                p.input1.multiplier,
                p.input1.shift,
                p.input2.multiplier,
                p.input2.shift,
                p.output.multiplier,
                p.output.shift
            ],
            [1217929317, -5, 1073741824, 0, 1529312621, -18]
        );
        let (a, b, o) = (
            i8t(&[], s1, 42),
            i8t(&[1, 4, 2], s2, -78),
            i8t(&[1, 4, 2], so, 28),
        );
        check_add(&p, &[a, b], &o).unwrap();
        let got = run(
            &[
                (&a, &i8_bytes(&[-18])),
                (&b, &i8_bytes(&[-36, 0, 27, -37, -83, -118, 76, -96])),
            ],
            &o,
            |i, out| eval_add(&p, i, out, &mut [], Isa::Portable),
        );
        assert_eq!(to_i8s(&got), [85, 92, 92, 83, 18, -12, 92, -1]);

        // [1, 2, 3] * [2, 1, 1] -> [1, 2, 2, 3] (an extra leading 1 in the output).
        let (s1, s2, so) = (
            f32::from_bits(0x3d2c_9c2d),
            f32::from_bits(0x3efd_9334),
            f32::from_bits(0x4062_6c88),
        );
        let m = mul_params((s1, 53), (s2, -44), (so, 71), Clamp::NONE);
        assert_eq!((m.output.multiplier, m.output.shift), (1621586425, -7));
        let (a, b, o) = (
            i8t(&[1, 2, 3], s1, 53),
            i8t(&[2, 1, 1], s2, -44),
            i8t(&[1, 2, 2, 3], so, 71),
        );
        check_mul(&m, &[a, b], &o).unwrap();
        let got = run(
            &[
                (&a, &i8_bytes(&[-53, 25, -89, 80, -50, -12])),
                (&b, &i8_bytes(&[-53, -42])),
            ],
            &o,
            |i, out| eval_mul(&m, i, out),
        );
        assert_eq!(
            to_i8s(&got),
            [77, 72, 79, 70, 76, 74, 70, 71, 69, 71, 70, 70]
        );
    }

    fn f32_clamp(lo: f32, hi: f32) -> Clamp {
        Clamp {
            min_f: lo,
            max_f: hi,
            ..Clamp::NONE
        }
    }

    #[test]
    fn add_f32_hand_checked() {
        let a = f32t(&[2, 3]);
        let b = f32t(&[3]);
        let o = f32t(&[2, 3]);
        let p = add_params((0.0, 0), (0.0, 0), (0.0, 0), f32_clamp(-1.0, 10.0));
        let got = run(
            &[
                (&a, &f32_bytes(&[1., 2., 3., 4., 5., 6.])),
                (&b, &f32_bytes(&[0.5, -5., 6.])),
            ],
            &o,
            |i, out| eval_add(&p, i, out, &mut [], Isa::Portable),
        );
        assert_eq!(to_f32s(&got), [1.5, -1., 9., 4.5, 0., 10.]);
        let m = mul_params((0.0, 0), (0.0, 0), (0.0, 0), f32_clamp(f32::MIN, f32::MAX));
        let got = run(
            &[
                (&a, &f32_bytes(&[1., 2., 3., 4., 5., f32::NAN])),
                (&b, &f32_bytes(&[0.5, -5., 6.])),
            ],
            &o,
            |i, out| eval_mul(&m, i, out),
        );
        let got = to_f32s(&got);
        assert_eq!(&got[..5], [0.5, -10., 18., 2., -25.]);
        assert!(got[5].is_nan(), "NaN passes through C++'s min/max");
    }

    #[test]
    fn add_int8_hand_checked() {
        // scales 0.5, 0.5 -> 1.0: real out = 0.5*(a-1) + 0.5*(b+2), then + zp 3.
        let a = i8t(&[4], 0.5, 1);
        let b = i8t(&[4], 0.5, -2);
        let o = i8t(&[4], 1.0, 3);
        let p = add_params((0.5, 1), (0.5, -2), (1.0, 3), Clamp::NONE);
        check_add(&p, &[a, b], &o).unwrap();
        let got = run(
            &[
                (&a, &i8_bytes(&[1, 3, 11, 127])),
                (&b, &i8_bytes(&[-2, 0, 8, 127])),
            ],
            &o,
            |i, out| eval_add(&p, i, out, &mut [], Isa::Portable),
        );
        // 0+0 -> 3; 1+1 -> 5; 5+5 -> 13; 63+64.5=127.5 -> 130.5 -> clamp 127.
        assert_eq!(to_i8s(&got), [3, 5, 13, 127]);
    }

    #[test]
    fn mul_int8_hand_checked() {
        // 0.5*0.25/0.125 = 1: out = (a-1)*(b-2) + zp(-3).
        let a = i8t(&[1, 3], 0.5, 1);
        let b = i8t(&[1], 0.25, 2);
        let o = i8t(&[1, 3], 0.125, -3);
        let p = mul_params(
            (0.5, 1),
            (0.25, 2),
            (0.125, -3),
            Clamp {
                min_q: -10,
                ..Clamp::NONE
            },
        );
        check_mul(&p, &[a, b], &o).unwrap();
        let got = run(
            &[(&a, &i8_bytes(&[3, -1, 100])), (&b, &i8_bytes(&[5]))],
            &o,
            |i, out| eval_mul(&p, i, out),
        );
        assert_eq!(to_i8s(&got), [3, -9, 127]);
    }

    #[test]
    fn checks_reject() {
        let a = i8t(&[2, 3], 0.5, 1);
        let b = i8t(&[3], 0.5, 1);
        let p = add_params((0.5, 1), (0.5, 1), (1.0, 0), Clamp::NONE);
        assert!(check_add(&p, &[a, b], &i8t(&[2, 3], 1.0, 0)).is_ok());
        assert!(check_add(&p, &[a, b], &i8t(&[3, 2], 1.0, 0)).is_err());
        assert!(check_add(&p, &[a, b], &i8t(&[1, 1, 2, 3], 1.0, 0)).is_ok());
        assert!(check_add(&p, &[a, b], &i8t(&[2, 2, 3], 1.0, 0)).is_err());
        assert!(check_add(&p, &[a, b], &i8t(&[3], 1.0, 0)).is_err());
        assert!(check_add(&p, &[a, i8t(&[2], 0.5, 1)], &i8t(&[2, 3], 1.0, 0)).is_err());
        assert!(check_add(&p, &[a], &i8t(&[2, 3], 1.0, 0)).is_err());
        assert!(
            check_add(&p, &[a, b], &i8t(&[2, 3], 1.0, 5)).is_err(),
            "zp mismatch"
        );
        assert!(check_add(&p, &[a, f32t(&[3])], &i8t(&[2, 3], 1.0, 0)).is_err());
        let mut bad = p;
        bad.output.shift = 1;
        assert!(check_add(&bad, &[a, b], &i8t(&[2, 3], 1.0, 0)).is_err());
        let mut bad = p;
        bad.clamp.min_q = 10;
        bad.clamp.max_q = 9;
        assert!(check_add(&bad, &[a, b], &i8t(&[2, 3], 1.0, 0)).is_err());
        let m = mul_params((0.5, 1), (0.5, 1), (1e-12, 0), Clamp::NONE);
        assert!(
            check_mul(&m, &[a, b], &i8t(&[2, 3], 1e-12, 0)).is_err(),
            "huge multiplier"
        );
        let f = add_params((0.0, 0), (0.0, 0), (0.0, 0), f32_clamp(f32::NAN, 1.0));
        assert!(check_add(&f, &[f32t(&[2]), f32t(&[2])], &f32t(&[2])).is_err());
    }

    /// Random shapes that broadcast: `out` dims, and each input drops leading dims and
    /// sets some to 1.
    fn random_case(rng: &mut Rng) -> (std::vec::Vec<u32>, std::vec::Vec<u32>, std::vec::Vec<u32>) {
        let r = rng.range(0, 6) as usize;
        let out: std::vec::Vec<u32> = (0..r).map(|_| rng.range(1, 4) as u32).collect();
        let mk = |rng: &mut Rng| {
            let drop = rng.range(0, r as i64) as usize;
            out[drop..]
                .iter()
                .map(|&d| if rng.range(0, 2) == 0 { 1 } else { d })
                .collect::<std::vec::Vec<u32>>()
        };
        let a = mk(rng);
        let b = mk(rng);
        let real_out = broadcast_shape(&shape(&a), &shape(&b))
            .unwrap()
            .dims()
            .to_vec();
        (a, b, real_out)
    }

    /// TFLM's AddFunc written out literally.
    fn add_func(p: &AddParams, x: i8, y: i8) -> i8 {
        let v1 = p.input1_offset + x as i32;
        let v2 = p.input2_offset + y as i32;
        let s1 = v1 * (1 << p.left_shift);
        let s2 = v2 * (1 << p.left_shift);
        let c1 = multiply_by_quantized_multiplier_smaller_than_one_exp(
            s1,
            p.input1.multiplier,
            p.input1.shift,
        );
        let c2 = multiply_by_quantized_multiplier_smaller_than_one_exp(
            s2,
            p.input2.multiplier,
            p.input2.shift,
        );
        let raw = multiply_by_quantized_multiplier_smaller_than_one_exp(
            c1 + c2,
            p.output.multiplier,
            p.output.shift,
        ) + p.output_offset;
        raw.max(p.clamp.min_q).min(p.clamp.max_q) as i8
    }

    fn mul_func(p: &MulParams, x: i8, y: i8) -> i8 {
        let v = (p.input1_offset + x as i32) * (p.input2_offset + y as i32);
        let raw = p.output_offset
            + multiply_by_quantized_multiplier(v, p.output.multiplier, p.output.shift);
        raw.max(p.clamp.min_q).min(p.clamp.max_q) as i8
    }

    #[test]
    fn property_int8_broadcast_matches_reference() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for case in 0..600 {
            let (da, db, dout) = random_case(&mut rng);
            let s1 = 0.001 + rng.unit() as f32;
            let s2 = 0.001 + rng.unit() as f32;
            let so = 0.001 + 2.0 * rng.unit() as f32;
            let (z1, z2, zo) = (
                rng.range(-128, 127) as i32,
                rng.range(-128, 127) as i32,
                rng.range(-128, 127) as i32,
            );
            let lo = rng.range(-128, 0) as i32;
            let hi = rng.range(lo as i64, 127) as i32;
            let clamp = Clamp {
                min_q: lo,
                max_q: hi,
                ..Clamp::NONE
            };
            let (a, b, o) = (i8t(&da, s1, z1), i8t(&db, s2, z2), i8t(&dout, so, zo));
            let xa = rng.bytes(num(&a));
            let xb = rng.bytes(num(&b));
            let n = num(&o);

            let p = add_params((s1, z1), (s2, z2), (so, zo), clamp);
            check_add(&p, &[a, b], &o).unwrap();
            let got = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut [], Isa::Portable)
            });
            let m = mul_params((s1, z1), (s2, z2), (so, zo), clamp);
            check_mul(&m, &[a, b], &o).unwrap();
            let got_m = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| eval_mul(&m, i, out));
            for k in 0..n {
                let idx = unravel(k, &dout);
                let x = xa[broadcast_offset(&idx, &da)] as i8;
                let y = xb[broadcast_offset(&idx, &db)] as i8;
                assert_eq!(got[k] as i8, add_func(&p, x, y), "add case {case} elem {k}");
                assert_eq!(
                    got_m[k] as i8,
                    mul_func(&m, x, y),
                    "mul case {case} elem {k}"
                );
                // And both are within one step of the real-valued result.
                let real = s1 as f64 * (x as i32 - z1) as f64 + s2 as f64 * (y as i32 - z2) as f64;
                let want = ((real / so as f64).round() + zo as f64).clamp(lo as f64, hi as f64);
                assert!(
                    (got[k] as i8 as f64 - want).abs() <= 1.0,
                    "add accuracy case {case}"
                );
                let real = s1 as f64 * (x as i32 - z1) as f64 * s2 as f64 * (y as i32 - z2) as f64;
                let want = ((real / so as f64).round() + zo as f64).clamp(lo as f64, hi as f64);
                assert!(
                    (got_m[k] as i8 as f64 - want).abs() <= 1.0,
                    "mul accuracy case {case}"
                );
            }
        }
    }

    #[test]
    fn property_f32_broadcast_matches_reference() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for case in 0..400 {
            let (da, db, dout) = random_case(&mut rng);
            let (a, b, o) = (f32t(&da), f32t(&db), f32t(&dout));
            let xa = rng.f32s(num(&a) / 4, -10.0, 10.0);
            let xb = rng.f32s(num(&b) / 4, -10.0, 10.0);
            let clamp = f32_clamp(-50.0, 40.0);
            let p = add_params((0.0, 0), (0.0, 0), (0.0, 0), clamp);
            let m = mul_params((0.0, 0), (0.0, 0), (0.0, 0), clamp);
            check_add(&p, &[a, b], &o).unwrap();
            check_mul(&m, &[a, b], &o).unwrap();
            let got = to_f32s(&run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut [], Isa::Portable)
            }));
            let got_m = to_f32s(&run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_mul(&m, i, out)
            }));
            let (fa, fb) = (to_f32s(&xa), to_f32s(&xb));
            for k in 0..got.len() {
                let idx = unravel(k, &dout);
                let x = fa[broadcast_offset(&idx, &da)];
                let y = fb[broadcast_offset(&idx, &db)];
                assert_eq!(
                    got[k].to_bits(),
                    (x + y).clamp(-50.0, 40.0).to_bits(),
                    "case {case}"
                );
                assert_eq!(
                    got_m[k].to_bits(),
                    (x * y).clamp(-50.0, 40.0).to_bits(),
                    "case {case}"
                );
            }
        }
    }

    #[test]
    fn eval_never_panics_on_checked_extremes() {
        let mut rng = Rng(7);
        for _ in 0..300 {
            let (da, db, dout) = random_case(&mut rng);
            let (a, b, o) = (i8t(&da, 1.0, 0), i8t(&db, 1.0, 0), i8t(&dout, 1.0, 0));
            let mut p = add_params((1.0, 0), (1.0, 0), (1.0, 0), Clamp::NONE);
            p.left_shift = rng.range(0, 23) as i32;
            for m in [&mut p.input1, &mut p.input2, &mut p.output] {
                m.multiplier = rng.range(0, i32::MAX as i64) as i32;
                m.shift = rng.range(-31, 0) as i32;
            }
            check_add(&p, &[a, b], &o).unwrap();
            let (xa, xb) = (rng.bytes(num(&a)), rng.bytes(num(&b)));
            run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut [], Isa::Portable)
            });
            let mut m = mul_params((1.0, 0), (1.0, 0), (1.0, 0), Clamp::NONE);
            m.output.multiplier = rng.range(0, i32::MAX as i64) as i32;
            m.output.shift = rng.range(-31, 30) as i32;
            check_mul(&m, &[a, b], &o).unwrap();
            run(&[(&a, &xa), (&b, &xb)], &o, |i, out| eval_mul(&m, i, out));
        }
    }

    #[test]
    fn same_shape_add_equals_the_broadcast_path() {
        // eval_add's loop for two inputs of the output's shape against the broadcast
        // plan's single run, with and without the rescale tables, on random bytes.
        let mut rng = Rng(0x5a3e_5a3e);
        for (dims, lo, hi) in [
            ([1u32, 32, 32, 4], -128, 127),
            ([1, 8, 8, 16], 0, 127),
            ([1, 3, 5, 7], -128, 127),
        ] {
            let (a, b, o) = (
                i8t(&dims, 0.05, -3),
                i8t(&dims, 0.02, 7),
                i8t(&dims, 0.06, 1),
            );
            let clamp = Clamp {
                min_q: lo,
                max_q: hi,
                ..Clamp::NONE
            };
            let p = add_params((0.05, -3), (0.02, 7), (0.06, 1), clamp);
            check_add(&p, &[a, b], &o).unwrap();
            let (xa, xb) = (rng.bytes(num(&a)), rng.bytes(num(&b)));
            let mut s1 = std::vec![0u8; add_scratch_bytes(&o)];
            let mut s2 = s1.clone();
            let fast = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut s1, Isa::Portable)
            });
            let plan = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add_broadcast(&p, i, out, &mut s2, Isa::Portable)
            });
            assert_eq!(fast, plan, "{dims:?}");
            assert_eq!(s1, s2, "same tables");
        }
    }

    #[test]
    fn add_tables_match_direct_rescale() {
        let mut rng = Rng(0x5eed_add);
        for (da, db) in [
            ([1u32, 32, 32, 4], [1u32, 32, 32, 4]),
            ([1, 16, 16, 8], [1, 1, 1, 8]),
            ([1, 1, 1, 8], [1, 16, 16, 8]),
        ] {
            let dout = [1u32, da[1].max(db[1]), da[2].max(db[2]), da[3].max(db[3])];
            let (a, b) = (i8t(&da, 0.05, -3), i8t(&db, 0.02, 7));
            let o = i8t(&dout, 0.06, 1);
            let (xa, xb) = (rng.bytes(num(&a)), rng.bytes(num(&b)));
            let p = add_params((0.05, -3), (0.02, 7), (0.06, 1), Clamp::NONE);
            check_add(&p, &[a, b], &o).unwrap();
            assert!(
                add_scratch_bytes(&o) == ADD_LUT_BYTES,
                "large enough for tables"
            );
            let direct = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut [], Isa::Portable)
            });
            let mut scratch = [0u8; ADD_LUT_BYTES];
            let tabled = run(&[(&a, &xa), (&b, &xb)], &o, |i, out| {
                eval_add(&p, i, out, &mut scratch, Isa::Portable)
            });
            assert_eq!(direct, tabled);
            assert_ne!(scratch, [0u8; ADD_LUT_BYTES], "the table path ran");
            for k in 0..num(&o) {
                let idx = unravel(k, &dout);
                let x = xa[broadcast_offset(&idx, &da)] as i8;
                let y = xb[broadcast_offset(&idx, &db)] as i8;
                assert_eq!(tabled[k] as i8, add_func(&p, x, y));
            }
        }
    }

    /// An int8 ADD large enough for the tables: shapes (same or broadcast), scales, zero
    /// points, clamp, inputs.
    struct AddCase {
        p: AddParams,
        a: TensorDef<'static>,
        b: TensorDef<'static>,
        o: TensorDef<'static>,
        xa: std::vec::Vec<u8>,
        xb: std::vec::Vec<u8>,
    }

    fn add_case(r: &mut crate::kernels::testutil::Rng) -> Option<AddCase> {
        let (h, w, c) = (
            r.usize(4, 20) as u32,
            r.usize(4, 20) as u32,
            r.usize(1, 70) as u32,
        );
        let full = [1, h, w, c];
        let (da, db) = match r.range(0, 3) {
            0 => (full, [1, 1, 1, c]),
            1 => ([1, 1, w, c], full),
            _ => (full, full),
        };
        let dout = [1, h, w, c];
        let sc = |r: &mut crate::kernels::testutil::Rng| 0.005 + 0.3 * r.unit().abs();
        let zp = |r: &mut crate::kernels::testutil::Rng| r.range(-128, 127) as i32;
        let (qa, qb, qo) = ((sc(r), zp(r)), (sc(r), zp(r)), (sc(r), zp(r)));
        let clamp = if r.bool() {
            Clamp::NONE
        } else {
            let (x, y) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
            Clamp {
                min_q: x.min(y),
                max_q: x.max(y),
                ..Clamp::NONE
            }
        };
        let (a, b, o) = (
            i8t(&da, qa.0, qa.1),
            i8t(&db, qb.0, qb.1),
            i8t(&dout, qo.0, qo.1),
        );
        let p = add_params(qa, qb, qo, clamp);
        check_add(&p, &[a, b], &o).ok()?;
        if add_scratch_bytes(&o) != ADD_LUT_BYTES {
            return None;
        }
        let (xa, xb) = (r.bytes(num(&a)), r.bytes(num(&b)));
        Some(AddCase { p, a, b, o, xa, xb })
    }

    fn add_run(c: &AddCase, isa: Isa) -> std::vec::Vec<u8> {
        let mut scratch = [0u8; ADD_LUT_BYTES];
        run(&[(&c.a, &c.xa), (&c.b, &c.xb)], &c.o, |i, out| {
            eval_add(&c.p, i, out, &mut scratch, isa)
        })
    }

    #[cfg(target_arch = "x86_64")]
    crate::kernels::testutil::specialised_matches_portable!(
        /// int8 ADD on the AVX2 epilogue against the portable loop.
        avx2_add_matches_portable {
            seed: 61,
            cases: 400,
            generate: add_case,
            portable: |c: &AddCase| add_run(c, Isa::Portable),
            specialised: |c: &AddCase| add_run(c, crate::kernels::testutil::host_isa(Isa::Avx2)),
        }
    );

    #[cfg(target_arch = "aarch64")]
    crate::kernels::testutil::specialised_matches_portable!(
        /// int8 ADD on the NEON epilogue against the portable loop.
        neon_add_matches_portable {
            seed: 61,
            cases: 400,
            generate: add_case,
            portable: |c: &AddCase| add_run(c, Isa::Portable),
            specialised: |c: &AddCase| add_run(c, crate::kernels::testutil::host_isa(Isa::Neon)),
        }
    );
}
