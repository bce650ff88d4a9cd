//! The `PipelineTables` section: the feature pipeline's coefficient tables (windows, mel
//! filterbanks, DCT matrices, filter coefficients), computed once on the host so that a
//! device does not design them at every start (edgeflow-dsp's `Runtime::with_tables`).
//!
//! ```text
//! offset  size  field
//! 0       4     CRC-32 (as the artifact's) of the FeaturePipeline section these tables
//!               were computed for (little-endian)
//! 4       4     word count n (little-endian u32), at most MAX_WORDS
//! 8       4n    the tables: n little-endian f32, every one finite, in the order
//!               edgeflow-dsp lays them out in its workspace
//! ```
//!
//! [`PipelineTables::parse`] checks the length, the count bound and that every word is
//! finite; [`crate::Artifact::parse`] also checks the CRC against the artifact's
//! FeaturePipeline section, so tables can never be paired with another pipeline. Whether
//! the count matches the pipeline's table layout is checked where the pipeline is known
//! (edgeflow-dsp). Never panics on any bytes.

use core::fmt;

/// Largest word count accepted (edgeflow-dsp's `MAX_ELEMENTS`, 2^22).
pub const MAX_WORDS: usize = 1 << 22;

/// Bytes before the words.
const HEAD: usize = 8;

/// Why a `PipelineTables` section was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TablesError {
    /// Fewer than the 8 header bytes.
    TooShort {
        /// Bytes given.
        got: usize,
    },
    /// The word count is above [`MAX_WORDS`].
    TooManyWords {
        /// The count in the header.
        count: u32,
    },
    /// The section length is not 8 + 4 × the word count.
    Length {
        /// Bytes the header's count implies.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// A word is NaN or infinite.
    NotFinite {
        /// Index of the word.
        index: usize,
    },
    /// The tables were computed for another pipeline (CRC of the FeaturePipeline
    /// section differs), or the artifact has no FeaturePipeline section.
    OtherPipeline {
        /// The CRC stored in the tables section.
        stored: u32,
        /// The CRC of the artifact's FeaturePipeline section (0 if absent).
        actual: u32,
    },
}

impl fmt::Display for TablesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { got } => write!(
                f,
                "pipeline tables section: {got} bytes, its header alone needs {HEAD}"
            ),
            Self::TooManyWords { count } => write!(
                f,
                "pipeline tables section: {count} words, at most {MAX_WORDS} allowed"
            ),
            Self::Length { expected, got } => write!(
                f,
                "pipeline tables section: the word count implies {expected} bytes, got {got}"
            ),
            Self::NotFinite { index } => {
                write!(f, "pipeline tables section: word {index} is not finite")
            }
            Self::OtherPipeline { stored, actual } => write!(
                f,
                "pipeline tables section was computed for another pipeline (CRC {stored:#010x}, the artifact's pipeline section has {actual:#010x})"
            ),
        }
    }
}

impl core::error::Error for TablesError {}

/// A checked view of a `PipelineTables` section (borrowed, nothing copied).
#[derive(Clone, Copy, Debug)]
pub struct PipelineTables<'a> {
    pipeline_crc: u32,
    words: &'a [u8],
    raw: &'a [u8],
}

impl<'a> PipelineTables<'a> {
    /// Checks the header, the length and that every word is a finite `f32`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TablesError> {
        let (Some(crc), Some(count)) = (
            bytes.first_chunk::<4>(),
            bytes.get(4..).and_then(|b| b.first_chunk::<4>()),
        ) else {
            return Err(TablesError::TooShort { got: bytes.len() });
        };
        let count = u32::from_le_bytes(*count);
        if count as usize > MAX_WORDS {
            return Err(TablesError::TooManyWords { count });
        }
        // count <= 2^22, so 8 + 4 count fits in usize on every target.
        let expected = (count as usize).saturating_mul(4).saturating_add(HEAD);
        let words = bytes.get(HEAD..).unwrap_or(&[]);
        if bytes.len() != expected {
            return Err(TablesError::Length {
                expected,
                got: bytes.len(),
            });
        }
        for (index, w) in words.chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes(w.try_into().unwrap_or([0; 4]));
            if !v.is_finite() {
                return Err(TablesError::NotFinite { index });
            }
        }
        Ok(Self {
            pipeline_crc: u32::from_le_bytes(*crc),
            words,
            raw: bytes,
        })
    }

    /// CRC-32 of the FeaturePipeline section the tables belong to.
    pub fn pipeline_crc(&self) -> u32 {
        self.pipeline_crc
    }

    /// Number of `f32` words.
    pub fn len(&self) -> usize {
        self.words.len() / 4
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The words as little-endian bytes (`4 × len()` of them).
    pub fn bytes(&self) -> &'a [u8] {
        self.words
    }

    /// The whole section as stored (header and words), for rewriting an artifact.
    pub fn section(&self) -> &'a [u8] {
        self.raw
    }

    /// The words, in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.words
            .chunks_exact(4)
            .map(|w| f32::from_le_bytes(w.try_into().unwrap_or([0; 4])))
    }
}

/// Encodes a `PipelineTables` section for the FeaturePipeline section `pipeline` (host).
#[cfg(feature = "std")]
pub fn encode(pipeline: &[u8], values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len().saturating_mul(4).saturating_add(HEAD));
    out.extend_from_slice(&crate::CRC32.checksum(pipeline).to_le_bytes());
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_every_error() {
        let enc = encode(b"pipe", &[0.5, -1.0, 3.0]);
        let t = PipelineTables::parse(&enc).expect("valid");
        assert_eq!(t.pipeline_crc(), crate::CRC32.checksum(b"pipe"));
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![0.5, -1.0, 3.0]);
        assert_eq!(t.len(), 3);
        assert_eq!(t.section(), &enc[..]);
        assert_eq!(
            PipelineTables::parse(&enc[..7]).err(),
            Some(TablesError::TooShort { got: 7 })
        );
        assert_eq!(
            PipelineTables::parse(&enc[..enc.len() - 1]).err(),
            Some(TablesError::Length {
                expected: 20,
                got: 19
            })
        );
        let mut big = enc.clone();
        big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            PipelineTables::parse(&big).err(),
            Some(TablesError::TooManyWords { count: u32::MAX })
        );
        let nan = encode(b"pipe", &[0.5, f32::NAN]);
        assert_eq!(
            PipelineTables::parse(&nan).err(),
            Some(TablesError::NotFinite { index: 1 })
        );
    }
}
