//! Power cut during a model update, at every page boundary and at random byte offsets, on a
//! fault-injecting NOR flash: after the cut, the device boots the old model or the new one,
//! byte for byte, never a torn one.

use edgeflow_slots::{SlotError, SlotHeader, Slots, DATA_OFFSET};
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

const PAGE: usize = 256; // program page of the simulated part
const SECTOR: usize = 1024; // erase sector
const SLOT: u32 = 16 * 1024;

#[derive(Debug)]
struct Cut;
impl NorFlashError for Cut {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// NOR semantics (erase sets bytes to 0xFF, a write can only clear bits), with a power cut
/// after `budget` byte operations (each erased or programmed byte is one): the byte being
/// changed at the cut ends up half-changed, the rest untouched, and every later operation
/// fails, as on a dead device.
struct FaultFlash {
    mem: Vec<u8>,
    budget: Option<usize>,
    ops: usize,
    dead: bool,
    noise: u64,
}

impl FaultFlash {
    fn new(size: usize) -> Self {
        FaultFlash {
            mem: vec![0xFF; size],
            budget: None,
            ops: 0,
            dead: false,
            noise: 0x9E37_79B9_7F4A_7C15,
        }
    }
    fn noise(&mut self) -> u8 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 7;
        self.noise ^= self.noise << 17;
        self.noise as u8
    }
    /// One byte operation: `Ok(true)` to apply it, `Err` at the cut (after half-applying it).
    fn step(&mut self, i: usize, target: u8) -> Result<(), Cut> {
        if self.dead {
            return Err(Cut);
        }
        if self.budget == Some(self.ops) {
            self.dead = true;
            let n = self.noise();
            // Partly programmed / partly erased: some of the changing bits changed.
            let old = self.mem[i];
            self.mem[i] = (old & !n) | (target & n);
            return Err(Cut);
        }
        self.ops += 1;
        self.mem[i] = target;
        Ok(())
    }
    fn reboot(&mut self) {
        self.budget = None;
        self.dead = false;
        self.ops = 0;
    }
}

impl ErrorType for FaultFlash {
    type Error = Cut;
}
impl ReadNorFlash for FaultFlash {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Cut> {
        let o = offset as usize;
        bytes.copy_from_slice(self.mem.get(o..o + bytes.len()).ok_or(Cut)?);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.mem.len()
    }
}
impl NorFlash for FaultFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = SECTOR;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), Cut> {
        assert!(from as usize % SECTOR == 0 && to as usize % SECTOR == 0 && to >= from);
        for i in from as usize..to as usize {
            self.step(i, 0xFF)?;
        }
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Cut> {
        assert!(
            offset as usize % 4 == 0 && bytes.len() % 4 == 0,
            "unaligned write"
        );
        for (k, &b) in bytes.iter().enumerate() {
            let i = offset as usize + k;
            let t = self.mem[i] & b; // NOR: programming only clears bits
            self.step(i, t)?;
        }
        Ok(())
    }
}

fn artifact(len: usize, seed: u8) -> Vec<u8> {
    let mut a: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    a[..4].copy_from_slice(b"EDGF");
    a[4..8].copy_from_slice(&[1, 0, seed, 0]);
    a
}

/// What the device boots: the artifact bytes of the active slot, or None.
fn boot(flash: &mut FaultFlash) -> Option<Vec<u8>> {
    let mut slots = Slots::new(&mut *flash, 2 * SECTOR as u32, SLOT).expect("geometry");
    let a = slots.active().expect("read")?;
    let mut buf = vec![0u8; a.header.len as usize];
    slots.read(a.offset, &mut buf).expect("read");
    Some(buf)
}

fn flash_with(old: &[u8]) -> FaultFlash {
    let mut f = FaultFlash::new(2 * SECTOR + 2 * SLOT as usize + SECTOR);
    let mut slots = Slots::new(&mut f, 2 * SECTOR as u32, SLOT).expect("geometry");
    slots.install(old).expect("install old");
    f
}

/// Runs one update of `new` over `flash`, cut after `cut` byte operations.
fn cut_update(flash: &mut FaultFlash, new: &[u8], cut: Option<usize>) -> Result<(), SlotError> {
    flash.reboot();
    flash.budget = cut;
    let mut slots = Slots::new(&mut *flash, 2 * SECTOR as u32, SLOT).expect("geometry");
    let h = SlotHeader::for_artifact(new, 0);
    let mut up = slots.begin(h.len, h.crc)?;
    // Arrives in uneven chunks, as over a serial link.
    for chunk in new.chunks(97) {
        slots.write(&mut up, chunk)?;
    }
    slots.commit(up).map(|_| ())
}

#[test]
fn a_cut_update_boots_the_old_or_the_new_model_never_a_torn_one() {
    let old = artifact(5000, 1);
    let new = artifact(9001, 2);
    // Operations of a full update: erase the slot, program the artifact (padded), the header.
    let mut probe = flash_with(&old);
    cut_update(&mut probe, &new, None).expect("uncut update");
    let total = probe.ops;
    assert_eq!(total, SLOT as usize + 9004 + 32);
    probe.reboot();
    assert_eq!(boot(&mut probe).as_deref(), Some(&new[..]));

    let mut cuts: Vec<usize> = (0..=total).step_by(PAGE).collect(); // every page boundary
    let mut x = 12345u64;
    for _ in 0..400 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        cuts.push((x >> 33) as usize % (total + 1)); // random byte offsets
    }
    cuts.extend(total - 40..=total); // every byte around the header write
    let (mut saw_old, mut saw_new) = (0, 0);
    for &cut in &cuts {
        let mut f = flash_with(&old);
        let r = cut_update(&mut f, &new, Some(cut));
        f.reboot();
        let booted = boot(&mut f).unwrap_or_else(|| panic!("cut at {cut}: no valid model"));
        if booted == old {
            saw_old += 1;
            assert!(
                r.is_err(),
                "cut at {cut}: update reported success but old model boots"
            );
        } else {
            assert!(booted == new, "cut at {cut}: booted a torn model");
            saw_new += 1;
        }
        // The device recovers: the next update, uncut, succeeds and boots the new model.
        cut_update(&mut f, &new, None).unwrap_or_else(|e| panic!("cut at {cut}: retry: {e}"));
        f.reboot();
        assert_eq!(
            boot(&mut f).as_deref(),
            Some(&new[..]),
            "cut at {cut}: after retry"
        );
    }
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old}, new {saw_new}");
    println!(
        "{} cuts: {saw_old} booted the old model, {saw_new} the new one",
        cuts.len()
    );
}

#[test]
fn updates_alternate_slots_and_a_corrupted_active_slot_falls_back() {
    let v: Vec<Vec<u8>> = (0..4)
        .map(|k| artifact(3000 + 500 * k, k as u8 + 10))
        .collect();
    let mut f = FaultFlash::new(2 * SECTOR + 2 * SLOT as usize);
    {
        let mut slots = Slots::new(&mut f, 2 * SECTOR as u32, SLOT).expect("geometry");
        assert_eq!(slots.active(), Ok(None)); // blank flash: no model
        for (k, a) in v.iter().enumerate() {
            let act = slots.install(a).expect("install");
            assert_eq!(act.slot, (k % 2) as u8);
            assert_eq!(act.header.sequence, k as u32 + 1);
            assert_eq!(act.header.artifact_version, (1, k as u16 + 10));
            assert_eq!(slots.active(), Ok(Some(act)));
        }
    }
    assert_eq!(boot(&mut f).as_deref(), Some(&v[3][..]));
    // Flip one bit of the active artifact (slot B): the older model in slot A boots.
    let at = 2 * SECTOR + SLOT as usize + DATA_OFFSET as usize + 100;
    f.mem[at] ^= 0x10;
    assert_eq!(boot(&mut f).as_deref(), Some(&v[2][..]));
}

#[test]
fn bad_geometry_and_bad_updates_are_errors() {
    let mut f = FaultFlash::new(8 * SECTOR);
    assert!(matches!(
        Slots::new(&mut f, 100, SLOT),
        Err(SlotError::Geometry { .. })
    ));
    assert!(matches!(
        Slots::new(&mut f, 0, 1000),
        Err(SlotError::Geometry { .. })
    ));
    assert!(matches!(
        Slots::new(&mut f, 0, 8 * SECTOR as u32),
        Err(SlotError::Geometry { .. })
    ));
    let mut slots = Slots::new(&mut f, 0, 2 * SECTOR as u32).expect("geometry");
    let cap = slots.capacity();
    assert_eq!(cap, 2 * SECTOR as u32 - DATA_OFFSET);
    assert_eq!(
        slots.install(&artifact(cap as usize + 1, 0)).err(),
        Some(SlotError::TooLarge {
            len: cap + 1,
            capacity: cap
        })
    );
    let a = artifact(100, 3);
    let h = SlotHeader::for_artifact(&a, 0);
    let mut up = slots.begin(h.len, h.crc).expect("begin");
    assert_eq!(
        slots.write(&mut up, &[0; 101]),
        Err(SlotError::Overrun { len: 100 })
    );
    slots.write(&mut up, &a[..50]).expect("write");
    let mut up2 = slots.begin(h.len, h.crc ^ 1).expect("begin");
    slots.write(&mut up2, &a).expect("write");
    assert!(matches!(slots.commit(up2), Err(SlotError::Verify { .. })));
    assert_eq!(slots.active(), Ok(None)); // a rejected update activates nothing
    assert_eq!(
        slots.commit(up),
        Err(SlotError::Incomplete {
            written: 50,
            len: 100
        })
    );
    assert_eq!(SlotHeader::decode(&[0xFF; 32]), None);
    let enc = h.encode();
    assert_eq!(SlotHeader::decode(&enc), Some(h));
    for i in 0..28 {
        let mut e = enc;
        e[i] ^= 4;
        assert_eq!(SlotHeader::decode(&e), None, "bit flip in header byte {i}");
    }
}

#[test]
fn a_composed_slot_image_boots() {
    let a = artifact(4321, 9);
    let mut f = FaultFlash::new(2 * SECTOR + 2 * SLOT as usize);
    let base = 2 * SECTOR + SLOT as usize; // slot B
    let area = edgeflow_slots::header_area(&a, 5);
    f.mem[base..base + area.len()].copy_from_slice(&area);
    f.mem[base + area.len()..base + area.len() + a.len()].copy_from_slice(&a);
    let mut slots = Slots::new(&mut f, 2 * SECTOR as u32, SLOT).expect("geometry");
    let act = slots.active().expect("read").expect("a model");
    assert_eq!(
        (act.slot, act.header.sequence, act.header.artifact_version),
        (1, 5, (1, 9))
    );
    // The next update goes to slot A with sequence 6.
    assert_eq!(
        slots
            .install(&artifact(100, 3))
            .expect("install")
            .header
            .sequence,
        6
    );
}

#[test]
fn slot_crcs_are_crc32_iso_hdlc_as_the_crc_crate_computes_it() {
    // The slots compute with `edgeflow_format::crc32` (the nibble table on devices);
    // `edgeflow_slots::CRC32` is the `crc` crate's table CRC, the reference here.
    let check = SlotHeader::for_artifact(b"123456789", 0).crc;
    assert_eq!(check, edgeflow_slots::CRC32.algorithm.check); // catalogue: 0xCBF43926
    for len in [0, 1, 255, 256, 257, 1000, 4321] {
        let a = artifact(len.max(8), len as u8);
        let a = &a[..len];
        let h = SlotHeader::for_artifact(a, 3);
        assert_eq!(h.crc, edgeflow_slots::CRC32.checksum(a), "length {len}");
        let enc = h.encode();
        let stored = u32::from_le_bytes(enc[24..28].try_into().unwrap());
        assert_eq!(stored, edgeflow_slots::CRC32.checksum(&enc[..24]));
    }
    // A slot whose artifact the crate's CRC describes is valid (`valid` reads it back from
    // flash in 256-byte chunks); one bit off in the artifact is not.
    let a = artifact(4321, 9);
    let mut f = FaultFlash::new(2 * SECTOR + 2 * SLOT as usize);
    let base = 2 * SECTOR;
    let mut h = SlotHeader::for_artifact(&a, 1);
    h.crc = edgeflow_slots::CRC32.checksum(&a);
    f.mem[base..base + 32].copy_from_slice(&h.encode());
    f.mem[base + DATA_OFFSET as usize..][..a.len()].copy_from_slice(&a);
    let mut slots = Slots::new(&mut f, 2 * SECTOR as u32, SLOT).expect("geometry");
    assert_eq!(slots.valid(0), Ok(Some(h)));
    drop(slots);
    f.mem[base + DATA_OFFSET as usize + 3000] ^= 0x10;
    let mut slots = Slots::new(&mut f, 2 * SECTOR as u32, SLOT).expect("geometry");
    assert_eq!(slots.valid(0), Ok(None));
}
