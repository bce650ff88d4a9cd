//! TFRecord files and `tf.train.Example` records.
//!
//! A TFRecord file is a sequence of records `u64 length, u32 masked CRC-32C of the
//! length, data, u32 masked CRC-32C of the data` (little-endian). A bad length checksum
//! or a truncated record ends the file with a record error (nothing after it can be
//! trusted); a bad data checksum is a record error after which reading goes on.
//!
//! Files may be compressed as a whole, as tf.data's `compression_type` writes and reads
//! them: `"GZIP"` (one gzip stream) or `"ZLIB"` (one zlib stream); see [`Compression`].

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

use super::{file_source, open_counted, BadRecords};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC-32C of `data`.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = CRC32C.checksum(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes one TFRecord record.
///
/// Errors: those of `w`.
pub fn write_record(w: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    w.write_all(&len)?;
    w.write_all(&masked_crc(&len).to_le_bytes())?;
    w.write_all(data)?;
    w.write_all(&masked_crc(data).to_le_bytes())
}

/// How a TFRecord file is compressed (tf.data's `compression_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Not compressed (`""`).
    None,
    /// One gzip stream (`"GZIP"`).
    Gzip,
    /// One zlib stream (`"ZLIB"`).
    Zlib,
    /// Found from the first bytes (the default): a valid record header (its length
    /// checksum matches) means uncompressed, else the gzip magic `1F 8B` means GZIP,
    /// else a valid zlib header (RFC 1950: `CMF` method 8 and `(CMF·256 + FLG) % 31 == 0`)
    /// means ZLIB; anything else is read as uncompressed and fails there.
    #[default]
    Auto,
}

impl Compression {
    /// The compression of a file starting with `head` (see [`Compression::Auto`]).
    pub fn detect(head: &[u8]) -> Compression {
        if head.len() >= 12 {
            let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
            if masked_crc(&head[..8]) == crc {
                return Compression::None;
            }
        }
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [cmf, flg, ..]
                if cmf & 0x0f == 8 && (u16::from(*cmf) * 256 + u16::from(*flg)) % 31 == 0 =>
            {
                Compression::Zlib
            }
            _ => Compression::None,
        }
    }
}

/// Opens a TFRecord file for reading through its decompressor.
fn open_records(
    p: &Path,
    c: &Arc<crate::stats::Counters>,
    compression: Compression,
) -> Result<Box<dyn BufRead + Send>> {
    let mut r = open_counted(p, c)?;
    let compression = match compression {
        Compression::Auto => Compression::detect(r.fill_buf().map_err(|e| Error::io(p, e))?),
        other => other,
    };
    Ok(match compression {
        Compression::Gzip => Box::new(std::io::BufReader::new(
            flate2::bufread::MultiGzDecoder::new(r),
        )),
        Compression::Zlib => Box::new(std::io::BufReader::new(flate2::bufread::ZlibDecoder::new(
            r,
        ))),
        _ => Box::new(r),
    })
}

struct RecordStream {
    r: Box<dyn BufRead + Send>,
    path: PathBuf,
    index: u64,
    offset: u64,
    check_crc: bool,
    done: bool,
}

/// Reads as many bytes as possible into `buf`; returns how many were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl RecordStream {
    fn read_one(&mut self) -> Option<Result<Vec<u8>>> {
        let i = self.index;
        let at = self.offset;
        let fatal = |s: &mut Self, reason: String| {
            s.done = true;
            Some(Err(Error::record(
                &s.path,
                i,
                format!("{reason} (at byte {at})"),
            )))
        };
        let mut head = [0u8; 12];
        let n = match read_full(&mut self.r, &mut head) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(Error::record(
                    &self.path,
                    i,
                    format!("cannot read (compressed stream corrupt?): {e}"),
                )));
            }
        };
        if n == 0 {
            self.done = true;
            return None;
        }
        self.index += 1;
        if n < 12 {
            return fatal(self, format!("truncated header: {n} of 12 bytes"));
        }
        let len_bytes: [u8; 8] = head[..8].try_into().unwrap_or_default();
        let len = u64::from_le_bytes(len_bytes);
        let len_crc = u32::from_le_bytes(head[8..].try_into().unwrap_or_default());
        if self.check_crc && masked_crc(&len_bytes) != len_crc {
            return fatal(self, "length checksum mismatch".into());
        }
        let mut data = Vec::new();
        match (&mut self.r).take(len).read_to_end(&mut data) {
            Ok(k) if (k as u64) < len => {
                return fatal(self, format!("truncated data: {k} of {len} bytes"));
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                return Some(Err(Error::io(&self.path, e)));
            }
        }
        let mut tail = [0u8; 4];
        match read_full(&mut self.r, &mut tail) {
            Ok(4) => {}
            Ok(k) => return fatal(self, format!("truncated data checksum: {k} of 4 bytes")),
            Err(e) => {
                self.done = true;
                return Some(Err(Error::io(&self.path, e)));
            }
        }
        self.offset += 16 + len;
        if self.check_crc && masked_crc(&data) != u32::from_le_bytes(tail) {
            return Some(Err(Error::record(
                &self.path,
                i,
                format!("data checksum mismatch (at byte {at})"),
            )));
        }
        Some(Ok(data))
    }
}

impl Stream<Vec<u8>> for RecordStream {
    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        if self.done {
            return None;
        }
        self.read_one()
    }
}

/// The raw records of a TFRecord file, with both checksums verified unless `check_crc`
/// is false. The compression is detected ([`Compression::Auto`]); see
/// [`tfrecord_compressed`] to state it.
pub fn tfrecord(path: impl Into<PathBuf>, check_crc: bool, policy: BadRecords) -> Dataset<Vec<u8>> {
    tfrecord_compressed(path, Compression::Auto, check_crc, policy)
}

/// The raw records of a TFRecord file compressed as `compression` (tf.data's
/// `TFRecordDataset(path, compression_type=…)`). A corrupt or truncated compressed
/// stream is a record error that ends the file.
pub fn tfrecord_compressed(
    path: impl Into<PathBuf>,
    compression: Compression,
    check_crc: bool,
    policy: BadRecords,
) -> Dataset<Vec<u8>> {
    file_source("tfrecord", path.into(), policy, move |p, c| {
        Ok(RecordStream {
            r: open_records(p, c, compression)?,
            path: p.to_path_buf(),
            index: 0,
            offset: 0,
            check_crc,
            done: false,
        })
    })
}

/// One feature of a `tf.train.Example`.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// `bytes_list`.
    Bytes(Vec<Vec<u8>>),
    /// `float_list`.
    Float(Vec<f32>),
    /// `int64_list`.
    Int64(Vec<i64>),
    /// A feature with no list set.
    Empty,
}

/// A decoded `tf.train.Example`: feature name → feature, sorted by name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Example {
    /// The features.
    pub features: BTreeMap<String, Feature>,
}

mod pb {
    //! The `tf.train.Example` messages (tensorflow/core/example/{example,feature}.proto).
    #![allow(missing_docs, clippy::enum_variant_names)]

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Example {
        #[prost(message, optional, tag = "1")]
        pub features: Option<Features>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Features {
        #[prost(btree_map = "string, message", tag = "1")]
        pub feature: std::collections::BTreeMap<String, Feature>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Feature {
        #[prost(oneof = "Kind", tags = "1, 2, 3")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        BytesList(BytesList),
        #[prost(message, tag = "2")]
        FloatList(FloatList),
        #[prost(message, tag = "3")]
        Int64List(Int64List),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BytesList {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub value: Vec<Vec<u8>>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct FloatList {
        #[prost(float, repeated, tag = "1")]
        pub value: Vec<f32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Int64List {
        #[prost(int64, repeated, tag = "1")]
        pub value: Vec<i64>,
    }
}

impl Example {
    /// Decodes a serialized `tf.train.Example` (packed and unpacked lists alike).
    ///
    /// Errors: the bytes are not a valid `Example` message (the reason as text).
    pub fn decode(bytes: &[u8]) -> std::result::Result<Example, String> {
        let m = <pb::Example as prost::Message>::decode(bytes).map_err(|e| e.to_string())?;
        let features = m
            .features
            .map(|f| f.feature)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let f = match v.kind {
                    Some(pb::Kind::BytesList(l)) => Feature::Bytes(l.value),
                    Some(pb::Kind::FloatList(l)) => Feature::Float(l.value),
                    Some(pb::Kind::Int64List(l)) => Feature::Int64(l.value),
                    None => Feature::Empty,
                };
                (k, f)
            })
            .collect();
        Ok(Example { features })
    }

    /// Serializes the example (packed lists, as TensorFlow writes them).
    pub fn encode(&self) -> Vec<u8> {
        let feature = self
            .features
            .iter()
            .map(|(k, f)| {
                let kind = match f {
                    Feature::Bytes(v) => {
                        Some(pb::Kind::BytesList(pb::BytesList { value: v.clone() }))
                    }
                    Feature::Float(v) => {
                        Some(pb::Kind::FloatList(pb::FloatList { value: v.clone() }))
                    }
                    Feature::Int64(v) => {
                        Some(pb::Kind::Int64List(pb::Int64List { value: v.clone() }))
                    }
                    Feature::Empty => None,
                };
                (k.clone(), pb::Feature { kind })
            })
            .collect();
        let m = pb::Example {
            features: Some(pb::Features { feature }),
        };
        prost::Message::encode_to_vec(&m)
    }
}

struct ExampleStream(RecordStream);

impl Stream<Example> for ExampleStream {
    fn next(&mut self) -> Option<Result<Example>> {
        let i = self.0.index;
        let r = self.0.next()?;
        Some(r.and_then(|bytes| {
            Example::decode(&bytes)
                .map_err(|e| Error::record(&self.0.path, i, format!("not a tf.train.Example: {e}")))
        }))
    }
}

/// The records of a TFRecord file decoded as `tf.train.Example`s (checksums verified,
/// compression detected as [`Compression::Auto`]). A record that is not a valid
/// `Example` is a record error naming the file and record.
pub fn tfrecord_examples(path: impl Into<PathBuf>, policy: BadRecords) -> Dataset<Example> {
    file_source("tfrecord_examples", path.into(), policy, move |p, c| {
        Ok(ExampleStream(RecordStream {
            r: open_records(p, c, Compression::Auto)?,
            path: p.to_path_buf(),
            index: 0,
            offset: 0,
            check_crc: true,
            done: false,
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::manual_rotate)] // written as in TensorFlow's crc32c.h
    fn masked_crc_matches_tensorflow() {
        // tensorflow/core/lib/hash/crc32c_test.cc: crc32c("123456789") = 0xe3069283.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        let c = 0xe306_9283u32;
        assert_eq!(
            masked_crc(b"123456789"),
            ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)
        );
    }

    fn file(records: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for r in records {
            write_record(&mut v, r).unwrap();
        }
        v
    }

    #[test]
    fn round_trip_and_corruptions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.tfrecord");
        let bytes = file(&[b"alpha", b"", b"gamma!"]);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(
            tfrecord(&p, true, BadRecords::Error).collect_vec().unwrap(),
            [b"alpha".to_vec(), vec![], b"gamma!".to_vec()]
        );
        // Bad data CRC in record 0: an error, then the rest.
        let mut b = bytes.clone();
        b[12] ^= 1;
        std::fs::write(&p, &b).unwrap();
        let items: Vec<_> = tfrecord(&p, true, BadRecords::Error).iter().collect();
        assert_eq!(items.len(), 3);
        let e = items[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("r.tfrecord: record 0: data checksum mismatch (at byte 0)"),
            "{e}"
        );
        assert_eq!(
            tfrecord(&p, true, BadRecords::Skip)
                .collect_vec()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            tfrecord(&p, false, BadRecords::Error)
                .collect_vec()
                .unwrap()[0],
            b"`lpha"
        );
        // Bad length CRC in record 1: an error that ends the file.
        let mut b = bytes.clone();
        b[21 + 8] ^= 1;
        std::fs::write(&p, &b).unwrap();
        let items: Vec<_> = tfrecord(&p, true, BadRecords::Error).iter().collect();
        assert_eq!(items.len(), 2);
        assert!(items[1]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("record 1: length checksum mismatch (at byte 21)"));
        // Truncations anywhere: never a panic, always an error naming the record.
        for cut in 1..bytes.len() {
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let items: Vec<_> = tfrecord(&p, true, BadRecords::Error).iter().collect();
            let errs = items.iter().filter(|r| r.is_err()).count();
            let boundary = [21, 37, bytes.len()].contains(&cut);
            assert_eq!(errs, usize::from(!boundary), "cut at {cut}");
        }
    }

    #[test]
    fn example_round_trip_and_garbage() {
        let mut e = Example::default();
        e.features
            .insert("f".into(), Feature::Float(vec![1.5, -2.0]));
        e.features
            .insert("i".into(), Feature::Int64(vec![-7, 1 << 40]));
        e.features
            .insert("b".into(), Feature::Bytes(vec![b"x".to_vec(), vec![]]));
        assert_eq!(Example::decode(&e.encode()).unwrap(), e);
        assert!(Example::decode(&[0x0a, 0x05, 0x01]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.tfrecord");
        std::fs::write(&p, file(&[&e.encode(), &[0xff, 0xff]])).unwrap();
        let items: Vec<_> = tfrecord_examples(&p, BadRecords::Error).iter().collect();
        assert_eq!(items[0].as_ref().unwrap(), &e);
        let err = items[1].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("e.tfrecord: record 1: not a tf.train.Example"),
            "{err}"
        );
        assert_eq!(
            tfrecord_examples(&p, BadRecords::Skip)
                .collect_vec()
                .unwrap()
                .len(),
            1
        );
    }
}
