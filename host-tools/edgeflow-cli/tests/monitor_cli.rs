//! `edgeflow monitor` end to end: ingest from an emulated board's UART (TCP) and a file,
//! `check` quiet on a clean device and failing on a faulty one, labels, the HTML report, the
//! Parquet export, MQTT from several simulated devices through a real Mosquitto broker, and
//! the live page in headless Chromium.

mod common;
use common::{edgeflow, text};

mod monitor_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgeflow_monitor::ingest::device_name;
use edgeflow_monitor::store::{Durability, Store};
use monitor_support::{baseline, free_port, stream, tmp};

/// A database with a clean device (1, streamed over TCP like QEMU's UART) and a device whose
/// feature 1 has an offset (2, from a file), and a thresholds file.
fn setup(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let db = tmp(&format!("{name}.db"));
    let base_path = tmp(&format!("{name}.baseline"));
    let base = baseline();
    std::fs::write(&base_path, &base).expect("write baseline");
    let th = tmp(&format!("{name}.toml"));
    std::fs::write(&th, "[drift.thresholds]\nwasserstein = 0.2\n").expect("thresholds");

    let uart = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = uart.local_addr().expect("addr").to_string();
    let clean = stream(&base, 1, 11, 2000, 0.0, true);
    let board = std::thread::spawn(move || {
        let (mut s, _) = uart.accept().expect("accept");
        for chunk in clean.chunks(1000) {
            s.write_all(chunk).expect("uart write");
        }
    });
    let o = edgeflow(&[
        "monitor",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--tcp",
        &addr,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    board.join().expect("board");

    let faulty = tmp(&format!("{name}.bin"));
    std::fs::write(&faulty, stream(&base, 2, 12, 2000, 1.5, false)).expect("write stream");
    let o = edgeflow(&[
        "monitor",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--file",
        faulty.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("device 0000000000000002: 21 frames, 0 gaps, 0 corrupt"),
        "{}",
        text(&o)
    );
    (db, base_path, th)
}

#[test]
fn ingest_check_label_report_export() {
    let (db, base, th) = setup("e2e");
    let (db, base, th) = (
        db.to_str().unwrap(),
        base.to_str().unwrap(),
        th.to_str().unwrap(),
    );
    let common = [
        "--db",
        db,
        "--baseline",
        base,
        "--thresholds",
        th,
        "--window-summaries",
        "5",
    ];

    let mut args = vec!["monitor", "check", "--device", "0000000000000001"];
    args.extend(common);
    let o = edgeflow(&args);
    assert!(o.status.success(), "clean device must pass: {}", text(&o));
    assert!(text(&o).contains("0 alert(s)"), "{}", text(&o));

    let mut args = vec!["monitor", "check", "--device", "0000000000000002"];
    args.extend(common);
    let o = edgeflow(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("ALERT device=0000000000000002")
            && out.contains("feature=1 test=wasserstein")
            && out.contains("threshold=0.2"),
        "{out}"
    );
    assert!(
        !out.contains("feature=0 ") && !out.contains("feature=2 "),
        "only feature 1 drifted: {out}"
    );

    // Labels: every prediction of device 1 labelled with a wrong class -> realised accuracy 0.
    let csv = tmp("labels.csv");
    let mut lines = String::from("device,seq,label\n");
    for seq in 1..=2000u32 {
        lines.push_str(&format!("0000000000000001,{seq},7\n"));
    }
    std::fs::write(&csv, lines).expect("csv");
    let o = edgeflow(&[
        "monitor",
        "label",
        "--db",
        db,
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut args = vec!["monitor", "check", "--device", "0000000000000001"];
    args.extend(common);
    let o = edgeflow(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("area=performance test=realised_accuracy value=0.000000"),
        "{}",
        text(&o)
    );

    let html = tmp("report.html");
    let mut args = vec!["monitor", "report", "-o", html.to_str().unwrap()];
    args.extend(common);
    let o = edgeflow(&args);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(page.matches("<svg").count() >= 8, "charts missing");
    for want in [
        "Drift per feature (PSI)",
        "Class mix",
        "Accuracy",
        "Device health",
        "feature 1",
        "realised_accuracy",
    ] {
        assert!(page.contains(want), "report lacks {want:?}");
    }

    let pq = tmp("export.parquet");
    let o = edgeflow(&[
        "monitor",
        "export",
        "--db",
        db,
        "--parquet",
        pq.to_str().unwrap(),
        "--device",
        "0000000000000002",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("wrote 21 frames"), "{}", text(&o));
}

#[test]
fn bad_inputs_fail_with_a_clear_message() {
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        "/nonexistent/m.db",
        "--baseline",
        "/nonexistent/b",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/b"), "{}", text(&o));
    let junk = tmp("junk.baseline");
    std::fs::write(&junk, b"not a baseline").expect("write");
    let db = tmp("empty.db");
    let o = edgeflow(&[
        "monitor",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--file",
        junk.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "garbage bytes are counted as corrupt, not fatal: {}",
        text(&o)
    );
    assert!(text(&o).contains("1 corrupt"), "{}", text(&o));
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db.to_str().unwrap(),
        "--baseline",
        junk.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("neither an artifact nor a monitoring baseline"),
        "{}",
        text(&o)
    );
    let th = tmp("bad.toml");
    std::fs::write(&th, "[drift.thresholds]\npsi = -1\n").expect("write");
    let b = tmp("ok.baseline");
    std::fs::write(&b, baseline()).expect("write");
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db.to_str().unwrap(),
        "--baseline",
        b.to_str().unwrap(),
        "--thresholds",
        th.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("drift.thresholds.psi = -1"),
        "{}",
        text(&o)
    );
}

fn mosquitto() -> Option<&'static str> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mqtt_ingest_from_several_devices_through_mosquitto() {
    let Some(bin) = mosquitto() else {
        println!("SKIPPED mqtt_ingest_from_several_devices_through_mosquitto: mosquitto is not installed (apt-get install mosquitto)");
        return;
    };
    let port = free_port();
    let conf = tmp("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .expect("conf");
    let _broker = Killed(
        Command::new(bin)
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto"),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let db = tmp("mqtt.db");
    let mut ingest = Killed(
        Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args([
                "monitor",
                "ingest",
                "--db",
                db.to_str().unwrap(),
                "--mqtt",
                &format!("127.0.0.1:{port}"),
                "--print-acks",
                "--max-seconds",
                "60",
                "--batch-ms",
                "20",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ingest"),
    );
    // Wait for the subscription before publishing.
    let mut err = BufReader::new(ingest.0.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("ingest stderr");
    assert!(line.contains("subscribed"), "{line}");

    let base = baseline();
    let devices = 4u64;
    let mut total = 0u64;
    let (client, mut conn) = rumqttc::Client::new(
        rumqttc::MqttOptions::new("sim-devices", "127.0.0.1", port),
        64,
    );
    let pump = std::thread::spawn(move || for _ in conn.iter().take_while(|e| e.is_ok()) {});
    for d in 0..devices {
        let s = stream(&base, 200 + d, 40 + d, 500, 0.0, true);
        // Split on frame delimiters: each publish carries a few whole frames.
        let mut frames = 0u64;
        for chunk in s
            .split_inclusive(|&b| b == 0)
            .collect::<Vec<_>>()
            .chunks(16)
        {
            frames += chunk.len() as u64;
            let payload: Vec<u8> = chunk.concat();
            client
                .publish(
                    format!("edgeflow/dev{d}/telemetry"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .expect("publish");
        }
        total += frames;
    }
    let mut out = BufReader::new(ingest.0.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acked = 0;
    while acked < total && Instant::now() < deadline {
        let mut l = String::new();
        if out.read_line(&mut l).expect("read") == 0 {
            break;
        }
        if let Some(n) = l.trim().strip_prefix("acked ").and_then(|n| n.parse().ok()) {
            acked = n;
        }
    }
    assert_eq!(acked, total, "all published frames acknowledged");
    let _ = client.disconnect();
    drop(pump); // the client's event loop ends with the disconnect; not joined
    drop(ingest);
    let store = Store::open(&db, Durability::Process).expect("open");
    for d in 0..devices {
        let info = store
            .devices()
            .into_iter()
            .find(|i| i.name == device_name(200 + d))
            .expect("device stored");
        assert_eq!(
            (info.frames, info.gaps, info.corrupt),
            (total / devices, 0, 0),
            "{info:?}"
        );
    }
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

#[test]
fn live_page_updates_and_renders_in_chromium() {
    let (db, base, th) = setup("serve");
    let port = free_port();
    let _server = Killed(
        Command::new(env!("CARGO_BIN_EXE_edgeflow"))
            .args([
                "monitor",
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--baseline",
                base.to_str().unwrap(),
                "--thresholds",
                th.to_str().unwrap(),
                "--window-summaries",
                "5",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--max-seconds",
                "120",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("serve"),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = http_get(port, "/");
    assert!(
        page.contains("200 OK") && page.contains("feature 1") && page.contains("/api/version"),
        "{}",
        &page[..page.len().min(400)]
    );
    let v1 = http_get(port, "/api/version");
    // A new device's frames arrive: the version the page polls changes.
    let more = tmp("serve-more.bin");
    std::fs::write(&more, stream(&baseline(), 3, 13, 500, 0.0, false)).expect("write");
    let o = edgeflow(&[
        "monitor",
        "ingest",
        "--db",
        db.to_str().unwrap(),
        "--file",
        more.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v2 = http_get(port, "/api/version");
    let newest = |r: &str| {
        r.rsplit("\"newest\":")
            .next()
            .map(|s| s.trim_end_matches(['}', '\n', '\r']).to_string())
    };
    assert_ne!(newest(&v1), newest(&v2), "{v1} / {v2}");
    assert!(http_get(port, "/").contains("0000000000000003"));

    let Some(chrome) = chromium() else {
        println!("SKIPPED screenshot: chromium is not installed (apt-get install chromium)");
        return;
    };
    let shot = tmp("live.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tmp("chromium-profile");
    let o = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .args(["--window-size=1200,1600", "--virtual-time-budget=3000"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("run chromium");
    assert!(shot.exists(), "no screenshot: {}", text(&o));
    // The page shows the alert status in red (#c62828) and the drift chart's lines: decode
    // the PNG and look for those colours.
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let ch = info.color_type.samples();
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(ch).collect();
    let near = |p: &[u8], c: [u8; 3]| {
        p.iter()
            .zip(c)
            .all(|(&a, b)| (i16::from(a) - i16::from(b)).abs() <= 12)
    };
    let red = px.iter().filter(|p| near(p, [198, 40, 40])).count();
    let blue = px.iter().filter(|p| near(p, [31, 119, 180])).count();
    assert!(red > 50, "alert status not rendered in red ({red} px)");
    assert!(blue > 50, "chart lines not rendered ({blue} px)");
}

/// An artifact file carrying `baseline` (a placeholder graph: `check` reads only the model
/// hash and the baseline); returns its model hash as devices send it.
fn artifact_with(path: &Path, baseline: &[u8]) -> u32 {
    use edgeflow_format::SectionKind;
    let bytes = edgeflow_format::write::assemble(&[
        (SectionKind::Graph, b"placeholder graph".as_slice()),
        (SectionKind::MonitoringBaseline, baseline),
    ])
    .expect("assemble");
    std::fs::write(path, &bytes).expect("write artifact");
    u32::from_le_bytes(bytes[12..16].try_into().expect("hash"))
}

/// A device updated from model A to model B mid-stream: `check` and `report` split its
/// windows at the switch and compare each with its own model's artifact; a drift under B
/// alerts only in B's windows; a model without a given artifact is reported, not checked.
#[test]
fn check_and_report_per_model() {
    use edgeflow_monitor::sim::device_stream;
    use monitor_support::{inferences, rows, Rng};
    let dir = tmp("models");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let base_a = baseline();
    // Model B: trained with feature 1 at +3 (a remounted sensor).
    let base_b = {
        let mut rng = Rng(0xb0b);
        let train = rows(&mut rng, 3000, 3.0);
        let labels: Vec<usize> = (0..3000).map(|i| i % 3).collect();
        let validation: Vec<(f32, bool)> = (0..600)
            .map(|i| (0.6 + 0.3 * ((i % 7) as f32 / 7.0), i % 10 != 0))
            .collect();
        edgeflow_monitor::baseline::build(&train, 10, &labels, 3, &[0.7, 0.8, 0.9], &validation)
            .expect("baseline B")
            .to_bytes()
            .expect("bytes")
    };
    let hash_a = artifact_with(&dir.join("a.edgeflow"), &base_a);
    let hash_b = artifact_with(&dir.join("b.edgeflow"), &base_b);
    assert_ne!(hash_a, hash_b);
    let (ha, hb) = (format!("{hash_a:08x}"), format!("{hash_b:08x}"));

    // Device 5: 1000 inferences under A (clean), then 1000 under B whose feature 1 is at +3
    // (as B was trained) and whose feature 0 has drifted by +1.5.
    let mut rng = Rng(0x5);
    let under_a = rows(&mut rng, 1000, 0.0);
    let mut under_b = rows(&mut rng, 1000, 3.0);
    for r in &mut under_b {
        r[0] += 1.5;
    }
    let mut bytes = device_stream(
        &base_a,
        5,
        hash_a,
        &inferences(&under_a),
        100,
        false,
        10_000,
    )
    .expect("A");
    bytes.extend(
        device_stream(
            &base_b,
            5,
            hash_b,
            &inferences(&under_b),
            100,
            false,
            10_000,
        )
        .expect("B"),
    );
    let file = dir.join("stream.bin");
    std::fs::write(&file, &bytes).expect("stream");
    let db = dir.join("m.db");
    let (db, file) = (db.to_str().unwrap(), file.to_str().unwrap());
    let o = edgeflow(&["monitor", "ingest", "--db", db, "--file", file]);
    assert!(o.status.success(), "{}", text(&o));

    let th = dir.join("th.toml");
    std::fs::write(&th, "[drift.thresholds]\nwasserstein = 0.2\n").expect("thresholds");
    let th = th.to_str().unwrap();
    let d = dir.to_str().unwrap();
    // Both artifacts (as a directory), every window.
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db,
        "--artifact",
        d,
        "--thresholds",
        th,
        "--window-summaries",
        "5",
        "--last",
        "0",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("checked 4 window(s) of 1 device(s)"), "{out}");
    let alerts: Vec<&str> = out.lines().filter(|l| l.starts_with("ALERT")).collect();
    assert!(!alerts.is_empty(), "{out}");
    for l in &alerts {
        assert!(
            l.contains(&format!("model={hb} ")) && l.contains(" feature=0 "),
            "only B's windows drift, on feature 0: {l}"
        );
    }
    // Model A alone: A's windows are checked and quiet, B's are reported as not checked.
    let a_path = dir.join("a.edgeflow");
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db,
        "--baseline",
        a_path.to_str().unwrap(),
        "--thresholds",
        th,
        "--window-summaries",
        "5",
        "--last",
        "0",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(!out.contains("ALERT"), "{out}");
    assert!(
        out.contains(&format!("NOT CHECKED device=0000000000000005 model={hb} "))
            && out.contains(&format!("no baseline for model {hb} (given: {ha} ")),
        "{out}"
    );
    assert!(
        out.contains("checked 2 window(s)") && out.contains("2 window(s) not checked"),
        "{out}"
    );
    // Only model A's windows: quiet, exit 0.
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db,
        "--baseline",
        a_path.to_str().unwrap(),
        "--thresholds",
        th,
        "--window-summaries",
        "5",
        "--last",
        "0",
        "--model",
        &ha,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The same artifact twice is refused, naming both.
    let o = edgeflow(&[
        "monitor",
        "check",
        "--db",
        db,
        "--baseline",
        a_path.to_str().unwrap(),
        "--baseline",
        d,
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!("both model {ha}")),
        "{}",
        text(&o)
    );

    let html = dir.join("report.html");
    let o = edgeflow(&[
        "monitor",
        "report",
        "-o",
        html.to_str().unwrap(),
        "--db",
        db,
        "--baseline",
        a_path.to_str().unwrap(),
        "--thresholds",
        th,
        "--window-summaries",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(
        page.contains(&format!("0000000000000005 · model {ha}")),
        "A's section"
    );
    assert!(
        page.contains("Not checked") && page.contains(&hb),
        "B listed as not checked"
    );
    let o = edgeflow(&[
        "monitor",
        "report",
        "-o",
        html.to_str().unwrap(),
        "--db",
        db,
        "--artifact",
        d,
        "--thresholds",
        th,
        "--window-summaries",
        "5",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let page = std::fs::read_to_string(&html).expect("report");
    assert!(
        page.contains(&format!("0000000000000005 · model {hb}")),
        "B's section"
    );
    assert!(!page.contains("Not checked"));
}
