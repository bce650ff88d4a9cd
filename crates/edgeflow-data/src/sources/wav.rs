//! WAV audio: RIFF/RIFX/RF64 files of PCM or IEEE-float samples, decoded to one sample
//! representation whatever the stored format.
//!
//! # The sample representation
//!
//! [`Audio::samples`] are `f32` in full-scale units, as libsndfile/soundfile and librosa
//! decode them: integer PCM stored in a `c`-bit container is divided by `2^(c-1)`
//! (8-bit PCM, which WAV stores unsigned, is first offset by −128), so full scale is
//! `[-1, 1)`; IEEE float samples (32- or 64-bit) are kept as stored. A 24-bit sample
//! in a 32-bit `WAVE_FORMAT_EXTENSIBLE` container is left-justified, so dividing by the
//! container's `2^31` gives the same value as the 24-bit file.
//!
//! Feature pipelines take signals in 16-bit units (the device pushes `i16` samples as
//! their integer values, see `edgeflow_dsp::Runtime::push_i16`); [`Audio::to_i16_units`]
//! is the one conversion from this representation to a pipeline's input, so a pipeline's
//! input scaling means the same thing for every stored format.
//!
//! # The container
//!
//! Chunks may come in any order and any number (`LIST`, `bext`, `cue `, `JUNK`, `fact`
//! of any length …); odd-sized chunks are followed by their pad byte; `fmt ` may be
//! 16, 18, 40 or more bytes. A data chunk whose size is 0 or `0xFFFF_FFFF` (written by
//! a stream that could not seek back) or runs past the end of the file is read to the
//! end of the file (a last partial frame is dropped, as libsndfile does). RF64 files
//! take their data size from the `ds64` chunk. Compressed formats (ADPCM, A-law, µ-law,
//! MPEG, …) and sample sizes other than 8/16/24/32-bit integer and 32/64-bit float are
//! refused with a message naming the file and the format.

use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// Decoded audio: interleaved samples in full-scale units (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second per channel.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Bits per sample in the file (the container size; see [`Audio::encoding`]).
    pub bits_per_sample: u16,
    /// How the samples were stored.
    pub encoding: SampleEncoding,
    /// `frames × channels` samples, full scale `[-1, 1)` for integer PCM; float PCM as
    /// stored.
    pub samples: Vec<f32>,
}

/// How a WAV file stores its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleEncoding {
    /// Unsigned 8-bit integers (offset 128).
    U8,
    /// Signed little- (or, in RIFX, big-) endian integers of this many bytes (2, 3, 4).
    Int(u8),
    /// IEEE float of this many bytes (4, 8).
    Float(u8),
}

impl std::fmt::Display for SampleEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SampleEncoding::U8 => write!(f, "8-bit unsigned PCM"),
            SampleEncoding::Int(b) => write!(f, "{}-bit PCM", u32::from(*b) * 8),
            SampleEncoding::Float(b) => write!(f, "{}-bit float", u32::from(*b) * 8),
        }
    }
}

/// One 16-bit full-scale step: `i16` units per unit of [`Audio::samples`].
pub const I16_FULL_SCALE: f32 = 32768.0;

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The samples in 16-bit units: `sample × 32768`, what a feature pipeline takes (a
    /// 16-bit file gives its integer values exactly; a 24-bit file its values / 256; a
    /// float file its values × 32768). Exact: a multiplication by a power of two.
    pub fn to_i16_units(&self) -> Vec<f32> {
        self.samples.iter().map(|&x| x * I16_FULL_SCALE).collect()
    }
}

/// `WAVE_FORMAT_*` tags.
const PCM: u16 = 0x0001;
const IEEE_FLOAT: u16 = 0x0003;
const EXTENSIBLE: u16 = 0xFFFE;

fn format_name(tag: u16) -> String {
    let n = match tag {
        0x0002 => "MS ADPCM",
        0x0006 => "A-law",
        0x0007 => "µ-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MPEG layer 3",
        _ => "",
    };
    if n.is_empty() {
        format!("format tag 0x{tag:04X}")
    } else {
        format!("format tag 0x{tag:04X} ({n})")
    }
}

struct Fmt {
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
}

/// Reads little- or big-endian integers from a byte slice, bounds-checked.
#[derive(Clone, Copy)]
struct Bytes<'a> {
    b: &'a [u8],
    big: bool,
}

impl Bytes<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let s: [u8; 2] = self.b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
    fn u64(&self, at: usize) -> Option<u64> {
        let s: [u8; 8] = self.b.get(at..at + 8)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(s)
        } else {
            u64::from_le_bytes(s)
        })
    }
}

/// Decodes the WAV file at `path` (see the [module docs](self) for what is accepted).
///
/// Errors: the file cannot be read ([`Error::Io`]); it is not a WAV file, its `fmt `
/// chunk is missing or inconsistent, or its sample format is not supported
/// ([`Error::File`], naming the property).
pub fn read_wav(path: &Path) -> Result<Audio> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_wav(&bytes).map_err(|reason| Error::file(path, reason))
}

/// Decodes a whole WAV file held in memory (what [`read_wav`] does after reading it).
///
/// Errors: a message naming what is wrong (the caller adds the file name).
pub fn decode_wav(bytes: &[u8]) -> std::result::Result<Audio, String> {
    let (big, rf64) = match bytes.get(..4) {
        Some(b"RIFF") => (false, false),
        Some(b"RIFX") => (true, false),
        Some(b"RF64") => (false, true),
        Some(b"FORM") => return Err("an AIFF file, not WAV".into()),
        _ => return Err("not a WAV file (no RIFF header)".into()),
    };
    if bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file (RIFF form type is not WAVE)".into());
    }
    let r = Bytes { b: bytes, big };
    let mut at = 12usize;
    let mut fmt: Option<Fmt> = None;
    let mut data: Option<(usize, usize)> = None;
    let mut ds64_data: Option<u64> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let declared = r.u32(at + 4).unwrap_or(0);
        let body = at + 8;
        let left = bytes.len() - body;
        if id == b"data" {
            let mut len = u64::from(declared);
            if rf64 && declared == u32::MAX {
                len = ds64_data.ok_or("RF64 file without a ds64 chunk")?;
            }
            // A streamed file leaves 0 or 0xFFFFFFFF; a cut file claims more than it has.
            let riff_size = r.u32(4).unwrap_or(0);
            let streamed = declared == u32::MAX
                || (declared == 0 && (riff_size == 0 || riff_size == u32::MAX));
            let len = if streamed || len > left as u64 {
                left
            } else {
                len as usize
            };
            data = Some((body, len));
            if fmt.is_some() {
                break;
            }
            at = body.saturating_add(len).saturating_add(len & 1);
            continue;
        }
        let len = declared as usize;
        if len > left {
            // A truncated chunk other than data: nothing after it can be found.
            break;
        }
        let c = &bytes[body..body + len];
        let cr = Bytes { b: c, big };
        if id == b"fmt " {
            if len < 16 {
                return Err(format!("fmt chunk of {len} bytes (at least 16 needed)"));
            }
            let mut f = Fmt {
                tag: cr.u16(0).unwrap_or(0),
                channels: cr.u16(2).unwrap_or(0),
                rate: cr.u32(4).unwrap_or(0),
                block_align: cr.u16(12).unwrap_or(0),
                bits: cr.u16(14).unwrap_or(0),
            };
            if f.tag == EXTENSIBLE {
                // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16): the GUID's
                // first two bytes are the format tag.
                f.tag = cr
                    .u16(24)
                    .ok_or("WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes")?;
            }
            fmt = Some(f);
        } else if id == b"ds64" && rf64 {
            ds64_data = cr.u64(8);
        }
        at = body + len + (len & 1);
    }
    let f = fmt.ok_or("no fmt chunk")?;
    let (body, len) = data.ok_or("no data chunk")?;
    let encoding = match (f.tag, f.bits) {
        (PCM, 8) => SampleEncoding::U8,
        (PCM, 16 | 24 | 32) => SampleEncoding::Int((f.bits / 8) as u8),
        (IEEE_FLOAT, 32 | 64) => SampleEncoding::Float((f.bits / 8) as u8),
        (PCM | IEEE_FLOAT, b) => {
            return Err(format!(
                "{b}-bit {} samples are not supported (8, 16, 24, 32-bit PCM or 32, 64-bit float)",
                if f.tag == PCM { "PCM" } else { "float" }
            ))
        }
        (t, _) => {
            return Err(format!(
                "{} is not supported (PCM or IEEE float only)",
                format_name(t)
            ))
        }
    };
    if f.channels == 0 {
        return Err("fmt chunk says 0 channels".into());
    }
    if f.rate == 0 {
        return Err("fmt chunk says 0 samples per second".into());
    }
    let width = usize::from(f.bits / 8);
    let frame = width * usize::from(f.channels);
    if usize::from(f.block_align) != frame {
        return Err(format!(
            "fmt chunk is inconsistent: block align {} for {} channels of {} bits",
            f.block_align, f.channels, f.bits
        ));
    }
    let n = (len / frame) * usize::from(f.channels);
    let d = &bytes[body..body + n * width];
    let samples: Vec<f32> = match encoding {
        SampleEncoding::U8 => d.iter().map(|&v| (f32::from(v) - 128.0) / 128.0).collect(),
        SampleEncoding::Int(2) => d
            .chunks_exact(2)
            .map(|c| {
                let v = if big {
                    i16::from_be_bytes([c[0], c[1]])
                } else {
                    i16::from_le_bytes([c[0], c[1]])
                };
                f32::from(v) / 32768.0
            })
            .collect(),
        SampleEncoding::Int(3) => d
            .chunks_exact(3)
            .map(|c| {
                let v = if big {
                    i32::from_be_bytes([c[0], c[1], c[2], 0])
                } else {
                    i32::from_le_bytes([0, c[0], c[1], c[2]])
                };
                // v is the 24-bit value shifted left by 8: exact in f32 after the shift back.
                ((v >> 8) as f32) / 8_388_608.0
            })
            .collect(),
        SampleEncoding::Int(_) => d
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                let v = if big {
                    i32::from_be_bytes(b)
                } else {
                    i32::from_le_bytes(b)
                };
                (f64::from(v) / 2_147_483_648.0) as f32
            })
            .collect(),
        SampleEncoding::Float(4) => d
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            })
            .collect(),
        SampleEncoding::Float(_) => d
            .chunks_exact(8)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                (if big {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                }) as f32
            })
            .collect(),
    };
    Ok(Audio {
        sample_rate: f.rate,
        channels: f.channels,
        bits_per_sample: f.bits,
        encoding,
        samples,
    })
}

/// One element: the decoded WAV file at `path` (an error item if it cannot be decoded).
/// For many files, map [`read_wav`] over [`Dataset::list_files`].
pub fn wav(path: impl Into<PathBuf>) -> Dataset<Audio> {
    let path: PathBuf = path.into();
    let name = format!("wav({})", path.display());
    Dataset::from_fn(name, move |_| std::iter::once(read_wav(&path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RIFF file from chunks (id, body); odd bodies get their pad byte.
    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (id, body) in chunks {
            b.extend_from_slice(*id);
            b.extend_from_slice(&(body.len() as u32).to_le_bytes());
            b.extend_from_slice(body);
            if body.len() % 2 == 1 {
                b.push(0);
            }
        }
        let mut out = b"RIFF".to_vec();
        out.extend_from_slice(&((b.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(b"WAVE");
        out.extend(b);
        out
    }

    fn fmt(tag: u16, ch: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = ch * bits / 8;
        let mut f = Vec::new();
        f.extend_from_slice(&tag.to_le_bytes());
        f.extend_from_slice(&ch.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    fn write(p: &Path, spec: hound::WavSpec, samples: &[i32]) {
        let mut w = hound::WavWriter::create(p, spec).unwrap();
        for s in samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn pcm16_is_scaled_and_truncation_drops_the_partial_frame() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write(&p, spec, &[0, 16384, -32768, 32767]);
        let a = wav(&p).collect_vec().unwrap().remove(0);
        assert_eq!(a.samples, [0.0, 0.5, -1.0, 32767.0 / 32768.0]);
        assert_eq!(a.to_i16_units(), [0.0, 16384.0, -32768.0, 32767.0]);
        assert_eq!((a.frames(), a.channels, a.sample_rate), (2, 2, 8000));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert_eq!(read_wav(&p).unwrap().samples, [0.0, 0.5]);
        std::fs::write(&p, b"RIFFnonsense").unwrap();
        assert!(read_wav(&p).unwrap_err().to_string().contains("a.wav"));
    }

    #[test]
    fn odd_chunks_any_order_and_streamed_sizes() {
        let data: Vec<u8> = [100i16, -200, 300]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // An odd LIST chunk before fmt, a 12-byte fact chunk, data last.
        let b = riff(&[
            (b"LIST", vec![7; 5]),
            (b"fmt ", fmt(PCM, 1, 16000, 16)),
            (b"fact", vec![0; 12]),
            (b"data", data.clone()),
        ]);
        let a = decode_wav(&b).unwrap();
        assert_eq!(a.to_i16_units(), [100.0, -200.0, 300.0]);
        // data before fmt, then streamed (size 0xFFFFFFFF) data at the end.
        let mut b = riff(&[
            (b"data", vec![]),
            (b"fmt ", fmt(PCM, 1, 16000, 16)),
            (b"data", data.clone()),
        ]);
        let at = b.len() - data.len() - 4;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_wav(&b).unwrap().samples.len(), 3);
        let e = decode_wav(&riff(&[
            (b"fmt ", fmt(0x0011, 1, 8000, 4)),
            (b"data", vec![]),
        ]))
        .unwrap_err();
        assert!(e.contains("IMA ADPCM"), "{e}");
        let e = decode_wav(&riff(&[
            (b"fmt ", fmt(PCM, 1, 8000, 12)),
            (b"data", vec![]),
        ]))
        .unwrap_err();
        assert!(e.contains("12-bit PCM"), "{e}");
        assert!(decode_wav(&riff(&[(b"data", data)]))
            .unwrap_err()
            .contains("no fmt"));
    }

    #[test]
    fn every_sample_format_gives_the_same_full_scale_values() {
        let vals = [-1.0f64, -0.5, 0.0, 0.25, 0.5];
        let enc = |bits: u16, tag: u16| -> Vec<u8> {
            let d: Vec<u8> = vals
                .iter()
                .flat_map(|&v| match (tag, bits) {
                    (PCM, 8) => vec![(v * 128.0 + 128.0) as u8],
                    (PCM, 16) => ((v * 32768.0) as i16).to_le_bytes().to_vec(),
                    (PCM, 24) => ((v * 8_388_608.0) as i32).to_le_bytes()[..3].to_vec(),
                    (PCM, _) => ((v * 2_147_483_648.0) as i32).to_le_bytes().to_vec(),
                    (_, 32) => (v as f32).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect();
            riff(&[(b"fmt ", fmt(tag, 1, 8000, bits)), (b"data", d)])
        };
        for (bits, tag) in [
            (8, PCM),
            (16, PCM),
            (24, PCM),
            (32, PCM),
            (32, IEEE_FLOAT),
            (64, IEEE_FLOAT),
        ] {
            let a = decode_wav(&enc(bits, tag)).unwrap();
            let want: Vec<f32> = vals.iter().map(|&v| v as f32).collect();
            assert_eq!(a.samples, want, "{bits}-bit tag {tag}");
        }
    }
}
