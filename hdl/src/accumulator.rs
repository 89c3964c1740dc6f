//! `OutputAccumulator`: one per array column. Adds the column's partial sums
//! across K tiles in one of two RAM banks of `acc_depth` words (one word per
//! token), while the drain path reads the other bank (ping-pong: an N tile
//! drains while the next one accumulates).
//!
//! A token's tags arrive `timing::TAG_LEAD` cycles before its partial sum
//! (the array's tag chain runs ahead of its lanes by that much). With
//! `first_in` the token is token 0 of a TILE; later ones are tokens 1, 2, …
//! in arrival order (bubbles carry `valid_in` = 0). Its word is read when the
//! tags arrive (cycle e) and is out `timing::ACC_READ_LATENCY` cycles later,
//! when the partial sum arrives and is added into the sum register; the RAM
//! takes the sum at the end of e + `timing::ACC_WRITE_EDGE`. In the generic
//! form the read passes two address registers (shared by all columns), the
//! RAM's read register and a register after the bank select; in the ECP5
//! form ([`ecp5_ram_pair`]) one address register, the block RAM with its
//! output register and a fabric register. Nothing is forwarded: a token
//! reading a word must come at least `timing::ACC_SPACING` cycles after the
//! token that last wrote it, which the controller guarantees
//! (`Interlocks::tile_spacing`). A drain read's word comes
//! `ACC_READ_LATENCY` cycles after its address.
//!
//! Ports (values two's complement, one clock):
//! | port         | dir | width | meaning |
//! |--------------|-----|-------|---------|
//! | `clock`      | in  | 1     | the one clock |
//! | `reset`      | in  | 1     | drop the sums in flight (the RAMs keep their words) |
//! | `valid_in`   | in  | 1     | a token's tags: its partial sum comes `TAG_LEAD` cycles later |
//! | `first_in`   | in  | 1     | ... the first token of a TILE (restart the token index) |
//! | `acc_in`     | in  | 1     | ... of a TILE with the ACC flag (add; else overwrite) |
//! | `bank_in`    | in  | 1     | ... accumulating into this bank |
//! | `psum_in`    | in  | P     | the column's partial sum leaving the array |
//! | `drain_rd`   | in  | 1     | the drain path reads bank `drain_bank` at `drain_addr` this cycle |
//! | `drain_bank` | in  | 1     | the bank being drained |
//! | `drain_addr` | in  | AD    | token whose sum the drain path reads |
//! | `acc_out`    | out | ACC   | the drain read: the sum of the token addressed `ACC_READ_LATENCY` cycles earlier |
//!
//! `P` = psum_bits, `ACC` = acc_bits = lane_bits + ceil(log2 max_k) (exact for
//! K <= max_k), `AD` = ceil(log2 acc_depth) address bits.

use crate::timing::TAG_LEAD;
use crate::util::{dffs, signed_value, twos, vsext};
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
    /// The RAMs' read addresses (e + 1, then e + 2): the token's, or the
    /// drain's in the bank it drains.
    ra0: DFF<Bits<AD>>,
    ra1: DFF<Bits<AD>>,
    ra0b: DFF<Bits<AD>>,
    ra1b: DFF<Bits<AD>>,
    /// The token's tags and address, e + 1 to e + 4 (its partial sum's arrival).
    tv: Vec<DFF<Bit>>,
    tacc: Vec<DFF<Bit>>,
    tbank: Vec<DFF<Bit>>,
    taddr: Vec<DFF<Bits<AD>>>,
    /// The word read for the token (its bank's RAM, registered at e + 3).
    old: DFF<Bits<ACC>>,
    /// The write stage: the new sum, its bank and address.
    wv: DFF<Bit>,
    wbank: DFF<Bit>,
    waddr: DFF<Bits<AD>>,
    wsum: DFF<Bits<ACC>>,
    /// The drain read: its bank (d + 1 to d + 3), then the word (d + 4).
    dbank: Vec<DFF<Bit>>,
    dword: DFF<Bits<ACC>>,
}

impl<const P: usize, const ACC: usize, const AD: usize> Default for OutputAccumulator<P, ACC, AD> {
    fn default() -> Self {
        assert!(ACC >= P && ACC <= 32);
        assert_eq!(TAG_LEAD, 4, "the model's stages are written for a read latency of 4");
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
            ra0: Default::default(),
            ra1: Default::default(),
            ra0b: Default::default(),
            ra1b: Default::default(),
            tv: dffs(TAG_LEAD),
            tacc: dffs(TAG_LEAD),
            tbank: dffs(TAG_LEAD),
            taddr: dffs(TAG_LEAD),
            old: Default::default(),
            wv: Default::default(),
            wbank: Default::default(),
            waddr: Default::default(),
            wsum: Default::default(),
            dbank: dffs(3),
            dword: Default::default(),
        }
    }
}

impl<const P: usize, const ACC: usize, const AD: usize> Logic for OutputAccumulator<P, ACC, AD> {
    fn update(&mut self) {
        let clock = self.clock.val();
        let reset = self.reset.val();
        for r in [&mut self.ram0, &mut self.ram1] {
            r.read_clock.next = clock;
            r.write_clock.next = clock;
        }
        for j in 0..TAG_LEAD {
            self.tv[j].clock.next = clock;
            self.tacc[j].clock.next = clock;
            self.tbank[j].clock.next = clock;
            self.taddr[j].clock.next = clock;
        }
        for d in &mut self.dbank {
            d.clock.next = clock;
        }
        for c in [
            &mut self.next_token.clock,
            &mut self.ra0.clock,
            &mut self.ra1.clock,
            &mut self.ra0b.clock,
            &mut self.ra1b.clock,
            &mut self.old.clock,
            &mut self.wv.clock,
            &mut self.wbank.clock,
            &mut self.waddr.clock,
            &mut self.wsum.clock,
            &mut self.dword.clock,
        ] {
            c.next = clock;
        }
        // Tags (cycle e): the token's index, and the read of its word in both
        // banks (the drain's read takes the port of the bank it drains),
        // through the address registers.
        let token = if self.first_in.val() { Bits::<AD>::default() } else { self.next_token.q.val() };
        self.next_token.d.next = if self.valid_in.val() { token + twos::<AD>(1) } else { self.next_token.q.val() };
        let (drain, dbank, daddr) = (self.drain_rd.val(), self.drain_bank.val(), self.drain_addr.val());
        self.ra0.d.next = if drain && !dbank { daddr } else { token };
        self.ra1.d.next = if drain && dbank { daddr } else { token };
        self.ra0b.d.next = self.ra0.q.val();
        self.ra1b.d.next = self.ra1.q.val();
        self.ram0.read_address.next = self.ra0b.q.val();
        self.ram1.read_address.next = self.ra1b.q.val();
        self.tv[0].d.next = self.valid_in.val() && !reset;
        self.tacc[0].d.next = self.acc_in.val();
        self.tbank[0].d.next = self.bank_in.val();
        self.taddr[0].d.next = token;
        for j in 1..TAG_LEAD {
            self.tv[j].d.next = self.tv[j - 1].q.val() && !reset;
            self.tacc[j].d.next = self.tacc[j - 1].q.val();
            self.tbank[j].d.next = self.tbank[j - 1].q.val();
            self.taddr[j].d.next = self.taddr[j - 1].q.val();
        }
        // e + 3: the RAMs' read registers hold the words; keep the token's bank's.
        let (rd0, rd1) = (self.ram0.read_data.val(), self.ram1.read_data.val());
        self.old.d.next = if self.tbank[2].q.val() { rd1 } else { rd0 };
        self.dbank[0].d.next = dbank;
        self.dbank[1].d.next = self.dbank[0].q.val();
        self.dbank[2].d.next = self.dbank[1].q.val();
        self.dword.d.next = if self.dbank[2].q.val() { rd1 } else { rd0 };
        self.acc_out.next = self.dword.q.val();
        // e + 4: the partial sum arrives; old + psum (or psum alone) into the
        // write stage.
        let last = TAG_LEAD - 1;
        let psum = signed_value(self.psum_in.val());
        let sum = if self.tacc[last].q.val() { signed_value(self.old.q.val()) + psum } else { psum };
        self.wv.d.next = self.tv[last].q.val() && !reset;
        self.wbank.d.next = self.tbank[last].q.val();
        self.waddr.d.next = self.taddr[last].q.val();
        self.wsum.d.next = twos::<ACC>(sum);
        // e + 5: the write.
        for (r, bank) in [(&mut self.ram0, false), (&mut self.ram1, true)] {
            r.write_address.next = self.waddr.q.val();
            r.write_data.next = self.wsum.q.val();
            r.write_enable.next = self.wv.q.val() && self.wbank.q.val() == bank;
        }
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        for d in self.tv.iter_mut().chain(self.tacc.iter_mut()).chain(self.tbank.iter_mut()) {
            d.clock.connect();
            d.d.connect();
        }
        for d in &mut self.taddr {
            d.clock.connect();
            d.d.connect();
        }
        self.next_token.clock.connect();
        self.next_token.d.connect();
        for d in self.dbank.iter_mut().chain([&mut self.wv, &mut self.wbank]) {
            d.clock.connect();
            d.d.connect();
        }
        for d in [&mut self.waddr, &mut self.ra0, &mut self.ra1, &mut self.ra0b, &mut self.ra1b] {
            d.clock.connect();
            d.d.connect();
        }
        for d in [&mut self.old, &mut self.wsum, &mut self.dword] {
            d.clock.connect();
            d.d.connect();
        }
        self.acc_out.connect();
        for r in [&mut self.ram0, &mut self.ram1] {
            r.read_address.connect();
            r.read_clock.connect();
            r.write_address.connect();
            r.write_clock.connect();
            r.write_data.connect();
            r.write_enable.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        // A bank of one column (`update()` above is its rust-hdl model).
        Verilog::Wrapper(Wrapper { code: accumulator_bank_verilog(1, P, ACC, AD), cores: String::new() })
    }
}

/// One accumulator RAM pair (banks 0 and 1, `width` bits per word, `words`
/// deep), named with `sfx`: the declarations (`mem0{sfx}`, `mem1{sfx}` and
/// their read registers `rd0{sfx}`, `rd1{sfx}`) and the clocked blocks that
/// read at `ra0`/`ra1` and write `sum` at `waddr` (bank `wbank`). Each port
/// in its own block, so yosys infers block RAMs. `no_rw_check`: a read of
/// the address written in the same cycle returns the old word in RTL, but
/// no token reads a word within `ACC_SPACING` cycles of its write (and the
/// drain reads a bank only after its last write, `flush`), so yosys need not
/// emulate read-before-write in soft logic (on the iCE40 it added a bypass
/// register and compare per RAM bit: 300 FF and about 400 LUT4 for 8
/// columns).
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
   rd0{sfx} <= mem0{sfx}[ra0b];
end
always @(posedge clock) begin
   rd1{sfx} <= mem1{sfx}[ra1b];
end
always @(posedge clock) begin
   if (wv & ~wbank) mem0{sfx}[waddr] <= {sum};
end
always @(posedge clock) begin
   if (wv & wbank) mem1{sfx}[waddr] <= {sum};
end
"
        ),
    )
}

/// `AccumulatorBank`: the C column accumulators as one block. Its rust-hdl
/// model is C [`OutputAccumulator`]s side by side; its Verilog
/// ([`accumulator_bank_verilog`]) keeps each column's two RAM banks, read
/// registers, adder and sum register, but holds the token counter, the
/// tags' stages, the write stage's address, bank and flag, and the drain
/// bank once for all columns: every column receives the same tags and drain
/// controls, so those registers were C equal copies.
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
}

impl<const C: usize, const P: usize, const ACC: usize, const AD: usize, const CP: usize, const CA: usize>
    AccumulatorBank<C, P, ACC, AD, CP, CA>
{
    pub fn new() -> Self {
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
            cols: (0..C).map(|_| OutputAccumulator::default()).collect(),
        }
    }
}

impl<const C: usize, const P: usize, const ACC: usize, const AD: usize, const CP: usize, const CA: usize> Default
    for AccumulatorBank<C, P, ACC, AD, CP, CA>
{
    fn default() -> Self {
        Self::new()
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
        Verilog::Wrapper(Wrapper { code: accumulator_bank_verilog(C, P, ACC, AD), cores: String::new() })
    }
}

/// The bank's Verilog body (see [`OutputAccumulator`] for the timing): the
/// registers every column shares written once, each column's own
/// (`mem0_c`, `mem1_c`, `rd0_c`, `rd1_c`, `old_c`, `wsum_c`, `dword_c`)
/// suffixed with its index. Three forms of the RAMs, selected by defines:
/// the generic one (each column's RAMs read and written in their own
/// clocked blocks, [`ram_pair_verilog`], so yosys infers one pair of block
/// RAMs per column, then registers after the bank selects);
/// `ONEBIT_PACKED_ACC_RAM` (the iCE40 synthesis: the columns share the
/// addresses, so one RAM per bank holds every column's word of a token: 8
/// columns of 21-bit words fill 11 SB_RAM40_4K per bank instead of 16);
/// `ONEBIT_ECP5_BRAM` ([`ecp5_ram_pair`]: two DP16KD per column with their
/// output registers, whose outputs the bank selects read directly, since a
/// DP16KD without them takes 5.8 ns from clock to data). All three have the
/// same timing.
pub fn accumulator_bank_verilog(c: usize, p: usize, acc: usize, ad: usize) -> String {
    use std::fmt::Write;
    assert_eq!(TAG_LEAD, 4, "the Verilog's stages are written for a read latency of 4");
    let (a1, ad1) = (acc - 1, ad - 1);
    let words = 1usize << ad;
    let mut v = format!(
        "reg [{ad1}:0] next_token;
reg [{ad1}:0] ra0, ra1;
reg tv_0, tv_1, tv_2, tv_3, tacc_0, tacc_1, tacc_2, tacc_3, tbank_0, tbank_1, tbank_2, tbank_3;
reg [{ad1}:0] taddr_0, taddr_1, taddr_2, taddr_3;
reg wv, wbank, dbank_0, dbank_1, dbank_2;
reg [{ad1}:0] waddr;
wire [{ad1}:0] token = first_in ? {ad}'d0 : next_token;
"
    );
    let init = format!(
        "   next_token = {ad}'d0; ra0 = {ad}'d0; ra1 = {ad}'d0;
   tv_0 = 1'd0; tv_1 = 1'd0; tv_2 = 1'd0; tv_3 = 1'd0; tacc_0 = 1'd0; tacc_1 = 1'd0; tacc_2 = 1'd0; tacc_3 = 1'd0;
   tbank_0 = 1'd0; tbank_1 = 1'd0; tbank_2 = 1'd0; tbank_3 = 1'd0;
   taddr_0 = {ad}'d0; taddr_1 = {ad}'d0; taddr_2 = {ad}'d0; taddr_3 = {ad}'d0;
   wv = 1'd0; wbank = 1'd0; dbank_0 = 1'd0; dbank_1 = 1'd0; dbank_2 = 1'd0; waddr = {ad}'d0;
"
    );
    let clocked = "   if (valid_in) next_token <= token + 1'd1;
   ra0 <= (drain_rd & ~drain_bank) ? drain_addr : token;
   ra1 <= (drain_rd & drain_bank) ? drain_addr : token;
   tv_0 <= valid_in & ~reset; tacc_0 <= acc_in; tbank_0 <= bank_in; taddr_0 <= token;
   tv_1 <= tv_0 & ~reset; tacc_1 <= tacc_0; tbank_1 <= tbank_0; taddr_1 <= taddr_0;
   tv_2 <= tv_1 & ~reset; tacc_2 <= tacc_1; tbank_2 <= tbank_1; taddr_2 <= taddr_1;
   tv_3 <= tv_2 & ~reset; tacc_3 <= tacc_2; tbank_3 <= tbank_2; taddr_3 <= taddr_2;
   wv <= tv_3 & ~reset; wbank <= tbank_3; waddr <= taddr_3;
   dbank_0 <= drain_bank; dbank_1 <= dbank_0; dbank_2 <= dbank_1;
"
    .to_string();
    // The RAMs and the two bank selects (the token's `old`, the drain's
    // `dword`), per form.
    let (mut per_col, mut per_col_blocks, mut sel_regs, mut sel_init, mut sel_clocked) =
        (String::new(), String::new(), String::new(), String::new(), String::new());
    let (mut packed, packed_blocks) = ram_pair_verilog("", c * acc, words, "wsum_all");
    let mut ecp5 = "reg dbank_3;\ninitial dbank_3 = 1'd0;\nalways @(posedge clock) dbank_3 <= dbank_2;\n".to_string();
    // The generic and packed forms' second address registers.
    let ra_b = format!(
        "reg [{ad1}:0] ra0b, ra1b;\ninitial begin\n   ra0b = {ad}'d0; ra1b = {ad}'d0;\nend\nalways @(posedge clock) begin\n   ra0b <= ra0; ra1b <= ra1;\nend\n"
    );
    let (mut cols, mut outs, mut sums) = (String::new(), vec![], vec![]);
    for col in 0..c {
        let (ram, blocks) = ram_pair_verilog(&format!("_{col}"), acc, words, &format!("wsum_{col}"));
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
        writeln!(sel_regs, "reg [{a1}:0] old_{col};\nreg [{a1}:0] dword_{col};\nreg [{a1}:0] wsum_{col};").unwrap();
        writeln!(sel_init, "   old_{col} = {acc}'d0; dword_{col} = {acc}'d0; wsum_{col} = {acc}'d0;").unwrap();
        writeln!(
            sel_clocked,
            "   old_{col} <= tbank_2 ? rd1_{col} : rd0_{col};\n   dword_{col} <= dbank_2 ? rd1_{col} : rd0_{col};\n   wsum_{col} <= tacc_3 ? old_{col} + ps_{col} : ps_{col};"
        )
        .unwrap();
        ecp5.push_str(&ecp5_ram_pair(col, acc, ad));
        writeln!(ecp5, "wire [{a1}:0] dword_{col} = dbank_3 ? qr1_{col} : qr0_{col};").unwrap();
        let psum = format!("psum_in[{}:{}]", col * p + p - 1, col * p);
        write!(
            cols,
            "wire [{p1}:0] pin_{col} = {psum};
wire [{a1}:0] ps_{col} = {};
",
            vsext(&format!("pin_{col}"), p, acc),
            p1 = p - 1
        )
        .unwrap();
        outs.push(format!("dword_{col}"));
        sums.push(format!("wsum_{col}"));
    }
    sums.reverse();
    let sel = format!("{sel_regs}initial begin\n{sel_init}end\nalways @(posedge clock) begin\n{sel_clocked}end\n");
    let packed_blocks = format!("wire [{}:0] wsum_all = {{{}}};\n{packed_blocks}", c * acc - 1, sums.join(", "));
    v = format!(
        "{v}{cols}`ifdef ONEBIT_ECP5_BRAM\n{ecp5}`elsif ONEBIT_PACKED_ACC_RAM\n{ra_b}{packed}{packed_blocks}{sel}`else\n{ra_b}{per_col}{per_col_blocks}{sel}`endif\n"
    );
    outs.reverse();
    writeln!(v, "assign acc_out = {{{}}};", outs.join(", ")).unwrap();
    format!("{v}initial begin\n{init}end\nalways @(posedge clock) begin\n{clocked}end\n")
}

/// Column `col`'s two RAMs in the ECP5 form: per bank a DP16KD as a 512 ×
/// 36 pseudo dual port (port A writes its own sum `wsum<bank>_col`, the
/// bank's word plus the partial sum, at `waddr` with all four byte enables
/// when `wv` names the bank; port B reads at the bank's first address
/// register), both output registers on (REGMODE_A/B "OUTREG", the
/// configuration hdl/verilog/DP16KD_sim.v models), then a fabric register
/// `qr<bank>_col`: the word read at the edge that takes `ra` is in `qr`
/// three edges later, when the generic form's `old`/`dword` registers have
/// it (that form's RAMs take the address an edge later). Each bank's adder
/// reads its own `qr`, so no bank select sits between a RAM and its sum.
/// Needs acc ≤ 36 and ad ≤ 9.
pub fn ecp5_ram_pair(col: usize, acc: usize, ad: usize) -> String {
    use std::fmt::Write;
    if acc > 36 || ad > 9 {
        return "initial $fatal(1, \"ONEBIT_ECP5_BRAM: the accumulators need acc_bits <= 36 and acc_depth <= 512\");\n".into();
    }
    let mut v = String::new();
    for bank in 0..2 {
        // Each bank's RAM gets its own sum (its word + the partial sum),
        // so no bank select sits between the RAM's output and the adder.
        writeln!(
            v,
            "reg [{a1}:0] qr{bank}_{col};
reg [{a1}:0] wsum{bank}_{col};
initial begin
   qr{bank}_{col} = {acc}'d0; wsum{bank}_{col} = {acc}'d0;
end
always @(posedge clock) begin
   qr{bank}_{col} <= q{bank}_{col}[{a1}:0];
   wsum{bank}_{col} <= tacc_3 ? qr{bank}_{col} + ps_{col} : ps_{col};
end
wire [35:0] wd{bank}_{col} = {{{}'d0, wsum{bank}_{col}}};",
            36 - acc,
            a1 = acc - 1
        )
        .unwrap();
        let we = if bank == 0 { "(wv & ~wbank)".to_string() } else { "(wv & wbank)".to_string() };
        let ra = format!("ra{bank}");
        let bit = |n: &str, i: usize| if i < ad { format!("{n}[{i}]") } else { "1'b0".into() };
        let mut ports = vec![];
        for i in 0..4 {
            ports.push(format!(".ADA{i}({we})"));
        }
        ports.push(".ADA4(1'b0)".into());
        ports.push(".ADB0(1'b0), .ADB1(1'b0), .ADB2(1'b0), .ADB3(1'b0), .ADB4(1'b0)".into());
        for i in 0..9 {
            ports.push(format!(".ADA{}({})", i + 5, bit("waddr", i)));
            ports.push(format!(".ADB{}({})", i + 5, bit(&ra, i)));
        }
        for i in 0..18 {
            ports.push(format!(".DIA{i}(wd{bank}_{col}[{i}]), .DIB{i}(wd{bank}_{col}[{}])", i + 18));
            ports.push(format!(".DOA{i}(q{bank}_{col}[{i}]), .DOB{i}(q{bank}_{col}[{}])", i + 18));
        }
        writeln!(
            v,
            "wire [35:0] q{bank}_{col};
DP16KD #(.DATA_WIDTH_A(36), .DATA_WIDTH_B(36), .REGMODE_A(\"OUTREG\"), .REGMODE_B(\"OUTREG\"), .RESETMODE(\"SYNC\"),
  .ASYNC_RESET_RELEASE(\"SYNC\"), .CSDECODE_A(\"0b000\"), .CSDECODE_B(\"0b000\"), .WRITEMODE_A(\"NORMAL\"), .WRITEMODE_B(\"NORMAL\"),
  .GSR(\"DISABLED\")) ram{bank}_{col} (
  .CLKA(clock), .CEA(1'b1), .OCEA(1'b1), .WEA(1'b1), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),
  .CLKB(clock), .CEB(1'b1), .OCEB(1'b1), .WEB(1'b0), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),
  {});",
            ports.join(",\n  ")
        )
        .unwrap();
    }
    writeln!(v, "wire unused_q_{col} = ^q0_{col}[35:{acc}] ^ ^q1_{col}[35:{acc}];").unwrap();
    v
}
