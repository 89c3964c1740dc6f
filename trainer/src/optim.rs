//! AdamW with global-norm gradient clipping, fused into one pass over each
//! parameter in plain Rust (candle's optimiser builds a graph of small tensor
//! ops per parameter per step, which dominates small-model training on a CPU),
//! and the cosine learning-rate schedule with linear warm-up.
//!
//! The update is exactly PyTorch's `torch.optim.AdamW`:
//! `p ← p − lr·wd·p; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
//!  p ← p − lr · (m / (1−β1ᵗ)) / (√(v / (1−β2ᵗ)) + ε)`.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};
use std::cell::RefCell;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Clip the global L2 norm of all gradients to this (0 = no clipping).
    pub clip_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: 0.0, clip_norm: 1.0 }
    }
}

/// One trainable parameter: its name (as saved in checkpoints), the variable,
/// and whether weight decay applies to it.
pub struct Param {
    pub name: String,
    pub var: Var,
    pub decay: bool,
}

/// AdamW state for a fixed, named set of parameters.
pub struct AdamW {
    pub config: AdamWConfig,
    pub params: Vec<Param>,
    /// First and second moments, one vector per parameter.
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
    /// Updates taken so far.
    pub step: u64,
}

/// What one optimiser step saw.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

impl AdamW {
    pub fn new(params: Vec<Param>, config: AdamWConfig) -> Self {
        let m = params.iter().map(|p| vec![0.0; p.var.elem_count()]).collect();
        let v = params.iter().map(|p| vec![0.0; p.var.elem_count()]).collect();
        AdamW { config, params, m, v, step: 0 }
    }

    /// One update at learning rate `lr` from the gradients in `grads`
    /// (parameters without a gradient are left alone, moments included).
    pub fn step(&mut self, grads: &candle_core::backprop::GradStore, lr: f64) -> Result<StepStats> {
        let mut gs: Vec<Option<Tensor>> = Vec::with_capacity(self.params.len());
        let mut sq = 0.0f64;
        for p in &self.params {
            match grads.get(p.var.as_tensor()) {
                Some(g) => {
                    let g = g.contiguous()?;
                    sq += with_f32(&g, |g| g.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())?;
                    gs.push(Some(g));
                }
                None => gs.push(None),
            }
        }
        let grad_norm = sq.sqrt();
        let clip = if self.config.clip_norm > 0.0 && grad_norm > self.config.clip_norm {
            // Same factor as torch.nn.utils.clip_grad_norm_.
            (self.config.clip_norm / (grad_norm + 1e-6)) as f32
        } else {
            1.0
        };
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        let (b1, b2) = (c.beta1 as f32, c.beta2 as f32);
        let step_size = (lr / bc1) as f32;
        let inv_sqrt_bc2 = (1.0 / bc2.sqrt()) as f32;
        let eps = c.eps as f32;
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = &gs[i] else { continue };
            let t = p.var.as_tensor();
            let update = Update {
                clip,
                decay: if p.decay { (1.0 - lr * c.weight_decay) as f32 } else { 1.0 },
                b1,
                b2,
                step_size,
                inv_sqrt_bc2,
                eps,
                m: RefCell::new(&mut self.m[i]),
                v: RefCell::new(&mut self.v[i]),
            };
            if t.device().is_cpu() && t.is_contiguous() && t.dtype() == candle_core::DType::F32 {
                // In place: no copies of the parameter or its gradient.
                t.inplace_op2(g, &update)?;
            } else {
                let mut w = t.flatten_all()?.to_vec1::<f32>()?;
                update.apply(&mut w, &g.flatten_all()?.to_vec1::<f32>()?);
                p.var.set(&Tensor::from_vec(w, t.shape(), t.device())?)?;
            }
        }
        Ok(StepStats { grad_norm })
    }

    /// Moments as named tensors (`NAME.exp_avg`, `NAME.exp_avg_sq`) for checkpoints.
    pub fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (i, p) in self.params.iter().enumerate() {
            let shape = p.var.shape().clone();
            let dev = candle_core::Device::Cpu;
            out.insert(format!("{}.exp_avg", p.name), Tensor::from_slice(&self.m[i], shape.clone(), &dev)?);
            out.insert(format!("{}.exp_avg_sq", p.name), Tensor::from_slice(&self.v[i], shape, &dev)?);
        }
        Ok(out)
    }

    /// Restore moments saved by [`AdamW::state_tensors`]; every parameter must be present.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>, step: u64) -> std::result::Result<(), String> {
        for (i, p) in self.params.iter().enumerate() {
            for (suffix, dst) in [("exp_avg", &mut self.m[i]), ("exp_avg_sq", &mut self.v[i])] {
                let key = format!("{}.{suffix}", p.name);
                let t = tensors.get(&key).ok_or_else(|| format!("optimiser state `{key}` is missing"))?;
                if t.dims() != p.var.dims() {
                    return Err(format!("optimiser state `{key}` has shape {:?}, expected {:?}", t.dims(), p.var.dims()));
                }
                *dst = t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| format!("`{key}`: {e}"))?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Run `f` on the f32 data of a CPU tensor, or on a copy of it elsewhere.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    if let (candle_core::Storage::Cpu(CpuStorage::F32(v)), l) = (&*t.storage_and_layout().0, t.layout()) {
        if let Some((a, b)) = l.contiguous_offsets() {
            return Ok(f(&v[a..b]));
        }
    }
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}

/// One AdamW update of one parameter (its moments borrowed from the optimiser).
struct Update<'a> {
    clip: f32,
    decay: f32,
    b1: f32,
    b2: f32,
    step_size: f32,
    inv_sqrt_bc2: f32,
    eps: f32,
    m: RefCell<&'a mut Vec<f32>>,
    v: RefCell<&'a mut Vec<f32>>,
}

impl Update<'_> {
    fn apply(&self, w: &mut [f32], g: &[f32]) {
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        let (b1, b2) = (self.b1, self.b2);
        for (((wj, &gj), mj), vj) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let gj = gj * self.clip;
            *mj = b1 * *mj + (1.0 - b1) * gj;
            *vj = b2 * *vj + (1.0 - b2) * gj * gj;
            *wj = *wj * self.decay - self.step_size * *mj / (vj.sqrt() * self.inv_sqrt_bc2 + self.eps);
        }
    }
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "onebit-adamw"
    }
    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (s1, s2) else { candle_core::bail!("adamw: expected f32") };
        let (Some((a, b)), Some((c, d))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            candle_core::bail!("adamw: parameter and gradient must be contiguous")
        };
        if b - a != d - c {
            candle_core::bail!("adamw: parameter has {} elements, gradient {}", b - a, d - c);
        }
        self.apply(&mut w[a..b], &g[c..d]);
        Ok(())
    }
}

/// Cosine decay from `max_lr` to `min_lr` over `total_steps`, after a linear
/// warm-up of `warmup_steps` (nanoGPT's `get_lr`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CosineSchedule {
    pub max_lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl CosineSchedule {
    /// Learning rate of update number `step` (0-based).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.max_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if step >= self.total_steps {
            return self.min_lr;
        }
        let span = (self.total_steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        self.min_lr + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (self.max_lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_shape() {
        let s = CosineSchedule { max_lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, total_steps: 110 };
        assert!((s.lr(0) - 1e-4).abs() < 1e-12);
        assert!((s.lr(9) - 1e-3).abs() < 1e-12);
        assert!((s.lr(10) - 1e-3).abs() < 1e-12);
        assert!((s.lr(60) - 5.5e-4).abs() < 1e-12);
        assert!((s.lr(110) - 1e-4).abs() < 1e-12);
        assert!((1..110).all(|t| t < 10 || s.lr(t) <= s.lr(t - 1)));
    }

    /// Against PyTorch AdamW's closed form on a scalar: with a constant gradient
    /// g the bias-corrected m̂ = g and v̂ = g², so each step moves by
    /// lr·g/(|g| + ε) after the decay, whatever the betas.
    #[test]
    fn adamw_constant_gradient_closed_form() {
        let dev = Device::Cpu;
        let var = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &dev).unwrap()).unwrap();
        let cfg = AdamWConfig { weight_decay: 0.1, clip_norm: 0.0, ..Default::default() };
        let mut opt = AdamW::new(vec![Param { name: "w".into(), var: var.clone(), decay: true }], cfg);
        let mut expect = [1.0f64, -2.0];
        for _ in 0..5 {
            // loss = 0.5·Σ w·c with c = [4, -4]: gradient [2, -2].
            let c = Tensor::new(&[4.0f32, -4.0], &dev).unwrap();
            let loss = (var.as_tensor() * &c).unwrap().sum_all().unwrap().affine(0.5, 0.0).unwrap();
            opt.step(&loss.backward().unwrap(), 0.01).unwrap();
            for (e, g) in expect.iter_mut().zip([2.0f64, -2.0]) {
                *e = *e * (1.0 - 0.01 * 0.1) - 0.01 * g / (g.abs() + 1e-8);
            }
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        for (g, e) in got.iter().zip(expect) {
            assert!((*g as f64 - e).abs() < 1e-6, "{got:?} vs {expect:?}");
        }
    }

    #[test]
    fn clipping_scales_the_first_moment() {
        let dev = Device::Cpu;
        let var = Var::from_tensor(&Tensor::new(&[0.0f32, 0.0], &dev).unwrap()).unwrap();
        let cfg = AdamWConfig { clip_norm: 1.0, ..Default::default() };
        let mut opt = AdamW::new(vec![Param { name: "w".into(), var: var.clone(), decay: false }], cfg);
        let c = Tensor::new(&[3.0f32, 4.0], &dev).unwrap();
        let loss = (var.as_tensor() * &c).unwrap().sum_all().unwrap();
        let st = opt.step(&loss.backward().unwrap(), 0.1).unwrap();
        assert!((st.grad_norm - 5.0).abs() < 1e-9);
        // Clipped gradient [0.6, 0.8]: m = 0.1·g.
        assert!((opt.m[0][0] - 0.06).abs() < 1e-6 && (opt.m[0][1] - 0.08).abs() < 1e-6);
    }
}
