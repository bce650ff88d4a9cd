// The one list of op names. `decode.rs` includes it as `edgeflow_format::decode::OP_NAMES`;
// edgeflow-nn's build.rs includes it to turn `EDGEFLOW_NN_OPS` into op tags, so both read
// the same list. Items only: this file is `include!`d, not a module.

/// The TFLite names of the ops ([`Op::name`]), indexed by [`Op::tag`].
pub const OP_NAMES: [&str; 24] = [
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "MUL",
    "RESHAPE",
    "SOFTMAX",
    "QUANTIZE",
    "DEQUANTIZE",
    "CONCATENATION",
    "PAD",
    "MEAN",
    "LOGISTIC",
    "TANH",
    "TRANSPOSE",
    "STRIDED_SLICE",
    "LEAKY_RELU",
    "HARD_SWISH",
    "MAXIMUM",
    "MINIMUM",
    "REDUCE_MAX",
    "RESIZE_NEAREST_NEIGHBOR",
];
