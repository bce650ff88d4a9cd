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
