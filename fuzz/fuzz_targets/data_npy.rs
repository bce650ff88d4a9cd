//! Any bytes as an `.npy` file (C or Fortran order, either byte order) row by row and
//! whole, and as an `.npz` archive.
#![no_main]

#[path = "data_common.rs"]
mod common;

use edgeflow_data::sources::npy::{npy, npz, npz_names, read_npy};
use edgeflow_data::BadRecords;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = common::scratch("npy", data);
    for r in npy(&p, BadRecords::Error).iter() {
        let _ = r;
    }
    if let Ok(t) = read_npy(&p) {
        assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
    }
    common::analyze("npy", data);
    let z = common::scratch("npz", data);
    if let Ok(names) = npz_names(&z) {
        for n in names.iter().take(4) {
            for r in npz(&z, n, BadRecords::Skip).iter() {
                let _ = r;
            }
        }
    }
    common::analyze("npz", data);
});
