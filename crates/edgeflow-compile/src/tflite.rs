//! Read-only bindings to the subset of the TFLite flatbuffer schema edgeflow imports,
//! on top of the `flatbuffers` crate.
//!
//! Field slots follow the public TFLite schema (`schema.fbs`): the vtable offset of field
//! number `n` is `4 + 2n`. Every buffer is checked by the `flatbuffers` verifier
//! ([`parse`]) before any accessor runs; the accessors then rely on that check, which is
//! the one place this crate uses `unsafe`.
#![allow(unsafe_code)]

use flatbuffers::{
    ForwardsUOffset, InvalidFlatbuffer, Table, TableVerifier, Vector, Verifiable, Verifier,
    VerifierOptions,
};

/// Declares a table type: a verified `flatbuffers::Table` wrapper plus its verifier.
macro_rules! table {
    ($(#[$m:meta])* $name:ident, |$v:ident| $verify:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy)]
        #[allow(dead_code)] // some tables are only checked for presence
        pub struct $name<'a> {
            tab: Table<'a>,
        }
        impl<'a> flatbuffers::Follow<'a> for $name<'a> {
            type Inner = Self;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self {
                // SAFETY: forwarded from the caller's contract (a verified table at `loc`).
                Self { tab: unsafe { Table::new(buf, loc) } }
            }
        }
        impl Verifiable for $name<'_> {
            fn run_verifier(
                verifier: &mut Verifier<'_, '_>,
                pos: usize,
            ) -> Result<(), InvalidFlatbuffer> {
                let $v: TableVerifier<'_, '_, '_> = verifier.visit_table(pos)?;
                $verify.finish();
                Ok(())
            }
        }
    };
}

/// Declares a scalar accessor with a default.
macro_rules! scalar {
    ($(#[$m:meta])* $fn:ident: $t:ty = $default:expr, $slot:expr) => {
        $(#[$m])*
        pub fn $fn(&self) -> $t {
            // SAFETY: the table was verified with this slot typed as `$t`.
            unsafe { self.tab.get::<$t>($slot, Some($default)) }.unwrap_or($default)
        }
    };
}

/// Declares an optional offset accessor.
macro_rules! field {
    ($(#[$m:meta])* $fn:ident: $t:ty, $slot:expr) => {
        $(#[$m])*
        pub fn $fn(&self) -> Option<<$t as flatbuffers::Follow<'a>>::Inner> {
            // SAFETY: the table was verified with this slot typed as `$t`.
            unsafe { self.tab.get::<ForwardsUOffset<$t>>($slot, None) }
        }
    };
}

type Vu<'a, T> = Vector<'a, ForwardsUOffset<T>>;

table!(
    /// A table whose fields are never read (only its presence matters).
    AnyTable,
    |v| v
);

table!(
    /// The root table.
    Model,
    |v| v
        .visit_field::<u32>("version", 4, false)?
        .visit_field::<ForwardsUOffset<Vu<'_, OperatorCode<'_>>>>("operator_codes", 6, false)?
        .visit_field::<ForwardsUOffset<Vu<'_, SubGraph<'_>>>>("subgraphs", 8, false)?
        .visit_field::<ForwardsUOffset<&str>>("description", 10, false)?
        .visit_field::<ForwardsUOffset<Vu<'_, Buffer<'_>>>>("buffers", 12, false)?
);
impl<'a> Model<'a> {
    scalar!(/// Schema version (3 for current files).
        version: u32 = 0, 4);
    field!(/// Operator codes.
        operator_codes: Vu<'a, OperatorCode<'a>>, 6);
    field!(/// Subgraphs; the first is the main graph.
        subgraphs: Vu<'a, SubGraph<'a>>, 8);
    field!(/// Free-form description.
        description: &'a str, 10);
    field!(/// Buffers; buffer 0 is the empty sentinel.
        buffers: Vu<'a, Buffer<'a>>, 12);
}

table!(
    /// An operator code: which builtin (or custom) op and its version.
    OperatorCode,
    |v| v
        .visit_field::<i8>("deprecated_builtin_code", 4, false)?
        .visit_field::<ForwardsUOffset<&str>>("custom_code", 6, false)?
        .visit_field::<i32>("version", 8, false)?
        .visit_field::<i32>("builtin_code", 10, false)?
);
impl<'a> OperatorCode<'a> {
    scalar!(/// Builtin code as stored before schema 3a (saturates at 127).
        deprecated_builtin_code: i8 = 0, 4);
    field!(/// Custom op name.
        custom_code: &'a str, 6);
    scalar!(/// Op version.
        version: i32 = 1, 8);
    scalar!(/// Builtin code (schema 3a+).
        builtin_code_raw: i32 = 0, 10);
    /// The effective builtin code: the larger of the two fields, as TFLite reads it.
    pub fn builtin_code(&self) -> i32 {
        self.builtin_code_raw()
            .max(self.deprecated_builtin_code() as i32)
    }
}

table!(
    /// A subgraph.
    SubGraph,
    |v| v
        .visit_field::<ForwardsUOffset<Vu<'_, Tensor<'_>>>>("tensors", 4, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("inputs", 6, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("outputs", 8, false)?
        .visit_field::<ForwardsUOffset<Vu<'_, Operator<'_>>>>("operators", 10, false)?
        .visit_field::<ForwardsUOffset<&str>>("name", 12, false)?
);
impl<'a> SubGraph<'a> {
    field!(/// Tensors.
        tensors: Vu<'a, Tensor<'a>>, 4);
    field!(/// Input tensor indices.
        inputs: Vector<'a, i32>, 6);
    field!(/// Output tensor indices.
        outputs: Vector<'a, i32>, 8);
    field!(/// Operators in execution order.
        operators: Vu<'a, Operator<'a>>, 10);
}

table!(
    /// A tensor.
    Tensor,
    |v| v
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("shape", 4, false)?
        .visit_field::<i8>("type", 6, false)?
        .visit_field::<u32>("buffer", 8, false)?
        .visit_field::<ForwardsUOffset<&str>>("name", 10, false)?
        .visit_field::<ForwardsUOffset<QuantizationParameters<'_>>>("quantization", 12, false)?
        .visit_field::<bool>("is_variable", 14, false)?
        .visit_field::<ForwardsUOffset<AnyTable<'_>>>("sparsity", 16, false)?
);
impl<'a> Tensor<'a> {
    field!(/// Shape.
        shape: Vector<'a, i32>, 4);
    scalar!(/// Element type (TensorType enum value).
        tensor_type: i8 = 0, 6);
    scalar!(/// Buffer index (0: no data).
        buffer: u32 = 0, 8);
    field!(/// Name.
        name: &'a str, 10);
    field!(/// Quantization parameters.
        quantization: QuantizationParameters<'a>, 12);
    scalar!(/// Variable (stateful) tensor.
        is_variable: bool = false, 14);
    /// Whether sparsity parameters are present.
    pub fn is_sparse(&self) -> bool {
        // SAFETY: verified as a table offset.
        unsafe { self.tab.get::<ForwardsUOffset<Table<'a>>>(16, None) }.is_some()
    }
}

table!(
    /// Quantization parameters of a tensor.
    QuantizationParameters,
    |v| v
        .visit_field::<ForwardsUOffset<Vector<'_, f32>>>("scale", 8, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i64>>>("zero_point", 10, false)?
        .visit_field::<u8>("details_type", 12, false)?
        .visit_field::<i32>("quantized_dimension", 16, false)?
);
impl<'a> QuantizationParameters<'a> {
    field!(/// Scales (one, or one per channel).
        scale: Vector<'a, f32>, 8);
    field!(/// Zero points.
        zero_point: Vector<'a, i64>, 10);
    scalar!(/// Custom quantization details type (0: none).
        details_type: u8 = 0, 12);
    scalar!(/// The quantized dimension for per-channel quantization.
        quantized_dimension: i32 = 0, 16);
}

table!(
    /// A buffer of constant data.
    Buffer,
    |v| v
        .visit_field::<ForwardsUOffset<Vector<'_, u8>>>("data", 4, false)?
        .visit_field::<u64>("offset", 6, false)?
        .visit_field::<u64>("size", 8, false)?
);
impl<'a> Buffer<'a> {
    field!(/// Inline data.
        data: Vector<'a, u8>, 4);
    scalar!(/// Offset of out-of-flatbuffer data (models over 2 GB).
        offset: u64 = 0, 6);
    scalar!(/// Size of out-of-flatbuffer data.
        size: u64 = 0, 8);
}

table!(
    /// An operator instance.
    Operator,
    |v| v
        .visit_field::<u32>("opcode_index", 4, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("inputs", 6, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("outputs", 8, false)?
        .visit_union::<u8, _>("builtin_options_type", 10, "builtin_options", 12, false, |k, v, pos| {
            verify_options(options_layout(k), v, pos)
        })?
        .visit_field::<ForwardsUOffset<Vector<'_, u8>>>("custom_options", 14, false)?
        .visit_field::<ForwardsUOffset<Vector<'_, i32>>>("intermediates", 20, false)?
);
impl<'a> Operator<'a> {
    scalar!(/// Index into the model's operator codes.
        opcode_index: u32 = 0, 4);
    field!(/// Input tensor indices (-1: optional input absent).
        inputs: Vector<'a, i32>, 6);
    field!(/// Output tensor indices.
        outputs: Vector<'a, i32>, 8);
    scalar!(/// Builtin options union type.
        builtin_options_type: u8 = 0, 10);
    field!(/// Intermediate tensors (LSTM-style ops).
        intermediates: Vector<'a, i32>, 20);
    /// The builtin options table, if any, typed by its union tag.
    pub fn builtin_options(&self) -> Option<Options<'a>> {
        // SAFETY: verified as a table offset by the union verifier.
        let tab = unsafe { self.tab.get::<ForwardsUOffset<Table<'a>>>(12, None) }?;
        Some(Options {
            tab,
            layout: options_layout(self.builtin_options_type()),
        })
    }
}

/// Scalar kind of an options-table field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A byte-sized enum or bool.
    Byte,
    /// A 32-bit int.
    Int,
    /// A 32-bit float.
    Float,
    /// A vector of 32-bit ints.
    IntVector,
}

/// Field kinds of the builtin options tables we read, indexed by union tag
/// (`BuiltinOptions` in the schema). Unknown tags have no readable fields.
pub fn options_layout(tag: u8) -> &'static [Kind] {
    use Kind::*;
    match tag {
        1 => &[Byte, Int, Int, Byte, Int, Int, Byte], // Conv2DOptions
        2 => &[Byte, Int, Int, Int, Byte, Int, Int],  // DepthwiseConv2DOptions
        5 => &[Byte, Int, Int, Int, Int, Byte],       // Pool2DOptions
        8 => &[Byte, Byte, Byte, Byte, Byte],         // FullyConnectedOptions
        9 => &[Float],                                // SoftmaxOptions
        10 => &[Int, Byte],                           // ConcatenationOptions
        11 => &[Byte, Byte],                          // AddOptions
        17 => &[IntVector],                           // ReshapeOptions
        21 => &[Byte],                                // MulOptions
        27 => &[Byte],                                // ReducerOptions
        30 => &[IntVector],                           // SqueezeOptions
        32 => &[Int, Int, Int, Int, Int, Byte],       // StridedSliceOptions
        35 => &[Int],                                 // SplitOptions
        74 => &[Byte, Byte],                          // ResizeNearestNeighborOptions
        75 => &[Float],                               // LeakyReluOptions
        79 => &[Int],                                 // SplitVOptions
        _ => &[],
    }
}

fn verify_options(
    layout: &[Kind],
    v: &mut Verifier<'_, '_>,
    pos: usize,
) -> Result<(), InvalidFlatbuffer> {
    // `pos` holds the union value's forward offset to the options table.
    let table = pos.saturating_add(v.get_uoffset(pos)? as usize);
    let mut t = v.visit_table(table)?;
    for (n, k) in layout.iter().enumerate() {
        let slot = 4 + 2 * n as u16;
        t = match k {
            Kind::Byte => t.visit_field::<i8>("option", slot, false)?,
            Kind::Int => t.visit_field::<i32>("option", slot, false)?,
            Kind::Float => t.visit_field::<f32>("option", slot, false)?,
            Kind::IntVector => {
                t.visit_field::<ForwardsUOffset<Vector<'_, i32>>>("option", slot, false)?
            }
        };
    }
    t.finish();
    Ok(())
}

/// A builtin options table, with the field layout its union tag promises.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    tab: Table<'a>,
    layout: &'static [Kind],
}

impl<'a> Options<'a> {
    fn is(&self, n: u16, k: Kind) -> bool {
        self.layout.get(n as usize) == Some(&k)
    }
    /// Byte-sized field number `n` (enum or bool), or `default`.
    pub fn byte(&self, n: u16, default: i8) -> i8 {
        if !self.is(n, Kind::Byte) {
            return default;
        }
        // SAFETY: the verifier checked this slot as an i8 (layout matches the union tag).
        unsafe { self.tab.get::<i8>(4 + 2 * n, Some(default)) }.unwrap_or(default)
    }
    /// Int field number `n`, or `default`.
    pub fn int(&self, n: u16, default: i32) -> i32 {
        if !self.is(n, Kind::Int) {
            return default;
        }
        // SAFETY: the verifier checked this slot as an i32.
        unsafe { self.tab.get::<i32>(4 + 2 * n, Some(default)) }.unwrap_or(default)
    }
    /// Float field number `n`, or `default`.
    pub fn float(&self, n: u16, default: f32) -> f32 {
        if !self.is(n, Kind::Float) {
            return default;
        }
        // SAFETY: the verifier checked this slot as an f32.
        unsafe { self.tab.get::<f32>(4 + 2 * n, Some(default)) }.unwrap_or(default)
    }
    /// Int-vector field number `n`.
    pub fn int_vector(&self, n: u16) -> Option<Vector<'a, i32>> {
        if !self.is(n, Kind::IntVector) {
            return None;
        }
        // SAFETY: the verifier checked this slot as an offset to a vector of i32.
        unsafe {
            self.tab
                .get::<ForwardsUOffset<Vector<'a, i32>>>(4 + 2 * n, None)
        }
    }
}

/// Verifies a `.tflite` buffer and returns its root.
pub fn parse(bytes: &[u8]) -> Result<Model<'_>, InvalidFlatbuffer> {
    let opts = VerifierOptions {
        max_tables: 1_000_000,
        ..Default::default()
    };
    flatbuffers::root_with_opts::<Model<'_>>(&opts, bytes)
}
