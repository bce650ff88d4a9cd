//! Test support shared by the kernel modules: a seeded generator, tensors, random
//! parameters, a runner over owned buffers and [`specialised_matches_portable!`].

pub(crate) mod simple;

extern crate std;
use std::prelude::rust_2021::*;
use std::vec;

use edgeflow_format::graph::{Bytes, Clamp, DType, Location, Quant, Requant, Shape, TensorDef};

use crate::kernels::{TensorIn, TensorOut};

/// A tiny seeded xorshift64* generator.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    pub(crate) fn usize(&mut self, lo: usize, hi: usize) -> usize {
        self.range(lo as i64, hi as i64) as usize
    }
    pub(crate) fn bool(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u32() as u8).collect()
    }
    /// f32 in [-1, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
    pub(crate) fn f32_bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).flat_map(|_| self.unit().to_le_bytes()).collect()
    }
    /// A requantization multiplier like QuantizeMultiplier produces (or, rarely, any i32).
    /// Per-channel multipliers for `n` channels: half of the time all in the domain
    /// of the single-shift epilogue (right shifts only, some zero multipliers with
    /// shift 0), otherwise [`Rng::multiplier`]s.
    pub(crate) fn multipliers(&mut self, n: usize) -> Vec<(i32, i32)> {
        let fast = self.bool();
        (0..n)
            .map(|_| {
                let (m, s) = self.multiplier();
                if !fast {
                    (m, s)
                } else if self.range(0, 10) == 0 {
                    (0, 0)
                } else {
                    (m, s.min(-1))
                }
            })
            .collect()
    }

    pub(crate) fn multiplier(&mut self) -> (i32, i32) {
        if self.range(0, 20) == 0 {
            return ((self.u32() >> 1) as i32, self.range(-31, 30) as i32);
        }
        let m = self.range(1 << 30, (1i64 << 31) - 1) as i32;
        (m, self.range(-20, 3) as i32)
    }
}

pub(crate) fn tensor(dtype: DType, dims: &[u32], scale: f32, zp: i32) -> TensorDef<'static> {
    TensorDef {
        id: 0,
        dtype,
        shape: Shape::new(dims).expect("rank"),
        quant: if dtype == DType::I8 {
            Some(Quant {
                scale,
                zero_point: zp,
                per_channel: None,
            })
        } else {
            None
        },
        location: Location::Arena { offset: 0 },
    }
}

pub(crate) fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A u16 parameter value for mutation tests: mostly small, sometimes extreme.
pub(crate) fn fuzz_u16(r: &mut Rng) -> u16 {
    match r.range(0, 5) {
        0 => 0,
        1 => 65535,
        2 => r.u32() as u16,
        _ => r.range(0, 4) as u16,
    }
}

/// Nudges one dimension of a shape by -2..=+2 (kept >= 1).
pub(crate) fn fuzz_dims(r: &mut Rng, t: &mut TensorDef<'_>) {
    let rank = t.shape.rank as usize;
    if rank == 0 {
        return;
    }
    let d = r.usize(0, rank - 1);
    let v = t.shape.dims[d] as i64 + r.range(-2, 2);
    t.shape.dims[d] = v.max(1) as u32;
}

/// Random bytes for every tensor, sized by its (possibly mutated) description.
pub(crate) fn fuzz_data(r: &mut Rng, defs: &[TensorDef<'_>]) -> Vec<Vec<u8>> {
    defs.iter()
        .map(|d| r.bytes(d.shape.num_elements().unwrap() * d.dtype.size()))
        .collect()
}

/// A random requantization record (lengths and offsets not necessarily consistent).
pub(crate) fn fuzz_requant(r: &mut Rng, n: usize, in_zp: i32, out_zp: i32) -> Requant<'static> {
    let len = match r.range(0, 3) {
        0 => 1,
        1 => n + 1,
        _ => n,
    };
    let mults: Vec<(i32, i32)> = (0..len)
        .map(|_| (r.u32() as i32, r.range(-64, 64) as i32))
        .collect();
    let mut rq = requant(in_zp, out_zp, &mults);
    if r.range(0, 5) == 0 {
        rq.input_offset = r.u32() as i32;
    }
    rq
}

pub(crate) fn fuzz_clamp(r: &mut Rng) -> Clamp {
    Clamp {
        min_q: r.range(-300, 300) as i32,
        max_q: r.range(-300, 300) as i32,
        min_f: if r.bool() { f32::NAN } else { r.unit() },
        max_f: if r.bool() { f32::INFINITY } else { r.unit() },
    }
}

/// Leaks a byte vector (tests only) so it can back `Bytes<'static>`.
pub(crate) fn leak(v: Vec<u8>) -> &'static [u8] {
    Box::leak(v.into_boxed_slice())
}

pub(crate) fn requant(input_zp: i32, output_zp: i32, mults: &[(i32, i32)]) -> Requant<'static> {
    let m: Vec<i32> = mults.iter().map(|x| x.0).collect();
    let s: Vec<i32> = mults.iter().map(|x| x.1).collect();
    Requant {
        input_offset: -input_zp,
        output_offset: output_zp,
        multipliers: Bytes(leak(i32_bytes(&m))),
        shifts: Bytes(leak(i32_bytes(&s))),
    }
}

pub(crate) fn random_clamp_q(r: &mut Rng) -> Clamp {
    let (a, b) = (r.range(-128, 127) as i32, r.range(-128, 127) as i32);
    let (lo, hi) = if r.range(0, 2) == 0 {
        (-128, 127)
    } else {
        (a.min(b), a.max(b))
    };
    Clamp {
        min_q: lo,
        max_q: hi,
        ..Clamp::NONE
    }
}

pub(crate) fn random_clamp_f(r: &mut Rng) -> Clamp {
    match r.range(0, 3) {
        0 => Clamp::NONE,
        1 => Clamp {
            min_f: 0.0,
            ..Clamp::NONE
        },
        2 => Clamp {
            min_f: 0.0,
            max_f: 0.5,
            ..Clamp::NONE
        },
        _ => Clamp {
            min_f: -0.25,
            max_f: 0.25,
            ..Clamp::NONE
        },
    }
}

/// Runs a kernel's `eval` on owned buffers.
pub(crate) fn run<F>(defs: &[TensorDef<'_>], data: &[Vec<u8>], out: &TensorDef<'_>, f: F) -> Vec<u8>
where
    F: FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>),
{
    let ins: Vec<TensorIn<'_, '_>> = defs
        .iter()
        .zip(data)
        .map(|(d, b)| TensorIn { def: d, data: b })
        .collect();
    let n = out.shape.num_elements().expect("size") * out.dtype.size();
    // Poison the output so unwritten elements show up.
    let mut o = vec![0xA5u8; n];
    f(
        &ins,
        TensorOut {
            def: out,
            data: &mut o,
        },
    );
    o
}

/// One test per specialisation: checks a specialised kernel (the packed 16-bit kernels of
/// [`crate::kernels::arch::arm_dsp`], on the DSP instructions where the target has them)
/// against its portable twin in [`crate::kernels::generic`] on `cases` generated inputs.
///
/// `generate(&mut Rng) -> Option<Case>` draws a case (`None`: draw again; a generator
/// that keeps returning `None` fails the test); `portable(&Case)` and
/// `specialised(&Case)` compute the results compared with `assert_eq!`.
macro_rules! specialised_matches_portable {
    ($(#[$m:meta])* $name:ident {
        seed: $seed:expr,
        cases: $n:expr,
        generate: $gen:expr,
        portable: $portable:expr,
        specialised: $special:expr $(,)?
    }) => {
        $(#[$m])*
        #[test]
        fn $name() {
            let mut rng = $crate::kernels::testutil::Rng::new($seed);
            let (mut done, mut drawn) = (0usize, 0usize);
            while done < $n {
                drawn += 1;
                assert!(drawn <= 100 * $n, "the generator rejected too many cases");
                let Some(case) = ($gen)(&mut rng) else {
                    continue;
                };
                let want = ($portable)(&case);
                let got = ($special)(&case);
                assert_eq!(got, want, "case {done}: the specialisation differs from the portable kernel");
                done += 1;
            }
        }
    };
}
pub(crate) use specialised_matches_portable;

/// `isa` if this machine runs it; otherwise prints why the test checks nothing more than
/// the portable kernels and returns [`Isa::Portable`].
pub(crate) fn host_isa(isa: crate::kernels::arch::Isa) -> crate::kernels::arch::Isa {
    if isa.runs_here() {
        isa
    } else {
        std::println!("SKIPPED: this CPU does not run {isa:?}; checking the portable kernels only");
        crate::kernels::arch::Isa::Portable
    }
}

/// Runs `op` on [`crate::kernels::eval_host`] with its constant weights (inputs 1 and 2)
/// packed by [`crate::kernels::pack`], on `threads` threads. When `must_pack` and this
/// machine has packed kernels (`packed::Packing::detect`), packing must have happened,
/// so that a test comparing this with the portable kernels cannot silently compare the
/// portable kernels with themselves; otherwise prints that the packed path was skipped.
pub(crate) fn run_packed(
    op: &edgeflow_format::graph::Op<'_>,
    defs: &[TensorDef<'_>],
    data: &[Vec<u8>],
    out: &TensorDef<'_>,
    threads: usize,
    must_pack: bool,
) -> Vec<u8> {
    let sb = crate::kernels::scratch_bytes(op, defs, out);
    crate::kernels::check(op, defs, out, sb).expect("check");
    let consts: Vec<Option<&[u8]>> = data
        .iter()
        .enumerate()
        .map(|(i, d)| (i > 0).then_some(&d[..]))
        .collect();
    let packed = crate::kernels::pack(op, defs, &consts, out);
    let can_pack = crate::kernels::packed::Packing::detect().is_some();
    if must_pack && can_pack {
        assert!(packed.is_some(), "the op was not packed");
    } else if packed.is_none() {
        std::println!("SKIPPED: no packed kernels on this machine (or op); unpacked path");
    }
    let mut scratch = vec![0x5Au8; sb];
    let mut work = Vec::new();
    run(defs, data, out, |i, o| {
        crate::kernels::eval_host(op, packed.as_ref(), i, o, &mut scratch, &mut work, threads)
    })
}
