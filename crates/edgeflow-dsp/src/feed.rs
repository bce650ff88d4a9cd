//! How a test or benchmark case's input bytes reach a [`crate::Runtime`]: the one definition
//! the device harness (`firmware/dsp-harness`) and the host's twin of it
//! (`edgeflow_tests::dsp_firmware`) share, so a case means the same on both sides.

/// How a case's input bytes are fed to a [`crate::Runtime`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Little-endian `f32` samples, pushed in chunks ([`crate::Runtime::push`]).
    F32,
    /// Little-endian `i16` samples, converted to `f32` and pushed in chunks.
    I16,
    /// Little-endian `i16` samples, pushed as they are ([`crate::Runtime::push_i16`], which
    /// a pipeline starting with the fixed-point audio front end stores without conversion).
    Pcm,
    /// One little-endian `f32` vector ([`crate::Runtime::run_vector`]).
    Vector,
    /// `'\n'`-separated tokens ([`crate::Runtime::run_tokens`]).
    Text,
    /// 8-bit pixels ([`crate::Runtime::run_image`]).
    Image,
}
