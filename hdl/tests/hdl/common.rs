//! Shared by the hdl tests: the small array configurations
//! (onebit_hdl::presets::small), random values with extremes mixed in, and
//! the rust-hdl clocking helpers.
#![allow(dead_code)]

use ndarray::Array2;
use onebit_core::numerics::FixedVector;
use onebit_core::pack::pack_sign_values;
use onebit_core::synth::SplitMix64;
use onebit_core::{ArrayConfig, QuantizedLayer};
use rust_hdl::prelude::*;

pub use onebit_hdl::presets::small::{t1x1, t3x2, t4x3, t4x4, T1X1, T3X2, T4X3};

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
