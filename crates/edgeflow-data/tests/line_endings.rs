//! Bad-record accounting in the text readers (CSV, JSON Lines, text lines) under every
//! line ending: `\n`, `\r\n`, a lone `\r`, a mix of them, and each with and without an
//! ending on the last line. Each case checks the record index and the 1-based line of
//! every bad record, the good records, and the skipped count under `BadRecords::Skip`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use edgeflow_data::sources::csv::{CsvOptions, CsvTable};
use edgeflow_data::sources::jsonl::{jsonl, JsonlTable};
use edgeflow_data::sources::lines::lines;
use edgeflow_data::{BadRecords, Dataset, Error};

/// Line endings per style, for the 7 lines of each file (the last one is dropped for
/// the "no final ending" variants). The mix never puts a `\r` ending right before an
/// empty line ending in `\n` (that pair would be one `\r\n` ending by any rule).
fn styles() -> Vec<(&'static str, [&'static str; 7])> {
    vec![
        ("lf", ["\n"; 7]),
        ("crlf", ["\r\n"; 7]),
        ("cr", ["\r"; 7]),
        ("mixed", ["\r\n", "\r", "\r", "\n", "\r\n", "\n", "\r"]),
    ]
}

fn files(dir: &Path, name: &str, lines: &[&[u8]]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for (style, endings) in styles() {
        for final_ending in [true, false] {
            let mut bytes = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                bytes.extend_from_slice(l);
                if i + 1 < lines.len() || final_ending {
                    bytes.extend_from_slice(endings[i].as_bytes());
                }
            }
            let label = format!(
                "{name}/{style}/{}",
                if final_ending { "final" } else { "no-final" }
            );
            let p = dir.join(label.replace('/', "_"));
            std::fs::write(&p, &bytes).unwrap();
            out.push((label, p));
        }
    }
    out
}

/// (record, line) of every error item, and the number of good items.
fn account<T: Send + 'static>(d: &Dataset<T>) -> (Vec<(u64, Option<u64>)>, usize) {
    let mut bad = Vec::new();
    let mut good = 0;
    for item in d.iter() {
        match item {
            Ok(_) => good += 1,
            Err(Error::Record { record, line, .. }) => bad.push((record, line)),
            Err(e) => panic!("not a record error: {e}"),
        }
    }
    (bad, good)
}

fn skipped<T: Send + 'static>(d: &Dataset<T>) -> (usize, u64) {
    let n = d.collect_vec().unwrap().len();
    (n, d.stats().ops.iter().map(|o| o.values.skipped).sum())
}

#[test]
fn csv_bad_records_under_every_line_ending() {
    let dir = tempfile::tempdir().unwrap();
    // Lines: 1 header, 2 good, 3 blank (not a record), 4 short (bad), 5 good,
    // 6 long (bad), 7 good.
    let lines: [&[u8]; 7] = [b"x,y", b"1,2", b"", b"3", b"4,5", b"9,9,9", b"7,8"];
    for (label, p) in files(dir.path(), "csv", &lines) {
        let t = CsvTable::open(&p, CsvOptions::default()).unwrap();
        let (bad, good) = account(&t.rows());
        assert_eq!(bad, vec![(1, Some(4)), (3, Some(6))], "{label}");
        assert_eq!(good, 3, "{label}");
        let opts = CsvOptions {
            policy: BadRecords::Skip,
            ..CsvOptions::default()
        };
        let t = CsvTable::open(&p, opts).unwrap();
        assert_eq!(skipped(&t.rows()), (3, 2), "{label}");
        let vals: Vec<String> = t
            .rows()
            .collect_vec()
            .unwrap()
            .iter()
            .map(|r| format!("{:?}", r.values))
            .collect();
        assert_eq!(vals.len(), 3, "{label}");
        assert!(
            vals[2].contains('7') && vals[2].contains('8'),
            "{label}: {vals:?}"
        );
    }
}

#[test]
fn jsonl_bad_records_under_every_line_ending() {
    let dir = tempfile::tempdir().unwrap();
    // Lines: 1 good, 2 blank (not a record), 3 bad, 4 good, 5 bad, 6 good, 7 good.
    let lines: [&[u8]; 7] = [
        b"{\"a\": 1}",
        b"",
        b"{bad",
        b"{\"a\": 2}",
        b"[1",
        b"{\"a\": 3}",
        b"{\"a\": 4}",
    ];
    for (label, p) in files(dir.path(), "jsonl", &lines) {
        let d = jsonl::<serde_json::Value>(&p, BadRecords::Error);
        let (bad, good) = account(&d);
        assert_eq!(bad, vec![(1, Some(3)), (3, Some(5))], "{label}");
        assert_eq!(good, 4, "{label}");
        assert_eq!(
            skipped(&jsonl::<serde_json::Value>(&p, BadRecords::Skip)),
            (4, 2),
            "{label}"
        );
        let t = JsonlTable::open(&p, 100, BadRecords::Error).unwrap();
        let (bad, good) = account(&t.rows());
        assert_eq!(bad, vec![(1, Some(3)), (3, Some(5))], "{label} (table)");
        assert_eq!(good, 4, "{label} (table)");
    }
}

#[test]
fn text_lines_bad_records_under_every_line_ending() {
    let dir = tempfile::tempdir().unwrap();
    // Lines: 1 good, 2 not UTF-8, 3 empty (a line of its own), 4 good, 5 not UTF-8,
    // 6 good, 7 good.
    let lines: [&[u8]; 7] = [b"a", b"\xff", b"", b"b", b"\xfe x", b"c", b"d"];
    for (label, p) in files(dir.path(), "txt", &lines) {
        let d = lines_of(&p, BadRecords::Error);
        let (bad, good) = account(&d);
        assert_eq!(bad, vec![(1, Some(2)), (4, Some(5))], "{label}");
        assert_eq!(good, 5, "{label}");
        assert_eq!(
            lines_of(&p, BadRecords::Skip).collect_vec().unwrap(),
            vec!["a", "", "b", "c", "d"],
            "{label}"
        );
        assert_eq!(skipped(&lines_of(&p, BadRecords::Skip)), (5, 2), "{label}");
    }
}

fn lines_of(p: &Path, policy: BadRecords) -> Dataset<String> {
    lines(p, policy)
}
