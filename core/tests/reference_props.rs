//! Properties of the reference: the fast kernel equals the plain definition bit
//! for bit, the integer pipeline stays within the derived error bound of the
//! float layer, packing round-trips, and no declared width can overflow.

use ndarray::Array2;
use onebit_core::config::{clog2, ArrayConfig, PRESET_NAMES};
use onebit_core::numerics::{lane_value, rshift_round, scale_output};
use onebit_core::pack::{pack_sign_values, pack_signs, packed_row_bytes, unpack_signs};
use onebit_core::reference::{
    dequantize_outputs, error_bound, float_forward, float_forward_pre_norm, integer_forward, integer_forward_naive,
    integer_forward_with, quantize_activations, reference_forward, PackedLayer, PreparedLayer, QuantizedLayer, SignKernel,
};
use onebit_core::numerics::FixedVector;
use proptest::prelude::*;

fn fits(v: i64, bits: u32) -> bool {
    let (lo, hi) = ArrayConfig::port_range(bits);
    (lo..=hi).contains(&v)
}

/// A kernel may refuse to run only for the documented reasons: the CPU lacks
/// its instructions, or the lanes are too wide for it.
fn unavailable_here(kernel: SignKernel, lane_bits: u32) -> bool {
    match kernel {
        SignKernel::ByteTable | SignKernel::Auto => false,
        SignKernel::NibbleAvx2 => lane_bits > 12 || !std::is_x86_feature_detected!("avx2"),
        SignKernel::NibbleAvx512 => lane_bits > 12 || !std::is_x86_feature_detected!("avx512bw"),
    }
}

/// Any valid configuration (small arrays; widths over their whole legal range).
fn any_config() -> impl Strategy<Value = ArrayConfig> {
    (1usize..=20, 1usize..=20, 4u32..=16, 2u32..=16, 2u32..=16, prop::sample::select(vec![1usize, 7, 100, 4096, 16384, 1 << 20]))
        .prop_flat_map(|(rows, cols, a, g, h, max_k)| {
            let lane_max = (a + g - 1).min(16);
            (Just((rows, cols, a, g, h, max_k)), 2u32..=lane_max)
        })
        .prop_flat_map(|((rows, cols, a, g, h, max_k), lane)| {
            let acc = lane + clog2(max_k);
            (Just((rows, cols, a, g, h, max_k, lane)), 2u32..=acc)
        })
        .prop_map(|((rows, cols, a, g, h, max_k, lane), out)| ArrayConfig {
            rows,
            cols,
            act_bits: a,
            g_bits: g,
            lane_bits: lane,
            h_bits: h,
            out_bits: out,
            weight_beat_bits: 1,
            max_k,
            acc_depth: 16,
            weight_banks: 3,
            out_words_per_beat: 1,
        })
}

/// Shapes that matter: 1, around a byte, around the array size, and random.
fn odd_dim(r: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        prop::sample::select(vec![1usize, 7, 8, 9, r.saturating_sub(1).max(1), r, r + 1]),
        1usize..70,
    ]
}

/// A quantised layer with g_q, h_q drawn over the whole port range (extremes often).
fn int_layer(cfg: ArrayConfig, k: usize, n: usize) -> impl Strategy<Value = QuantizedLayer> {
    let (glo, ghi) = ArrayConfig::port_range(cfg.g_bits);
    let (hlo, hhi) = ArrayConfig::port_range(cfg.h_bits);
    let gq = prop::collection::vec(prop_oneof![Just(glo), Just(ghi), Just(0), glo..=ghi], k);
    let hq = prop::collection::vec(prop_oneof![Just(hlo), Just(hhi), Just(0), hlo..=hhi], n);
    let signs = prop::collection::vec(prop::bool::ANY, n * k);
    (gq, hq, signs).prop_map(move |(gq, hq, s)| {
        let sv: Vec<i8> = s.iter().map(|&b| if b { -1 } else { 1 }).collect();
        QuantizedLayer {
            in_features: k,
            out_features: n,
            signs: pack_sign_values(&sv, n, k),
            g: FixedVector { q: gq.into_iter().map(|v| v as i32).collect(), frac: 0 },
            h: FixedVector { q: hq.into_iter().map(|v| v as i32).collect(), frac: 0 },
        }
    })
}

fn int_tokens(cfg: ArrayConfig, m: usize, k: usize) -> impl Strategy<Value = Array2<i32>> {
    let (lo, hi) = ArrayConfig::port_range(cfg.act_bits);
    prop::collection::vec(prop_oneof![Just(lo), Just(hi), Just(0), lo..=hi], m * k)
        .prop_map(move |v| Array2::from_shape_vec((m, k), v.into_iter().map(|x| x as i32).collect()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every kernel (the nibble-shuffle kernel where it can run; the byte-table
    /// kernel's 1-token and 16-token paths with i16 and i32 tables; a prepared
    /// layer) equals the one-add-at-a-time definition on every bit. N crosses
    /// the nibble kernel's 32-row blocks and block pairs.
    #[test]
    fn fast_kernels_equal_definition(
        (cfg, layer, xq) in any_config().prop_flat_map(|cfg| {
            let r = cfg.rows;
            let n = prop_oneof![odd_dim(cfg.cols), prop::sample::select(vec![31usize, 32, 33, 63, 64, 65, 97, 130])];
            (Just(cfg), odd_dim(r).prop_filter("K <= max_k", move |&k| k <= cfg.max_k), n, prop::sample::select(vec![1usize, 2, 3, 4, 5, 16, 17, 33]))
        }).prop_flat_map(|(cfg, k, n, m)| (Just(cfg), int_layer(cfg, k, n), int_tokens(cfg, m, k)))
    ) {
        let slow = integer_forward_naive(&cfg, &layer, xq.view()).unwrap();
        prop_assert_eq!(&integer_forward(&cfg, &layer, xq.view()).unwrap(), &slow);
        for kernel in SignKernel::ALL {
            match integer_forward_with(&cfg, &layer, xq.view(), kernel) {
                Ok(got) => prop_assert_eq!(&got, &slow, "{:?}", kernel),
                Err(e) => prop_assert!(unavailable_here(kernel, cfg.lane_bits), "{}", e),
            }
        }
        let prepared = PreparedLayer::new(&cfg, layer.clone()).unwrap();
        prop_assert_eq!(&prepared.integer_forward(xq.view()).unwrap(), &slow);
    }

    /// A prepared layer's fused float path (quantise, kernel, dequantise in one
    /// pass) equals the three public steps with the plain definition in the
    /// middle, on every bit, for every kernel and preset.
    #[test]
    fn prepared_float_path_equals_the_steps(
        preset in prop::sample::select([PRESET_NAMES.as_slice(), &["wide"]].concat()),
        k in prop::sample::select(vec![1usize, 7, 8, 9, 33, 100, 257]),
        n in prop::sample::select(vec![1usize, 9, 63, 64, 65, 130]),
        m in prop::sample::select(vec![1usize, 2, 5, 17]),
        seed in any::<u64>(),
    ) {
        // "wide": 16-bit ports and max_k = 2^24, so |acc·h_q| can pass 2^52 and
        // the outputs take the i64 path instead of the f64 one.
        let cfg = if preset == "wide" {
            let c = ArrayConfig { act_bits: 16, g_bits: 16, lane_bits: 16, h_bits: 16, max_k: 1 << 24, ..ArrayConfig::SIM16 };
            ArrayConfig { out_bits: c.acc_bits(), ..c }
        } else {
            ArrayConfig::preset(preset).unwrap()
        };
        cfg.validate().unwrap();
        let mut rng = onebit_core::synth::SplitMix64(seed);
        let q = onebit_core::synth::random_layer(&mut rng, k, n).quantize(&cfg).unwrap();
        let x = Array2::from_shape_fn((m, k), |_| 3.0 * rng.symmetric());
        let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
        let want = dequantize_outputs(&cfg, &q, &integer_forward_naive(&cfg, &q, xq.xq.view()).unwrap(), &xq.scales);
        for kernel in SignKernel::ALL {
            if let Ok(p) = PreparedLayer::with_kernel(&cfg, q.clone(), kernel) {
                let got = p.forward_pre_norm(x.view()).unwrap();
                prop_assert!(got.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()), "{:?}", kernel);
            }
        }
    }

    /// The chunked forward (what `forward_pre_norm` and the reference backend
    /// run) gives the bits of the unchunked steps for any chunk size and
    /// thread count, with and without its fused LayerNorm, on every kernel.
    #[test]
    fn tiled_forward_equals_the_steps(
        preset in prop::sample::select(PRESET_NAMES.to_vec()),
        k in prop::sample::select(vec![1usize, 9, 100, 257]),
        n in prop::sample::select(vec![1usize, 9, 64, 65, 130]),
        m in prop::sample::select(vec![1usize, 2, 63, 64, 65, 130, 200]),
        chunk in prop::sample::select(vec![1usize, 5, 64, 1000]),
        threads in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let cfg = ArrayConfig::preset(preset).unwrap();
        let mut rng = onebit_core::synth::SplitMix64(seed);
        let q = onebit_core::synth::random_layer(&mut rng, k, n).quantize(&cfg).unwrap();
        // Some rows all zero and some all −0.0: the LayerNorm's signed zeros.
        let x = Array2::from_shape_fn((m, k), |(t, _)| match t % 11 {
            3 => 0.0,
            7 => -0.0,
            _ => 3.0 * rng.symmetric(),
        });
        let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
        let want = dequantize_outputs(&cfg, &q, &integer_forward_naive(&cfg, &q, xq.xq.view()).unwrap(), &xq.scales);
        let mut want_norm = want.clone();
        for mut row in want_norm.rows_mut() {
            onebit_core::numerics::layer_norm_in_place(row.as_slice_mut().unwrap(), 1e-5);
        }
        let same = |a: &Array2<f32>, b: &Array2<f32>| a.dim() == b.dim() && a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits());
        for kernel in SignKernel::ALL {
            if let Ok(p) = PreparedLayer::with_kernel(&cfg, q.clone(), kernel) {
                prop_assert!(same(&p.forward_tiled(x.view(), None, chunk, threads).unwrap(), &want), "{:?} pre-norm", kernel);
                prop_assert!(same(&p.forward_tiled(x.view(), Some(1e-5), chunk, threads).unwrap(), &want_norm), "{:?} normalised", kernel);
                prop_assert!(same(&p.forward_layer_norm(x.view(), 1e-5).unwrap(), &want_norm), "{:?} default tiling", kernel);
            }
        }
    }

    /// LayerNorm eight rows at a time equals the one-row definition on every
    /// bit: any row count (remainders), constant rows, signed zeros, extremes.
    #[test]
    fn layer_norm_rows_equals_one_row_at_a_time(
        rows in 0usize..20,
        n in prop::sample::select(vec![1usize, 2, 7, 64, 129]),
        seed in any::<u64>(),
    ) {
        let mut rng = onebit_core::synth::SplitMix64(seed);
        let mut y = Array2::from_shape_fn((rows, n), |(r, j)| match r % 6 {
            0 => -0.0,
            1 => 1.5,
            2 => if j % 2 == 0 { f32::MAX } else { -f32::MAX },
            3 => 1e-30 * rng.symmetric(),
            _ => 1e4 * rng.symmetric(),
        });
        let mut want = y.clone();
        for mut row in want.rows_mut() {
            onebit_core::numerics::layer_norm_in_place(row.as_slice_mut().unwrap(), 1e-5);
        }
        onebit_core::reference::layer_norm_rows(&mut y, 1e-5);
        prop_assert!(y.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    /// Packing round-trips for any shape, including K not a multiple of 8.
    #[test]
    fn packing_round_trips(n in 1usize..20, k in prop::sample::select(vec![1usize, 7, 8, 9, 15, 16, 17, 31, 32, 33, 4095])) {
        let signs: Vec<i8> = (0..n * k).map(|i| if (i * 2654435761usize) % 7 < 3 { -1 } else { 1 }).collect();
        let packed = pack_sign_values(&signs, n, k);
        prop_assert_eq!(packed.len(), n * packed_row_bytes(k));
        prop_assert_eq!(unpack_signs(&packed, n, k), signs.clone());
        let w: Vec<f32> = signs.iter().map(|&s| s as f32 * 0.3).collect();
        prop_assert_eq!(pack_signs(&w, n, k), packed);
    }

    /// The integer pipeline stays within the bound derived in docs/numerics.md
    /// of the float OneBit layer, before LayerNorm; LayerNorm then agrees too.
    #[test]
    fn integer_within_derived_bound_of_float(
        preset in prop::sample::select(PRESET_NAMES.to_vec()),
        k in prop::sample::select(vec![1usize, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 257]),
        n in prop::sample::select(vec![1usize, 2, 7, 8, 9, 16, 17, 33]),
        m in 1usize..6,
        seed in any::<u64>(),
        x_scale in prop::sample::select(vec![1e-3f32, 1.0, 1e3]),
        g_scale in prop::sample::select(vec![1e-2f32, 1.0, 30.0]),
    ) {
        let cfg = ArrayConfig::preset(preset).unwrap();
        let mut rng = onebit_core::synth::SplitMix64(seed);
        let mut layer = onebit_core::synth::random_layer(&mut rng, k, n);
        layer.g.iter_mut().for_each(|g| *g *= g_scale * if rng.unit() < 0.2 { -1.0 } else { 1.0 });
        if rng.unit() < 0.3 { layer.h[0] = 0.0; }
        let x = Array2::from_shape_fn((m, k), |_| x_scale * rng.symmetric());
        let q = layer.quantize(&cfg).unwrap();
        let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
        let out = integer_forward(&cfg, &q, xq.xq.view()).unwrap();
        let pre_int = dequantize_outputs(&cfg, &q, &out, &xq.scales);
        let pre_float = float_forward_pre_norm(&layer, x.view()).unwrap();
        let bound = error_bound(&cfg, &layer, &q, x.view(), &xq.scales);
        for ((a, b), e) in pre_int.iter().zip(pre_float.iter()).zip(bound.iter()) {
            prop_assert!(((*a as f64) - (*b as f64)).abs() <= *e, "int {a} float {b} bound {e}");
        }
        let (_, post) = reference_forward(&cfg, &q, x.view()).unwrap();
        prop_assert!(post.iter().all(|v| v.is_finite()));
        let _ = float_forward(&layer, x.view()).unwrap();
    }
}

/// Saturation is where hardware and software most often disagree: the most
/// negative port values (not produced by the quantisers, but legal on the wire).
#[test]
fn saturation_at_port_extremes() {
    for name in PRESET_NAMES {
        let cfg = ArrayConfig::preset(name).unwrap();
        let (xlo, _) = ArrayConfig::port_range(cfg.act_bits);
        let (glo, _) = ArrayConfig::port_range(cfg.g_bits);
        let lane_max = ArrayConfig::sym_max(cfg.lane_bits);
        // (-2^(A-1))·(-2^(G-1)) rounds to exactly 2^(L-1): one past the lane range.
        assert_eq!(rshift_round(xlo * glo, cfg.lane_shift()), lane_max + 1, "{name}");
        assert_eq!(lane_value(&cfg, xlo, glo), lane_max, "{name}: lane saturates symmetrically");
        // The most negative product, -2^(A-1)·(2^(G-1)-1), stays inside the lane.
        let neg = rshift_round(xlo * (-glo - 1), cfg.lane_shift());
        assert_eq!(lane_value(&cfg, xlo, -glo - 1), neg.max(-lane_max), "{name}");
        let out_max = ArrayConfig::sym_max(cfg.out_bits);
        let (hlo, _) = ArrayConfig::port_range(cfg.h_bits);
        // acc·(-2^(H-1)) >> (H-1) = -acc: the only h that can reach |acc|.
        let acc = -(ArrayConfig::sym_max(cfg.acc_bits()));
        assert_eq!(scale_output(&cfg, acc, hlo), out_max.min(-acc), "{name}");
    }
}

/// The derived widths make overflow impossible at K = max_k with all-max and
/// all-min inputs: every intermediate fits the width the hardware gives it.
#[test]
fn no_width_overflows_at_max_k() {
    for name in PRESET_NAMES {
        let cfg = ArrayConfig::preset(name).unwrap();
        let k = cfg.max_k;
        let (xlo, xhi) = ArrayConfig::port_range(cfg.act_bits);
        let (glo, ghi) = ArrayConfig::port_range(cfg.g_bits);
        let (hlo, hhi) = ArrayConfig::port_range(cfg.h_bits);
        for (x, g, h, sign) in [(xhi, ghi, hhi, 1i8), (xlo, glo, hlo, 1), (xlo, ghi, hlo, 1), (xhi, ghi, hlo, -1), (xlo, glo, hhi, -1)] {
            let product = x * g;
            assert!(fits(product, cfg.g_product_bits()), "{name}: x·g");
            let lane = lane_value(&cfg, x, g);
            assert!(fits(lane, cfg.lane_bits), "{name}: lane");
            let psum = lane * sign as i64 * cfg.rows as i64;
            assert!(fits(psum, cfg.psum_bits()), "{name}: psum of {} rows = {psum}", cfg.rows);
            let acc = lane * sign as i64 * k as i64;
            assert!(fits(acc, cfg.acc_bits()), "{name}: acc at max K = {acc}");
            assert!(fits(acc * h, cfg.h_product_bits()), "{name}: acc·h");
            let out = scale_output(&cfg, acc, h);
            assert!(fits(out, cfg.out_bits), "{name}: out");
            // And the kernel itself, on the full max-K row.
            let layer = QuantizedLayer {
                in_features: k,
                out_features: 1,
                signs: pack_sign_values(&vec![sign; k], 1, k),
                g: FixedVector { q: vec![g as i32; k], frac: 0 },
                h: FixedVector { q: vec![h as i32], frac: 0 },
            };
            let xq = Array2::from_elem((1, k), x as i32);
            let y = integer_forward(&cfg, &layer, xq.view()).unwrap();
            assert_eq!(y[[0, 0]], out, "{name}: kernel at max K");
        }
    }
}

/// The worked example of docs/numerics.md, number by number.
#[test]
fn worked_example_from_docs() {
    let cfg = ArrayConfig::SIM16;
    let w = [1.0f32, -1.0, 1.0, -1.0, -1.0, 1.0];
    let layer = PackedLayer::from_dense(&w, 2, 3, vec![0.5, 1.0, -0.75], vec![0.9, -0.3]).unwrap();
    assert_eq!(layer.signs, vec![0b010, 0b011]);
    let q = layer.quantize(&cfg).unwrap();
    assert_eq!((q.g.frac, q.g.q.clone()), (6, vec![32, 64, -48]));
    assert_eq!((q.h.frac, q.h.q.clone()), (15, vec![29491, -9830]));
    let x = Array2::from_shape_vec((1, 3), vec![1.0f32, -0.5, 0.25]).unwrap();
    let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
    assert_eq!(xq.xq.as_slice().unwrap(), &[127, -64, 32]);
    let lanes: Vec<i64> = (0..3).map(|i| lane_value(&cfg, xq.xq[[0, i]] as i64, q.g.q[i] as i64)).collect();
    assert_eq!(lanes, vec![508, -512, -192]);
    let out = integer_forward(&cfg, &q, xq.xq.view()).unwrap();
    assert_eq!(out.as_slice().unwrap(), &[745, 56]);
    let pre = dequantize_outputs(&cfg, &q, &out, &xq.scales);
    assert!((pre[[0, 0]] - 745.0 / 1016.0).abs() < 1e-6);
    assert!((pre[[0, 1]] - 56.0 / 1016.0).abs() < 1e-6);
    let float = float_forward_pre_norm(&layer, x.view()).unwrap();
    assert!((float[[0, 0]] - 0.73125).abs() < 1e-6 && (float[[0, 1]] - 0.05625).abs() < 1e-6);
}

/// Bad inputs are errors, never panics or silent garbage.
#[test]
fn bad_inputs_are_errors() {
    let cfg = ArrayConfig::SIM16;
    assert!(PackedLayer::new(9, 1, vec![0, 0b10], vec![1.0; 9], vec![1.0]).is_err(), "padding bit set");
    assert!(PackedLayer::new(8, 1, vec![0], vec![f32::NAN; 8], vec![1.0]).is_err(), "NaN in g");
    assert!(PackedLayer::new(8, 1, vec![0, 0], vec![1.0; 8], vec![1.0]).is_err(), "signs too long");
    let big = PackedLayer::new(cfg.max_k + 1, 1, vec![0; packed_row_bytes(cfg.max_k + 1)], vec![1.0; cfg.max_k + 1], vec![1.0]).unwrap();
    assert!(big.quantize(&cfg).is_err(), "K above max_k");
    let layer = PackedLayer::new(8, 1, vec![0], vec![1.0; 8], vec![1.0]).unwrap().quantize(&cfg).unwrap();
    let xq = Array2::from_elem((1, 8), 128);
    assert!(integer_forward(&cfg, &layer, xq.view()).is_err(), "x_q past 8 bits");
    let xq = Array2::from_elem((1, 7), 1);
    assert!(integer_forward(&cfg, &layer, xq.view()).is_err(), "wrong K");
    // A NaN or an infinity anywhere in a row is an error naming its place.
    for (j, bad) in [(0usize, f32::NAN), (37, f32::INFINITY), (99, f32::NEG_INFINITY), (100, -f32::NAN)] {
        let mut x = Array2::from_elem((2, 101), 0.5f32);
        x[[1, j]] = bad;
        match quantize_activations(x.view(), 8) {
            Err(onebit_core::ReferenceError::NotFinite { what, index, .. }) => assert_eq!((what.as_str(), index), ("activations row 1", j)),
            other => panic!("{bad} at {j}: {other:?}"),
        }
    }
    // The chunked forward names the first bad row, whichever thread meets it.
    let layer101 = onebit_core::synth::random_layer(&mut onebit_core::synth::SplitMix64(3), 101, 9).quantize(&cfg).unwrap();
    let p = PreparedLayer::new(&cfg, layer101).unwrap();
    let mut x = Array2::from_elem((300, 101), 0.5f32);
    x[[250, 7]] = f32::NAN;
    x[[170, 3]] = f32::INFINITY;
    for threads in [1, 2, 3] {
        match p.forward_tiled(x.view(), Some(1e-5), 64, threads) {
            Err(onebit_core::ReferenceError::NotFinite { what, index, .. }) => assert_eq!((what.as_str(), index), ("activations row 170", 3)),
            other => panic!("{threads} threads: {other:?}"),
        }
    }
    // No tokens is no output, on every kernel, not a panic.
    let none = Array2::<i32>::zeros((0, 8));
    for kernel in SignKernel::ALL {
        if let Ok(y) = integer_forward_with(&cfg, &layer, none.view(), kernel) {
            assert_eq!(y.dim(), (0, 1), "{kernel:?}");
        }
        if let Ok(p) = PreparedLayer::with_kernel(&cfg, layer.clone(), kernel) {
            assert_eq!(p.forward_pre_norm(Array2::<f32>::zeros((0, 8)).view()).unwrap().dim(), (0, 1), "{kernel:?}");
        }
    }
}

/// Shapes large enough that the nibble kernel makes several passes over K and
/// crosses 64-row blocks: each kernel, the 1-token and the multi-token paths,
/// i16 and i32 tables, lanes at their extremes. (Splitting rows across threads
/// is checked against one thread in kernel.rs's unit tests.)
#[test]
fn large_layers_equal_definition() {
    let mut rng = onebit_core::synth::SplitMix64(9);
    for (lane_bits, m, k, n) in [(12u32, 1usize, 4099usize, 577usize), (12, 37, 2003, 301), (10, 5, 2003, 301), (14, 3, 2003, 301), (14, 20, 2003, 301)] {
        let cfg = ArrayConfig { lane_bits, ..ArrayConfig::SIM16 };
        let mut layer = onebit_core::synth::random_layer(&mut rng, k, n).quantize(&cfg).unwrap();
        // Extreme g drives lanes into saturation, the largest table entries.
        let (glo, ghi) = ArrayConfig::port_range(cfg.g_bits);
        layer.g.q.iter_mut().step_by(3).enumerate().for_each(|(i, g)| *g = if i % 2 == 0 { ghi } else { glo } as i32);
        let x = Array2::from_shape_fn((m, k), |(t, i)| if (t + i) % 5 == 0 { -127 } else { rng.range_i64(-128, 127) as i32 });
        let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
        for kernel in SignKernel::ALL {
            match integer_forward_with(&cfg, &layer, x.view(), kernel) {
                Ok(got) => assert_eq!(got, want, "{kernel:?}, lane_bits {lane_bits}, M {m}"),
                Err(e) => assert!(unavailable_here(kernel, lane_bits), "{e}"),
            }
        }
        let prepared = PreparedLayer::new(&cfg, layer).unwrap();
        assert_eq!(prepared.integer_forward(x.view()).unwrap(), want, "prepared, lane_bits {lane_bits}, M {m}");
    }
}
