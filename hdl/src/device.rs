//! The rust-hdl simulation of the accelerator behind the pins contract
//! [`DevicePorts`], so the driver clocks it exactly as it clocks Verilator.
//! Uses rust-hdl's direct `simulate()` settle loop (the threaded `Simulation`
//! is about 1000× slower).

use crate::top::OneBitAccelerator;
use onebit_core::ports::DevicePorts;
use rust_hdl::prelude::*;

/// Settle iterations allowed per evaluation before the design counts as
/// oscillating.
const SETTLE_LIMIT: usize = 200;

/// A `Bits<N>` from little-endian u32 words (missing words are 0).
pub fn bits_from_words<const N: usize>(words: &[u32]) -> Bits<N> {
    if N <= 64 {
        let mut v = 0u64;
        for (i, &w) in words.iter().enumerate().take(2) {
            v |= (w as u64) << (32 * i);
        }
        let mask = if N == 64 { u64::MAX } else { (1u64 << N) - 1 };
        Bits::<N>::from(v & mask)
    } else {
        let mut b = Bits::<N>::default();
        for i in 0..N {
            if words.get(i / 32).is_some_and(|w| (w >> (i % 32)) & 1 == 1) {
                b = b.replace_bit(i, true);
            }
        }
        b
    }
}

/// Little-endian u32 words of a `Bits<N>`.
pub fn words_from_bits<const N: usize>(b: Bits<N>) -> Vec<u32> {
    let mut w = vec![0u32; N.div_ceil(32)];
    if N <= 64 {
        let v = b.to_u64();
        for (i, x) in w.iter_mut().enumerate() {
            *x = (v >> (32 * i)) as u32;
        }
    } else {
        for i in 0..N {
            if b.get_bit(i) {
                w[i / 32] |= 1 << (i % 32);
            }
        }
    }
    w
}

/// Propagate combinational logic until it settles; a design that keeps
/// changing (a combinational loop) is a bug, so this panics.
pub(crate) fn settle<B: Block>(uut: &mut B) {
    assert!(
        simulate(uut, SETTLE_LIMIT),
        "the design's logic did not settle in {SETTLE_LIMIT} iterations"
    );
}

impl<
        const R: usize,
        const C: usize,
        const A: usize,
        const G: usize,
        const L: usize,
        const P: usize,
        const ACC: usize,
        const H: usize,
        const O: usize,
        const WB: usize,
        const X: usize,
        const AD: usize,
        const RL: usize,
        const CP: usize,
        const CA: usize,
        const NB: usize,
        const B: usize,
        const OW: usize,
        const NOB: usize,
        const S: usize,
        const OB: usize,
    > DevicePorts for OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB>
{
    fn set_reset(&mut self, reset: bool) {
        self.reset.next = reset;
    }
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.cmd_valid.next = valid;
        self.cmd_data.next = (data as u64).into();
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.w_valid.next = valid;
        self.w_data.next = bits_from_words::<WB>(data);
    }
    fn set_scale(&mut self, valid: bool, data: &[u32]) {
        self.s_valid.next = valid;
        self.s_data.next = bits_from_words::<S>(data);
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.x_valid.next = valid;
        self.x_data.next = bits_from_words::<X>(data);
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.o_ready.next = ready;
    }
    fn eval(&mut self) {
        settle(self);
    }
    fn cmd_ready(&self) -> bool {
        self.cmd_ready.val()
    }
    fn weight_ready(&self) -> bool {
        self.w_ready.val()
    }
    fn scale_ready(&self) -> bool {
        self.s_ready.val()
    }
    fn activation_ready(&self) -> bool {
        self.x_ready.val()
    }
    fn out_valid(&self) -> bool {
        self.o_valid.val()
    }
    fn out_data(&self) -> Vec<u32> {
        words_from_bits(self.o_data.val())
    }
    fn tick(&mut self) {
        self.clock.next = Clock { clk: true };
        settle(self);
        self.clock.next = Clock { clk: false };
        settle(self);
    }
}
