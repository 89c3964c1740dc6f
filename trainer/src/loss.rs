//! The distillation loss, as fused candle custom ops with hand-written backward
//! passes (one pass over the data each way instead of a dozen small ops).
//!
//! - [`kl_div`]: KL(teacher ‖ student) of the next-token distributions, summed
//!   over the vocabulary and averaged over tokens: PyTorch's
//!   `kl_div(log_softmax(student), softmax(teacher), reduction='batchmean')`
//!   on logits flattened to (tokens, vocab). The official OneBit code does NOT
//!   flatten: its `batchmean` on 3-D (batch, tokens, vocab) logits divides by
//!   the batch size only, i.e. sums over each sequence's tokens; that is
//!   [`kl_div_per_sequence`] (= `kl_div` × tokens per sequence).
//! - [`hidden_loss`]: the mean over tokens of ‖s/‖s‖ − t/‖t‖‖² (L2 normalisation
//!   along the hidden dimension, PyTorch's `F.normalize` with eps 1e-12).
//! - [`distill_loss`]: per-token KL + α · Σ over layers of the hidden-state loss
//!   (this project's small-model recipe); [`distill_loss_official`]:
//!   `kd_loss_scale` · per-sequence KL + α · Σ hidden-state loss (the official
//!   code, `kd_loss_scale` = 0.01).
//!
//! The teacher side never gets a gradient (it is a fixed target). Plain candle
//! versions ([`kl_div_unfused`], [`hidden_loss_unfused`]) define the same maths
//! with autograd; the tests check the fused ops against them.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// Epsilon of the L2 normalisation (PyTorch `F.normalize` default).
pub const NORMALIZE_EPS: f32 = 1e-12;

fn rows_of<'a>(s: &'a CpuStorage, l: &Layout, name: &str) -> Result<(&'a [f32], usize, usize)> {
    let dims = l.dims();
    if dims.len() != 2 {
        candle_core::bail!("{name}: expected a 2-D (tokens, features) tensor, got {dims:?}");
    }
    let data = s.as_slice::<f32>()?;
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{name}: input must be contiguous")))?;
    Ok((&data[start..end], dims[0], dims[1]))
}

fn check_same(name: &str, a: &Layout, b: &Layout) -> Result<()> {
    if a.dims() != b.dims() {
        candle_core::bail!("{name}: student {:?} and teacher {:?} differ in shape", a.dims(), b.dims());
    }
    Ok(())
}

/// Row-wise log-sum-exp of one row.
#[inline]
fn log_sum_exp(row: &[f32]) -> f32 {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let s: f32 = row.iter().map(|&x| (x - m).exp()).sum();
    m + s.ln()
}

/// Split `rows` rows across up to two threads (the machines here have 2 cores;
/// more threads than rows of work would only add overhead).
fn par_rows<T: Send>(rows: usize, f: impl Fn(std::ops::Range<usize>) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if threads <= 1 || rows < 64 {
        return vec![f(0..rows)];
    }
    let chunk = rows.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..threads).map(|t| (t * chunk).min(rows)..((t + 1) * chunk).min(rows)).map(|r| s.spawn(|| f(r))).collect();
        handles.into_iter().map(|h| h.join().expect("loss worker panicked")).collect()
    })
}

struct KlDiv;

impl CustomOp2 for KlDiv {
    fn name(&self) -> &'static str {
        "onebit-kl-div"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        check_same(self.name(), l1, l2)?;
        let (s, m, v) = rows_of(s1, l1, self.name())?;
        let (t, _, _) = rows_of(s2, l2, self.name())?;
        let parts = par_rows(m, |range| {
            let mut acc = 0.0f64;
            for r in range {
                let (sr, tr) = (&s[r * v..(r + 1) * v], &t[r * v..(r + 1) * v]);
                let (ls, lt) = (log_sum_exp(sr), log_sum_exp(tr));
                let mut row = 0.0f32;
                for (&a, &b) in sr.iter().zip(tr) {
                    let log_pt = b - lt;
                    row += log_pt.exp() * (log_pt - (a - ls));
                }
                acc += row as f64;
            }
            acc
        });
        let loss = (parts.iter().sum::<f64>() / m.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }
    fn bwd(&self, s: &Tensor, t: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = s.apply_op2_no_bwd(t, &KlDivGrad)?;
        Ok((Some(g.broadcast_mul(grad)?), None))
    }
}

/// d KL / d student logits = (softmax(s) − softmax(t)) / tokens.
struct KlDivGrad;

impl CustomOp2 for KlDivGrad {
    fn name(&self) -> &'static str {
        "onebit-kl-div-grad"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (s, m, v) = rows_of(s1, l1, self.name())?;
        let (t, _, _) = rows_of(s2, l2, self.name())?;
        let inv_m = 1.0 / m.max(1) as f32;
        let parts = par_rows(m, |range| {
            let mut out = Vec::with_capacity(range.len() * v);
            for r in range {
                let (sr, tr) = (&s[r * v..(r + 1) * v], &t[r * v..(r + 1) * v]);
                let (ls, lt) = (log_sum_exp(sr), log_sum_exp(tr));
                out.extend(sr.iter().zip(tr).map(|(&a, &b)| ((a - ls).exp() - (b - lt).exp()) * inv_m));
            }
            out
        });
        Ok((CpuStorage::F32(parts.concat()), Shape::from((m, v))))
    }
}

struct HiddenLoss;

impl CustomOp2 for HiddenLoss {
    fn name(&self) -> &'static str {
        "onebit-hidden-loss"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        check_same(self.name(), l1, l2)?;
        let (s, m, d) = rows_of(s1, l1, self.name())?;
        let (t, _, _) = rows_of(s2, l2, self.name())?;
        let parts = par_rows(m, |range| {
            let mut acc = 0.0f64;
            for r in range {
                let (sr, tr) = (&s[r * d..(r + 1) * d], &t[r * d..(r + 1) * d]);
                let ns = 1.0 / norm(sr).max(NORMALIZE_EPS);
                let nt = 1.0 / norm(tr).max(NORMALIZE_EPS);
                acc += sr.iter().zip(tr).map(|(&a, &b)| (a * ns - b * nt).powi(2)).sum::<f32>() as f64;
            }
            acc
        });
        let loss = (parts.iter().sum::<f64>() / m.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }
    fn bwd(&self, s: &Tensor, t: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = s.apply_op2_no_bwd(t, &HiddenLossGrad)?;
        Ok((Some(g.broadcast_mul(grad)?), None))
    }
}

#[inline]
fn norm(x: &[f32]) -> f32 {
    x.iter().map(|a| a * a).sum::<f32>().sqrt()
}

/// With u = s/‖s‖ and δ = u − t/‖t‖: d/ds ‖δ‖² = 2(δ − u(u·δ))/‖s‖, over tokens.
struct HiddenLossGrad;

impl CustomOp2 for HiddenLossGrad {
    fn name(&self) -> &'static str {
        "onebit-hidden-loss-grad"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (s, m, d) = rows_of(s1, l1, self.name())?;
        let (t, _, _) = rows_of(s2, l2, self.name())?;
        let scale = 2.0 / m.max(1) as f32;
        let parts = par_rows(m, |range| {
            let mut out = Vec::with_capacity(range.len() * d);
            for r in range {
                let (sr, tr) = (&s[r * d..(r + 1) * d], &t[r * d..(r + 1) * d]);
                let n_s = norm(sr);
                let inv_s = 1.0 / n_s.max(NORMALIZE_EPS);
                let inv_t = 1.0 / norm(tr).max(NORMALIZE_EPS);
                // Below eps the normalisation is a plain scaling by 1/eps (no projection).
                let project = n_s > NORMALIZE_EPS;
                let u_dot_delta: f32 =
                    if project { sr.iter().zip(tr).map(|(&a, &b)| a * inv_s * (a * inv_s - b * inv_t)).sum() } else { 0.0 };
                out.extend(sr.iter().zip(tr).map(|(&a, &b)| {
                    let u = a * inv_s;
                    (u - b * inv_t - u * u_dot_delta) * inv_s * scale
                }));
            }
            out
        });
        Ok((CpuStorage::F32(parts.concat()), Shape::from((m, d))))
    }
}

struct CrossEntropy;

fn targets_of<'a>(s: &'a CpuStorage, l: &Layout, rows: usize, vocab: usize) -> Result<&'a [u32]> {
    let t = s.as_slice::<u32>()?;
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("cross-entropy: targets must be contiguous".into()))?;
    if b - a != rows {
        candle_core::bail!("cross-entropy: {} targets for {rows} rows of logits", b - a);
    }
    let t = &t[a..b];
    if let Some(bad) = t.iter().find(|&&x| x as usize >= vocab) {
        candle_core::bail!("cross-entropy: target {bad} outside the vocabulary ({vocab})");
    }
    Ok(t)
}

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "onebit-cross-entropy"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (s, m, v) = rows_of(s1, l1, self.name())?;
        let t = targets_of(s2, l2, m, v)?;
        let parts = par_rows(m, |range| {
            range.map(|r| (log_sum_exp(&s[r * v..(r + 1) * v]) - s[r * v + t[r] as usize]) as f64).sum::<f64>()
        });
        let loss = (parts.iter().sum::<f64>() / m.max(1) as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }
    fn bwd(&self, s: &Tensor, t: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = s.apply_op2_no_bwd(t, &CrossEntropyGrad)?;
        Ok((Some(g.broadcast_mul(grad)?), None))
    }
}

/// d CE / d logits = (softmax(s) − onehot(target)) / tokens.
struct CrossEntropyGrad;

impl CustomOp2 for CrossEntropyGrad {
    fn name(&self) -> &'static str {
        "onebit-cross-entropy-grad"
    }
    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (s, m, v) = rows_of(s1, l1, self.name())?;
        let t = targets_of(s2, l2, m, v)?;
        let inv_m = 1.0 / m.max(1) as f32;
        let parts = par_rows(m, |range| {
            let mut out = Vec::with_capacity(range.len() * v);
            for r in range {
                let sr = &s[r * v..(r + 1) * v];
                let ls = log_sum_exp(sr);
                let base = out.len();
                out.extend(sr.iter().map(|&a| (a - ls).exp() * inv_m));
                out[base + t[r] as usize] -= inv_m;
            }
            out
        });
        Ok((CpuStorage::F32(parts.concat()), Shape::from((m, v))))
    }
}

/// Mean next-token cross-entropy; logits (..., vocab), targets (...) u32.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let s = tokens_by_features(logits)?;
    let t = targets.flatten_all()?.to_dtype(DType::U32)?.contiguous()?;
    if s.device().is_cpu() {
        s.apply_op2(&t, CrossEntropy)
    } else {
        candle_nn::loss::cross_entropy(&s, &t)
    }
}

/// Flatten (..., F) to (tokens, F), contiguous f32.
fn tokens_by_features(x: &Tensor) -> Result<Tensor> {
    let f = x.dim(D::Minus1)?;
    x.reshape(((), f))?.to_dtype(DType::F32)?.contiguous()
}

/// KL(teacher ‖ student), mean over tokens. Logits: (..., vocab). Only the
/// student side carries a gradient.
pub fn kl_div(student_logits: &Tensor, teacher_logits: &Tensor) -> Result<Tensor> {
    let s = tokens_by_features(student_logits)?;
    let t = tokens_by_features(&teacher_logits.detach())?;
    if s.device().is_cpu() {
        s.apply_op2(&t, KlDiv)
    } else {
        kl_div_unfused(&s, &t)
    }
}

/// Mean over tokens of ‖s/‖s‖ − t/‖t‖‖². Hidden states: (..., hidden).
pub fn hidden_loss(student_hidden: &Tensor, teacher_hidden: &Tensor) -> Result<Tensor> {
    let s = tokens_by_features(student_hidden)?;
    let t = tokens_by_features(&teacher_hidden.detach())?;
    if s.device().is_cpu() {
        s.apply_op2(&t, HiddenLoss)
    } else {
        hidden_loss_unfused(&s, &t)
    }
}

/// KL(teacher ‖ student) summed over each sequence's tokens, averaged over
/// sequences: the official code's `kl_div(..., 'batchmean')` on 3-D logits
/// (batch, tokens, vocab). Equal to [`kl_div`] × tokens per sequence.
pub fn kl_div_per_sequence(student_logits: &Tensor, teacher_logits: &Tensor) -> Result<Tensor> {
    let (_, tokens, _) = student_logits.dims3()?;
    kl_div(student_logits, teacher_logits)? * tokens as f64
}

/// The parts of the distillation loss (scalars).
pub struct DistillLoss {
    pub total: Tensor,
    pub kl: Tensor,
    pub hidden: Tensor,
}

/// KL + α · Σ_layers hidden-state loss. `student_hidden` and `teacher_hidden`
/// hold one tensor per layer, in the same order.
pub fn distill_loss(
    student_logits: &Tensor,
    teacher_logits: &Tensor,
    student_hidden: &[Tensor],
    teacher_hidden: &[Tensor],
    alpha: f64,
) -> Result<DistillLoss> {
    if student_hidden.len() != teacher_hidden.len() {
        candle_core::bail!(
            "distill_loss: {} student hidden states but {} teacher hidden states",
            student_hidden.len(),
            teacher_hidden.len()
        );
    }
    let kl = kl_div(student_logits, teacher_logits)?;
    let mut hidden = Tensor::zeros((), DType::F32, kl.device())?;
    for (s, t) in student_hidden.iter().zip(teacher_hidden) {
        hidden = (hidden + hidden_loss(s, t)?)?;
    }
    let total = if alpha == 0.0 { kl.clone() } else { (&kl + (&hidden * alpha)?)? };
    Ok(DistillLoss { total, kl, hidden })
}

/// The official code's loss: `kd_loss_scale` · per-sequence KL (3-D logits) + α ·
/// Σ over the given layers of the hidden-state loss. `kl` in the result is the
/// scaled KL term.
pub fn distill_loss_official(
    student_logits: &Tensor,
    teacher_logits: &Tensor,
    student_hidden: &[Tensor],
    teacher_hidden: &[Tensor],
    alpha: f64,
    kd_loss_scale: f64,
) -> Result<DistillLoss> {
    let per_token = distill_loss(student_logits, teacher_logits, student_hidden, teacher_hidden, alpha)?;
    let (_, tokens, _) = student_logits.dims3()?;
    let kl = (per_token.kl * (tokens as f64 * kd_loss_scale))?;
    let total = if alpha == 0.0 { kl.clone() } else { (&kl + (&per_token.hidden * alpha)?)? };
    Ok(DistillLoss { total, kl, hidden: per_token.hidden })
}

/// KL(teacher ‖ student) with plain candle ops (the definition; any device).
pub fn kl_div_unfused(student_logits: &Tensor, teacher_logits: &Tensor) -> Result<Tensor> {
    let s = tokens_by_features(student_logits)?;
    let t = tokens_by_features(&teacher_logits.detach())?;
    let m = s.dim(0)? as f64;
    let log_ps = candle_nn::ops::log_softmax(&s, D::Minus1)?;
    let log_pt = candle_nn::ops::log_softmax(&t, D::Minus1)?;
    (log_pt.exp()? * (log_pt - log_ps)?)?.sum_all()? / m
}

/// The hidden-state loss with plain candle ops (the definition; any device).
pub fn hidden_loss_unfused(student_hidden: &Tensor, teacher_hidden: &Tensor) -> Result<Tensor> {
    let s = tokens_by_features(student_hidden)?;
    let t = tokens_by_features(&teacher_hidden.detach())?;
    let m = s.dim(0)? as f64;
    let normalize = |x: &Tensor| -> Result<Tensor> {
        let n = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(NORMALIZE_EPS, f32::MAX)?;
        x.broadcast_div(&n)
    };
    (normalize(&s)? - normalize(&t)?)?.sqr()?.sum_all()? / m
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn scalar(t: &Tensor) -> f32 {
        t.to_scalar::<f32>().unwrap()
    }

    /// The official code's KL is `batchmean` over 3-D logits: the sum over every
    /// token and vocabulary entry, divided by the batch size only.
    #[test]
    fn per_sequence_kl_is_the_official_batchmean() {
        let (b, t, v) = (2, 5, 7);
        let s = pseudo((b, t, v), 11, 5.0);
        let te = pseudo((b, t, v), 12, 5.0);
        // Definition, element by element: Σ p_t (log p_t − log p_s) / batch.
        let ls = candle_nn::ops::log_softmax(&s, D::Minus1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let lt = candle_nn::ops::log_softmax(&te, D::Minus1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: f64 = ls.iter().zip(&lt).map(|(&a, &c)| (c as f64).exp() * (c as f64 - a as f64)).sum::<f64>() / b as f64;
        let got = scalar(&kl_div_per_sequence(&s, &te).unwrap()) as f64;
        assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "{got} vs {want}");
        // It is the per-token mean times the tokens per sequence, not the per-token mean.
        let per_token = scalar(&kl_div(&s, &te).unwrap()) as f64;
        assert!((got - per_token * t as f64).abs() < 1e-5 * got.abs());
        // The official total: 0.01 · that + α · hidden.
        let (sh, th) = (pseudo((b, t, 4), 13, 2.0), pseudo((b, t, 4), 14, 2.0));
        let l = distill_loss_official(&s, &te, &[sh.clone()], &[th.clone()], 1.0, 0.01).unwrap();
        let hidden = scalar(&hidden_loss(&sh, &th).unwrap()) as f64;
        assert!((scalar(&l.total) as f64 - (0.01 * want + hidden)).abs() < 1e-5);
        assert!((scalar(&l.kl) as f64 - 0.01 * want).abs() < 1e-6);
    }

    #[test]
    fn hand_computed_case() {
        // Token 0: teacher logits [0, ln 3] → p_t = [1/4, 3/4]; student [0, 0] → [1/2, 1/2].
        //   KL = 1/4·ln(1/2) + 3/4·ln(3/2) = 0.130812...
        // Token 1: identical logits → 0.  Mean over 2 tokens: 0.0654061...
        // Hidden (one layer): token 0 teacher [3, 4] → [0.6, 0.8], student [2, 0] → [1, 0]:
        //   ‖·‖² = 0.16 + 0.64 = 0.8; token 1 equal directions → 0. Mean: 0.4.
        // Total with α = 1: 0.4654061; with α = 0.5: 0.2654061.
        let dev = Device::Cpu;
        let ln3 = 3f32.ln();
        let s_logits = Tensor::new(&[[[0f32, 0.0], [1.0, 2.0]]], &dev).unwrap();
        let t_logits = Tensor::new(&[[[0f32, ln3], [1.0, 2.0]]], &dev).unwrap();
        let s_h = Tensor::new(&[[[2f32, 0.0], [1.0, 1.0]]], &dev).unwrap();
        let t_h = Tensor::new(&[[[3f32, 4.0], [5.0, 5.0]]], &dev).unwrap();
        let kl_expected = (0.25 * 0.5f64.ln() + 0.75 * 1.5f64.ln()) / 2.0;
        for (name, kl) in [("fused", kl_div(&s_logits, &t_logits)), ("unfused", kl_div_unfused(&s_logits, &t_logits))] {
            assert!((scalar(&kl.unwrap()) as f64 - kl_expected).abs() < 1e-6, "{name}");
        }
        assert!((scalar(&hidden_loss(&s_h, &t_h).unwrap()) - 0.4).abs() < 1e-6);
        assert!((scalar(&hidden_loss_unfused(&s_h, &t_h).unwrap()) - 0.4).abs() < 1e-6);
        let l = distill_loss(&s_logits, &t_logits, &[s_h.clone()], &[t_h.clone()], 1.0).unwrap();
        assert!((scalar(&l.total) as f64 - (kl_expected + 0.4)).abs() < 1e-6);
        let l = distill_loss(&s_logits, &t_logits, &[s_h.clone(), s_h.clone()], &[t_h.clone(), t_h.clone()], 0.5).unwrap();
        assert!((scalar(&l.total) as f64 - (kl_expected + 0.4)).abs() < 1e-6);
        assert!(distill_loss(&s_logits, &t_logits, &[s_h], &[], 1.0).is_err());
    }

    fn pseudo(shape: (usize, usize, usize), seed: u64, scale: f32) -> Tensor {
        let mut rng = crate::data::SplitMix64::new(seed);
        let v: Vec<f32> = (0..shape.0 * shape.1 * shape.2).map(|_| (rng.unit_f64() as f32 - 0.5) * scale).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn fused_matches_autograd_of_definition() {
        // Shapes with more than 64 rows exercise the threaded path.
        for (b, t, f) in [(1, 3, 5), (2, 40, 17), (3, 50, 65)] {
            let s0 = pseudo((b, t, f), 1, 6.0);
            let t0 = pseudo((b, t, f), 2, 6.0);
            for which in 0..2 {
                let sv = Var::from_tensor(&s0).unwrap();
                let sv2 = Var::from_tensor(&s0).unwrap();
                let (fused, plain) = if which == 0 {
                    (kl_div(sv.as_tensor(), &t0).unwrap(), kl_div_unfused(sv2.as_tensor(), &t0).unwrap())
                } else {
                    (hidden_loss(sv.as_tensor(), &t0).unwrap(), hidden_loss_unfused(sv2.as_tensor(), &t0).unwrap())
                };
                let (a, p) = (scalar(&fused), scalar(&plain));
                assert!((a - p).abs() <= 1e-5 * p.abs().max(1.0), "loss {which}: {a} vs {p}");
                let ga = (fused * 3.0).unwrap().backward().unwrap().get(sv.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let gp = (plain * 3.0).unwrap().backward().unwrap().get(sv2.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let max = gp.iter().fold(0f32, |m, x| m.max(x.abs()));
                for (x, y) in ga.iter().zip(&gp) {
                    assert!((x - y).abs() <= 1e-5 * max + 1e-8, "grad {which} {b}x{t}x{f}: {x} vs {y} (max {max})");
                }
            }
        }
    }

    #[test]
    fn fused_gradient_matches_finite_differences() {
        let s0 = pseudo((1, 4, 6), 7, 3.0);
        let t0 = pseudo((1, 4, 6), 8, 3.0);
        let base = s0.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for which in 0..2 {
            let f = |v: &[f32]| -> f64 {
                let x = Tensor::from_slice(v, (1, 4, 6), &Device::Cpu).unwrap();
                let l = if which == 0 { kl_div(&x, &t0) } else { hidden_loss(&x, &t0) };
                scalar(&l.unwrap()) as f64
            };
            let sv = Var::from_tensor(&s0).unwrap();
            let l = if which == 0 { kl_div(sv.as_tensor(), &t0) } else { hidden_loss(sv.as_tensor(), &t0) };
            let g = l.unwrap().backward().unwrap().get(sv.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for i in 0..base.len() {
                let h = 1e-2f32;
                let (mut up, mut dn) = (base.clone(), base.clone());
                up[i] += h;
                dn[i] -= h;
                let fd = (f(&up) - f(&dn)) / (2.0 * h as f64);
                assert!((fd - g[i] as f64).abs() < 2e-3, "loss {which} index {i}: fd {fd} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn teacher_gets_no_gradient_and_identical_inputs_give_zero() {
        let s0 = pseudo((2, 5, 9), 3, 4.0);
        let tv = Var::from_tensor(&s0).unwrap();
        let sv = Var::from_tensor(&s0).unwrap();
        let l = distill_loss(sv.as_tensor(), tv.as_tensor(), &[sv.as_tensor().clone()], &[tv.as_tensor().clone()], 1.0).unwrap();
        assert!(scalar(&l.total).abs() < 1e-6);
        let grads = l.total.backward().unwrap();
        assert!(grads.get(tv.as_tensor()).is_none());
        let g = grads.get(sv.as_tensor()).unwrap().abs().unwrap().max_all().unwrap();
        assert!(scalar(&g) < 1e-5);
    }

    #[test]
    fn cross_entropy_matches_candle_nn() {
        let logits = pseudo((2, 40, 11), 5, 8.0);
        let targets: Vec<u32> = (0..80).map(|i| (i * 7 % 11) as u32).collect();
        let targets = Tensor::from_vec(targets, (2, 40), &Device::Cpu).unwrap();
        let v1 = Var::from_tensor(&logits).unwrap();
        let v2 = Var::from_tensor(&logits).unwrap();
        let a = cross_entropy(v1.as_tensor(), &targets).unwrap();
        let b = candle_nn::loss::cross_entropy(&v2.as_tensor().reshape((80, 11)).unwrap(), &targets.flatten_all().unwrap()).unwrap();
        assert!((scalar(&a) - scalar(&b)).abs() < 1e-5);
        let ga = a.backward().unwrap().get(v1.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let gb = b.backward().unwrap().get(v2.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (x, y) in ga.iter().zip(&gb) {
            assert!((x - y).abs() < 1e-6);
        }
        // Hand case: uniform logits over 4 classes → ln 4.
        let u = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::new(&[2u32], &Device::Cpu).unwrap();
        assert!((scalar(&cross_entropy(&u, &t).unwrap()) - 4f32.ln()).abs() < 1e-6);
        assert!(cross_entropy(&u, &Tensor::new(&[4u32], &Device::Cpu).unwrap()).is_err());
    }
}
