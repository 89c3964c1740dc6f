//! How a model runs its OneBit linears: one trait, several executors.
//!
//! The model crate calls a [`LinearBackend`] for every 1-bit linear; it never
//! sees a device. The `float` and `reference` backends live here; the
//! `hardware` backend lives in the driver, which is the only crate that knows
//! both the layer and the wire format.

use crate::config::ArrayConfig;
use crate::reference::{layer_norm_rows, reference_forward, PackedLayer, QuantizedLayer};
use ndarray::{Array2, ArrayView2};

/// A failure inside a backend (device error, bad shape, ...), as text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend} backend: {message}")]
pub struct BackendError {
    pub backend: String,
    pub message: String,
}

impl BackendError {
    pub fn new(backend: &str, message: impl ToString) -> Self {
        BackendError { backend: backend.into(), message: message.to_string() }
    }
}

/// Executes OneBit linears. `prepare` is called once per layer (quantise,
/// upload weights); the returned handle runs the layer on activations.
pub trait LinearBackend: Send + Sync {
    /// `float`, `reference`, `hardware`, ...
    fn name(&self) -> &str;
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError>;
}

/// One prepared layer: `forward` maps M×K activations to the M×N output of
/// LayerNorm(h ⊙ (sign(W)·(g ⊙ x))) (LayerNorm without affine parameters).
pub trait PreparedLinear: Send + Sync {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError>;
}

/// f32 OneBit layer, no quantisation.
pub struct FloatBackend {
    pub layer_norm_eps: f64,
}

struct FloatLinear {
    layer: PackedLayer,
    eps: f64,
}

impl LinearBackend for FloatBackend {
    fn name(&self) -> &str {
        "float"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        layer.validate().map_err(|e| BackendError::new("float", e))?;
        Ok(Box::new(FloatLinear { layer: layer.clone(), eps: self.layer_norm_eps }))
    }
}

impl PreparedLinear for FloatLinear {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError> {
        let mut y = crate::reference::float_forward_pre_norm(&self.layer, x).map_err(|e| BackendError::new("float", e))?;
        layer_norm_rows(&mut y, self.eps);
        Ok(y)
    }
}

/// The bit-exact integer reference of docs/numerics.md for one array config.
pub struct ReferenceBackend {
    pub config: ArrayConfig,
    pub layer_norm_eps: f64,
}

struct ReferenceLinear {
    config: ArrayConfig,
    layer: QuantizedLayer,
    eps: f64,
}

impl LinearBackend for ReferenceBackend {
    fn name(&self) -> &str {
        "reference"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let q = layer.quantize(&self.config).map_err(|e| BackendError::new("reference", e))?;
        Ok(Box::new(ReferenceLinear { config: self.config, layer: q, eps: self.layer_norm_eps }))
    }
}

impl PreparedLinear for ReferenceLinear {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError> {
        let (mut pre, _) = reference_forward(&self.config, &self.layer, x).map_err(|e| BackendError::new("reference", e))?;
        layer_norm_rows(&mut pre, self.eps);
        Ok(pre)
    }
}

