//! Shared by the hdl tests: the small array configurations
//! (onebit_hdl::presets::small), random values with extremes mixed in (from
//! onebit_core::synth), and
//! the rust-hdl clocking helpers.
#![allow(dead_code)]

use rust_hdl::prelude::*;

pub use onebit_hdl::presets::small::{t1x1, t3x2, t4x3, t4x4, T1X1, T3X2, T4X3};

// The random quantised layers (extremes mixed in) live in onebit_core::synth.
pub use onebit_core::synth::port_value;

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
