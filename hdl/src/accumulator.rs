//! `OutputAccumulator`: one per array column. Adds the column's partial sums
//! across K tiles in a RAM of `acc_depth` words (one per token of a RUN), and
//! serves that RAM to the drain path.
//!
//! A partial sum arriving with `first_in` is token 0 of a RUN; later ones are
//! tokens 1, 2, … in arrival order (bubbles carry `valid_in` = 0). Read, add
//! and write take two cycles: the address is presented in the arrival cycle,
//! the sum is written at the end of the next one. Two RUNs reach the same token
//! at least two cycles apart (the controller spends a cycle fetching each
//! command), so a read never misses the write before it.
//!
//! Ports (values two's complement, one clock):
//! | port         | dir | width | meaning |
//! |--------------|-----|-------|---------|
//! | `clock`      | in  | 1     | the one clock |
//! | `psum_in`    | in  | P     | the column's partial sum leaving the array |
//! | `valid_in`   | in  | 1     | `psum_in` belongs to a token |
//! | `first_in`   | in  | 1     | ... to the first token of a RUN (restart the token index) |
//! | `acc_in`     | in  | 1     | ... to a RUN with the ACC flag (add; else overwrite) |
//! | `drain`      | in  | 1     | the drain path owns the read port |
//! | `drain_addr` | in  | AD    | token whose sum the drain path reads |
//! | `acc_out`    | out | ACC   | read data: the sum of the token addressed in the previous cycle |
//!
//! `P` = psum_bits, `ACC` = acc_bits = lane_bits + ceil(log2 max_k) (exact for
//! K <= max_k), `AD` = ceil(log2 acc_depth) address bits.

use crate::util::{high_mask, twos};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct OutputAccumulator<const P: usize, const ACC: usize, const AD: usize> {
    pub clock: Signal<In, Clock>,
    pub psum_in: Signal<In, Bits<P>>,
    pub valid_in: Signal<In, Bit>,
    pub first_in: Signal<In, Bit>,
    pub acc_in: Signal<In, Bit>,
    pub drain: Signal<In, Bit>,
    pub drain_addr: Signal<In, Bits<AD>>,
    pub acc_out: Signal<Out, Bits<ACC>>,
    ram: RAM<Bits<ACC>, AD>,
    next_token: DFF<Bits<AD>>,
    wr_valid: DFF<Bit>,
    wr_acc: DFF<Bit>,
    wr_addr: DFF<Bits<AD>>,
    wr_psum: DFF<Bits<ACC>>,
    token: Signal<Local, Bits<AD>>,
    psum_ext: Signal<Local, Bits<ACC>>,
    psum_half: Constant<Bits<P>>,
    ext_mask: Constant<Bits<ACC>>,
    addr_zero: Constant<Bits<AD>>,
    addr_one: Constant<Bits<AD>>,
}

impl<const P: usize, const ACC: usize, const AD: usize> Default for OutputAccumulator<P, ACC, AD> {
    fn default() -> Self {
        assert!(ACC >= P && ACC <= 32);
        Self {
            clock: Default::default(),
            psum_in: Default::default(),
            valid_in: Default::default(),
            first_in: Default::default(),
            acc_in: Default::default(),
            drain: Default::default(),
            drain_addr: Default::default(),
            acc_out: Default::default(),
            ram: Default::default(),
            next_token: Default::default(),
            wr_valid: Default::default(),
            wr_acc: Default::default(),
            wr_addr: Default::default(),
            wr_psum: Default::default(),
            token: Default::default(),
            psum_ext: Default::default(),
            psum_half: Constant::new(twos::<P>(1 << (P - 1))),
            ext_mask: Constant::new(high_mask::<ACC>(P)),
            addr_zero: Constant::new(twos::<AD>(0)),
            addr_one: Constant::new(twos::<AD>(1)),
        }
    }
}

impl<const P: usize, const ACC: usize, const AD: usize> Logic for OutputAccumulator<P, ACC, AD> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, next_token, wr_valid, wr_acc, wr_addr, wr_psum);
        self.ram.read_clock.next = self.clock.val();
        self.ram.write_clock.next = self.clock.val();
        self.token.next = self.next_token.q.val();
        if self.first_in.val() {
            self.token.next = self.addr_zero.val();
        }
        if self.valid_in.val() {
            self.next_token.d.next = self.token.val() + self.addr_one.val();
        }
        self.psum_ext.next = bit_cast::<ACC, P>(self.psum_in.val());
        if self.psum_in.val() >= self.psum_half.val() {
            self.psum_ext.next = bit_cast::<ACC, P>(self.psum_in.val()) | self.ext_mask.val();
        }
        self.wr_valid.d.next = self.valid_in.val();
        self.wr_acc.d.next = self.acc_in.val();
        self.wr_addr.d.next = self.token.val();
        self.wr_psum.d.next = self.psum_ext.val();
        self.ram.read_address.next = self.token.val();
        if self.drain.val() {
            self.ram.read_address.next = self.drain_addr.val();
        }
        self.ram.write_address.next = self.wr_addr.q.val();
        self.ram.write_enable.next = self.wr_valid.q.val();
        self.ram.write_data.next = self.wr_psum.q.val();
        if self.wr_acc.q.val() {
            self.ram.write_data.next = self.ram.read_data.val() + self.wr_psum.q.val();
        }
        self.acc_out.next = self.ram.read_data.val();
    }
}
