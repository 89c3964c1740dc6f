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
        self.forward_tiled(x, None, CHUNK_TOKENS, chunk_threads(x.nrows(), self.layer.out_features, x.ncols()))
    }

    /// [`PreparedLayer::forward_pre_norm`] followed by [`layer_norm_rows`]
    /// with `eps`, each chunk of tokens normalised while it is in cache: the
    /// whole OneBit layer, as the reference backend runs it.
    pub fn forward_layer_norm(&self, x: ArrayView2<f32>, eps: f64) -> Result<Array2<f32>, ReferenceError> {
        self.forward_tiled(x, Some(eps), CHUNK_TOKENS, chunk_threads(x.nrows(), self.layer.out_features, x.ncols()))
    }

    /// The forward pass over chunks of `chunk` tokens (quantise, lanes,
    /// tables, sums, outputs, and LayerNorm when `eps` is given, one chunk at
    /// a time), the chunks split across `threads` threads when there is more
    /// than one. Every chunk size and thread count gives the same bits (each
    /// token's outputs depend on that token alone); public for the tests that
    /// check this and for benchmarks.
    pub fn forward_tiled(
        &self,
        x: ArrayView2<f32>,
        eps: Option<f64>,
        chunk: usize,
        threads: usize,
    ) -> Result<Array2<f32>, ReferenceError> {
        if x.ncols() != self.layer.in_features {
            return Err(shape_err("activations", format!("K = {}", self.layer.in_features), format!("K = {}", x.ncols())));
        }
        let (m, n) = (x.nrows(), self.layer.out_features);
        let chunk = chunk.max(1);
        let mut y = Array2::<f32>::zeros((m, n));
        if m == 0 || n == 0 {
            return Ok(y);
        }
        let ys = y.as_slice_mut().expect("standard layout");
        let chunks = m.div_ceil(chunk);
        let workers = threads.clamp(1, chunks);
        if workers == 1 {
            // One chunk: the kernel may split its rows across threads instead.
            let kernel_threads = if chunks == 1 { crate::kernel::threads_for(m, n, x.ncols()) } else { 1 };
            with_scratch(|s| self.run_rows(x, 0, ys, eps, chunk, kernel_threads, s))?;
        } else {
            // Whole chunks per thread, in token order; each worker's first error
            // is its lowest row, so the first worker's error is the sequential one.
            let per = chunks.div_ceil(workers) * chunk;
            let results: Vec<Result<(), ReferenceError>> = std::thread::scope(|scope| {
                let mut parts = ys.chunks_mut(per * n).enumerate();
                let (_, first) = parts.next().expect("m > 0");
                let handles: Vec<_> = parts
                    .map(|(w, out)| {
                        scope.spawn(move || with_scratch(|s| self.run_rows(x, w * per, out, eps, chunk, 1, s)))
                    })
                    .collect();
                let mut results = vec![with_scratch(|s| self.run_rows(x, 0, first, eps, chunk, 1, s))];
                results.extend(handles.into_iter().map(|h| h.join().expect("a reference worker panicked")));
                results
            });
            results.into_iter().collect::<Result<Vec<()>, _>>()?;
        }
        Ok(y)
    }

    /// Tokens `t0..t0 + out.len()/n` of `x` into `out` (row-major), `chunk`
    /// tokens at a time, the kernel on `kernel_threads` threads.
    #[allow(clippy::too_many_arguments)]
    fn run_rows(
        &self,
        x: ArrayView2<f32>,
        t0: usize,
        out: &mut [f32],
        eps: Option<f64>,
        chunk: usize,
        kernel_threads: usize,
        s: &mut ForwardScratch,
    ) -> Result<(), ReferenceError> {
        let cfg = &self.config;
        let layer = &self.layer;
        let (k, n) = (layer.in_features, layer.out_features);
        let groups = packed_row_bytes(k);
        let kp = groups * 8;
        let h = &layer.h.q;
        let fast = simd::exact_in_f64(cfg);
        let scale = simd::OutputScale::new(cfg);
        s.xq.resize(k, 0);
        s.row.resize(k, 0.0);
        for (c, ys) in out.chunks_mut(chunk * n).enumerate() {
            let tc = ys.len() / n;
            let first = t0 + c * chunk;
            // Step 1 per token, in the order of `quantize_activations`: the
            // finiteness check, the scale, the lanes (zero past K) and T.
            s.lanes.clear();
            s.lanes.resize(tc * kp, 0);
            s.totals.clear();
            s.units.clear();
            for t in 0..tc {
                let row = x.row(first + t);
                let src = match row.as_slice() {
                    Some(v) => v,
                    None => {
                        s.row.iter_mut().zip(row.iter()).for_each(|(d, &v)| *d = v);
                        &s.row
                    }
                };
                if simd::any_non_finite(src) {
                    let j = src.iter().position(|v| !v.is_finite()).expect("a non-finite value");
                    return Err(ReferenceError::NotFinite {
                        what: format!("activations row {}", first + t),
                        index: j,
                        value: src[j],
                    });
                }
                // In range by construction: quantize_token clamps to ±(2^(A-1) - 1).
                let act_scale = quantize_token(src, cfg.act_bits, &mut s.xq);
                s.units.push(output_unit(cfg, act_scale, layer.g.frac, layer.h.frac));
                s.totals.push(simd::lanes(cfg, &s.xq, &layer.g.q, &mut s.lanes[t * kp..t * kp + k]));
            }
            let sums = crate::kernel::sign_sums_on(
                self.kernel,
                &s.lanes,
                tc,
                &layer.signs,
                self.blocked.as_ref(),
                groups,
                n,
                cfg.lane_bits,
                kernel_threads,
                &mut s.kernel,
            );
            let (totals, units) = (&s.totals, &s.units);
            sums.for_each_run(|t, o0, run| {
                let dst = &mut ys[t * n + o0..t * n + o0 + run.len()];
                if fast {
                    simd::scaled_outputs(&scale, totals[t], run, &h[o0..], units[t], dst);
                } else {
                    for ((d, &v), &hq) in dst.iter_mut().zip(run).zip(&h[o0..]) {
                        *d = (scale_output(cfg, totals[t] - 2 * v as i64, hq as i64) as f64 * units[t]) as f32;
                    }
                }
            });
            sums.recycle(&mut s.kernel);
            if let Some(eps) = eps {
                layer_norm_slice_rows(ys, n, eps);
            }
        }
        Ok(())
    }
}

/// Tokens per chunk of [`PreparedLayer::forward_tiled`]: a chunk's tables
/// (8·K bytes per token) and sums (4·N bytes per token) stay in L2 while every
/// block of signs runs against them, and up to 64 tokens are one chunk, as
/// the kernel's own passes over K were tuned for (reference-kernel.json).
pub const CHUNK_TOKENS: usize = 64;

/// Below this many sign·lane products the chunks of one call run on one
/// thread; above it, on [`kernel_threads`]. Chunk workers carry the whole
/// layer (quantisation, tables, outputs, LayerNorm), unlike the kernel's row
/// split, so they pay off sooner; spawning costs about 0.05 ms here. Measured
/// on this project's 2-core machines (`backend_once M K N threads`, best of
/// 10 rounds, 1 vs 2 threads): 768×128×344 0.81 vs 0.52 ms, 128×576×576
/// 0.54 vs 0.36 ms, 768×128×128 (12.6 M) 0.39 vs 0.38 ms, 512×128×128 0.26
/// vs 0.32 ms, 256×128×344 0.27 vs 0.28 ms.
const CHUNK_THREADED_PRODUCTS: usize = 1 << 24;

fn chunk_threads(m: usize, n: usize, k: usize) -> usize {
    if m > CHUNK_TOKENS && m * n * k >= CHUNK_THREADED_PRODUCTS {
        kernel_threads()
    } else {
        1
    }
}

/// Per-thread buffers of [`PreparedLayer::forward_tiled`], kept between calls.
#[derive(Debug, Default)]
struct ForwardScratch {
    row: Vec<f32>,
    xq: Vec<i32>,
    lanes: Vec<i16>,
    totals: Vec<i64>,
    units: Vec<f64>,
    kernel: crate::kernel::KernelScratch,
}

/// Run `f` with a [`ForwardScratch`] from a process-wide pool (at most one
/// per thread that ran at once), so that the worker threads spawned per call
/// reuse warm buffers too: fresh ones cost a worker more page faults than
/// its share of a small layer's work.
fn with_scratch<R>(f: impl FnOnce(&mut ForwardScratch) -> R) -> R {
    static POOL: std::sync::Mutex<Vec<ForwardScratch>> = std::sync::Mutex::new(Vec::new());
    let take = || POOL.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
    let mut s = take();
    let r = f(&mut s);
    POOL.lock().unwrap_or_else(|e| e.into_inner()).push(s);
    r
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
    let n = y.ncols();
    match y.as_slice_mut() {
        Some(v) => layer_norm_slice_rows(v, n, eps),
        None => y.rows_mut().into_iter().for_each(|mut row| layer_norm_in_place(row.as_slice_mut().expect("rows of a standard array"), eps)),
    }
}

/// [`layer_norm_in_place`] on each row of `v` (rows of `n`), eight rows at a
/// time: each row's sums still run in index order (the same bits), but eight
/// independent f64 chains fill the adders where one row's chain waits on
/// each add's latency (one row at a time was about a third of a small layer).
pub fn layer_norm_slice_rows(v: &mut [f32], n: usize, eps: f64) {
    if n == 0 {
        return;
    }
    let mut groups = v.chunks_exact_mut(8 * n);
    for g in &mut groups {
        layer_norm_8(g, n, eps);
    }
    for row in groups.into_remainder().chunks_exact_mut(n) {
        layer_norm_in_place(row, eps);
    }
}

fn layer_norm_8(v: &mut [f32], n: usize, eps: f64) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected just above.
        return unsafe { layer_norm_8_avx2(v, n, eps) };
    }
    layer_norm_8_generic(v, n, eps)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn layer_norm_8_avx2(v: &mut [f32], n: usize, eps: f64) {
    layer_norm_8_generic(v, n, eps)
}

/// Exactly [`layer_norm_in_place`]'s operations for rows `v[r·n..(r+1)·n]`,
/// r < 8, interleaved across the rows.
#[inline(always)]
fn layer_norm_8_generic(v: &mut [f32], n: usize, eps: f64) {
    assert_eq!(v.len(), 8 * n);
    let nf = n as f64;
    // `Iterator::sum`'s starting value (−0.0 in today's std), so that a row of
    // −0.0 sums to the same signed zero as in `layer_norm_in_place`.
    let zero: f64 = std::iter::empty::<f64>().sum();
    let mut sum = [zero; 8];
    for j in 0..n {
        for (r, acc) in sum.iter_mut().enumerate() {
            *acc += v[r * n + j] as f64;
        }
    }
    let mean = sum.map(|s| s / nf);
    let mut sq = [zero; 8];
    for j in 0..n {
        for (r, acc) in sq.iter_mut().enumerate() {
            *acc += (v[r * n + j] as f64 - mean[r]).powi(2);
        }
    }
    let inv = sq.map(|q| 1.0 / (q / nf + eps).sqrt());
    for (r, row) in v.chunks_exact_mut(n).enumerate() {
        let (mean, inv) = (mean[r], inv[r]);
        for x in row.iter_mut() {
            *x = ((*x as f64 - mean) * inv) as f32;
        }
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
