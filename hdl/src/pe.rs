//! `SignAccumulatePe`: one processing element of the weight-stationary array.
//! It holds one sign bit per weight bank (NB banks, so the loader can fill a
//! bank while tokens of earlier tiles still pass through the others) and adds
//! or subtracts its row's lane into the partial sum flowing south with one
//! adder. The token's bank arrives one-hot a cycle before its lane, and the
//! PE registers the selected bit: the adder's add/subtract control is then a
//! flip-flop, not a function of 2·NB inputs (which made yosys/ABC map every
//! adder bit through wide muxes: 111 LUT4 + 94 muxes per PE on ECP5 against
//! 14 LUT4 with the register).
//!
//! Ports (values two's complement, one clock):
//! | port       | dir | width | meaning |
//! |------------|-----|-------|---------|
//! | `clock`    | in  | 1     | the one clock |
//! | `lane_in`  | in  | P     | the row's lane, sign-extended to P bits once per row ([`SignExtend`]), broadcast to every PE of the row |
//! | `sel_in`   | in  | NB    | one-hot: the weight bank of the token whose lane arrives in the next cycle |
//! | `psum_in`  | in  | P     | partial sum from the north neighbour (0 in row 0) |
//! | `psum_out` | out | P     | registered `psum_in ± lane_in` (− when the selected bank's bit is 1), to the south |
//! | `wr_en`    | in  | NB    | write `wr_bit` into the banks whose bit is set (a weight beat) |
//! | `wr_bit`   | in  | 1     | this PE's bit of the weight beat being written |
//!
//! `L` = lane_bits, `P` = psum_bits = L + ceil(log2 R): the sum of R symmetric
//! L-bit lanes fits exactly, so no element needs a wider adder.

use crate::util::{high_mask, twos};

/// Sign extension of an L-bit lane to P bits, once per row of the array
/// (so no PE repeats it).
///
/// Ports: `lane` in L bits, `wide` out P bits.
#[derive(Clone, Debug, LogicBlock)]
pub struct SignExtend<const L: usize, const P: usize> {
    pub lane: Signal<In, Bits<L>>,
    pub wide: Signal<Out, Bits<P>>,
    half: Constant<Bits<L>>,
    mask: Constant<Bits<P>>,
}

impl<const L: usize, const P: usize> Default for SignExtend<L, P> {
    fn default() -> Self {
        assert!(P >= L);
        Self {
            lane: Default::default(),
            wide: Default::default(),
            half: Constant::new(twos::<L>(1 << (L - 1))),
            mask: Constant::new(high_mask::<P>(L)),
        }
    }
}

impl<const L: usize, const P: usize> Logic for SignExtend<L, P> {
    #[hdl_gen]
    fn update(&mut self) {
        self.wide.next = bit_cast::<P, L>(self.lane.val());
        if self.lane.val() >= self.half.val() {
            self.wide.next = bit_cast::<P, L>(self.lane.val()) | self.mask.val();
        }
    }
}
use rust_hdl::prelude::*;

#[derive(Clone, Debug, LogicBlock)]
pub struct SignAccumulatePe<const L: usize, const P: usize, const NB: usize> {
    pub clock: Signal<In, Clock>,
    pub lane_in: Signal<In, Bits<P>>,
    pub sel_in: Signal<In, Bits<NB>>,
    pub psum_in: Signal<In, Bits<P>>,
    pub psum_out: Signal<Out, Bits<P>>,
    pub wr_en: Signal<In, Bits<NB>>,
    pub wr_bit: Signal<In, Bit>,
    banks: DFF<Bits<NB>>,
    psum: DFF<Bits<P>>,
    subtract: DFF<Bit>,
    addend: Signal<Local, Bits<P>>,
    carry: Signal<Local, Bits<P>>,
    zero: Constant<Bits<P>>,
    one: Constant<Bits<P>>,
}

impl<const L: usize, const P: usize, const NB: usize> Default for SignAccumulatePe<L, P, NB> {
    fn default() -> Self {
        assert!(P >= L && P <= 32, "psum width {P} must be in lane width {L}..=32");
        Self {
            clock: Default::default(),
            lane_in: Default::default(),
            sel_in: Default::default(),
            psum_in: Default::default(),
            psum_out: Default::default(),
            wr_en: Default::default(),
            wr_bit: Default::default(),
            banks: Default::default(),
            psum: Default::default(),
            subtract: Default::default(),
            addend: Default::default(),
            carry: Default::default(),
            zero: Constant::new(twos::<P>(0)),
            one: Constant::new(twos::<P>(1)),
        }
    }
}

impl<const L: usize, const P: usize, const NB: usize> Logic for SignAccumulatePe<L, P, NB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, banks, psum, subtract);
        self.psum_out.next = self.psum.q.val();
        // A weight beat overwrites this PE's bit in the banks being loaded.
        self.banks.d.next = self.banks.q.val() & !self.wr_en.val();
        if self.wr_bit.val() {
            self.banks.d.next = (self.banks.q.val() & !self.wr_en.val()) | self.wr_en.val();
        }
        self.subtract.d.next = (self.banks.q.val() & self.sel_in.val()).any();
        // One adder: psum − a = psum + !a + 1, the +1 as the carry in.
        self.addend.next = self.lane_in.val();
        self.carry.next = self.zero.val();
        if self.subtract.q.val() {
            self.addend.next = !self.lane_in.val();
            self.carry.next = self.one.val();
        }
        self.psum.d.next = self.psum_in.val() + self.addend.val() + self.carry.val();
    }
}
