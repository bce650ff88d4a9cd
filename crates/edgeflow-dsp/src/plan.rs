//! Validation and memory planning: [`Pipeline::new`] checks every parameter once and
//! lays out the caller's workspace; after it returns `Ok`, running cannot fail on the
//! description.

use crate::desc::{Block, Input, PipelineDesc, Reduce};
use crate::error::{At, Error, Stage};
use crate::kernels::{self, MAX_FFT};

/// Most blocks in a pipeline over all stages.
pub const MAX_TOTAL_BLOCKS: usize = crate::desc::MAX_STREAM_BLOCKS
    + crate::desc::MAX_BLOCKS
    + crate::desc::MAX_BRANCHES * crate::desc::MAX_BRANCH_BLOCKS
    + crate::desc::MAX_POST_BLOCKS;

/// Largest matrix between two blocks, in values (16 MiB of `f32`).
pub const MAX_ELEMENTS: u32 = 1 << 22;

/// Most image channels.
pub const MAX_CHANNELS: u32 = 4;

/// What the values between two blocks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kind {
    /// Samples in time (one row per axis).
    Time,
    /// A spectrum row per axis from [`Block::Spectrum`].
    Spectrum {
        /// FFT size the bins come from.
        n_fft: u32,
        /// Power (`|X|^2`) rather than magnitude.
        power: bool,
    },
    /// Anything else (features, ids, pixels).
    Other,
}

/// The matrix flowing between blocks: `rows × cols`, row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    /// Rows (axes of a signal).
    pub rows: u32,
    /// Values per row.
    pub cols: u32,
    /// What the values are.
    pub kind: Kind,
}

impl Shape {
    /// `rows * cols`.
    pub fn len(&self) -> usize {
        self.rows as usize * self.cols as usize
    }
    /// Whether the matrix is empty (never, after validation).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Element type of the output tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OutputType {
    /// Little-endian IEEE single precision.
    F32,
    /// Quantized int8.
    I8,
}

impl OutputType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            OutputType::F32 => 4,
            OutputType::I8 => 1,
        }
    }
}

/// The plan of one block: shapes and where its table and state live in the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockPlan {
    pub input: Shape,
    pub output: Shape,
    pub table: u32,
    pub table_len: u32,
    pub state: u32,
    pub state_len: u32,
}

/// The fused image path: one optional crop, one optional resize, then per-pixel blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImagePlan {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    /// Source rectangle `x, y, w, h`.
    pub crop: [u32; 4],
    pub out_w: u32,
    pub out_h: u32,
    pub resize: Option<crate::desc::Interpolation>,
    pub out_channels: u32,
}

/// Offsets (in `f32` words) of the workspace regions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Coefficient tables, then stream state, start at 0.
    pub state: u32,
    pub ring: u32,
    pub x: u32,
    pub y: u32,
    pub buf_len: u32,
    pub save: u32,
    pub save_len: u32,
    pub cat: u32,
    pub cat_len: u32,
    pub stack: u32,
    pub stack_len: u32,
    pub scratch: u32,
    pub scratch_len: u32,
    pub total: u32,
}

/// A validated pipeline: the description plus its plan.
///
/// Holds only the description (borrowing the artifact bytes) and fixed-size plan data.
#[derive(Clone, Debug)]
pub struct Pipeline<'a> {
    pub(crate) desc: PipelineDesc<'a>,
    pub(crate) plans: heapless::Vec<BlockPlan, MAX_TOTAL_BLOCKS>,
    pub(crate) layout: Layout,
    pub(crate) features: u32,
    pub(crate) image: Option<ImagePlan>,
    /// The decoded options of a first [`Block::AudioFrontend`] (checked by the plan).
    pub(crate) frontend: Option<crate::desc::Frontend>,
}

struct Planned {
    output: Shape,
    table: u32,
    scratch: u32,
    /// Words of state kept across windows (the front end's noise estimates).
    state: u32,
}

fn param(at: At, param: &'static str, reason: &'static str) -> Error {
    Error::Param { at, param, reason }
}

fn mul(at: At, p: &'static str, a: u32, b: u32) -> Result<u32, Error> {
    match a.checked_mul(b) {
        Some(v) if v <= MAX_ELEMENTS => Ok(v),
        _ => Err(Error::TooLarge {
            at,
            param: p,
            value: a.saturating_mul(b),
            max: MAX_ELEMENTS,
        }),
    }
}

fn add(a: u32, b: u32) -> Result<u32, Error> {
    a.checked_add(b)
        .filter(|&v| v <= 1 << 30)
        .ok_or(Error::TooLarge {
            at: At::Output,
            param: "workspace",
            value: u32::MAX,
            max: 1 << 30,
        })
}

fn finite(at: At, p: &'static str, v: f32) -> Result<(), Error> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(param(at, p, "must be a finite number"))
    }
}

/// Checks a per-channel list: one value or one per channel, all finite.
fn per_channel(
    at: At,
    p: &'static str,
    list: &crate::desc::F32s<'_>,
    channels: u32,
) -> Result<(), Error> {
    if list.has_partial_value() {
        return Err(param(at, p, "byte length is not a multiple of 4"));
    }
    if list.len() != 1 && list.len() != channels as usize {
        return Err(param(
            at,
            p,
            "must have one value, or one per channel (row of a signal, channel of an image)",
        ));
    }
    if list.iter().any(|v| !v.is_finite()) {
        return Err(param(at, p, "must hold finite numbers"));
    }
    Ok(())
}

fn need_rate(at: At, rate: Option<f32>) -> Result<f32, Error> {
    rate.ok_or(param(
        at,
        "input",
        "needs a signal input (the sample rate gives the bin frequencies)",
    ))
}

/// Plans one block of the window path.
fn plan_block(
    at: At,
    block: &Block<'_>,
    input: Shape,
    rate: Option<f32>,
) -> Result<Planned, Error> {
    let same = |table, scratch| Planned {
        output: Shape {
            kind: if matches!(input.kind, Kind::Time) {
                Kind::Time
            } else {
                Kind::Other
            },
            ..input
        },
        table,
        scratch,
        state: 0,
    };
    let other = |rows: u32, cols: u32, table, scratch| Planned {
        output: Shape {
            rows,
            cols,
            kind: Kind::Other,
        },
        table,
        scratch,
        state: 0,
    };
    match block {
        Block::Scale { scale, offset } => {
            finite(at, "scale", *scale)?;
            finite(at, "offset", *offset)?;
            Ok(same(0, 0))
        }
        Block::ZScore { mean, std } => {
            per_channel(at, "mean", mean, input.rows)?;
            per_channel(at, "std", std, input.rows)?;
            if std.iter().any(|s| s == 0.0) {
                return Err(param(at, "std", "must not contain 0"));
            }
            Ok(same(0, 0))
        }
        Block::MinMax { min, max } => {
            per_channel(at, "min", min, input.rows)?;
            per_channel(at, "max", max, input.rows)?;
            if min.len() != max.len() {
                return Err(param(at, "max", "must have as many values as `min`"));
            }
            if min
                .iter()
                .zip(max.iter())
                .any(|(a, b)| b.partial_cmp(&a) != Some(core::cmp::Ordering::Greater))
            {
                return Err(param(at, "max", "must be above `min` for every channel"));
            }
            Ok(same(0, 0))
        }
        Block::Clip { min, max } => {
            if min.is_nan() || max.is_nan() || min > max {
                return Err(param(at, "max", "must be a number not below `min`"));
            }
            Ok(same(0, 0))
        }
        Block::PreEmphasis { coef } => {
            finite(at, "coef", *coef)?;
            Ok(same(0, 0))
        }
        Block::Iir { sos, .. } => {
            let sections = check_sos(at, sos)?;
            Ok(same(sections * 6, sections * 2))
        }
        Block::Stats { stats } => {
            if stats.is_empty() {
                return Err(param(at, "stats", "must name at least one statistic"));
            }
            Ok(other(input.rows, stats.len() as u32, 0, 0))
        }
        Block::Window { .. } => Ok(same(input.cols, 0)),
        Block::Spectrum { n_fft, power } => {
            let n = *n_fft;
            if n > MAX_FFT {
                return Err(Error::TooLarge {
                    at,
                    param: "n_fft",
                    value: n,
                    max: MAX_FFT,
                });
            }
            if !n.is_power_of_two() || n < 4 {
                return Err(param(at, "n_fft", "must be a power of two, at least 4"));
            }
            if input.cols > n {
                return Err(param(
                    at,
                    "n_fft",
                    "is shorter than the window (rows longer than n_fft are not cut)",
                ));
            }
            Ok(Planned {
                output: Shape {
                    rows: input.rows,
                    cols: n / 2 + 1,
                    kind: Kind::Spectrum {
                        n_fft: n,
                        power: *power,
                    },
                },
                table: 0,
                scratch: n,
                state: 0,
            })
        }
        Block::Log { floor, .. } => {
            if !(floor.is_finite() && *floor > 0.0) {
                return Err(param(at, "floor", "must be a positive finite number"));
            }
            Ok(same(0, 0))
        }
        Block::BandPower { edges_hz } => {
            let rate = need_rate(at, rate)?;
            if !matches!(input.kind, Kind::Spectrum { .. }) {
                return Err(param(at, "input", "must follow a `spectrum` block"));
            }
            if edges_hz.has_partial_value() {
                return Err(param(at, "edges_hz", "byte length is not a multiple of 4"));
            }
            if edges_hz.len() < 2 {
                return Err(param(at, "edges_hz", "needs at least two edges"));
            }
            let mut prev = f32::NEG_INFINITY;
            for e in edges_hz.iter() {
                if !(e.is_finite() && e >= 0.0 && e > prev) {
                    return Err(param(
                        at,
                        "edges_hz",
                        "must be finite, non-negative and strictly ascending",
                    ));
                }
                prev = e;
            }
            if prev > rate {
                return Err(param(at, "edges_hz", "goes above the sample rate"));
            }
            Ok(other(input.rows, edges_hz.len() as u32 - 1, 0, 0))
        }
        Block::Mel {
            bands, fmin, fmax, ..
        } => {
            let rate = need_rate(at, rate)?;
            if !matches!(input.kind, Kind::Spectrum { .. }) {
                return Err(param(at, "input", "must follow a `spectrum` block"));
            }
            if *bands == 0 {
                return Err(param(at, "bands", "must be at least 1"));
            }
            if *bands > input.cols {
                return Err(param(
                    at,
                    "bands",
                    "is more mel bands than the spectrum has FFT bins (n_fft / 2 + 1)",
                ));
            }
            if !(fmin.is_finite() && *fmin >= 0.0) {
                return Err(param(at, "fmin", "must be a non-negative finite number"));
            }
            if !(fmax.is_finite() && *fmax > *fmin) {
                return Err(param(at, "fmax", "must be above `fmin`"));
            }
            if *fmax > rate / 2.0 {
                return Err(param(
                    at,
                    "fmax",
                    "is above the Nyquist frequency (rate / 2)",
                ));
            }
            let table = kernels::mel_table_len(*bands as usize, input.cols as usize) as u32;
            Ok(other(input.rows, *bands, table, 0))
        }
        Block::Dct {
            coefficients,
            lifter,
        } => {
            if *coefficients == 0 || *coefficients > input.cols {
                return Err(param(
                    at,
                    "coefficients",
                    "must be between 1 and the row length",
                ));
            }
            if !(lifter.is_finite() && *lifter >= 0.0) {
                return Err(param(at, "lifter", "must be 0 or a positive finite number"));
            }
            let table = mul(at, "coefficients", *coefficients, input.cols)?;
            Ok(other(input.rows, *coefficients, table, 0))
        }
        Block::OneHot { depth, reduce } => {
            if *depth == 0 {
                return Err(param(at, "depth", "must be at least 1"));
            }
            let cols = match reduce {
                Reduce::None => mul(at, "depth", input.cols, *depth)?,
                Reduce::Sum | Reduce::Max => *depth,
            };
            mul(at, "depth", input.rows, cols)?;
            Ok(other(input.rows, cols, 0, 0))
        }
        Block::Bucketize { boundaries } => {
            if boundaries.has_partial_value() {
                return Err(param(
                    at,
                    "boundaries",
                    "byte length is not a multiple of 4",
                ));
            }
            if boundaries.is_empty() {
                return Err(param(at, "boundaries", "needs at least one boundary"));
            }
            let mut prev = f32::NEG_INFINITY;
            for b in boundaries.iter() {
                if !(b.is_finite() && b > prev) {
                    return Err(param(
                        at,
                        "boundaries",
                        "must be finite and strictly ascending",
                    ));
                }
                prev = b;
            }
            Ok(other(input.rows, input.cols, 0, 0))
        }
        Block::Crop { .. } | Block::Resize { .. } | Block::Grayscale { .. } => {
            Err(param(at, "input", "image blocks need an image input"))
        }
        Block::Vocabulary { .. } | Block::Hash { .. } => Err(param(
            at,
            "input",
            "token blocks need a text input and must be the first block",
        )),
        Block::AudioFrontend(_) => Err(param(
            at,
            "input",
            "audio_frontend must be the first of `blocks`, on a one-axis signal without stream blocks",
        )),
    }
}

/// Plans [`Block::AudioFrontend`] as the first block of a signal pipeline.
fn plan_frontend(
    at: At,
    fe: &crate::desc::Frontend,
    desc: &PipelineDesc<'_>,
) -> Result<Planned, Error> {
    let Input::Signal {
        axes: 1,
        rate_hz,
        window,
        stride,
    } = desc.input
    else {
        return Err(param(
            at,
            "input",
            "audio_frontend needs a one-axis signal input (16-bit audio)",
        ));
    };
    if !desc.stream.is_empty() {
        return Err(param(
            at,
            "stream",
            "audio_frontend takes the raw 16-bit samples: remove the stream blocks",
        ));
    }
    let g = crate::frontend::validate(at, fe, rate_hz, window, stride)?;
    Ok(Planned {
        output: Shape {
            rows: 1,
            cols: fe.channels,
            kind: Kind::Other,
        },
        table: g.table_len() as u32,
        scratch: g.scratch_len() as u32,
        state: fe.channels,
    })
}

fn check_sos(at: At, sos: &crate::desc::F32s<'_>) -> Result<u32, Error> {
    if sos.has_partial_value() {
        return Err(param(at, "sos", "byte length is not a multiple of 4"));
    }
    if sos.is_empty() || sos.len() % 6 != 0 {
        return Err(param(
            at,
            "sos",
            "must hold 6 coefficients per section (design the filter on the host)",
        ));
    }
    if sos.iter().any(|v| !v.is_finite()) {
        return Err(param(at, "sos", "must hold finite numbers"));
    }
    if (0..sos.len() / 6).any(|s| sos.get(s * 6 + 3) != Some(1.0)) {
        return Err(param(at, "sos", "a0 of every section must be 1"));
    }
    Ok((sos.len() / 6) as u32)
}

impl<'a> Pipeline<'a> {
    /// Decodes a postcard-encoded description (the artifact's `FeaturePipeline` section),
    /// borrowing its lists from `bytes`, and validates it. Never panics.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let (desc, rest): (PipelineDesc<'a>, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| Error::Decode)?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes);
        }
        Self::new(desc)
    }

    /// Validates a description and plans the workspace.
    ///
    /// Errors name the block and parameter: [`Error::Param`] or [`Error::TooLarge`].
    /// On `Ok`, [`crate::Runtime`] runs it without any further parameter check failing.
    pub fn new(desc: PipelineDesc<'a>) -> Result<Self, Error> {
        let mut p = Pipeline {
            desc,
            plans: heapless::Vec::new(),
            layout: Layout::default(),
            features: 0,
            image: None,
            frontend: None,
        };
        p.check_output()?;
        match p.desc.input {
            Input::Image {
                width,
                height,
                channels,
            } => p.plan_image(width, height, channels)?,
            _ => p.plan_matrix()?,
        }
        Ok(p)
    }

    fn check_output(&self) -> Result<(), Error> {
        let o = &self.desc.output;
        let at = At::Output;
        if o.frames == 0 {
            return Err(param(at, "frames", "must be at least 1"));
        }
        if o.frames > 1 && !matches!(self.desc.input, Input::Signal { .. }) {
            return Err(param(at, "frames", "stacking frames needs a signal input"));
        }
        if o.hop > o.frames {
            return Err(param(at, "hop", "must not exceed `frames`"));
        }
        if let Some(q) = o.quantize {
            if !(q.scale.is_finite() && q.scale > 0.0) {
                return Err(param(
                    at,
                    "quantize.scale",
                    "must be a positive finite number",
                ));
            }
            if !(-128..=127).contains(&q.zero_point) {
                return Err(param(at, "quantize.zero_point", "must be in -128..=127"));
            }
        }
        Ok(())
    }

    fn push_plan(&mut self, plan: BlockPlan) -> Result<(), Error> {
        // Capacity is the sum of the stage capacities, so this cannot overflow.
        self.plans.push(plan).map_err(|_| Error::TooLarge {
            at: At::Input,
            param: "blocks",
            value: MAX_TOTAL_BLOCKS as u32 + 1,
            max: MAX_TOTAL_BLOCKS as u32,
        })
    }

    fn plan_matrix(&mut self) -> Result<(), Error> {
        let at = At::Input;
        let (input, rate, ring) = match self.desc.input {
            Input::Signal {
                axes,
                rate_hz,
                window,
                stride,
            } => {
                if axes == 0 {
                    return Err(param(at, "axes", "must be at least 1"));
                }
                if window == 0 {
                    return Err(param(at, "window", "must be at least 1"));
                }
                if stride == 0 {
                    return Err(param(at, "stride", "must be at least 1"));
                }
                if !(rate_hz.is_finite() && rate_hz > 0.0) {
                    return Err(param(at, "rate_hz", "must be a positive finite number"));
                }
                let ring = mul(at, "window", window, axes)?;
                (
                    Shape {
                        rows: axes,
                        cols: window,
                        kind: Kind::Time,
                    },
                    Some(rate_hz),
                    ring,
                )
            }
            Input::Vector { len } => {
                if len == 0 {
                    return Err(param(at, "len", "must be at least 1"));
                }
                mul(at, "len", len, 1)?;
                (
                    Shape {
                        rows: 1,
                        cols: len,
                        kind: Kind::Other,
                    },
                    None,
                    0,
                )
            }
            Input::Text { max_tokens } => {
                if max_tokens == 0 {
                    return Err(param(at, "max_tokens", "must be at least 1"));
                }
                mul(at, "max_tokens", max_tokens, 1)?;
                (
                    Shape {
                        rows: 1,
                        cols: max_tokens,
                        kind: Kind::Other,
                    },
                    None,
                    0,
                )
            }
            Input::Image { .. } => return Err(param(at, "input", "not a matrix input")),
        };

        let mut table = 0u32;
        let mut state = 0u32;
        let mut scratch = 0u32;
        let mut buf = input.len() as u32;

        // Stream blocks: per value, channel = axis.
        if !self.desc.stream.is_empty() && rate.is_none() {
            return Err(param(
                At::Input,
                "stream",
                "stream blocks need a signal input",
            ));
        }
        for i in 0..self.desc.stream.len() {
            let Some(b) = self.desc.stream.get(i) else {
                break;
            };
            let at = At::Block {
                stage: Stage::Stream,
                index: i as u8,
                name: b.name(),
            };
            let (t, s) = match b {
                Block::Scale { scale, offset } => {
                    finite(at, "scale", *scale)?;
                    finite(at, "offset", *offset)?;
                    (0, 0)
                }
                Block::Clip { min, max } => {
                    if min.is_nan() || max.is_nan() || min > max {
                        return Err(param(at, "max", "must be a number not below `min`"));
                    }
                    (0, 0)
                }
                Block::PreEmphasis { coef } => {
                    finite(at, "coef", *coef)?;
                    (0, input.rows)
                }
                Block::Iir { sos, .. } => {
                    let sections = check_sos(at, sos)?;
                    (sections * 6, mul(at, "sos", sections * 2, input.rows)?)
                }
                _ => {
                    return Err(param(
                        at,
                        "stream",
                        "only scale, clip, pre_emphasis and iir run per sample",
                    ))
                }
            };
            self.push_plan(BlockPlan {
                input,
                output: input,
                table,
                table_len: t,
                state,
                state_len: s,
            })?;
            table = add(table, t)?;
            state = add(state, s)?;
        }

        let is_text = matches!(self.desc.input, Input::Text { .. });
        let mut shape = input;
        let stages: [(Stage, usize); 1] = [(Stage::Blocks, self.desc.blocks.len())];
        for (stage, n) in stages {
            for i in 0..n {
                let Some(b) = self.desc.blocks.get(i) else {
                    break;
                };
                let at = At::Block {
                    stage,
                    index: i as u8,
                    name: b.name(),
                };
                let planned = match b {
                    _ if i == 0 && is_text => plan_token_block(at, b, shape)?,
                    Block::AudioFrontend(opts) if i == 0 => {
                        let fe = opts.decode().ok_or(param(
                            at,
                            "audio_frontend",
                            "the options are not one postcard-encoded `Frontend`",
                        ))?;
                        let planned = plan_frontend(at, &fe, &self.desc)?;
                        self.frontend = Some(fe);
                        planned
                    }
                    _ => plan_block(at, b, shape, rate)?,
                };
                self.record(
                    &mut table,
                    &mut state,
                    &mut scratch,
                    &mut buf,
                    shape,
                    &planned,
                )?;
                shape = planned.output;
            }
        }
        if is_text && self.desc.blocks.is_empty() {
            return Err(param(
                At::Input,
                "blocks",
                "a text pipeline starts with a `vocabulary` or `hash` block",
            ));
        }
        let common = shape;

        let mut cat_len = 0u32;
        for bi in 0..self.desc.branches.len() {
            let Some(branch) = self.desc.branches.get(bi) else {
                break;
            };
            let n = branch.blocks.len();
            if n == 0 {
                return Err(param(
                    At::Input,
                    "branches",
                    "every branch needs at least one block",
                ));
            }
            let mut s = common;
            for i in 0..n {
                let Some(b) = self.desc.branches.get(bi).and_then(|br| br.blocks.get(i)) else {
                    break;
                };
                let at = At::Block {
                    stage: Stage::Branch(bi as u8),
                    index: i as u8,
                    name: b.name(),
                };
                let planned = plan_block(at, b, s, rate)?;
                self.record(&mut table, &mut state, &mut scratch, &mut buf, s, &planned)?;
                s = planned.output;
            }
            cat_len = add(cat_len, s.len() as u32)?;
        }
        let has_branches = !self.desc.branches.is_empty();
        if has_branches {
            shape = Shape {
                rows: 1,
                cols: cat_len,
                kind: Kind::Other,
            };
            buf = buf.max(cat_len);
        }
        for i in 0..self.desc.post.len() {
            let Some(b) = self.desc.post.get(i) else {
                break;
            };
            let at = At::Block {
                stage: Stage::Post,
                index: i as u8,
                name: b.name(),
            };
            let planned = plan_block(at, b, shape, rate)?;
            self.record(
                &mut table,
                &mut state,
                &mut scratch,
                &mut buf,
                shape,
                &planned,
            )?;
            shape = planned.output;
        }
        let features = shape.len() as u32;
        let frames = self.desc.output.frames;
        let stack_len = mul(At::Output, "frames", frames, features)?;

        let mut l = Layout {
            state: table,
            ..Layout::default()
        };
        l.ring = add(l.state, state)?;
        l.x = add(l.ring, ring)?;
        l.buf_len = buf;
        l.y = add(l.x, buf)?;
        l.save = add(l.y, buf)?;
        l.save_len = if has_branches { common.len() as u32 } else { 0 };
        l.cat = add(l.save, l.save_len)?;
        l.cat_len = if has_branches { cat_len } else { 0 };
        l.stack = add(l.cat, l.cat_len)?;
        l.stack_len = stack_len;
        l.scratch = add(l.stack, stack_len)?;
        l.scratch_len = scratch;
        l.total = add(l.scratch, scratch)?;
        self.layout = l;
        self.features = features;
        Ok(())
    }

    fn record(
        &mut self,
        table: &mut u32,
        state: &mut u32,
        scratch: &mut u32,
        buf: &mut u32,
        input: Shape,
        planned: &Planned,
    ) -> Result<(), Error> {
        self.push_plan(BlockPlan {
            input,
            output: planned.output,
            table: *table,
            table_len: planned.table,
            state: *state,
            state_len: planned.state,
        })?;
        *table = add(*table, planned.table)?;
        *state = add(*state, planned.state)?;
        *scratch = (*scratch).max(planned.scratch);
        let len = planned.output.len();
        if len == 0 || len > MAX_ELEMENTS as usize {
            return Err(Error::TooLarge {
                at: At::Output,
                param: "features",
                value: len.min(u32::MAX as usize) as u32,
                max: MAX_ELEMENTS,
            });
        }
        *buf = (*buf).max(len as u32);
        Ok(())
    }

    fn plan_image(&mut self, width: u32, height: u32, channels: u32) -> Result<(), Error> {
        let at = At::Input;
        if width == 0 {
            return Err(param(at, "width", "must be at least 1"));
        }
        if height == 0 {
            return Err(param(at, "height", "must be at least 1"));
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(param(at, "channels", "must be 1 to 4"));
        }
        let pixels = mul(at, "width", width, height)?;
        mul(at, "channels", pixels, channels)?;
        if !self.desc.stream.is_empty()
            || !self.desc.branches.is_empty()
            || !self.desc.post.is_empty()
        {
            return Err(param(
                at,
                "blocks",
                "an image pipeline has only `blocks` (no stream, branches or post)",
            ));
        }
        let mut ip = ImagePlan {
            width,
            height,
            channels,
            crop: [0, 0, width, height],
            out_w: width,
            out_h: height,
            resize: None,
            out_channels: channels,
        };
        let mut geometry_done = false;
        let mut cropped = false;
        for i in 0..self.desc.blocks.len() {
            let Some(b) = self.desc.blocks.get(i) else {
                break;
            };
            let at = At::Block {
                stage: Stage::Blocks,
                index: i as u8,
                name: b.name(),
            };
            let geometry = matches!(b, Block::Crop { .. } | Block::Resize { .. });
            if geometry && geometry_done {
                return Err(param(
                    at,
                    "blocks",
                    "crop and resize must come before per-pixel blocks",
                ));
            }
            let rows = ip.out_channels;
            let input = Shape {
                rows,
                cols: ip.out_w.saturating_mul(ip.out_h),
                kind: Kind::Other,
            };
            match b {
                Block::Crop {
                    x,
                    y,
                    width: w,
                    height: h,
                } => {
                    if cropped || ip.resize.is_some() {
                        return Err(param(at, "blocks", "at most one crop, before any resize"));
                    }
                    if *w == 0 || *h == 0 {
                        return Err(param(at, "width", "width and height must be at least 1"));
                    }
                    if x.checked_add(*w).is_none_or(|e| e > width) {
                        return Err(param(at, "x", "crop runs past the right edge of the image"));
                    }
                    if y.checked_add(*h).is_none_or(|e| e > height) {
                        return Err(param(at, "y", "crop runs past the bottom of the image"));
                    }
                    cropped = true;
                    ip.crop = [*x, *y, *w, *h];
                    ip.out_w = *w;
                    ip.out_h = *h;
                }
                Block::Resize {
                    width: w,
                    height: h,
                    method,
                } => {
                    if ip.resize.is_some() {
                        return Err(param(at, "blocks", "at most one resize"));
                    }
                    if *w == 0 || *h == 0 {
                        return Err(param(at, "width", "width and height must be at least 1"));
                    }
                    let px = mul(at, "width", *w, *h)?;
                    mul(at, "height", px, ip.out_channels)?;
                    ip.resize = Some(*method);
                    ip.out_w = *w;
                    ip.out_h = *h;
                }
                Block::Grayscale { weights } => {
                    geometry_done = true;
                    if ip.out_channels != 3 {
                        return Err(param(at, "input", "grayscale needs 3 channels (RGB)"));
                    }
                    for w in weights {
                        finite(at, "weights", *w)?;
                    }
                    ip.out_channels = 1;
                }
                Block::Scale { .. }
                | Block::ZScore { .. }
                | Block::MinMax { .. }
                | Block::Clip { .. } => {
                    geometry_done = true;
                    plan_block(at, b, input, None)?;
                }
                _ => return Err(param(
                    at,
                    "input",
                    "not an image block (crop, resize, grayscale, scale, zscore, min_max, clip)",
                )),
            }
            self.push_plan(BlockPlan {
                input,
                output: input,
                table: 0,
                table_len: 0,
                state: 0,
                state_len: 0,
            })?;
        }
        let out = mul(At::Output, "features", ip.out_w, ip.out_h)?;
        self.features = mul(At::Output, "features", out, ip.out_channels)?;
        self.image = Some(ip);
        self.layout = Layout::default();
        Ok(())
    }

    /// The description.
    pub fn desc(&self) -> &PipelineDesc<'a> {
        &self.desc
    }

    /// `f32` words of workspace a [`crate::Runtime`] needs (tables, state, ring buffer,
    /// intermediate buffers, stacked frames, scratch). Image pipelines need none.
    pub fn workspace_len(&self) -> usize {
        self.layout.total as usize
    }

    /// `f32` words of coefficient tables (windows, mel filterbanks, DCT matrices, IIR
    /// coefficients) at the start of the workspace: what [`crate::Runtime::new`] computes
    /// and [`crate::Runtime::with_tables`] takes precomputed.
    pub fn tables_len(&self) -> usize {
        self.layout.state as usize
    }

    /// Static RAM the pipeline needs in bytes: the workspace.
    pub fn ram_bytes(&self) -> usize {
        self.workspace_len() * 4
    }

    /// Values in one frame's feature vector (or in the processed image).
    pub fn features_per_frame(&self) -> usize {
        self.features as usize
    }

    /// Elements of the output tensor (`frames * features_per_frame`).
    pub fn output_len(&self) -> usize {
        self.features as usize * self.desc.output.frames as usize
    }

    /// The output tensor's element type.
    pub fn output_type(&self) -> OutputType {
        if self.desc.output.quantize.is_some() {
            OutputType::I8
        } else {
            OutputType::F32
        }
    }

    /// Bytes of the output tensor.
    pub fn output_bytes(&self) -> usize {
        self.output_len() * self.output_type().size()
    }

    /// The output tensor's shape: `[frames, features]` for signals,
    /// `[height, width, channels]` for images, `[features]` otherwise. Unused dims are 0.
    pub fn output_shape(&self) -> [usize; 3] {
        match (&self.image, self.desc.input) {
            (Some(ip), _) => [
                ip.out_h as usize,
                ip.out_w as usize,
                ip.out_channels as usize,
            ],
            (None, Input::Signal { .. }) => {
                [self.desc.output.frames as usize, self.features as usize, 0]
            }
            _ => [self.features as usize, 0, 0],
        }
    }

    /// Values expected per call for one-shot inputs: vector length, image bytes; the
    /// interleaved values per window for signals; the token capacity for text.
    pub fn input_len(&self) -> usize {
        match self.desc.input {
            Input::Signal { axes, window, .. } => axes as usize * window as usize,
            Input::Vector { len } => len as usize,
            Input::Text { max_tokens } => max_tokens as usize,
            Input::Image {
                width,
                height,
                channels,
            } => width as usize * height as usize * channels as usize,
        }
    }
}

fn plan_token_block(at: At, block: &Block<'_>, input: Shape) -> Result<Planned, Error> {
    match block {
        Block::Vocabulary {
            tokens,
            oov_buckets,
        } => {
            if tokens.len().saturating_add(*oov_buckets as usize) > (1 << 24) {
                return Err(param(
                    at,
                    "oov_buckets",
                    "tokens plus OOV buckets exceed 2^24 ids (ids must be exact in f32)",
                ));
            }
            if tokens.is_empty() {
                return Err(param(at, "tokens", "must hold at least one token"));
            }
            if tokens.iter().any(|t| t.is_empty()) {
                return Err(param(at, "tokens", "must not contain empty tokens"));
            }
        }
        Block::Hash { buckets, .. } => {
            if *buckets == 0 {
                return Err(param(at, "buckets", "must be at least 1"));
            }
            if *buckets > (1 << 24) {
                return Err(Error::TooLarge {
                    at,
                    param: "buckets",
                    value: *buckets,
                    max: 1 << 24,
                });
            }
        }
        _ => {
            return Err(param(
                at,
                "blocks",
                "a text pipeline starts with a `vocabulary` or `hash` block",
            ))
        }
    }
    Ok(Planned {
        output: input,
        table: 0,
        scratch: 0,
        state: 0,
    })
}
