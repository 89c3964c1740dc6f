//! Shared by the hdl tests: small array configurations for the heavy random
//! tests (the same code serves every configuration), random layers with
//! extreme values mixed in, and the rust-hdl clocking helpers.
#![allow(dead_code)]

use ndarray::Array2;
use onebit_core::numerics::FixedVector;
use onebit_core::pack::pack_sign_values;
use onebit_core::synth::SplitMix64;
use onebit_core::{ArrayConfig, QuantizedLayer};
use rust_hdl::prelude::*;

/// 4×4, 8-bit weight beats (2 per tile), small accumulators.
pub const T4X4: ArrayConfig = ArrayConfig {
    rows: 4,
    cols: 4,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 12,
    h_bits: 16,
    out_bits: 18,
    weight_beat_bits: 8,
    max_k: 256,
    acc_depth: 4,
};

/// 4×3: rows ≠ cols, 4-bit beats (3 per tile), narrow lanes and outputs so
/// both saturations happen often.
pub const T4X3: ArrayConfig = ArrayConfig {
    rows: 4,
    cols: 3,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 9,
    h_bits: 12,
    out_bits: 10,
    weight_beat_bits: 4,
    max_k: 64,
    acc_depth: 5,
};

/// 3×2 with 3-bit beats (not a power of two anywhere), 6-bit activations.
pub const T3X2: ArrayConfig = ArrayConfig {
    rows: 3,
    cols: 2,
    act_bits: 6,
    g_bits: 7,
    lane_bits: 10,
    h_bits: 16,
    out_bits: 14,
    weight_beat_bits: 3,
    max_k: 100,
    acc_depth: 3,
};

/// 1×1: the degenerate array (no skew, one column).
pub const T1X1: ArrayConfig = ArrayConfig {
    rows: 1,
    cols: 1,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 8,
    h_bits: 16,
    out_bits: 12,
    weight_beat_bits: 1,
    max_k: 16,
    acc_depth: 2,
};

onebit_hdl::accelerator_for!(t4x4, crate::common::T4X4);
onebit_hdl::accelerator_for!(t4x3, crate::common::T4X3);
onebit_hdl::accelerator_for!(t3x2, crate::common::T3X2);
onebit_hdl::accelerator_for!(t1x1, crate::common::T1X1);

/// A value in the `bits`-wide port range, with the extremes (and ±1, 0)
/// drawn a quarter of the time.
pub fn port_value(rng: &mut SplitMix64, bits: u32) -> i64 {
    let (lo, hi) = ArrayConfig::port_range(bits);
    if rng.next_u64() % 4 == 0 {
        [lo, lo + 1, -1, 0, 1, hi - 1, hi][(rng.next_u64() % 7) as usize]
    } else {
        rng.range_i64(lo, hi)
    }
}

/// A random quantised layer; g and h over their whole port ranges.
pub fn random_layer(rng: &mut SplitMix64, cfg: &ArrayConfig, k: usize, n: usize) -> QuantizedLayer {
    let signs: Vec<i8> = (0..n * k)
        .map(|_| if rng.next_u64() & 1 == 0 { 1 } else { -1 })
        .collect();
    QuantizedLayer {
        in_features: k,
        out_features: n,
        signs: pack_sign_values(&signs, n, k),
        g: FixedVector {
            q: (0..k).map(|_| port_value(rng, cfg.g_bits) as i32).collect(),
            frac: 0,
        },
        h: FixedVector {
            q: (0..n).map(|_| port_value(rng, cfg.h_bits) as i32).collect(),
            frac: 0,
        },
    }
}

pub fn random_activations(rng: &mut SplitMix64, cfg: &ArrayConfig, m: usize, k: usize) -> Array2<i32> {
    Array2::from_shape_fn((m, k), |_| port_value(rng, cfg.act_bits) as i32)
}

/// Settle, rising edge, settle, falling edge, settle.
pub fn clock_cycle<B: Block>(uut: &mut B, clock: fn(&mut B) -> &mut Signal<In, Clock>) {
    assert!(simulate(uut, 200));
    clock(uut).next = Clock { clk: true };
    assert!(simulate(uut, 200));
    clock(uut).next = Clock { clk: false };
    assert!(simulate(uut, 200));
}

pub fn settle<B: Block>(uut: &mut B) {
    assert!(simulate(uut, 200));
}
