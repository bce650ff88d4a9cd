//! `edgeflow monitor ingest` from each live source, with several simulated devices whose
//! streams carry log frames (numbered like every frame, not stored) and one corrupted frame:
//! a serial port (a pty pair stands in for the USB-serial adapter), `--listen` (devices
//! connect over TCP as QEMU's `-serial tcp:HOST:PORT` UART does), and MQTT through the
//! Mosquitto broker `.ci/run` starts on port 1883. Each test checks, per device, the frames
//! stored and the gap and corrupt counters.

mod monitor_support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use edgeflow_monitor::ingest::device_name;
use edgeflow_monitor::sim::StreamOptions;
use edgeflow_monitor::store::{DeviceInfo, Durability, Store};
use monitor_support::{baseline, inferences, rows, tmp, Ingester, Rng};

/// Inferences per device, a summary every 100, a log frame every 25.
const N: usize = 500;
const LOG_EVERY: usize = 25;
/// Frames a device sends: hello, N predictions, N / LOG_EVERY logs, N / 100 summaries.
const SENT: u64 = 1 + N as u64 + (N / LOG_EVERY) as u64 + (N / 100) as u64;
/// Frames the monitor stores of them (logs are not kept).
const KEPT: u64 = SENT - (N / LOG_EVERY) as u64;

/// A simulated device's telemetry, log frames included.
fn device(base: &[u8], id: u64, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    edgeflow_monitor::sim::stream(
        base,
        id,
        0xabcd,
        &inferences(&rows(&mut rng, N, 0.0)),
        &StreamOptions {
            window: 100,
            predictions: true,
            period_us: 10_000,
            log_every: LOG_EVERY,
        },
    )
    .expect("stream")
}

/// The stream's frames (each ends with its 0 delimiter).
fn frames(s: &[u8]) -> Vec<&[u8]> {
    s.split_inclusive(|&b| b == 0).collect()
}

/// Corrupts one byte inside frame `k` (never turning it into a delimiter): the frame fails
/// its CRC, so the device gets one corrupt frame and one sequence gap.
fn corrupt_frame(s: &mut [u8], k: usize) {
    let start: usize = frames(s)[..k].iter().map(|f| f.len()).sum();
    let len = frames(s)[k].len();
    let at = (start + len / 2..start + len - 1)
        .find(|&i| s[i] != 0 && s[i] != 0x55)
        .expect("a byte to corrupt");
    s[at] ^= 0x55;
}

/// The stored counters of device `id` (acknowledged frames are committed, so they are read
/// back after the ingester was killed).
fn info(db: &Path, id: u64) -> DeviceInfo {
    let store = Store::open(db, Durability::Process).expect("open");
    store
        .devices()
        .into_iter()
        .find(|d| d.name == device_name(id))
        .unwrap_or_else(|| panic!("device {id} not stored"))
}

#[cfg(unix)]
#[test]
fn serial_port_ingest_of_two_devices_on_one_line() {
    use serialport::{SerialPort, TTYPort};
    let (mut host_side, device_side) = TTYPort::pair().expect("pty pair");
    let path = device_side.name().expect("pty name");
    let db = tmp("serial.db");
    let (mut ing, _) = Ingester::start(&db, &["--serial", &path], 60, "reading serial port");
    let base = baseline();
    let mut a = device(&base, 301, 1);
    corrupt_frame(&mut a, 200);
    let b = device(&base, 302, 2);
    // A gateway forwarding two sensors on one line, at UART-sized writes.
    for chunk in a.chunks(256).chain(b.chunks(256)) {
        host_side.write_all(chunk).expect("pty write");
    }
    host_side.flush().expect("flush");
    assert_eq!(ing.wait_acked(2 * KEPT - 1), 2 * KEPT - 1);
    drop(ing);
    drop(device_side);
    let (ia, ib) = (info(&db, 301), info(&db, 302));
    assert_eq!((ia.frames, ia.gaps, ia.corrupt), (KEPT - 1, 1, 1), "{ia:?}");
    assert_eq!((ib.frames, ib.gaps, ib.corrupt), (KEPT, 0, 0), "{ib:?}");
}

#[test]
fn listen_ingest_from_several_uart_connections() {
    let db = tmp("listen.db");
    let (mut ing, addr) = Ingester::listen(&db, 60);
    let base = baseline();
    let ids = [401u64, 402, 403];
    let mut streams: Vec<Vec<u8>> = ids.iter().map(|&id| device(&base, id, id * 7)).collect();
    corrupt_frame(&mut streams[1], 300);
    // Three boards connect at once, as QEMU's UART does with `-serial tcp:HOST:PORT`.
    let boards: Vec<_> = streams
        .into_iter()
        .map(|s| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(&addr).expect("connect");
                for chunk in s.chunks(512) {
                    c.write_all(chunk).expect("uart write");
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for b in boards {
        b.join().expect("board");
    }
    assert_eq!(ing.wait_acked(3 * KEPT - 1), 3 * KEPT - 1);
    drop(ing);
    for (id, (frames, gaps, corrupt)) in
        ids.into_iter()
            .zip([(KEPT, 0, 0), (KEPT - 1, 1, 1), (KEPT, 0, 0)])
    {
        let i = info(&db, id);
        assert_eq!(
            (i.frames, i.gaps, i.corrupt),
            (frames, gaps, corrupt),
            "{i:?}"
        );
    }
}

#[test]
fn mqtt_ingest_through_the_ci_broker_on_1883() {
    let broker = ("127.0.0.1", 1883);
    let up = TcpStream::connect_timeout(
        &"127.0.0.1:1883".parse().expect("addr"),
        Duration::from_millis(500),
    );
    if up.is_err() {
        println!(
            "SKIPPED mqtt_ingest_through_the_ci_broker_on_1883: no MQTT broker answers on 127.0.0.1:1883 (.ci/run starts Mosquitto there)"
        );
        return;
    }
    drop(up);
    // The broker is shared (other test runs may publish at the same time): a topic of our own.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let prefix = format!("edgeflow-test-{}-{nonce}", std::process::id());
    let db = tmp("mqtt1883.db");
    let (mut ing, _) = Ingester::start(
        &db,
        &[
            "--mqtt",
            &format!("{}:{}", broker.0, broker.1),
            "--topic",
            &format!("{prefix}/+/telemetry"),
        ],
        60,
        "subscribed",
    );
    let base = baseline();
    let ids = [501u64, 502, 503, 504];
    let (client, mut conn) = rumqttc::Client::new(
        rumqttc::MqttOptions::new(format!("{prefix}-devices"), broker.0, broker.1),
        64,
    );
    let pump = std::thread::spawn(move || for _ in conn.iter().take_while(|e| e.is_ok()) {});
    for (k, &id) in ids.iter().enumerate() {
        let mut s = device(&base, id, id);
        if k == 2 {
            corrupt_frame(&mut s, 100);
        }
        // Each publish carries a few whole frames.
        for chunk in frames(&s).chunks(16) {
            client
                .publish(
                    format!("{prefix}/dev{id}/telemetry"),
                    rumqttc::QoS::AtLeastOnce,
                    false,
                    chunk.concat(),
                )
                .expect("publish");
        }
    }
    let total = 4 * KEPT - 1;
    let acked = ing.wait_acked(total);
    let _ = client.disconnect();
    drop(pump); // ends with the disconnect; not joined
    drop(ing);
    assert_eq!(acked, total, "all stored frames acknowledged");
    for (k, &id) in ids.iter().enumerate() {
        let i = info(&db, id);
        let want = if k == 2 {
            (KEPT - 1, 1, 1)
        } else {
            (KEPT, 0, 0)
        };
        assert_eq!((i.frames, i.gaps, i.corrupt), want, "{i:?}");
    }
}
