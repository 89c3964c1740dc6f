//! `SignAccumulatePe`: one processing element of the weight-stationary array.
//! It holds one sign bit (plus a shadow bit, so the next tile's weights load
//! while the current tile computes), passes the activation east, and adds or
//! subtracts it into the partial sum flowing south with one adder.
//!
//! Ports (values two's complement, one clock):
//! | port           | dir | width | meaning |
//! |----------------|-----|-------|---------|
//! | `clock`        | in  | 1     | the one clock |
//! | `act_in`       | in  | L     | lane from the west neighbour (or the skew line) |
//! | `swap_in`      | in  | 1     | travels with `act_in`: this token is the first of a RUN, use and keep the shadow bit |
//! | `act_out`      | out | L     | `act_in` registered, to the east neighbour |
//! | `swap_out`     | out | 1     | `swap_in` registered, to the east neighbour |
//! | `psum_in`      | in  | P     | partial sum from the north neighbour (0 in row 0) |
//! | `psum_out`     | out | P     | registered `psum_in ± act_in` (− when the sign bit is 1), to the south |
//! | `shadow_in`    | in  | 1     | weight-load chain input |
//! | `shadow_shift` | in  | 1     | load `shadow_in` into the shadow bit (one weight beat) |
//! | `shadow_out`   | out | 1     | the shadow bit, to the next element of the load chain |
//!
//! `L` = lane_bits, `P` = psum_bits = L + ceil(log2 R): the sum of R symmetric
//! L-bit lanes fits exactly, so no element needs a wider adder.

use crate::util::{high_mask, twos};
use rust_hdl::prelude::*;

#[derive(Clone, Debug, LogicBlock)]
pub struct SignAccumulatePe<const L: usize, const P: usize> {
    pub clock: Signal<In, Clock>,
    pub act_in: Signal<In, Bits<L>>,
    pub swap_in: Signal<In, Bit>,
    pub act_out: Signal<Out, Bits<L>>,
    pub swap_out: Signal<Out, Bit>,
    pub psum_in: Signal<In, Bits<P>>,
    pub psum_out: Signal<Out, Bits<P>>,
    pub shadow_in: Signal<In, Bit>,
    pub shadow_shift: Signal<In, Bit>,
    pub shadow_out: Signal<Out, Bit>,
    act: DFF<Bits<L>>,
    swap: DFF<Bit>,
    psum: DFF<Bits<P>>,
    shadow: DFF<Bit>,
    active: DFF<Bit>,
    subtract: Signal<Local, Bit>,
    act_ext: Signal<Local, Bits<P>>,
    addend: Signal<Local, Bits<P>>,
    carry: Signal<Local, Bits<P>>,
    zero: Constant<Bits<P>>,
    one: Constant<Bits<P>>,
    lane_half: Constant<Bits<L>>,
    ext_mask: Constant<Bits<P>>,
}

impl<const L: usize, const P: usize> Default for SignAccumulatePe<L, P> {
    fn default() -> Self {
        assert!(P >= L && P <= 32, "psum width {P} must be in lane width {L}..=32");
        Self {
            clock: Default::default(),
            act_in: Default::default(),
            swap_in: Default::default(),
            act_out: Default::default(),
            swap_out: Default::default(),
            psum_in: Default::default(),
            psum_out: Default::default(),
            shadow_in: Default::default(),
            shadow_shift: Default::default(),
            shadow_out: Default::default(),
            act: Default::default(),
            swap: Default::default(),
            psum: Default::default(),
            shadow: Default::default(),
            active: Default::default(),
            subtract: Default::default(),
            act_ext: Default::default(),
            addend: Default::default(),
            carry: Default::default(),
            zero: Constant::new(twos::<P>(0)),
            one: Constant::new(twos::<P>(1)),
            lane_half: Constant::new(twos::<L>(1 << (L - 1))),
            ext_mask: Constant::new(high_mask::<P>(L)),
        }
    }
}

impl<const L: usize, const P: usize> Logic for SignAccumulatePe<L, P> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, act, swap, psum, shadow, active);
        self.act.d.next = self.act_in.val();
        self.swap.d.next = self.swap_in.val();
        self.act_out.next = self.act.q.val();
        self.swap_out.next = self.swap.q.val();
        self.psum_out.next = self.psum.q.val();
        self.shadow_out.next = self.shadow.q.val();
        if self.shadow_shift.val() {
            self.shadow.d.next = self.shadow_in.val();
        }
        // The first token of a RUN already uses the new sign: the swap travels
        // with it, so tokens of the previous RUN still in flight keep theirs.
        self.subtract.next = self.active.q.val();
        if self.swap_in.val() {
            self.subtract.next = self.shadow.q.val();
            self.active.d.next = self.shadow.q.val();
        }
        self.act_ext.next = bit_cast::<P, L>(self.act_in.val());
        if self.act_in.val() >= self.lane_half.val() {
            self.act_ext.next = bit_cast::<P, L>(self.act_in.val()) | self.ext_mask.val();
        }
        // One adder: psum − a = psum + !a + 1, the +1 as the carry in.
        self.addend.next = self.act_ext.val();
        self.carry.next = self.zero.val();
        if self.subtract.val() {
            self.addend.next = !self.act_ext.val();
            self.carry.next = self.one.val();
        }
        self.psum.d.next = self.psum_in.val() + self.addend.val() + self.carry.val();
    }
}
