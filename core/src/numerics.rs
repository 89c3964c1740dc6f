//! The numerics contract of docs/numerics.md as code: every rounding rule and
//! every saturation, one function each. The hardware, the reference kernel and
//! the tests all call these; nothing else defines the arithmetic.

use crate::config::ArrayConfig;

/// Arithmetic right shift with round-half-up: `(v + 2^(s-1)) >> s`, and `v` for s = 0.
/// One adder in hardware; ties go towards +infinity (-2.5 -> -2, 2.5 -> 3).
#[inline(always)]
pub fn rshift_round(v: i64, s: u32) -> i64 {
    if s == 0 {
        v
    } else {
        (v + (1i64 << (s - 1))) >> s
    }
}

/// Symmetric saturation to a `bits`-wide signed value: clamp to ±(2^(bits-1) - 1).
/// Symmetric so that negating a saturated value never overflows.
#[inline(always)]
pub fn saturate_sym(v: i64, bits: u32) -> i64 {
    let m = ArrayConfig::sym_max(bits);
    v.clamp(-m, m)
}

/// Step 1 in hardware: lane = sat_L(rshift_round(x_q·g_q, lane_shift)).
#[inline(always)]
pub fn lane_value(cfg: &ArrayConfig, xq: i64, gq: i64) -> i64 {
    saturate_sym(rshift_round(xq * gq, cfg.lane_shift()), cfg.lane_bits)
}

/// Step 3 in hardware: out = sat_O(rshift_round(acc·h_q, h_shift)).
#[inline(always)]
pub fn scale_output(cfg: &ArrayConfig, acc: i64, hq: i64) -> i64 {
    saturate_sym(rshift_round(acc * hq, cfg.h_shift()), cfg.out_bits)
}

/// Decode one packed sign bit: bit 1 means -1, bit 0 means +1 (official OneBit).
#[inline(always)]
pub fn sign_of_bit(bit: u8) -> i64 {
    1 - 2 * (bit & 1) as i64
}

/// A vector quantised to signed fixed point with one power-of-two scale:
/// `value ≈ q · 2^(-frac)`.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedVector {
    pub q: Vec<i32>,
    pub frac: i32,
}

impl FixedVector {
    pub fn scale(&self) -> f64 {
        (-self.frac as f64).exp2()
    }
    pub fn dequantize(&self) -> Vec<f32> {
        let s = self.scale();
        self.q.iter().map(|&q| (q as f64 * s) as f32).collect()
    }
}

/// Limits on the power-of-two exponent, so scales stay normal f32 numbers.
pub const MIN_FRAC: i32 = -100;
pub const MAX_FRAC: i32 = 100;

/// Quantise `v` to `bits`-wide signed fixed point with a shared power-of-two scale.
/// `frac` is the largest integer with max|v|·2^frac <= 2^(bits-1) - 1 (clamped to
/// [MIN_FRAC, MAX_FRAC]); `q = round_half_away(v·2^frac)`, so no value saturates.
/// All-zero input gives frac = 0. Values must be finite (checked by the caller).
pub fn quantize_pow2(v: &[f32], bits: u32) -> FixedVector {
    let lim = ArrayConfig::sym_max(bits) as f64;
    let maxabs = v.iter().fold(0f64, |m, &x| m.max((x as f64).abs()));
    let frac = if maxabs == 0.0 {
        0
    } else {
        let mut f = (lim / maxabs).log2().floor() as i32;
        // log2 in floating point can be off by one at exact powers of two: fix it up.
        while maxabs * (f as f64).exp2() > lim {
            f -= 1;
        }
        while maxabs * ((f + 1) as f64).exp2() <= lim {
            f += 1;
        }
        f.clamp(MIN_FRAC, MAX_FRAC)
    };
    let s = (frac as f64).exp2();
    let q = v
        .iter()
        .map(|&x| ((x as f64) * s).round().clamp(-lim, lim) as i32)
        .collect();
    FixedVector { q, frac }
}

/// Per-token symmetric activation quantisation: s = max|x| / (2^(A-1) - 1),
/// x_q = round_half_away(x / s), in [-(2^(A-1)-1), 2^(A-1)-1]. An all-zero token
/// gets s = 1. Returns (x_q, s).
pub fn quantize_token(x: &[f32], act_bits: u32, out: &mut [i32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected just above.
        return unsafe { quantize_token_avx2(x, act_bits, out) };
    }
    quantize_token_generic(x, act_bits, out)
}

/// The same code compiled with AVX2, which LLVM vectorises (same bits: the
/// maximum and the per-element rounding do not depend on evaluation order).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_token_avx2(x: &[f32], act_bits: u32, out: &mut [i32]) -> f32 {
    quantize_token_generic(x, act_bits, out)
}

#[inline(always)]
fn quantize_token_generic(x: &[f32], act_bits: u32, out: &mut [i32]) -> f32 {
    let lim = ArrayConfig::sym_max(act_bits) as f32;
    // |v| as bits: non-negative floats order like their bit patterns, and an
    // integer maximum vectorises where `f32::max` (NaN-aware) does not. A NaN
    // would be the largest pattern; then take the NaN-skipping fold instead.
    let max_bits = x.iter().fold(0u32, |m, &v| m.max(v.to_bits() & 0x7fff_ffff));
    let maxabs = if max_bits <= f32::INFINITY.to_bits() {
        f32::from_bits(max_bits)
    } else {
        x.iter().fold(0f32, |m, &v| m.max(v.abs()))
    };
    let scale = if maxabs > 0.0 { maxabs / lim } else { 1.0 };
    let inv = 1.0 / scale;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = round_half_away_clamped(v * inv, lim);
    }
    scale
}

/// `y.round().clamp(-lim, lim) as i32` (round half away from zero) without a
/// libm call: on baseline x86-64, `f32::round` is a function call per element,
/// which made quantisation cost as much as a small layer's kernel. `lim` is a
/// whole number below 2^23, so clamping to ±(lim + 1) first changes no result,
/// and `y − trunc(y)` is exact there. NaN gives 0, like `NaN as i32`.
#[inline(always)]
pub fn round_half_away_clamped(y: f32, lim: f32) -> i32 {
    let y = y.clamp(-(lim + 1.0), lim + 1.0);
    let t = y as i32; // truncates toward zero; NaN → 0
    let frac = y - t as f32;
    // Branch-free, so that quantising a row vectorises.
    let r = t + (frac >= 0.5) as i32 - (frac <= -0.5) as i32;
    r.clamp(-(lim as i32), lim as i32)
}

/// Float value of one unit of the output word for a token with activation scale
/// `act_scale`: act_scale · 2^(lane_shift - g_frac) · 2^(h_shift - h_frac).
pub fn output_unit(cfg: &ArrayConfig, act_scale: f32, g_frac: i32, h_frac: i32) -> f64 {
    let e = cfg.lane_shift() as i32 - g_frac + cfg.h_shift() as i32 - h_frac;
    act_scale as f64 * (e as f64).exp2()
}

/// LayerNorm without affine parameters over one row, in place:
/// (y - mean) / sqrt(var + eps), biased variance, accumulated in f64.
pub fn layer_norm_in_place(y: &mut [f32], eps: f64) {
    if y.is_empty() {
        return;
    }
    let n = y.len() as f64;
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for v in y.iter_mut() {
        *v = ((*v as f64 - mean) * inv) as f32;
    }
}

/// Default LayerNorm epsilon (PyTorch's `nn.LayerNorm` default).
pub const LAYER_NORM_EPS: f64 = 1e-5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_half_up() {
        assert_eq!(rshift_round(5, 1), 3); // 2.5 -> 3
        assert_eq!(rshift_round(-5, 1), -2); // -2.5 -> -2
        assert_eq!(rshift_round(-6, 2), -1); // -1.5 -> -1
        assert_eq!(rshift_round(7, 0), 7);
    }

    #[test]
    fn saturation_is_symmetric() {
        assert_eq!(saturate_sym(200, 8), 127);
        assert_eq!(saturate_sym(-200, 8), -127);
        assert_eq!(saturate_sym(-128, 8), -127);
        assert_eq!(saturate_sym(5, 8), 5);
    }

    #[test]
    fn pow2_quantisation_never_saturates() {
        let v = [0.3f32, -1.7, 0.001, 1.7];
        let f = quantize_pow2(&v, 8);
        assert_eq!(f.frac, 6); // 1.7 * 64 = 108.8 <= 127 < 1.7 * 128
        assert_eq!(f.q, vec![19, -109, 0, 109]);
        let exact = quantize_pow2(&[1.0], 8);
        assert_eq!(exact.frac, 6); // 64 <= 127, 128 > 127
        assert_eq!(quantize_pow2(&[0.0, 0.0], 8).frac, 0);
    }

    #[test]
    fn token_quantisation() {
        let mut q = [0i32; 3];
        let s = quantize_token(&[1.0, -0.5, 0.25], 8, &mut q);
        assert_eq!(s, 1.0 / 127.0);
        assert_eq!(q, [127, -64, 32]); // -63.5 rounds away from zero
        let s0 = quantize_token(&[0.0, 0.0, 0.0], 8, &mut q);
        assert_eq!((s0, q), (1.0, [0, 0, 0]));
    }

    /// The dispatched quantiser (AVX2 where the CPU has it) equals the generic
    /// code and the plain `round().clamp()` definition on every element.
    #[test]
    fn dispatched_quantiser_equals_generic_and_definition() {
        let mut rng = crate::synth::SplitMix64(3);
        for (len, bits) in [(1usize, 8u32), (7, 4), (64, 8), (129, 12), (1000, 16)] {
            let mut x: Vec<f32> = (0..len).map(|_| rng.symmetric() * 10.0).collect();
            // Exact halves after scaling: maxabs 127.0 at 8 bits makes s = 1.
            if len > 3 {
                x[0] = 127.0;
                x[1] = 2.5;
                x[2] = -3.5;
            }
            if len == 7 {
                x[3] = f32::NAN; // the NaN-skipping maximum of the old code
                x[4] = -1e-40; // subnormal
            }
            let (mut a, mut b) = (vec![0i32; len], vec![0i32; len]);
            let sa = quantize_token(&x, bits, &mut a);
            let sb = quantize_token_generic(&x, bits, &mut b);
            assert_eq!((sa.to_bits(), &a), (sb.to_bits(), &b), "len {len}, bits {bits}");
            let lim = ArrayConfig::sym_max(bits) as f32;
            let maxabs = x.iter().fold(0f32, |m, &v| m.max(v.abs()));
            assert_eq!(sa, if maxabs > 0.0 { maxabs / lim } else { 1.0 }, "scale, len {len}");
            let want: Vec<i32> = x.iter().map(|&v| (v * (1.0 / sa)).round().clamp(-lim, lim) as i32).collect();
            assert_eq!(a, want, "len {len}, bits {bits}");
        }
    }

    /// The libm-free rounding equals `round().clamp()` on halves, their f32
    /// neighbours, the clamp edges, infinities, NaN and a sweep of values.
    #[test]
    fn fast_rounding_equals_round_then_clamp() {
        for lim in [1.0f32, 7.0, 127.0, 2047.0, 32767.0] {
            let mut ys = vec![0.0f32, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN, 1e-45];
            for i in -70_000i32..70_000 {
                let h = i as f32 * 0.5;
                ys.extend([h, f32::from_bits(h.to_bits() + 1), f32::from_bits(h.to_bits().saturating_sub(1))]);
            }
            ys.extend((0..10_000).map(|i| (i as f32 * 0.7311).sin() * lim * 1.1));
            for &y in &ys {
                let want = y.round().clamp(-lim, lim) as i32;
                assert_eq!(round_half_away_clamped(y, lim), want, "y = {y:e} ({:#x}), lim = {lim}", y.to_bits());
            }
        }
    }
}
