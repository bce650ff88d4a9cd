use core::fmt;

/// Which pipeline stage a block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// `stream[..]`: per-sample blocks before framing.
    Stream,
    /// `blocks[..]`: the main blocks.
    Blocks,
    /// `branches[n].blocks[..]`.
    Branch(u8),
    /// `post[..]`: blocks on the concatenated features.
    Post,
}

/// Where in a pipeline description a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum At {
    /// The `input` table.
    Input,
    /// A block: its stage, position in the stage and name.
    Block {
        /// The stage.
        stage: Stage,
        /// Position within the stage, from 0.
        index: u8,
        /// The block's name (`"mel"`, `"spectrum"`, ...).
        name: &'static str,
    },
    /// The `output` table.
    Output,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            At::Input => f.write_str("input"),
            At::Output => f.write_str("output"),
            At::Block { stage, index, name } => match stage {
                Stage::Stream => write!(f, "stream[{index}] ({name})"),
                Stage::Blocks => write!(f, "blocks[{index}] ({name})"),
                Stage::Branch(b) => write!(f, "branches[{b}].blocks[{index}] ({name})"),
                Stage::Post => write!(f, "post[{index}] ({name})"),
            },
        }
    }
}

/// Why a pipeline was rejected or could not run. Small and `Copy`; every variant names
/// what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The postcard bytes of a pipeline description do not decode.
    Decode,
    /// The description has bytes after its end.
    TrailingBytes,
    /// A parameter is invalid: where, which parameter, and why.
    Param {
        /// The block or table.
        at: At,
        /// The parameter's name as written in TOML.
        param: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A parameter value exceeds what the block supports.
    TooLarge {
        /// The block or table.
        at: At,
        /// The parameter's name.
        param: &'static str,
        /// The value given.
        value: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// The caller's workspace is smaller than the pipeline needs.
    WorkspaceTooSmall {
        /// `f32` words needed ([`crate::Pipeline::workspace_len`]).
        needed: usize,
        /// Words given.
        got: usize,
    },
    /// A framing buffer cannot hold one window.
    BufferTooSmall {
        /// Values needed (`window * axes`).
        needed: usize,
        /// Values given.
        got: usize,
    },
    /// An input or output buffer has the wrong length.
    Length {
        /// What the buffer is.
        what: &'static str,
        /// Length expected.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The call does not match the pipeline's input kind (e.g. pushing samples into an
    /// image pipeline).
    WrongInputKind {
        /// The input kind the pipeline takes.
        expected: &'static str,
    },
    /// A `process` call with no complete window waiting.
    NoWindow,
    /// A precomputed table word ([`crate::Runtime::with_tables`]) is NaN or infinite.
    BadTable {
        /// Index of the word.
        index: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Decode => f.write_str("feature pipeline description does not decode"),
            Error::TrailingBytes => {
                f.write_str("feature pipeline description has bytes after its end")
            }
            Error::Param { at, param, reason } => write!(f, "{at}: `{param}` {reason}"),
            Error::TooLarge {
                at,
                param,
                value,
                max,
            } => write!(f, "{at}: `{param}` is {value}, at most {max} is supported"),
            Error::WorkspaceTooSmall { needed, got } => write!(
                f,
                "feature workspace too small: the pipeline needs {needed} f32 words ({} bytes), {got} were given",
                needed.saturating_mul(4)
            ),
            Error::BufferTooSmall { needed, got } => write!(
                f,
                "`window` is longer than the buffer: one window needs {needed} values, the buffer holds {got}"
            ),
            Error::Length {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected} values, got {got}"),
            Error::WrongInputKind { expected } => {
                write!(f, "this pipeline takes {expected} input")
            }
            Error::NoWindow => f.write_str("no complete window to process"),
            Error::BadTable { index } => {
                write!(f, "precomputed pipeline table word {index} is not finite")
            }
        }
    }
}

impl core::error::Error for Error {}
