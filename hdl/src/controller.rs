//! `Controller`: sequences the accelerator with four units that work at the
//! same time, so that the weight stream, the array and the output stream
//! are all busy at once (docs/hardware.md derives the timing):
//!
//! - **fetch**: a one-command buffer in front of the loader, so the loader
//!   goes from one command to the next without a gap.
//! - **loader**: executes commands in order. A TILE takes one scale beat (g)
//!   and `beats_per_tile` weight beats into the next of NB weight banks, then
//!   writes the bank's descriptor (tokens, ACC flag, accumulator bank). A
//!   DRAIN takes one scale beat (h) into the h bank of the accumulator bank
//!   the TILEs before it filled, marks that bank for draining, and switches
//!   the following TILEs to the other accumulator bank.
//! - **runner**: takes the loaded weight banks in order and accepts each
//!   tile's tokens, one per cycle, going straight from one tile to the next
//!   (a tile's first token is taken in the cycle its bank shows loaded).
//! - **drain**: reads a marked accumulator bank token by token (a whole row
//!   of C sums per read) into the row register, which feeds the output
//!   beats (`out_words_per_beat` words each) to the h scalers.
//!
//! Interlocks (each can be switched off for the tests that prove it is
//! needed, see [`Interlocks`]):
//! - the loader fills a weight bank only when its descriptor is empty and
//!   the last token that used it has passed every row (`hold`);
//! - the runner starts a tile only when its bank is loaded and, if the tile
//!   accumulates into a bank with an earlier drain still pending, only after
//!   that drain (`wait`, set when the tile was loaded);
//! - a drain starts when no tile loaded before it still has tokens for its
//!   bank and the last token's sums are written (`flush`);
//! - a DRAIN's h beat waits until the previous drain of that bank is done
//!   (its h bank is in use until then).
//!
//! Ports (one clock; NB = weight_banks, B = beats_per_tile, NOB = output
//! beats per token, AD = accumulator address bits):
//! | port | dir | width | meaning |
//! |------|-----|-------|---------|
//! | `clock`, `reset` | in | 1 | the clock; `reset` returns every unit to idle and empty |
//! | `cmd_data`, `cmd_valid`, `cmd_ready` | in, in, out | 32, 1, 1 | command stream |
//! | `s_valid`, `s_ready` | in, out | 1 | scale stream handshake (data goes to the g and h banks) |
//! | `w_valid`, `w_ready` | in, out | 1 | weight stream handshake (data goes to the array's write stage) |
//! | `x_valid`, `x_ready` | in, out | 1 | activation stream handshake (data goes to the g scalers) |
//! | `o_ready`, `o_valid` | in | 1 | output stream consumer ready; the h scalers' output stage holds a beat |
//! | `g_wr` | out | NB | write the scale beat's g into these g banks |
//! | `h_wr` | out | 2 | write the scale beat's h into these h banks |
//! | `w_fire` | out | 1 | a weight beat is taken this cycle |
//! | `w_group` | out | B | one-hot: which beat of its tile it is |
//! | `w_bank` | out | NB | one-hot: the weight bank being loaded |
//! | `run_sel` | out | NB | one-hot: the bank of the token presented on `x_data` (for the g scalers, and for the array a cycle ahead of the token's lanes) |
//! | `tag_valid`, `tag_first`, `tag_acc`, `tag_accbank` | out | 1 | registered: the lanes leaving the g scalers are a token, the first of its tile, of an ACC tile, for accumulator bank 1 |
//! | `drain_rd`, `drain_bank`, `drain_addr` | out | 1, 1, AD | the drain reads this token of this bank |
//! | `row_load` | out | 1 | load the row register from the accumulators' read port |
//! | `pop` | out | 1 | move one output beat from the row register into the h scalers |
//! | `pop_beat` | out | NOB | one-hot: which beat of the row |
//! | `pop_bank` | out | 1 | the h bank of the row |
//! | `advance` | out | 1 | the h scalers may advance (`!o_valid || o_ready`) |

use crate::util::twos;
use onebit_core::wire::Opcode;
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

/// The interlocks of the controller and the accumulators' forwarding path.
/// Every one is on in real hardware; the tests switch one off at a time to
/// show that some run then goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interlocks {
    /// The loader waits until the last token that used a weight bank has passed every row.
    pub bank_hold: bool,
    /// A tile waits for an earlier pending drain of its accumulator bank.
    pub drain_before_reuse: bool,
    /// A drain waits until the last token's sums are written.
    pub flush: bool,
    /// A drain waits until no tile loaded before it still has tokens for its bank.
    pub tiles_before_drain: bool,
    /// A DRAIN's h beat waits until the previous drain of that bank is done.
    pub h_bank_free: bool,
    /// The accumulators forward a sum to a token of the next tile for the same word.
    pub forward: bool,
}

impl Default for Interlocks {
    fn default() -> Self {
        Interlocks {
            bank_hold: true,
            drain_before_reuse: true,
            flush: true,
            tiles_before_drain: true,
            h_bank_free: true,
            forward: true,
        }
    }
}

#[derive(LogicBlock)]
pub struct Controller<const AD: usize, const NB: usize, const B: usize, const NOB: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Signal<In, Bits<32>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub s_valid: Signal<In, Bit>,
    pub s_ready: Signal<Out, Bit>,
    pub w_valid: Signal<In, Bit>,
    pub w_ready: Signal<Out, Bit>,
    pub x_valid: Signal<In, Bit>,
    pub x_ready: Signal<Out, Bit>,
    pub o_ready: Signal<In, Bit>,
    pub o_valid: Signal<In, Bit>,
    pub g_wr: Signal<Out, Bits<NB>>,
    pub h_wr: Signal<Out, Bits<2>>,
    pub w_fire: Signal<Out, Bit>,
    pub w_group: Signal<Out, Bits<B>>,
    pub w_bank: Signal<Out, Bits<NB>>,
    pub run_sel: Signal<Out, Bits<NB>>,
    pub tag_valid: Signal<Out, Bit>,
    pub tag_first: Signal<Out, Bit>,
    pub tag_acc: Signal<Out, Bit>,
    pub tag_accbank: Signal<Out, Bit>,
    pub drain_rd: Signal<Out, Bit>,
    pub drain_bank: Signal<Out, Bit>,
    pub drain_addr: Signal<Out, Bits<AD>>,
    pub row_load: Signal<Out, Bit>,
    pub pop: Signal<Out, Bit>,
    pub pop_beat: Signal<Out, Bits<NOB>>,
    pub pop_bank: Signal<Out, Bit>,
    pub advance: Signal<Out, Bit>,
    // Fetch buffer.
    cb_valid: DFF<Bit>,
    cb_word: DFF<Bits<32>>,
    // Loader.
    ld_valid: DFF<Bit>,
    ld_tile: DFF<Bit>,
    ld_count: DFF<Bits<16>>,
    ld_acc: DFF<Bit>,
    ld_scale_left: DFF<Bit>,
    ld_w_left: DFF<Bits<16>>,
    ld_group: DFF<Bits<B>>,
    ld_bank: DFF<Bits<8>>,
    acc_sel: DFF<Bit>,
    // Weight bank descriptors: loaded (waiting for or being run), tokens,
    // ACC flag, accumulator bank, "an earlier drain of that bank was pending
    // when the tile was loaded", and cycles until the last token that used
    // the bank has passed every row.
    bank_full: Vec<DFF<Bit>>,
    bank_count: Vec<DFF<Bits<16>>>,
    bank_acc: Vec<DFF<Bit>>,
    bank_accbank: Vec<DFF<Bit>>,
    bank_wait: Vec<DFF<Bit>>,
    bank_hold: Vec<DFF<Bits<16>>>,
    /// `full` a cycle late: a tile's first token may be accepted only once
    /// its last beat is in the PEs (the write stage takes a cycle).
    bank_seen: Vec<DFF<Bit>>,
    // Runner.
    run_active: DFF<Bit>,
    run_left: DFF<Bits<16>>,
    run_first: DFF<Bit>,
    run_acc: DFF<Bit>,
    run_accbank: DFF<Bit>,
    run_bank: DFF<Bits<8>>,
    tag_valid_r: DFF<Bit>,
    tag_first_r: DFF<Bit>,
    tag_acc_r: DFF<Bit>,
    tag_accbank_r: DFF<Bit>,
    flush0: DFF<Bits<16>>,
    flush1: DFF<Bits<16>>,
    // Drain: pending marks per accumulator bank, the reader, the row register.
    dp0: DFF<Bit>,
    dp1: DFF<Bit>,
    dcount0: DFF<Bits<16>>,
    dcount1: DFF<Bits<16>>,
    dr_bank: DFF<Bit>,
    dr_active: DFF<Bit>,
    dr_count: DFF<Bits<16>>,
    rd_valid: DFF<Bit>,
    rd_token: DFF<Bits<16>>,
    rd_next: DFF<Bits<16>>,
    row_valid: DFF<Bit>,
    row_last: DFF<Bit>,
    row_bank: DFF<Bit>,
    row_beat: DFF<Bits<NOB>>,
    // Combinational helpers.
    opcode: Signal<Local, Bits<4>>,
    count: Signal<Local, Bits<16>>,
    take_cmd: Signal<Local, Bit>,
    ld_done: Signal<Local, Bit>,
    bank_free: Signal<Local, Bit>,
    ld_sel: Signal<Local, Bits<NB>>,
    s_fire: Signal<Local, Bit>,
    w_fire_l: Signal<Local, Bit>,
    run_oh: Signal<Local, Bits<NB>>,
    run_next: Signal<Local, Bits<8>>,
    ld_next: Signal<Local, Bits<8>>,
    accept: Signal<Local, Bit>,
    run_last: Signal<Local, Bit>,
    cur_left: Signal<Local, Bits<16>>,
    cur_first: Signal<Local, Bit>,
    cur_acc: Signal<Local, Bit>,
    cur_accbank: Signal<Local, Bit>,
    cand_ready: Signal<Local, Bit>,
    cand_count: Signal<Local, Bits<16>>,
    cand_acc: Signal<Local, Bit>,
    cand_accbank: Signal<Local, Bit>,
    busy0: Signal<Local, Bit>,
    busy1: Signal<Local, Bit>,
    dr_start: Signal<Local, Bit>,
    dr_start_count: Signal<Local, Bits<16>>,
    consume: Signal<Local, Bit>,
    row_free: Signal<Local, Bit>,
    pop_l: Signal<Local, Bit>,
    pop_last_beat: Signal<Local, Bit>,
    drain_done: Signal<Local, Bit>,
    drain_done_bank: Signal<Local, Bit>,
    unused_cmd_bits: Signal<Local, Bit>,
    // Constants.
    op_tile: Constant<Bits<4>>,
    op_drain: Constant<Bits<4>>,
    zero: Constant<Bits<16>>,
    one: Constant<Bits<16>>,
    beats: Constant<Bits<16>>,
    nb_last: Constant<Bits<8>>,
    bank_zero: Constant<Bits<8>>,
    bank_one: Constant<Bits<8>>,
    hold_cycles: Constant<Bits<16>>,
    flush_cycles: Constant<Bits<16>>,
    group_first: Constant<Bits<B>>,
    beat_first: Constant<Bits<NOB>>,
    beat_last: Constant<Bits<NOB>>,
    nb_zero: Constant<Bits<NB>>,
    nb_one: Constant<Bits<NB>>,
    h_none: Constant<Bits<2>>,
    h_bank0: Constant<Bits<2>>,
    h_bank1: Constant<Bits<2>>,
    shift_one: Constant<Bits<8>>,
    addr_zero: Constant<Bits<AD>>,
    lock_hold: Constant<Bit>,
    lock_reuse: Constant<Bit>,
    lock_flush: Constant<Bit>,
    lock_tiles: Constant<Bit>,
    lock_h: Constant<Bit>,
}

impl<const AD: usize, const NB: usize, const B: usize, const NOB: usize> Controller<AD, NB, B, NOB> {
    /// Cycles a weight bank stays reserved after its tile's last token was
    /// accepted (at cycle t): row r's PEs read the bank (into their sign
    /// register) at t + r, so row R−1 at t + R − 1; a beat the loader takes
    /// at cycle y is written at the end of y + 1, and the loader may take
    /// one from t + 1 + hold on. So hold ≥ R − 3; R − 1 keeps two cycles to
    /// spare.
    pub fn hold_cycles(cfg: &ArrayConfig) -> usize {
        cfg.rows.saturating_sub(1)
    }
    /// Cycles from accepting a token until the drain may address its sums:
    /// the lanes leave the g scalers a cycle after the token is accepted, the
    /// sums leave the array R cycles later, and the accumulator writes them
    /// at the end of the next cycle; the drain's first read must come at a
    /// later edge than that write. Exact: R + 1 corrupts results (tested).
    pub fn flush_cycles(cfg: &ArrayConfig) -> usize {
        cfg.rows + 2
    }

    pub fn new(cfg: &ArrayConfig, locks: Interlocks) -> Self {
        assert_eq!((NB, B, NOB), (cfg.weight_banks, cfg.beats_per_tile(), cfg.out_beats_per_token()));
        let c16 = |v: usize| Constant::new(twos::<16>(v as i64));
        let op = |v: Opcode| Constant::new(twos::<4>(v as i64));
        let bit = |v: bool| Constant::new(v);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: Default::default(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            s_valid: Default::default(),
            s_ready: Default::default(),
            w_valid: Default::default(),
            w_ready: Default::default(),
            x_valid: Default::default(),
            x_ready: Default::default(),
            o_ready: Default::default(),
            o_valid: Default::default(),
            g_wr: Default::default(),
            h_wr: Default::default(),
            w_fire: Default::default(),
            w_group: Default::default(),
            w_bank: Default::default(),
            run_sel: Default::default(),
            tag_valid: Default::default(),
            tag_first: Default::default(),
            tag_acc: Default::default(),
            tag_accbank: Default::default(),
            drain_rd: Default::default(),
            drain_bank: Default::default(),
            drain_addr: Default::default(),
            row_load: Default::default(),
            pop: Default::default(),
            pop_beat: Default::default(),
            pop_bank: Default::default(),
            advance: Default::default(),
            cb_valid: Default::default(),
            cb_word: Default::default(),
            ld_valid: Default::default(),
            ld_tile: Default::default(),
            ld_count: Default::default(),
            ld_acc: Default::default(),
            ld_scale_left: Default::default(),
            ld_w_left: Default::default(),
            ld_group: Default::default(),
            ld_bank: Default::default(),
            acc_sel: Default::default(),
            bank_full: (0..NB).map(|_| DFF::default()).collect(),
            bank_count: (0..NB).map(|_| DFF::default()).collect(),
            bank_acc: (0..NB).map(|_| DFF::default()).collect(),
            bank_accbank: (0..NB).map(|_| DFF::default()).collect(),
            bank_wait: (0..NB).map(|_| DFF::default()).collect(),
            bank_hold: (0..NB).map(|_| DFF::default()).collect(),
            bank_seen: (0..NB).map(|_| DFF::default()).collect(),
            run_active: Default::default(),
            run_left: Default::default(),
            run_first: Default::default(),
            run_acc: Default::default(),
            run_accbank: Default::default(),
            run_bank: Default::default(),
            tag_valid_r: Default::default(),
            tag_first_r: Default::default(),
            tag_acc_r: Default::default(),
            tag_accbank_r: Default::default(),
            flush0: Default::default(),
            flush1: Default::default(),
            dp0: Default::default(),
            dp1: Default::default(),
            dcount0: Default::default(),
            dcount1: Default::default(),
            dr_bank: Default::default(),
            dr_active: Default::default(),
            dr_count: Default::default(),
            rd_valid: Default::default(),
            rd_token: Default::default(),
            rd_next: Default::default(),
            row_valid: Default::default(),
            row_last: Default::default(),
            row_bank: Default::default(),
            row_beat: Default::default(),
            opcode: Default::default(),
            count: Default::default(),
            take_cmd: Default::default(),
            ld_done: Default::default(),
            bank_free: Default::default(),
            ld_sel: Default::default(),
            s_fire: Default::default(),
            w_fire_l: Default::default(),
            run_oh: Default::default(),
            run_next: Default::default(),
            ld_next: Default::default(),
            accept: Default::default(),
            run_last: Default::default(),
            cur_left: Default::default(),
            cur_first: Default::default(),
            cur_acc: Default::default(),
            cur_accbank: Default::default(),
            cand_ready: Default::default(),
            cand_count: Default::default(),
            cand_acc: Default::default(),
            cand_accbank: Default::default(),
            busy0: Default::default(),
            busy1: Default::default(),
            dr_start: Default::default(),
            dr_start_count: Default::default(),
            consume: Default::default(),
            row_free: Default::default(),
            pop_l: Default::default(),
            pop_last_beat: Default::default(),
            drain_done: Default::default(),
            drain_done_bank: Default::default(),
            unused_cmd_bits: Default::default(),
            op_tile: op(Opcode::Tile),
            op_drain: op(Opcode::Drain),
            zero: c16(0),
            one: c16(1),
            beats: c16(cfg.beats_per_tile()),
            nb_last: Constant::new(twos::<8>(NB as i64 - 1)),
            bank_zero: Constant::new(twos::<8>(0)),
            bank_one: Constant::new(twos::<8>(1)),
            hold_cycles: c16(Self::hold_cycles(cfg)),
            flush_cycles: c16(Self::flush_cycles(cfg)),
            group_first: Constant::new(Bits::<B>::default().replace_bit(0, true)),
            beat_first: Constant::new(Bits::<NOB>::default().replace_bit(0, true)),
            beat_last: Constant::new(Bits::<NOB>::default().replace_bit(NOB - 1, true)),
            nb_zero: Constant::new(twos::<NB>(0)),
            nb_one: Constant::new(twos::<NB>(1)),
            h_none: Constant::new(twos::<2>(0)),
            h_bank0: Constant::new(twos::<2>(1)),
            h_bank1: Constant::new(twos::<2>(2)),
            shift_one: Constant::new(twos::<8>(1)),
            addr_zero: Constant::new(twos::<AD>(0)),
            lock_hold: bit(locks.bank_hold),
            lock_reuse: bit(locks.drain_before_reuse),
            lock_flush: bit(locks.flush),
            lock_tiles: bit(locks.tiles_before_drain),
            lock_h: bit(locks.h_bank_free),
        }
    }
}

impl<const AD: usize, const NB: usize, const B: usize, const NOB: usize> Logic for Controller<AD, NB, B, NOB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, cb_valid, cb_word, ld_valid, ld_tile, ld_count, ld_acc, ld_scale_left, ld_w_left, ld_group,
            ld_bank, acc_sel, run_active, run_left, run_first, run_acc, run_accbank, run_bank, tag_valid_r,
            tag_first_r, tag_acc_r, tag_accbank_r, flush0, flush1, dp0, dp1, dcount0, dcount1, dr_bank,
            dr_active, dr_count, rd_valid, rd_token, rd_next, row_valid, row_last, row_bank, row_beat
        );
        for b in 0..NB {
            self.bank_full[b].clock.next = self.clock.val();
            self.bank_count[b].clock.next = self.clock.val();
            self.bank_acc[b].clock.next = self.clock.val();
            self.bank_accbank[b].clock.next = self.clock.val();
            self.bank_wait[b].clock.next = self.clock.val();
            self.bank_hold[b].clock.next = self.clock.val();
            self.bank_full[b].d.next = self.bank_full[b].q.val();
            self.bank_count[b].d.next = self.bank_count[b].q.val();
            self.bank_acc[b].d.next = self.bank_acc[b].q.val();
            self.bank_accbank[b].d.next = self.bank_accbank[b].q.val();
            self.bank_wait[b].d.next = self.bank_wait[b].q.val();
            self.bank_hold[b].d.next = self.bank_hold[b].q.val();
            self.bank_seen[b].clock.next = self.clock.val();
            self.bank_seen[b].d.next = self.bank_full[b].q.val();
        }
        self.opcode.next = self.cb_word.q.val().get_bits::<4>(0);
        self.count.next = self.cb_word.q.val().get_bits::<16>(16);
        // Bits [15:5] are reserved.
        self.unused_cmd_bits.next = self.cb_word.q.val().get_bits::<11>(5).xor();
        self.advance.next = !self.o_valid.val() | self.o_ready.val();

        // ---- Fetch: a one-command buffer, filled whenever it is empty.
        self.cmd_ready.next = !self.cb_valid.q.val();
        if self.cmd_valid.val() & !self.cb_valid.q.val() {
            self.cb_valid.d.next = true;
            self.cb_word.d.next = self.cmd_data.val();
        }

        // ---- Loader.
        self.ld_next.next = self.ld_bank.q.val() + self.bank_one.val();
        if self.ld_bank.q.val() == self.nb_last.val() {
            self.ld_next.next = self.bank_zero.val();
        }
        self.ld_sel.next = self.nb_one.val() << self.ld_bank.q.val();
        self.bank_free.next = false;
        for b in 0..NB {
            if self.ld_bank.q.val().index() == b {
                self.bank_free.next = !self.bank_full[b].q.val()
                    & ((self.bank_hold[b].q.val() == self.zero.val()) | !self.lock_hold.val());
            }
        }
        self.s_ready.next = false;
        self.w_ready.next = false;
        self.g_wr.next = self.nb_zero.val();
        self.h_wr.next = self.h_none.val();
        if self.ld_valid.q.val() & self.ld_tile.q.val() & self.bank_free.val() {
            self.s_ready.next = self.ld_scale_left.q.val();
            self.w_ready.next = self.ld_w_left.q.val() != self.zero.val();
        }
        if self.ld_valid.q.val() & !self.ld_tile.q.val() {
            self.s_ready.next = self.ld_scale_left.q.val();
            if self.lock_h.val() & !self.acc_sel.q.val() & self.dp0.q.val() {
                self.s_ready.next = false;
            }
            if self.lock_h.val() & self.acc_sel.q.val() & self.dp1.q.val() {
                self.s_ready.next = false;
            }
        }
        self.s_fire.next = self.s_valid.val() & self.s_ready.val();
        self.w_fire_l.next = self.w_valid.val() & self.w_ready.val();
        self.w_fire.next = self.w_fire_l.val();
        self.w_group.next = self.ld_group.q.val();
        self.w_bank.next = self.ld_sel.val();
        if self.s_fire.val() {
            self.ld_scale_left.d.next = false;
            if self.ld_tile.q.val() {
                self.g_wr.next = self.ld_sel.val();
            } else {
                self.h_wr.next = self.h_bank0.val();
                if self.acc_sel.q.val() {
                    self.h_wr.next = self.h_bank1.val();
                }
            }
        }
        if self.w_fire_l.val() {
            self.ld_w_left.d.next = self.ld_w_left.q.val() - self.one.val();
            self.ld_group.d.next = self.ld_group.q.val() << self.shift_one.val();
        }
        // Done when both the scale beat and the last weight beat are in.
        self.ld_done.next = self.ld_valid.q.val()
            & (!self.ld_scale_left.q.val() | self.s_fire.val())
            & ((self.ld_w_left.q.val() == self.zero.val())
                | ((self.ld_w_left.q.val() == self.one.val()) & self.w_fire_l.val()));
        // A finished DRAIN marks its bank and switches TILEs to the other.
        if self.ld_done.val() & !self.ld_tile.q.val() {
            self.acc_sel.d.next = !self.acc_sel.q.val();
            if self.acc_sel.q.val() {
                self.dp1.d.next = true;
                self.dcount1.d.next = self.ld_count.q.val();
            } else {
                self.dp0.d.next = true;
                self.dcount0.d.next = self.ld_count.q.val();
            }
        }
        // Take the next command when idle or finishing (no gap between tiles).
        self.take_cmd.next = self.cb_valid.q.val() & (!self.ld_valid.q.val() | self.ld_done.val());
        if self.ld_done.val() {
            self.ld_valid.d.next = false;
        }
        if self.take_cmd.val() {
            self.cb_valid.d.next = false;
            self.ld_count.d.next = self.count.val();
            self.ld_acc.d.next = self.cb_word.q.val().get_bit(4);
            self.ld_group.d.next = self.group_first.val();
            if (self.opcode.val() == self.op_tile.val()) & (self.count.val() != self.zero.val()) {
                self.ld_valid.d.next = true;
                self.ld_tile.d.next = true;
                self.ld_scale_left.d.next = true;
                self.ld_w_left.d.next = self.beats.val();
            }
            if (self.opcode.val() == self.op_drain.val()) & (self.count.val() != self.zero.val()) {
                self.ld_valid.d.next = true;
                self.ld_tile.d.next = false;
                self.ld_scale_left.d.next = true;
                self.ld_w_left.d.next = self.zero.val();
            }
        }

        // ---- Drain completion (the row register's last beat of a drain);
        // needed by the loader's descriptors and the runner below.
        self.row_free.next = !self.row_valid.q.val();
        self.pop_l.next = self.row_valid.q.val() & self.advance.val();
        self.pop_last_beat.next = self.pop_l.val() & ((self.row_beat.q.val() & self.beat_last.val()).any());
        if self.pop_last_beat.val() {
            self.row_free.next = true;
        }
        self.drain_done.next = self.pop_last_beat.val() & self.row_last.q.val();
        self.drain_done_bank.next = self.row_bank.q.val();

        // ---- Bank descriptors: hold countdowns, and loads.
        for b in 0..NB {
            if self.bank_hold[b].q.val() != self.zero.val() {
                self.bank_hold[b].d.next = self.bank_hold[b].q.val() - self.one.val();
            }
            if self.drain_done.val() & (self.bank_accbank[b].q.val() == self.drain_done_bank.val()) {
                self.bank_wait[b].d.next = false;
            }
            if self.ld_done.val() & self.ld_tile.q.val() & (self.ld_bank.q.val().index() == b) {
                self.bank_full[b].d.next = true;
                self.bank_count[b].d.next = self.ld_count.q.val();
                self.bank_acc[b].d.next = self.ld_acc.q.val();
                self.bank_accbank[b].d.next = self.acc_sel.q.val();
                self.bank_wait[b].d.next = false;
                if !self.acc_sel.q.val() & self.dp0.q.val() & !(self.drain_done.val() & !self.drain_done_bank.val()) {
                    self.bank_wait[b].d.next = true;
                }
                if self.acc_sel.q.val() & self.dp1.q.val() & !(self.drain_done.val() & self.drain_done_bank.val()) {
                    self.bank_wait[b].d.next = true;
                }
            }
        }
        if self.ld_done.val() & self.ld_tile.q.val() {
            self.ld_bank.d.next = self.ld_next.val();
        }

        // ---- Runner: takes the banks in order. An idle runner accepts the
        // next tile's first token in the very cycle its bank shows loaded
        // (x_ready depends only on registered state), using the bank's
        // descriptor directly; later tokens use the runner's copy.
        self.run_next.next = self.run_bank.q.val() + self.bank_one.val();
        if self.run_bank.q.val() == self.nb_last.val() {
            self.run_next.next = self.bank_zero.val();
        }
        self.run_oh.next = self.nb_one.val() << self.run_bank.q.val();
        self.run_sel.next = self.run_oh.val();
        self.cand_ready.next = false;
        self.cand_count.next = self.zero.val();
        self.cand_acc.next = false;
        self.cand_accbank.next = false;
        for b in 0..NB {
            if self.run_bank.q.val().index() == b {
                self.cand_ready.next = self.bank_full[b].q.val()
                    & self.bank_seen[b].q.val()
                    & (!self.bank_wait[b].q.val() | !self.lock_reuse.val());
                self.cand_count.next = self.bank_count[b].q.val();
                self.cand_acc.next = self.bank_acc[b].q.val();
                self.cand_accbank.next = self.bank_accbank[b].q.val();
            }
        }
        self.cur_left.next = self.cand_count.val();
        self.cur_first.next = true;
        self.cur_acc.next = self.cand_acc.val();
        self.cur_accbank.next = self.cand_accbank.val();
        if self.run_active.q.val() {
            self.cur_left.next = self.run_left.q.val();
            self.cur_first.next = self.run_first.q.val();
            self.cur_acc.next = self.run_acc.q.val();
            self.cur_accbank.next = self.run_accbank.q.val();
        }
        self.x_ready.next = self.run_active.q.val() | self.cand_ready.val();
        self.accept.next = self.x_ready.val() & self.x_valid.val();
        self.run_last.next = self.accept.val() & (self.cur_left.val() == self.one.val());
        // Countdowns first: a token accepted now restarts its bank's.
        if self.flush0.q.val() != self.zero.val() {
            self.flush0.d.next = self.flush0.q.val() - self.one.val();
        }
        if self.flush1.q.val() != self.zero.val() {
            self.flush1.d.next = self.flush1.q.val() - self.one.val();
        }
        if self.accept.val() {
            self.run_active.d.next = true;
            self.run_first.d.next = false;
            self.run_left.d.next = self.cur_left.val() - self.one.val();
            self.run_acc.d.next = self.cur_acc.val();
            self.run_accbank.d.next = self.cur_accbank.val();
            if self.cur_accbank.val() {
                self.flush1.d.next = self.flush_cycles.val();
            } else {
                self.flush0.d.next = self.flush_cycles.val();
            }
        }
        if self.run_last.val() {
            self.run_active.d.next = false;
            self.run_bank.d.next = self.run_next.val();
            for b in 0..NB {
                if self.run_bank.q.val().index() == b {
                    self.bank_full[b].d.next = false;
                    self.bank_hold[b].d.next = self.hold_cycles.val();
                }
            }
        }
        // Tags of the accepted token, aligned with the lanes it makes.
        self.tag_valid_r.d.next = self.accept.val() & !self.reset.val();
        self.tag_first_r.d.next = self.cur_first.val();
        self.tag_acc_r.d.next = self.cur_acc.val();
        self.tag_accbank_r.d.next = self.cur_accbank.val();
        self.tag_valid.next = self.tag_valid_r.q.val();
        self.tag_first.next = self.tag_first_r.q.val();
        self.tag_acc.next = self.tag_acc_r.q.val();
        self.tag_accbank.next = self.tag_accbank_r.q.val();

        // ---- Drain reader: starts on a marked bank once its tiles are done
        // and written, then presents one token per cycle while the row
        // register takes them (holding the address while it does not).
        self.busy0.next = false;
        self.busy1.next = false;
        for b in 0..NB {
            if self.bank_full[b].q.val() & !self.bank_wait[b].q.val() & !self.bank_accbank[b].q.val() {
                self.busy0.next = true;
            }
            if self.bank_full[b].q.val() & !self.bank_wait[b].q.val() & self.bank_accbank[b].q.val() {
                self.busy1.next = true;
            }
        }
        self.dr_start.next = false;
        self.dr_start_count.next = self.dcount0.q.val();
        if !self.dr_active.q.val() {
            if self.dr_bank.q.val() {
                self.dr_start_count.next = self.dcount1.q.val();
                self.dr_start.next = self.dp1.q.val()
                    & (!self.busy1.val() | !self.lock_tiles.val())
                    & ((self.flush1.q.val() == self.zero.val()) | !self.lock_flush.val());
            } else {
                self.dr_start.next = self.dp0.q.val()
                    & (!self.busy0.val() | !self.lock_tiles.val())
                    & ((self.flush0.q.val() == self.zero.val()) | !self.lock_flush.val());
            }
        }
        self.consume.next = self.rd_valid.q.val() & self.row_free.val();
        self.drain_rd.next = false;
        self.drain_bank.next = self.dr_bank.q.val();
        self.drain_addr.next = self.rd_token.q.val().get_bits::<AD>(0);
        if self.dr_start.val() {
            // Token 0 is addressed in the start cycle.
            self.dr_active.d.next = true;
            self.dr_count.d.next = self.dr_start_count.val();
            self.drain_rd.next = true;
            self.drain_addr.next = self.addr_zero.val();
            self.rd_valid.d.next = true;
            self.rd_token.d.next = self.zero.val();
            self.rd_next.d.next = self.one.val();
        }
        if self.dr_active.q.val() {
            self.drain_rd.next = true;
            if !self.rd_valid.q.val() | self.consume.val() {
                if self.rd_next.q.val() == self.dr_count.q.val() {
                    // Every token addressed: the reader is done with this bank.
                    self.rd_valid.d.next = false;
                    self.dr_active.d.next = false;
                    self.dr_bank.d.next = !self.dr_bank.q.val();
                    self.drain_rd.next = false;
                } else {
                    self.drain_addr.next = self.rd_next.q.val().get_bits::<AD>(0);
                    self.rd_valid.d.next = true;
                    self.rd_token.d.next = self.rd_next.q.val();
                    self.rd_next.d.next = self.rd_next.q.val() + self.one.val();
                }
            }
        }
        // ---- Row register: loads a row when free, pops one beat per advance.
        self.row_load.next = self.consume.val();
        self.pop.next = self.pop_l.val();
        self.pop_beat.next = self.row_beat.q.val();
        self.pop_bank.next = self.row_bank.q.val();
        if self.pop_l.val() {
            self.row_beat.d.next = self.row_beat.q.val() << self.shift_one.val();
        }
        if self.pop_last_beat.val() {
            self.row_valid.d.next = false;
        }
        if self.consume.val() {
            self.row_valid.d.next = true;
            self.row_beat.d.next = self.beat_first.val();
            self.row_last.d.next = (self.rd_token.q.val() + self.one.val()) == self.dr_count.q.val();
            self.row_bank.d.next = self.dr_bank.q.val();
        }
        if self.drain_done.val() {
            if self.drain_done_bank.val() {
                self.dp1.d.next = false;
            } else {
                self.dp0.d.next = false;
            }
        }

        // ---- Reset: every unit idle and empty.
        if self.reset.val() {
            self.cb_valid.d.next = false;
            self.ld_valid.d.next = false;
            self.ld_bank.d.next = self.bank_zero.val();
            self.acc_sel.d.next = false;
            self.run_active.d.next = false;
            self.run_bank.d.next = self.bank_zero.val();
            self.flush0.d.next = self.zero.val();
            self.flush1.d.next = self.zero.val();
            self.dp0.d.next = false;
            self.dp1.d.next = false;
            self.dr_bank.d.next = false;
            self.dr_active.d.next = false;
            self.rd_valid.d.next = false;
            self.row_valid.d.next = false;
            for b in 0..NB {
                self.bank_full[b].d.next = false;
                self.bank_wait[b].d.next = false;
                self.bank_hold[b].d.next = self.zero.val();
            }
        }
    }
}
