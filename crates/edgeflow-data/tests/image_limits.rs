//! Bounded memory for images: the decoded size is checked against a cap from the header's
//! dimensions, before any pixel buffer is allocated, and the cap can be raised.

use std::path::PathBuf;

use edgeflow_data::sources::image::{decode_image, read_image, DEFAULT_MAX_IMAGE_BYTES};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn image_caps_are_checked_before_allocating() {
    // 74 bytes of PNG claiming 100000x100000 pixels: before the cap, the decoder's output
    // buffer (40 GB) was allocated up front and the process aborted.
    let png = root().join("tests/hostile/png_100000x100000_74B.png");
    let e = read_image(&png)
        .expect_err("a 40 GB image must be refused")
        .to_string();
    assert!(
        e.contains("100000x100000")
            && e.contains(&format!("limit of {DEFAULT_MAX_IMAGE_BYTES} bytes")),
        "{e}"
    );
    assert!(e.contains("png_100000x100000_74B.png"), "{e}");

    // The same for JPEG: a real file whose SOF0 header is patched to 65535x65535.
    let mut jpg =
        std::fs::read(root().join("crates/edgeflow-data/tests/fixtures/rgb.jpg")).unwrap();
    let sof = jpg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    jpg[sof + 5..sof + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    let e = decode_image(&jpg).expect_err("a 12 GB image must be refused");
    assert!(e.contains("65535x65535x3") && e.contains("limit"), "{e}");

    // The cap is configurable: a tiny one refuses a small, valid image and names itself.
    // (Environment changes stay inside this one test, the only test of this binary.)
    let small = root().join("crates/edgeflow-data/tests/fixtures/rgb.png");
    let ok = read_image(&small).expect("a small image decodes under the default cap");
    std::env::set_var("EDGEFLOW_MAX_IMAGE_BYTES", "10");
    let e = read_image(&small)
        .expect_err("above a 10-byte cap")
        .to_string();
    std::env::remove_var("EDGEFLOW_MAX_IMAGE_BYTES");
    assert!(
        e.contains(&format!("{}x{}", ok.width, ok.height)) && e.contains("limit of 10 bytes"),
        "{e}"
    );
}
