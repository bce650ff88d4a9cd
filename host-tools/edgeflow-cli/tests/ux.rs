//! The `edgeflow` binary as a user runs it (issue 16): boards from any directory, quiet
//! closed pipes, one error message naming the file, no silent changes, labelled results.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use npyz::WriterBuilder;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    root().join("conformance/fixtures")
}

/// A fresh directory outside the repository.
fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgeflow-ux-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// `edgeflow ARGS` run in `dir`, without the user's board environment variable.
fn edgeflow_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(args)
        .current_dir(dir)
        .env_remove("EDGEFLOW_BOARDS_DIR")
        .output()
        .expect("run edgeflow")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn write_npy_f32(p: &Path, shape: &[u64], v: &[f32]) {
    let f = std::fs::File::create(p).expect("create");
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(std::io::BufWriter::new(f))
        .begin_nd()
        .expect("npy");
    w.extend(v.iter().copied()).expect("write");
    w.finish().expect("finish");
}

fn read_npy_f32(p: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(p).expect("read npy");
    let f = npyz::NpyFile::new(&bytes[..]).expect("npy");
    let shape = f.shape().to_vec();
    (shape, f.into_vec::<f32>().expect("f32 data"))
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[test]
fn boards_are_built_in_and_found_from_any_directory() {
    let dir = tmpdir("boards");
    let o = edgeflow_in(&dir, &["boards"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for needle in [
        "mps2-an386",
        "cortex-m4 (FPU)",
        "4 MiB",
        "qemu mps2-an386",
        "lm3s6965evb",
        "cortex-m3",
        "256 KiB",
        "64 KiB",
        "built in",
    ] {
        assert!(
            out.contains(needle),
            "`edgeflow boards` lacks {needle:?}:\n{out}"
        );
    }

    // `--board NAME` works outside the repository.
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let o = edgeflow_in(&dir, &["inspect", s(&model), "--board", "lm3s6965evb"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("board        lm3s6965evb"));

    // An unknown name lists the known ones.
    let o = edgeflow_in(&dir, &["inspect", s(&model), "--board", "stm32f4"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("unknown board \"stm32f4\"")
            && err.contains("mps2-an386")
            && err.contains("lm3s6965evb"),
        "{err}"
    );

    // A user's own board: through --boards-dir, the environment variable, and a project.
    let spec = std::fs::read_to_string(root().join("boards/lm3s6965evb.toml"))
        .expect("board")
        .replace("name = \"lm3s6965evb\"", "name = \"tiny\"")
        .replace("ram_bytes = 65536", "ram_bytes = 16");
    let mine = dir.join("my-boards");
    std::fs::create_dir_all(&mine).expect("dir");
    std::fs::write(mine.join("tiny.toml"), &spec).expect("write");
    let o = edgeflow_in(&dir, &["boards", "--boards-dir", s(&mine)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("tiny"), "{}", text(&o.stdout));
    let o = edgeflow_in(
        &dir,
        &[
            "inspect",
            s(&model),
            "--board",
            "tiny",
            "--boards-dir",
            s(&mine),
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("does not fit on tiny"),
        "{}",
        text(&o.stderr)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
        .args(["boards"])
        .current_dir(&dir)
        .env("EDGEFLOW_BOARDS_DIR", &mine)
        .output()
        .expect("run");
    assert!(o.status.success() && text(&o.stdout).contains("tiny"));
    let project = dir.join("project");
    std::fs::create_dir_all(project.join("boards")).expect("dir");
    std::fs::create_dir_all(project.join("src")).expect("dir");
    std::fs::write(project.join("edgeflow.toml"), "").expect("write");
    std::fs::write(project.join("boards/tiny.toml"), &spec).expect("write");
    let o = edgeflow_in(&project.join("src"), &["boards"]);
    assert!(
        o.status.success() && text(&o.stdout).contains("tiny"),
        "{}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_closed_stdout_ends_quietly_with_success() {
    let dir = tmpdir("pipe");
    let csv = dir.join("big.csv");
    let mut body = String::from("a,b,c\n");
    for i in 0..5000 {
        body.push_str(&format!("{i},{},{}\n", i * 2, i % 7));
    }
    std::fs::write(&csv, body).expect("write");
    let model = fixtures().join("conv_same_s1_int8.tflite");
    for args in [
        vec!["inspect", s(&model)],
        vec!["data", "head", s(&csv), "-n", "5000"],
        vec!["boards"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Close the reading end before the command writes anything (`| head -0`).
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        assert!(
            o.status.success(),
            "{args:?}: {:?}\n{}",
            o.status,
            text(&o.stderr)
        );
        assert!(o.stderr.is_empty(), "{args:?}: {}", text(&o.stderr));
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn each_error_is_printed_once_naming_the_file() {
    let dir = tmpdir("errors");
    let wav = dir.join("x.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).expect("wav");
    for i in 0..64 {
        w.write_sample(i as i16).expect("sample");
    }
    w.finalize().expect("wav");

    // A TOML syntax error: one message with the file and the position.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[input.signal\naxes = 1\n").expect("write");
    let out = dir.join("f.npy");
    let o = edgeflow_in(
        &dir,
        &["features", "--pipeline", s(&bad), s(&wav), "-o", s(&out)],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("bad.toml") && err.contains("line 1"), "{err}");
    assert_eq!(err.matches("TOML parse error").count(), 1, "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");

    // A mel band above the Nyquist frequency: named once.
    let nyq = dir.join("nyquist.toml");
    std::fs::write(
        &nyq,
        "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 512\nstride = 256\n\
         [[blocks]]\nspectrum = { n_fft = 512, power = true }\n\
         [[blocks]]\nmel = { bands = 10, fmin = 0.0, fmax = 9000.0 }\n",
    )
    .expect("write");
    let o = edgeflow_in(
        &dir,
        &["features", "--pipeline", s(&nyq), s(&wav), "-o", s(&out)],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("nyquist.toml"), "{err}");
    assert_eq!(err.matches("Nyquist").count(), 1, "{err}");

    // A board file with an unknown field: named once, with the field and its line.
    let boards = dir.join("boards");
    std::fs::create_dir_all(&boards).expect("dir");
    let spec = std::fs::read_to_string(root().join("boards/mps2-an386.toml"))
        .expect("board")
        .replace("name = \"mps2-an386\"", "name = \"odd\"");
    std::fs::write(boards.join("odd.toml"), format!("{spec}\nflash_kb = 4\n")).expect("write");
    let o = edgeflow_in(&dir, &["boards", "--boards-dir", s(&boards)]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("odd.toml") && err.contains("flash_kb"),
        "{err}"
    );
    assert_eq!(err.matches("unknown field").count(), 1, "{err}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn a_wrong_file_is_named_by_its_content() {
    let dir = tmpdir("magic");
    let npy = fixtures().join("fc_f32.input.npy");
    let o = edgeflow_in(&dir, &["inspect", s(&npy)]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("fc_f32.input.npy is a NumPy array, not a model (expected"),
        "{err}"
    );
    // The extension does not matter: the content does.
    let disguised = dir.join("model.edgeflow");
    std::fs::copy(&npy, &disguised).expect("copy");
    let o = edgeflow_in(&dir, &["run", s(&disguised), "--input", s(&npy)]);
    assert!(text(&o.stderr).contains("model.edgeflow is a NumPy array, not a model"));
    let readme = root().join("README.md");
    let o = edgeflow_in(&dir, &["inspect", s(&readme)]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("README.md is a text file, not a model"));

    // A truncated .npy: the error names the file.
    let bytes = std::fs::read(fixtures().join("conv_same_s1_int8.input.npy")).expect("read");
    let cut = dir.join("cut.npy");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
    let model = fixtures().join("conv_same_s1_int8.tflite");
    let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&cut)]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("cut.npy"), "{}", text(&o.stderr));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn run_checks_the_full_shape() {
    let dir = tmpdir("shape");
    let model = fixtures().join("fc_f32.tflite");
    // (16, 1) has the 16 elements of the model input (1, 16): refused, naming both.
    let x = dir.join("t.npy");
    write_npy_f32(&x, &[16, 1], &[0.5; 16]);
    let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&x)]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("[16, 1]") && err.contains("[1, 16]"), "{err}");
    // (16,) lacks the batch dimension: refused with the fix.
    write_npy_f32(&x, &[16], &[0.5; 16]);
    let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&x)]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("batch dimension"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn convert_never_changes_a_pipelines_quantization_silently() {
    let dir = tmpdir("quant");
    let model = fixtures().join("fc_int8.tflite");
    let p = dir.join("q.toml");
    std::fs::write(
        &p,
        "[input.vector]\nlen = 16\n[output]\nquantize = { scale = 0.5, zero_point = 3 }\n",
    )
    .expect("write");
    let art = dir.join("m.edgeflow");
    let o = edgeflow_in(
        &dir,
        &["convert", s(&model), "-o", s(&art), "--pipeline", s(&p)],
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("scale 0.5 and zero point 3") && err.contains("--adopt-model-quantization"),
        "{err}"
    );
    assert!(!art.exists());
    let o = edgeflow_in(
        &dir,
        &[
            "convert",
            s(&model),
            "-o",
            s(&art),
            "--pipeline",
            s(&p),
            "--adopt-model-quantization",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("adopted the model input's quantization"));
    // A float pipeline in front of the int8 input is quantized, and that is said.
    std::fs::write(&p, "[input.vector]\nlen = 16\n").expect("write");
    let o = edgeflow_in(
        &dir,
        &["convert", s(&model), "-o", s(&art), "--pipeline", s(&p)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("quantized to int8 with the model input's scale"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Labels for fc_f32's outputs, one per class.
fn labels_for(dir: &Path, n: usize) -> PathBuf {
    let p = dir.join("labels.txt");
    let l: Vec<String> = (0..n)
        .map(|i| format!("class-{}", (b'a' + i as u8) as char))
        .collect();
    std::fs::write(&p, l.join("\n") + "\n").expect("write");
    p
}

#[test]
fn run_prints_labelled_top_classes_and_json() {
    let dir = tmpdir("labels");
    let model = fixtures().join("fc_f32.tflite");
    let input = fixtures().join("fc_f32.input.npy");
    // TFLite Micro's output for this input (from conformance/make_fixtures.py).
    let (ref_shape, reference) = read_npy_f32(&fixtures().join("fc_f32.output.npy"));
    let classes = *ref_shape.last().expect("shape") as usize;

    let wrong = dir.join("wrong.txt");
    std::fs::write(&wrong, "only\none\n").expect("write");
    let art = dir.join("m.edgeflow");
    let o = edgeflow_in(
        &dir,
        &["convert", s(&model), "-o", s(&art), "--labels", s(&wrong)],
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains(&format!(
            "2 labels, but the model's output has {classes} classes"
        )),
        "{}",
        text(&o.stderr)
    );

    let labels = labels_for(&dir, classes);
    let o = edgeflow_in(
        &dir,
        &["convert", s(&model), "-o", s(&art), "--labels", s(&labels)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = edgeflow_in(&dir, &["inspect", s(&art)]);
    assert!(text(&o.stdout).contains(&format!("labels ({classes})  class-a")));

    let best = argmax(&reference);
    let best_label = format!("class-{}", (b'a' + best as u8) as char);
    let y = dir.join("y.npy");
    let o = edgeflow_in(
        &dir,
        &["run", s(&art), "-i", s(&input), "-o", s(&y), "--top", "1"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = format!("{best_label} {:.4}", reference[best]);
    assert!(out.contains(&line), "lacks {line:?}:\n{out}");
    assert_eq!(read_npy_f32(&y), (ref_shape.clone(), reference.clone()));

    let o = edgeflow_in(&dir, &["run", s(&art), "--input", s(&input), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let r = &doc["results"][0];
    assert_eq!(r["top"][0]["class"], best);
    assert_eq!(r["top"][0]["label"], best_label.as_str());
    let values: Vec<f32> = r["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    assert_eq!(values, reference);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn run_takes_a_raw_wav_through_the_artifacts_pipeline() {
    let dir = tmpdir("raw");
    let model = fixtures().join("fc_f32.tflite");
    let (ref_shape, _) = read_npy_f32(&fixtures().join("fc_f32.output.npy"));
    let classes = *ref_shape.last().expect("shape") as usize;
    let pipeline = dir.join("p.toml");
    std::fs::write(
        &pipeline,
        "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 16\nstride = 16\n\
         [[blocks]]\nscale = { scale = 0.001, offset = -0.5 }\n",
    )
    .expect("write");
    let labels = labels_for(&dir, classes);
    let art = dir.join("m.edgeflow");
    let o = edgeflow_in(
        &dir,
        &[
            "convert",
            s(&model),
            "-o",
            s(&art),
            "--pipeline",
            s(&pipeline),
            "--labels",
            s(&labels),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    let wav = dir.join("clip.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).expect("wav");
    for i in 0..32i16 {
        w.write_sample(i * 37 - 500).expect("sample");
    }
    w.finalize().expect("wav");
    let y = dir.join("y.npy");
    let o = edgeflow_in(&dir, &["run", s(&art), "--input", s(&wav), "-o", s(&y)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "a WAV audio file through the artifact's feature pipeline (2 feature tensors)"
        ),
        "{out}"
    );
    assert!(
        out.contains("window 1: class-") && out.contains("window 2: class-"),
        "{out}"
    );
    let (shape, stacked) = read_npy_f32(&y);
    assert_eq!(shape[0], 2);

    // The same as computing the features with `edgeflow features` and running each tensor.
    let feats = dir.join("f.npy");
    let o = edgeflow_in(
        &dir,
        &["features", "--pipeline", s(&art), s(&wav), "-o", s(&feats)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (fshape, f) = read_npy_f32(&feats);
    assert_eq!(fshape, vec![2, 16]);
    let mut expected = Vec::new();
    for row in f.chunks(16) {
        let x = dir.join("row.npy");
        write_npy_f32(&x, &[1, 16], row);
        let yr = dir.join("row_out.npy");
        let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&x), "-o", s(&yr)]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        expected.extend(read_npy_f32(&yr).1);
    }
    assert_eq!(stacked, expected);

    // Without a pipeline, a WAV is refused saying what is needed.
    let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&wav)]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("clip.wav is a WAV audio file; the model takes a .npy tensor"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn write_wav(p: &Path, rate: u32, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(p, spec).expect("wav");
    for &s in samples {
        w.write_sample(s).expect("sample");
    }
    w.finalize().expect("wav");
}

#[test]
fn features_turns_a_folder_of_labelled_wavs_into_one_array() {
    let dir = tmpdir("batch");
    let pipeline = dir.join("p.toml");
    std::fs::write(
        &pipeline,
        "[input.signal]\naxes = 1\nrate_hz = 16000.0\nwindow = 16\nstride = 16\n\
         [[blocks]]\nscale = { scale = 0.001, offset = -0.5 }\n",
    )
    .expect("write");
    let data = dir.join("data");
    for c in ["yes", "no"] {
        std::fs::create_dir_all(data.join(c)).expect("dir");
    }
    let clip = |k: i16| -> Vec<i16> { (0..16).map(|i| i * k - 100).collect() };
    write_wav(&data.join("no/a.wav"), 16000, &clip(3));
    write_wav(&data.join("yes/b.wav"), 16000, &clip(5));
    write_wav(&data.join("yes/c.wav"), 16000, &clip(7));
    let at_48k: Vec<i16> = (0..48).map(|i| i * 11 - 200).collect();
    write_wav(&data.join("yes/d.wav"), 48000, &at_48k);
    std::fs::write(data.join("yes/README.txt"), "not audio").expect("write");
    let out = dir.join("features.npy");
    let o = edgeflow_in(
        &dir,
        &[
            "features",
            "--pipeline",
            s(&pipeline),
            s(&data),
            "-o",
            s(&out),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let msg = text(&o.stdout);
    assert!(msg.contains("shape [4, 16] float32 from 4 files"), "{msg}");
    assert!(
        msg.contains("resampled 1 of 4 files to the pipeline's 16000 Hz (rubato"),
        "{msg}"
    );
    assert!(msg.contains("skipped 1 files of other types"), "{msg}");
    let (shape, stacked) = read_npy_f32(&out);
    assert_eq!(shape, vec![4, 16]);
    // Classes by name (no = 0, yes = 1), files by name.
    assert_eq!(
        std::fs::read_to_string(dir.join("features.classes.txt")).expect("classes"),
        "no\nyes\n"
    );
    let bytes = std::fs::read(dir.join("features.labels.npy")).expect("labels");
    let labels: Vec<i32> = npyz::NpyFile::new(&bytes[..])
        .expect("npy")
        .into_vec()
        .expect("int32");
    assert_eq!(labels, vec![0, 1, 1, 1]);
    // Each row is what `features` gives for that file alone.
    for (i, f) in ["no/a.wav", "yes/b.wav", "yes/c.wav", "yes/d.wav"]
        .iter()
        .enumerate()
    {
        let one = dir.join("one.npy");
        let o = edgeflow_in(
            &dir,
            &[
                "features",
                "--pipeline",
                s(&pipeline),
                s(&data.join(f)),
                "-o",
                s(&one),
            ],
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(read_npy_f32(&one).1, stacked[i * 16..(i + 1) * 16]);
    }
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn data_stats_detects_the_delimiter_and_takes_a_label_column() {
    let dir = tmpdir("stats");
    let csv = dir.join("semi.csv");
    std::fs::write(
        &csv,
        "temp;kind;site\n1.5;cat;a\n2.5;dog;a\n3.5;;b\n4.5;cat;b\n",
    )
    .expect("write");
    let o = edgeflow_in(&dir, &["data", "inspect", s(&csv)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("delimiter") && out.contains("';'"), "{out}");
    assert!(
        out.contains("temp") && out.contains("kind") && out.contains("site"),
        "{out}"
    );

    let o = edgeflow_in(&dir, &["data", "stats", s(&csv), "--label", "kind"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("4 rows, 3 columns"), "{out}");
    assert!(out.contains("class balance (kind)"), "{out}");
    // One of four rows has no class: 25 %, in the column table and the class chart.
    assert!(out.contains("1 (25.0%) !"), "{out}");
    assert!(out.contains("(unlabelled)"), "{out}");
    assert!(out.contains("50.0%"), "{out}");

    let o = edgeflow_in(&dir, &["data", "stats", s(&csv), "--label", "nope"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("no column \"nope\" (columns: temp, kind, site)"),
        "{}",
        text(&o.stderr)
    );
    // An explicit delimiter wins over detection.
    let o = edgeflow_in(&dir, &["data", "inspect", s(&csv), "--delimiter", ","]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("temp;kind;site"),
        "{}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn run_takes_csv_rows_through_a_vector_pipeline() {
    let dir = tmpdir("csvrun");
    let model = fixtures().join("fc_f32.tflite");
    let pipeline = dir.join("v.toml");
    std::fs::write(&pipeline, "[input.vector]\nlen = 16\n").expect("write");
    let art = dir.join("v.edgeflow");
    let o = edgeflow_in(
        &dir,
        &[
            "convert",
            s(&model),
            "--pipeline",
            s(&pipeline),
            "-o",
            s(&art),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let rows: Vec<Vec<f32>> = (0..3)
        .map(|r| (0..16).map(|i| ((i * r) % 5) as f32 - 2.0).collect())
        .collect();
    let mut csv = (0..16)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in &rows {
        csv += &(r
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",")
            + "\n");
    }
    let input = dir.join("rows.csv");
    std::fs::write(&input, csv).expect("write");
    let y = dir.join("y.npy");
    let o = edgeflow_in(&dir, &["run", s(&art), "--input", s(&input), "-o", s(&y)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("a CSV file through the artifact's feature pipeline (3 feature tensors)"),
        "{out}"
    );
    assert!(out.contains("row 3: class "), "{out}");
    // Each row gives what the model gives for that row as a tensor (the pipeline is the
    // identity on a vector).
    let (shape, stacked) = read_npy_f32(&y);
    assert_eq!(shape[0], 3);
    let mut expected = Vec::new();
    for r in &rows {
        let x = dir.join("row.npy");
        write_npy_f32(&x, &[1, 16], r);
        let yr = dir.join("row_out.npy");
        let o = edgeflow_in(&dir, &["run", s(&model), "--input", s(&x), "-o", s(&yr)]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        expected.extend(read_npy_f32(&yr).1);
    }
    assert_eq!(stacked, expected);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
