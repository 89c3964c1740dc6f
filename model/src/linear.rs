//! The linears inside the decoder blocks, in three interchangeable forms.
//!
//! * [`BlockLinear::Dense`]: full precision, `y = x Wᵀ` (W is N×K as in Hugging Face).
//! * [`BlockLinear::OneBitTrain`]: OneBit in training form,
//!   `y = LayerNorm(h ⊙ ((g ⊙ x) · sign(W)ᵀ))` with a trainable latent W whose sign
//!   passes the straight-through gradient `grad · (1.001 − tanh(W)²)` (official
//!   OneBit), trainable g (K) and h (N), and LayerNorm without affine parameters.
//! * [`BlockLinear::Backend`]: the same OneBit layer executed by a
//!   [`LinearBackend`] (float, bit-exact integer reference, hardware): inference only.

use crate::error::ModelError;
use crate::train_ops;
use candle_core::{CpuStorage, DType, Layout, Shape, Tensor, D};
use candle_nn::{Init, VarBuilder};
use onebit_core::backend::{LinearBackend, PreparedLinear};
use onebit_core::reference::PackedLayer;

/// sign(0) is +1 here, matching the packed format (`w >= 0` packs as +1).
const STE_SLOPE: f64 = 1.001;

/// Which form the block linears take when a model is built from a `VarBuilder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearKind {
    /// Full precision: tensor `P.weight` (N×K).
    Dense,
    /// OneBit training form: tensors `P.weight` (latent, N×K), `P.g` (K) and `P.h` (N).
    /// New variables (from a `VarMap`) start as latent ~ N(0, 0.02²), g = h = 1.
    OneBitTraining,
}

/// Straight-through sign: forward `+1` where `w >= 0` and `−1` elsewhere; backward
/// `grad · (1.001 − tanh(w)²)` (the official OneBit `SignSTE`).
pub fn sign_ste(w: &Tensor) -> candle_core::Result<Tensor> {
    if w.device().is_cpu() && w.dtype() == DType::F32 {
        w.contiguous()?.apply_op1(SignSte)
    } else {
        // Same values and gradient from differentiable ops, for other devices:
        // sign + (f − stop_grad(f)) with f' = 1.001 − tanh², and f − f = 0 exactly.
        let sign = (w.ge(0.0)?.to_dtype(w.dtype())? * 2.0)?.affine(1.0, -1.0)?.detach();
        let f = (w.tanh()? + (w * (STE_SLOPE - 1.0))?)?;
        sign + (&f - f.detach())?
    }
}

struct SignSte;

impl candle_core::CustomOp1 for SignSte {
    fn name(&self) -> &'static str {
        "onebit-sign-ste"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(src) = storage else { candle_core::bail!("onebit-sign-ste: expected f32") };
        let Some((a, b)) = layout.contiguous_offsets() else {
            candle_core::bail!("onebit-sign-ste: expected a contiguous tensor")
        };
        let out: Vec<f32> = src[a..b].iter().map(|&v| if v >= 0.0 { 1.0 } else { -1.0 }).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(train_ops::sign_ste_grad(arg, grad_res, STE_SLOPE as f32)?))
    }
}

/// LayerNorm over the last dimension without affine parameters, from
/// differentiable ops: `(y − mean) / sqrt(var + eps)` with the biased variance.
pub fn layer_norm_no_affine(y: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let mean = y.mean_keepdim(D::Minus1)?;
    let centred = y.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred.broadcast_div(&(var + eps)?.sqrt()?)
}

/// x (…×K) as rows (M×K); no reshape node when it already is 2-D.
fn as_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.rank() == 2 {
        return Ok(x.clone());
    }
    let k = x.dim(candle_core::D::Minus1)?;
    x.reshape((x.elem_count() / k.max(1), k))
}

/// Rows (M×N) back to the leading dimensions of `like` (…×K → …×N).
fn from_rows(y: Tensor, like: &[usize]) -> candle_core::Result<Tensor> {
    if like.len() == 2 {
        return Ok(y);
    }
    let mut dims = like.to_vec();
    *dims.last_mut().expect("rank >= 1") = y.dim(1)?;
    y.reshape(dims)
}

/// `x Wᵀ` for x of any rank ≥ 2 (…×K) and W N×K.
fn matmul_t(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    from_rows(as_rows(x)?.matmul(&w.t()?)?, x.dims())
}

/// OneBit linear in training form (see the module docs).
#[derive(Debug, Clone)]
pub struct OneBitTrainLinear {
    /// Latent weights, N×K; only their signs reach the output.
    pub latent: Tensor,
    /// Input-side value vector (K).
    pub g: Tensor,
    /// Output-side value vector (N).
    pub h: Tensor,
    /// Epsilon of the LayerNorm without affine.
    pub layer_norm_eps: f64,
}

impl OneBitTrainLinear {
    /// The whole layer as two ops with their own backward passes (g scaling +
    /// sign matmul, then h scaling + LayerNorm; see [`crate::train_ops`]):
    /// fused kernels on the CPU in f32, composed candle ops elsewhere.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let z = train_ops::onebit_matmul(&as_rows(x)?, &self.latent, &self.g, STE_SLOPE as f32)?;
        from_rows(train_ops::scale_layer_norm(&z, &self.h, self.layer_norm_eps)?, x.dims())
    }

    /// Pack the current signs, g and h into the 1-bit file's layer form.
    pub fn to_packed(&self) -> Result<PackedLayer, ModelError> {
        let (n, k) = self.latent.dims2()?;
        let w: Vec<f32> = self.latent.flatten_all()?.to_vec1()?;
        let g: Vec<f32> = self.g.to_vec1()?;
        let h: Vec<f32> = self.h.to_vec1()?;
        PackedLayer::from_dense(&w, n, k, g, h).map_err(|e| ModelError::Input(format!("packing a OneBit linear: {e}")))
    }
}

/// A OneBit linear prepared by a [`LinearBackend`] (inference only, no gradient).
pub struct BackendLinear {
    pub prepared: Box<dyn PreparedLinear>,
    pub in_features: usize,
    pub out_features: usize,
    /// The linear's name (for error messages).
    pub name: String,
}

impl std::fmt::Debug for BackendLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendLinear({}, {}×{})", self.name, self.out_features, self.in_features)
    }
}

impl BackendLinear {
    pub fn prepare(backend: &dyn LinearBackend, name: &str, layer: &PackedLayer) -> Result<Self, ModelError> {
        let prepared =
            backend.prepare_named(name, layer).map_err(|e| ModelError::Input(format!("preparing linear `{name}`: {e}")))?;
        Ok(BackendLinear {
            prepared,
            in_features: layer.in_features,
            out_features: layer.out_features,
            name: name.into(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let dims = x.dims().to_vec();
        let k = *dims.last().expect("rank >= 1");
        if k != self.in_features {
            return Err(ModelError::Input(format!(
                "linear `{}`: input width {k}, expected {}",
                self.name, self.in_features
            )));
        }
        let m: usize = dims[..dims.len() - 1].iter().product();
        let flat: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let a = ndarray::Array2::from_shape_vec((m, k), flat).expect("shape matches the element count");
        let y =
            self.prepared.forward(a.view()).map_err(|e| ModelError::Input(format!("linear `{}`: {e}", self.name)))?;
        if y.dim() != (m, self.out_features) {
            return Err(ModelError::Input(format!(
                "linear `{}`: backend returned {:?}, expected ({m}, {})",
                self.name,
                y.dim(),
                self.out_features
            )));
        }
        let mut out_dims = dims;
        *out_dims.last_mut().unwrap() = self.out_features;
        // The backend's buffer as it is when it is row-major from its start
        // (always, for the shipped backends): no element-wise copy.
        let data: Vec<f32> = if y.is_standard_layout() {
            match y.into_raw_vec_and_offset() {
                (v, Some(0) | None) => v,
                (v, Some(off)) => v[off..off + m * self.out_features].to_vec(),
            }
        } else {
            y.iter().copied().collect()
        };
        Ok(Tensor::from_vec(data, out_dims, x.device())?)
    }
}

/// One linear inside a decoder block.
#[derive(Debug)]
pub enum BlockLinear {
    /// Full precision; the weight is N×K.
    Dense {
        weight: Tensor,
    },
    OneBitTrain(OneBitTrainLinear),
    Backend(BackendLinear),
}

impl BlockLinear {
    /// Build a linear named `vb`'s prefix: `in_features` K → `out_features` N.
    pub fn from_var_builder(
        vb: &VarBuilder,
        kind: LinearKind,
        in_features: usize,
        out_features: usize,
        layer_norm_eps: f64,
    ) -> candle_core::Result<Self> {
        let (k, n) = (in_features, out_features);
        Ok(match kind {
            LinearKind::Dense => BlockLinear::Dense {
                weight: vb.get_with_hints((n, k), "weight", Init::Randn { mean: 0.0, stdev: 0.02 })?,
            },
            LinearKind::OneBitTraining => BlockLinear::OneBitTrain(OneBitTrainLinear {
                latent: vb.get_with_hints((n, k), "weight", Init::Randn { mean: 0.0, stdev: 0.02 })?,
                g: vb.get_with_hints(k, "g", Init::Const(1.0))?,
                h: vb.get_with_hints(n, "h", Init::Const(1.0))?,
                layer_norm_eps,
            }),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        Ok(match self {
            BlockLinear::Dense { weight } => matmul_t(x, weight)?,
            BlockLinear::OneBitTrain(l) => l.forward(x)?,
            BlockLinear::Backend(l) => l.forward(x)?,
        })
    }

    /// (in_features K, out_features N).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            BlockLinear::Dense { weight } => (weight.dims()[1], weight.dims()[0]),
            BlockLinear::OneBitTrain(l) => (l.latent.dims()[1], l.latent.dims()[0]),
            BlockLinear::Backend(l) => (l.in_features, l.out_features),
        }
    }
}
