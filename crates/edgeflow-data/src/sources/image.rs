//! Images (PNG through the `png` crate, JPEG through `zune-jpeg`) and image folders whose
//! sub-folders name the classes.

use std::path::{Path, PathBuf};

use super::files::ClassFolder;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::parallel::Parallel;
use crate::rng::Rng;

/// An 8-bit image, rows of pixels of interleaved channels (height × width × channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel: 1 (grey), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// `height × width × channels` bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// The channel values of pixel `(x, y)`, or `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<&[u8]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = (y * self.width + x) * self.channels;
        self.data.get(i..i + self.channels)
    }

    /// The image with `channels` channels per pixel, converted as a model's input needs:
    /// unchanged when it already has them; grey (1) to RGB (3) by repeating the value;
    /// RGBA (4) to RGB (3) by dropping alpha (not blending). `None` for any other pair
    /// (RGB to grey is a feature-pipeline step, not a reader's guess).
    pub fn with_channels(&self, channels: usize) -> Option<Image> {
        let data = match (self.channels, channels) {
            (a, b) if a == b => self.data.clone(),
            (1, 3) => self.data.iter().flat_map(|&g| [g, g, g]).collect(),
            (4, 3) => self
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
            _ => return None,
        };
        Some(Image {
            width: self.width,
            height: self.height,
            channels,
            data,
        })
    }

    /// The `w × h` region whose top-left corner is `(x, y)`.
    ///
    /// Errors: the region does not lie inside the image.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Result<Image> {
        if x.checked_add(w).is_none_or(|e| e > self.width)
            || y.checked_add(h).is_none_or(|e| e > self.height)
        {
            return Err(Error::invalid(
                "crop",
                format!(
                    "{w}x{h} at ({x}, {y}) does not fit in {}x{}",
                    self.width, self.height
                ),
            ));
        }
        let c = self.channels;
        let mut data = Vec::with_capacity(w * h * c);
        for row in y..y + h {
            let s = (row * self.width + x) * c;
            data.extend_from_slice(&self.data[s..s + w * c]);
        }
        Ok(Image {
            width: w,
            height: h,
            channels: c,
            data,
        })
    }

    /// A `w × h` crop at a position drawn uniformly from `rng`.
    ///
    /// Errors: the crop is larger than the image.
    pub fn random_crop(&self, w: usize, h: usize, rng: &mut Rng) -> Result<Image> {
        if w > self.width || h > self.height {
            return Err(Error::invalid(
                "random_crop",
                format!("{w}x{h} does not fit in {}x{}", self.width, self.height),
            ));
        }
        let x = rng.below((self.width - w + 1) as u64) as usize;
        let y = rng.below((self.height - h + 1) as u64) as usize;
        self.crop(x, y, w, h)
    }

    /// The image mirrored left to right.
    pub fn flip_horizontal(&self) -> Image {
        let c = self.channels;
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks_exact(self.width * c) {
            for px in row.chunks_exact(c).rev() {
                data.extend_from_slice(px);
            }
        }
        Image { data, ..*self }
    }

    /// The image resized to `w × h` by bilinear interpolation with half-pixel centres
    /// (as `tf.image.resize(..., "bilinear")`), rounded to the nearest byte.
    pub fn resize_bilinear(&self, w: usize, h: usize) -> Image {
        let c = self.channels;
        let mut data = vec![0u8; w * h * c];
        if self.width == 0 || self.height == 0 {
            return Image {
                width: w,
                height: h,
                channels: c,
                data,
            };
        }
        let sx = self.width as f32 / w.max(1) as f32;
        let sy = self.height as f32 / h.max(1) as f32;
        for y in 0..h {
            let fy = ((y as f32 + 0.5) * sy - 0.5).max(0.0);
            let y0 = (fy as usize).min(self.height - 1);
            let y1 = (y0 + 1).min(self.height - 1);
            let ty = fy - y0 as f32;
            for x in 0..w {
                let fx = ((x as f32 + 0.5) * sx - 0.5).max(0.0);
                let x0 = (fx as usize).min(self.width - 1);
                let x1 = (x0 + 1).min(self.width - 1);
                let tx = fx - x0 as f32;
                for k in 0..c {
                    let p =
                        |xx: usize, yy: usize| f32::from(self.data[(yy * self.width + xx) * c + k]);
                    let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * tx;
                    let bot = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * tx;
                    let v = top + (bot - top) * ty;
                    data[(y * w + x) * c + k] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Image {
            width: w,
            height: h,
            channels: c,
            data,
        }
    }

    /// Pixel values as `f32` in `[0, 1]`, scaled by `gain` and shifted by `bias`
    /// (brightness), then normalised per channel: `(v*gain + bias - mean[k]) / std[k]`.
    /// `mean` and `std` with fewer entries than channels repeat their last entry (an
    /// empty `mean` means 0, an empty `std` means 1).
    pub fn to_f32(&self, gain: f32, bias: f32, mean: &[f32], std: &[f32]) -> Vec<f32> {
        let pick = |v: &[f32], k: usize, d: f32| v.get(k).or(v.last()).copied().unwrap_or(d);
        self.data
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let k = i % self.channels.max(1);
                (f32::from(b) / 255.0 * gain + bias - pick(mean, k, 0.0)) / pick(std, k, 1.0)
            })
            .collect()
    }
}

/// Decodes the PNG or JPEG file at `path` (format from the content). Grey images have
/// 1 channel, RGB 3, RGBA and grey+alpha 4; palette and low-bit PNGs are expanded;
/// 16-bit PNGs keep the high byte of each sample.
///
/// Errors: the file cannot be read ([`Error::Io`]) or decoded ([`Error::File`]).
pub fn read_image(path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image(&bytes).map_err(|e| Error::file(path, format!("cannot decode image: {e}")))
}

/// Decodes PNG or JPEG bytes (see [`read_image`]). A panic inside a decoder is caught
/// and reported as an error.
///
/// Errors: the bytes are not a decodable PNG or JPEG (the reason as text).
pub fn decode_image(bytes: &[u8]) -> std::result::Result<Image, String> {
    let r = std::panic::catch_unwind(|| {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            decode_png(bytes)
        } else if bytes.starts_with(&[0xFF, 0xD8]) {
            decode_jpeg(bytes)
        } else {
            Err("neither PNG nor JPEG".to_string())
        }
    });
    r.unwrap_or_else(|_| Err("the decoder panicked".to_string()))
}

/// Default cap on the decoded size of one image, in bytes: 256 MiB holds an 8192×8192
/// RGBA image, far above what a feature pipeline for a device uses, and keeps a few
/// parallel decoders within a workstation's memory.
pub const DEFAULT_MAX_IMAGE_BYTES: usize = 256 << 20;

/// The cap on one decoded image: `EDGEFLOW_MAX_IMAGE_BYTES` (a byte count) when set and
/// valid, else [`DEFAULT_MAX_IMAGE_BYTES`].
pub fn max_image_bytes() -> usize {
    std::env::var("EDGEFLOW_MAX_IMAGE_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_IMAGE_BYTES)
}

/// Checks the dimensions a decoder read from the header before any pixel is allocated:
/// the decoded `w × h × channels` bytes must fit under [`max_image_bytes`].
fn check_dimensions(w: usize, h: usize, channels: usize) -> std::result::Result<usize, String> {
    let limit = max_image_bytes();
    let size = w.checked_mul(h).and_then(|n| n.checked_mul(channels));
    match size {
        Some(n) if n <= limit => Ok(n),
        _ => Err(format!(
            "image is {w}x{h}x{channels} ({} bytes decoded), above the limit of {limit} bytes \
             (raise it with EDGEFLOW_MAX_IMAGE_BYTES)",
            size.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
        )),
    }
}

/// A zeroed buffer of `n` bytes; an allocation failure is an error, not an abort.
fn zeroed(n: usize) -> std::result::Result<Vec<u8>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("cannot allocate {n} bytes for the decoded image"))?;
    v.resize(n, 0);
    Ok(v)
}

fn decode_png(bytes: &[u8]) -> std::result::Result<Image, String> {
    // The png crate's own limit covers its internal buffers (chunks, metadata); raising
    // our cap raises it too. The pixel buffer is checked by `check_dimensions` below.
    let internal = max_image_bytes().max(png::Limits::default().bytes);
    let mut d =
        png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: internal });
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = d.read_info().map_err(|e| e.to_string())?;
    let (w, h) = (r.info().width as usize, r.info().height as usize);
    // Grey+alpha is widened to 4 channels below; the others decode to at most 4.
    check_dimensions(w, h, 4)?;
    let size = r.output_buffer_size().ok_or("image too large")?;
    let mut buf = zeroed(size)?;
    let info = r.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    check_dimensions(w, h, 4)?;
    let (channels, data) = match info.color_type {
        png::ColorType::Grayscale => (1, buf),
        png::ColorType::Rgb => (3, buf),
        png::ColorType::Rgba => (4, buf),
        png::ColorType::GrayscaleAlpha => (
            4,
            buf.chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        ),
        png::ColorType::Indexed => return Err("palette was not expanded".into()),
    };
    if Some(data.len()) != w.checked_mul(h).and_then(|n| n.checked_mul(channels)) {
        return Err(format!(
            "decoded {} bytes for {w}x{h}x{channels}",
            data.len()
        ));
    }
    Ok(Image {
        width: w,
        height: h,
        channels,
        data,
    })
}

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<Image, String> {
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    // The header is read without the decoder's own size limits, so that the cap below
    // (which names the dimensions and the limit) is the one that applies.
    let unlimited = DecoderOptions::default()
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut probe =
        zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), unlimited);
    probe.decode_headers().map_err(|e| e.to_string())?;
    let grey = probe.input_colorspace() == Some(ColorSpace::Luma);
    let (out, channels) = if grey {
        (ColorSpace::Luma, 1)
    } else {
        (ColorSpace::RGB, 3)
    };
    let (w, h) = probe.dimensions().ok_or("no dimensions")?;
    check_dimensions(w, h, channels)?;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(out)
        .set_max_width(w)
        .set_max_height(h);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), opts);
    let data = d.decode().map_err(|e| e.to_string())?;
    let (w, h) = d.dimensions().ok_or("no dimensions")?;
    check_dimensions(w, h, channels)?;
    if Some(data.len()) != w.checked_mul(h).and_then(|n| n.checked_mul(channels)) {
        return Err(format!(
            "decoded {} bytes for {w}x{h}x{channels}",
            data.len()
        ));
    }
    Ok(Image {
        width: w,
        height: h,
        channels,
        data,
    })
}

/// Encodes an image as PNG (for tests, examples and generated data).
///
/// Errors: the channel count is not 1, 3 or 4, or the data length does not match.
pub fn encode_png(img: &Image) -> std::result::Result<Vec<u8>, String> {
    let color = match img.channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        c => return Err(format!("{c} channels cannot be written as PNG")),
    };
    if img.data.len() != img.width * img.height * img.channels {
        return Err("data length does not match the shape".into());
    }
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, img.width as u32, img.height as u32);
    e.set_color(color);
    e.set_depth(png::BitDepth::Eight);
    let mut w = e.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(&img.data).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// A folder with one sub-folder per class holding that class's images
/// (`root/cat/1.png`, `root/dog/2.jpg`, …): the layout of Keras'
/// `image_dataset_from_directory`. The listing is a [`ClassFolder`] of `.png`, `.jpg`
/// and `.jpeg` files.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    listing: ClassFolder,
}

/// The image file extensions [`ImageFolder`] lists (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

impl ImageFolder {
    /// Lists `root` (see [`ClassFolder::open`]) for `.png`, `.jpg` and `.jpeg` files.
    ///
    /// Errors: `root` or a class folder cannot be read; `root` has no class folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(ImageFolder {
            listing: ClassFolder::open(root, &IMAGE_EXTENSIONS)?,
        })
    }

    /// The class names; label `i` is `classes()[i]`.
    pub fn classes(&self) -> &[String] {
        self.listing.classes()
    }

    /// Every `(file, label)`, sorted by class then path.
    pub fn files(&self) -> &[(PathBuf, usize)] {
        self.listing.files()
    }

    /// The `(file, label)` pairs as a dataset, optionally shuffled per epoch with
    /// `Rng::keyed(seed, [epoch])`.
    pub fn dataset(&self, shuffle_seed: Option<u64>) -> Dataset<(PathBuf, usize)> {
        let files = self.listing.files().to_vec();
        let name = format!("image_folder({})", self.listing.root().display());
        Dataset::from_fn(name, move |epoch| {
            let mut v = files.clone();
            if let Some(seed) = shuffle_seed {
                Rng::keyed(seed, &[epoch]).shuffle(&mut v);
            }
            v.into_iter().map(Ok)
        })
    }

    /// The decoded images with their labels, decoded by a parallel map. An undecodable
    /// file is an error item naming it.
    pub fn decoded(&self, shuffle_seed: Option<u64>, par: Parallel) -> Dataset<(Image, usize)> {
        self.dataset(shuffle_seed)
            .par_map_result(par, |(p, l)| read_image(&p).map(|i| (i, l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, c: usize) -> Image {
        Image {
            width: w,
            height: h,
            channels: c,
            data: (0..w * h * c).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn crop_flip_and_bounds() {
        let i = img(4, 3, 1);
        let c = i.crop(1, 1, 2, 2).unwrap();
        assert_eq!(c.data, [5, 6, 9, 10]);
        assert!(i.crop(3, 0, 2, 1).is_err());
        assert_eq!(i.flip_horizontal().data[..4], [3, 2, 1, 0]);
        let rgb = img(2, 1, 3);
        assert_eq!(rgb.flip_horizontal().data, [3, 4, 5, 0, 1, 2]);
        let mut r = Rng::new(1);
        let rc = i.random_crop(2, 2, &mut r).unwrap();
        assert_eq!((rc.width, rc.height), (2, 2));
        assert!(i.random_crop(5, 1, &mut r).is_err());
    }

    #[test]
    fn resize_identity_and_halving() {
        let i = img(4, 4, 1);
        assert_eq!(i.resize_bilinear(4, 4), i);
        let h = i.resize_bilinear(2, 2);
        // Each output pixel is the mean of a 2x2 block (centres fall between pixels).
        assert_eq!(h.data, [3, 5, 11, 13]);
    }

    #[test]
    fn normalisation() {
        let i = Image {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![0, 255, 51],
        };
        let v = i.to_f32(1.0, 0.0, &[0.5], &[0.5]);
        assert_eq!(v, [-1.0, 1.0, -0.6]);
    }

    #[test]
    fn folder_labels_and_decoding() {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in [("cat", 2), ("dog", 1)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for k in 0..n {
                let data = (0..2u8)
                    .flat_map(|y| (0..3u8).flat_map(move |x| [x * 10, y, k]))
                    .collect();
                let im = Image {
                    width: 3,
                    height: 2,
                    channels: 3,
                    data,
                };
                std::fs::write(
                    dir.path().join(class).join(format!("{k}.png")),
                    encode_png(&im).unwrap(),
                )
                .unwrap();
            }
        }
        std::fs::write(dir.path().join("dog").join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("dog").join("broken.png"), "not a png").unwrap();
        let f = ImageFolder::open(dir.path()).unwrap();
        assert_eq!(f.classes(), ["cat", "dog"]);
        assert_eq!(f.files().len(), 4);
        let items: Vec<_> = f.decoded(None, Parallel::threads(2)).iter().collect();
        let (im, label) = items[0].as_ref().unwrap();
        assert_eq!((im.width, im.height, im.channels, *label), (3, 2, 3, 0));
        assert_eq!(im.pixel(2, 1), Some(&[20u8, 1, 0][..]));
        let e = items[3].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("broken.png") && e.contains("cannot decode"),
            "{e}"
        );
        assert!(ImageFolder::open(dir.path().join("cat")).is_err());
    }
}
