//! Host-to-device commands round-trip; damaged ones are rejected and counted, and the
//! reader recovers at the next delimiter.

use edgeflow_telemetry::command::{Command, CommandReader, LinkError, MAX_ENCODED, MAX_PAYLOAD};

fn all() -> Vec<(Command<'static>, Vec<u8>)> {
    let samples: &'static [u8] = Box::leak(
        (0..64u32)
            .flat_map(|i| (i as f32 * 0.5 - 3.0).to_le_bytes())
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let data: &'static [u8] = Box::leak(vec![0u8, 1, 0, 0, 255, 7].into_boxed_slice());
    [
        Command::Samples(samples),
        Command::UpdateBegin {
            len: 70_000,
            crc: 0xDEAD_BEEF,
        },
        Command::UpdateData { offset: 1020, data },
        Command::UpdateCommit,
        Command::Summary,
        Command::Hello,
        Command::Reset,
        Command::Exit,
        Command::Collect { axes: 6 },
        Command::Collect { axes: 0 },
    ]
    .into_iter()
    .map(|c| {
        let mut buf = vec![0u8; MAX_ENCODED];
        let n = c.encode(&mut buf).expect("encode");
        buf.truncate(n);
        (c, buf)
    })
    .collect()
}

#[test]
fn commands_round_trip_through_the_reader() {
    let mut r = CommandReader::<{ MAX_ENCODED }>::new();
    for (c, bytes) in all() {
        assert_eq!(bytes.iter().filter(|&&b| b == 0).count(), 1);
        let mut got = None;
        for &b in &bytes {
            if let Some(x) = r.push(b) {
                got = Some(format!("{x:?}"));
            }
        }
        assert_eq!(got, Some(format!("{:?}", Ok::<_, LinkError>(c))));
    }
}

#[test]
fn damaged_commands_are_errors_and_the_reader_recovers() {
    let cmds = all();
    let mut stream: Vec<u8> = cmds.iter().flat_map(|(_, b)| b.clone()).collect();
    // Flip a bit in the first command (samples) and truncate the second.
    stream[10] ^= 0x04;
    let second_start = cmds[0].1.len();
    stream.drain(second_start + 3..second_start + 6);
    let mut r = CommandReader::<{ MAX_ENCODED }>::new();
    let mut ok = Vec::new();
    let mut errors = 0;
    for &b in &stream {
        match r.push(b) {
            Some(Ok(c)) => ok.push(c.kind()),
            Some(Err(_)) => errors += 1,
            None => {}
        }
    }
    assert_eq!(errors, 2);
    assert_eq!(ok, vec![3, 4, 5, 6, 7, 8, 9, 9]);
    // Oversize frames are rejected whole.
    let mut small = CommandReader::<8>::new();
    for &b in &cmds[0].1[..cmds[0].1.len() - 1] {
        assert!(small.push(b).is_none());
    }
    assert!(matches!(small.push(0), Some(Err(LinkError::Oversize))));
    // Payload limits.
    let big = vec![0u8; MAX_PAYLOAD + 4];
    let mut buf = vec![0u8; 2 * MAX_ENCODED];
    assert!(Command::Samples(&big).encode(&mut buf).is_err());
    assert!(Command::Samples(&big[..3]).encode(&mut buf).is_err());
    assert!(Command::Samples(&big[..MAX_PAYLOAD])
        .encode(&mut buf)
        .is_ok());
    for len in 0..40 {
        let raw: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
        let _ = Command::parse(&raw); // never panics
    }
}
