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
//!   beats (`out_words_per_beat` words each) to the h scalers. A read is
//!   issued only when the output FIFO has room for every beat of its row
//!   (credits: beats reserved, given back as the consumer takes them), so
//!   the row register and the h scalers never stall: no enable fans out
//!   over the drain path, and back-pressure on the output stream stops only
//!   the issue of reads.
//!
//! Interlocks (each can be switched off for the tests that prove it is
//! needed, see [`Interlocks`]):
//! - the loader fills a weight bank only when its descriptor is empty and
//!   the last token that used it has passed every row (`hold`);
//! - the runner starts a tile only when its bank is loaded and, if the tile
//!   accumulates into a bank with an earlier drain still pending, only after
//!   that drain (`wait`, set when the tile was loaded), and only when the
//!   tokens of the tile before it are far enough ahead for the
//!   accumulators' read-add-write (`space`: consecutive tiles' token i are
//!   at least `timing::ACC_SPACING` cycles apart);
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
//! | `o_taken` | in | 1 | the output FIFO's consumer took a beat (a credit comes back) |
//! | `g_wr` | out | NB | write the scale beat's g into these g banks |
//! | `h_wr` | out | 2 | write the scale beat's h into these h banks |
//! | `w_fire` | out | 1 | a weight beat is taken this cycle |
//! | `w_group` | out | B | one-hot: which beat of its tile it is |
//! | `w_bank` | out | NB | one-hot: the weight bank being loaded |
//! | `run_sel` | out | NB | one-hot: the bank of the token presented on `x_data` (for the g scalers' g banks) |
//! | `lane_sel` | out | NB | `run_sel` two cycles later: the array's bank select, a cycle ahead of the token's lanes |
//! | `tag_valid`, `tag_first`, `tag_acc`, `tag_accbank` | out | 1 | registered: the accepted token's tags (a token, the first of its tile, of an ACC tile, for accumulator bank 1), `timing::TAG_LEAD` cycles ahead of its lanes (which leave the g scalers `timing::LANE_LATENCY` cycles after the token was accepted) |
//! | `drain_rd`, `drain_bank`, `drain_addr` | out | 1, 1, AD | the drain reads this token of this bank |
//! | `row_load` | out | 1 | the accumulators' read port holds a drained row (`timing::ACC_READ_LATENCY` cycles after its read): load the row register |
//! | `pop` | out | 1 | one output beat of the row register enters the h scalers |
//! | `pop_beat` | out | NOB | one-hot: which beat of the row |
//! | `pop_bank` | out | 1 | the h bank of the row |

use crate::timing::{output_fifo_depth, ACC_READ_EDGE_ECP5, ACC_READ_EDGE_GENERIC, ACC_SPACING, ACC_SPACING_GENERIC, ACC_WRITE_EDGE, LANE_LATENCY, ROW_TO_POP, TAG_STAGES};
use crate::util::{dffs, twos};
use onebit_core::wire::Opcode;
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

/// Stages of the bank select before the array (a cycle ahead of the lanes).
const SEL_STAGES: usize = LANE_LATENCY - 1;
const SEL_LAST: usize = SEL_STAGES - 1;
/// Stages of a drain read before its row is in the accumulators' read port.
const RP_STAGES: usize = ROW_TO_POP - 1;
const RP_LAST: usize = RP_STAGES - 1;

/// The interlocks of the controller. Every one is on in real hardware; the
/// tests switch one off at a time to show that some run then goes wrong.
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
    /// A tile's first token waits until the tile before it is `timing::ACC_SPACING`
    /// cycles ahead, so no token reads an accumulator word before the
    /// previous token's sum for it is written.
    pub tile_spacing: bool,
    /// One of the three counted waits set one cycle below the minimum its
    /// derivation gives for the generic form, which the rust-hdl model
    /// simulates (tests only: each must then corrupt some run, which shows
    /// the derivation is exact; the ECP5 form needs one cycle more flush
    /// and spacing, which the hardware waits, shown by its own test).
    pub below_minimum: Option<Wait>,
}

/// The interlocks that wait a number of cycles (see the derivations at
/// [`Controller::hold_minimum`], [`Controller::flush_cycles`] and
/// `timing::ACC_SPACING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Hold,
    Flush,
    Spacing,
}

impl Default for Interlocks {
    fn default() -> Self {
        Interlocks {
            bank_hold: true,
            drain_before_reuse: true,
            flush: true,
            tiles_before_drain: true,
            h_bank_free: true,
            tile_spacing: true,
            below_minimum: None,
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
    pub o_taken: Signal<In, Bit>,
    pub g_wr: Signal<Out, Bits<NB>>,
    pub h_wr: Signal<Out, Bits<2>>,
    pub w_fire: Signal<Out, Bit>,
    pub w_group: Signal<Out, Bits<B>>,
    pub w_bank: Signal<Out, Bits<NB>>,
    pub run_sel: Signal<Out, Bits<NB>>,
    pub lane_sel: Signal<Out, Bits<NB>>,
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
    // Fetch buffer, with the command decoded as it is taken.
    cb_valid: DFF<Bit>,
    cb_tile: DFF<Bit>,
    cb_drain: DFF<Bit>,
    cb_one: DFF<Bit>,
    cb_acc: DFF<Bit>,
    cb_count: DFF<Bits<16>>,
    /// The spacing wait a tile of this many tokens leaves (ACC_SPACING − M, or 0).
    cb_gap: DFF<Bits<4>>,
    // Loader, and its registered readies (computed a cycle ahead from the
    // state the loader will be in, so a beat's handshake is two flip-flops
    // and an AND).
    ld_valid: DFF<Bit>,
    ld_tile: DFF<Bit>,
    ld_count: DFF<Bits<16>>,
    ld_one: DFF<Bit>,
    ld_gap: DFF<Bits<4>>,
    ld_acc: DFF<Bit>,
    ld_scale_left: DFF<Bit>,
    ld_w_left: DFF<Bits<16>>,
    /// No weight beat left / exactly one left.
    ld_w_done: DFF<Bit>,
    ld_w_last: DFF<Bit>,
    ld_group: DFF<Bits<B>>,
    ld_bank: DFF<Bits<2>>,
    acc_sel: DFF<Bit>,
    s_ready_r: DFF<Bit>,
    w_ready_r: DFF<Bit>,
    // Weight bank descriptors: loaded (waiting for or being run), tokens
    // (and whether just one), ACC flag, accumulator bank, "an earlier drain
    // of that bank was pending when the tile was loaded", and cycles until
    // the last token that used the bank has passed every row.
    bank_full: Vec<DFF<Bit>>,
    bank_count: Vec<DFF<Bits<16>>>,
    bank_one: Vec<DFF<Bit>>,
    bank_gap: Vec<DFF<Bits<4>>>,
    bank_acc: Vec<DFF<Bit>>,
    bank_accbank: Vec<DFF<Bit>>,
    bank_wait: Vec<DFF<Bit>>,
    bank_hold: Vec<DFF<Bits<10>>>,
    // Runner, and its registered ready.
    run_active: DFF<Bit>,
    run_left: DFF<Bits<16>>,
    /// The next token the runner accepts is its tile's last.
    run_last_tok: DFF<Bit>,
    run_first: DFF<Bit>,
    run_acc: DFF<Bit>,
    run_accbank: DFF<Bit>,
    run_bank: DFF<Bits<2>>,
    /// The running tile's spacing wait, loaded into `space` after its last token.
    run_gap: DFF<Bits<4>>,
    run_gap_zero: DFF<Bit>,
    /// Cycles until the next tile's first token may be accepted.
    space: DFF<Bits<4>>,
    x_ready_r: DFF<Bit>,
    // Token tags and the bank select, delayed to meet the lanes.
    tag_valid_r: Vec<DFF<Bit>>,
    tag_first_r: Vec<DFF<Bit>>,
    tag_acc_r: Vec<DFF<Bit>>,
    tag_accbank_r: Vec<DFF<Bit>>,
    sel_r: Vec<DFF<Bits<NB>>>,
    flush0: DFF<Bits<10>>,
    flush1: DFF<Bits<10>>,
    // Drain: pending marks per accumulator bank, the reader, the row register.
    dp0: DFF<Bit>,
    dp1: DFF<Bit>,
    /// A marked bank not yet read by the reader (the reader may finish a
    /// bank's reads, drain the other and come back before the first bank's
    /// last beat has left, while `dp` still marks it).
    rdp0: DFF<Bit>,
    rdp1: DFF<Bit>,
    dcount0: DFF<Bits<16>>,
    dcount1: DFF<Bits<16>>,
    dr_bank: DFF<Bit>,
    dr_active: DFF<Bit>,
    dr_count: DFF<Bits<16>>,
    rd_next: DFF<Bits<16>>,
    /// Tokens of the drain still to read.
    rd_more: DFF<Bit>,
    /// Cycles until the next read may be issued (a row's NOB beats pop one per cycle).
    rd_wait: DFF<Bits<10>>,
    /// Output beats reserved in the FIFO and not yet taken by the consumer,
    /// and whether a row's beats still fit.
    used: DFF<Bits<10>>,
    room: DFF<Bit>,
    // The reads in flight (valid, bank, last of the drain), one stage per cycle.
    rp_valid: Vec<DFF<Bit>>,
    rp_bank: Vec<DFF<Bit>>,
    rp_last: Vec<DFF<Bit>>,
    row_valid: DFF<Bit>,
    row_last: DFF<Bit>,
    row_bank: DFF<Bit>,
    row_beat: DFF<Bits<NOB>>,
    // Combinational helpers.
    opcode: Signal<Local, Bits<4>>,
    count: Signal<Local, Bits<16>>,
    take_cmd: Signal<Local, Bit>,
    ld_done: Signal<Local, Bit>,
    free_cur: Signal<Local, Bit>,
    free_nxt: Signal<Local, Bit>,
    h_free: Signal<Local, Bit>,
    h_free_flip: Signal<Local, Bit>,
    s_fire: Signal<Local, Bit>,
    w_fire_l: Signal<Local, Bit>,
    run_next: Signal<Local, Bits<2>>,
    ld_next: Signal<Local, Bits<2>>,
    ld_sel: Signal<Local, Bits<NB>>,
    run_oh: Signal<Local, Bits<NB>>,
    accept: Signal<Local, Bit>,
    cur_last: Signal<Local, Bit>,
    run_last: Signal<Local, Bit>,
    cur_left: Signal<Local, Bits<16>>,
    cur_first: Signal<Local, Bit>,
    cur_acc: Signal<Local, Bit>,
    cur_accbank: Signal<Local, Bit>,
    cand_count: Signal<Local, Bits<16>>,
    cand_one: Signal<Local, Bit>,
    cand_gap: Signal<Local, Bits<4>>,
    cand_acc: Signal<Local, Bit>,
    cand_accbank: Signal<Local, Bit>,
    cand_cur: Signal<Local, Bit>,
    cand_nxt: Signal<Local, Bit>,
    act_next: Signal<Local, Bit>,
    space_zero_next: Signal<Local, Bit>,
    busy0: Signal<Local, Bit>,
    busy1: Signal<Local, Bit>,
    dr_start: Signal<Local, Bit>,
    dr_start_count: Signal<Local, Bits<16>>,
    issue: Signal<Local, Bit>,
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
    two: Constant<Bits<16>>,
    beats: Constant<Bits<16>>,
    beats_one: Constant<Bit>,
    nb_last: Constant<Bits<2>>,
    bank_zero: Constant<Bits<2>>,
    bank_one_c: Constant<Bits<2>>,
    // The short counters (waits of at most R + 4, the FIFO's credits, the
    // spacing) are 10 and 4 bits wide; token and beat counts 16.
    zero10: Constant<Bits<10>>,
    one10: Constant<Bits<10>>,
    zero4: Constant<Bits<4>>,
    one4: Constant<Bits<4>>,
    hold_cycles: Constant<Bits<10>>,
    flush_cycles: Constant<Bits<10>>,
    spacing: Constant<Bits<16>>,
    spacing4: Constant<Bits<4>>,
    row_beats: Constant<Bits<10>>,
    row_gap: Constant<Bits<10>>,
    // `used` may grow by a row (NOB) and shrink by one in a cycle: the room
    // test for each of the four cases, against the register's value now.
    room_limit: Constant<Bits<10>>,
    room_if_issue: Constant<Bits<10>>,
    room_if_taken: Constant<Bits<10>>,
    room_if_both: Constant<Bits<10>>,
    group_first: Constant<Bits<B>>,
    beat_first: Constant<Bits<NOB>>,
    beat_last: Constant<Bits<NOB>>,
    nb_zero: Constant<Bits<NB>>,
    nb_one: Constant<Bits<NB>>,
    h_none: Constant<Bits<2>>,
    h_bank0: Constant<Bits<2>>,
    h_bank1: Constant<Bits<2>>,
    shift_one: Constant<Bits<8>>,
    lock_hold: Constant<Bit>,
    lock_reuse: Constant<Bit>,
    lock_flush: Constant<Bit>,
    lock_tiles: Constant<Bit>,
    lock_h: Constant<Bit>,
    lock_space: Constant<Bit>,
}

impl<const AD: usize, const NB: usize, const B: usize, const NOB: usize> Controller<AD, NB, B, NOB> {
    /// The fewest cycles a weight bank must stay reserved after its tile's
    /// last token was accepted (at cycle t): the array's row 0 registers the
    /// token's bank select at the end of t + LANE_LATENCY − 1 (a cycle ahead
    /// of its lanes), row r at the end of t + LANE_LATENCY − 1 + r, so row
    /// R−1 at the end of t + R + 1; a beat the loader takes at cycle y is
    /// written at the end of y + 1 (at the same edge a row still reads the
    /// old bit), and the loader may take one from t + 1 + hold on. So
    /// hold ≥ R − 1 (one less corrupts results: tested).
    pub fn hold_minimum(cfg: &ArrayConfig) -> usize {
        cfg.rows + LANE_LATENCY - 4
    }
    /// The hold the controller uses: the minimum and two cycles to spare.
    pub fn hold_cycles(cfg: &ArrayConfig) -> usize {
        Self::hold_minimum(cfg) + 2
    }
    /// Cycles from accepting a token (at t) until the drain may start: its
    /// tags leave the controller at t + TAG_STAGES and reach the
    /// accumulators R cycles later (e), which write its sums at the end of
    /// e + ACC_WRITE_EDGE; a drain that starts at s issues its first read at
    /// s + 1 or later, which the RAMs take at the end of s + 1 +
    /// ACC_READ_EDGE (the ECP5 form's, the earliest), after that write. So
    /// s ≥ t + R + 4, and the countdown reaches 0 at t + 1 + flush.
    pub fn flush_cycles(cfg: &ArrayConfig) -> usize {
        cfg.rows + TAG_STAGES + ACC_WRITE_EDGE - ACC_READ_EDGE_ECP5 - 1
    }
    /// The flush the generic form alone needs (its RAMs take a read an edge
    /// later): one less corrupts the rust-hdl model's results (tested).
    pub fn flush_minimum_generic(cfg: &ArrayConfig) -> usize {
        cfg.rows + TAG_STAGES + ACC_WRITE_EDGE - ACC_READ_EDGE_GENERIC - 1
    }

    pub fn new(cfg: &ArrayConfig, locks: Interlocks) -> Self {
        assert_eq!((NB, B, NOB), (cfg.weight_banks, cfg.beats_per_tile(), cfg.out_beats_per_token()));
        let c16 = |v: usize| Constant::new(twos::<16>(v as i64));
        let c10 = |v: usize| Constant::new(twos::<10>(v as i64));
        assert!(cfg.rows + 8 < 1 << 10 && output_fifo_depth(cfg) < 1 << 10 && ACC_SPACING < 1 << 4);
        let op = |v: Opcode| Constant::new(twos::<4>(v as i64));
        let bit = |v: bool| Constant::new(v);
        let fifo = output_fifo_depth(cfg);
        let (hold, flush, spacing) = match locks.below_minimum {
            None => (Self::hold_cycles(cfg), Self::flush_cycles(cfg), ACC_SPACING),
            Some(Wait::Hold) => (Self::hold_minimum(cfg).saturating_sub(1), Self::flush_cycles(cfg), ACC_SPACING),
            Some(Wait::Flush) => (Self::hold_cycles(cfg), Self::flush_minimum_generic(cfg) - 1, ACC_SPACING),
            Some(Wait::Spacing) => (Self::hold_cycles(cfg), Self::flush_cycles(cfg), ACC_SPACING_GENERIC - 1),
        };
        // Room for a row: used + NOB ≤ depth, tested on the next value of
        // `used` (= used + NOB·issue − taken) as a bound on `used` now.
        let limit = fifo - NOB;
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
            o_taken: Default::default(),
            g_wr: Default::default(),
            h_wr: Default::default(),
            w_fire: Default::default(),
            w_group: Default::default(),
            w_bank: Default::default(),
            run_sel: Default::default(),
            lane_sel: Default::default(),
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
            cb_valid: Default::default(),
            cb_tile: Default::default(),
            cb_drain: Default::default(),
            cb_one: Default::default(),
            cb_acc: Default::default(),
            cb_count: Default::default(),
            cb_gap: Default::default(),
            ld_valid: Default::default(),
            ld_tile: Default::default(),
            ld_count: Default::default(),
            ld_one: Default::default(),
            ld_gap: Default::default(),
            ld_acc: Default::default(),
            ld_scale_left: Default::default(),
            ld_w_left: Default::default(),
            ld_w_done: Default::default(),
            ld_w_last: Default::default(),
            ld_group: Default::default(),
            ld_bank: Default::default(),
            acc_sel: Default::default(),
            s_ready_r: Default::default(),
            w_ready_r: Default::default(),
            bank_full: dffs(NB),
            bank_count: dffs(NB),
            bank_one: dffs(NB),
            bank_gap: dffs(NB),
            bank_acc: dffs(NB),
            bank_accbank: dffs(NB),
            bank_wait: dffs(NB),
            bank_hold: dffs(NB),
            run_active: Default::default(),
            run_left: Default::default(),
            run_last_tok: Default::default(),
            run_first: Default::default(),
            run_acc: Default::default(),
            run_accbank: Default::default(),
            run_bank: Default::default(),
            run_gap: Default::default(),
            run_gap_zero: Default::default(),
            space: Default::default(),
            x_ready_r: Default::default(),
            tag_valid_r: dffs(TAG_STAGES),
            tag_first_r: dffs(TAG_STAGES),
            tag_acc_r: dffs(TAG_STAGES),
            tag_accbank_r: dffs(TAG_STAGES),
            sel_r: dffs(SEL_STAGES),
            flush0: Default::default(),
            flush1: Default::default(),
            dp0: Default::default(),
            dp1: Default::default(),
            rdp0: Default::default(),
            rdp1: Default::default(),
            dcount0: Default::default(),
            dcount1: Default::default(),
            dr_bank: Default::default(),
            dr_active: Default::default(),
            dr_count: Default::default(),
            rd_next: Default::default(),
            rd_more: Default::default(),
            rd_wait: Default::default(),
            used: Default::default(),
            room: Default::default(),
            rp_valid: dffs(RP_STAGES),
            rp_bank: dffs(RP_STAGES),
            rp_last: dffs(RP_STAGES),
            row_valid: Default::default(),
            row_last: Default::default(),
            row_bank: Default::default(),
            row_beat: Default::default(),
            opcode: Default::default(),
            count: Default::default(),
            take_cmd: Default::default(),
            ld_done: Default::default(),
            free_cur: Default::default(),
            free_nxt: Default::default(),
            h_free: Default::default(),
            h_free_flip: Default::default(),
            s_fire: Default::default(),
            w_fire_l: Default::default(),
            run_next: Default::default(),
            ld_next: Default::default(),
            ld_sel: Default::default(),
            run_oh: Default::default(),
            accept: Default::default(),
            cur_last: Default::default(),
            run_last: Default::default(),
            cur_left: Default::default(),
            cur_first: Default::default(),
            cur_acc: Default::default(),
            cur_accbank: Default::default(),
            cand_count: Default::default(),
            cand_one: Default::default(),
            cand_gap: Default::default(),
            cand_acc: Default::default(),
            cand_accbank: Default::default(),
            cand_cur: Default::default(),
            cand_nxt: Default::default(),
            act_next: Default::default(),
            space_zero_next: Default::default(),
            busy0: Default::default(),
            busy1: Default::default(),
            dr_start: Default::default(),
            dr_start_count: Default::default(),
            issue: Default::default(),
            pop_l: Default::default(),
            pop_last_beat: Default::default(),
            drain_done: Default::default(),
            drain_done_bank: Default::default(),
            unused_cmd_bits: Default::default(),
            op_tile: op(Opcode::Tile),
            op_drain: op(Opcode::Drain),
            zero: c16(0),
            one: c16(1),
            two: c16(2),
            beats: c16(cfg.beats_per_tile()),
            beats_one: bit(cfg.beats_per_tile() == 1),
            nb_last: Constant::new(twos::<2>(NB as i64 - 1)),
            bank_zero: Constant::new(twos::<2>(0)),
            bank_one_c: Constant::new(twos::<2>(1)),
            zero10: c10(0),
            one10: c10(1),
            zero4: Constant::new(twos::<4>(0)),
            one4: Constant::new(twos::<4>(1)),
            hold_cycles: c10(hold),
            flush_cycles: c10(flush),
            spacing: c16(spacing),
            spacing4: Constant::new(twos::<4>(spacing as i64)),
            row_beats: c10(NOB),
            row_gap: c10(NOB - 1),
            room_limit: c10(limit),
            room_if_issue: c10(limit - NOB),
            room_if_taken: c10(limit + 1),
            room_if_both: c10(limit + 1 - NOB),
            group_first: Constant::new(Bits::<B>::default().replace_bit(0, true)),
            beat_first: Constant::new(Bits::<NOB>::default().replace_bit(0, true)),
            beat_last: Constant::new(Bits::<NOB>::default().replace_bit(NOB - 1, true)),
            nb_zero: Constant::new(twos::<NB>(0)),
            nb_one: Constant::new(twos::<NB>(1)),
            h_none: Constant::new(twos::<2>(0)),
            h_bank0: Constant::new(twos::<2>(1)),
            h_bank1: Constant::new(twos::<2>(2)),
            shift_one: Constant::new(twos::<8>(1)),
            lock_hold: bit(locks.bank_hold),
            lock_reuse: bit(locks.drain_before_reuse),
            lock_flush: bit(locks.flush),
            lock_tiles: bit(locks.tiles_before_drain),
            lock_h: bit(locks.h_bank_free),
            lock_space: bit(locks.tile_spacing),
        }
    }
}

impl<const AD: usize, const NB: usize, const B: usize, const NOB: usize> Logic for Controller<AD, NB, B, NOB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, cb_valid, cb_tile, cb_drain, cb_one, cb_acc, cb_count, cb_gap, ld_valid, ld_tile, ld_count, ld_one, ld_gap,
            ld_acc, ld_scale_left, ld_w_left, ld_w_done, ld_w_last, ld_group, ld_bank, acc_sel, s_ready_r,
            w_ready_r, run_active, run_left, run_last_tok, run_first, run_acc, run_accbank, run_bank, run_gap,
            run_gap_zero, space, x_ready_r, flush0, flush1, dp0, dp1, rdp0, rdp1, dcount0, dcount1, dr_bank,
            dr_active, dr_count, rd_next, rd_more, rd_wait, used, room, row_valid, row_last, row_bank, row_beat
        );
        for b in 0..NB {
            self.bank_full[b].clock.next = self.clock.val();
            self.bank_count[b].clock.next = self.clock.val();
            self.bank_one[b].clock.next = self.clock.val();
            self.bank_gap[b].clock.next = self.clock.val();
            self.bank_acc[b].clock.next = self.clock.val();
            self.bank_accbank[b].clock.next = self.clock.val();
            self.bank_wait[b].clock.next = self.clock.val();
            self.bank_hold[b].clock.next = self.clock.val();
            self.bank_full[b].d.next = self.bank_full[b].q.val();
            self.bank_count[b].d.next = self.bank_count[b].q.val();
            self.bank_one[b].d.next = self.bank_one[b].q.val();
            self.bank_gap[b].d.next = self.bank_gap[b].q.val();
            self.bank_acc[b].d.next = self.bank_acc[b].q.val();
            self.bank_accbank[b].d.next = self.bank_accbank[b].q.val();
            self.bank_wait[b].d.next = self.bank_wait[b].q.val();
            self.bank_hold[b].d.next = self.bank_hold[b].q.val();
        }
        for j in 0..TAG_STAGES {
            self.tag_valid_r[j].clock.next = self.clock.val();
            self.tag_first_r[j].clock.next = self.clock.val();
            self.tag_acc_r[j].clock.next = self.clock.val();
            self.tag_accbank_r[j].clock.next = self.clock.val();
        }
        for j in 0..SEL_STAGES {
            self.sel_r[j].clock.next = self.clock.val();
        }
        for j in 0..RP_STAGES {
            self.rp_valid[j].clock.next = self.clock.val();
            self.rp_bank[j].clock.next = self.clock.val();
            self.rp_last[j].clock.next = self.clock.val();
        }

        // ---- Fetch: a one-command buffer, filled whenever it is empty; the
        // command is decoded on the way in (opcode, count 0, count 1).
        self.opcode.next = self.cmd_data.val().get_bits::<4>(0);
        self.count.next = self.cmd_data.val().get_bits::<16>(16);
        // Bits [15:5] are reserved.
        self.unused_cmd_bits.next = self.cmd_data.val().get_bits::<11>(5).xor();
        self.cmd_ready.next = !self.cb_valid.q.val();
        if self.cmd_valid.val() & !self.cb_valid.q.val() {
            self.cb_valid.d.next = true;
            self.cb_tile.d.next = (self.opcode.val() == self.op_tile.val()) & (self.count.val() != self.zero.val());
            self.cb_drain.d.next = (self.opcode.val() == self.op_drain.val()) & (self.count.val() != self.zero.val());
            self.cb_one.d.next = self.count.val() == self.one.val();
            self.cb_acc.d.next = self.cmd_data.val().get_bit(4);
            self.cb_count.d.next = self.count.val();
            self.cb_gap.d.next = self.zero4.val();
            if self.count.val() < self.spacing.val() {
                self.cb_gap.d.next = self.spacing4.val() - self.count.val().get_bits::<4>(0);
            }
        }

        // ---- Loader. Its readies are registers: s_ready_r and w_ready_r
        // hold what the loader can take in this cycle, computed in the
        // previous one from the state it is moving into.
        self.ld_sel.next = self.nb_one.val() << self.ld_bank.q.val();
        self.ld_next.next = self.ld_bank.q.val() + self.bank_one_c.val();
        if self.ld_bank.q.val() == self.nb_last.val() {
            self.ld_next.next = self.bank_zero.val();
        }
        // A bank free next cycle: not holding a tile now (a tile that is
        // running makes it full; only the loader fills it, and not the bank
        // it is about to fill), and its hold countdown at most 1.
        self.free_cur.next = false;
        self.free_nxt.next = false;
        for b in 0..NB {
            if self.ld_bank.q.val().index() == b {
                self.free_cur.next = !self.bank_full[b].q.val()
                    & ((self.bank_hold[b].q.val() <= self.one10.val()) | !self.lock_hold.val());
            }
            if self.ld_next.val().index() == b {
                self.free_nxt.next = !self.bank_full[b].q.val()
                    & ((self.bank_hold[b].q.val() <= self.one10.val()) | !self.lock_hold.val());
            }
        }
        // The h bank of the accumulator bank a DRAIN would fill: free while
        // no drain of that bank is pending (the pending mark as it is now:
        // one cycle late when a drain ends, never early, since a DRAIN
        // finishing marks the bank it leaves).
        self.h_free.next = !(self.lock_h.val() & ((!self.acc_sel.q.val() & self.dp0.q.val()) | (self.acc_sel.q.val() & self.dp1.q.val())));
        self.h_free_flip.next = !(self.lock_h.val() & ((self.acc_sel.q.val() & self.dp0.q.val()) | (!self.acc_sel.q.val() & self.dp1.q.val())));
        self.s_ready.next = self.s_ready_r.q.val();
        self.w_ready.next = self.w_ready_r.q.val();
        self.s_fire.next = self.s_valid.val() & self.s_ready_r.q.val();
        self.w_fire_l.next = self.w_valid.val() & self.w_ready_r.q.val();
        self.w_fire.next = self.w_fire_l.val();
        self.w_group.next = self.ld_group.q.val();
        self.w_bank.next = self.ld_sel.val();
        self.g_wr.next = self.nb_zero.val();
        self.h_wr.next = self.h_none.val();
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
            self.ld_w_done.d.next = self.ld_w_last.q.val();
            self.ld_w_last.d.next = self.ld_w_left.q.val() == self.two.val();
            self.ld_group.d.next = self.ld_group.q.val() << self.shift_one.val();
        }
        // Done when both the scale beat and the last weight beat are in.
        self.ld_done.next = self.ld_valid.q.val()
            & (!self.ld_scale_left.q.val() | self.s_fire.val())
            & (self.ld_w_done.q.val() | (self.ld_w_last.q.val() & self.w_fire_l.val()));
        // A finished DRAIN marks its bank and switches TILEs to the other.
        if self.ld_done.val() & !self.ld_tile.q.val() {
            self.acc_sel.d.next = !self.acc_sel.q.val();
            if self.acc_sel.q.val() {
                self.dp1.d.next = true;
                self.rdp1.d.next = true;
                self.dcount1.d.next = self.ld_count.q.val();
            } else {
                self.dp0.d.next = true;
                self.rdp0.d.next = true;
                self.dcount0.d.next = self.ld_count.q.val();
            }
        }
        // Take the next command when idle or finishing (no gap between tiles).
        self.take_cmd.next = self.cb_valid.q.val() & (!self.ld_valid.q.val() | self.ld_done.val());
        if self.ld_done.val() {
            self.ld_valid.d.next = false;
        }
        if self.ld_done.val() & self.ld_tile.q.val() {
            self.ld_bank.d.next = self.ld_next.val();
        }
        // The readies for the next cycle: nothing by default (idle, or a
        // command finishing with none to follow); while a command goes on,
        // what it still needs; for a command taken now, its first needs.
        self.s_ready_r.d.next = false;
        self.w_ready_r.d.next = false;
        if self.ld_valid.q.val() & !self.ld_done.val() {
            if self.ld_tile.q.val() {
                self.s_ready_r.d.next = self.ld_scale_left.q.val() & !self.s_fire.val() & self.free_cur.val();
                self.w_ready_r.d.next = !self.ld_w_done.q.val() & !(self.ld_w_last.q.val() & self.w_fire_l.val()) & self.free_cur.val();
            } else {
                self.s_ready_r.d.next = self.ld_scale_left.q.val() & !self.s_fire.val() & self.h_free.val();
            }
        }
        if self.take_cmd.val() {
            self.cb_valid.d.next = false;
            self.ld_count.d.next = self.cb_count.q.val();
            self.ld_one.d.next = self.cb_one.q.val();
            self.ld_gap.d.next = self.cb_gap.q.val();
            self.ld_acc.d.next = self.cb_acc.q.val();
            self.ld_group.d.next = self.group_first.val();
            if self.cb_tile.q.val() {
                self.ld_valid.d.next = true;
                self.ld_tile.d.next = true;
                self.ld_scale_left.d.next = true;
                self.ld_w_left.d.next = self.beats.val();
                self.ld_w_done.d.next = false;
                self.ld_w_last.d.next = self.beats_one.val();
                // The bank it fills: the next one if a TILE finishes now.
                if self.ld_valid.q.val() & self.ld_tile.q.val() {
                    self.s_ready_r.d.next = self.free_nxt.val();
                    self.w_ready_r.d.next = self.free_nxt.val();
                } else {
                    self.s_ready_r.d.next = self.free_cur.val();
                    self.w_ready_r.d.next = self.free_cur.val();
                }
            }
            if self.cb_drain.q.val() {
                self.ld_valid.d.next = true;
                self.ld_tile.d.next = false;
                self.ld_scale_left.d.next = true;
                self.ld_w_left.d.next = self.zero.val();
                self.ld_w_done.d.next = true;
                self.ld_w_last.d.next = false;
                // Its h bank: the other one if a DRAIN finishes now.
                if self.ld_valid.q.val() & !self.ld_tile.q.val() {
                    self.s_ready_r.d.next = self.h_free_flip.val();
                } else {
                    self.s_ready_r.d.next = self.h_free.val();
                }
            }
        }

        // ---- Drain completion (the row register's last beat of a drain);
        // needed by the loader's descriptors and the runner below.
        self.pop_l.next = self.row_valid.q.val();
        self.pop_last_beat.next = self.pop_l.val() & ((self.row_beat.q.val() & self.beat_last.val()).any());
        self.drain_done.next = self.pop_last_beat.val() & self.row_last.q.val();
        self.drain_done_bank.next = self.row_bank.q.val();

        // ---- Bank descriptors: hold countdowns, and loads.
        for b in 0..NB {
            if self.bank_hold[b].q.val() != self.zero10.val() {
                self.bank_hold[b].d.next = self.bank_hold[b].q.val() - self.one10.val();
            }
            if self.drain_done.val() & (self.bank_accbank[b].q.val() == self.drain_done_bank.val()) {
                self.bank_wait[b].d.next = false;
            }
            if self.ld_done.val() & self.ld_tile.q.val() & (self.ld_bank.q.val().index() == b) {
                self.bank_full[b].d.next = true;
                self.bank_count[b].d.next = self.ld_count.q.val();
                self.bank_one[b].d.next = self.ld_one.q.val();
                self.bank_gap[b].d.next = self.ld_gap.q.val();
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

        // ---- Runner: takes the banks in order. Its ready is a register,
        // x_ready_r, computed a cycle ahead: the runner will be in the middle
        // of a tile, or the next tile's bank is loaded (and was a cycle ago:
        // its last beat is in the PEs), not waiting for a drain, and the
        // spacing wait is over. An idle runner takes a tile's first token
        // with the bank's descriptor, later tokens with its own copy.
        self.run_oh.next = self.nb_one.val() << self.run_bank.q.val();
        self.run_next.next = self.run_bank.q.val() + self.bank_one_c.val();
        if self.run_bank.q.val() == self.nb_last.val() {
            self.run_next.next = self.bank_zero.val();
        }
        self.run_sel.next = self.run_oh.val();
        self.cand_count.next = self.zero.val();
        self.cand_one.next = false;
        self.cand_gap.next = self.zero4.val();
        self.cand_acc.next = false;
        self.cand_accbank.next = false;
        self.cand_cur.next = false;
        self.cand_nxt.next = false;
        for b in 0..NB {
            if self.run_bank.q.val().index() == b {
                self.cand_count.next = self.bank_count[b].q.val();
                self.cand_one.next = self.bank_one[b].q.val();
                self.cand_gap.next = self.bank_gap[b].q.val();
                self.cand_acc.next = self.bank_acc[b].q.val();
                self.cand_accbank.next = self.bank_accbank[b].q.val();
                self.cand_cur.next = self.bank_full[b].q.val()
                    & (!(self.bank_wait[b].q.val()
                        & !(self.drain_done.val() & (self.bank_accbank[b].q.val() == self.drain_done_bank.val())))
                        | !self.lock_reuse.val());
            }
            if self.run_next.val().index() == b {
                self.cand_nxt.next = self.bank_full[b].q.val()
                    & (!(self.bank_wait[b].q.val()
                        & !(self.drain_done.val() & (self.bank_accbank[b].q.val() == self.drain_done_bank.val())))
                        | !self.lock_reuse.val());
            }
        }
        self.cur_left.next = self.cand_count.val();
        self.cur_last.next = self.cand_one.val();
        self.cur_first.next = true;
        self.cur_acc.next = self.cand_acc.val();
        self.cur_accbank.next = self.cand_accbank.val();
        if self.run_active.q.val() {
            self.cur_left.next = self.run_left.q.val();
            self.cur_last.next = self.run_last_tok.q.val();
            self.cur_first.next = self.run_first.q.val();
            self.cur_acc.next = self.run_acc.q.val();
            self.cur_accbank.next = self.run_accbank.q.val();
        }
        // The wait after a tile of M tokens (decoded with its command): its
        // token i and the next tile's token i must be ACC_SPACING apart; the
        // next tile's first token comes at least one cycle after this tile's
        // last, and token i of a tile at least M − 1 − i cycles before its
        // last, so a wait of ACC_SPACING − M cycles (none from M =
        // ACC_SPACING on) suffices.
        self.x_ready.next = self.x_ready_r.q.val();
        self.accept.next = self.x_ready_r.q.val() & self.x_valid.val();
        self.run_last.next = self.accept.val() & self.cur_last.val();
        // Countdowns first: a token accepted now restarts its bank's.
        if self.flush0.q.val() != self.zero10.val() {
            self.flush0.d.next = self.flush0.q.val() - self.one10.val();
        }
        if self.flush1.q.val() != self.zero10.val() {
            self.flush1.d.next = self.flush1.q.val() - self.one10.val();
        }
        if self.space.q.val() != self.zero4.val() {
            self.space.d.next = self.space.q.val() - self.one4.val();
        }
        if self.accept.val() {
            self.run_active.d.next = true;
            self.run_first.d.next = false;
            self.run_left.d.next = self.cur_left.val() - self.one.val();
            self.run_last_tok.d.next = self.cur_left.val() == self.two.val();
            self.run_acc.d.next = self.cur_acc.val();
            self.run_accbank.d.next = self.cur_accbank.val();
            if self.cur_first.val() {
                self.run_gap.d.next = self.cand_gap.val();
                self.run_gap_zero.d.next = self.cand_gap.val() == self.zero4.val();
            }
            if self.cur_accbank.val() {
                self.flush1.d.next = self.flush_cycles.val();
            } else {
                self.flush0.d.next = self.flush_cycles.val();
            }
        }
        if self.run_last.val() {
            self.run_active.d.next = false;
            self.run_bank.d.next = self.run_next.val();
            self.space.d.next = self.run_gap.q.val();
            if self.cur_first.val() {
                self.space.d.next = self.cand_gap.val();
            }
            for b in 0..NB {
                if self.run_bank.q.val().index() == b {
                    self.bank_full[b].d.next = false;
                    self.bank_hold[b].d.next = self.hold_cycles.val();
                }
            }
        }
        // The ready for the next cycle. The spacing wait is over next cycle
        // when `space` is at most 1 now, or, after a tile's last token, when
        // the tile had at least ACC_SPACING tokens (a one-token tile always
        // leaves a wait).
        self.act_next.next = self.run_active.q.val();
        if self.accept.val() {
            self.act_next.next = !self.cur_last.val();
        }
        self.space_zero_next.next = (self.space.q.val() <= self.one4.val()) | !self.lock_space.val();
        if self.run_last.val() {
            self.space_zero_next.next = (self.run_active.q.val() & self.run_gap_zero.q.val()) | !self.lock_space.val();
        }
        self.x_ready_r.d.next = self.act_next.val();
        if !self.act_next.val() {
            self.x_ready_r.d.next = self.cand_cur.val() & self.space_zero_next.val();
            if self.run_last.val() {
                self.x_ready_r.d.next = self.cand_nxt.val() & self.space_zero_next.val();
            }
        }
        // Tags of the accepted token, TAG_LEAD cycles ahead of the lanes it
        // makes (the accumulators read its words when the tags arrive;
        // TAG_STAGES registers, none when TAG_LEAD = LANE_LATENCY), and its
        // bank select a cycle ahead of the lanes.
        self.tag_valid.next = self.accept.val() & !self.reset.val();
        self.tag_first.next = self.cur_first.val();
        self.tag_acc.next = self.cur_acc.val();
        self.tag_accbank.next = self.cur_accbank.val();
        for j in 0..TAG_STAGES {
            self.tag_valid_r[j].d.next = self.accept.val() & !self.reset.val();
            self.tag_first_r[j].d.next = self.cur_first.val();
            self.tag_acc_r[j].d.next = self.cur_acc.val();
            self.tag_accbank_r[j].d.next = self.cur_accbank.val();
        }
        for j in 1..TAG_STAGES {
            self.tag_valid_r[j].d.next = self.tag_valid_r[j - 1].q.val() & !self.reset.val();
            self.tag_first_r[j].d.next = self.tag_first_r[j - 1].q.val();
            self.tag_acc_r[j].d.next = self.tag_acc_r[j - 1].q.val();
            self.tag_accbank_r[j].d.next = self.tag_accbank_r[j - 1].q.val();
        }
        // The chain's last stage drives the outputs (the loop's last pass wins).
        for j in 0..TAG_STAGES {
            self.tag_valid.next = self.tag_valid_r[j].q.val();
            self.tag_first.next = self.tag_first_r[j].q.val();
            self.tag_acc.next = self.tag_acc_r[j].q.val();
            self.tag_accbank.next = self.tag_accbank_r[j].q.val();
        }
        self.sel_r[0].d.next = self.run_oh.val();
        for j in 1..SEL_STAGES {
            self.sel_r[j].d.next = self.sel_r[j - 1].q.val();
        }
        // (One-iteration loop: `#[hdl_gen]` indexes a Vec only by a loop variable.)
        for j in SEL_LAST..SEL_STAGES {
            self.lane_sel.next = self.sel_r[j].q.val();
        }

        // ---- Drain reader: starts on a marked bank once its tiles are done
        // and written, then issues one row read per NOB cycles while the
        // output FIFO has room for the row's beats.
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
                self.dr_start.next = self.rdp1.q.val()
                    & (!self.busy1.val() | !self.lock_tiles.val())
                    & ((self.flush1.q.val() == self.zero10.val()) | !self.lock_flush.val());
            } else {
                self.dr_start.next = self.rdp0.q.val()
                    & (!self.busy0.val() | !self.lock_tiles.val())
                    & ((self.flush0.q.val() == self.zero10.val()) | !self.lock_flush.val());
            }
        }
        if self.dr_start.val() {
            self.dr_active.d.next = true;
            self.dr_count.d.next = self.dr_start_count.val();
            self.rd_next.d.next = self.zero.val();
            self.rd_more.d.next = true;
        }
        self.issue.next = self.dr_active.q.val()
            & self.rd_more.q.val()
            & (self.rd_wait.q.val() == self.zero10.val())
            & self.room.q.val();
        self.drain_rd.next = self.issue.val();
        self.drain_bank.next = self.dr_bank.q.val();
        self.drain_addr.next = self.rd_next.q.val().get_bits::<AD>(0);
        if self.rd_wait.q.val() != self.zero10.val() {
            self.rd_wait.d.next = self.rd_wait.q.val() - self.one10.val();
        }
        if self.issue.val() {
            self.rd_next.d.next = self.rd_next.q.val() + self.one.val();
            self.rd_more.d.next = (self.rd_next.q.val() + self.one.val()) != self.dr_count.q.val();
            self.rd_wait.d.next = self.row_gap.val();
        }
        if self.dr_active.q.val() & !self.rd_more.q.val() {
            // Every token read: the reader is done with this bank.
            self.dr_active.d.next = false;
            self.dr_bank.d.next = !self.dr_bank.q.val();
            if self.dr_bank.q.val() {
                self.rdp1.d.next = false;
            } else {
                self.rdp0.d.next = false;
            }
        }
        // FIFO credits: a read reserves its row's beats, the consumer gives
        // one back per beat it takes; `room` is whether the next value of
        // `used` leaves space for another row.
        self.used.d.next = self.used.q.val();
        self.room.d.next = self.used.q.val() <= self.room_limit.val();
        if self.issue.val() & !self.o_taken.val() {
            self.used.d.next = self.used.q.val() + self.row_beats.val();
            self.room.d.next = self.used.q.val() <= self.room_if_issue.val();
        }
        if self.issue.val() & self.o_taken.val() {
            self.used.d.next = self.used.q.val() + self.row_beats.val() - self.one10.val();
            self.room.d.next = self.used.q.val() <= self.room_if_both.val();
        }
        if !self.issue.val() & self.o_taken.val() {
            self.used.d.next = self.used.q.val() - self.one10.val();
            self.room.d.next = self.used.q.val() <= self.room_if_taken.val();
        }
        // The reads in flight: the row reaches the accumulators' read port
        // ACC_READ_LATENCY cycles after its read.
        self.rp_valid[0].d.next = self.issue.val() & !self.reset.val();
        self.rp_bank[0].d.next = self.dr_bank.q.val();
        self.rp_last[0].d.next = (self.rd_next.q.val() + self.one.val()) == self.dr_count.q.val();
        for j in 1..RP_STAGES {
            self.rp_valid[j].d.next = self.rp_valid[j - 1].q.val() & !self.reset.val();
            self.rp_bank[j].d.next = self.rp_bank[j - 1].q.val();
            self.rp_last[j].d.next = self.rp_last[j - 1].q.val();
        }
        // ---- Row register: loads a row, then pops one beat per cycle.
        self.row_load.next = false;
        self.pop.next = self.pop_l.val();
        self.pop_beat.next = self.row_beat.q.val();
        self.pop_bank.next = self.row_bank.q.val();
        if self.pop_l.val() {
            self.row_beat.d.next = self.row_beat.q.val() << self.shift_one.val();
        }
        if self.pop_last_beat.val() {
            self.row_valid.d.next = false;
        }
        // (One-iteration loop: `#[hdl_gen]` indexes a Vec only by a loop variable.)
        for j in RP_LAST..RP_STAGES {
            self.row_load.next = self.rp_valid[j].q.val();
            if self.rp_valid[j].q.val() {
                self.row_valid.d.next = true;
                self.row_beat.d.next = self.beat_first.val();
                self.row_last.d.next = self.rp_last[j].q.val();
                self.row_bank.d.next = self.rp_bank[j].q.val();
            }
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
            self.s_ready_r.d.next = false;
            self.w_ready_r.d.next = false;
            self.run_active.d.next = false;
            self.run_bank.d.next = self.bank_zero.val();
            self.space.d.next = self.zero4.val();
            self.x_ready_r.d.next = false;
            self.flush0.d.next = self.zero10.val();
            self.flush1.d.next = self.zero10.val();
            self.dp0.d.next = false;
            self.dp1.d.next = false;
            self.rdp0.d.next = false;
            self.rdp1.d.next = false;
            self.dr_bank.d.next = false;
            self.dr_active.d.next = false;
            self.rd_wait.d.next = self.zero10.val();
            self.used.d.next = self.zero10.val();
            self.room.d.next = true;
            self.row_valid.d.next = false;
            for b in 0..NB {
                self.bank_full[b].d.next = false;
                self.bank_wait[b].d.next = false;
                self.bank_hold[b].d.next = self.zero10.val();
            }
        }
    }
}
