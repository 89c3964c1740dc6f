//! The bit-exact software reference of docs/numerics.md, and the float OneBit
//! layer it approximates.
//!
//! `integer_forward` is the oracle every simulator is checked against. It works
//! on packed sign bits directly: Σ_k s_k·lane_k = T - 2·Σ_{bit k = 1} lane_k with
//! T = Σ_k lane_k; the inner sums come from the table kernels of
//! [`crate::kernel`], each equal to `integer_forward_naive` bit for bit.

use crate::config::ArrayConfig;
use crate::numerics::{
    layer_norm_in_place, output_unit, quantize_pow2, quantize_token, scale_output, lane_value,
    FixedVector, LAYER_NORM_EPS,
};
use crate::kernel::{resolve, sign_sums, BlockedSigns, KernelUnavailable};
pub use crate::kernel::{kernel_threads, SignKernel};
use crate::pack::{packed_row_bytes, padding_is_clear};
use ndarray::{Array2, ArrayView2};

/// Problems with a layer or its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReferenceError {
    #[error("{what}: expected {expected}, got {got}")]
    Shape { what: String, expected: String, got: String },
    #[error("{what}[{index}] = {value} is not finite")]
    NotFinite { what: String, index: usize, value: f32 },
    #[error("{what}[{index}] = {value} is outside the {bits}-bit range [{lo}, {hi}]")]
    OutOfRange { what: String, index: usize, value: i64, bits: u32, lo: i64, hi: i64 },
    #[error("K = {k} exceeds the array's max_k = {max_k}: the accumulators could overflow")]
    TooLarge { k: usize, max_k: usize },
    #[error("padding bits past K = {k} are set in the packed signs")]
    Padding { k: usize },
    #[error(transparent)]
    Kernel(#[from] KernelUnavailable),
}

fn shape_err(what: &str, expected: impl ToString, got: impl ToString) -> ReferenceError {
    ReferenceError::Shape { what: what.into(), expected: expected.to_string(), got: got.to_string() }
}

pub(crate) fn check_finite(what: &str, v: &[f32]) -> Result<(), ReferenceError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(ReferenceError::NotFinite { what: what.into(), index: i, value: v[i] }),
        None => Ok(()),
    }
}

/// A OneBit linear layer as stored in a model file: packed signs (N rows of
/// ceil(K/8) bytes), g (K) and h (N) in float.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedLayer {
    pub in_features: usize,
    pub out_features: usize,
    pub signs: Vec<u8>,
    pub g: Vec<f32>,
    pub h: Vec<f32>,
}

impl PackedLayer {
    /// Build and validate a layer (shapes, finite g and h, clear padding bits).
    pub fn new(
        in_features: usize,
        out_features: usize,
        signs: Vec<u8>,
        g: Vec<f32>,
        h: Vec<f32>,
    ) -> Result<Self, ReferenceError> {
        let l = PackedLayer { in_features, out_features, signs, g, h };
        l.validate()?;
        Ok(l)
    }

    /// Pack a dense N×K weight matrix with its g and h.
    pub fn from_dense(w: &[f32], n: usize, k: usize, g: Vec<f32>, h: Vec<f32>) -> Result<Self, ReferenceError> {
        if w.len() != n * k {
            return Err(shape_err("weights", format!("{n}×{k} = {}", n * k), w.len()));
        }
        Self::new(k, n, crate::pack::pack_signs(w, n, k), g, h)
    }

    pub fn validate(&self) -> Result<(), ReferenceError> {
        let (k, n) = (self.in_features, self.out_features);
        if k == 0 || n == 0 {
            return Err(shape_err("layer", "in_features, out_features >= 1", format!("{k}, {n}")));
        }
        let want = n * packed_row_bytes(k);
        if self.signs.len() != want {
            return Err(shape_err("signs", format!("{n}×{} = {want} bytes", packed_row_bytes(k)), self.signs.len()));
        }
        if self.g.len() != k {
            return Err(shape_err("g", k, self.g.len()));
        }
        if self.h.len() != n {
            return Err(shape_err("h", n, self.h.len()));
        }
        check_finite("g", &self.g)?;
        check_finite("h", &self.h)?;
        if !padding_is_clear(&self.signs, n, k) {
            return Err(ReferenceError::Padding { k });
        }
        Ok(())
    }

    /// Quantise g and h to the array's fixed point (docs/numerics.md, step 0).
    pub fn quantize(&self, cfg: &ArrayConfig) -> Result<QuantizedLayer, ReferenceError> {
        self.validate()?;
        if self.in_features > cfg.max_k {
            return Err(ReferenceError::TooLarge { k: self.in_features, max_k: cfg.max_k });
        }
        Ok(QuantizedLayer {
            in_features: self.in_features,
            out_features: self.out_features,
            signs: self.signs.clone(),
            g: quantize_pow2(&self.g, cfg.g_bits),
            h: quantize_pow2(&self.h, cfg.h_bits),
        })
    }
}

/// A layer in the accelerator's integer form.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedLayer {
    pub in_features: usize,
    pub out_features: usize,
    pub signs: Vec<u8>,
    pub g: FixedVector,
    pub h: FixedVector,
}

impl QuantizedLayer {
    /// Check shapes and that g_q and h_q fit their ports.
    pub fn validate(&self, cfg: &ArrayConfig) -> Result<(), ReferenceError> {
        let (k, n) = (self.in_features, self.out_features);
        if k > cfg.max_k {
            return Err(ReferenceError::TooLarge { k, max_k: cfg.max_k });
        }
        if self.signs.len() != n * packed_row_bytes(k) {
            return Err(shape_err("signs", n * packed_row_bytes(k), self.signs.len()));
        }
        if self.g.q.len() != k {
            return Err(shape_err("g_q", k, self.g.q.len()));
        }
        if self.h.q.len() != n {
            return Err(shape_err("h_q", n, self.h.q.len()));
        }
        check_port("g_q", &self.g.q, cfg.g_bits)?;
        check_port("h_q", &self.h.q, cfg.h_bits)?;
        Ok(())
    }
}

fn check_port(what: &str, v: &[i32], bits: u32) -> Result<(), ReferenceError> {
    let (lo, hi) = ArrayConfig::port_range(bits);
    match v.iter().position(|&x| (x as i64) < lo || (x as i64) > hi) {
        Some(i) => Err(ReferenceError::OutOfRange { what: what.into(), index: i, value: v[i] as i64, bits, lo, hi }),
        None => Ok(()),
    }
}

/// Quantised activations: M×K integers and one scale per token.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedTokens {
    pub xq: Array2<i32>,
    pub scales: Vec<f32>,
}

/// Per-token symmetric quantisation of an M×K activation matrix.
pub fn quantize_activations(x: ArrayView2<f32>, act_bits: u32) -> Result<QuantizedTokens, ReferenceError> {
    let (m, k) = x.dim();
    let mut xq = Array2::<i32>::zeros((m, k));
    let mut scales = Vec::with_capacity(m);
    let mut row = vec![0f32; k];
    for (i, (src, mut dst)) in x.rows().into_iter().zip(xq.rows_mut()).enumerate() {
        let src = match src.as_slice() {
            Some(s) => s,
            None => {
                row.iter_mut().zip(src.iter()).for_each(|(d, &s)| *d = s);
                &row
            }
        };
        if simd::any_non_finite(src) {
            let j = src.iter().position(|v| !v.is_finite()).expect("a non-finite value");
            return Err(ReferenceError::NotFinite { what: format!("activations row {i}"), index: j, value: src[j] });
        }
        scales.push(quantize_token(src, act_bits, dst.as_slice_mut().expect("standard layout")));
    }
    Ok(QuantizedTokens { xq, scales })
}

/// The definition, written as plainly as possible: one lane, one sign, one add
/// at a time. The fast kernel and every simulator are checked against it.
pub fn integer_forward_naive(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    xq: ArrayView2<i32>,
) -> Result<Array2<i64>, ReferenceError> {
    check_inputs(cfg, layer, xq)?;
    let (m, k) = xq.dim();
    let n = layer.out_features;
    let mut out = Array2::<i64>::zeros((m, n));
    for t in 0..m {
        let lanes: Vec<i64> = (0..k).map(|i| lane_value(cfg, xq[[t, i]] as i64, layer.g.q[i] as i64)).collect();
        for o in 0..n {
            let mut acc = 0i64;
            for (i, &l) in lanes.iter().enumerate() {
                let bit = crate::pack::sign_bit(&layer.signs, k, o, i);
                acc += crate::numerics::sign_of_bit(bit) * l;
            }
            out[[t, o]] = scale_output(cfg, acc, layer.h.q[o] as i64);
        }
    }
    Ok(out)
}

fn check_inputs(cfg: &ArrayConfig, layer: &QuantizedLayer, xq: ArrayView2<i32>) -> Result<(), ReferenceError> {
    layer.validate(cfg)?;
    check_activations(cfg, layer, xq)
}

fn check_activations(cfg: &ArrayConfig, layer: &QuantizedLayer, xq: ArrayView2<i32>) -> Result<(), ReferenceError> {
    let (_, k) = xq.dim();
    if k != layer.in_features {
        return Err(shape_err("activations", format!("K = {}", layer.in_features), format!("K = {k}")));
    }
    let (lo, hi) = ArrayConfig::port_range(cfg.act_bits);
    if let Some((i, &v)) = xq.iter().enumerate().find(|(_, &v)| (v as i64) < lo || (v as i64) > hi) {
        return Err(ReferenceError::OutOfRange { what: "x_q".into(), index: i, value: v as i64, bits: cfg.act_bits, lo, hi });
    }
    Ok(())
}

/// Bit-exact integer layer: the M×N output words the accelerator produces.
/// Runs the fastest exact kernel this CPU allows ([`SignKernel::Auto`]); a layer
/// run many times should be prepared once with [`PreparedLayer`].
pub fn integer_forward(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    xq: ArrayView2<i32>,
) -> Result<Array2<i64>, ReferenceError> {
    integer_forward_with(cfg, layer, xq, SignKernel::Auto)
}

/// [`integer_forward`] with a chosen sign-sum kernel (an error if it cannot run here).
pub fn integer_forward_with(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    xq: ArrayView2<i32>,
    kernel: SignKernel,
) -> Result<Array2<i64>, ReferenceError> {
    check_inputs(cfg, layer, xq)?;
    let kernel = resolve(kernel, cfg.lane_bits)?;
    Ok(output_words(cfg, layer, None, kernel, xq))
}

/// Inputs already checked: lanes, then the sign sums; `emit(t, o0, totals_t,
/// run)` receives S[t][o0..] in runs covering every output once, with T_t.
fn forward_checked(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    blocked: Option<&BlockedSigns>,
    kernel: SignKernel,
    xq: ArrayView2<i32>,
    mut emit: impl FnMut(usize, usize, i64, &[i32]),
) {
    let (m, k) = xq.dim();
    let n = layer.out_features;
    let groups = packed_row_bytes(k);
    let kp = groups * 8;
    // Lanes, zero-padded to whole bytes of signs; |lane| <= 2^15 - 1 since lane_bits <= 16.
    let mut lanes = vec![0i16; m * kp];
    let mut totals = vec![0i64; m];
    let mut row_buf = Vec::new();
    for (t, row) in xq.rows().into_iter().enumerate() {
        let xs = match row.as_slice() {
            Some(xs) => xs,
            None => {
                row_buf.clear();
                row_buf.extend(row.iter().copied());
                &row_buf
            }
        };
        totals[t] = simd::lanes(cfg, xs, &layer.g.q, &mut lanes[t * kp..t * kp + k]);
    }
    let sums = sign_sums(kernel, &lanes, m, &layer.signs, blocked, groups, n, cfg.lane_bits);
    sums.for_each_run(|t, o0, run| emit(t, o0, totals[t], run));
}

/// The M×N output words of `forward_checked`.
fn output_words(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    blocked: Option<&BlockedSigns>,
    kernel: SignKernel,
    xq: ArrayView2<i32>,
) -> Array2<i64> {
    let n = layer.out_features;
    let mut out = Array2::<i64>::zeros((xq.nrows(), n));
    let words = out.as_slice_mut().expect("standard layout");
    let h = &layer.h.q;
    forward_checked(cfg, layer, blocked, kernel, xq, |t, o0, total, run| {
        for ((w, &s), &hq) in words[t * n + o0..].iter_mut().zip(run).zip(&h[o0..]) {
            *w = scale_output(cfg, total - 2 * s as i64, hq as i64);
        }
    });
    out
}

/// Loops of the reference that LLVM vectorises well only with AVX2 (the
/// baseline x86-64 target has no 32-bit vector multiply or f32 rounding):
/// each is written once, generic, and also compiled with AVX2 enabled, which
/// runs where the CPU has it. Both give the same bits: integer operations,
/// and f64 operations on integers below 2^53, are exact in any order.
mod simd {
    use crate::config::ArrayConfig;
    use crate::numerics::lane_value;

    /// Step 1 for one token: `dst[i] = lane_value(x[i], g[i])`; returns Σ lanes.
    pub(super) fn lanes(cfg: &ArrayConfig, xs: &[i32], gs: &[i32], dst: &mut [i16]) -> i64 {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above.
            return unsafe { lanes_avx2(cfg, xs, gs, dst) };
        }
        lanes_generic(cfg, xs, gs, dst)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes_avx2(cfg: &ArrayConfig, xs: &[i32], gs: &[i32], dst: &mut [i16]) -> i64 {
        lanes_generic(cfg, xs, gs, dst)
    }

    /// `lane_value` in i32: |x_q·g_q| < 2^30 for ports of at most 16 bits, so
    /// the product and its rounding fit.
    #[inline(always)]
    fn lanes_generic(cfg: &ArrayConfig, xs: &[i32], gs: &[i32], dst: &mut [i16]) -> i64 {
        debug_assert!(cfg.act_bits <= 16 && cfg.g_bits <= 16);
        let shift = cfg.lane_shift();
        let half = if shift == 0 { 0 } else { 1i32 << (shift - 1) };
        let lim = ArrayConfig::sym_max(cfg.lane_bits) as i32;
        let mut total = 0i32;
        for ((d, &x), &g) in dst.iter_mut().zip(xs).zip(gs) {
            let l = ((x * g + half) >> shift).clamp(-lim, lim);
            debug_assert_eq!(l as i64, lane_value(cfg, x as i64, g as i64));
            *d = l as i16;
            // |Σ lanes| <= K · (2^15 - 1) < 2^31 needs K < 2^16; wider layers
            // take the i64 sum below.
            total = total.wrapping_add(l);
        }
        if dst.len() < 1 << 16 {
            total as i64
        } else {
            dst.iter().map(|&l| l as i64).sum()
        }
    }

    /// Steps 3 and 4 for a run of outputs of one token: the output word
    /// `scale_output(T − 2·S, h)` times the token's output unit, as f32.
    /// Computed in f64, exact while |acc·h_q| < 2^52 (`exact_in_f64`).
    pub(super) fn scaled_outputs(c: &OutputScale, total: i64, sums: &[i32], hs: &[i32], unit: f64, dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above.
            return unsafe { scaled_outputs_avx2(c, total, sums, hs, unit, dst) };
        }
        scaled_outputs_generic(c, total, sums, hs, unit, dst)
    }

    /// The constants of `scale_output` as f64, computed once per call.
    pub(super) struct OutputScale {
        half: f64,
        inv: f64,
        lim: f64,
    }

    impl OutputScale {
        pub(super) fn new(cfg: &ArrayConfig) -> Self {
            let shift = cfg.h_shift();
            OutputScale {
                half: if shift == 0 { 0.0 } else { (shift as f64 - 1.0).exp2() },
                inv: (-(shift as f64)).exp2(),
                lim: ArrayConfig::sym_max(cfg.out_bits) as f64,
            }
        }
    }

    /// Whether any value is NaN or ±inf (|v|'s bit pattern at least inf's).
    pub(super) fn any_non_finite(v: &[f32]) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above.
            return unsafe { any_non_finite_avx2(v) };
        }
        any_non_finite_generic(v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn any_non_finite_avx2(v: &[f32]) -> bool {
        any_non_finite_generic(v)
    }

    #[inline(always)]
    fn any_non_finite_generic(v: &[f32]) -> bool {
        v.iter().fold(0u32, |m, x| m.max(x.to_bits() & 0x7fff_ffff)) >= f32::INFINITY.to_bits()
    }

    /// Whether `scaled_outputs` may be used: every |acc·h_q| < 2^52.
    pub(super) fn exact_in_f64(cfg: &ArrayConfig) -> bool {
        cfg.h_product_bits() <= 53
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scaled_outputs_avx2(c: &OutputScale, total: i64, sums: &[i32], hs: &[i32], unit: f64, dst: &mut [f32]) {
        scaled_outputs_generic(c, total, sums, hs, unit, dst)
    }

    #[inline(always)]
    fn scaled_outputs_generic(c: &OutputScale, total: i64, sums: &[i32], hs: &[i32], unit: f64, dst: &mut [f32]) {
        let (half, inv, lim) = (c.half, c.inv, c.lim);
        let total = total as f64;
        for ((d, &s), &h) in dst.iter_mut().zip(sums).zip(hs) {
            // rshift_round(v, s) = floor((v + 2^(s-1)) / 2^s), exact in f64 here.
            let v = (total - 2.0 * s as f64) * h as f64;
            let word = ((v + half) * inv).floor().clamp(-lim, lim);
            *d = (word * unit) as f32;
        }
    }
}

/// A quantised layer prepared once for repeated use: validated against its
/// configuration, its kernel chosen, its signs re-laid out for that kernel.
#[derive(Debug, Clone)]
pub struct PreparedLayer {
    config: ArrayConfig,
    layer: QuantizedLayer,
    kernel: SignKernel,
    blocked: Option<BlockedSigns>,
}

impl PreparedLayer {
    /// Prepare for the fastest exact kernel this CPU allows.
    pub fn new(cfg: &ArrayConfig, layer: QuantizedLayer) -> Result<Self, ReferenceError> {
        Self::with_kernel(cfg, layer, SignKernel::Auto)
    }

    /// Prepare for a chosen kernel (an error if it cannot run here).
    pub fn with_kernel(cfg: &ArrayConfig, layer: QuantizedLayer, kernel: SignKernel) -> Result<Self, ReferenceError> {
        layer.validate(cfg)?;
        let kernel = resolve(kernel, cfg.lane_bits)?;
        let blocked = matches!(kernel, SignKernel::NibbleAvx2 | SignKernel::NibbleAvx512)
            .then(|| BlockedSigns::new(&layer.signs, layer.out_features, packed_row_bytes(layer.in_features)));
        Ok(PreparedLayer { config: *cfg, layer, kernel, blocked })
    }

    pub fn layer(&self) -> &QuantizedLayer {
        &self.layer
    }

    pub fn config(&self) -> &ArrayConfig {
        &self.config
    }

    /// The kernel `integer_forward` runs (never `Auto`).
    pub fn kernel(&self) -> SignKernel {
        self.kernel
    }

    /// [`integer_forward`] of this layer.
    pub fn integer_forward(&self, xq: ArrayView2<i32>) -> Result<Array2<i64>, ReferenceError> {
        check_activations(&self.config, &self.layer, xq)?;
        Ok(output_words(&self.config, &self.layer, self.blocked.as_ref(), self.kernel, xq))
    }

    /// Quantise, run, dequantise: the layer's output before LayerNorm, equal to
    /// `dequantize_outputs` of `integer_forward` of `quantize_activations`
    /// (the same operations, without the intermediate M×N words).
    pub fn forward_pre_norm(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ReferenceError> {
        let cfg = &self.config;
        if x.ncols() != self.layer.in_features {
            return Err(shape_err("activations", format!("K = {}", self.layer.in_features), format!("K = {}", x.ncols())));
        }
        // In range by construction: quantize_token clamps to ±(2^(A-1) - 1).
        let q = quantize_activations(x, cfg.act_bits)?;
        let units: Vec<f64> = q.scales.iter().map(|&s| output_unit(cfg, s, self.layer.g.frac, self.layer.h.frac)).collect();
        let n = self.layer.out_features;
        let mut y = Array2::<f32>::zeros((x.nrows(), n));
        let ys = y.as_slice_mut().expect("standard layout");
        let h = &self.layer.h.q;
        let fast = simd::exact_in_f64(cfg);
        let scale = simd::OutputScale::new(cfg);
        forward_checked(cfg, &self.layer, self.blocked.as_ref(), self.kernel, q.xq.view(), |t, o0, total, run| {
            let dst = &mut ys[t * n + o0..t * n + o0 + run.len()];
            if fast {
                simd::scaled_outputs(&scale, total, run, &h[o0..], units[t], dst);
            } else {
                for ((d, &s), &hq) in dst.iter_mut().zip(run).zip(&h[o0..]) {
                    *d = (scale_output(cfg, total - 2 * s as i64, hq as i64) as f64 * units[t]) as f32;
                }
            }
        });
        Ok(y)
    }
}

/// Turn output words into floats (pre-LayerNorm): out · output_unit(token).
pub fn dequantize_outputs(cfg: &ArrayConfig, layer: &QuantizedLayer, out: &Array2<i64>, scales: &[f32]) -> Array2<f32> {
    let mut y = Array2::<f32>::zeros(out.dim());
    for (t, (src, mut dst)) in out.rows().into_iter().zip(y.rows_mut()).enumerate() {
        let unit = output_unit(cfg, scales[t], layer.g.frac, layer.h.frac);
        dst.iter_mut().zip(src.iter()).for_each(|(d, &o)| *d = (o as f64 * unit) as f32);
    }
    y
}

/// LayerNorm without affine parameters over each row.
pub fn layer_norm_rows(y: &mut Array2<f32>, eps: f64) {
    for mut row in y.rows_mut() {
        let v = row.as_slice_mut().expect("standard layout");
        layer_norm_in_place(v, eps);
    }
}

/// The whole OneBit layer through the integer pipeline: quantise the activations,
/// integer_forward, dequantise, LayerNorm. Returns (pre-norm, normalised).
pub fn reference_forward(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    x: ArrayView2<f32>,
) -> Result<(Array2<f32>, Array2<f32>), ReferenceError> {
    let q = quantize_activations(x, cfg.act_bits)?;
    let out = integer_forward(cfg, layer, q.xq.view())?;
    let pre = dequantize_outputs(cfg, layer, &out, &q.scales);
    let mut post = pre.clone();
    layer_norm_rows(&mut post, LAYER_NORM_EPS);
    Ok((pre, post))
}

/// The OneBit layer in f32: h ⊙ (sign(W)·(g ⊙ x)), before LayerNorm.
pub fn float_forward_pre_norm(layer: &PackedLayer, x: ArrayView2<f32>) -> Result<Array2<f32>, ReferenceError> {
    layer.validate()?;
    let (m, k) = x.dim();
    if k != layer.in_features {
        return Err(shape_err("activations", format!("K = {}", layer.in_features), format!("K = {k}")));
    }
    let n = layer.out_features;
    let rb = packed_row_bytes(k);
    let mut y = Array2::<f32>::zeros((m, n));
    let mut xg = vec![0f32; k];
    for t in 0..m {
        for i in 0..k {
            xg[i] = x[[t, i]] * layer.g[i];
        }
        for o in 0..n {
            let row = &layer.signs[o * rb..(o + 1) * rb];
            let mut acc = 0f32;
            for (i, &v) in xg.iter().enumerate() {
                let bit = (row[i / 8] >> (i % 8)) & 1;
                acc += if bit == 1 { -v } else { v };
            }
            y[[t, o]] = layer.h[o] * acc;
        }
    }
    Ok(y)
}

/// The OneBit layer in f32 including the LayerNorm.
pub fn float_forward(layer: &PackedLayer, x: ArrayView2<f32>) -> Result<Array2<f32>, ReferenceError> {
    let mut y = float_forward_pre_norm(layer, x)?;
    layer_norm_rows(&mut y, LAYER_NORM_EPS);
    Ok(y)
}

/// Largest error of one lane in lane units: 1/2 from rounding, or 1 where the
/// largest symmetric product can round up to 2^(L-1) and be saturated back.
fn lane_rounding_error(cfg: &ArrayConfig) -> f64 {
    let s = cfg.lane_shift();
    if s == 0 {
        return 0.0;
    }
    let slack = ((1u64 << (cfg.act_bits - 1)) + (1u64 << (cfg.g_bits - 1)) - 1) as f64;
    if slack > (s as f64 - 1.0).exp2() {
        0.5
    } else {
        1.0
    }
}

/// Per-output bound on |integer pipeline - float layer| before LayerNorm, as
/// derived in docs/numerics.md ("Error bound"):
///
///   (|h_n| + δh)·E1 + δh·Σ_k|x_k||g_k| + U_out/2 + float slop, where
///   E1 = Σ_k (|x_k|·δg + δx·|g_k| + δx·δg) + K·U_lane/2,
///
/// δx = s_x/2, δg = 2^-gf/2, δh = 2^-hf/2, U_lane = s_x·2^(lane_shift - gf)
/// (0 when lane_shift = 0) and U_out the output unit. The float slop covers f32
/// rounding in the float layer: K·2^-22·Σ|x||g||h|.
pub fn error_bound(
    cfg: &ArrayConfig,
    layer: &PackedLayer,
    q: &QuantizedLayer,
    x: ArrayView2<f32>,
    scales: &[f32],
) -> Array2<f64> {
    let (m, k) = x.dim();
    let n = layer.out_features;
    let dg = 0.5 * (-(q.g.frac as f64)).exp2();
    let dh = 0.5 * (-(q.h.frac as f64)).exp2();
    let mut bound = Array2::<f64>::zeros((m, n));
    for t in 0..m {
        let sx = scales[t] as f64;
        // Half a step, plus the f32 rounding of x·(1/s) before it is rounded.
        let dx = sx * (0.5 + (-16f64).exp2());
        let lane_unit = if cfg.lane_shift() > 0 { sx * ((cfg.lane_shift() as i32 - q.g.frac) as f64).exp2() } else { 0.0 };
        let out_unit = output_unit(cfg, scales[t], q.g.frac, q.h.frac);
        let mut e1 = k as f64 * lane_unit * lane_rounding_error(cfg);
        let mut xg = 0f64;
        for i in 0..k {
            let xa = (x[[t, i]] as f64).abs();
            let ga = (layer.g[i] as f64).abs();
            e1 += xa * dg + dx * ga + dx * dg;
            xg += xa * ga;
        }
        for o in 0..n {
            let ha = (layer.h[o] as f64).abs();
            let slop = (k as f64 + 2.0) * (-22f64).exp2() * xg * ha;
            bound[[t, o]] = (ha + dh) * e1 + dh * xg + out_unit / 2.0 + slop;
        }
    }
    bound
}
