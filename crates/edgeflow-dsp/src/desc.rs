//! The pipeline description: plain data, serialisable with serde.
//!
//! The same types are read from the artifact's `FeaturePipeline` section (postcard, zero-copy:
//! parameter lists borrow the artifact bytes) and, on the host with the `std` feature, from
//! TOML files. They only describe; [`crate::Pipeline::new`] validates every field before
//! anything runs.
//!
//! Two encodings are used for lists of numbers and tokens: in human-readable formats
//! (TOML) a list is a list (`mean = [0.1, 0.2]`, `tokens = ["yes", "no"]`); in postcard it
//! is one byte string (little-endian `f32`s, or tokens joined by `'\n'`) so that a device
//! borrows it from flash instead of copying it.

use core::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Most blocks in [`PipelineDesc::stream`].
pub const MAX_STREAM_BLOCKS: usize = 4;
/// Most blocks in [`PipelineDesc::blocks`].
pub const MAX_BLOCKS: usize = 12;
/// Most branches in [`PipelineDesc::branches`].
pub const MAX_BRANCHES: usize = 4;
/// Most blocks in one [`Branch`].
pub const MAX_BRANCH_BLOCKS: usize = 6;
/// Most blocks in [`PipelineDesc::post`].
pub const MAX_POST_BLOCKS: usize = 6;
/// Most statistics in one [`Block::Stats`].
pub const MAX_STATS: usize = 9;

/// A complete feature pipeline: what the input is, the blocks, and the output tensor.
///
/// Execution order for one window (signal), one vector, one token list or one image:
/// `blocks`; then, if there are `branches`, each branch on a copy of the result, their
/// outputs concatenated; then `post`; then the [`Output`] stage (stacking frames, quantizing).
/// `stream` blocks run on every incoming sample before framing (signal inputs only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDesc<'a> {
    /// What goes in.
    pub input: Input,
    /// Per-sample blocks applied while samples stream in, before framing (signal only):
    /// [`Block::Scale`], [`Block::Clip`], [`Block::PreEmphasis`], [`Block::Iir`].
    #[serde(default, borrow)]
    pub stream: heapless::Vec<Block<'a>, MAX_STREAM_BLOCKS>,
    /// Blocks applied to each window / vector / token list / image, in order.
    #[serde(default, borrow)]
    pub blocks: heapless::Vec<Block<'a>, MAX_BLOCKS>,
    /// Parallel feature branches, each fed the output of `blocks`; outputs are concatenated.
    #[serde(default, borrow)]
    pub branches: heapless::Vec<Branch<'a>, MAX_BRANCHES>,
    /// Blocks applied to the (concatenated) feature vector.
    #[serde(default, borrow)]
    pub post: heapless::Vec<Block<'a>, MAX_POST_BLOCKS>,
    /// Stacking and quantization of the model input tensor.
    #[serde(default)]
    pub output: Output,
}

/// One branch of parallel features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch<'a> {
    /// The branch's blocks, in order.
    #[serde(borrow)]
    pub blocks: heapless::Vec<Block<'a>, MAX_BRANCH_BLOCKS>,
}

/// The kind of input a pipeline takes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// A stream of samples, `axes` values per time step (interleaved), cut into windows of
    /// `window` time steps every `stride` time steps. Blocks see one `axes × window` matrix
    /// (one row per axis).
    Signal {
        /// Values per time step (1 for audio, 3 for an accelerometer).
        axes: u32,
        /// Time steps per second (needed by spectral blocks that work in Hz).
        rate_hz: f32,
        /// Time steps per window.
        window: u32,
        /// Time steps between the starts of consecutive windows.
        stride: u32,
    },
    /// One vector of `len` numbers per run (tabular data); blocks see a `1 × len` matrix.
    Vector {
        /// Numbers per input.
        len: u32,
    },
    /// Up to `max_tokens` strings per run; the first block is [`Block::Vocabulary`] or
    /// [`Block::Hash`], which turns them into a `1 × max_tokens` matrix of ids (-1 pads).
    Text {
        /// Most tokens per input.
        max_tokens: u32,
    },
    /// One 8-bit image per run, row-major, channels interleaved (HWC).
    Image {
        /// Pixels per row.
        width: u32,
        /// Rows.
        height: u32,
        /// Channels per pixel (1 to 4; 3 for RGB).
        channels: u32,
    },
}

/// How feature vectors become the model's input tensor.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Feature vectors (one per window) stacked into one tensor, oldest first
    /// (49 for one second of 20 ms MFCC frames). 1 for images, vectors and text.
    #[serde(default = "one")]
    pub frames: u32,
    /// New windows between two outputs once `frames` are available (0 means `frames`:
    /// non-overlapping outputs).
    #[serde(default)]
    pub hop: u32,
    /// Quantize to int8 with the model input's scale and zero point; `None` gives `f32`.
    #[serde(default)]
    pub quantize: Option<Quantize>,
}

fn one() -> u32 {
    1
}

impl Default for Output {
    fn default() -> Self {
        Output {
            frames: 1,
            hop: 0,
            quantize: None,
        }
    }
}

/// Affine int8 quantization, as TFLite: `q = clamp(round(x / scale) + zero_point, -128, 127)`,
/// rounding half away from zero.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantize {
    /// Positive, finite.
    pub scale: f32,
    /// In `-128..=127`.
    pub zero_point: i32,
}

// A device holds every block of a pipeline description by value (up to 41 of them, in
// the description and again in its copies while an artifact is parsed), so one large
// variant costs kilobytes of RAM and stack on a 32-bit core. The build fails if a variant
// grows `Block` beyond its 20 bytes there: give a large variant's parameters a borrowed
// wire form instead (as `F32s` and `FrontendOpts` do).
#[cfg(all(target_pointer_width = "32", not(feature = "std")))]
const _: () = assert!(core::mem::size_of::<Block<'static>>() <= 20);

/// One processing block. Field docs state the valid values; `Pipeline::new` checks them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Block<'a> {
    /// `y = x * scale + offset` (multiply, then add).
    Scale {
        /// Finite.
        scale: f32,
        /// Finite.
        #[serde(default)]
        offset: f32,
    },
    /// Per channel `y = (x - mean[c]) / std[c]`; one value per channel (rows of a signal,
    /// channels of an image), or one value for all.
    #[serde(rename = "zscore")]
    ZScore {
        /// Finite.
        #[serde(borrow)]
        mean: F32s<'a>,
        /// Finite and non-zero.
        #[serde(borrow)]
        std: F32s<'a>,
    },
    /// Per channel `y = (x - min[c]) / (max[c] - min[c])`.
    MinMax {
        /// Finite.
        #[serde(borrow)]
        min: F32s<'a>,
        /// Finite, above `min`.
        #[serde(borrow)]
        max: F32s<'a>,
    },
    /// `y = min(max(x, min), max)`.
    Clip {
        /// Not above `max`.
        min: f32,
        /// Not below `min`.
        max: f32,
    },
    /// `y[t] = x[t] - coef * x[t-1]` per axis, with `x[-1] = 0`. As a stream block the
    /// previous sample carries over between windows; in a window it restarts each window.
    PreEmphasis {
        /// Finite, usually 0.97.
        coef: f32,
    },
    /// Cascaded second-order IIR sections per axis (direct form II transposed, as
    /// `scipy.signal.sosfilt`), zero initial state. As a stream block the state carries
    /// over between windows; in a window it restarts each window.
    Iir {
        /// Six coefficients per section `b0 b1 b2 a0 a1 a2` with `a0 = 1` (scipy's `sos`).
        /// Empty in a TOML file that gives `design`: the host fills it in.
        #[serde(default, borrow)]
        sos: F32s<'a>,
        /// The Butterworth design the coefficients come from (informational on a device).
        #[serde(default)]
        design: Option<Butterworth>,
    },
    /// Statistics of each row: one output column per entry, in the order given.
    Stats {
        /// 1 to [`MAX_STATS`] statistics.
        stats: heapless::Vec<Stat, MAX_STATS>,
    },
    /// Multiplies each row by a window function of the row's length.
    Window {
        /// Hann or Hamming.
        kind: WindowKind,
        /// Periodic (for spectral analysis, librosa's default) or symmetric.
        #[serde(default = "yes")]
        periodic: bool,
    },
    /// Real FFT of each row, zero-padded to `n_fft`; outputs `n_fft / 2 + 1` bins per row:
    /// magnitude `|X|`, or power `|X|^2` with `power = true`. Unnormalised, as numpy's rfft.
    Spectrum {
        /// A power of two from 4 to 4096, not shorter than the row.
        n_fft: u32,
        /// Power instead of magnitude.
        #[serde(default)]
        power: bool,
    },
    /// `y = ln(max(x, floor))` or, with `base = "db"`, `10 log10(max(x, floor))`.
    Log {
        /// Natural log or decibels.
        #[serde(default)]
        base: LogBase,
        /// Positive noise floor.
        #[serde(default = "default_floor")]
        floor: f32,
    },
    /// Power in frequency bands of a spectrum row: for band `i`, the sum of `|X_k|^2` over
    /// the bins whose centre frequency `f_k = k * rate / n_fft` has
    /// `edges_hz[i] <= f_k < edges_hz[i+1]`.
    BandPower {
        /// At least two ascending edges, within `0..=rate/2`.
        #[serde(borrow)]
        edges_hz: F32s<'a>,
    },
    /// Mel filterbank energies of a spectrum row (as `librosa.filters.mel`).
    Mel {
        /// Number of mel bands: 1 to the number of spectrum bins.
        bands: u32,
        /// Lowest frequency, `0 <= fmin < fmax`.
        #[serde(default)]
        fmin: f32,
        /// Highest frequency, `<= rate / 2`.
        fmax: f32,
        /// Slaney (librosa's default) or HTK mel scale.
        #[serde(default)]
        scale: MelScale,
        /// Area normalisation of the triangles.
        #[serde(default)]
        norm: MelNorm,
    },
    /// Orthonormal DCT-II of each row, first `coefficients` outputs (MFCC), with optional
    /// sinusoidal liftering `1 + (L/2) sin(pi (k+1) / L)` (librosa's `lifter`).
    Dct {
        /// 1 to the row length.
        coefficients: u32,
        /// 0 for none, else positive.
        #[serde(default)]
        lifter: f32,
    },
    /// Keeps a rectangle of an image (must lie inside it).
    Crop {
        /// Left column.
        x: u32,
        /// Top row.
        y: u32,
        /// Columns kept (positive).
        width: u32,
        /// Rows kept (positive).
        height: u32,
    },
    /// Resamples an image to `width × height` (half-pixel centres, as `tf.image.resize`
    /// without antialiasing).
    Resize {
        /// Output columns (positive).
        width: u32,
        /// Output rows (positive).
        height: u32,
        /// Nearest neighbour or bilinear.
        #[serde(default)]
        method: Interpolation,
    },
    /// RGB to one channel: `w[0] r + w[1] g + w[2] b`.
    Grayscale {
        /// Weights; default ITU-R 601 as `tf.image.rgb_to_grayscale`.
        #[serde(default = "gray_weights")]
        weights: [f32; 3],
    },
    /// Token to id by position in `tokens`; unknown tokens go to `len + hash % oov_buckets`,
    /// or -1 with no OOV buckets. First block of a text pipeline.
    Vocabulary {
        /// Distinct tokens, none empty or containing `'\n'`.
        #[serde(borrow)]
        tokens: Tokens<'a>,
        /// Extra ids for unknown tokens.
        #[serde(default)]
        oov_buckets: u32,
    },
    /// Token to `fnv1a64(seed, token) % buckets`. First block of a text pipeline.
    Hash {
        /// Positive.
        buckets: u32,
        /// Mixed into the hash.
        #[serde(default)]
        seed: u32,
    },
    /// Integer ids to one-hot vectors of `depth`; ids outside `0..depth` give zeros.
    /// `reduce = "sum"` or `"max"` adds up the rows of one input into one vector
    /// (bag of words / multi-hot): output `rows × depth`; otherwise `rows × (cols * depth)`.
    OneHot {
        /// Positive.
        depth: u32,
        /// Keep each element's vector, or combine them.
        #[serde(default)]
        reduce: Reduce,
    },
    /// Index of the bucket each value falls in: the number of boundaries `<= x`
    /// (`tf.raw_ops.Bucketize`).
    Bucketize {
        /// At least one, ascending, finite.
        #[serde(borrow)]
        boundaries: F32s<'a>,
    },
    /// TensorFlow's fixed-point audio front end (the `audio_microfrontend` op and TFLite
    /// Micro's `micro_frontend` library, as micro_speech uses it), integer only: Hann
    /// window (Q12), 16-bit fixed-point real FFT (kissfft's arithmetic), energy, mel
    /// filterbank with integer square root, noise reduction, optional PCAN gain control,
    /// fixed-point log. Bit-exact with the op (see `conformance/frontend`).
    ///
    /// The first block of `blocks`, on a one-axis signal in 16-bit units (the `window`
    /// and `stride` of the input are the op's `window_size`/`window_step` in samples); no
    /// `stream` blocks. Outputs `channels` values per window: the op's 16-bit features
    /// divided by `out_scale` (as the op with `out_type = float32`). Keeps one noise
    /// estimate per channel across windows.
    ///
    /// The options are held as [`FrontendOpts`] (their encoded bytes on a device), not as
    /// a [`Frontend`] in place: every `Block` is as large as its largest variant, and the
    /// 52-byte options would more than double the size of every block of every pipeline
    /// on a 32-bit target. [`crate::Pipeline::new`] decodes and checks them once.
    AudioFrontend(FrontendOpts<'a>),
}

/// Options of [`Block::AudioFrontend`]: the `audio_microfrontend` op's attributes, with
/// its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Frontend {
    /// Filterbank channels, 1 to 64 (op: `num_channels`, default 32; micro_speech uses 40).
    pub channels: u32,
    /// Lowest filterbank frequency in Hz, `>= 0` (op: `lower_band_limit`, 125).
    pub lower_band_limit: f32,
    /// Highest filterbank frequency in Hz, above the lower one and at most `rate / 2`
    /// (op: `upper_band_limit`, 7500).
    pub upper_band_limit: f32,
    /// Noise-reduction fixed-point headroom bits, 0 to 16 (op: `smoothing_bits`, 10).
    pub smoothing_bits: u32,
    /// Noise-estimate smoothing of even channels, `0..=1` (op: `even_smoothing`, 0.025).
    pub even_smoothing: f32,
    /// Noise-estimate smoothing of odd channels, `0..=1` (op: `odd_smoothing`, 0.06).
    pub odd_smoothing: f32,
    /// Fraction of the signal kept after noise subtraction, `0..=1`
    /// (op: `min_signal_remaining`, 0.05).
    pub min_signal_remaining: f32,
    /// PCAN gain control (op: `enable_pcan`, false; micro_speech: true).
    pub pcan: bool,
    /// PCAN exponent, finite and `>= 0` (op: `pcan_strength`, 0.95).
    pub pcan_strength: f32,
    /// PCAN denominator offset, positive (op: `pcan_offset`, 80).
    pub pcan_offset: f32,
    /// PCAN gain fractional bits (op: `gain_bits`, 21).
    pub gain_bits: u32,
    /// Fixed-point log (op: `enable_log`, true).
    pub log: bool,
    /// Log output scale `2^scale_shift`, 0 to 15 (op: `scale_shift`, 6).
    pub scale_shift: u32,
    /// Divides every output value (op: `out_scale`, 1), positive.
    pub out_scale: u32,
}

impl Default for Frontend {
    fn default() -> Self {
        Frontend {
            channels: 32,
            lower_band_limit: 125.0,
            upper_band_limit: 7500.0,
            smoothing_bits: 10,
            even_smoothing: 0.025,
            odd_smoothing: 0.06,
            min_signal_remaining: 0.05,
            pcan: false,
            pcan_strength: 0.95,
            pcan_offset: 80.0,
            gain_bits: 21,
            log: true,
            scale_shift: 6,
            out_scale: 1,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_floor() -> f32 {
    1e-10
}

fn gray_weights() -> [f32; 3] {
    [0.2989, 0.587, 0.114]
}

impl Block<'_> {
    /// The block's name as written in TOML (`"mel"`, `"zscore"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Block::Scale { .. } => "scale",
            Block::ZScore { .. } => "zscore",
            Block::MinMax { .. } => "min_max",
            Block::Clip { .. } => "clip",
            Block::PreEmphasis { .. } => "pre_emphasis",
            Block::Iir { .. } => "iir",
            Block::Stats { .. } => "stats",
            Block::Window { .. } => "window",
            Block::Spectrum { .. } => "spectrum",
            Block::Log { .. } => "log",
            Block::BandPower { .. } => "band_power",
            Block::Mel { .. } => "mel",
            Block::Dct { .. } => "dct",
            Block::Crop { .. } => "crop",
            Block::Resize { .. } => "resize",
            Block::Grayscale { .. } => "grayscale",
            Block::Vocabulary { .. } => "vocabulary",
            Block::Hash { .. } => "hash",
            Block::OneHot { .. } => "one_hot",
            Block::Bucketize { .. } => "bucketize",
            Block::AudioFrontend(_) => "audio_frontend",
        }
    }
}

#[cfg(feature = "std")]
impl Block<'_> {
    /// The same block owning its parameter lists (bytes stay the same bytes: the owned
    /// block equals this one and encodes to the same postcard bytes).
    pub fn into_owned(self) -> Block<'static> {
        match self {
            Block::Scale { scale, offset } => Block::Scale { scale, offset },
            Block::ZScore { mean, std } => Block::ZScore {
                mean: mean.into_owned(),
                std: std.into_owned(),
            },
            Block::MinMax { min, max } => Block::MinMax {
                min: min.into_owned(),
                max: max.into_owned(),
            },
            Block::Clip { min, max } => Block::Clip { min, max },
            Block::PreEmphasis { coef } => Block::PreEmphasis { coef },
            Block::Iir { sos, design } => Block::Iir {
                sos: sos.into_owned(),
                design,
            },
            Block::Stats { stats } => Block::Stats { stats },
            Block::Window { kind, periodic } => Block::Window { kind, periodic },
            Block::Spectrum { n_fft, power } => Block::Spectrum { n_fft, power },
            Block::Log { base, floor } => Block::Log { base, floor },
            Block::BandPower { edges_hz } => Block::BandPower {
                edges_hz: edges_hz.into_owned(),
            },
            Block::Mel {
                bands,
                fmin,
                fmax,
                scale,
                norm,
            } => Block::Mel {
                bands,
                fmin,
                fmax,
                scale,
                norm,
            },
            Block::Dct {
                coefficients,
                lifter,
            } => Block::Dct {
                coefficients,
                lifter,
            },
            Block::Crop {
                x,
                y,
                width,
                height,
            } => Block::Crop {
                x,
                y,
                width,
                height,
            },
            Block::Resize {
                width,
                height,
                method,
            } => Block::Resize {
                width,
                height,
                method,
            },
            Block::Grayscale { weights } => Block::Grayscale { weights },
            Block::Vocabulary {
                tokens,
                oov_buckets,
            } => Block::Vocabulary {
                tokens: tokens.into_owned(),
                oov_buckets,
            },
            Block::Hash { buckets, seed } => Block::Hash { buckets, seed },
            Block::OneHot { depth, reduce } => Block::OneHot { depth, reduce },
            Block::Bucketize { boundaries } => Block::Bucketize {
                boundaries: boundaries.into_owned(),
            },
            Block::AudioFrontend(opts) => Block::AudioFrontend(opts.into_owned()),
        }
    }
}

/// The blocks of `v`, owned, in a list of the same capacity.
#[cfg(feature = "std")]
fn owned_blocks<const N: usize>(
    v: heapless::Vec<Block<'_>, N>,
) -> heapless::Vec<Block<'static>, N> {
    let mut out = heapless::Vec::new();
    for b in v {
        // Cannot fail: `out` has the capacity `v`'s blocks fitted in.
        let _ = out.push(b.into_owned());
    }
    out
}

#[cfg(feature = "std")]
impl PipelineDesc<'_> {
    /// The same description owning all its data, e.g. one read zero-copy from an
    /// artifact's `FeaturePipeline` section ([`crate::Pipeline::from_bytes`]) kept after
    /// the artifact bytes are gone. Postcard cannot decode straight into a
    /// `PipelineDesc<'static>` from borrowed bytes (the lists borrow them); this copies
    /// them instead. The result equals `self` and encodes to the same bytes
    /// ([`crate::host::to_bytes`]).
    pub fn into_owned(self) -> PipelineDesc<'static> {
        PipelineDesc {
            input: self.input,
            stream: owned_blocks(self.stream),
            blocks: owned_blocks(self.blocks),
            branches: {
                let mut out = heapless::Vec::new();
                for b in self.branches {
                    // Cannot fail: the same capacity as `self.branches`.
                    let _ = out.push(Branch {
                        blocks: owned_blocks(b.blocks),
                    });
                }
                out
            },
            post: owned_blocks(self.post),
            output: self.output,
        }
    }
}

/// A time-domain statistic of one row of `n` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// `sum / n`.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// `sqrt(sum x^2 / n)`.
    Rms,
    /// Population standard deviation `sqrt(m2)` (numpy's `std`, ddof 0).
    Std,
    /// `m3 / m2^1.5` (scipy.stats.skew, biased); 0 for a constant row.
    Skewness,
    /// Excess kurtosis `m4 / m2^2 - 3` (scipy.stats.kurtosis, Fisher, biased); 0 for a
    /// constant row.
    Kurtosis,
    /// Sign changes between neighbours (`x < 0` is negative, zero is positive) over `n - 1`.
    ZeroCrossingRate,
    /// `max - min`.
    PeakToPeak,
}

/// Window functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// `0.5 - 0.5 cos(2 pi n / D)`.
    Hann,
    /// `0.54 - 0.46 cos(2 pi n / D)`.
    Hamming,
}

/// Logarithm flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogBase {
    /// Natural logarithm.
    #[default]
    Ln,
    /// `10 log10` (librosa's `power_to_db` with `ref = 1`, no `top_db`).
    Db,
}

/// Mel scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelScale {
    /// Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above (librosa).
    #[default]
    Slaney,
    /// `2595 log10(1 + f / 700)` (HTK, torchaudio's default).
    Htk,
}

/// Mel filter normalisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MelNorm {
    /// Each triangle scaled by `2 / (f_{i+2} - f_i)` (constant energy per band, librosa's default).
    #[default]
    Slaney,
    /// Triangles of peak 1 (HTK).
    None,
}

/// Image interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear.
    #[default]
    Bilinear,
}

/// How [`Block::OneHot`] combines the vectors of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduce {
    /// One vector per element.
    #[default]
    None,
    /// Counts (bag of words).
    Sum,
    /// 0/1 (multi-hot).
    Max,
}

/// A Butterworth filter design, turned into [`Block::Iir`] coefficients on the host.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Butterworth {
    /// Low-pass or high-pass.
    pub kind: FilterKind,
    /// Filter order, 1 to 8.
    pub order: u32,
    /// -3 dB frequency, `0 < cutoff_hz < rate / 2`.
    pub cutoff_hz: f32,
}

/// Filter responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// Passes low frequencies.
    Lowpass,
    /// Passes high frequencies.
    Highpass,
}

/// Wire bytes held by an [`F32s`] or a [`FrontendOpts`]: borrowed from the artifact (a
/// device), or owned (the host, `std` feature: lists read from TOML, descriptions made
/// [`PipelineDesc::into_owned`]). Both forms are the same bytes, so they compare and
/// encode alike.
#[derive(Clone)]
enum WireBytes<'a> {
    Borrowed(&'a [u8]),
    #[cfg(feature = "std")]
    Owned(std::vec::Vec<u8>),
}

impl WireBytes<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            WireBytes::Borrowed(b) => b,
            #[cfg(feature = "std")]
            WireBytes::Owned(v) => v,
        }
    }

    /// The same bytes, owned.
    #[cfg(feature = "std")]
    fn into_owned(self) -> WireBytes<'static> {
        match self {
            WireBytes::Borrowed(b) => WireBytes::Owned(b.to_vec()),
            WireBytes::Owned(v) => WireBytes::Owned(v),
        }
    }
}

impl PartialEq for WireBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// A list of `f32` parameters: their little-endian bytes (borrowed on a device), a list in
/// TOML. Two lists are equal when their bytes are (bit for bit: `-0.0` differs from
/// `0.0`, a NaN equals the same NaN).
#[derive(Clone, PartialEq)]
pub struct F32s<'a>(WireBytes<'a>);

impl Default for F32s<'_> {
    fn default() -> Self {
        F32s(WireBytes::Borrowed(&[]))
    }
}

impl<'a> F32s<'a> {
    /// A list over little-endian `f32` bytes (a trailing partial value is ignored; the
    /// pipeline validation rejects it).
    pub const fn from_le_bytes(bytes: &'a [u8]) -> Self {
        F32s(WireBytes::Borrowed(bytes))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.as_slice().len() / 4
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the bytes end with a trailing partial value (never for a list built from
    /// numbers).
    pub fn has_partial_value(&self) -> bool {
        self.0.as_slice().len() % 4 != 0
    }

    /// Value `i`, or `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<f32> {
        let s = self
            .0
            .as_slice()
            .get(i.checked_mul(4)?..i.checked_mul(4)?.checked_add(4)?)?;
        Some(f32::from_le_bytes(*s.first_chunk::<4>()?))
    }

    /// Value `i`, or value 0 when the list has a single value (per-channel broadcast);
    /// `0.0` past the end (validation makes that unreachable).
    #[inline]
    pub fn channel(&self, i: usize) -> f32 {
        if self.len() == 1 {
            self.get(0).unwrap_or(0.0)
        } else {
            self.get(i).unwrap_or(0.0)
        }
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// The same list owning its bytes (identical bytes, so it encodes identically).
    #[cfg(feature = "std")]
    pub fn into_owned(self) -> F32s<'static> {
        F32s(self.0.into_owned())
    }
}

#[cfg(feature = "std")]
impl From<std::vec::Vec<f32>> for F32s<'static> {
    fn from(v: std::vec::Vec<f32>) -> Self {
        F32s(WireBytes::Owned(
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ))
    }
}

impl fmt::Debug for F32s<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for F32s<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut seq = s.serialize_seq(Some(self.len()))?;
            for v in self.iter() {
                seq.serialize_element(&v)?;
            }
            seq.end()
        } else {
            s.serialize_bytes(self.0.as_slice())
        }
    }
}

struct F32sVisitor;

impl<'de> Visitor<'de> for F32sVisitor {
    type Value = F32s<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(F32s(WireBytes::Borrowed(v)))
    }

    #[cfg(feature = "std")]
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(F32s(WireBytes::Owned(v.to_vec())))
    }

    #[cfg(feature = "std")]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = std::vec::Vec::new();
        while let Some(x) = seq.next_element::<f32>()? {
            v.extend_from_slice(&x.to_le_bytes());
        }
        Ok(F32s(WireBytes::Owned(v)))
    }

    #[cfg(not(feature = "std"))]
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(
            "number lists in human-readable form need the `std` feature",
        ))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for F32s<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_seq(F32sVisitor)
        } else {
            d.deserialize_bytes(F32sVisitor)
        }
    }
}

/// The options of [`Block::AudioFrontend`] as a block holds them: on a device, the
/// postcard encoding of a [`Frontend`] borrowed from the artifact (8 bytes on a 32-bit
/// target, so the rarely used front end does not grow every [`Block`]); on the host with
/// the `std` feature, also an owned [`Frontend`] (from TOML or [`From`]) or owned bytes
/// ([`FrontendOpts::into_owned`]). In TOML they are
/// the [`Frontend`] table itself (`audio_frontend = { channels = 40, ... }`); in postcard,
/// one byte string holding the `Frontend`'s own postcard encoding.
#[derive(Clone)]
pub struct FrontendOpts<'a>(FrontendRepr<'a>);

#[derive(Clone, PartialEq)]
enum FrontendRepr<'a> {
    Wire(WireBytes<'a>),
    #[cfg(feature = "std")]
    Owned(std::boxed::Box<Frontend>),
}

/// Bytes enough for the postcard encoding of any [`Frontend`] (5 `u32`s of at most 5
/// bytes, 7 `f32`s of 4, 2 `bool`s of 1: 55).
#[cfg(feature = "std")]
const FRONTEND_WIRE_MAX: usize = 64;

impl<'a> FrontendOpts<'a> {
    /// Options over the postcard encoding of a [`Frontend`] (checked by [`Self::decode`]).
    pub const fn from_wire(bytes: &'a [u8]) -> Self {
        FrontendOpts(FrontendRepr::Wire(WireBytes::Borrowed(bytes)))
    }

    /// The options, or `None` when the bytes are not exactly one postcard-encoded
    /// [`Frontend`] (no byte left over). [`crate::Pipeline::new`] reports that as an
    /// [`crate::Error::Param`] on the block.
    pub fn decode(&self) -> Option<Frontend> {
        match &self.0 {
            FrontendRepr::Wire(b) => match postcard::take_from_bytes::<Frontend>(b.as_slice()) {
                Ok((fe, [])) => Some(fe),
                _ => None,
            },
            #[cfg(feature = "std")]
            FrontendRepr::Owned(fe) => Some(**fe),
        }
    }
    /// The same options owning their data: bytes stay the same bytes (so they encode
    /// identically, even malformed ones), owned options stay owned.
    #[cfg(feature = "std")]
    pub fn into_owned(self) -> FrontendOpts<'static> {
        FrontendOpts(match self.0 {
            FrontendRepr::Wire(b) => FrontendRepr::Wire(b.into_owned()),
            FrontendRepr::Owned(fe) => FrontendRepr::Owned(fe),
        })
    }
}

/// Equal when both decode to equal options, whatever their form (bytes or owned);
/// malformed options equal only the same malformed bytes.
impl PartialEq for FrontendOpts<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.decode(), other.decode()) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.0 == other.0,
            _ => false,
        }
    }
}

#[cfg(feature = "std")]
impl From<Frontend> for FrontendOpts<'static> {
    fn from(fe: Frontend) -> Self {
        FrontendOpts(FrontendRepr::Owned(std::boxed::Box::new(fe)))
    }
}

impl fmt::Debug for FrontendOpts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decode() {
            Some(fe) => fe.fmt(f),
            None => f.write_str("FrontendOpts(<malformed>)"),
        }
    }
}

impl Serialize for FrontendOpts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        if s.is_human_readable() {
            let fe = self
                .decode()
                .ok_or_else(|| S::Error::custom("malformed audio_frontend options"))?;
            return fe.serialize(s);
        }
        match &self.0 {
            FrontendRepr::Wire(b) => s.serialize_bytes(b.as_slice()),
            #[cfg(feature = "std")]
            FrontendRepr::Owned(fe) => {
                let mut buf = [0u8; FRONTEND_WIRE_MAX];
                let used = postcard::to_slice(&**fe, &mut buf).map_err(S::Error::custom)?;
                s.serialize_bytes(used)
            }
        }
    }
}

struct FrontendOptsVisitor;

impl<'de> Visitor<'de> for FrontendOptsVisitor {
    type Value = FrontendOpts<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the encoded audio front end options")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(FrontendOpts(FrontendRepr::Wire(WireBytes::Borrowed(v))))
    }

    #[cfg(feature = "std")]
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        match postcard::take_from_bytes::<Frontend>(v) {
            Ok((fe, [])) => Ok(FrontendOpts::from(fe)),
            _ => Err(E::custom("malformed audio_frontend options")),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FrontendOpts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            #[cfg(feature = "std")]
            {
                Frontend::deserialize(d).map(FrontendOpts::from)
            }
            #[cfg(not(feature = "std"))]
            {
                Err(de::Error::custom(
                    "audio_frontend options in human-readable form need the `std` feature",
                ))
            }
        } else {
            d.deserialize_bytes(FrontendOptsVisitor)
        }
    }
}

/// A vocabulary: borrowed `'\n'`-joined text on a device, a list of strings in TOML.
/// Two vocabularies are equal when they list the same tokens in the same order, whatever
/// their form.
#[derive(Clone, Default)]
pub struct Tokens<'a>(TokRepr<'a>);

#[derive(Clone)]
enum TokRepr<'a> {
    Wire(&'a str),
    #[cfg(feature = "std")]
    Owned(std::vec::Vec<std::string::String>),
}

impl Default for TokRepr<'_> {
    fn default() -> Self {
        TokRepr::Wire("")
    }
}

impl<'a> Tokens<'a> {
    /// A vocabulary over `'\n'`-joined tokens.
    pub const fn from_joined(text: &'a str) -> Self {
        Tokens(TokRepr::Wire(text))
    }

    /// The tokens in id order.
    pub fn iter(&self) -> TokenIter<'_> {
        TokenIter(match &self.0 {
            TokRepr::Wire(t) => TokIterRepr::Wire((!t.is_empty()).then(|| t.split('\n'))),
            #[cfg(feature = "std")]
            TokRepr::Owned(v) => TokIterRepr::Owned(v.iter()),
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The id of `token` (its position), or `None`. Linear in the vocabulary size.
    pub fn position(&self, token: &str) -> Option<usize> {
        self.iter().position(|t| t == token)
    }
    /// The same tokens, owned. Joining them with `'\n'` gives back the joined text (a
    /// split of non-empty text joins back to it; empty text has no tokens), so the owned
    /// list encodes to the same bytes.
    #[cfg(feature = "std")]
    pub fn into_owned(self) -> Tokens<'static> {
        Tokens(TokRepr::Owned(match self.0 {
            TokRepr::Wire(t) => split_joined(t),
            TokRepr::Owned(v) => v,
        }))
    }
}

impl PartialEq for Tokens<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Iterator over the tokens of a [`Tokens`], in id order.
#[derive(Clone, Debug)]
pub struct TokenIter<'t>(TokIterRepr<'t>);

#[derive(Clone, Debug)]
enum TokIterRepr<'t> {
    Wire(Option<core::str::Split<'t, char>>),
    #[cfg(feature = "std")]
    Owned(core::slice::Iter<'t, std::string::String>),
}

impl<'t> Iterator for TokenIter<'t> {
    type Item = &'t str;
    fn next(&mut self) -> Option<&'t str> {
        match &mut self.0 {
            TokIterRepr::Wire(s) => s.as_mut()?.next(),
            #[cfg(feature = "std")]
            TokIterRepr::Owned(it) => it.next().map(|s| s.as_str()),
        }
    }
}

#[cfg(feature = "std")]
impl From<std::vec::Vec<std::string::String>> for Tokens<'static> {
    fn from(v: std::vec::Vec<std::string::String>) -> Self {
        Tokens(TokRepr::Owned(v))
    }
}

/// `'\n'`-joined tokens as a list (none for empty text), as [`Tokens::iter`] reads them.
#[cfg(feature = "std")]
fn split_joined(joined: &str) -> std::vec::Vec<std::string::String> {
    if joined.is_empty() {
        std::vec::Vec::new()
    } else {
        joined.split('\n').map(std::string::String::from).collect()
    }
}

impl fmt::Debug for Tokens<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Tokens<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut seq = s.serialize_seq(None)?;
            for t in self.iter() {
                seq.serialize_element(t)?;
            }
            seq.end()
        } else {
            match &self.0 {
                TokRepr::Wire(t) => s.serialize_str(t),
                #[cfg(feature = "std")]
                TokRepr::Owned(v) => s.serialize_str(&v.join("\n")),
            }
        }
    }
}

struct TokensVisitor;

impl<'de> Visitor<'de> for TokensVisitor {
    type Value = Tokens<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Tokens(TokRepr::Wire(v)))
    }

    #[cfg(feature = "std")]
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Tokens(TokRepr::Owned(split_joined(v))))
    }

    #[cfg(feature = "std")]
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = std::vec::Vec::new();
        while let Some(x) = seq.next_element::<std::string::String>()? {
            v.push(x);
        }
        Ok(Tokens(TokRepr::Owned(v)))
    }

    #[cfg(not(feature = "std"))]
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(
            "token lists in human-readable form need the `std` feature",
        ))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Tokens<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            d.deserialize_seq(TokensVisitor)
        } else {
            d.deserialize_str(TokensVisitor)
        }
    }
}
