//! Class folders (`ROOT/CLASS/FILE`): the listing, and their analysis as a table of one
//! row per file, for folders of WAV files and of images.

use std::path::Path;

use edgeflow_data::analyze::Tabular;
use edgeflow_data::sources::files::ClassFolder;
use edgeflow_data::sources::image::{encode_png, Image};
use edgeflow_data::{BadRecords, Value};

/// A 16-bit mono WAV of `frames` samples alternating ±`amp` (full scale 32768).
fn square_wav(path: &Path, rate: u32, frames: usize, amp: i16) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        w.write_sample(if i % 2 == 0 { amp } else { -amp }).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn listing_names_classes_by_folder_and_keeps_only_the_extensions_asked_for() {
    let d = tempfile::tempdir().unwrap();
    for c in ["yes", "no", "_empty"] {
        std::fs::create_dir(d.path().join(c)).unwrap();
    }
    square_wav(&d.path().join("yes/b.wav"), 16000, 10, 100);
    square_wav(&d.path().join("yes/a.WAV"), 16000, 10, 100);
    square_wav(&d.path().join("no/c.wav"), 16000, 10, 100);
    std::fs::write(d.path().join("no/notes.txt"), "x").unwrap();
    std::fs::write(d.path().join("top.wav"), "not in a class").unwrap();
    std::fs::create_dir(d.path().join("yes/deeper")).unwrap();
    square_wav(&d.path().join("yes/deeper/d.wav"), 16000, 10, 100);

    let f = ClassFolder::open(d.path(), &["wav"]).unwrap();
    assert_eq!(f.classes(), ["_empty", "no", "yes"]);
    let files: Vec<(String, usize)> = f
        .files()
        .iter()
        .map(|(p, l)| (p.file_name().unwrap().to_string_lossy().into_owned(), *l))
        .collect();
    assert_eq!(
        files,
        [
            ("c.wav".into(), 1),
            ("a.WAV".into(), 2),
            ("b.wav".into(), 2)
        ]
    );

    let none = tempfile::tempdir().unwrap();
    std::fs::write(none.path().join("x.wav"), "x").unwrap();
    let e = ClassFolder::open(none.path(), &["wav"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no class sub-folder"), "{e}");
}

#[test]
fn a_wav_class_folder_is_a_table_of_one_row_per_file() {
    let d = tempfile::tempdir().unwrap();
    for c in ["loud", "quiet"] {
        std::fs::create_dir(d.path().join(c)).unwrap();
    }
    square_wav(&d.path().join("loud/1.wav"), 16000, 800, 16384); // ±0.5 full scale
    square_wav(&d.path().join("quiet/1.wav"), 8000, 400, 4096); // ±0.125
    let t = Tabular::open(d.path(), 100, BadRecords::Error).unwrap();
    assert_eq!(t.format, "WAV class folder");
    assert_eq!(t.known_rows, Some(2));
    let rows = t.rows.collect_vec().unwrap();
    let get = |r: usize, c: &str| rows[r].get(c).unwrap().clone();
    assert_eq!(get(0, "label"), Value::Str("loud".into()));
    assert_eq!(get(0, "sample_rate"), Value::Int(16000));
    assert_eq!(get(0, "frames"), Value::Int(800));
    assert_eq!(get(0, "seconds"), Value::Float(0.05));
    // A square wave of amplitude a has RMS a and peak a.
    assert_eq!(get(0, "rms"), Value::Float(0.5));
    assert_eq!(get(0, "peak"), Value::Float(0.5));
    assert_eq!(get(1, "label"), Value::Str("quiet".into()));
    assert_eq!(get(1, "sample_rate"), Value::Int(8000));
    assert_eq!(get(1, "rms"), Value::Float(0.125));
}

#[test]
fn a_folder_of_mixed_or_unknown_files_is_an_error_not_an_empty_table() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("a")).unwrap();
    std::fs::write(d.path().join("a/x.txt"), "x").unwrap();
    let e = Tabular::open(d.path(), 100, BadRecords::Error)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no .png, .jpg, .jpeg or .wav file"), "{e}");

    square_wav(&d.path().join("a/1.wav"), 16000, 10, 1);
    let img = Image {
        width: 2,
        height: 1,
        channels: 1,
        data: vec![0, 255],
    };
    std::fs::write(d.path().join("a/2.png"), encode_png(&img).unwrap()).unwrap();
    let e = Tabular::open(d.path(), 100, BadRecords::Error)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("1 image and 1 WAV files"), "{e}");
}

#[test]
fn image_channels_convert_only_where_the_conversion_is_defined() {
    let grey = Image {
        width: 2,
        height: 1,
        channels: 1,
        data: vec![7, 9],
    };
    assert_eq!(grey.with_channels(3).unwrap().data, [7, 7, 7, 9, 9, 9]);
    let rgba = Image {
        width: 1,
        height: 1,
        channels: 4,
        data: vec![1, 2, 3, 4],
    };
    assert_eq!(rgba.with_channels(3).unwrap().data, [1, 2, 3]);
    assert_eq!(rgba.with_channels(4).unwrap(), rgba);
    let rgb = rgba.with_channels(3).unwrap();
    assert!(rgb.with_channels(1).is_none());
}
