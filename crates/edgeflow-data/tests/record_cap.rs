//! The cap on one record of a text format (issue 19: bounded memory for any input): a
//! line longer than the cap, with or without a line ending, is an error naming the
//! file, the line and the limit, for CSV, JSON Lines and text lines; the cap is
//! configurable (`set_max_record_bytes`, `EDGEFLOW_MAX_RECORD_BYTES`).
//!
//! One test function: the cap is process-wide, so the cases run in order here, in
//! their own test binary.

#![allow(clippy::unwrap_used)]

use edgeflow_data::sources::csv::{read_numeric_csv, CsvOptions, CsvTable};
use edgeflow_data::sources::jsonl::jsonl;
use edgeflow_data::sources::lines::lines;
use edgeflow_data::sources::text::{
    max_record_bytes, set_max_record_bytes, DEFAULT_MAX_RECORD_BYTES,
};
use edgeflow_data::{BadRecords, Error};

#[test]
fn a_line_over_the_cap_is_a_named_error_in_every_text_reader() {
    if std::env::var_os("EDGEFLOW_MAX_RECORD_BYTES").is_none() {
        assert_eq!(max_record_bytes(), DEFAULT_MAX_RECORD_BYTES);
    }
    set_max_record_bytes(Some(100));
    assert_eq!(max_record_bytes(), 100);
    let dir = tempfile::tempdir().unwrap();
    let huge = "7".repeat(1000);

    // Text lines: the long line (line 2) is one bad record; reading goes on after it.
    let p = dir.path().join("t.txt");
    std::fs::write(&p, format!("a\r\n{huge}\r\nb")).unwrap();
    let items: Vec<_> = lines(&p, BadRecords::Error).iter().collect();
    assert_eq!(items.len(), 3);
    let e = items[1].as_ref().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Record {
                record: 1,
                line: Some(2),
                ..
            }
        ),
        "{e}"
    );
    let m = e.to_string();
    assert!(
        m.contains("t.txt") && m.contains("1000 bytes") && m.contains("limit of 100 bytes"),
        "{m}"
    );
    assert_eq!(items[2].as_ref().unwrap(), "b");
    // Without an ending, as the last line.
    std::fs::write(&p, format!("a\n{huge}")).unwrap();
    let items: Vec<_> = lines(&p, BadRecords::Error).iter().collect();
    assert_eq!(items.len(), 2);
    assert!(items[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("limit of 100"));

    // JSON Lines: the same, with the record index counting non-blank lines.
    let p = dir.path().join("j.jsonl");
    std::fs::write(&p, format!("{{\"a\": 1}}\n\n\"{huge}\"\n{{\"a\": 2}}")).unwrap();
    let items: Vec<_> = jsonl::<serde_json::Value>(&p, BadRecords::Error)
        .iter()
        .collect();
    assert_eq!(items.len(), 3);
    let e = items[1].as_ref().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Record {
                record: 1,
                line: Some(3),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("limit of 100 bytes"), "{e}");
    assert!(items[2].is_ok());

    // CSV: the parser stops at the long line with a file-level error (never skipped
    // as one bad record), naming the record, its line and the limit.
    let p = dir.path().join("c.csv");
    std::fs::write(&p, format!("x,y\n1,2\n3,{huge}")).unwrap();
    let opts = CsvOptions {
        policy: BadRecords::Skip,
        infer_rows: 1,
        ..CsvOptions::default()
    };
    let t = CsvTable::open(&p, opts).unwrap();
    let items: Vec<_> = t.rows().iter().collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    let e = items[1].as_ref().unwrap_err();
    assert!(matches!(e, Error::File { .. }), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("c.csv") && m.contains("record 1 (line 3)") && m.contains("limit of 100"),
        "{m}"
    );
    let m = read_numeric_csv(&p, b',').unwrap_err().to_string();
    assert!(m.contains("c.csv") && m.contains("limit of 100"), "{m}");
    // A quoted field over several short lines is not one long line.
    std::fs::write(&p, format!("x,y\n1,\"{}\"\n", "abcdefghij\n".repeat(20))).unwrap();
    let t = CsvTable::open(&p, CsvOptions::default()).unwrap();
    assert_eq!(t.rows().collect_vec().unwrap().len(), 1);

    // Raised: the same long lines read.
    set_max_record_bytes(Some(4096));
    std::fs::write(&p, format!("x,y\n1,2\n3,{huge}")).unwrap();
    let t = CsvTable::open(&p, CsvOptions::default()).unwrap();
    assert_eq!(t.rows().collect_vec().unwrap().len(), 2);
    set_max_record_bytes(None);
}
