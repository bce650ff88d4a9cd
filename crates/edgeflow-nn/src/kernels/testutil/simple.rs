//! Helpers for the tests of the element-wise, activation, softmax, quantize and mean
//! kernels: tensors from dims and quantization, byte conversions, broadcasting indices.
extern crate std;

use edgeflow_format::graph::{DType, Location, Quant, Shape, TensorDef};

use crate::kernels::{TensorIn, TensorOut};

/// xorshift64* — small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn bytes(&mut self, n: usize) -> std::vec::Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn f32s(&mut self, n: usize, lo: f32, hi: f32) -> std::vec::Vec<u8> {
        (0..n)
            .flat_map(|_| (lo + (hi - lo) * self.unit() as f32).to_le_bytes())
            .collect()
    }
}

pub fn shape(dims: &[u32]) -> Shape {
    Shape::new(dims).expect("rank <= 6")
}

pub fn tensor(dtype: DType, dims: &[u32], q: Option<(f32, i32)>) -> TensorDef<'static> {
    TensorDef {
        id: 0,
        dtype,
        shape: shape(dims),
        quant: q.map(|(scale, zero_point)| Quant {
            scale,
            zero_point,
            per_channel: None,
        }),
        location: Location::Arena { offset: 0 },
    }
}

pub fn i8t(dims: &[u32], scale: f32, zp: i32) -> TensorDef<'static> {
    tensor(DType::I8, dims, Some((scale, zp)))
}

pub fn f32t(dims: &[u32]) -> TensorDef<'static> {
    tensor(DType::F32, dims, None)
}

pub fn f32_bytes(v: &[f32]) -> std::vec::Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn to_f32s(b: &[u8]) -> std::vec::Vec<f32> {
    b.chunks_exact(4)
        .map(crate::kernels::generic::elem::f32_of)
        .collect()
}

pub fn i8_bytes(v: &[i8]) -> std::vec::Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

pub fn to_i8s(b: &[u8]) -> std::vec::Vec<i8> {
    b.iter().map(|&x| x as i8).collect()
}

pub fn num(t: &TensorDef<'_>) -> usize {
    t.shape.num_elements().expect("small") * t.dtype.size()
}

/// Runs an eval closure on owned buffers and returns the output bytes.
pub fn run(
    inputs: &[(&TensorDef<'_>, &[u8])],
    output: &TensorDef<'_>,
    eval: impl FnOnce(&[TensorIn<'_, '_>], TensorOut<'_, '_>),
) -> std::vec::Vec<u8> {
    let ins: std::vec::Vec<TensorIn<'_, '_>> = inputs
        .iter()
        .map(|(def, data)| TensorIn { def, data })
        .collect();
    let mut out = std::vec![0xA5u8; num(output)];
    eval(
        &ins,
        TensorOut {
            def: output,
            data: &mut out,
        },
    );
    out
}

/// Row-major multi-index of flat `i` over `dims`.
pub fn unravel(mut i: usize, dims: &[u32]) -> std::vec::Vec<usize> {
    let mut idx = std::vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        idx[d] = i % dims[d] as usize;
        i /= dims[d] as usize;
    }
    idx
}

/// Flat offset in a (possibly lower-rank, broadcast) tensor of the output index `idx`.
pub fn broadcast_offset(idx: &[usize], dims: &[u32]) -> usize {
    let skip = idx.len() - dims.len();
    let mut off = 0;
    for (d, &n) in dims.iter().enumerate() {
        let i = if n == 1 { 0 } else { idx[skip + d] };
        off = off * n as usize + i;
    }
    off
}
