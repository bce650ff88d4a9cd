//! The run-time reader of the graph section and the section framing, written by hand.
//!
//! The writer (host, `std`) serialises [`GraphHeader`], [`OpDef`] and the section framing
//! with postcard through serde; this module reads the same bytes without serde: a small
//! [`Reader`] cursor and one function per record type, so a device links straight-line
//! decoding (edgeflow-format as a whole measured 4.0–5.3 KB of flash per model, BENCHMARKS.md
//! footprint section (d)) instead of serde's visitor machinery monomorphised for every
//! parameter struct (about 14.5 KB of code and a 1.3 KB stack frame on Cortex-M4).
//!
//! # Wire format (postcard 1.x, as the writer produces it)
//!
//! - `u8`, `i8`: one raw byte; `bool`: one byte, 0 or 1 (anything else is an error);
//! - `u16`, `u32`, `u64`, `usize` (lengths): unsigned LEB128 varint, at most
//!   `ceil(bits / 7)` bytes, the last allowed byte holding no bits past the type's width;
//!   non-minimal encodings (`0x80 0x00` for 0) are accepted, as postcard accepts them;
//! - `i32`: zigzag (`(n >> 1) ^ -(n & 1)`) over a `u32` varint;
//! - `f32`: four little-endian bytes (IEEE-754 bits);
//! - `Option<T>`: a byte 0 (None) or 1 (Some, then `T`);
//! - enums: the variant index as a `u32` varint, then the variant's fields;
//! - structs, tuples and arrays `[T; N]`: the fields in order, no length;
//! - byte strings, `&str` and `heapless::Vec`: a `usize` varint length, then the bytes /
//!   UTF-8 text / elements; a `heapless::Vec` longer than its capacity is an error.
//!
//! Equivalence with postcard's decoding (the same value for every record, and an error
//! exactly where postcard errs) is tested here on random primitives and on one record of
//! every op kind with every prefix and single-byte mutation, and in the workspace's
//! `tests/tests/op_record_reader.rs` on every TFLite conformance fixture and the MLPerf
//! Tiny artifacts, intact and mutated.
//!
//! # Adding an op
//!
//! A new [`Op`] variant gets the next tag in [`Op::tag`] (the compiler asks for it: the
//! match there is exhaustive), its name at that index of [`OP_NAMES`], a function here
//! reading its parameters (if it has new ones), one guarded arm in [`op_in`], and one op
//! in this module's test list `every_op` (which checks tags and names against the
//! variants); edgeflow-nn's build.rs lists it in the same order (a test there compares).
//! Never panics on any bytes.

use crate::graph::{
    ActivationParams, AddParams, Bytes, Clamp, ConcatParams, ConvParams, DType,
    FullyConnectedParams, GraphHeader, HardSwishParams, LeakyReluParams, Location, MeanParams,
    MulParams, Multiplier, Op, OpDef, PadParams, PerChannel, PoolParams, Quant, QuantizeParams,
    ReduceMaxParams, Requant, ResizeNearestParams, Scratch, Shape, SoftmaxParams,
    StridedSliceParams, TensorDef, TransposeParams, MAX_RANK,
};

/// A record did not decode: bytes ran out, a varint was too long, a tag, `Option` or
/// `bool` byte was out of range, a list was longer than its capacity, or a string was not
/// UTF-8. Callers turn it into an error that says which record (`BadOpRecord { position }`
/// and the like).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeError;

type R<T> = Result<T, DecodeError>;

/// A cursor over postcard-encoded bytes. Every read is checked; none panics.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// One raw byte (`u8`).
    pub fn u8(&mut self) -> R<u8> {
        let (&b, rest) = self.rest.split_first().ok_or(DecodeError)?;
        self.rest = rest;
        Ok(b)
    }

    /// `n` raw bytes, borrowed.
    pub fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(DecodeError)?;
        self.rest = rest;
        Ok(head)
    }

    /// An unsigned varint of a `BITS`-wide integer (16 or 32), as postcard reads it.
    ///
    /// The one-byte case (values below 128: most tags, ranks, dimensions, ids) is inlined
    /// at every call site; longer varints go to one out-of-line [`Reader::varint32_long`]
    /// for every width up to 32 bits, so a device does not carry the whole loop at each of
    /// the reader's call sites (BENCHMARKS.md, "Footprint: the parser").
    #[inline(always)]
    fn varint32<const BITS: u32>(&mut self) -> R<u32> {
        if let Some((&b, rest)) = self.rest.split_first() {
            // One byte with the continuation bit clear: valid for every width (a one-byte
            // varint is never the last allowed byte of a 16-, 32- or 64-bit one).
            if b & 0x80 == 0 {
                self.rest = rest;
                return Ok(u32::from(b));
            }
        }
        self.varint32_long(BITS.div_ceil(7), last_byte_max(BITS))
    }

    /// [`Reader::varint32`] past its one-byte case: at most `max_bytes` bytes, the last at
    /// most `last_max` (the bits a `BITS`-wide integer has left for it, so the value fits
    /// 32 bits). Precondition: the first byte has its continuation bit set (the caller
    /// returned a one-byte varint itself); the two-byte shortcut relies on it.
    #[inline(never)]
    fn varint32_long(&mut self, max_bytes: u32, last_max: u8) -> R<u32> {
        // Two bytes (values below 16,384: offsets, most dimensions) without the loop; a
        // two-byte varint is never the last allowed byte of a 16- or 32-bit one.
        if let Some((&[b0, b1], rest)) = self.rest.split_first_chunk::<2>() {
            if b1 & 0x80 == 0 {
                self.rest = rest;
                return Ok(u32::from(b0 & 0x7F) | u32::from(b1) << 7);
            }
        }
        let mut out = 0u32;
        let mut i = 0u32;
        while i < max_bytes {
            let b = self.u8()?;
            out |= u32::from(b & 0x7F).wrapping_shl(i.wrapping_mul(7));
            if b & 0x80 == 0 {
                if i.wrapping_add(1) == max_bytes && b > last_max {
                    return Err(DecodeError);
                }
                return Ok(out);
            }
            i = i.wrapping_add(1);
        }
        Err(DecodeError)
    }

    /// A 64-bit varint (postcard's `u64`, and `usize` on 64-bit hosts); out of line (the
    /// graph header's MAC count is the only one on a device).
    #[inline(never)]
    fn varint64(&mut self) -> R<u64> {
        let max_bytes = 64u32.div_ceil(7);
        let last_max = last_byte_max(64);
        let mut out = 0u64;
        let mut i = 0u32;
        while i < max_bytes {
            let b = self.u8()?;
            out |= u64::from(b & 0x7F).wrapping_shl(i.wrapping_mul(7));
            if b & 0x80 == 0 {
                if i.wrapping_add(1) == max_bytes && b > last_max {
                    return Err(DecodeError);
                }
                return Ok(out);
            }
            i = i.wrapping_add(1);
        }
        Err(DecodeError)
    }

    /// A `u16` (varint).
    pub fn u16(&mut self) -> R<u16> {
        self.varint32::<16>().map(|v| v as u16)
    }

    /// A `u32` (varint).
    pub fn u32(&mut self) -> R<u32> {
        self.varint32::<32>()
    }

    /// A `u64` (varint).
    pub fn u64(&mut self) -> R<u64> {
        self.varint64()
    }

    /// A length (`usize` varint of the target's pointer width, as postcard reads it).
    pub fn seq_len(&mut self) -> R<usize> {
        if usize::BITS <= 32 {
            self.varint32::<{ usize::BITS }>().map(|v| v as usize)
        } else {
            self.varint64().map(|v| v as usize)
        }
    }

    /// An `i32` (zigzag varint).
    pub fn i32(&mut self) -> R<i32> {
        let n = self.u32()?;
        Ok((n.wrapping_shr(1) as i32) ^ (n & 1).wrapping_neg() as i32)
    }

    /// An `f32` (four little-endian bytes).
    pub fn f32(&mut self) -> R<f32> {
        let b = self.take(4)?.first_chunk::<4>().ok_or(DecodeError)?;
        Ok(f32::from_le_bytes(*b))
    }

    /// A `bool` (one byte, 0 or 1).
    pub fn bool(&mut self) -> R<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError),
        }
    }

    /// An `Option` tag: `false` for None, `true` when a value follows.
    pub fn option(&mut self) -> R<bool> {
        self.bool()
    }

    /// A length-prefixed byte string, borrowed.
    pub fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.seq_len()?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string, borrowed.
    pub fn str(&mut self) -> R<&'a str> {
        core::str::from_utf8(self.bytes()?).map_err(|_| DecodeError)
    }

    /// An enum variant index.
    pub fn tag(&mut self) -> R<u32> {
        self.u32()
    }

    /// `[T; N]`, each element read by `f`.
    fn array<T: Copy + Default, const N: usize>(&mut self, f: fn(&mut Self) -> R<T>) -> R<[T; N]> {
        let mut a = [T::default(); N];
        for x in a.iter_mut() {
            *x = f(self)?;
        }
        Ok(a)
    }
}

/// The largest last byte of a varint of a `bits`-wide integer: ceil(bits / 7) bytes at
/// most, the last holding only the `bits % 7` top bits.
const fn last_byte_max(bits: u32) -> u8 {
    1u8.wrapping_shl(bits % 7).wrapping_sub(1)
}

/// A list of [`TensorDef`]s into `out` (cleared first; its capacity is `out`'s, a longer
/// list is an error). One copy for every list capacity (the `VecView` erases it) and never
/// inlined: inlined, LLVM unrolled the loop for each capacity (4 graph inputs and outputs,
/// 8 op inputs, 1 op output) with a `tensor` call and a record copy per element.
#[inline(never)]
fn tensors_into<'a>(r: &mut Reader<'a>, out: &mut heapless::vec::VecView<TensorDef<'a>>) -> R<()> {
    out.clear();
    let n = r.seq_len()?;
    for _ in 0..n {
        out.push(tensor(r)?).map_err(|_| DecodeError)?;
    }
    Ok(())
}

/// One section of the artifact body: `(kind: u16, data: bytes)`; returns the kind, the
/// data and the bytes after the section.
pub fn section(bytes: &[u8]) -> R<(u16, &[u8], &[u8])> {
    let mut r = Reader::new(bytes);
    let kind = r.u16()?;
    let data = r.bytes()?;
    Ok((kind, data, r.rest()))
}

/// The [`GraphHeader`] at the start of the graph section; returns it and the op records
/// that follow.
pub fn graph_header(bytes: &[u8]) -> R<(GraphHeader<'_>, &[u8])> {
    let mut r = Reader::new(bytes);
    let arena_bytes = r.u32()?;
    let arena_align = r.u32()?;
    let op_count = r.u32()?;
    let mut inputs = heapless::Vec::new();
    tensors_into(&mut r, inputs.as_mut_view())?;
    let mut outputs = heapless::Vec::new();
    tensors_into(&mut r, outputs.as_mut_view())?;
    let macs = r.u64()?;
    let name = r.str()?;
    let h = GraphHeader {
        arena_bytes,
        arena_align,
        op_count,
        inputs,
        outputs,
        macs,
        name,
    };
    Ok((h, r.rest()))
}

/// The ops a reader decodes, as a bit mask over [`Op::tag`]: a build that links only some
/// kernels (edgeflow-nn's `EDGEFLOW_NN_OPS`) decodes only their parameters, and the
/// decoding of the others is not linked either. A record of an op outside the set is a
/// [`DecodeError`]; [`record_op`] tells the caller which op it was.
pub trait OpSet {
    /// Bit `t` set: the op with tag `t` is decoded.
    const TAGS: u64;
}

/// Every op.
#[derive(Clone, Copy, Debug)]
pub struct AllOps;

impl OpSet for AllOps {
    const TAGS: u64 = u64::MAX;
}

// The op-name list, shared with edgeflow-nn's build.rs (which links kernels by name).
include!("op_names.rs");

#[inline(always)]
fn decoded<S: OpSet>(tag: u32) -> bool {
    tag < 64 && S::TAGS & 1u64.wrapping_shl(tag) != 0
}

/// The source index and op tag at the start of an op record (for the error about a
/// record [`op_def_into_in`] refused because its op is outside the reader's [`OpSet`]).
pub fn record_op(bytes: &[u8]) -> R<(u32, u32)> {
    let mut r = Reader::new(bytes);
    Ok((r.u32()?, r.tag()?))
}

/// Decodes the op record at the start of `bytes` into `out` (reusing its storage, so a
/// device keeps one record on the stack) and returns the bytes after it. On error `out`
/// holds a partly decoded record; do not use it.
pub fn op_def_into<'a>(bytes: &'a [u8], out: &mut OpDef<'a>) -> R<&'a [u8]> {
    op_def_into_in::<AllOps>(bytes, out)
}

/// [`op_def_into`] for the ops of `S` only (others are a [`DecodeError`]).
pub fn op_def_into_in<'a, S: OpSet>(bytes: &'a [u8], out: &mut OpDef<'a>) -> R<&'a [u8]> {
    let mut r = Reader::new(bytes);
    out.source_index = r.u32()?;
    out.op = op_in::<S>(&mut r)?;
    tensors_into(&mut r, out.inputs.as_mut_view())?;
    tensors_into(&mut r, out.outputs.as_mut_view())?;
    out.scratch = if r.option()? {
        Some(Scratch {
            offset: r.u32()?,
            len: r.u32()?,
        })
    } else {
        None
    };
    Ok(r.rest())
}

/// Decodes the op record at the start of `bytes`; returns it and the bytes after it.
pub fn op_def(bytes: &[u8]) -> R<(OpDef<'_>, &[u8])> {
    let mut d = OpDef::empty();
    let rest = op_def_into(bytes, &mut d)?;
    Ok((d, rest))
}

/// A [`TensorDef`].
pub fn tensor<'a>(r: &mut Reader<'a>) -> R<TensorDef<'a>> {
    let id = r.u32()?;
    let dtype = match r.tag()? {
        0 => DType::I8,
        1 => DType::F32,
        2 => DType::I32,
        _ => return Err(DecodeError),
    };
    let shape = Shape {
        rank: r.u8()?,
        dims: r.array::<u32, MAX_RANK>(Reader::u32)?,
    };
    let quant = if r.option()? {
        Some(Quant {
            scale: r.f32()?,
            zero_point: r.i32()?,
            per_channel: if r.option()? {
                Some(PerChannel {
                    axis: r.u8()?,
                    scales: Bytes(r.bytes()?),
                })
            } else {
                None
            },
        })
    } else {
        None
    };
    let location = match r.tag()? {
        0 => Location::Arena { offset: r.u32()? },
        1 => Location::Const { offset: r.u32()? },
        _ => return Err(DecodeError),
    };
    Ok(TensorDef {
        id,
        dtype,
        shape,
        quant,
        location,
    })
}

/// An [`Op`]: its tag ([`Op::tag`]), then its parameters.
pub fn op<'a>(r: &mut Reader<'a>) -> R<Op<'a>> {
    op_in::<AllOps>(r)
}

/// [`op`] for the ops of `S` only: the arms of the others are removed at compile time.
pub fn op_in<'a, S: OpSet>(r: &mut Reader<'a>) -> R<Op<'a>> {
    // An arm whose guard is false for `S` is removed at compile time.
    Ok(match r.tag()? {
        0 if decoded::<S>(0) => Op::Conv2d(conv(r)?),
        1 if decoded::<S>(1) => Op::DepthwiseConv2d(conv(r)?),
        2 if decoded::<S>(2) => Op::FullyConnected(FullyConnectedParams {
            clamp: clamp(r)?,
            requant: requant(r)?,
        }),
        3 if decoded::<S>(3) => Op::AveragePool2d(pool(r)?),
        4 if decoded::<S>(4) => Op::MaxPool2d(pool(r)?),
        5 if decoded::<S>(5) => Op::Add(AddParams {
            left_shift: r.i32()?,
            input1_offset: r.i32()?,
            input2_offset: r.i32()?,
            output_offset: r.i32()?,
            input1: multiplier(r)?,
            input2: multiplier(r)?,
            output: multiplier(r)?,
            clamp: clamp(r)?,
        }),
        6 if decoded::<S>(6) => Op::Mul(MulParams {
            input1_offset: r.i32()?,
            input2_offset: r.i32()?,
            output_offset: r.i32()?,
            output: multiplier(r)?,
            clamp: clamp(r)?,
        }),
        7 if decoded::<S>(7) => Op::Reshape,
        8 if decoded::<S>(8) => Op::Softmax(SoftmaxParams {
            beta: r.f32()?,
            input_multiplier: r.i32()?,
            input_left_shift: r.i32()?,
            diff_min: r.i32()?,
        }),
        9 if decoded::<S>(9) => Op::Quantize(QuantizeParams {
            requant: multiplier(r)?,
            input_zero_point: r.i32()?,
            output_zero_point: r.i32()?,
        }),
        10 if decoded::<S>(10) => Op::Dequantize,
        11 if decoded::<S>(11) => Op::Concatenation(ConcatParams {
            axis: r.u8()?,
            clamp: clamp(r)?,
        }),
        12 if decoded::<S>(12) => Op::Pad(PadParams {
            before: r.array(Reader::u32)?,
            after: r.array(Reader::u32)?,
        }),
        13 if decoded::<S>(13) => Op::Mean(MeanParams {
            axes_mask: r.u8()?,
            requant: multiplier(r)?,
            input_zero_point: r.i32()?,
            output_zero_point: r.i32()?,
            input_scale: r.f32()?,
            output_scale: r.f32()?,
            keep_dims: r.bool()?,
        }),
        14 if decoded::<S>(14) => Op::Logistic(activation(r)?),
        15 if decoded::<S>(15) => Op::Tanh(activation(r)?),
        16 if decoded::<S>(16) => Op::Transpose(TransposeParams {
            perm: r.array(Reader::u8)?,
        }),
        17 if decoded::<S>(17) => Op::StridedSlice(StridedSliceParams {
            begin: r.array(Reader::i32)?,
            stride: r.array(Reader::i32)?,
            count: r.array(Reader::u32)?,
        }),
        18 if decoded::<S>(18) => Op::LeakyRelu(LeakyReluParams {
            alpha: r.f32()?,
            input_zero_point: r.i32()?,
            output_zero_point: r.i32()?,
            identity: multiplier(r)?,
            alpha_q: multiplier(r)?,
        }),
        19 if decoded::<S>(19) => Op::HardSwish(HardSwishParams {
            input_zero_point: r.i32()?,
            output_zero_point: r.i32()?,
            reluish_multiplier: r.i32()?,
            reluish_exponent: r.i32()?,
            output_multiplier: r.i32()?,
            output_exponent: r.i32()?,
        }),
        20 if decoded::<S>(20) => Op::Maximum,
        21 if decoded::<S>(21) => Op::Minimum,
        22 if decoded::<S>(22) => Op::ReduceMax(ReduceMaxParams {
            axes_mask: r.u8()?,
            keep_dims: r.bool()?,
        }),
        23 if decoded::<S>(23) => Op::ResizeNearest(ResizeNearestParams {
            align_corners: r.bool()?,
            half_pixel_centers: r.bool()?,
        }),
        _ => return Err(DecodeError),
    })
}

impl<'a> OpDef<'a> {
    /// A record with no inputs or outputs (op RESHAPE, index 0): storage for
    /// [`op_def_into`].
    pub const fn empty() -> Self {
        OpDef {
            source_index: 0,
            op: Op::Reshape,
            inputs: heapless::Vec::new(),
            outputs: heapless::Vec::new(),
            scratch: None,
        }
    }
}

impl Op<'_> {
    /// The op's tag on the wire: its variant index (postcard's enum encoding), which
    /// [`op`] reads. Tags never change; a new op takes the next number.
    pub const fn tag(&self) -> u32 {
        match self {
            Op::Conv2d(_) => 0,
            Op::DepthwiseConv2d(_) => 1,
            Op::FullyConnected(_) => 2,
            Op::AveragePool2d(_) => 3,
            Op::MaxPool2d(_) => 4,
            Op::Add(_) => 5,
            Op::Mul(_) => 6,
            Op::Reshape => 7,
            Op::Softmax(_) => 8,
            Op::Quantize(_) => 9,
            Op::Dequantize => 10,
            Op::Concatenation(_) => 11,
            Op::Pad(_) => 12,
            Op::Mean(_) => 13,
            Op::Logistic(_) => 14,
            Op::Tanh(_) => 15,
            Op::Transpose(_) => 16,
            Op::StridedSlice(_) => 17,
            Op::LeakyRelu(_) => 18,
            Op::HardSwish(_) => 19,
            Op::Maximum => 20,
            Op::Minimum => 21,
            Op::ReduceMax(_) => 22,
            Op::ResizeNearest(_) => 23,
        }
    }
}

fn clamp(r: &mut Reader<'_>) -> R<Clamp> {
    Ok(Clamp {
        min_q: r.i32()?,
        max_q: r.i32()?,
        min_f: r.f32()?,
        max_f: r.f32()?,
    })
}

fn multiplier(r: &mut Reader<'_>) -> R<Multiplier> {
    Ok(Multiplier {
        multiplier: r.i32()?,
        shift: r.i32()?,
    })
}

fn requant<'a>(r: &mut Reader<'a>) -> R<Option<Requant<'a>>> {
    if !r.option()? {
        return Ok(None);
    }
    Ok(Some(Requant {
        input_offset: r.i32()?,
        output_offset: r.i32()?,
        multipliers: Bytes(r.bytes()?),
        shifts: Bytes(r.bytes()?),
    }))
}

fn pair(r: &mut Reader<'_>) -> R<[u16; 2]> {
    Ok([r.u16()?, r.u16()?])
}

fn conv<'a>(r: &mut Reader<'a>) -> R<ConvParams<'a>> {
    Ok(ConvParams {
        stride: pair(r)?,
        dilation: pair(r)?,
        pad: pair(r)?,
        depth_multiplier: r.u16()?,
        clamp: clamp(r)?,
        requant: requant(r)?,
    })
}

fn pool(r: &mut Reader<'_>) -> R<PoolParams> {
    Ok(PoolParams {
        filter: pair(r)?,
        stride: pair(r)?,
        pad: pair(r)?,
        clamp: clamp(r)?,
    })
}

fn activation(r: &mut Reader<'_>) -> R<ActivationParams> {
    Ok(ActivationParams {
        input_zero_point: r.i32()?,
        input_range_radius: r.i32()?,
        input_multiplier: r.i32()?,
        input_left_shift: r.i32()?,
    })
}

#[cfg(all(test, feature = "std"))]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    //! The hand-written reader against postcard's serde decoding of the same bytes: equal
    //! values (compared through `Debug`, so NaN payloads read from mutated bytes compare
    //! equal), the same rest, and an error exactly where postcard errs.
    use super::*;
    use crate::graph::{MAX_GRAPH_IO, MAX_OP_INPUTS};
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    fn same<T: core::fmt::Debug, E>(a: Result<(T, &[u8]), E>, b: R<(T, &[u8])>) -> bool {
        match (a, b) {
            (Ok((x, xr)), Ok((y, yr))) => format!("{x:?}") == format!("{y:?}") && xr == yr,
            (Err(_), Err(_)) => true,
            _ => false,
        }
    }

    fn show<T: core::fmt::Debug, E: core::fmt::Debug>(r: &Result<(T, &[u8]), E>) -> String {
        format!("{r:?}")
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    fn prim<'a, T: core::fmt::Debug>(
        b: &'a [u8],
        f: fn(&mut Reader<'a>) -> R<T>,
    ) -> R<(T, &'a [u8])> {
        let mut r = Reader::new(b);
        let v = f(&mut r)?;
        Ok((v, r.rest()))
    }

    #[test]
    fn primitives_agree_with_postcard_on_random_bytes() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..50_000 {
            let n = (rng.next() % 13) as usize;
            // Mostly continuation bytes, so long and overlong varints are common.
            let mut b: Vec<u8> = (0..n)
                .map(|_| {
                    let x = rng.next();
                    if x % 4 == 0 {
                        x as u8 & 0x7F
                    } else {
                        x as u8 | 0x80
                    }
                })
                .collect();
            b.push(rng.next() as u8);
            let b = &b[..];
            assert!(
                same(postcard::take_from_bytes::<u16>(b), prim(b, Reader::u16)),
                "u16 {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<u32>(b), prim(b, Reader::u32)),
                "u32 {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<u64>(b), prim(b, Reader::u64)),
                "u64 {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<i32>(b), prim(b, Reader::i32)),
                "i32 {b:02x?}"
            );
            assert!(
                same(
                    postcard::take_from_bytes::<usize>(b),
                    prim(b, Reader::seq_len)
                ),
                "usize {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<bool>(b), prim(b, Reader::bool)),
                "bool {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<f32>(b), prim(b, Reader::f32)),
                "f32 {b:02x?}"
            );
            assert!(
                same(
                    postcard::take_from_bytes::<&[u8]>(b),
                    prim(b, Reader::bytes)
                ),
                "bytes {b:02x?}"
            );
            assert!(
                same(postcard::take_from_bytes::<&str>(b), prim(b, Reader::str)),
                "str {b:02x?}"
            );
        }
        // Every boundary value round-trips.
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let enc = postcard::to_stdvec(&v).unwrap();
            assert_eq!(prim(&enc, Reader::u64).unwrap().0, v);
        }
        for v in [0i32, -1, 1, i32::MIN, i32::MAX, -64, 64] {
            let enc = postcard::to_stdvec(&v).unwrap();
            assert_eq!(prim(&enc, Reader::i32).unwrap().0, v);
        }
    }

    fn tensor_def(
        id: u32,
        i8: bool,
        konst: bool,
        per_channel: Option<&'static [u8]>,
    ) -> TensorDef<'static> {
        TensorDef {
            id,
            dtype: if i8 { DType::I8 } else { DType::F32 },
            shape: Shape::new(&[1, 300, 7, id + 1]).unwrap(),
            quant: i8.then_some(Quant {
                scale: 0.0123,
                zero_point: -17,
                per_channel: per_channel.map(|s| PerChannel {
                    axis: 3,
                    scales: Bytes(s),
                }),
            }),
            location: if konst {
                Location::Const {
                    offset: 70_000 + id,
                }
            } else {
                Location::Arena { offset: 16 * id }
            },
        }
    }

    fn clamp_q() -> Clamp {
        Clamp {
            min_q: -128,
            max_q: 5,
            min_f: f32::MIN,
            max_f: 6.0,
        }
    }

    /// One op of every kind, with parameters far from zero (multi-byte varints, negative
    /// zigzag values).
    fn every_op() -> Vec<Op<'static>> {
        static M: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
        let rq = Some(Requant {
            input_offset: 128,
            output_offset: -3,
            multipliers: Bytes(&M),
            shifts: Bytes(&M[..4]),
        });
        let conv = ConvParams {
            stride: [2, 300],
            dilation: [1, 1],
            pad: [0, 65_535],
            depth_multiplier: 1,
            clamp: clamp_q(),
            requant: rq,
        };
        let pool = PoolParams {
            filter: [3, 3],
            stride: [2, 2],
            pad: [1, 0],
            clamp: Clamp::NONE,
        };
        let m = Multiplier {
            multiplier: 1_073_741_824,
            shift: -7,
        };
        let act = ActivationParams {
            input_zero_point: -128,
            input_range_radius: 1000,
            input_multiplier: 2_000_000_000,
            input_left_shift: 3,
        };
        let ops = std::vec![
            Op::Conv2d(conv),
            Op::DepthwiseConv2d(ConvParams {
                depth_multiplier: 4,
                requant: None,
                ..conv
            }),
            Op::FullyConnected(FullyConnectedParams {
                clamp: clamp_q(),
                requant: rq
            }),
            Op::AveragePool2d(pool),
            Op::MaxPool2d(pool),
            Op::Add(AddParams {
                left_shift: 20,
                input1_offset: 128,
                input2_offset: -5,
                output_offset: 9,
                input1: m,
                input2: Multiplier {
                    multiplier: -1,
                    shift: 0
                },
                output: m,
                clamp: clamp_q(),
            }),
            Op::Mul(MulParams {
                input1_offset: 1,
                input2_offset: 2,
                output_offset: -3,
                output: m,
                clamp: clamp_q(),
            }),
            Op::Reshape,
            Op::Softmax(SoftmaxParams {
                beta: 1.0,
                input_multiplier: 1_500_000_000,
                input_left_shift: 26,
                diff_min: -3968,
            }),
            Op::Quantize(QuantizeParams {
                requant: m,
                input_zero_point: 3,
                output_zero_point: -4
            }),
            Op::Dequantize,
            Op::Concatenation(ConcatParams {
                axis: 3,
                clamp: Clamp::NONE
            }),
            Op::Pad(PadParams {
                before: [0, 1, 2, 3, 4, 5],
                after: [500, 0, 0, 0, 0, 1]
            }),
            Op::Mean(MeanParams {
                axes_mask: 0b110,
                requant: m,
                input_zero_point: -128,
                output_zero_point: 127,
                input_scale: 0.5,
                output_scale: 0.25,
                keep_dims: true,
            }),
            Op::Logistic(act),
            Op::Tanh(act),
            Op::Transpose(TransposeParams {
                perm: [0, 2, 1, 3, 4, 5]
            }),
            Op::StridedSlice(StridedSliceParams {
                begin: [0, 5, 299, 0, 0, 0],
                stride: [1, -1, 2, 1, 1, 1],
                count: [1, 3, 70, 1, 1, 1],
            }),
            Op::LeakyRelu(LeakyReluParams {
                alpha: 0.2,
                input_zero_point: -7,
                output_zero_point: 12,
                identity: m,
                alpha_q: Multiplier {
                    multiplier: 900_000_000,
                    shift: -2,
                },
            }),
            Op::HardSwish(HardSwishParams {
                input_zero_point: -128,
                output_zero_point: 5,
                reluish_multiplier: 32_000,
                reluish_exponent: 3,
                output_multiplier: -17_000,
                output_exponent: -1,
            }),
            Op::Maximum,
            Op::Minimum,
            Op::ReduceMax(ReduceMaxParams {
                axes_mask: 0b1010,
                keep_dims: true,
            }),
            Op::ResizeNearest(ResizeNearestParams {
                align_corners: false,
                half_pixel_centers: true,
            }),
        ];
        // Every tag once, in order: a new op must be added here (and to `op`).
        for (i, o) in ops.iter().enumerate() {
            assert_eq!(o.tag() as usize, i, "{}", o.name());
            assert_eq!(OP_NAMES[i], o.name());
        }
        assert_eq!(ops.len(), OP_NAMES.len());
        ops
    }

    fn records() -> Vec<Vec<u8>> {
        static SCALES: [u8; 8] = [0, 0, 128, 63, 0, 0, 0, 64];
        let mut out = Vec::new();
        for (i, op) in every_op().into_iter().enumerate() {
            let mut inputs = heapless::Vec::new();
            for k in 0..(i % MAX_OP_INPUTS + 1) as u32 {
                let pc = (k == 1).then_some(&SCALES[..]);
                inputs.push(tensor_def(k, i % 2 == 0, k == 1, pc)).unwrap();
            }
            let mut outputs = heapless::Vec::new();
            outputs.push(tensor_def(9, true, false, None)).unwrap();
            let d = OpDef {
                source_index: 1000 + i as u32,
                op,
                inputs,
                outputs,
                scratch: (i % 3 == 0).then_some(Scratch {
                    offset: 4096,
                    len: 300,
                }),
            };
            let enc = postcard::to_stdvec(&d).unwrap();
            {
                let (back, rest) = op_def(&enc).unwrap();
                assert_eq!(back, d);
                assert!(rest.is_empty());
            }
            out.push(enc);
        }
        out
    }

    /// Every prefix, and every byte replaced by a few values, of `bytes`: the two decoders
    /// agree on each.
    fn mutations_agree(
        bytes: &[u8],
        serde: impl Fn(&[u8]) -> String,
        hand: impl Fn(&[u8]) -> String,
    ) -> usize {
        let mut n = 0;
        let mut check = |b: &[u8]| {
            let (s, h) = (serde(b), hand(b));
            assert_eq!(s, h, "bytes {b:02x?}");
            n += 1;
        };
        for cut in 0..bytes.len() {
            check(&bytes[..cut]);
        }
        let mut m = bytes.to_vec();
        for i in 0..bytes.len() {
            for v in [
                0x00,
                0x01,
                0x02,
                0x03,
                0x7F,
                0x80,
                0xFF,
                bytes[i] ^ 0x80,
                bytes[i] ^ 0x01,
            ] {
                m[i] = v;
                check(&m);
            }
            m[i] = bytes[i];
        }
        n
    }

    fn norm<T: core::fmt::Debug, E>(r: Result<(T, &[u8]), E>) -> String {
        match r {
            Ok((v, rest)) => format!("ok {v:?} rest {rest:?}"),
            Err(_) => String::from("err"),
        }
    }

    #[test]
    fn op_records_agree_with_postcard_including_mutations() {
        let mut cases = 0;
        for rec in records() {
            assert_eq!(
                show(&postcard::take_from_bytes::<OpDef<'_>>(&rec).map_err(|_| ())),
                show(&op_def(&rec).map_err(|_| ()))
            );
            cases += mutations_agree(
                &rec,
                |b| norm(postcard::take_from_bytes::<OpDef<'_>>(b)),
                |b| norm(op_def(b)),
            );
        }
        assert!(cases > 10_000, "{cases}");
    }

    #[test]
    fn an_op_set_decodes_its_ops_only() {
        struct FcOnly;
        impl OpSet for FcOnly {
            const TAGS: u64 = 1 << 2;
        }
        for rec in records() {
            let all = op_def(&rec).unwrap().0;
            let mut d = OpDef::empty();
            let r = op_def_into_in::<FcOnly>(&rec, &mut d);
            assert_eq!(r.is_ok(), all.op.tag() == 2, "{}", all.op.name());
            assert_eq!(record_op(&rec), Ok((all.source_index, all.op.tag())));
        }
    }

    #[test]
    fn graph_header_and_sections_agree_with_postcard() {
        let mut inputs = heapless::Vec::<_, MAX_GRAPH_IO>::new();
        inputs.push(tensor_def(0, true, false, None)).unwrap();
        inputs.push(tensor_def(1, false, false, None)).unwrap();
        let mut outputs = heapless::Vec::new();
        outputs.push(tensor_def(7, true, false, None)).unwrap();
        let h = GraphHeader {
            arena_bytes: 123_456,
            arena_align: 16,
            op_count: 31,
            inputs,
            outputs,
            macs: 7_000_000_000,
            name: "kws-é",
        };
        let enc = postcard::to_stdvec(&h).unwrap();
        assert_eq!(graph_header(&enc).unwrap(), (h, &[][..]));
        mutations_agree(
            &enc,
            |b| norm(postcard::take_from_bytes::<GraphHeader<'_>>(b)),
            |b| norm(graph_header(b)),
        );
        let sec = postcard::to_stdvec(&(300u16, Bytes(b"section bytes"))).unwrap();
        mutations_agree(
            &sec,
            |b| norm(postcard::take_from_bytes::<(u16, &[u8])>(b)),
            |b| norm(section(b).map(|(k, d, rest)| ((k, d), rest))),
        );
    }
}
