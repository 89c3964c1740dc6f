//! The bit-exact software reference of docs/numerics.md, and the float OneBit
//! layer it approximates.
//!
//! `integer_forward` is the oracle every simulator is checked against. It works
//! on packed sign bits directly: Σ_k s_k·lane_k = T - 2·Σ_{bit k = 1} lane_k with
//! T = Σ_k lane_k, and the inner sum is read from a 256-entry table per byte of
//! signs (per 8 inputs), built once per token or per block of 16 tokens. Tokens
//! are the vector dimension, output rows are split across the cores.

use crate::config::ArrayConfig;
use crate::numerics::{
    layer_norm_in_place, output_unit, quantize_pow2, quantize_token, scale_output, lane_value,
    FixedVector, LAYER_NORM_EPS,
};
use crate::pack::{packed_row_bytes, padding_is_clear};
use ndarray::{Array2, ArrayView2};
use std::ops::Range;

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
        row.iter_mut().zip(src.iter()).for_each(|(d, &s)| *d = s);
        check_finite(&format!("activations row {i}"), &row)?;
        let mut q = vec![0i32; k];
        scales.push(quantize_token(&row, act_bits, &mut q));
        dst.iter_mut().zip(q).for_each(|(d, s)| *d = s);
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
pub fn integer_forward(
    cfg: &ArrayConfig,
    layer: &QuantizedLayer,
    xq: ArrayView2<i32>,
) -> Result<Array2<i64>, ReferenceError> {
    check_inputs(cfg, layer, xq)?;
    let (m, k) = xq.dim();
    let n = layer.out_features;
    let groups = packed_row_bytes(k);
    let kp = groups * 8;
    // Lanes, zero-padded to whole bytes of signs; |lane| <= 2^15 - 1 since lane_bits <= 16.
    let mut lanes = vec![0i16; m * kp];
    let mut totals = vec![0i64; m];
    for t in 0..m {
        for i in 0..k {
            let l = lane_value(cfg, xq[[t, i]] as i64, layer.g.q[i] as i64);
            lanes[t * kp + i] = l as i16;
            totals[t] += l;
        }
    }
    // Σ over set bits of 8 lanes fits i16 when 8·(2^(L-1)-1) <= 32767, i.e. L <= 12.
    let small = cfg.lane_bits <= 12;
    let sums = if m < 4 {
        bit_sums::<1>(&lanes, m, kp, &layer.signs, groups, n, small)
    } else {
        bit_sums::<TOKEN_BLOCK>(&lanes, m, kp, &layer.signs, groups, n, small)
    };
    let mut out = Array2::<i64>::zeros((m, n));
    for t in 0..m {
        for o in 0..n {
            let acc = totals[t] - 2 * sums[t * n + o] as i64;
            out[[t, o]] = scale_output(cfg, acc, layer.h.q[o] as i64);
        }
    }
    Ok(out)
}

/// Threads the kernel may use: `ONEBIT_THREADS` if set, else every core.
pub fn kernel_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("ONEBIT_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1))
    })
}

/// Tokens processed together by the multi-token kernel (one AVX2 register of i16).
const TOKEN_BLOCK: usize = 16;
/// Bytes of lookup table built at a time (kept within a typical L2 cache).
const TABLE_BYTES: usize = 256 * 1024;

trait TableEntry: Copy + Default + Send + Sync + std::ops::Add<Output = Self> + Into<i32> {
    /// The sum of two table entries cannot overflow the entry type. True for
    /// i16 tables, which are only used when lane_bits <= 12: 2·8·2047 <= 32767.
    const PAIRS_FIT: bool;
    fn from_lane(l: i16) -> Self;
}

/// The TB entries starting at `at`. `at` is always j·256·TB + byte·TB with
/// j < the chunk's groups and byte < 256, inside the table; checked in debug builds.
#[inline(always)]
fn entry<E: TableEntry, const TB: usize>(table: &[E], at: usize) -> &[E; TB] {
    debug_assert!(at + TB <= table.len());
    // SAFETY: see above; the bounds check costs a third of the inner loop.
    unsafe { &*(table.as_ptr().add(at) as *const [E; TB]) }
}

impl TableEntry for i16 {
    const PAIRS_FIT: bool = true;
    #[inline(always)]
    fn from_lane(l: i16) -> Self {
        l
    }
}
impl TableEntry for i32 {
    const PAIRS_FIT: bool = false;
    #[inline(always)]
    fn from_lane(l: i16) -> Self {
        l as i32
    }
}

/// S[t][o] = Σ over set sign bits of lane[t][k], as an m×n row-major i32 matrix.
fn bit_sums<const TB: usize>(
    lanes: &[i16],
    m: usize,
    kp: usize,
    signs: &[u8],
    groups: usize,
    n: usize,
    small: bool,
) -> Vec<i32> {
    let mut sums = vec![0i32; m * n];
    let threads = if n * groups * m >= 1 << 16 { kernel_threads().min(n) } else { 1 };
    for t0 in (0..m).step_by(TB) {
        let tb = TB.min(m - t0);
        // Token-interleaved lanes for this block: blk[k*TB + t].
        let mut blk = vec![0i16; kp * TB];
        for t in 0..tb {
            for k in 0..kp {
                blk[k * TB + t] = lanes[(t0 + t) * kp + k];
            }
        }
        let per = n.div_ceil(threads);
        let mut block_out = vec![[0i32; TB]; n];
        std::thread::scope(|s| {
            for (c, out) in block_out.chunks_mut(per).enumerate() {
                let range = c * per..(c * per + out.len());
                let blk = &blk;
                s.spawn(move || {
                    if small {
                        dispatch::<i16, TB>(blk, signs, groups, range, out)
                    } else {
                        dispatch::<i32, TB>(blk, signs, groups, range, out)
                    }
                });
            }
        });
        for (o, v) in block_out.iter().enumerate() {
            for t in 0..tb {
                sums[(t0 + t) * n + o] = v[t];
            }
        }
    }
    sums
}

fn dispatch<E: TableEntry, const TB: usize>(
    blk: &[i16],
    signs: &[u8],
    groups: usize,
    rows: Range<usize>,
    out: &mut [[i32; TB]],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { table_kernel_avx2::<E, TB>(blk, signs, groups, rows, out) };
            return;
        }
    }
    table_kernel::<E, TB, false>(blk, signs, groups, rows, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn table_kernel_avx2<E: TableEntry, const TB: usize>(
    blk: &[i16],
    signs: &[u8],
    groups: usize,
    rows: Range<usize>,
    out: &mut [[i32; TB]],
) {
    table_kernel::<E, TB, true>(blk, signs, groups, rows, out)
}

/// One output row of the 16-token kernel with i16 tables: two entries are added
/// in i16 (they fit, see `PAIRS_FIT`), then widened to i32 once per pair.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_sums_tb16_i16_avx2(table: *const i16, row: &[u8], per_group: usize) -> [i32; 16] {
    use std::arch::x86_64::*;
    let mut lo = _mm256_setzero_si256();
    let mut hi = _mm256_setzero_si256();
    let at = |j: usize, byte: u8| table.add(j * per_group + byte as usize * 16) as *const __m256i;
    let mut j = 0;
    while j + 1 < row.len() {
        let s = _mm256_add_epi16(_mm256_loadu_si256(at(j, row[j])), _mm256_loadu_si256(at(j + 1, row[j + 1])));
        lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
        hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(s)));
        j += 2;
    }
    if j < row.len() {
        let s = _mm256_loadu_si256(at(j, row[j]));
        lo = _mm256_add_epi32(lo, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s)));
        hi = _mm256_add_epi32(hi, _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(s)));
    }
    let mut out = [0i32; 16];
    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, lo);
    _mm256_storeu_si256(out.as_mut_ptr().add(8) as *mut __m256i, hi);
    out
}

/// For each byte of signs (8 inputs) a table of the 256 possible sums of its
/// lanes, one entry per token of the block; then one lookup per byte per row.
#[inline(always)]
fn table_kernel<E: TableEntry, const TB: usize, const AVX2: bool>(
    blk: &[i16],
    signs: &[u8],
    groups: usize,
    rows: Range<usize>,
    out: &mut [[i32; TB]],
) {
    let per_group = 256 * TB;
    let chunk = (TABLE_BYTES / (per_group * std::mem::size_of::<E>())).max(1);
    let mut table = vec![E::default(); chunk.min(groups) * per_group];
    for g0 in (0..groups).step_by(chunk) {
        let gc = chunk.min(groups - g0);
        for j in 0..gc {
            let tbl = &mut table[j * per_group..(j + 1) * per_group];
            let lanes = &blk[(g0 + j) * 8 * TB..(g0 + j + 1) * 8 * TB];
            for b in 1..256usize {
                let low = b & (b - 1);
                let bit = b.trailing_zeros() as usize;
                let (lo, hi) = tbl.split_at_mut(b * TB);
                let src: &[E; TB] = lo[low * TB..low * TB + TB].try_into().unwrap();
                let dst: &mut [E; TB] = (&mut hi[..TB]).try_into().unwrap();
                let add: &[i16; TB] = lanes[bit * TB..bit * TB + TB].try_into().unwrap();
                for t in 0..TB {
                    dst[t] = src[t] + E::from_lane(add[t]);
                }
            }
        }
        let table = &table[..gc * per_group];
        for (o, acc_out) in rows.clone().zip(out.iter_mut()) {
            let row = &signs[o * groups + g0..o * groups + g0 + gc];
            #[cfg(target_arch = "x86_64")]
            if AVX2 && TB == 16 && E::PAIRS_FIT {
                // SAFETY: AVX2 is only set by the dispatcher after detecting it;
                // PAIRS_FIT holds only for i16 entries, so the table is i16.
                let sums = unsafe { row_sums_tb16_i16_avx2(table.as_ptr() as *const i16, row, per_group) };
                for t in 0..TB {
                    acc_out[t] += sums[t];
                }
                continue;
            }
            let mut acc = [0i32; TB];
            for (j, &byte) in row.iter().enumerate() {
                let e = entry::<E, TB>(table, j * per_group + byte as usize * TB);
                for t in 0..TB {
                    acc[t] += e[t].into();
                }
            }
            for t in 0..TB {
                acc_out[t] += acc[t];
            }
        }
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
