//! `GScaler`: one lane of the array's west edge. Multiplies a token's
//! activation x_q by the row's input scale g_q, rescales and saturates exactly as
//! `onebit_core::numerics::lane_value`:
//! lane = sat_L(rshift_round(x_q·g_q, lane_shift)), symmetric saturation to
//! ±(2^(L-1) − 1), round-half-up.
//!
//! Ports (all two's complement, one clock):
//! | port      | dir | width | meaning |
//! |-----------|-----|-------|---------|
//! | `clock`   | in  | 1     | the one clock |
//! | `x_in`    | in  | A     | this row's activation of the token being accepted |
//! | `g_in`    | in  | G     | scale-chain input (the next row's `g_out`, or the scale stream for the last row) |
//! | `g_shift` | in  | 1     | load `g_in` into this row's shadow g_q register (LOAD_G beat) |
//! | `g_swap`  | in  | 1     | `x_in` is a RUN's first token: use the shadow g_q from it on |
//! | `g_out`   | out | G     | this row's shadow g_q register (feeds the previous row's `g_in`) |
//! | `lane_out`| out | L     | registered lane: valid the cycle after `x_in` was presented |
//!
//! g_q is double-buffered like the weights: LOAD_G fills the shadow register
//! while a RUN may still be using the active one.
//!
//! Const generics: `A` = act_bits, `G` = g_bits, `L` = lane_bits; the lane shift
//! comes from the `ArrayConfig` at construction.

use crate::util::{high_mask, twos, twos_flipped, Mul16};
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

#[derive(Clone, Debug, LogicBlock)]
pub struct GScaler<const A: usize, const G: usize, const L: usize> {
    pub clock: Signal<In, Clock>,
    pub x_in: Signal<In, Bits<A>>,
    pub g_in: Signal<In, Bits<G>>,
    pub g_shift: Signal<In, Bit>,
    pub g_swap: Signal<In, Bit>,
    pub g_out: Signal<Out, Bits<G>>,
    pub lane_out: Signal<Out, Bits<L>>,
    g_reg: DFF<Bits<G>>,
    g_active: DFF<Bits<G>>,
    g_used: Signal<Local, Bits<G>>,
    lane_reg: DFF<Bits<L>>,
    mul: Mul16,
    x_ext: Signal<Local, Bits<16>>,
    g_ext: Signal<Local, Bits<16>>,
    x_neg: Signal<Local, Bit>,
    g_neg: Signal<Local, Bit>,
    product: Signal<Local, Bits<32>>,
    rounded: Signal<Local, Bits<32>>,
    rounded_flipped: Signal<Local, Bits<32>>,
    // Constants: sign thresholds, sign-extension masks, zero, rounding term,
    // saturation thresholds (sign-flipped), the saturated lane values.
    x_half: Constant<Bits<A>>,
    g_half: Constant<Bits<G>>,
    x_ext_mask: Constant<Bits<16>>,
    g_ext_mask: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    zero32: Constant<Bits<32>>,
    flip32: Constant<Bits<32>>,
    round_term: Constant<Bits<32>>,
    shift: Constant<Bits<8>>,
    above_max: Constant<Bits<32>>,
    below_min: Constant<Bits<32>>,
    lane_max: Constant<Bits<L>>,
    lane_min: Constant<Bits<L>>,
}

impl<const A: usize, const G: usize, const L: usize> GScaler<A, G, L> {
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!(
            (A, G, L),
            (cfg.act_bits as usize, cfg.g_bits as usize, cfg.lane_bits as usize)
        );
        let s = cfg.lane_shift() as i64;
        let m = ArrayConfig::sym_max(cfg.lane_bits);
        Self {
            clock: Default::default(),
            x_in: Default::default(),
            g_in: Default::default(),
            g_shift: Default::default(),
            g_swap: Default::default(),
            g_out: Default::default(),
            lane_out: Default::default(),
            g_reg: Default::default(),
            g_active: Default::default(),
            g_used: Default::default(),
            lane_reg: Default::default(),
            mul: Default::default(),
            x_ext: Default::default(),
            g_ext: Default::default(),
            x_neg: Default::default(),
            g_neg: Default::default(),
            product: Default::default(),
            rounded: Default::default(),
            rounded_flipped: Default::default(),
            x_half: Constant::new(twos::<A>(1 << (A - 1))),
            g_half: Constant::new(twos::<G>(1 << (G - 1))),
            x_ext_mask: Constant::new(high_mask::<16>(A)),
            g_ext_mask: Constant::new(high_mask::<16>(G)),
            zero16: Constant::new(0u64.into()),
            zero32: Constant::new(0u64.into()),
            flip32: Constant::new(twos::<32>(1 << 31)),
            round_term: Constant::new(twos::<32>(if s == 0 { 0 } else { 1 << (s - 1) })),
            shift: Constant::new(twos::<8>(s)),
            // lane > m  <=>  rounded >= (m+1)·2^s;  lane < -m  <=>  rounded < -m·2^s
            above_max: Constant::new(twos_flipped::<32>((m + 1) << s)),
            below_min: Constant::new(twos_flipped::<32>((-m) << s)),
            lane_max: Constant::new(twos::<L>(m)),
            lane_min: Constant::new(twos::<L>(-m)),
        }
    }
}

impl<const A: usize, const G: usize, const L: usize> Logic for GScaler<A, G, L> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, g_reg, g_active, lane_reg);
        if self.g_shift.val() {
            self.g_reg.d.next = self.g_in.val();
        }
        self.g_out.next = self.g_reg.q.val();
        self.lane_out.next = self.lane_reg.q.val();
        self.g_used.next = self.g_active.q.val();
        if self.g_swap.val() {
            self.g_used.next = self.g_reg.q.val();
            self.g_active.d.next = self.g_reg.q.val();
        }
        // Sign-extend both operands to 16 bits, then multiply magnitudes.
        self.x_neg.next = self.x_in.val() >= self.x_half.val();
        self.g_neg.next = self.g_used.val() >= self.g_half.val();
        self.x_ext.next = bit_cast::<16, A>(self.x_in.val());
        if self.x_neg.val() {
            self.x_ext.next = bit_cast::<16, A>(self.x_in.val()) | self.x_ext_mask.val();
        }
        self.g_ext.next = bit_cast::<16, G>(self.g_used.val());
        if self.g_neg.val() {
            self.g_ext.next = bit_cast::<16, G>(self.g_used.val()) | self.g_ext_mask.val();
        }
        self.mul.a.next = self.x_ext.val();
        if self.x_neg.val() {
            self.mul.a.next = self.zero16.val() - self.x_ext.val();
        }
        self.mul.b.next = self.g_ext.val();
        if self.g_neg.val() {
            self.mul.b.next = self.zero16.val() - self.g_ext.val();
        }
        self.product.next = self.mul.p.val();
        if self.x_neg.val() ^ self.g_neg.val() {
            self.product.next = self.zero32.val() - self.mul.p.val();
        }
        // Round half up, then saturate symmetrically; the shift is a bit slice.
        self.rounded.next = self.product.val() + self.round_term.val();
        self.rounded_flipped.next = self.rounded.val() ^ self.flip32.val();
        self.lane_reg.d.next = self.rounded.val().get_bits::<L>(self.shift.val().index());
        if self.rounded_flipped.val() >= self.above_max.val() {
            self.lane_reg.d.next = self.lane_max.val();
        }
        if self.rounded_flipped.val() < self.below_min.val() {
            self.lane_reg.d.next = self.lane_min.val();
        }
    }
}
