//! Any bytes as a PNG or JPEG image through the decoders edgeflow-data wraps (`png`,
//! `zune-jpeg`), with their size limits, and the image operations on what decodes.
#![no_main]

use edgeflow_data::sources::image::decode_image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(im) = decode_image(data) {
        assert_eq!(im.data.len(), im.width * im.height * im.channels);
        let _ = im.crop(0, 0, im.width.min(4), im.height.min(4));
        let _ = im.resize_bilinear(3, 2);
        let _ = im.flip_horizontal();
    }
});
