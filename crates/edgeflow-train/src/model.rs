//! The model: a shape plan checked against the pipeline's output, and the burn module.
//!
//! Layout: burn computes in NCHW; the artifact and the pipeline use NHWC. Inputs arrive
//! NHWC and are permuted once; `flatten` permutes back to NHWC before reshaping, so a
//! dense layer's weights need no reordering at export.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use edgeflow_dsp::{Input, Pipeline};

use crate::config::{Layer, ModelConfig, Padding, Task};
use crate::error::{HeadError, TrainError};

/// A tensor shape between layers (batch excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A feature map, NHWC without N.
    Map {
        /// Height (1 for signals).
        h: usize,
        /// Width (frames for signals).
        w: usize,
        /// Channels (features per frame for signals).
        c: usize,
    },
    /// A vector.
    Flat(usize),
}

impl Shape {
    /// Number of values.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Map { h, w, c } => h * w * c,
            Shape::Flat(n) => n,
        }
    }
    /// Zero values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// NHWC dims with batch 1, as the artifact stores them.
    pub fn nhwc(&self) -> Vec<u32> {
        match *self {
            Shape::Map { h, w, c } => vec![1, h as u32, w as u32, c as u32],
            Shape::Flat(n) => vec![1, n as u32],
        }
    }
}

/// The model input shape a pipeline produces: signals with several frames and images are
/// maps (a signal is height 1, width = frames, channels = features per frame); vectors,
/// text and single-frame signals are flat.
pub fn input_shape(p: &Pipeline<'_>) -> Shape {
    let [a, b, c] = p.output_shape();
    match p.desc().input {
        Input::Image { .. } => Shape::Map { h: a, w: b, c },
        Input::Signal { .. } if a > 1 => Shape::Map { h: 1, w: a, c: b },
        _ => Shape::Flat(p.output_len()),
    }
}

/// One planned layer: the config entry with its shapes and explicit padding.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// The layer as configured.
    pub layer: Layer,
    /// Input shape.
    pub input: Shape,
    /// Output shape.
    pub output: Shape,
    /// Padding (top, left, bottom, right) of convolutions.
    pub pad: [usize; 4],
    /// Index into the module's parameter list of its kind (dense/conv/bn).
    pub param: usize,
}

/// The checked plan of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Input shape.
    pub input: Shape,
    /// Layers in order.
    pub layers: Vec<Planned>,
    /// Output values (classes, or the reconstruction length).
    pub outputs: usize,
    /// The task.
    pub task: Task,
    /// The last layer is a softmax (the model's output is probabilities).
    pub softmax: bool,
}

/// TFLite's output size and (before, after) padding of one dimension.
fn conv_dim(input: usize, k: usize, s: usize, p: Padding) -> Option<(usize, usize, usize)> {
    match p {
        Padding::Valid => {
            if input < k {
                None
            } else {
                Some(((input - k) / s + 1, 0, 0))
            }
        }
        Padding::Same => {
            let out = input.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(input);
            Some((out, total / 2, total - total / 2))
        }
    }
}

/// Checks the layers against the input shape and the number of classes, computing every
/// shape. Errors name the layer and what does not fit.
pub fn plan(cfg: &ModelConfig, input: Shape, classes: usize) -> Result<Plan, TrainError> {
    let mut shape = input;
    let mut out = Vec::with_capacity(cfg.layers.len());
    let (mut nd, mut nc, mut nb) = (0usize, 0usize, 0usize);
    for (i, l) in cfg.layers.iter().enumerate() {
        let err = |reason: String| TrainError::Layer {
            index: i,
            kind: l.kind(),
            reason,
        };
        let mut pad = [0usize; 4];
        let mut param = 0;
        let map = |s: Shape| {
            match s {
            Shape::Map { h, w, c } => Ok((h, w, c)),
            Shape::Flat(n) => Err(err(format!(
                "needs a feature map, but its input is a vector of {n} (a signal pipeline with [output] frames > 1, or an image)"
            ))),
        }
        };
        let conv = |h: usize,
                    w: usize,
                    k: [usize; 2],
                    s: [usize; 2],
                    p: Padding,
                    pad: &mut [usize; 4]|
         -> Result<(usize, usize), TrainError> {
            let (oh, t, b) = conv_dim(h, k[0], s[0], p).ok_or_else(|| {
                err(format!(
                    "kernel height {} exceeds the input height {h}",
                    k[0]
                ))
            })?;
            let (ow, le, r) = conv_dim(w, k[1], s[1], p)
                .ok_or_else(|| err(format!("kernel width {} exceeds the input width {w}", k[1])))?;
            *pad = [t, le, b, r];
            Ok((oh, ow))
        };
        let next = match l {
            Layer::Dense { units } => {
                if let Shape::Map { h, w, c } = shape {
                    return Err(err(format!(
                        "its input is a {h}x{w}x{c} feature map; add flatten or global_avg_pool before it"
                    )));
                }
                param = nd;
                nd += 1;
                Shape::Flat(*units)
            }
            Layer::Conv1d {
                filters,
                kernel,
                stride,
                padding,
            } => {
                let (h, w, _) = map(shape)?;
                if h != 1 {
                    return Err(err(format!(
                        "conv1d runs over frames of a signal (height 1); its input has height {h} (use conv2d)"
                    )));
                }
                let (oh, ow) = conv(h, w, [1, *kernel], [1, *stride], *padding, &mut pad)?;
                param = nc;
                nc += 1;
                Shape::Map {
                    h: oh,
                    w: ow,
                    c: *filters,
                }
            }
            Layer::Conv2d {
                filters,
                kernel,
                stride,
                padding,
            } => {
                let (h, w, _) = map(shape)?;
                let (oh, ow) = conv(h, w, *kernel, *stride, *padding, &mut pad)?;
                param = nc;
                nc += 1;
                Shape::Map {
                    h: oh,
                    w: ow,
                    c: *filters,
                }
            }
            Layer::DepthwiseConv1d {
                kernel,
                stride,
                padding,
                multiplier,
            } => {
                let (h, w, c) = map(shape)?;
                if h != 1 {
                    return Err(err(format!(
                        "runs over frames of a signal (height 1); its input has height {h}"
                    )));
                }
                let (oh, ow) = conv(h, w, [1, *kernel], [1, *stride], *padding, &mut pad)?;
                param = nc;
                nc += 1;
                Shape::Map {
                    h: oh,
                    w: ow,
                    c: c * multiplier,
                }
            }
            Layer::DepthwiseConv2d {
                kernel,
                stride,
                padding,
                multiplier,
            } => {
                let (h, w, c) = map(shape)?;
                let (oh, ow) = conv(h, w, *kernel, *stride, *padding, &mut pad)?;
                param = nc;
                nc += 1;
                Shape::Map {
                    h: oh,
                    w: ow,
                    c: c * multiplier,
                }
            }
            Layer::MaxPool1d { size, stride } | Layer::AvgPool1d { size, stride } => {
                let (h, w, c) = map(shape)?;
                let s = stride.unwrap_or(*size);
                if s == 0 || *size > w {
                    return Err(err(format!(
                        "window {size} exceeds the {w} frames (or stride 0)"
                    )));
                }
                let _ = h;
                Shape::Map {
                    h,
                    w: (w - size) / s + 1,
                    c,
                }
            }
            Layer::MaxPool2d { size, stride } | Layer::AvgPool2d { size, stride } => {
                let (h, w, c) = map(shape)?;
                let s = stride.unwrap_or(*size);
                if s.contains(&0) || size[0] > h || size[1] > w {
                    return Err(err(format!(
                        "window {size:?} exceeds the {h}x{w} input (or stride 0)"
                    )));
                }
                Shape::Map {
                    h: (h - size[0]) / s[0] + 1,
                    w: (w - size[1]) / s[1] + 1,
                    c,
                }
            }
            Layer::GlobalAvgPool {} => {
                let (_, _, c) = map(shape)?;
                Shape::Flat(c)
            }
            Layer::Flatten {} => Shape::Flat(shape.len()),
            Layer::BatchNorm { .. } => {
                param = nb;
                nb += 1;
                shape
            }
            Layer::Relu {} | Layer::Relu6 {} | Layer::Dropout { .. } | Layer::Softmax {} => shape,
        };
        if next.is_empty() {
            return Err(err("produces an empty tensor".into()));
        }
        out.push(Planned {
            layer: l.clone(),
            input: shape,
            output: next,
            pad,
            param,
        });
        shape = next;
    }
    let outputs = match (cfg.task, shape) {
        (_, Shape::Map { h, w, c }) => return Err(HeadError::FeatureMap { h, w, c }.into()),
        (Task::Classification, Shape::Flat(n)) => {
            if n != classes {
                return Err(HeadError::Classes { values: n, classes }.into());
            }
            n
        }
        (Task::Autoencoder, Shape::Flat(n)) => {
            if n != input.len() {
                return Err(HeadError::Reconstruct {
                    values: n,
                    input: input.len(),
                }
                .into());
            }
            n
        }
    };
    if cfg.task == Task::Autoencoder {
        if let Shape::Map { .. } = input {
            return Err(TrainError::Unsupported(
                "a dense autoencoder takes a vector input (a vector pipeline or one frame)",
            ));
        }
    }
    Ok(Plan {
        input,
        softmax: matches!(cfg.layers.last(), Some(Layer::Softmax {})),
        layers: out,
        outputs,
        task: cfg.task,
    })
}

/// The trainable parameters, by kind, in layer order.
#[derive(Module, Debug)]
pub struct Net {
    /// Dense layers.
    pub dense: Vec<Linear>,
    /// Convolutions (normal and depthwise), NCHW weights `[out, in/groups, kh, kw]`.
    pub conv: Vec<Conv2d>,
    /// Batch-norm layers.
    pub bn: Vec<BatchNorm>,
}

enum X {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Net {
    /// Creates the parameters on `device` (burn's default initialisers, drawn from the
    /// device's seeded generator).
    pub fn init(plan: &Plan, device: &Device) -> Net {
        let mut net = Net {
            dense: Vec::new(),
            conv: Vec::new(),
            bn: Vec::new(),
        };
        for p in &plan.layers {
            let cin = match p.input {
                Shape::Map { c, .. } => c,
                Shape::Flat(n) => n,
            };
            let padding = PaddingConfig2d::Explicit(p.pad[0], p.pad[1], p.pad[2], p.pad[3]);
            match &p.layer {
                Layer::Dense { units } => {
                    net.dense.push(LinearConfig::new(cin, *units).init(device))
                }
                Layer::Conv1d {
                    filters,
                    kernel,
                    stride,
                    ..
                } => net.conv.push(
                    Conv2dConfig::new([cin, *filters], [1, *kernel])
                        .with_stride([1, *stride])
                        .with_padding(padding)
                        .init(device),
                ),
                Layer::Conv2d {
                    filters,
                    kernel,
                    stride,
                    ..
                } => net.conv.push(
                    Conv2dConfig::new([cin, *filters], *kernel)
                        .with_stride(*stride)
                        .with_padding(padding)
                        .init(device),
                ),
                Layer::DepthwiseConv1d {
                    kernel,
                    stride,
                    multiplier,
                    ..
                } => net.conv.push(
                    Conv2dConfig::new([cin, cin * multiplier], [1, *kernel])
                        .with_stride([1, *stride])
                        .with_groups(cin)
                        .with_padding(padding)
                        .init(device),
                ),
                Layer::DepthwiseConv2d {
                    kernel,
                    stride,
                    multiplier,
                    ..
                } => net.conv.push(
                    Conv2dConfig::new([cin, cin * multiplier], *kernel)
                        .with_stride(*stride)
                        .with_groups(cin)
                        .with_padding(padding)
                        .init(device),
                ),
                Layer::BatchNorm { epsilon, momentum } => {
                    let c = match p.output {
                        Shape::Map { c, .. } => c,
                        Shape::Flat(n) => n,
                    };
                    net.bn.push(
                        BatchNormConfig::new(c)
                            .with_epsilon(*epsilon)
                            .with_momentum(*momentum)
                            .init(device),
                    )
                }
                _ => {}
            }
        }
        net
    }

    /// Forward pass. `x`: `batch * plan.input.len()` values, each example NHWC (or flat).
    /// Returns `[batch, outputs]`: logits for classifiers (the softmax is left to the
    /// loss / the caller), the reconstruction for autoencoders.
    pub fn forward(&self, plan: &Plan, x: Vec<f32>, batch: usize, device: &Device) -> Tensor<2> {
        let mut t = match plan.input {
            Shape::Map { h, w, c } => X::Map(
                Tensor::<4>::from_data(TensorData::new(x, [batch, h, w, c]), device)
                    .permute([0, 3, 1, 2]),
            ),
            Shape::Flat(n) => X::Flat(Tensor::<2>::from_data(
                TensorData::new(x, [batch, n]),
                device,
            )),
        };
        for p in &plan.layers {
            t = match (t, &p.layer) {
                (X::Flat(x), Layer::Dense { .. }) => X::Flat(self.dense[p.param].forward(x)),
                (
                    X::Map(x),
                    Layer::Conv1d { .. }
                    | Layer::Conv2d { .. }
                    | Layer::DepthwiseConv1d { .. }
                    | Layer::DepthwiseConv2d { .. },
                ) => X::Map(self.conv[p.param].forward(x)),
                (X::Map(x), Layer::MaxPool1d { size, stride }) => X::Map(
                    MaxPool2dConfig::new([1, *size])
                        .with_strides([1, stride.unwrap_or(*size)])
                        .init()
                        .forward(x),
                ),
                (X::Map(x), Layer::AvgPool1d { size, stride }) => X::Map(
                    AvgPool2dConfig::new([1, *size])
                        .with_strides([1, stride.unwrap_or(*size)])
                        .init()
                        .forward(x),
                ),
                (X::Map(x), Layer::MaxPool2d { size, stride }) => X::Map(
                    MaxPool2dConfig::new(*size)
                        .with_strides(stride.unwrap_or(*size))
                        .init()
                        .forward(x),
                ),
                (X::Map(x), Layer::AvgPool2d { size, stride }) => X::Map(
                    AvgPool2dConfig::new(*size)
                        .with_strides(stride.unwrap_or(*size))
                        .init()
                        .forward(x),
                ),
                (X::Map(x), Layer::GlobalAvgPool {}) => {
                    let [b, c, h, w] = x.dims();
                    X::Flat(x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]))
                }
                (X::Map(x), Layer::Flatten {}) => {
                    let [b, c, h, w] = x.dims();
                    X::Flat(x.permute([0, 2, 3, 1]).reshape([b, h * w * c]))
                }
                (t @ X::Flat(_), Layer::Flatten {}) => t,
                (X::Map(x), Layer::BatchNorm { .. }) => X::Map(self.bn[p.param].forward(x)),
                (X::Flat(x), Layer::BatchNorm { .. }) => X::Flat(self.bn[p.param].forward(x)),
                (X::Map(x), Layer::Relu {}) => X::Map(relu(x)),
                (X::Flat(x), Layer::Relu {}) => X::Flat(relu(x)),
                (X::Map(x), Layer::Relu6 {}) => X::Map(x.clamp(0.0, 6.0)),
                (X::Flat(x), Layer::Relu6 {}) => X::Flat(x.clamp(0.0, 6.0)),
                (X::Map(x), Layer::Dropout { rate }) => {
                    X::Map(DropoutConfig::new(*rate).init().forward(x))
                }
                (X::Flat(x), Layer::Dropout { rate }) => {
                    X::Flat(DropoutConfig::new(*rate).init().forward(x))
                }
                (t, Layer::Softmax {}) => t,
                // The plan checked every layer's input kind; these cannot occur.
                (t, _) => t,
            };
        }
        match t {
            X::Flat(x) => x,
            X::Map(x) => {
                let [b, c, h, w] = x.dims();
                x.reshape([b, c * h * w])
            }
        }
    }
}
