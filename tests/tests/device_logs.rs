//! Device logs on the emulated Cortex-M4F (QEMU mps2-an386): the application logs with
//! `defmt` (boot, the model slot chosen, updates, link errors) inside telemetry frames, and
//! the host decodes them with the firmware ELF's defmt table, arguments included. A defmt
//! frame the table cannot decode is counted and reported, and without a table the raw frame
//! is kept and reported with a note — never dropped silently.
//!
//! Without QEMU or the Rust target the test fails, unless `EDGEFLOW_SKIP_QEMU=1` asks to
//! skip it (the reason is printed).

use std::time::Duration;

use edgeflow::dsp::host as dsp_host;
use edgeflow::host::attach_pipeline;
use edgeflow_telemetry::command::Command;
use edgeflow_telemetry::{Body, DefmtTable, Event, Frame, Level, LogResolver};
use edgeflow_tests::device::{self, Device};
use edgeflow_tests::firmware;

const PIPELINE: &str = "[input.signal]\naxes = 2\nrate_hz = 50.0\nwindow = 32\nstride = 16\n\
    [[blocks]]\nstats = { stats = [\"mean\", \"min\", \"max\", \"rms\", \"std\", \"skewness\", \"kurtosis\", \"peak_to_peak\"] }\n";

fn model() -> Vec<u8> {
    let p = edgeflow_tests::root().join("conformance/fixtures/fc_int8.tflite");
    let tflite = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let a = edgeflow_compile::compile(&tflite, "fc_int8")
        .expect("compile")
        .artifact;
    let spec = dsp_host::from_toml(PIPELINE, "<test>").expect("pipeline");
    attach_pipeline(&a, &spec).expect("attach")
}

fn frames(ev: &[Event]) -> Vec<&Frame> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Frame(f) => Some(f),
            Event::Error(_) => None,
        })
        .collect()
}

#[test]
fn defmt_logs_from_the_device_decode_on_the_host_and_corrupt_ones_are_counted() {
    let board = firmware::board("mps2-an386");
    if let Some(why) = firmware::toolchain_missing(&board) {
        println!("skipped: {why}");
        return;
    }
    let artifact = model();
    let elf = device::build_app(&board).unwrap_or_else(|e| panic!("{e}"));
    let work = edgeflow_tests::root().join("target/edgeflow-device");
    std::fs::create_dir_all(&work).expect("dir");
    let img = work.join("partition-logs.bin");
    std::fs::write(&img, device::partition_image(&artifact)).expect("image");
    let (partition, _) = device::app_layout(&board).expect("layout");
    let t = Duration::from_secs(120);

    // 1. The bytes exactly as the device sent them: a resolver without a table keeps the
    //    defmt frames raw (and says so).
    let raw_resolver = LogResolver::new(None, Some("raw on purpose".into()));
    let mut dev = Device::start_with(&board, &elf, Some((&img, partition)), raw_resolver)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ev = dev
        .until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Hello(_))),
        )
        .expect("hello");
    // An error the device logs with no argument, and a link error with a derived-Format one.
    dev.send(&Command::UpdateCommit).expect("send");
    let mut bad = vec![0u8; 64];
    let n = Command::Hello.encode(&mut bad).expect("encode");
    bad[1] ^= 0x40;
    dev.send_raw(&bad[..n]).expect("send");
    dev.send(&Command::Hello).expect("send");
    ev.extend(
        dev.until(
            t,
            |e| matches!(e, Event::Frame(f) if matches!(f.body, Body::Hello(_))),
        )
        .expect("second hello"),
    );
    let (rest, stats, logs) = dev.stop_with_logs(t).expect("stop");
    ev.extend(rest);
    let hello = frames(&ev)
        .iter()
        .find_map(|f| match &f.body {
            Body::Hello(h) => Some(h.clone()),
            _ => None,
        })
        .expect("hello");
    let raw: Vec<&Frame> = frames(&ev)
        .into_iter()
        .filter(|f| matches!(f.body, Body::Defmt(_)))
        .collect();
    assert_eq!(logs.undecoded as usize, raw.len());
    assert_eq!((logs.decoded, logs.corrupt), (0, 0));
    assert_eq!(stats.missing_frames, 0, "{stats:?}");

    // 2. Decoded with the ELF's table: each line with its arguments.
    let table = DefmtTable::from_elf(&elf)
        .expect("read the ELF")
        .expect("the application ELF has a .defmt table");
    let lines: Vec<(Level, String)> = raw
        .iter()
        .map(|f| match &f.body {
            Body::Defmt(b) => table.decode(b).unwrap_or_else(|e| panic!("{e}")),
            _ => unreachable!(),
        })
        .collect();
    for l in &lines {
        println!("device log: {:?} {}", l.0, l.1);
    }
    let hash = u32::from_le_bytes([artifact[12], artifact[13], artifact[14], artifact[15]]);
    let want_boot = format!("boot: {} on {}", hello.firmware, hello.board);
    let want_slot = format!(
        "model slot 0 chosen: update 1, {} bytes, model {hash:#010x}",
        artifact.len()
    );
    assert_eq!(lines.first(), Some(&(Level::Info, want_boot)), "{lines:?}");
    assert_eq!(lines.get(1), Some(&(Level::Info, want_slot)), "{lines:?}");
    assert!(
        lines.contains(&(Level::Error, "update: nothing to commit".to_string())),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|(l, m)| *l == Level::Warn && m.starts_with("link: ") && m.len() > 6),
        "{lines:?}"
    );

    // 3. The resolver the host tools use: the same frames become log lines; corrupt ones
    //    (an index the table does not have; arguments cut short) are counted and reported.
    let mut resolver = LogResolver::for_elf(Some(elf.as_path()));
    assert!(resolver.has_table());
    for f in &raw {
        let mut f = (*f).clone();
        assert_eq!(resolver.resolve(&mut f), None);
        assert!(matches!(f.body, Body::Log(_)), "{:?}", f.body);
    }
    let slot_frame = raw.get(1).expect("slot log frame");
    let Body::Defmt(bytes) = &slot_frame.body else {
        unreachable!()
    };
    let mut bad_index = (*slot_frame).clone();
    let mut b = bytes.clone();
    b[0] = 0xFF;
    b[1] = 0xFF;
    bad_index.body = Body::Defmt(b);
    let mut cut = (*slot_frame).clone();
    cut.body = Body::Defmt(bytes[..bytes.len() - 1].to_vec());
    for mut f in [bad_index, cut] {
        let note = resolver
            .resolve(&mut f)
            .expect("a corrupt frame is reported");
        assert!(note.contains("corrupt defmt frame"), "{note}");
        assert!(matches!(f.body, Body::Defmt(_)), "kept raw: {:?}", f.body);
        println!("{note}");
    }
    assert_eq!(resolver.stats().decoded as usize, raw.len());
    assert_eq!(resolver.stats().corrupt, 2);

    // 4. No table: the frame is kept and reported raw with the reason.
    let missing = work.join("no-such-firmware.elf");
    let mut none = LogResolver::for_elf(Some(missing.as_path()));
    let mut f = (*slot_frame).clone();
    let note = none.resolve(&mut f).expect("reported");
    assert!(
        note.contains("raw defmt frame") && note.contains("no-such-firmware.elf"),
        "{note}"
    );
    assert_eq!(none.stats().undecoded, 1);
}
