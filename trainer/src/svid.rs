//! Sign-Value-Independent Decomposition (SVID), the OneBit initialisation.
//!
//! A weight matrix W (N outputs × K inputs, row-major like HF `nn.Linear`) is
//! split into its signs and a rank-1 non-negative approximation of |W|:
//! `W ≈ sign(W) ⊙ (h gᵀ)`, h (N, output side) and g (K, input side). Because
//! h gᵀ ≥ 0, `‖W − sign(W)⊙(h gᵀ)‖ = ‖|W| − h gᵀ‖`, so the best rank-1
//! factorisation of |W| is also the best SVID, and the naive baseline
//! `sign(W)·mean|W|` (a constant rank-1 matrix) can never beat it.
//!
//! Two solvers, both deterministic:
//! - `Nmf`: rank-1 non-negative matrix factorisation by alternating exact
//!   least-squares updates clamped at zero (what HALS / scikit-learn's
//!   coordinate descent reduce to with one component), started from the
//!   NNDSVD-style initialisation (row and column sums), which is already close.
//! - `Svd`: the leading singular pair of |W| by power iteration from a fixed
//!   pseudo-random start; for a non-negative matrix its vectors can be taken
//!   non-negative (Perron–Frobenius), so both factors get |·|.
//!
//! Signs follow `onebit_core::pack_signs`: sign(0) = +1.

use serde::Serialize;

/// Which rank-1 solver SVID uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SvidMethod {
    Nmf,
    Svd,
    /// Not a factorisation: h gᵀ = mean|W| everywhere, the naive baseline
    /// sign(W)·mean|W| in SVID form, for ablations (distillation from the
    /// naive start against the SVID start).
    Naive,
}

impl std::str::FromStr for SvidMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nmf" => Ok(SvidMethod::Nmf),
            "svd" => Ok(SvidMethod::Svd),
            "naive" => Ok(SvidMethod::Naive),
            _ => Err(format!("unknown SVID method `{s}` (expected nmf, svd or naive)")),
        }
    }
}

/// Iteration limits shared by both solvers.
#[derive(Debug, Clone, Copy)]
pub struct SvidOptions {
    pub max_iters: usize,
    /// Stop when the relative change of the approximation error falls below this.
    pub tol: f64,
}

impl Default for SvidOptions {
    fn default() -> Self {
        SvidOptions { max_iters: 500, tol: 1e-9 }
    }
}

/// The result of SVID on one matrix.
#[derive(Debug, Clone)]
pub struct Svid {
    /// Output-side factor (N).
    pub h: Vec<f32>,
    /// Input-side factor (K).
    pub g: Vec<f32>,
    /// Iterations the solver ran.
    pub iters: usize,
}

/// `sign` with sign(0) = +1, as packed by `onebit_core::pack_signs`.
#[inline]
pub fn sign_pm1(w: f32) -> f32 {
    if w < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// Rank-1 SVID of the N×K matrix `w`.
pub fn svid(w: &[f32], n: usize, k: usize, method: SvidMethod, opts: SvidOptions) -> Svid {
    assert_eq!(w.len(), n * k, "svid: weights must be N×K");
    assert!(n > 0 && k > 0, "svid: empty matrix");
    let a: Vec<f64> = w.iter().map(|&x| (x as f64).abs()).collect();
    let (h, g, iters) = match method {
        SvidMethod::Nmf => nmf_rank1(&a, n, k, opts),
        SvidMethod::Svd => svd_rank1(&a, n, k, opts),
        SvidMethod::Naive => {
            // Equal factors, like the solvers' rescaling: √mean · √mean = mean|W|.
            let root = (a.iter().sum::<f64>() / a.len() as f64).sqrt();
            (vec![root; n], vec![root; k], 0)
        }
    };
    Svid { h: h.iter().map(|&x| x as f32).collect(), g: g.iter().map(|&x| x as f32).collect(), iters }
}

/// A·v (N) for A N×K.
fn mat_vec(a: &[f64], n: usize, k: usize, v: &[f64]) -> Vec<f64> {
    (0..n).map(|r| a[r * k..(r + 1) * k].iter().zip(v).map(|(x, y)| x * y).sum()).collect()
}

/// Aᵀ·u (K) for A N×K.
fn mat_t_vec(a: &[f64], n: usize, k: usize, u: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; k];
    for r in 0..n {
        let ur = u[r];
        for (o, x) in out.iter_mut().zip(&a[r * k..(r + 1) * k]) {
            *o += ur * x;
        }
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ‖A − u vᵀ‖² computed without forming u vᵀ: ‖A‖² − 2uᵀAv + ‖u‖²‖v‖².
fn rank1_sq_error(a_sq: f64, a: &[f64], n: usize, k: usize, u: &[f64], v: &[f64]) -> f64 {
    let av = mat_vec(a, n, k, v);
    (a_sq - 2.0 * dot(u, &av) + dot(u, u) * dot(v, v)).max(0.0)
}

/// Split the scale evenly between the two factors, so neither is tiny.
fn balance(u: &mut [f64], v: &mut [f64]) {
    let (nu, nv) = (dot(u, u).sqrt(), dot(v, v).sqrt());
    if nu > 0.0 && nv > 0.0 {
        let s = (nv / nu).sqrt();
        u.iter_mut().for_each(|x| *x *= s);
        v.iter_mut().for_each(|x| *x /= s);
    }
}

fn nmf_rank1(a: &[f64], n: usize, k: usize, opts: SvidOptions) -> (Vec<f64>, Vec<f64>, usize) {
    let a_sq = dot(a, a);
    if a_sq == 0.0 {
        return (vec![0.0; n], vec![0.0; k], 0);
    }
    // Row and column sums: the rank-1 NNDSVD-like start (u vᵀ has the sum of A).
    let total: f64 = a.iter().sum();
    let mut u: Vec<f64> = (0..n).map(|r| a[r * k..(r + 1) * k].iter().sum::<f64>()).collect();
    let mut v: Vec<f64> = mat_t_vec(a, n, k, &vec![1.0; n]);
    v.iter_mut().for_each(|x| *x /= total);
    let mut prev = rank1_sq_error(a_sq, a, n, k, &u, &v);
    let mut iters = 0;
    for it in 1..=opts.max_iters {
        iters = it;
        // Exact least-squares update of each factor with the other fixed, clamped at 0.
        let vv = dot(&v, &v);
        if vv == 0.0 {
            break;
        }
        u = mat_vec(a, n, k, &v).into_iter().map(|x| (x / vv).max(0.0)).collect();
        let uu = dot(&u, &u);
        if uu == 0.0 {
            break;
        }
        v = mat_t_vec(a, n, k, &u).into_iter().map(|x| (x / uu).max(0.0)).collect();
        let err = rank1_sq_error(a_sq, a, n, k, &u, &v);
        let done = (prev - err).abs() <= opts.tol * a_sq;
        prev = err;
        if done {
            break;
        }
    }
    balance(&mut u, &mut v);
    (u, v, iters)
}

fn svd_rank1(a: &[f64], n: usize, k: usize, opts: SvidOptions) -> (Vec<f64>, Vec<f64>, usize) {
    let a_sq = dot(a, a);
    if a_sq == 0.0 {
        return (vec![0.0; n], vec![0.0; k], 0);
    }
    // Fixed pseudo-random start (SplitMix64), positive so it is not orthogonal
    // to the non-negative leading singular vector.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut v: Vec<f64> = (0..k)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            0.5 + (z >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    let norm = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    let mut sigma = 0.0;
    let mut u = vec![0.0; n];
    let mut iters = 0;
    for it in 1..=opts.max_iters {
        iters = it;
        u = mat_vec(a, n, k, &v);
        let nu = dot(&u, &u).sqrt();
        if nu == 0.0 {
            break;
        }
        u.iter_mut().for_each(|x| *x /= nu);
        v = mat_t_vec(a, n, k, &u);
        let new_sigma = dot(&v, &v).sqrt();
        if new_sigma == 0.0 {
            break;
        }
        v.iter_mut().for_each(|x| *x /= new_sigma);
        // σ² converges like the error (‖A‖² − σ²), so the same tolerance applies.
        let done = (new_sigma * new_sigma - sigma * sigma).abs() <= opts.tol * a_sq;
        sigma = new_sigma;
        if done {
            break;
        }
    }
    // Perron–Frobenius: the leading pair of a non-negative matrix is non-negative
    // up to a common sign; |·| removes that sign and any rounding below zero.
    let s = sigma.sqrt();
    let mut h: Vec<f64> = u.iter().map(|x| x.abs() * s).collect();
    let mut g: Vec<f64> = v.iter().map(|x| x.abs() * s).collect();
    balance(&mut h, &mut g);
    (h, g, iters)
}

/// Relative reconstruction error ‖W − sign(W)⊙(h gᵀ)‖ / ‖W‖ (0 for W = 0).
pub fn svid_relative_error(w: &[f32], n: usize, k: usize, h: &[f32], g: &[f32]) -> f64 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for r in 0..n {
        for c in 0..k {
            let x = w[r * k + c] as f64;
            let approx = sign_pm1(w[r * k + c]) as f64 * h[r] as f64 * g[c] as f64;
            num += (x - approx).powi(2);
            den += x * x;
        }
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Relative error of the naive baseline sign(W)·mean|W|.
pub fn naive_relative_error(w: &[f32], n: usize, k: usize) -> f64 {
    let mean = w.iter().map(|x| x.abs() as f64).sum::<f64>() / w.len() as f64;
    let h = vec![mean as f32; n];
    let g = vec![1.0f32; k];
    svid_relative_error(w, n, k, &h, &g)
}

/// The latent weight the student starts from: sign(W)·0.01 (official code).
pub fn latent_init(w: &[f32]) -> Vec<f32> {
    w.iter().map(|&x| sign_pm1(x) * LATENT_SCALE).collect()
}

/// Magnitude of the initial latent weights (official OneBit code).
pub const LATENT_SCALE: f32 = 0.01;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lcg_matrix(n: usize, k: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n * k)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
            })
            .collect()
    }

    #[test]
    fn exact_rank1_magnitudes_are_recovered() {
        // |W| = h gᵀ exactly, with arbitrary signs: both solvers must reach ~0 error.
        let (n, k) = (7, 13);
        let h0: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.25).collect();
        let g0: Vec<f32> = (0..k).map(|j| 1.0 + (j % 5) as f32 * 0.3).collect();
        let signs = lcg_matrix(n, k, 3);
        let w: Vec<f32> = (0..n * k).map(|i| sign_pm1(signs[i]) * h0[i / k] * g0[i % k]).collect();
        for m in [SvidMethod::Nmf, SvidMethod::Svd] {
            let s = svid(&w, n, k, m, SvidOptions::default());
            let e = svid_relative_error(&w, n, k, &s.h, &s.g);
            assert!(e < 1e-5, "{m:?}: error {e}");
            assert!(naive_relative_error(&w, n, k) > 0.1);
        }
    }

    #[test]
    fn naive_method_is_the_naive_baseline() {
        let (n, k) = (7, 13);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.01).collect();
        let s = svid(&w, n, k, SvidMethod::Naive, SvidOptions::default());
        let got = svid_relative_error(&w, n, k, &s.h, &s.g);
        assert!((got - naive_relative_error(&w, n, k)).abs() < 1e-6, "{got}");
        let nmf = svid(&w, n, k, SvidMethod::Nmf, SvidOptions::default());
        assert!(svid_relative_error(&w, n, k, &nmf.h, &nmf.g) < got);
    }

    #[test]
    fn constant_magnitude_matches_naive() {
        // |W| constant: the naive baseline is already optimal and SVID equals it.
        let (n, k) = (4, 9);
        let w: Vec<f32> = lcg_matrix(n, k, 11).iter().map(|&x| sign_pm1(x) * 0.37).collect();
        let naive = naive_relative_error(&w, n, k);
        assert!(naive < 1e-6);
        for m in [SvidMethod::Nmf, SvidMethod::Svd] {
            let s = svid(&w, n, k, m, SvidOptions::default());
            assert!(svid_relative_error(&w, n, k, &s.h, &s.g) < 1e-5);
        }
    }

    #[test]
    fn zero_matrix_is_handled() {
        let w = vec![0.0f32; 12];
        for m in [SvidMethod::Nmf, SvidMethod::Svd] {
            let s = svid(&w, 3, 4, m, SvidOptions::default());
            assert!(s.h.iter().chain(&s.g).all(|x| *x == 0.0));
            assert_eq!(svid_relative_error(&w, 3, 4, &s.h, &s.g), 0.0);
        }
    }

    #[test]
    fn hand_computed_case() {
        // |W| = [[1,2],[2,4]] = [1,2]ᵀ[1,2]: rank 1, signs mixed, zero error.
        let w = [1.0f32, -2.0, -2.0, 4.0];
        let s = svid(&w, 2, 2, SvidMethod::Nmf, SvidOptions::default());
        let prod: Vec<f32> = (0..4).map(|i| s.h[i / 2] * s.g[i % 2]).collect();
        for (p, e) in prod.iter().zip([1.0, 2.0, 2.0, 4.0]) {
            assert!((p - e).abs() < 1e-5, "{prod:?}");
        }
        // Balanced: ‖h‖ = ‖g‖.
        let nh: f32 = s.h.iter().map(|x| x * x).sum();
        let ng: f32 = s.g.iter().map(|x| x * x).sum();
        assert!((nh - ng).abs() < 1e-4);
        // Naive: mean|W| = 2.25, error = sqrt((1.25²+0.25²+0.25²+1.75²)/25).
        let expect = ((1.25f64.powi(2) + 0.25f64.powi(2) * 2.0 + 1.75f64.powi(2)) / 25.0).sqrt();
        assert!((naive_relative_error(&w, 2, 2) - expect).abs() < 1e-7);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn nmf_close_to_svd_and_below_naive(n in 1usize..24, k in 1usize..40, seed in any::<u64>(), scale in prop::sample::select(vec![1e-4f32, 1.0, 300.0]), outlier in any::<bool>()) {
            let mut w: Vec<f32> = lcg_matrix(n, k, seed).iter().map(|x| x * scale).collect();
            if outlier { w[(seed as usize) % (n * k)] = 50.0 * scale; }
            let nmf = svid(&w, n, k, SvidMethod::Nmf, SvidOptions::default());
            let svd = svid(&w, n, k, SvidMethod::Svd, SvidOptions::default());
            prop_assert!(nmf.h.iter().chain(&nmf.g).chain(&svd.h).chain(&svd.g).all(|x| x.is_finite() && *x >= 0.0));
            let e_nmf = svid_relative_error(&w, n, k, &nmf.h, &nmf.g);
            let e_svd = svid_relative_error(&w, n, k, &svd.h, &svd.g);
            let e_naive = naive_relative_error(&w, n, k);
            prop_assert!(e_nmf <= e_svd + 1e-4, "nmf {e_nmf} svd {e_svd}");
            prop_assert!(e_nmf <= e_naive + 1e-6, "nmf {e_nmf} naive {e_naive}");
            prop_assert!(e_svd <= e_naive + 1e-4, "svd {e_svd} naive {e_naive}");
        }
    }
}
