//! `edgeflow device replay --port` and `edgeflow device collect --port` against a fake
//! device on a pseudo-terminal: the test opens a pty pair (the CLI gets the slave side, as
//! it would get a board's USB-serial adapter), and a thread on the master side speaks the
//! documented link protocol (`edgeflow_telemetry::command` in, telemetry frames out): it
//! answers hellos, predicts once per window of samples, echoes samples back while
//! collecting from the link, or streams its own "sensor" values. Corrupted frames it sends
//! must be counted by the CLI (replay's closing line) or refused (collect writes no dataset
//! with holes), never silently dropped.

#![cfg(unix)]

mod common;
use common::{s, text};

use std::io::{Read, Write};
use std::process::Output;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use edgeflow_telemetry::command::{Command, CommandReader, MAX_RAW};
use edgeflow_telemetry::{truncated, Emitter, FrameBody, Hello, Prediction, SampleBlock};
use serialport::{SerialPort, TTYPort};

fn tmp(name: &str) -> std::path::PathBuf {
    common::tmp_in("device_serial", name)
}

/// Values (not frames) per prediction of the fake device.
const WINDOW: usize = 64;

/// What the fake device does besides answering.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// Corrupt the k-th prediction frame (0-based) it sends.
    bad_prediction: Option<usize>,
    /// Corrupt the k-th sample block it sends.
    bad_block: Option<usize>,
    /// While collecting, send the device's own sensor values (a real board) instead of
    /// echoing the samples streamed in (an emulated board, whose sensor is the link).
    sensor: bool,
}

/// What the fake device saw and did, for the test to check the CLI against.
#[derive(Debug, Default)]
struct Seen {
    values: usize,
    predictions: usize,
    /// Bytes of the corrupted frames, delimiter left out (what the host must discard).
    corrupted_bytes: usize,
    corrupted_frames: usize,
    /// Command frames that failed their CRC/COBS check on the device side.
    bad_commands: usize,
    /// The values its sensor produced (sensor mode).
    sensor: Vec<f32>,
}

/// The fake device's sensor: a deterministic signal, value `i` of the stream.
fn sensor_value(i: usize) -> f32 {
    (i as f32 * 0.37).sin() * 10.0 + (i % 7) as f32
}

/// Flips a byte in the middle of an encoded frame (never into the delimiter).
fn corrupt(frame: &mut [u8]) {
    let k = frame.len() / 2;
    frame[k] ^= 0x55;
    if frame[k] == 0 {
        frame[k] = 0x55;
    }
}

/// Runs a fake device on `port` until an `Exit` command, the link closing, or `stop`.
fn fake_device(mut port: TTYPort, faults: Faults, stop: mpsc::Receiver<()>) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        port.set_timeout(Duration::from_millis(10))
            .expect("timeout");
        let mut em = Emitter::new(0xfeed_0001, 0x1234_5678);
        let mut reader: Box<CommandReader<{ 2 * MAX_RAW }>> = Box::new(CommandReader::new());
        let mut seen = Seen::default();
        let (mut pending, mut collect_axes, mut collected, mut blocks) = (0usize, 0u16, 0u32, 0);
        let mut out = vec![0u8; 8192];
        let mut send = |port: &mut TTYPort,
                        body: &dyn Fn(&mut Emitter, &mut [u8]) -> usize,
                        bad: bool,
                        seen: &mut Seen| {
            let n = body(&mut em, &mut out);
            if bad {
                corrupt(&mut out[..n]);
                seen.corrupted_bytes += n - 1;
                seen.corrupted_frames += 1;
            }
            port.write_all(&out[..n]).expect("device write");
        };
        fn frame<B: FrameBody>(em: &mut Emitter, b: &B, out: &mut [u8]) -> usize {
            em.frame(0, b, out).expect("encode")
        }
        let mut buf = [0u8; 4096];
        loop {
            if stop.try_recv().is_ok() {
                return seen;
            }
            let n = match port.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
                // The CLI closed the slave side.
                Err(_) => return seen,
            };
            let mut cmds = Vec::new();
            for &b in &buf[..n] {
                match reader.push(b) {
                    Some(Ok(c)) => cmds.push(match c {
                        Command::Samples(d) => Cmd::Samples(d.to_vec()),
                        Command::Hello => Cmd::Hello,
                        Command::Collect { axes } => Cmd::Collect(axes),
                        Command::Exit => Cmd::Exit,
                        _ => Cmd::Other,
                    }),
                    Some(Err(_)) => seen.bad_commands += 1,
                    None => {}
                }
            }
            for c in cmds {
                match c {
                    Cmd::Hello => {
                        let h = Hello {
                            firmware: truncated("fake-device 0.1"),
                            board: truncated("nucleo-f411re"),
                            model: truncated("fake"),
                            artifact_version: (1, 0),
                            slot: 0,
                            slot_sequence: 1,
                            arena_bytes: 1024,
                        };
                        send(&mut port, &|em, out| frame(em, &h, out), false, &mut seen);
                    }
                    Cmd::Collect(a) => collect_axes = a,
                    Cmd::Samples(d) => {
                        let v: Vec<f32> = d
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
                            .collect();
                        seen.values += v.len();
                        if collect_axes > 0 {
                            let b = SampleBlock {
                                first: collected,
                                axes: collect_axes,
                                samples: &v,
                            };
                            let bad = faults.bad_block == Some(blocks);
                            send(&mut port, &|em, out| frame(em, &b, out), bad, &mut seen);
                            collected += v.len() as u32;
                            blocks += 1;
                            continue;
                        }
                        pending += v.len();
                        while pending >= WINDOW {
                            pending -= WINDOW;
                            let k = seen.predictions;
                            let p = Prediction {
                                class: (k % 3) as u16,
                                score: 0.5 + k as f32 / 100.0,
                                latency_us: 1000 + k as u32,
                            };
                            let bad = faults.bad_prediction == Some(k);
                            send(&mut port, &|em, out| frame(em, &p, out), bad, &mut seen);
                            seen.predictions += 1;
                        }
                    }
                    Cmd::Exit => return seen,
                    Cmd::Other => {}
                }
            }
            // Sensor mode: collecting with nothing streamed in, the device's own sensor
            // sends a block of 8 frames per tick.
            if collect_axes > 0 && faults.sensor {
                let start = collected as usize;
                let v: Vec<f32> = (start..start + 8 * collect_axes as usize)
                    .map(sensor_value)
                    .collect();
                let b = SampleBlock {
                    first: collected,
                    axes: collect_axes,
                    samples: &v,
                };
                let bad = faults.bad_block == Some(blocks);
                send(&mut port, &|em, out| frame(em, &b, out), bad, &mut seen);
                seen.sensor.extend_from_slice(&v);
                collected += v.len() as u32;
                blocks += 1;
            }
        }
    })
}

/// A command, copied out of the reader's buffer.
enum Cmd {
    Samples(Vec<u8>),
    Hello,
    Collect(u16),
    Exit,
    Other,
}

/// Starts a fake device with `faults` on a fresh pty pair, runs `edgeflow ARGS --port
/// <pty>` from the repository root, and returns the CLI's output and what the device saw.
fn with_device(faults: Faults, args: &[&str]) -> (Output, Seen) {
    let (master, slave) = TTYPort::pair().expect("pty pair");
    let path = slave.name().expect("pty name");
    let (tx, rx) = mpsc::channel();
    let dev = fake_device(master, faults, rx);
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--port", &path]);
    let out = common::edgeflow_at_root(&all);
    let _ = tx.send(());
    drop(slave);
    (out, dev.join().expect("fake device"))
}

/// `edgeflow device replay --board nucleo-f411re --data DATA` against a fake device.
fn replay(faults: Faults, data: &std::path::Path) -> (Output, Seen) {
    with_device(
        faults,
        &[
            "device",
            "replay",
            "--board",
            "nucleo-f411re",
            "--data",
            s(data),
        ],
    )
}

fn samples_npy(name: &str, frames: usize, axes: usize) -> (std::path::PathBuf, Vec<f32>) {
    let v: Vec<f32> = (0..frames * axes)
        .map(|i| (i as f32) * 0.25 - 3.0)
        .collect();
    let p = tmp(name);
    std::fs::write(&p, common::npy_f32(&[frames, axes], &v)).expect("write npy");
    (p, v)
}

#[test]
fn replay_over_a_serial_port_prints_predictions_and_counts_corrupt_bytes() {
    let (data, v) = samples_npy("replay.npy", 200, 2);
    // Clean link: every prediction printed, nothing lost.
    let (o, seen) = replay(Faults::default(), &data);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(seen.values, v.len(), "the device got every sample: {t}");
    assert_eq!(seen.bad_commands, 0);
    assert_eq!(seen.predictions, v.len() / WINDOW);
    assert_eq!(t.matches("pred   #").count(), seen.predictions, "{t}");
    assert!(t.contains("fake-device 0.1 on nucleo-f411re"), "{t}");
    assert!(
        t.contains(&format!(
            "{} samples sent, {} predictions; link: ",
            v.len(),
            seen.predictions
        )) && t.contains(" 0 lost, 0 bytes discarded"),
        "{t}"
    );

    // The third prediction corrupted on the wire: counted as lost and its bytes discarded.
    let (o, seen) = replay(
        Faults {
            bad_prediction: Some(2),
            ..Faults::default()
        },
        &data,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!((seen.corrupted_frames, seen.values), (1, v.len()));
    assert_eq!(t.matches("pred   #").count(), seen.predictions - 1, "{t}");
    assert!(
        t.contains(&format!("{} predictions; link: ", seen.predictions - 1))
            && t.contains(&format!(
                " 1 lost, {} bytes discarded",
                seen.corrupted_bytes
            )),
        "{t}"
    );
    assert!(t.contains("(1 frames lost before this one)"), "{t}");
}

#[test]
fn replay_names_a_serial_port_with_no_device() {
    let (data, _) = samples_npy("nodevice.npy", 10, 2);
    let o = common::edgeflow_at_root(&[
        "device",
        "replay",
        "--board",
        "nucleo-f411re",
        "--data",
        s(&data),
        "--port",
        "/dev/edgeflow-no-such-port",
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("opening serial port /dev/edgeflow-no-such-port"),
        "{t}"
    );
}

#[test]
fn collect_from_a_boards_sensor_over_a_serial_port() {
    let out = tmp("sensor.csv");
    let _ = std::fs::remove_file(&out);
    let (o, seen) = with_device(
        Faults {
            sensor: true,
            ..Faults::default()
        },
        &[
            "device",
            "collect",
            "--board",
            "nucleo-f411re",
            "--label",
            "walk",
            "--axes",
            "3",
            "--frames",
            "100",
            "-o",
            s(&out),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("collected 100 frames of 3 axes from nucleo-f411re"),
        "{t}"
    );
    let csv = std::fs::read_to_string(&out).expect("dataset written");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("axis0,axis1,axis2,label"));
    let got: Vec<f32> = lines
        .flat_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 4, "{l}");
            assert_eq!(cells[3], "walk", "{l}");
            cells[..3]
                .iter()
                .map(|c| c.parse::<f32>().expect("number"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got.len(), 300);
    assert_eq!(
        got[..],
        seen.sensor[..300],
        "the first 100 frames the sensor produced"
    );

    // A corrupted block: the CLI names the loss and writes no dataset.
    let bad = tmp("sensor_bad.csv");
    let _ = std::fs::remove_file(&bad);
    let (o, seen) = with_device(
        Faults {
            bad_block: Some(3),
            sensor: true,
            ..Faults::default()
        },
        &[
            "device",
            "collect",
            "--board",
            "nucleo-f411re",
            "--axes",
            "3",
            "--frames",
            "100",
            "-o",
            s(&bad),
        ],
    );
    let t = text(&o);
    assert_eq!(seen.corrupted_frames, 1);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("samples were lost on the link"), "{t}");
    assert!(!bad.exists(), "no dataset with holes");
}

#[test]
fn collect_streams_a_recording_through_a_serial_port() {
    let (src, v) = samples_npy("collect_src.npy", 300, 2);
    let out = tmp("echo.csv");
    let _ = std::fs::remove_file(&out);
    let (o, seen) = with_device(
        Faults::default(),
        &[
            "device",
            "collect",
            "--board",
            "mps2-an386",
            "--label",
            "idle",
            "--source",
            s(&src),
            "-o",
            s(&out),
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(seen.values, v.len());
    let csv = std::fs::read_to_string(&out).expect("dataset written");
    let got: Vec<f32> = csv
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .take(2)
                .map(|c| c.parse::<f32>().expect("number"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(got, v);

    // Without --source and without --port, an emulated board's sensor is the link.
    let o = common::edgeflow_at_root(&[
        "device",
        "collect",
        "--board",
        "nucleo-f411re",
        "--axes",
        "3",
        "--frames",
        "10",
        "-o",
        s(&out),
    ]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("is a real board: give --port DEVICE"), "{t}");
}
