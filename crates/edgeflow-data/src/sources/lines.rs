//! Text lines.

use std::path::PathBuf;

use super::text::{max_record_bytes, too_long, LineReader, ReadLine};
use super::{file_source, open_text, BadRecords, Counted};
use crate::dataset::{Dataset, Stream};
use crate::error::{Error, Result};

struct LineStream {
    r: LineReader<std::io::BufReader<Counted<std::fs::File>>>,
    path: PathBuf,
    buf: Vec<u8>,
    done: bool,
}

impl Stream<String> for LineStream {
    fn next(&mut self) -> Option<Result<String>> {
        if self.done {
            return None;
        }
        match self.r.read_line(&mut self.buf) {
            Ok(ReadLine::Eof) => {
                self.done = true;
                None
            }
            Ok(ReadLine::Line) => {
                let line = self.r.line;
                Some(match std::str::from_utf8(&self.buf) {
                    Ok(s) => Ok(s.to_string()),
                    Err(e) => Err(Error::line(
                        &self.path,
                        line - 1,
                        line,
                        format!("not UTF-8: {e}"),
                    )),
                })
            }
            Ok(ReadLine::TooLong(n)) => {
                let line = self.r.line;
                Some(Err(Error::line(
                    &self.path,
                    line - 1,
                    line,
                    too_long(n, self.r.max()),
                )))
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::io(&self.path, e)))
            }
        }
    }
}

/// The lines of a UTF-8 text file, without their ending (`\n`, `\r\n` or a lone `\r`;
/// see [`super::text`]). A line that is not valid UTF-8, or longer than
/// [`max_record_bytes`], is a record error (record = 0-based line index; line = 1-based
/// line number); the next line is read after it.
pub fn lines(path: impl Into<PathBuf>, policy: BadRecords) -> Dataset<String> {
    file_source("lines", path.into(), policy, |p, c| {
        Ok(LineStream {
            r: LineReader::new(open_text(p, c)?, max_record_bytes()),
            path: p.to_path_buf(),
            buf: Vec::new(),
            done: false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_strip_endings_and_report_bad_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.txt");
        std::fs::write(&p, b"one\r\ntwo\n\xff\xfe\nfour").unwrap();
        let items: Vec<_> = lines(&p, BadRecords::Error).iter().collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap(), "one");
        assert_eq!(items[3].as_ref().unwrap(), "four");
        let e = items[2].as_ref().unwrap_err().to_string();
        assert!(e.contains("t.txt: record 2 (line 3): not UTF-8"), "{e}");
        let d = lines(&p, BadRecords::Skip);
        assert_eq!(d.collect_vec().unwrap(), ["one", "two", "four"]);
        let st = d.stats();
        assert_eq!(st.ops[0].values.skipped, 1);
        assert_eq!(st.ops[0].values.bytes, 16);
        let missing = lines(dir.path().join("nope"), BadRecords::Error)
            .collect_vec()
            .unwrap_err();
        assert!(missing.to_string().contains("nope"));
    }
}
