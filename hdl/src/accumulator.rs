//! `OutputAccumulator`: one per array column. Adds the column's partial sums
//! across K tiles in one of two RAM banks of `acc_depth` words (one word per
//! token), while the drain path reads the other bank (ping-pong: an N tile
//! drains while the next one accumulates).
//!
//! A partial sum arriving with `first_in` is token 0 of a TILE; later ones are
//! tokens 1, 2, … in arrival order (bubbles carry `valid_in` = 0). Read, add and
//! write take two cycles: the address is presented in the arrival cycle, the
//! sum is written at the end of the next one. A token of the next TILE may
//! arrive for the same word in that next cycle (M = 1, back to back): its RAM
//! read then misses the write, so the sum being written is forwarded to it.
//!
//! Ports (values two's complement, one clock):
//! | port         | dir | width | meaning |
//! |--------------|-----|-------|---------|
//! | `clock`      | in  | 1     | the one clock |
//! | `reset`      | in  | 1     | drop the sum in flight (the RAMs keep their words) |
//! | `psum_in`    | in  | P     | the column's partial sum leaving the array |
//! | `valid_in`   | in  | 1     | `psum_in` belongs to a token |
//! | `first_in`   | in  | 1     | ... to the first token of a TILE (restart the token index) |
//! | `acc_in`     | in  | 1     | ... to a TILE with the ACC flag (add; else overwrite) |
//! | `bank_in`    | in  | 1     | ... accumulating into this bank |
//! | `drain_rd`   | in  | 1     | the drain path reads bank `drain_bank` at `drain_addr` this cycle |
//! | `drain_bank` | in  | 1     | the bank being drained |
//! | `drain_addr` | in  | AD    | token whose sum the drain path reads |
//! | `acc_out`    | out | ACC   | the drain read: the sum of the token addressed in the previous cycle |
//!
//! `P` = psum_bits, `ACC` = acc_bits = lane_bits + ceil(log2 max_k) (exact for
//! K <= max_k), `AD` = ceil(log2 acc_depth) address bits.

use crate::util::{high_mask, twos};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct OutputAccumulator<const P: usize, const ACC: usize, const AD: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub psum_in: Signal<In, Bits<P>>,
    pub valid_in: Signal<In, Bit>,
    pub first_in: Signal<In, Bit>,
    pub acc_in: Signal<In, Bit>,
    pub bank_in: Signal<In, Bit>,
    pub drain_rd: Signal<In, Bit>,
    pub drain_bank: Signal<In, Bit>,
    pub drain_addr: Signal<In, Bits<AD>>,
    pub acc_out: Signal<Out, Bits<ACC>>,
    ram0: RAM<Bits<ACC>, AD>,
    ram1: RAM<Bits<ACC>, AD>,
    next_token: DFF<Bits<AD>>,
    wr_valid: DFF<Bit>,
    wr_acc: DFF<Bit>,
    wr_bank: DFF<Bit>,
    wr_addr: DFF<Bits<AD>>,
    wr_psum: DFF<Bits<ACC>>,
    fwd_valid: DFF<Bit>,
    fwd_bank: DFF<Bit>,
    fwd_addr: DFF<Bits<AD>>,
    fwd_sum: DFF<Bits<ACC>>,
    out_bank: DFF<Bit>,
    token: Signal<Local, Bits<AD>>,
    psum_ext: Signal<Local, Bits<ACC>>,
    old: Signal<Local, Bits<ACC>>,
    sum: Signal<Local, Bits<ACC>>,
    psum_half: Constant<Bits<P>>,
    ext_mask: Constant<Bits<ACC>>,
    addr_zero: Constant<Bits<AD>>,
    addr_one: Constant<Bits<AD>>,
    forward_on: Constant<Bit>,
}

impl<const P: usize, const ACC: usize, const AD: usize> Default for OutputAccumulator<P, ACC, AD> {
    fn default() -> Self {
        Self::new(true)
    }
}

impl<const P: usize, const ACC: usize, const AD: usize> OutputAccumulator<P, ACC, AD> {
    /// `forward`: forward a sum to the next cycle's token for the same word
    /// (always on in hardware; off only to show a test that needs it).
    pub fn new(forward: bool) -> Self {
        assert!(ACC >= P && ACC <= 32);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            psum_in: Default::default(),
            valid_in: Default::default(),
            first_in: Default::default(),
            acc_in: Default::default(),
            bank_in: Default::default(),
            drain_rd: Default::default(),
            drain_bank: Default::default(),
            drain_addr: Default::default(),
            acc_out: Default::default(),
            ram0: Default::default(),
            ram1: Default::default(),
            next_token: Default::default(),
            wr_valid: Default::default(),
            wr_acc: Default::default(),
            wr_bank: Default::default(),
            wr_addr: Default::default(),
            wr_psum: Default::default(),
            fwd_valid: Default::default(),
            fwd_bank: Default::default(),
            fwd_addr: Default::default(),
            fwd_sum: Default::default(),
            out_bank: Default::default(),
            token: Default::default(),
            psum_ext: Default::default(),
            old: Default::default(),
            sum: Default::default(),
            psum_half: Constant::new(twos::<P>(1 << (P - 1))),
            ext_mask: Constant::new(high_mask::<ACC>(P)),
            addr_zero: Constant::new(twos::<AD>(0)),
            addr_one: Constant::new(twos::<AD>(1)),
            forward_on: Constant::new(forward),
        }
    }
}

impl<const P: usize, const ACC: usize, const AD: usize> Logic for OutputAccumulator<P, ACC, AD> {
    fn update(&mut self) {
        dff_setup!(
            self, clock, next_token, wr_valid, wr_acc, wr_bank, wr_addr, wr_psum, fwd_valid, fwd_bank, fwd_addr,
            fwd_sum, out_bank
        );
        self.ram0.read_clock.next = self.clock.val();
        self.ram0.write_clock.next = self.clock.val();
        self.ram1.read_clock.next = self.clock.val();
        self.ram1.write_clock.next = self.clock.val();
        // Arrival: the token's index, its RAM read, and the write stage.
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
        self.wr_valid.d.next = self.valid_in.val() & !self.reset.val();
        self.wr_acc.d.next = self.acc_in.val();
        self.wr_bank.d.next = self.bank_in.val();
        self.wr_addr.d.next = self.token.val();
        self.wr_psum.d.next = self.psum_ext.val();
        self.ram0.read_address.next = self.token.val();
        self.ram1.read_address.next = self.token.val();
        if self.drain_rd.val() & !self.drain_bank.val() {
            self.ram0.read_address.next = self.drain_addr.val();
        }
        if self.drain_rd.val() & self.drain_bank.val() {
            self.ram1.read_address.next = self.drain_addr.val();
        }
        // Write stage: old + psum (or psum alone), forwarding the previous
        // cycle's write when it went to the same word.
        self.old.next = self.ram0.read_data.val();
        if self.wr_bank.q.val() {
            self.old.next = self.ram1.read_data.val();
        }
        if self.forward_on.val() & self.fwd_valid.q.val() & (self.fwd_bank.q.val() == self.wr_bank.q.val()) & (self.fwd_addr.q.val() == self.wr_addr.q.val()) {
            self.old.next = self.fwd_sum.q.val();
        }
        self.sum.next = self.wr_psum.q.val();
        if self.wr_acc.q.val() {
            self.sum.next = self.old.val() + self.wr_psum.q.val();
        }
        self.ram0.write_address.next = self.wr_addr.q.val();
        self.ram1.write_address.next = self.wr_addr.q.val();
        self.ram0.write_data.next = self.sum.val();
        self.ram1.write_data.next = self.sum.val();
        self.ram0.write_enable.next = self.wr_valid.q.val() & !self.wr_bank.q.val();
        self.ram1.write_enable.next = self.wr_valid.q.val() & self.wr_bank.q.val();
        self.fwd_valid.d.next = self.wr_valid.q.val() & !self.reset.val();
        self.fwd_bank.d.next = self.wr_bank.q.val();
        self.fwd_addr.d.next = self.wr_addr.q.val();
        self.fwd_sum.d.next = self.sum.val();
        // The drain read port: the bank addressed in the previous cycle.
        self.out_bank.d.next = self.drain_bank.val();
        self.acc_out.next = self.ram0.read_data.val();
        if self.out_bank.q.val() {
            self.acc_out.next = self.ram1.read_data.val();
        }
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        self.next_token.clock.connect();
        self.next_token.d.connect();
        self.wr_valid.clock.connect();
        self.wr_valid.d.connect();
        self.wr_acc.clock.connect();
        self.wr_acc.d.connect();
        self.wr_bank.clock.connect();
        self.wr_bank.d.connect();
        self.wr_addr.clock.connect();
        self.wr_addr.d.connect();
        self.wr_psum.clock.connect();
        self.wr_psum.d.connect();
        self.fwd_valid.clock.connect();
        self.fwd_valid.d.connect();
        self.fwd_bank.clock.connect();
        self.fwd_bank.d.connect();
        self.fwd_addr.clock.connect();
        self.fwd_addr.d.connect();
        self.fwd_sum.clock.connect();
        self.fwd_sum.d.connect();
        self.out_bank.clock.connect();
        self.out_bank.d.connect();
        self.acc_out.connect();
        self.old.connect();
        self.psum_ext.connect();
        self.sum.connect();
        self.token.connect();
        self.ram0.read_address.connect();
        self.ram0.read_clock.connect();
        self.ram0.write_address.connect();
        self.ram0.write_clock.connect();
        self.ram0.write_data.connect();
        self.ram0.write_enable.connect();
        self.ram1.read_address.connect();
        self.ram1.read_clock.connect();
        self.ram1.write_address.connect();
        self.ram1.write_clock.connect();
        self.ram1.write_data.connect();
        self.ram1.write_enable.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them), with the two RAM banks as
        // memories in the same module, read and written in their own clocked
        // blocks as rust-hdl's RAM does (a read in a write's cycle sees the
        // old word), so yosys still infers block RAM.
        Verilog::Wrapper(Wrapper {
            code: accumulator_verilog(P, ACC, AD, self.forward_on.val()),
            cores: String::new(),
        })
    }
}

/// One accumulator RAM pair (banks 0 and 1, `width` bits per word,
/// `words` deep), named with `sfx`: the declarations (`mem0{sfx}`,
/// `mem1{sfx}` and their registered reads `rd0{sfx}`, `rd1{sfx}`) and the
/// clocked blocks that read at `ra0`/`ra1` and write `sum` at `wr_addr`.
/// Each port in its own block, so yosys infers block RAMs. `no_rw_check`:
/// a read of the address written in the same cycle returns the old word in
/// RTL, but the forwarding register (`fwd_hit`) replaces exactly those reads,
/// so yosys need not emulate read-before-write in soft logic (on the iCE40 it
/// added a bypass register and compare per RAM bit: 300 FF and about 400
/// LUT4 for 8 columns).
fn ram_pair_verilog(sfx: &str, width: usize, words: usize, sum: &str) -> (String, String) {
    let (w, w1) = (width - 1, words - 1);
    (
        format!(
            "(* no_rw_check *) reg [{w}:0] mem0{sfx} [0:{w1}];
(* no_rw_check *) reg [{w}:0] mem1{sfx} [0:{w1}];
reg [{w}:0] rd0{sfx};
reg [{w}:0] rd1{sfx};
"
        ),
        format!(
            "always @(posedge clock) begin
   rd0{sfx} <= mem0{sfx}[ra0];
end
always @(posedge clock) begin
   rd1{sfx} <= mem1{sfx}[ra1];
end
always @(posedge clock) begin
   if (wr_valid & ~wr_bank) mem0{sfx}[wr_addr] <= {sum};
end
always @(posedge clock) begin
   if (wr_valid & wr_bank) mem1{sfx}[wr_addr] <= {sum};
end
"
        ),
    )
}

/// The forwarding select `fwd_hit` (this cycle's write-stage word is the
/// one the previous cycle wrote, so its RAM read missed that write),
/// registered a cycle early. The write stage at t holds what the arrival
/// stage had at t−1 (wr_bank(t) = bank_in(t−1), wr_addr(t) = token(t−1)),
/// so the compare of the previous write (`wr_*` at t−1) with the next one
/// (`bank_in`, `token` at t−1) runs in the arrival cycle, and the write
/// stage's `old` select sees one flip-flop: the same value every cycle as
/// comparing delayed copies of `wr_*` in the write stage, which led the
/// iCE40's critical path (forwarding registers → compare → `old` select →
/// add: 34.9 ns). Returns the declaration, its `initial` line and its
/// clocked line.
fn forward_hit_verilog(forward: bool) -> (String, String, String) {
    if forward {
        (
            "reg fwd_hit;\n".into(),
            "   fwd_hit = 1'd0;\n".into(),
            "   fwd_hit <= wr_valid & ~reset & (wr_bank == bank_in) & (wr_addr == token);\n".into(),
        )
    } else {
        ("wire fwd_hit = 1'b0;\n".into(), String::new(), String::new())
    }
}

/// The accumulator's Verilog body (see the module doc for the timing).
pub fn accumulator_verilog(p: usize, acc: usize, ad: usize, forward: bool) -> String {
    let (a1, ad1) = (acc - 1, ad - 1);
    let words = 1usize << ad;
    let psum_ext = crate::util::vsext("psum_in", p, acc);
    let (hit_decl, hit_init, hit_next) = forward_hit_verilog(forward);
    let (ram, ram_blocks) = ram_pair_verilog("", acc, words, "sum");
    format!(
        "{ram}reg [{ad1}:0] next_token;
reg wr_valid;
reg wr_acc;
reg wr_bank;
reg [{ad1}:0] wr_addr;
reg [{a1}:0] wr_psum;
{hit_decl}reg [{a1}:0] fwd_sum;
reg out_bank;
wire [{ad1}:0] token = first_in ? {ad}'d0 : next_token;
wire [{ad1}:0] ra0 = (drain_rd & ~drain_bank) ? drain_addr : token;
wire [{ad1}:0] ra1 = (drain_rd & drain_bank) ? drain_addr : token;
wire [{a1}:0] old = fwd_hit ? fwd_sum : (wr_bank ? rd1 : rd0);
wire [{a1}:0] sum = wr_acc ? old + wr_psum : wr_psum;
assign acc_out = out_bank ? rd1 : rd0;
initial begin
   next_token = {ad}'d0;
   wr_valid = 1'd0;
   wr_acc = 1'd0;
   wr_bank = 1'd0;
   wr_addr = {ad}'d0;
   wr_psum = {acc}'d0;
{hit_init}   fwd_sum = {acc}'d0;
   out_bank = 1'd0;
end
{ram_blocks}always @(posedge clock) begin
   if (valid_in) next_token <= token + {ad}'d1;
   wr_valid <= valid_in & ~reset;
   wr_acc <= acc_in;
   wr_bank <= bank_in;
   wr_addr <= token;
   wr_psum <= {psum_ext};
{hit_next}   fwd_sum <= sum;
   out_bank <= drain_bank;
end
"
    )
}

/// `AccumulatorBank`: the C column accumulators as one block. Its rust-hdl
/// model is C [`OutputAccumulator`]s side by side; its Verilog
/// ([`accumulator_bank_verilog`]) keeps each column's two RAM banks, read and
/// write registers and adder, but holds the token counter, the write stage's
/// address, bank and flags, the forwarding compare and the drain bank once
/// for all columns: every column receives the same `valid_in`, `first_in`,
/// `acc_in`, `bank_in` and drain controls, so those registers were C equal
/// copies (which yosys's `opt_merge` already folds into one in synthesis),
/// and the Verilated model evaluated each of them C times per cycle.
///
/// Ports: as [`OutputAccumulator`]'s, with `psum_in` (C·P bits, column c in
/// bits [c·P, (c+1)·P)) and `acc_out` (C·ACC bits, column c in bits
/// [c·ACC, (c+1)·ACC)) for all columns.
#[derive(LogicBlock)]
pub struct AccumulatorBank<const C: usize, const P: usize, const ACC: usize, const AD: usize, const CP: usize, const CA: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub psum_in: Signal<In, Bits<CP>>,
    pub valid_in: Signal<In, Bit>,
    pub first_in: Signal<In, Bit>,
    pub acc_in: Signal<In, Bit>,
    pub bank_in: Signal<In, Bit>,
    pub drain_rd: Signal<In, Bit>,
    pub drain_bank: Signal<In, Bit>,
    pub drain_addr: Signal<In, Bits<AD>>,
    pub acc_out: Signal<Out, Bits<CA>>,
    cols: Vec<OutputAccumulator<P, ACC, AD>>,
    forward: Constant<Bit>,
}

impl<const C: usize, const P: usize, const ACC: usize, const AD: usize, const CP: usize, const CA: usize>
    AccumulatorBank<C, P, ACC, AD, CP, CA>
{
    /// `forward` as for [`OutputAccumulator::new`].
    pub fn new(forward: bool) -> Self {
        assert_eq!(CP, C * P, "CP must be C·P");
        assert_eq!(CA, C * ACC, "CA must be C·ACC");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            psum_in: Default::default(),
            valid_in: Default::default(),
            first_in: Default::default(),
            acc_in: Default::default(),
            bank_in: Default::default(),
            drain_rd: Default::default(),
            drain_bank: Default::default(),
            drain_addr: Default::default(),
            acc_out: Default::default(),
            cols: (0..C).map(|_| OutputAccumulator::new(forward)).collect(),
            forward: Constant::new(forward),
        }
    }
}

impl<const C: usize, const P: usize, const ACC: usize, const AD: usize, const CP: usize, const CA: usize> Logic
    for AccumulatorBank<C, P, ACC, AD, CP, CA>
{
    fn update(&mut self) {
        let psums = self.psum_in.val();
        let mut out = Bits::<CA>::default();
        for (c, a) in self.cols.iter_mut().enumerate() {
            a.clock.next = self.clock.val();
            a.reset.next = self.reset.val();
            a.psum_in.next = psums.get_bits::<P>(c * P);
            a.valid_in.next = self.valid_in.val();
            a.first_in.next = self.first_in.val();
            a.acc_in.next = self.acc_in.val();
            a.bank_in.next = self.bank_in.val();
            a.drain_rd.next = self.drain_rd.val();
            a.drain_bank.next = self.drain_bank.val();
            a.drain_addr.next = self.drain_addr.val();
            out.set_bits::<ACC>(c * ACC, a.acc_out.val());
        }
        self.acc_out.next = out;
    }

    fn connect(&mut self) {
        for a in &mut self.cols {
            a.clock.connect();
            a.reset.connect();
            a.psum_in.connect();
            a.valid_in.connect();
            a.first_in.connect();
            a.acc_in.connect();
            a.bank_in.connect();
            a.drain_rd.connect();
            a.drain_bank.connect();
            a.drain_addr.connect();
        }
        self.acc_out.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them).
        Verilog::Wrapper(Wrapper {
            code: accumulator_bank_verilog(C, P, ACC, AD, self.forward.val()),
            cores: String::new(),
        })
    }
}

/// The bank's Verilog body: [`accumulator_verilog`]'s timing, with the
/// registers every column shares written once and each column's own (`mem0_c`,
/// `mem1_c`, `rd0_c`, `rd1_c`, `wr_psum_c`, `fwd_sum_c`) suffixed with its
/// index. Each column's RAMs are read and written in their own clocked blocks
/// ([`ram_pair_verilog`]), so yosys still infers one pair of block RAMs per
/// column, or, where `ONEBIT_PACKED_ACC_RAM` is defined, one pair for all.
pub fn accumulator_bank_verilog(c: usize, p: usize, acc: usize, ad: usize, forward: bool) -> String {
    use std::fmt::Write;
    let (a1, ad1) = (acc - 1, ad - 1);
    let words = 1usize << ad;
    let (hit_decl, hit_init, hit_next) = forward_hit_verilog(forward);
    let mut v = format!(
        "reg [{ad1}:0] next_token;
reg wr_valid;
reg wr_acc;
reg wr_bank;
reg [{ad1}:0] wr_addr;
{hit_decl}reg out_bank;
wire [{ad1}:0] token = first_in ? {ad}'d0 : next_token;
wire [{ad1}:0] ra0 = (drain_rd & ~drain_bank) ? drain_addr : token;
wire [{ad1}:0] ra1 = (drain_rd & drain_bank) ? drain_addr : token;
"
    );
    let mut init = format!(
        "   next_token = {ad}'d0;
   wr_valid = 1'd0;
   wr_acc = 1'd0;
   wr_bank = 1'd0;
   wr_addr = {ad}'d0;
{hit_init}   out_bank = 1'd0;
"
    );
    let mut clocked = format!(
        "   if (valid_in) next_token <= token + {ad}'d1;
   wr_valid <= valid_in & ~reset;
   wr_acc <= acc_in;
   wr_bank <= bank_in;
   wr_addr <= token;
{hit_next}   out_bank <= drain_bank;
",
    );
    let mut outs = vec![];
    // Per column: two RAMs (the generic form), or slices of one RAM per bank
    // that holds every column's word of a token (`ONEBIT_PACKED_ACC_RAM`, the
    // iCE40 synthesis: the columns share the addresses, so 8 columns of
    // 21-bit words fill 11 SB_RAM40_4K per bank instead of 16).
    let (mut per_col, mut per_col_blocks, mut cols) = (String::new(), String::new(), String::new());
    let (mut packed, packed_blocks) = ram_pair_verilog("", c * acc, words, "sum_all");
    let mut sums = vec![];
    for col in 0..c {
        let psum = format!("psum_in[{}:{}]", col * p + p - 1, col * p);
        let ext = crate::util::vsext(&format!("psum_{col}"), p, acc);
        let (ram, blocks) = ram_pair_verilog(&format!("_{col}"), acc, words, &format!("sum_{col}"));
        per_col.push_str(&ram);
        per_col_blocks.push_str(&blocks);
        write!(
            packed,
            "wire [{a1}:0] rd0_{col} = rd0[{hi}:{lo}];
wire [{a1}:0] rd1_{col} = rd1[{hi}:{lo}];
",
            lo = col * acc,
            hi = col * acc + a1
        )
        .unwrap();
        write!(
            cols,
            "reg [{a1}:0] wr_psum_{col};
reg [{a1}:0] fwd_sum_{col};
wire [{}:0] psum_{col} = {psum};
wire [{a1}:0] old_{col} = fwd_hit ? fwd_sum_{col} : (wr_bank ? rd1_{col} : rd0_{col});
wire [{a1}:0] sum_{col} = wr_acc ? old_{col} + wr_psum_{col} : wr_psum_{col};
",
            p - 1
        )
        .unwrap();
        writeln!(init, "   wr_psum_{col} = {acc}'d0;\n   fwd_sum_{col} = {acc}'d0;").unwrap();
        writeln!(clocked, "   wr_psum_{col} <= {ext};\n   fwd_sum_{col} <= sum_{col};").unwrap();
        outs.push(format!("(out_bank ? rd1_{col} : rd0_{col})"));
        sums.push(format!("sum_{col}"));
    }
    sums.reverse();
    let packed_blocks = format!("wire [{}:0] sum_all = {{{}}};\n{packed_blocks}", c * acc - 1, sums.join(", "));
    v = format!(
        "{v}`ifdef ONEBIT_PACKED_ACC_RAM\n{packed}`else\n{per_col}`endif\n{cols}`ifdef ONEBIT_PACKED_ACC_RAM\n{packed_blocks}`else\n{per_col_blocks}`endif\n"
    );
    outs.reverse();
    writeln!(v, "assign acc_out = {{{}}};", outs.join(", ")).unwrap();
    format!("{v}initial begin\n{init}end\nalways @(posedge clock) begin\n{clocked}end\n")
}
