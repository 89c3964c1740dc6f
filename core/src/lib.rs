//! `onebit-core`: the one place that defines the accelerator's array
//! configuration, the fixed-point numerics (docs/numerics.md), the bit-exact
//! software reference, and the 1-bit model file format (docs/format.md).

pub mod backend;
pub mod config;
pub mod format;
pub mod kernel;
pub mod numerics;
pub mod pack;
pub mod ports;
pub mod reference;

pub use config::{ArrayConfig, ConfigError};
pub use pack::{pack_signs, packed_row_bytes, unpack_signs};
pub use reference::{PackedLayer, QuantizedLayer, QuantizedTokens, ReferenceError};
pub mod synth;
pub mod wire;
