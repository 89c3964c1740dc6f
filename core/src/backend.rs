//! How a model runs its OneBit linears: one trait, several executors.
//!
//! The model crate calls a [`LinearBackend`] for every 1-bit linear; it never
//! sees a device. The `float` and `reference` backends live here; the
//! `hardware` backend lives in the driver, which is the only crate that knows
//! both the layer and the wire format.

use crate::config::ArrayConfig;
use crate::reference::{layer_norm_rows, PackedLayer, PreparedLayer};
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
    /// [`LinearBackend::prepare`] for the layer called `name` (for example
    /// `model.layers.3.mlp.up_proj`), so that a backend's errors can name it.
    fn prepare_named(&self, name: &str, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let _ = name;
        self.prepare(layer)
    }
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

/// The signs unpacked once to a dense ±1 matrix (K×N), so forward is one f32
/// GEMM (matrixmultiply) instead of a bit loop.
struct FloatLinear {
    signs_t: Array2<f32>,
    g: ndarray::Array1<f32>,
    h: ndarray::Array1<f32>,
    eps: f64,
}

impl LinearBackend for FloatBackend {
    fn name(&self) -> &str {
        "float"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        layer.validate().map_err(|e| BackendError::new("float", e))?;
        let (k, n) = (layer.in_features, layer.out_features);
        let signs = crate::pack::unpack_signs(&layer.signs, n, k);
        let signs_t = Array2::from_shape_fn((k, n), |(i, o)| signs[o * k + i] as f32);
        Ok(Box::new(FloatLinear {
            signs_t,
            g: ndarray::Array1::from(layer.g.clone()),
            h: ndarray::Array1::from(layer.h.clone()),
            eps: self.layer_norm_eps,
        }))
    }
}

impl PreparedLinear for FloatLinear {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError> {
        if x.ncols() != self.g.len() {
            return Err(BackendError::new("float", format!("activations have K = {}, the layer expects {}", x.ncols(), self.g.len())));
        }
        let xg = &x * &self.g;
        let mut y = xg.dot(&self.signs_t) * &self.h;
        layer_norm_rows(&mut y, self.eps);
        Ok(y)
    }
}

/// The bit-exact integer reference of docs/numerics.md for one array config.
pub struct ReferenceBackend {
    pub config: ArrayConfig,
    pub layer_norm_eps: f64,
}

/// The layer prepared once (validated, signs re-laid out for the fastest exact
/// kernel), so a forward pass only quantises, runs the kernel and normalises.
struct ReferenceLinear {
    prepared: PreparedLayer,
    eps: f64,
}

impl LinearBackend for ReferenceBackend {
    fn name(&self) -> &str {
        "reference"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let q = layer.quantize(&self.config).map_err(|e| BackendError::new("reference", e))?;
        let prepared = PreparedLayer::new(&self.config, q).map_err(|e| BackendError::new("reference", e))?;
        Ok(Box::new(ReferenceLinear { prepared, eps: self.layer_norm_eps }))
    }
}

impl PreparedLinear for ReferenceLinear {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError> {
        self.prepared.forward_layer_norm(x, self.eps).map_err(|e| BackendError::new("reference", e))
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::reference_forward;
    use crate::synth::{random_layer, SplitMix64};

    /// Both backends compute the same layer: the float one matches the f32
    /// definition up to summation order, the reference one the integer pipeline.
    #[test]
    fn backends_agree_with_their_definitions() {
        let mut rng = SplitMix64(5);
        let layer = random_layer(&mut rng, 37, 19);
        let x = Array2::from_shape_fn((3, 37), |_| rng.symmetric());
        let fb = FloatBackend { layer_norm_eps: 1e-5 }.prepare(&layer).unwrap();
        let want = crate::reference::float_forward(&layer, x.view()).unwrap();
        let got = fb.forward(x.view()).unwrap();
        for (a, b) in got.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert!(fb.forward(Array2::<f32>::zeros((1, 5)).view()).is_err());
        let cfg = ArrayConfig::SIM16;
        let rb = ReferenceBackend { config: cfg, layer_norm_eps: 1e-5 }.prepare(&layer).unwrap();
        let (_, post) = reference_forward(&cfg, &layer.quantize(&cfg).unwrap(), x.view()).unwrap();
        assert_eq!(rb.forward(x.view()).unwrap(), post);
    }
}
