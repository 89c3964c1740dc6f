//! `Controller`: fetches commands in order and sequences the streams. A RUN
//! is handed to the *runner*, which accepts its M activation beats while the
//! main sequence fetches and executes the next commands (LOAD_H, the next
//! tile's LOAD_G and LOAD_W); the g and weight double buffers make that safe.
//!
//! Commands (`cmd_data`): bits[3:0] opcode, bit 4 ACC flag, bits[31:16] count.
//! 1 LOAD_G (R scale beats), 2 LOAD_H (C scale beats), 3 LOAD_W
//! (beats_per_tile weight beats), 4 RUN (count = M tokens, ACC flag), 5 DRAIN
//! (count = M tokens, M·C output words). Other opcodes, and RUN or DRAIN with
//! count 0, are consumed and do nothing.
//!
//! Interlocks keep results exact whatever the streams do:
//! - RUN waits for the runner to be free.
//! - LOAD_G and LOAD_W wait until the running RUN has accepted its first token
//!   (`first_pending` low): that token copies the shadow g and starts the
//!   weight swap.
//! - LOAD_W also waits until that token has passed every PE (`swap_wait`),
//!   since a PE copies its shadow bit when the token passes.
//! - DRAIN waits for the runner and until the last token's sums are written
//!   (`flush_wait`).
//!
//! DRAIN addresses the accumulator RAMs with token m + 1 while token m's
//! words are popped, so the next row loads on the last pop and words flow
//! without gaps between tokens (`prefetched` says the RAM output is ready).
//!
//! Ports (one clock):
//! | port           | dir | width | meaning |
//! |----------------|-----|-------|---------|
//! | `clock`        | in  | 1     | the one clock |
//! | `cmd_data`     | in  | 32    | command word |
//! | `cmd_valid`/`cmd_ready` | in/out | 1 | command stream handshake |
//! | `s_valid`/`s_ready` | in/out | 1 | scale stream handshake (data goes to the g and h chains) |
//! | `w_valid`/`w_ready` | in/out | 1 | weight stream handshake (data goes to the shadow chain) |
//! | `x_valid`/`x_ready` | in/out | 1 | activation stream handshake (data goes to the g scalers) |
//! | `o_ready`      | in  | 1     | output stream consumer ready |
//! | `o_valid`      | in  | 1     | the h scaler's output stage holds a word |
//! | `out_busy`     | in  | 1     | the h scaler holds any word |
//! | `g_shift`      | out | 1     | shift the scale beat into the (shadow) g chain |
//! | `g_swap`       | out | 1     | the token accepted this cycle is a RUN's first: g shadow → active |
//! | `h_shift`      | out | 1     | shift the scale beat into the h chain |
//! | `w_shift`      | out | 1     | shift the weight beat into the shadow chain |
//! | `token_valid`  | out | 1     | registered: a token's lanes leave the g scalers this cycle |
//! | `token_first`  | out | 1     | registered: ... it is the first of its RUN |
//! | `token_acc`    | out | 1     | registered: ... its RUN has the ACC flag |
//! | `drain`        | out | 1     | the drain path owns the accumulators' read port |
//! | `drain_addr`   | out | AD    | token being read by the drain path |
//! | `row_load`     | out | 1     | load the row buffer from the accumulators |
//! | `pop`          | out | 1     | move the row buffer's head (and its h) into the h scaler |
//! | `advance`      | out | 1     | the h scaler may advance (`!o_valid || o_ready`) |

use crate::util::twos;
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

/// Opcodes of the command word (bits [3:0]); the driver's `wire` module uses
/// the same numbers.
pub const OP_LOAD_G: u32 = 1;
pub const OP_LOAD_H: u32 = 2;
pub const OP_LOAD_W: u32 = 3;
pub const OP_RUN: u32 = 4;
pub const OP_DRAIN: u32 = 5;

#[derive(Copy, Clone, Debug, PartialEq, LogicState)]
pub enum ControlState {
    Fetch,
    LoadG,
    LoadH,
    LoadW,
    Run,
    DrainWait,
    DrainRead,
    DrainLoad,
    DrainPop,
    DrainFlush,
}

#[derive(Clone, Debug, LogicBlock)]
pub struct Controller<const AD: usize> {
    pub clock: Signal<In, Clock>,
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
    pub out_busy: Signal<In, Bit>,
    pub g_shift: Signal<Out, Bit>,
    pub g_swap: Signal<Out, Bit>,
    pub h_shift: Signal<Out, Bit>,
    pub w_shift: Signal<Out, Bit>,
    pub token_valid: Signal<Out, Bit>,
    pub token_first: Signal<Out, Bit>,
    pub token_acc: Signal<Out, Bit>,
    pub drain: Signal<Out, Bit>,
    pub drain_addr: Signal<Out, Bits<AD>>,
    pub row_load: Signal<Out, Bit>,
    pub pop: Signal<Out, Bit>,
    pub advance: Signal<Out, Bit>,
    state: DFF<ControlState>,
    left: DFF<Bits<16>>,
    first: DFF<Bit>,
    acc_flag: DFF<Bit>,
    run_busy: DFF<Bit>,
    run_left: DFF<Bits<16>>,
    run_acc: DFF<Bit>,
    first_pending: Signal<Local, Bit>,
    swap_wait: DFF<Bits<16>>,
    flush_wait: DFF<Bits<16>>,
    token: DFF<Bits<16>>,
    tokens: DFF<Bits<16>>,
    row_left: DFF<Bits<16>>,
    issued_valid: DFF<Bit>,
    issued_first: DFF<Bit>,
    issued_acc: DFF<Bit>,
    prefetched: DFF<Bit>,
    next_token: Signal<Local, Bits<16>>,
    opcode: Signal<Local, Bits<4>>,
    count: Signal<Local, Bits<16>>,
    accept_x: Signal<Local, Bit>,
    unused_cmd_bits: Signal<Local, Bit>,
    op_load_g: Constant<Bits<4>>,
    op_load_h: Constant<Bits<4>>,
    op_load_w: Constant<Bits<4>>,
    op_run: Constant<Bits<4>>,
    op_drain: Constant<Bits<4>>,
    zero: Constant<Bits<16>>,
    one: Constant<Bits<16>>,
    rows: Constant<Bits<16>>,
    cols: Constant<Bits<16>>,
    beats: Constant<Bits<16>>,
    swap_delay: Constant<Bits<16>>,
    flush_delay: Constant<Bits<16>>,
}

impl<const AD: usize> Controller<AD> {
    /// Cycles from accepting a RUN's first token until every PE has taken its
    /// new weight from the shadow bit (the token reaches PE(R-1, C-1) R+C-1
    /// cycles later, one of them in the g scaler), plus one cycle of margin.
    pub fn swap_delay(cfg: &ArrayConfig) -> usize {
        cfg.rows + cfg.cols - 1
    }
    /// Cycles from accepting a token until its last column's sum is written
    /// to the accumulator RAM (g scaler 1, array R + C − 1, accumulator 2),
    /// plus one cycle of margin.
    pub fn flush_delay(cfg: &ArrayConfig) -> usize {
        cfg.rows + cfg.cols + 1
    }

    pub fn new(cfg: &ArrayConfig) -> Self {
        let c16 = |v: usize| Constant::new(twos::<16>(v as i64));
        let op = |v: u32| Constant::new(twos::<4>(v as i64));
        Self {
            clock: Default::default(),
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
            out_busy: Default::default(),
            g_shift: Default::default(),
            g_swap: Default::default(),
            h_shift: Default::default(),
            w_shift: Default::default(),
            token_valid: Default::default(),
            token_first: Default::default(),
            token_acc: Default::default(),
            drain: Default::default(),
            drain_addr: Default::default(),
            row_load: Default::default(),
            pop: Default::default(),
            advance: Default::default(),
            state: Default::default(),
            left: Default::default(),
            first: Default::default(),
            acc_flag: Default::default(),
            run_busy: Default::default(),
            run_left: Default::default(),
            run_acc: Default::default(),
            first_pending: Default::default(),
            swap_wait: Default::default(),
            flush_wait: Default::default(),
            token: Default::default(),
            tokens: Default::default(),
            row_left: Default::default(),
            issued_valid: Default::default(),
            issued_first: Default::default(),
            issued_acc: Default::default(),
            prefetched: Default::default(),
            next_token: Default::default(),
            opcode: Default::default(),
            count: Default::default(),
            accept_x: Default::default(),
            unused_cmd_bits: Default::default(),
            op_load_g: op(OP_LOAD_G),
            op_load_h: op(OP_LOAD_H),
            op_load_w: op(OP_LOAD_W),
            op_run: op(OP_RUN),
            op_drain: op(OP_DRAIN),
            zero: c16(0),
            one: c16(1),
            rows: c16(cfg.rows),
            cols: c16(cfg.cols),
            beats: c16(cfg.beats_per_tile()),
            swap_delay: c16(Self::swap_delay(cfg)),
            flush_delay: c16(Self::flush_delay(cfg)),
        }
    }
}

impl<const AD: usize> Logic for Controller<AD> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            left,
            first,
            acc_flag,
            run_busy,
            run_left,
            run_acc,
            swap_wait,
            flush_wait,
            token,
            tokens,
            row_left,
            issued_valid,
            issued_first,
            issued_acc,
            prefetched
        );
        self.opcode.next = self.cmd_data.val().get_bits::<4>(0);
        self.count.next = self.cmd_data.val().get_bits::<16>(16);
        // Bits [15:5] are reserved.
        self.unused_cmd_bits.next = self.cmd_data.val().get_bits::<11>(5).xor();
        self.cmd_ready.next = false;
        self.s_ready.next = false;
        self.w_ready.next = false;
        self.g_shift.next = false;
        self.h_shift.next = false;
        self.w_shift.next = false;
        self.drain.next = false;
        self.row_load.next = false;
        self.pop.next = false;
        self.accept_x.next = false;
        self.advance.next = !self.o_valid.val() | self.o_ready.val();
        self.token_valid.next = self.issued_valid.q.val();
        self.token_first.next = self.issued_first.q.val();
        self.token_acc.next = self.issued_acc.q.val();
        // While a token's words are popped, the RAMs are already addressed
        // with the next token, so its row can load on the last pop.
        self.next_token.next = self.token.q.val() + self.one.val();
        self.drain_addr.next = self.token.q.val().get_bits::<AD>(0);
        if self.state.q.val() == ControlState::DrainPop {
            self.drain_addr.next = self.next_token.val().get_bits::<AD>(0);
        }
        if self.swap_wait.q.val() != self.zero.val() {
            self.swap_wait.d.next = self.swap_wait.q.val() - self.one.val();
        }
        if self.flush_wait.q.val() != self.zero.val() {
            self.flush_wait.d.next = self.flush_wait.q.val() - self.one.val();
        }
        // The runner: consumes a handed-over RUN's tokens while the main
        // sequence goes on with the next commands.
        self.x_ready.next = self.run_busy.q.val();
        self.first_pending.next = self.run_busy.q.val() & self.first.q.val();
        if self.run_busy.q.val() & self.x_valid.val() {
            self.accept_x.next = true;
            self.first.d.next = false;
            self.flush_wait.d.next = self.flush_delay.val();
            if self.first.q.val() {
                self.swap_wait.d.next = self.swap_delay.val();
            }
            self.run_left.d.next = self.run_left.q.val() - self.one.val();
            if self.run_left.q.val() == self.one.val() {
                self.run_busy.d.next = false;
            }
        }
        self.g_swap.next = self.accept_x.val() & self.first.q.val();
        match self.state.q.val() {
            ControlState::Fetch => {
                self.cmd_ready.next = true;
                if self.cmd_valid.val() {
                    self.acc_flag.d.next = self.cmd_data.val().get_bits::<1>(4).any();
                    self.token.d.next = self.zero.val();
                    if self.opcode.val() == self.op_load_g.val() {
                        self.left.d.next = self.rows.val();
                        self.state.d.next = ControlState::LoadG;
                    }
                    if self.opcode.val() == self.op_load_h.val() {
                        self.left.d.next = self.cols.val();
                        self.state.d.next = ControlState::LoadH;
                    }
                    if self.opcode.val() == self.op_load_w.val() {
                        self.left.d.next = self.beats.val();
                        self.state.d.next = ControlState::LoadW;
                    }
                    if (self.opcode.val() == self.op_run.val()) & (self.count.val() != self.zero.val()) {
                        self.left.d.next = self.count.val();
                        self.state.d.next = ControlState::Run;
                    }
                    if (self.opcode.val() == self.op_drain.val()) & (self.count.val() != self.zero.val()) {
                        self.tokens.d.next = self.count.val();
                        self.state.d.next = ControlState::DrainWait;
                    }
                }
            }
            ControlState::LoadG => {
                // The shadow g may change once the running RUN's first token
                // has copied it to the active g.
                self.s_ready.next = !self.first_pending.val();
                if self.s_valid.val() & !self.first_pending.val() {
                    self.g_shift.next = true;
                    self.left.d.next = self.left.q.val() - self.one.val();
                    if self.left.q.val() == self.one.val() {
                        self.state.d.next = ControlState::Fetch;
                    }
                }
            }
            ControlState::LoadH => {
                self.s_ready.next = true;
                if self.s_valid.val() {
                    self.h_shift.next = true;
                    self.left.d.next = self.left.q.val() - self.one.val();
                    if self.left.q.val() == self.one.val() {
                        self.state.d.next = ControlState::Fetch;
                    }
                }
            }
            ControlState::LoadW => {
                self.w_ready.next = (self.swap_wait.q.val() == self.zero.val()) & !self.first_pending.val();
                if self.w_valid.val() & (self.swap_wait.q.val() == self.zero.val()) & !self.first_pending.val() {
                    self.w_shift.next = true;
                    self.left.d.next = self.left.q.val() - self.one.val();
                    if self.left.q.val() == self.one.val() {
                        self.state.d.next = ControlState::Fetch;
                    }
                }
            }
            ControlState::Run => {
                // Hand the RUN to the runner once it is free.
                if !self.run_busy.q.val() {
                    self.run_busy.d.next = true;
                    self.run_left.d.next = self.left.q.val();
                    self.run_acc.d.next = self.acc_flag.q.val();
                    self.first.d.next = true;
                    self.state.d.next = ControlState::Fetch;
                }
            }
            ControlState::DrainWait => {
                if (self.flush_wait.q.val() == self.zero.val()) & !self.run_busy.q.val() {
                    self.state.d.next = ControlState::DrainRead;
                }
            }
            ControlState::DrainRead => {
                self.drain.next = true;
                self.state.d.next = ControlState::DrainLoad;
            }
            ControlState::DrainLoad => {
                self.drain.next = true;
                self.row_load.next = true;
                self.prefetched.d.next = false;
                self.row_left.d.next = self.cols.val();
                self.state.d.next = ControlState::DrainPop;
            }
            ControlState::DrainPop => {
                self.drain.next = true;
                self.pop.next = self.advance.val();
                // The RAM output holds the next token's sums once the next
                // address has been presented for a cycle.
                self.prefetched.d.next = true;
                if self.advance.val() {
                    self.row_left.d.next = self.row_left.q.val() - self.one.val();
                    if self.row_left.q.val() == self.one.val() {
                        self.token.d.next = self.next_token.val();
                        self.prefetched.d.next = false;
                        if self.next_token.val() == self.tokens.q.val() {
                            self.state.d.next = ControlState::DrainFlush;
                        } else if self.prefetched.q.val() {
                            self.row_load.next = true;
                            self.row_left.d.next = self.cols.val();
                        } else {
                            self.state.d.next = ControlState::DrainRead;
                        }
                    }
                }
            }
            ControlState::DrainFlush => {
                self.drain.next = true;
                if !self.out_busy.val() {
                    self.state.d.next = ControlState::Fetch;
                }
            }
            _ => {
                self.state.d.next = ControlState::Fetch;
            }
        }
        self.issued_valid.d.next = self.accept_x.val();
        self.issued_first.d.next = self.accept_x.val() & self.first.q.val();
        self.issued_acc.d.next = self.run_acc.q.val();
    }
}
