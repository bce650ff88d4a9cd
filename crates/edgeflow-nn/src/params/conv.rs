//! Host-side parameters of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, the pools and
//! CONCATENATION, computed exactly as TFLM's `Prepare` functions compute them
//! (`PopulateConvolutionQuantizationParams`, `CalculateOpDataFullyConnected`,
//! `ComputePaddingHeightWidth`, `PoolingPrepare`, `ConcatenationPrepare`).
//!
//! Everything here is pure and allocation-free; slices are filled in place.
//!
//! Which scale each per-channel multiplier uses: CONV_2D filters are quantized along
//! dimension 0 (`[O, H, W, I]`), DEPTHWISE_CONV_2D filters along dimension 3
//! (`[1, H, W, C*M]`), FULLY_CONNECTED weights along dimension 0 (`[out, in]`).

use edgeflow_format::graph::Multiplier;

use crate::fixedpoint::quantize_multiplier;

/// The requantization multiplier of one output channel of a convolution (CONV_2D,
/// DEPTHWISE_CONV_2D) or of a per-channel FULLY_CONNECTED:
/// `input_scale * filter_scale / output_scale`, each scale widened to `f64` before the
/// product (as `PopulateConvolutionQuantizationParams` and the per-channel branch of
/// `CalculateOpDataFullyConnected` do), then encoded by TFLite's `QuantizeMultiplier`.
pub fn channel_multiplier(input_scale: f32, filter_scale: f32, output_scale: f32) -> Multiplier {
    let real = f64::from(input_scale) * f64::from(filter_scale) / f64::from(output_scale);
    let (multiplier, shift) = quantize_multiplier(real);
    Multiplier { multiplier, shift }
}

/// The single requantization multiplier of a per-tensor FULLY_CONNECTED, as TFLite's
/// `GetQuantizedConvolutionMultipler` computes it: the product of the input and filter
/// scales is taken in `f32`, then widened and divided by the output scale in `f64`.
/// (This can differ in the last bit from [`channel_multiplier`], which is why the two
/// exist.)
pub fn fully_connected_multiplier(
    input_scale: f32,
    filter_scale: f32,
    output_scale: f32,
) -> Multiplier {
    let real = f64::from(input_scale * filter_scale) / f64::from(output_scale);
    let (multiplier, shift) = quantize_multiplier(real);
    Multiplier { multiplier, shift }
}

/// TFLite's bias-scale sanity check for a per-tensor FULLY_CONNECTED with a bias
/// (`GetQuantizedConvolutionMultipler`): `|input_scale * filter_scale - bias_scale| /
/// output_scale <= 0.02`, in `f64`. TFLM's `Prepare` fails when this is false.
pub fn fully_connected_bias_scale_ok(
    input_scale: f32,
    filter_scale: f32,
    bias_scale: f32,
    output_scale: f32,
) -> bool {
    let product = f64::from(input_scale) * f64::from(filter_scale);
    let diff = (product - f64::from(bias_scale)).abs();
    diff / f64::from(output_scale) <= 0.02
}

/// Why per-channel multipliers could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// `filter_scales` has neither one entry nor one per output slot.
    ScaleCount,
}

/// Fills one multiplier per output channel of a CONV_2D or DEPTHWISE_CONV_2D (TFLM
/// always computes `out.len()` of them): with one filter scale it is broadcast to every
/// channel, otherwise `filter_scales[i]` is used for channel `i`. The kernels also accept
/// a single multiplier for all channels, which equals the broadcast array.
pub fn conv_channel_multipliers(
    input_scale: f32,
    filter_scales: &[f32],
    output_scale: f32,
    out: &mut [Multiplier],
) -> Result<(), ChannelError> {
    if filter_scales.len() != 1 && filter_scales.len() != out.len() {
        return Err(ChannelError::ScaleCount);
    }
    for (i, m) in out.iter_mut().enumerate() {
        let s = if filter_scales.len() == 1 {
            filter_scales[0]
        } else {
            filter_scales[i]
        };
        *m = channel_multiplier(input_scale, s, output_scale);
    }
    Ok(())
}

/// The multipliers of a FULLY_CONNECTED. With one filter scale TFLM takes the per-tensor
/// path ([`fully_connected_multiplier`]) and `out` must hold exactly one entry; with one
/// scale per output row it takes the per-channel path ([`channel_multiplier`]) and `out`
/// holds one entry per row.
pub fn fully_connected_multipliers(
    input_scale: f32,
    filter_scales: &[f32],
    output_scale: f32,
    out: &mut [Multiplier],
) -> Result<(), ChannelError> {
    match (filter_scales, &mut *out) {
        ([s], [m]) => {
            *m = fully_connected_multiplier(input_scale, *s, output_scale);
            Ok(())
        }
        (scales, out) if scales.len() > 1 && scales.len() == out.len() => {
            for (m, &s) in out.iter_mut().zip(scales) {
                *m = channel_multiplier(input_scale, s, output_scale);
            }
            Ok(())
        }
        _ => Err(ChannelError::ScaleCount),
    }
}

/// TFLite's padding schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output `ceil(in / stride)`, padding split with the extra element after.
    Same,
    /// No padding; output `floor((in - effective_filter) / stride) + 1`.
    Valid,
}

/// Output extent along one axis (TFLite's `ComputeOutSizeChecked`), or `None` when the
/// arguments are invalid or the output would be empty or not fit `u32`.
pub fn output_size(
    padding: Padding,
    input: u32,
    filter: u32,
    stride: u32,
    dilation: u32,
) -> Option<u32> {
    if filter == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let eff = (i64::from(filter) - 1) * i64::from(dilation) + 1;
    let (n, s) = (i64::from(input), i64::from(stride));
    let v = match padding {
        Padding::Same => (n + s - 1) / s,
        Padding::Valid => (n + s - eff) / s,
    };
    if v <= 0 {
        return None;
    }
    u32::try_from(v).ok()
}

/// Padding before the first element along one axis (TFLite's `ComputePadding` as used by
/// `ComputePaddingHeightWidth`): `max((out - 1) * stride + effective_filter - in, 0) / 2`.
/// This is the `pad` the kernels take; VALID outputs give 0.
pub fn padding_before(input: u32, filter: u32, stride: u32, dilation: u32, output: u32) -> u32 {
    if filter == 0 || stride == 0 || dilation == 0 || output == 0 {
        return 0;
    }
    let eff = (i64::from(filter) - 1) * i64::from(dilation) + 1;
    let total = (i64::from(output) - 1) * i64::from(stride) + eff - i64::from(input);
    u32::try_from(total.max(0) / 2).unwrap_or(0)
}

/// Whether an int8 pool's input and output quantization are compatible, as
/// `PoolingPrepare` requires: `|scale_in - scale_out|` (computed in `f32`) at most 1e-6,
/// and equal zero points. The kernels check the same.
pub fn pool_quant_ok(input_scale: f32, input_zp: i32, output_scale: f32, output_zp: i32) -> bool {
    f64::from((input_scale - output_scale).abs()) <= 1.0e-6 && input_zp == output_zp
}

/// Whether an int8 CONCATENATION input may be copied unchanged, as
/// `ConcatenationPrepare` requires: exactly the output's scale and zero point.
pub fn concat_quant_ok(input_scale: f32, input_zp: i32, output_scale: f32, output_zp: i32) -> bool {
    input_scale == output_scale && input_zp == output_zp
}

/// The `(input_offset, output_offset)` of a `Requant` record: `-input_zero_point` and the
/// output zero point.
pub fn requant_offsets(input_zp: i32, output_zp: i32) -> (i32, i32) {
    (input_zp.wrapping_neg(), output_zp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_multiplier_uses_f64_product() {
        let m = channel_multiplier(0.5, 0.25, 0.125);
        assert_eq!(
            m,
            Multiplier {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        // Per-tensor FC rounds the product to f32 first: find a case where it matters.
        let (a, b, c) = (0.013_718_372_f32, 0.003_217_111_f32, 0.047_119_13_f32);
        let wide = f64::from(a) * f64::from(b) / f64::from(c);
        let narrow = f64::from(a * b) / f64::from(c);
        assert_eq!(
            channel_multiplier(a, b, c).multiplier,
            quantize_multiplier(wide).0
        );
        assert_eq!(
            fully_connected_multiplier(a, b, c).multiplier,
            quantize_multiplier(narrow).0
        );
    }

    #[test]
    fn padding_matches_tflite() {
        // SAME 3x3 stride 1 on 7: out 7, pad 1.
        assert_eq!(output_size(Padding::Same, 7, 3, 1, 1), Some(7));
        assert_eq!(padding_before(7, 3, 1, 1, 7), 1);
        // SAME stride 2 on 49 with a 10-tall filter (DS-CNN): out 25, total 9, pad 4.
        assert_eq!(output_size(Padding::Same, 49, 10, 2, 1), Some(25));
        assert_eq!(padding_before(49, 10, 2, 1, 25), 4);
        // VALID.
        assert_eq!(output_size(Padding::Valid, 10, 3, 2, 1), Some(4));
        assert_eq!(padding_before(10, 3, 2, 1, 4), 0);
        assert_eq!(output_size(Padding::Valid, 2, 3, 1, 1), None);
        // Dilation 2: effective 5.
        assert_eq!(output_size(Padding::Valid, 9, 3, 1, 2), Some(5));
        assert_eq!(output_size(Padding::Same, 9, 3, 2, 2), Some(5));
        assert_eq!(padding_before(9, 3, 2, 2, 5), 2);
    }

    #[test]
    fn multiplier_arrays() {
        let mut out = [Multiplier::default(); 3];
        conv_channel_multipliers(0.5, &[0.25], 0.125, &mut out).unwrap();
        assert!(out.iter().all(|m| *m == out[0]));
        conv_channel_multipliers(0.5, &[0.25, 0.5, 1.0], 0.125, &mut out).unwrap();
        assert_eq!(out[1].shift, out[0].shift + 1);
        assert!(conv_channel_multipliers(0.5, &[0.25, 0.5], 0.125, &mut out).is_err());
        let mut one = [Multiplier::default(); 1];
        fully_connected_multipliers(0.5, &[0.25], 0.125, &mut one).unwrap();
        assert!(fully_connected_multipliers(0.5, &[0.25], 0.125, &mut out).is_err());
        fully_connected_multipliers(0.5, &[0.25, 0.5, 1.0], 0.125, &mut out).unwrap();
        assert!(fully_connected_bias_scale_ok(0.5, 0.25, 0.125, 1.0));
        assert!(!fully_connected_bias_scale_ok(0.5, 0.25, 0.2, 1.0));
        assert!(pool_quant_ok(0.1, 3, 0.100_000_5, 3));
        assert!(!pool_quant_ok(0.1, 3, 0.1, 4));
        assert!(concat_quant_ok(0.1, 3, 0.1, 3));
        assert!(!concat_quant_ok(0.1, 3, 0.100_001, 3));
        assert_eq!(requant_offsets(-5, 7), (5, 7));
    }
}
