//! UCR/UEA time-series archive files (`.ts`, the format of sktime and aeon).
//!
//! A header of `@tag value` lines (`@problemName`, `@timeStamps`, `@missing`,
//! `@univariate`, `@dimensions`, `@equalLength`, `@seriesLength`, `@classLabel`,
//! `@targetLabel`) ends with `@data`; each following line is one case: the dimensions
//! separated by `:`, each a comma-separated list of numbers (`?` = missing, read as
//! NaN), then the class label (or regression target) if the header declares one.
//! Lines starting with `#` are comments. Files with time stamps are not supported.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{file_source, open_text, BadRecords, Counted};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};

/// The header of a `.ts` file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TsHeader {
    /// `@problemName`.
    pub problem_name: String,
    /// `@univariate`.
    pub univariate: Option<bool>,
    /// `@dimensions` (1 if univariate and not given).
    pub dimensions: Option<usize>,
    /// `@equalLength`.
    pub equal_length: Option<bool>,
    /// `@seriesLength`.
    pub series_length: Option<usize>,
    /// `@missing`.
    pub missing: Option<bool>,
    /// The class labels of `@classLabel true …`, in declaration order.
    pub class_labels: Option<Vec<String>>,
    /// `@targetLabel true`: the last field is a numeric regression target.
    pub target: bool,
}

/// One case of a `.ts` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// One vector of values per dimension (NaN where the file has `?`).
    pub dims: Vec<Vec<f64>>,
    /// The class label, if the file declares class labels.
    pub label: Option<String>,
    /// Index of the label in [`TsHeader::class_labels`].
    pub class: Option<usize>,
    /// The regression target, if the file declares one.
    pub target: Option<f64>,
}

/// A `.ts` file whose header has been read.
#[derive(Debug, Clone)]
pub struct TsFile {
    path: PathBuf,
    header: Arc<TsHeader>,
    policy: BadRecords,
}

fn parse_bool(path: &Path, line: u64, tag: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::file(
            path,
            format!("line {line}: {tag} must be true or false, not {v:?}"),
        )),
    }
}

impl TsFile {
    /// Reads the header of `path` (up to `@data`).
    ///
    /// Errors: the file cannot be read; a header line is malformed; there is no
    /// `@data`; the file has time stamps.
    pub fn open(path: impl Into<PathBuf>, policy: BadRecords) -> Result<Self> {
        let path = path.into();
        let f = open_text(&path, &Arc::default())?;
        let mut h = TsHeader::default();
        let mut n = 0u64;
        for line in f.lines() {
            n += 1;
            let line = line.map_err(|e| Error::io(&path, e))?;
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (tag, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
            let rest = rest.trim();
            let int = |v: &str| {
                v.parse::<usize>().map_err(|_| {
                    Error::file(&path, format!("line {n}: {tag} must be a count, not {v:?}"))
                })
            };
            match tag.to_ascii_lowercase().as_str() {
                "@problemname" => h.problem_name = rest.to_string(),
                "@timestamps" => {
                    if parse_bool(&path, n, tag, rest)? {
                        return Err(Error::file(
                            &path,
                            "files with time stamps are not supported",
                        ));
                    }
                }
                "@missing" => h.missing = Some(parse_bool(&path, n, tag, rest)?),
                "@univariate" => h.univariate = Some(parse_bool(&path, n, tag, rest)?),
                "@dimensions" => h.dimensions = Some(int(rest)?),
                "@equallength" => h.equal_length = Some(parse_bool(&path, n, tag, rest)?),
                "@serieslength" => h.series_length = Some(int(rest)?),
                "@classlabel" => {
                    let mut it = rest.split_whitespace();
                    if parse_bool(&path, n, tag, it.next().unwrap_or(""))? {
                        let labels: Vec<String> = it.map(str::to_string).collect();
                        if labels.is_empty() {
                            return Err(Error::file(
                                &path,
                                format!("line {n}: @classLabel true without labels"),
                            ));
                        }
                        h.class_labels = Some(labels);
                    }
                }
                "@targetlabel" => h.target = parse_bool(&path, n, tag, rest)?,
                "@data" => {
                    if h.dimensions.is_none() && h.univariate == Some(true) {
                        h.dimensions = Some(1);
                    }
                    return Ok(TsFile {
                        path,
                        header: Arc::new(h),
                        policy,
                    });
                }
                _ if tag.starts_with('@') => {} // other tags carry no structure we use
                _ => return Err(Error::file(&path, format!("line {n}: data before @data"))),
            }
        }
        Err(Error::file(&path, "no @data line"))
    }

    /// The header.
    pub fn header(&self) -> &TsHeader {
        &self.header
    }

    /// The cases. A malformed case (a value that is not a number, a wrong number of
    /// dimensions, a length that differs from `@seriesLength` where `@equalLength` is
    /// true, an undeclared class label, `?` where `@missing` is false) is a record error
    /// naming the case and its line.
    pub fn cases(&self) -> Dataset<Series> {
        let header = Arc::clone(&self.header);
        file_source("ts", self.path.clone(), self.policy, move |p, c| {
            let mut r = open_text(p, c)?;
            let mut line = 0u64;
            let mut buf = String::new();
            loop {
                buf.clear();
                let k = r.read_line(&mut buf).map_err(|e| Error::io(p, e))?;
                if k == 0 {
                    return Err(Error::file(p, "no @data line"));
                }
                line += 1;
                if buf.trim().eq_ignore_ascii_case("@data") {
                    break;
                }
            }
            Ok(TsStream {
                r,
                path: p.to_path_buf(),
                header: Arc::clone(&header),
                line,
                index: 0,
                buf,
                done: false,
            })
        })
    }
}

struct TsStream {
    r: std::io::BufReader<Counted<std::fs::File>>,
    path: PathBuf,
    header: Arc<TsHeader>,
    line: u64,
    index: u64,
    buf: String,
    done: bool,
}

impl TsStream {
    fn parse(&self, text: &str) -> std::result::Result<Series, String> {
        let h = &self.header;
        let mut fields: Vec<&str> = text.split(':').collect();
        let mut label = None;
        let mut class = None;
        let mut target = None;
        if let Some(labels) = &h.class_labels {
            let l = fields.pop().unwrap_or("").trim();
            let i = labels
                .iter()
                .position(|x| x == l)
                .ok_or_else(|| format!("class label {l:?} is not declared in @classLabel"))?;
            label = Some(l.to_string());
            class = Some(i);
        } else if h.target {
            let t = fields.pop().unwrap_or("").trim();
            target = Some(
                t.parse::<f64>()
                    .map_err(|_| format!("target {t:?} is not a number"))?,
            );
        }
        if let Some(d) = h.dimensions {
            if fields.len() != d {
                return Err(format!(
                    "{} dimensions where the header declares {d}",
                    fields.len()
                ));
            }
        }
        let mut dims = Vec::with_capacity(fields.len());
        for (di, f) in fields.iter().enumerate() {
            let mut v = Vec::new();
            for (j, s) in f.split(',').enumerate() {
                let s = s.trim();
                if s == "?" || s.eq_ignore_ascii_case("nan") {
                    if h.missing == Some(false) {
                        return Err(format!(
                            "dimension {di}, value {j}: missing value but @missing is false"
                        ));
                    }
                    v.push(f64::NAN);
                } else {
                    v.push(s.parse::<f64>().map_err(|_| {
                        format!("dimension {di}, value {j}: {s:?} is not a number")
                    })?);
                }
            }
            if h.equal_length == Some(true) {
                if let Some(n) = h.series_length {
                    if v.len() != n {
                        return Err(format!(
                            "dimension {di} has {} values where @seriesLength is {n}",
                            v.len()
                        ));
                    }
                }
            }
            dims.push(v);
        }
        Ok(Series {
            dims,
            label,
            class,
            target,
        })
    }
}

impl Stream<Series> for TsStream {
    fn next(&mut self) -> Option<Result<Series>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            match self.r.read_line(&mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {
                    self.line += 1;
                    let t = self.buf.trim();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    let i = self.index;
                    self.index += 1;
                    return Some(
                        self.parse(t)
                            .map_err(|m| Error::line(&self.path, i, self.line, m)),
                    );
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(Error::io(&self.path, e)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n@problemName Toy\n@timeStamps false\n@missing true\n@univariate false\n@dimensions 2\n@equalLength true\n@seriesLength 3\n@classLabel true up down\n@data\n1,2,3:4,5,6:up\n1,?,3:4,5,6:down\n\n1,2:4,5,6:up\n1,2,3:4,5,6:left\n1,2,x:4,5,6:up\n1,2,3:down\n";

    #[test]
    fn header_and_cases() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("toy.ts");
        std::fs::write(&p, FILE).unwrap();
        let f = TsFile::open(&p, BadRecords::Error).unwrap();
        let h = f.header();
        assert_eq!(h.problem_name, "Toy");
        assert_eq!(h.dimensions, Some(2));
        assert_eq!(
            h.class_labels.as_deref(),
            Some(&["up".to_string(), "down".to_string()][..])
        );
        let items: Vec<_> = f.cases().iter().collect();
        assert_eq!(items.len(), 6);
        let s0 = items[0].as_ref().unwrap();
        assert_eq!(s0.dims, vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]]);
        assert_eq!((s0.label.as_deref(), s0.class), (Some("up"), Some(0)));
        assert!(items[1].as_ref().unwrap().dims[0][1].is_nan());
        let msgs: Vec<String> = items[2..]
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert!(
            msgs[0]
                .contains("record 2 (line 14): dimension 0 has 2 values where @seriesLength is 3"),
            "{}",
            msgs[0]
        );
        assert!(
            msgs[1].contains("record 3 (line 15): class label \"left\" is not declared"),
            "{}",
            msgs[1]
        );
        assert!(msgs[2].contains("\"x\" is not a number"), "{}", msgs[2]);
        assert!(
            msgs[3].contains("1 dimensions where the header declares 2"),
            "{}",
            msgs[3]
        );
        let skip = TsFile::open(&p, BadRecords::Skip).unwrap().cases();
        assert_eq!(skip.collect_vec().unwrap().len(), 2);
        assert_eq!(skip.stats().ops[0].values.skipped, 4);
    }

    #[test]
    fn bad_headers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.ts");
        for (text, msg) in [
            ("@problemName x\n", "no @data"),
            ("@timeStamps true\n@data\n", "time stamps"),
            ("@dimensions two\n@data\n", "must be a count"),
            ("1,2,3\n", "data before @data"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = TsFile::open(&p, BadRecords::Error).unwrap_err().to_string();
            assert!(e.contains(msg) && e.contains("bad.ts"), "{e}");
        }
    }
}
