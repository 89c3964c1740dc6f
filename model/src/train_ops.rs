//! Fused training ops for the decoder on the CPU: each is one candle
//! `CustomOp` with a hand-written backward pass, in place of the chain of small
//! differentiable ops it replaces.
//!
//! Why: candle's autograd allocates, zero-fills and adds a gradient buffer for
//! every node, and reduces broadcast gradients (g, h, norm weights) with a slow
//! strided sum. A OneBit linear in plain ops is ~17 nodes; here it is two
//! (g scaling and the sign matmul, then h scaling + LayerNorm). With these the
//! KD step went from 0.45× PyTorch's speed to above it (bench-results/trainer.json).
//!
//! Every op has a composed reference built from candle's differentiable ops
//! (`*_reference`), used on other devices and dtypes, and the tests check
//! values and gradients of each fused op against it.
//!
//! | op | forward | replaces |
//! |---|---|---|
//! | [`onebit_matmul`] | `(x ⊙ g) · sign(W)ᵀ`, straight-through sign | `broadcast_mul`, sign, transpose, matmul |
//! | [`scale_layer_norm`] | `LayerNorm(z ⊙ h)` without affine | `broadcast_mul` + 8 LayerNorm ops |
//! | [`rms_norm`] | `x / √(mean(x²) + ε) ⊙ w` | `rms_norm_slow` |
//! | [`split_heads`] | rows → heads, with RoPE for q and k | reshape, transpose, copy, `rope_slow` |
//! | [`merge_heads`] | heads → rows | transpose, reshape (copy) |
//! | [`causal_softmax`] | `softmax(scale·s + causal mask)` | mul, mask add, softmax |
//! | [`swiglu`] | `silu(gate) ⊙ up` | `silu` + mul |
//! | [`scale_columns`] | `x ⊙ g` (g along the last dim) | `broadcast_mul` |
//! | [`sign_ste_grad`] | the sign's straight-through gradient | tanh, sqr, neg, add, mul |

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, D};

/// The contiguous f32 slice a CPU storage holds for `layout`.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { candle_core::bail!("{op}: expected f32, got {:?}", s.dtype()) };
    let (a, b) =
        l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{op}: input must be contiguous")))?;
    Ok(&v[a..b])
}

/// Run `f` on the f32 data of a CPU tensor (made contiguous first).
fn with_data<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (st, l) = t.storage_and_layout();
    match &*st {
        Storage::Cpu(s) => Ok(f(slice(s, l, op)?)),
        _ => candle_core::bail!("{op}: expected a CPU tensor"),
    }
}

/// Σ a (8 partial sums so the loop vectorises; f32 addition is not associative,
/// so the compiler will not reorder a plain fold).
#[inline]
fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = a.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Σ a·b, vectorised like [`sum`].
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// eˣ for f32, branch-free so loops over it vectorise (libm's `expf` is a call
/// per element): x = k·ln2 + r with |r| ≤ ln2/2, eʳ by Cephes' `expf`
/// polynomial, 2ᵏ by building the exponent bits. Within 2 ulp of eˣ for
/// x in [−87, 88] (tested); inputs are clamped to that range.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5·2²³: adding and subtracting it rounds to the nearest integer (SSE2 has no round).
    const ROUNDER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

/// The logistic function from [`exp_fast`].
#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-v))
}

thread_local! {
    static FUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Turn the fused kernels off (or back on) for ops built on this thread, so
/// the composed reference ops run instead: for tests that compare whole
/// models both ways, and for bisecting a numerical doubt.
pub fn set_fused_on_this_thread(on: bool) {
    FUSED.with(|f| f.set(on));
}

/// Whether the fused CPU kernels apply to these tensors.
pub(crate) fn fused(ts: &[&Tensor]) -> bool {
    FUSED.with(|f| f.get()) && ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// (rows, width) of a tensor viewed as rows along its last dimension.
fn rows_width(l: &Layout) -> (usize, usize) {
    let w = *l.dims().last().unwrap_or(&1);
    (l.shape().elem_count() / w.max(1), w)
}

fn check_vec(op: &str, what: &str, l: &Layout, width: usize) -> Result<()> {
    if l.dims() != [width] {
        candle_core::bail!("{op}: {what} has shape {:?}, expected [{width}]", l.dims());
    }
    Ok(())
}

fn cpu(v: Vec<f32>, shape: &Shape) -> Result<(CpuStorage, Shape)> {
    Ok((CpuStorage::F32(v), shape.clone()))
}

fn tensor_like(v: Vec<f32>, like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(v, like.shape(), like.device())
}

// ---------------------------------------------------------------- x ⊙ g

/// `x ⊙ g` with g (K) along the last dimension of x (…×K).
pub fn scale_columns(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    if fused(&[x, g]) {
        x.contiguous()?.apply_op2(&g.contiguous()?, ScaleColumns)
    } else {
        scale_columns_reference(x, g)
    }
}

pub fn scale_columns_reference(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    x.broadcast_mul(g)
}

struct ScaleColumns;

/// The gradients of y = x ⊙ g from dy: (dx = dy ⊙ g, dg = Σ_rows dy ⊙ x).
fn scale_columns_grad(x: &Tensor, g: &Tensor, dy: &Tensor, op: &str) -> Result<(Tensor, Tensor)> {
    let k = g.elem_count();
    let (dx, dg) = with_data(x, op, |x| {
        with_data(g, op, |g| {
            with_data(dy, op, |dy| {
                let mut dx = Vec::with_capacity(dy.len());
                let mut dg = vec![0.0f32; k];
                for (xr, dr) in x.chunks_exact(k).zip(dy.chunks_exact(k)) {
                    dx.extend(dr.iter().zip(g).map(|(&d, &gv)| d * gv));
                    for ((acc, &d), &xv) in dg.iter_mut().zip(dr).zip(xr) {
                        *acc += d * xv;
                    }
                }
                (dx, dg)
            })
        })
    })???;
    Ok((tensor_like(dx, x)?, tensor_like(dg, g)?))
}

impl CustomOp2 for ScaleColumns {
    fn name(&self) -> &'static str {
        "onebit-scale-columns"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (_, k) = rows_width(l1);
        check_vec(self.name(), "g", l2, k)?;
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(k) {
            out.extend(row.iter().zip(g).map(|(&a, &b)| a * b));
        }
        cpu(out, l1.shape())
    }
    fn bwd(&self, x: &Tensor, g: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dg) = scale_columns_grad(x, g, dy, self.name())?;
        Ok((Some(dx), Some(dg)))
    }
}

// ---------------------------------------------------------------- (x ⊙ g) · sign(W)ᵀ

/// The OneBit linear before its h scaling: `(x ⊙ g) · sign(W)ᵀ` for x (M×K),
/// latent W (N×K) and g (K), as one autograd node. Backward: with
/// x̃ = x ⊙ g and S = sign(W), dx̃ = dz·S gives dx = dx̃ ⊙ g and
/// dg = Σ_rows dx̃ ⊙ x; dW = (dzᵀ·x̃) ⊙ (1.001 − tanh²W), the official
/// straight-through gradient ([`sign_ste_grad`]).
pub fn onebit_matmul(x: &Tensor, latent: &Tensor, g: &Tensor, ste_slope: f32) -> Result<Tensor> {
    if fused(&[x, latent, g]) && x.rank() == 2 {
        x.contiguous()?.apply_op3(&latent.contiguous()?, &g.contiguous()?, OneBitMatmul { ste_slope })
    } else {
        onebit_matmul_reference(x, latent, g)
    }
}

/// [`onebit_matmul`] from candle's differentiable ops (the sign's gradient
/// through [`crate::linear::sign_ste`]).
pub fn onebit_matmul_reference(x: &Tensor, latent: &Tensor, g: &Tensor) -> Result<Tensor> {
    x.broadcast_mul(g)?.matmul(&crate::linear::sign_ste(latent)?.t()?)
}

struct OneBitMatmul {
    ste_slope: f32,
}

impl OneBitMatmul {
    fn signs(w: &[f32]) -> Vec<f32> {
        w.iter().map(|&v| if v >= 0.0 { 1.0 } else { -1.0 }).collect()
    }
}

impl CustomOp3 for OneBitMatmul {
    fn name(&self) -> &'static str {
        "onebit-matmul"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (x, w, g) = (slice(s1, l1, name)?, slice(s2, l2, name)?, slice(s3, l3, name)?);
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k2 != k {
            candle_core::bail!("{name}: x is {m}×{k} but the weights are {n}×{k2}");
        }
        check_vec(name, "g", l3, k)?;
        let mut xg = Vec::with_capacity(x.len());
        for row in x.chunks_exact(k) {
            xg.extend(row.iter().zip(g).map(|(&a, &b)| a * b));
        }
        let xg = CpuStorage::F32(xg);
        let signs = CpuStorage::F32(Self::signs(w));
        // candle's own CPU matmul (gemm) on the signs read transposed.
        let z = xg.matmul(&signs, (1, m, n, k), &Layout::contiguous((m, k)), &Layout::contiguous((n, k)).transpose(0, 1)?)?;
        Ok((z, Shape::from((m, n))))
    }
    fn bwd(
        &self,
        x: &Tensor,
        latent: &Tensor,
        g: &Tensor,
        _res: &Tensor,
        dz: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (x, latent, g, dz) = (x.detach(), latent.detach(), g.detach(), dz.detach());
        let xg = scale_columns(&x, &g)?;
        let signs = with_data(&latent, name, Self::signs)?;
        let signs = Tensor::from_vec(signs, latent.shape(), latent.device())?;
        let dxg = dz.matmul(&signs)?;
        let dw = sign_ste_grad(&latent, &dz.t()?.matmul(&xg)?, self.ste_slope)?;
        let (dx, dg) = scale_columns_grad(&x, &g, &dxg, name)?;
        Ok((Some(dx), Some(dw), Some(dg)))
    }
}

// ---------------------------------------------------------------- LayerNorm(z ⊙ h)

/// `LayerNorm(z ⊙ h)` over the last dimension, without affine parameters
/// (biased variance, `eps` inside the square root), h (N) along the last dim.
pub fn scale_layer_norm(z: &Tensor, h: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(&[z, h]) {
        z.contiguous()?.apply_op2(&h.contiguous()?, ScaleLayerNorm { eps: eps as f32 })
    } else {
        scale_layer_norm_reference(z, h, eps)
    }
}

pub fn scale_layer_norm_reference(z: &Tensor, h: &Tensor, eps: f64) -> Result<Tensor> {
    crate::linear::layer_norm_no_affine(&z.broadcast_mul(h)?, eps)
}

struct ScaleLayerNorm {
    eps: f32,
}

impl ScaleLayerNorm {
    /// Row statistics of u = z ⊙ h: (mean, 1/√(var + eps)).
    fn stats(&self, z: &[f32], h: &[f32]) -> (f32, f32) {
        let n = h.len() as f32;
        let mean = dot(z, h) / n;
        let mut acc = [0.0f32; 8];
        let (cz, ch) = (z.chunks_exact(8), h.chunks_exact(8));
        let tail: f32 = cz.remainder().iter().zip(ch.remainder()).map(|(&a, &b)| (a * b - mean) * (a * b - mean)).sum();
        for (a, b) in cz.zip(ch) {
            for i in 0..8 {
                let c = a[i] * b[i] - mean;
                acc[i] += c * c;
            }
        }
        let var = (acc.iter().sum::<f32>() + tail) / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

impl CustomOp2 for ScaleLayerNorm {
    fn name(&self) -> &'static str {
        "onebit-scale-layer-norm"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (z, h) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (_, n) = rows_width(l1);
        check_vec(self.name(), "h", l2, n)?;
        let mut out = Vec::with_capacity(z.len());
        for zr in z.chunks_exact(n) {
            let (mean, inv) = self.stats(zr, h);
            out.extend(zr.iter().zip(h).map(|(&a, &b)| (a * b - mean) * inv));
        }
        cpu(out, l1.shape())
    }
    fn bwd(&self, z: &Tensor, h: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = h.elem_count();
        let name = self.name();
        let (dz, dh) = with_data(z, name, |z| {
            with_data(h, name, |h| {
                with_data(y, name, |y| {
                    with_data(dy, name, |dy| {
                        let mut dz = Vec::with_capacity(z.len());
                        let mut dh = vec![0.0f32; n];
                        // d LayerNorm / du of one row; then the chain through u = z ⊙ h.
                        let mut du = vec![0.0f32; n];
                        let nf = n as f32;
                        let rows = z.chunks_exact(n).zip(y.chunks_exact(n)).zip(dy.chunks_exact(n));
                        for ((zr, yr), dr) in rows {
                            let (_, inv) = self.stats(zr, h);
                            let mean_d = sum(dr) / nf;
                            let mean_dy = dot(dr, yr) / nf;
                            for ((u, &d), &yv) in du.iter_mut().zip(dr).zip(yr) {
                                *u = inv * (d - mean_d - yv * mean_dy);
                            }
                            dz.extend(du.iter().zip(h).map(|(&u, &hv)| u * hv));
                            for ((acc, &u), &zv) in dh.iter_mut().zip(&du).zip(zr) {
                                *acc += u * zv;
                            }
                        }
                        (dz, dh)
                    })
                })
            })
        })????;
        Ok((Some(tensor_like(dz, z)?), Some(tensor_like(dh, h)?)))
    }
}

// ---------------------------------------------------------------- sign STE

/// The straight-through gradient of the sign, `grad · (1.001 − tanh(w)²)` (the
/// official OneBit `SignSTE`), in one pass. 1 − tanh² = sech² = 4e/(1 + e)²
/// with e = e^(−2|w|) ≤ 1, which is exact algebra and cannot overflow.
pub fn sign_ste_grad(w: &Tensor, grad: &Tensor, slope: f32) -> Result<Tensor> {
    if fused(&[w, grad]) && w.dims() == grad.dims() {
        w.contiguous()?.apply_op2_no_bwd(&grad.contiguous()?, &SignSteGrad { slope })
    } else {
        grad.mul(&(w.tanh()?.sqr()?.neg()? + slope as f64)?)
    }
}

struct SignSteGrad {
    slope: f32,
}

impl CustomOp2 for SignSteGrad {
    fn name(&self) -> &'static str {
        "onebit-sign-ste-grad"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (w, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        if l1.dims() != l2.dims() {
            candle_core::bail!("{}: weights {:?} and gradient {:?} differ", self.name(), l1.dims(), l2.dims());
        }
        let extra = self.slope - 1.0;
        let out = w
            .iter()
            .zip(g)
            .map(|(&wv, &gv)| {
                let e = exp_fast(-2.0 * wv.abs());
                gv * (extra + 4.0 * e / ((1.0 + e) * (1.0 + e)))
            })
            .collect();
        cpu(out, l1.shape())
    }
}

// ---------------------------------------------------------------- RMSNorm

/// RMSNorm over the last dimension: `x / √(mean(x²) + eps) ⊙ w` (candle's and
/// transformers' LLaMA formula).
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(&[x, w]) {
        x.contiguous()?.apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
    } else {
        rms_norm_reference(x, w, eps)
    }
}

pub fn rms_norm_reference(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    candle_nn::ops::rms_norm_slow(x, w, eps as f32)
}

struct RmsNorm {
    eps: f32,
}

impl RmsNorm {
    /// √(mean(x²) + eps) of one row.
    fn rms(&self, row: &[f32]) -> f32 {
        (dot(row, row) / row.len() as f32 + self.eps).sqrt()
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "onebit-rms-norm"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let (_, d) = rows_width(l1);
        check_vec(self.name(), "weight", l2, d)?;
        let mut out = Vec::with_capacity(x.len());
        for xr in x.chunks_exact(d) {
            let m = self.rms(xr);
            out.extend(xr.iter().zip(w).map(|(&a, &b)| a / m * b));
        }
        cpu(out, l1.shape())
    }
    fn bwd(&self, x: &Tensor, w: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d = w.elem_count();
        let name = self.name();
        let (dx, dw) = with_data(x, name, |x| {
            with_data(w, name, |w| {
                with_data(dy, name, |dy| {
                    let mut dx = Vec::with_capacity(x.len());
                    let mut dw = vec![0.0f32; d];
                    let mut dxw = vec![0.0f32; d];
                    for (xr, dr) in x.chunks_exact(d).zip(dy.chunks_exact(d)) {
                        let r = 1.0 / self.rms(xr);
                        // y = x·r·w, r = (mean(x²)+eps)^(-1/2): dx = r·a − x·r³·mean(a ⊙ x), a = dy ⊙ w.
                        for ((a, &g), &wv) in dxw.iter_mut().zip(dr).zip(w) {
                            *a = g * wv;
                        }
                        let c = r * r * r * dot(&dxw, xr) / d as f32;
                        dx.extend(dxw.iter().zip(xr).map(|(&a, &xv)| r * a - xv * c));
                        for ((acc, &g), &xv) in dw.iter_mut().zip(dr).zip(xr) {
                            *acc += g * xv * r;
                        }
                    }
                    (dx, dw)
                })
            })
        })???;
        Ok((Some(tensor_like(dx, x)?), Some(tensor_like(dw, w)?)))
    }
}

// ---------------------------------------------------------------- RoPE

/// RoPE from candle's differentiable ops (halves layout, transformers' `rotate_half`).
pub fn rope_reference(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    candle_nn::rotary_emb::rope_slow(x, cos, sin)
}

// ---------------------------------------------------------------- attention heads

/// Rows (b·t, n·hd) → heads (b, n, t, hd), rotating each head vector by its
/// position's rotary angle when `rope` is given (cos/sin of shape (≥ t, hd/2)):
/// the reshape, transpose, copy and RoPE of q and k as one node.
pub fn split_heads(x: &Tensor, (b, t, n, hd): (usize, usize, usize, usize), rope: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
    let (cos, sin) = match rope {
        Some((c, s)) => (c.narrow(0, 0, t)?.contiguous()?, s.narrow(0, 0, t)?.contiguous()?),
        // Unused placeholders (the op takes three inputs); not derived from x,
        // so autograd does not expect gradients for them.
        None => (placeholder(x)?, placeholder(x)?),
    };
    if fused(&[x, &cos, &sin]) {
        let op = Heads { b, t, n, hd, split: true, rotate: rope.map(|_| false) };
        x.contiguous()?.apply_op3(&cos, &sin, op)
    } else {
        let y = x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?;
        match rope {
            Some(_) => rope_reference(&y, &cos, &sin),
            None => Ok(y),
        }
    }
}

/// Heads (b, n, t, hd) → rows (b·t, n·hd): the transpose and reshape after attention as one node.
pub fn merge_heads(a: &Tensor) -> Result<Tensor> {
    let (b, n, t, hd) = a.dims4()?;
    if fused(&[a]) {
        let none = placeholder(a)?;
        a.contiguous()?.apply_op3(&none, &none, Heads { b, t, n, hd, split: false, rotate: None })
    } else {
        a.transpose(1, 2)?.reshape((b * t, n * hd))
    }
}

fn placeholder(like: &Tensor) -> Result<Tensor> {
    Tensor::zeros(1, like.dtype(), like.device())
}

/// Moves head vectors between the row layout (b·t, n·hd) and the head layout
/// (b, n, t, hd), optionally rotating them (`Some(inverse)`) by RoPE.
struct Heads {
    b: usize,
    t: usize,
    n: usize,
    hd: usize,
    /// Rows → heads (else heads → rows).
    split: bool,
    rotate: Option<bool>,
}

impl CustomOp3 for Heads {
    fn name(&self) -> &'static str {
        "onebit-heads"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let Heads { b, t, n, hd, split, rotate } = *self;
        let x = slice(s1, l1, name)?;
        if x.len() != b * t * n * hd {
            candle_core::bail!("{name}: {:?} is not {b}·{t}·{n}·{hd} values", l1.dims());
        }
        let half = hd / 2;
        let (cos, sin) = match rotate {
            Some(_) => {
                if hd % 2 != 0 || l2.dims() != [t, half] || l3.dims() != [t, half] {
                    candle_core::bail!("{name}: rotary tables must be [{t}, {half}], got {:?} {:?}", l2.dims(), l3.dims());
                }
                (slice(s2, l2, name)?, slice(s3, l3, name)?)
            }
            None => (&[][..], &[][..]),
        };
        let sign = if rotate == Some(true) { -1.0f32 } else { 1.0 };
        let mut out = vec![0.0f32; x.len()];
        for bi in 0..b {
            for ni in 0..n {
                for ti in 0..t {
                    let rows_at = (bi * t + ti) * n * hd + ni * hd;
                    let heads_at = ((bi * n + ni) * t + ti) * hd;
                    let (src, dst) = if split { (rows_at, heads_at) } else { (heads_at, rows_at) };
                    let (xs, ys) = (&x[src..src + hd], &mut out[dst..dst + hd]);
                    match rotate {
                        None => ys.copy_from_slice(xs),
                        Some(_) => {
                            let (c, s) = (&cos[ti * half..(ti + 1) * half], &sin[ti * half..(ti + 1) * half]);
                            let (lo, hi) = xs.split_at(half);
                            let (ylo, yhi) = ys.split_at_mut(half);
                            for i in 0..half {
                                let si = sign * s[i];
                                ylo[i] = lo[i] * c[i] - hi[i] * si;
                                yhi[i] = hi[i] * c[i] + lo[i] * si;
                            }
                        }
                    }
                }
            }
        }
        let shape = if split { Shape::from((b, n, t, hd)) } else { Shape::from((b * t, n * hd)) };
        cpu(out, &shape)
    }
    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The inverse move; a rotation's transpose is the opposite rotation.
        let back = Heads { split: !self.split, rotate: self.rotate.map(|inv| !inv), ..*self };
        Ok((Some(dy.contiguous()?.apply_op3_no_bwd(cos, sin, &back)?), None, None))
    }
}

// ---------------------------------------------------------------- causal softmax

/// `softmax(scale · s + mask)` over the last dimension of attention scores
/// (…, t, t), where the mask hides keys after the query (j > i).
pub fn causal_softmax(scores: &Tensor, scale: f64) -> Result<Tensor> {
    if fused(&[scores]) {
        scores.contiguous()?.apply_op1(CausalSoftmax { scale: scale as f32 })
    } else {
        causal_softmax_reference(scores, scale)
    }
}

pub fn causal_softmax_reference(scores: &Tensor, scale: f64) -> Result<Tensor> {
    let t = scores.dim(D::Minus1)?;
    let m: Vec<f32> = (0..t).flat_map(|i| (0..t).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
    let mask = Tensor::from_vec(m, (t, t), scores.device())?.to_dtype(scores.dtype())?;
    candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1)
}

struct CausalSoftmax {
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "onebit-causal-softmax"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let dims = l.dims();
        let n = dims.len();
        if n < 2 || dims[n - 1] != dims[n - 2] {
            candle_core::bail!("{}: expected (…, t, t) scores, got {dims:?}", self.name());
        }
        let t = dims[n - 1];
        let mut out = vec![0.0f32; x.len()];
        for (row_i, (xr, yr)) in x.chunks_exact(t).zip(out.chunks_exact_mut(t)).enumerate() {
            let visible = row_i % t + 1;
            let m = xr[..visible].iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v * self.scale));
            let mut sum = 0.0f32;
            for j in 0..visible {
                let e = exp_fast(xr[j] * self.scale - m);
                yr[j] = e;
                sum += e;
            }
            for v in &mut yr[..visible] {
                *v /= sum;
            }
        }
        cpu(out, l.shape())
    }
    fn bwd(&self, _s: &Tensor, p: &Tensor, dp: &Tensor) -> Result<Option<Tensor>> {
        let t = p.dim(D::Minus1)?;
        let ds = with_data(p, self.name(), |p| {
            with_data(dp, self.name(), |dp| {
                let mut ds = Vec::with_capacity(p.len());
                for (pr, dr) in p.chunks_exact(t).zip(dp.chunks_exact(t)) {
                    let dot: f32 = pr.iter().zip(dr).map(|(&a, &b)| a * b).sum();
                    ds.extend(pr.iter().zip(dr).map(|(&a, &b)| self.scale * a * (b - dot)));
                }
                ds
            })
        })??;
        Ok(Some(tensor_like(ds, p)?))
    }
}

// ---------------------------------------------------------------- SwiGLU

/// `silu(gate) ⊙ up` (LLaMA's MLP activation).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if fused(&[gate, up]) && gate.dims() == up.dims() {
        gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
    } else {
        swiglu_reference(gate, up)
    }
}

pub fn swiglu_reference(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    gate.silu()? * up
}

struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "onebit-swiglu"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (g, u) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        if l1.dims() != l2.dims() {
            candle_core::bail!("{}: gate {:?} and up {:?} differ", self.name(), l1.dims(), l2.dims());
        }
        cpu(g.iter().zip(u).map(|(&a, &b)| a * sigmoid(a) * b).collect(), l1.shape())
    }
    fn bwd(&self, gate: &Tensor, up: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let name = self.name();
        let (dg, du) = with_data(gate, name, |g| {
            with_data(up, name, |u| {
                with_data(dy, name, |dy| {
                    let mut dg = vec![0.0f32; g.len()];
                    let mut du = vec![0.0f32; g.len()];
                    for ((((&a, &b), &d), og), ou) in g.iter().zip(u).zip(dy).zip(&mut dg).zip(&mut du) {
                        let s = sigmoid(a);
                        *og = d * b * s * (1.0 + a * (1.0 - s));
                        *ou = d * a * s;
                    }
                    (dg, du)
                })
            })
        })???;
        Ok((Some(tensor_like(dg, gate)?), Some(tensor_like(du, up)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn randn(seed: u64, shape: &[usize], scale: f32) -> Tensor {
        // A fixed-seed LCG keeps the tests independent of candle's RNG.
        let n: usize = shape.iter().product();
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v: Vec<f32> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
            })
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    /// Values and gradients of `fused` and `reference` on the same inputs, with
    /// a random upstream gradient (a weighted sum of the output).
    fn check(
        inputs: &[Tensor],
        fused: impl Fn(&[Tensor]) -> Result<Tensor>,
        reference: impl Fn(&[Tensor]) -> Result<Tensor>,
        tol: f32,
    ) {
        let run = |f: &dyn Fn(&[Tensor]) -> Result<Tensor>| {
            let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = f(&ts).unwrap();
            let w = randn(99, y.dims(), 1.0);
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let gs: Vec<Tensor> = ts.iter().map(|t| grads.get(t).expect("gradient").clone()).collect();
            (y, gs)
        };
        let (yf, gf) = run(&fused);
        let (yr, gr) = run(&reference);
        let d = max_diff(&yf, &yr);
        assert!(d <= tol, "forward differs by {d}");
        for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
            let d = max_diff(a, b);
            let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap().max(1.0);
            assert!(d <= tol * scale, "gradient of input {i} differs by {d} (scale {scale})");
        }
    }

    #[test]
    fn scale_columns_matches_broadcast_mul() {
        let ins = [randn(1, &[2, 5, 7], 2.0), randn(2, &[7], 1.5)];
        check(&ins, |t| scale_columns(&t[0], &t[1]), |t| scale_columns_reference(&t[0], &t[1]), 1e-6);
    }

    #[test]
    fn onebit_matmul_matches_composed_ops() {
        // Odd sizes; weights straddling zero so both signs and the STE slope vary.
        let ins = [randn(30, &[13, 11], 2.0), randn(31, &[7, 11], 1.5), randn(32, &[11], 1.0)];
        check(&ins, |t| onebit_matmul(&t[0], &t[1], &t[2], 1.001), |t| onebit_matmul_reference(&t[0], &t[1], &t[2]), 1e-5);
    }

    #[test]
    fn scale_layer_norm_matches_composed_ops() {
        let ins = [randn(3, &[6, 33], 3.0), randn(4, &[33], 0.1)];
        check(&ins, |t| scale_layer_norm(&t[0], &t[1], 1e-5), |t| scale_layer_norm_reference(&t[0], &t[1], 1e-5), 2e-4);
        // Tiny h: the eps term dominates the variance.
        let ins = [randn(5, &[4, 9], 1.0), randn(6, &[9], 1e-4)];
        check(&ins, |t| scale_layer_norm(&t[0], &t[1], 1e-5), |t| scale_layer_norm_reference(&t[0], &t[1], 1e-5), 2e-4);
    }

    #[test]
    fn rms_norm_matches_rms_norm_slow() {
        let ins = [randn(7, &[2, 3, 16], 2.0), randn(8, &[16], 1.0)];
        check(&ins, |t| rms_norm(&t[0], &t[1], 1e-5), |t| rms_norm_reference(&t[0], &t[1], 1e-5), 1e-5);
    }

    #[test]
    fn split_and_merge_heads_match_reshape_transpose_rope() {
        let (b, t, n, hd) = (2, 5, 3, 6);
        let a = randn(40, &[9, hd / 2], 3.0);
        let (cos, sin) = (a.cos().unwrap(), a.sin().unwrap());
        let ins = [randn(41, &[b * t, n * hd], 1.0)];
        let (c1, s1) = (cos.clone(), sin.clone());
        check(
            &ins,
            |x| split_heads(&x[0], (b, t, n, hd), Some((&cos, &sin))),
            |x| rope_reference(&x[0].reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?, &c1.narrow(0, 0, t)?, &s1.narrow(0, 0, t)?),
            1e-6,
        );
        check(&ins, |x| split_heads(&x[0], (b, t, n, hd), None), |x| x[0].reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous(), 0.0);
        let heads = [randn(42, &[b, n, t, hd], 1.0)];
        check(&heads, |x| merge_heads(&x[0]), |x| x[0].transpose(1, 2)?.reshape((b * t, n * hd)), 0.0);
    }

    #[test]
    fn causal_softmax_matches_mask_and_softmax() {
        let ins = [randn(11, &[2, 3, 6, 6], 4.0)];
        check(&ins, |t| causal_softmax(&t[0], 0.35), |t| causal_softmax_reference(&t[0], 0.35), 1e-6);
        // Masked positions are exactly zero and rows sum to one.
        let p = causal_softmax(&ins[0], 0.35).unwrap();
        let v = p.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (r, row) in v.chunks(6).enumerate() {
            let i = r % 6;
            assert!(row[i + 1..].iter().all(|&x| x == 0.0));
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn exp_fast_is_within_two_ulp() {
        let mut worst = 0.0f64;
        for i in 0..=2_000_000 {
            let x = -87.0 + 175.0 * i as f64 / 2_000_000.0;
            let (got, want) = (exp_fast(x as f32) as f64, (x as f32 as f64).exp());
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
        }
        // 2 ulp of f32 is 2·2⁻²³ relative at worst.
        assert!(worst <= 2.0 * f32::EPSILON as f64, "worst relative error {worst:e}");
        assert_eq!(exp_fast(0.0), 1.0);
        assert!(exp_fast(-1000.0) > 0.0 && exp_fast(1000.0).is_finite());
    }

    #[test]
    fn sign_ste_grad_matches_tanh_formula() {
        let w = randn(17, &[5, 9], 3.0);
        let g = randn(18, &[5, 9], 1.0);
        let fused = sign_ste_grad(&w, &g, 1.001).unwrap();
        let want = g.mul(&(w.tanh().unwrap().sqr().unwrap().neg().unwrap() + 1.001).unwrap()).unwrap();
        assert!(max_diff(&fused, &want) < 1e-6);
    }

    #[test]
    fn swiglu_matches_silu_mul() {
        let ins = [randn(12, &[3, 4, 10], 6.0), randn(13, &[3, 4, 10], 2.0)];
        check(&ins, |t| swiglu(&t[0], &t[1]), |t| swiglu_reference(&t[0], &t[1]), 1e-5);
    }

    /// A whole OneBit student decoder (GQA, untied head, odd sizes): logits,
    /// hidden states and the gradient of every parameter agree between the
    /// fused kernels and the composed reference ops.
    #[test]
    fn whole_decoder_matches_reference_ops() {
        use crate::{LinearKind, Llama, LlamaConfig};
        use candle_nn::{VarBuilder, VarMap};
        let mut c = LlamaConfig::tiny(37, 24, 2, 4, 2);
        c.intermediate_size = 40;
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let model = Llama::from_var_builder(&c, VarBuilder::from_varmap(&varmap, DType::F32, &dev), LinearKind::OneBitTraining, 1e-5).unwrap();
        // g and h away from their initial 1 so their gradients are not degenerate.
        for (name, var) in varmap.data().lock().unwrap().iter() {
            if name.ends_with(".g") || name.ends_with(".h") {
                var.set(&(randn(name.len() as u64, var.dims(), 0.5) + 1.0).unwrap()).unwrap();
            }
        }
        let ids = Tensor::new(&[[1u32, 5, 17, 36, 0, 9, 9], [2, 3, 4, 5, 6, 7, 8]], &dev).unwrap();
        let run = |fused: bool| {
            set_fused_on_this_thread(fused);
            let out = model.forward_with_hidden(&ids).unwrap();
            set_fused_on_this_thread(true);
            let mut loss = (&out.logits * randn(20, out.logits.dims(), 1.0)).unwrap().sum_all().unwrap();
            for (i, h) in out.hidden_states.iter().enumerate() {
                loss = (loss + (h * randn(21 + i as u64, h.dims(), 1.0)).unwrap().sum_all().unwrap()).unwrap();
            }
            let grads = loss.backward().unwrap();
            let vars = varmap.data().lock().unwrap();
            let mut gs: Vec<(String, Tensor)> =
                vars.iter().map(|(n, v)| (n.clone(), grads.get(v.as_tensor()).expect(n).clone())).collect();
            gs.sort_by(|a, b| a.0.cmp(&b.0));
            (out.logits, gs)
        };
        let (lf, gf) = run(true);
        let (lr, gr) = run(false);
        assert!(max_diff(&lf, &lr) < 1e-4, "logits differ by {}", max_diff(&lf, &lr));
        // embed, lm_head, final norm; per block two norms and seven (latent, g, h).
        assert_eq!(gf.len(), 3 + 2 * (2 + 7 * 3));
        for ((name, a), (_, b)) in gf.iter().zip(&gr) {
            let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap().max(1e-3);
            let d = max_diff(a, b);
            assert!(d <= 1e-3 * scale, "gradient of {name} differs by {d} (scale {scale})");
        }
    }

    /// The fused ops refuse inputs of the wrong shape instead of reading past them.
    #[test]
    fn shape_errors_are_reported() {
        let x = randn(14, &[3, 4], 1.0);
        assert!(scale_columns(&x, &randn(15, &[5], 1.0)).is_err());
        assert!(scale_layer_norm(&x, &randn(15, &[3], 1.0), 1e-5).is_err());
        assert!(rms_norm(&x, &randn(15, &[2], 1.0), 1e-5).is_err());
        assert!(causal_softmax(&randn(16, &[2, 3, 4], 1.0), 1.0).is_err());
    }
}
