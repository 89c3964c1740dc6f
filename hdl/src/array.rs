//! `SystolicArray`: the R×C weight-stationary grid of [`SignAccumulatePe`]s.
//! Partial sums flow south through the rows, one row per cycle, so row r
//! works on a token r cycles after row 0 (the west skew delays row r's lane
//! by r registers). Within a row the lane is broadcast to all C columns, so a
//! token's C sums leave the south edge together, R cycles after its lanes
//! entered: latency R, not R + C as with lanes passed east PE to PE, which is
//! what lets one-token decode run at the weight-stream bound even on the
//! smallest layers (docs/hardware.md).
//!
//! Each token carries its weight bank (one-hot `sel`, presented a cycle ahead
//! of its lanes, so each PE can register the bit it selects) and its tags
//! (`valid`, `first`, `acc`, `accbank`) down one shared chain of registers:
//! row r ≥ 1 takes the bank from stage r − 1 (R − 1 bank stages), the south
//! edge the tags from stage R − 1 (R tag stages).
//!
//! Ports (one clock):
//! | port            | dir | width | meaning |
//! |-----------------|-----|-------|---------|
//! | `clock`, `reset`| in  | 1     | the clock; `reset` drops the tokens in flight |
//! | `west_lanes`    | in  | R·L   | one token's lanes, row r in bits [r·L, (r+1)·L) |
//! | `west_sel`      | in  | NB    | one-hot: the weight bank of the token whose lanes come on `west_lanes` in the next cycle |
//! | `west_valid`, `west_first`, `west_acc`, `west_accbank` | in | 1 | the token's tags |
//! | `w_fire`        | in  | 1     | a weight beat is taken this cycle |
//! | `w_group`       | in  | B     | one-hot: which beat of its tile |
//! | `w_bank`        | in  | NB    | one-hot: the bank it goes to |
//! | `w_data`        | in  | WB    | the beat: stream bit b·WB + j in bit j |
//! | `south_psums`   | out | C·P   | column c's partial sum in bits [c·P, (c+1)·P) |
//! | `south_valid`, `south_first`, `south_acc`, `south_accbank` | out | 1 | the tags of the token those sums belong to |
//!
//! Weight load: beat b of a tile writes stream bits [b·WB, (b+1)·WB) into PEs
//! i = c·R + r (column-major, the weight stream's order) of the chosen bank,
//! through one registered write stage (a one-hot enable per beat and bank,
//! and the beat's bits), so no enable fans out to more than WB PEs and no
//! bit of a bank moves except the one being written.

use crate::pe::{SignAccumulatePe, SignExtend};
use rust_hdl::prelude::*;

const TAG_VALID: usize = 0;
const TAG_FIRST: usize = 1;
const TAG_ACC: usize = 2;
const TAG_ACCBANK: usize = 3;

#[derive(LogicBlock)]
pub struct SystolicArray<
    const R: usize,
    const C: usize,
    const L: usize,
    const P: usize,
    const WB: usize,
    const NB: usize,
    const B: usize,
    const RL: usize,
    const CP: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub west_lanes: Signal<In, Bits<RL>>,
    pub west_sel: Signal<In, Bits<NB>>,
    pub west_valid: Signal<In, Bit>,
    pub west_first: Signal<In, Bit>,
    pub west_acc: Signal<In, Bit>,
    pub west_accbank: Signal<In, Bit>,
    pub w_fire: Signal<In, Bit>,
    pub w_group: Signal<In, Bits<B>>,
    pub w_bank: Signal<In, Bits<NB>>,
    pub w_data: Signal<In, Bits<WB>>,
    pub south_psums: Signal<Out, Bits<CP>>,
    pub south_valid: Signal<Out, Bit>,
    pub south_first: Signal<Out, Bit>,
    pub south_acc: Signal<Out, Bit>,
    pub south_accbank: Signal<Out, Bit>,
    pes: Vec<SignAccumulatePe<L, P, NB>>,
    ext: Vec<SignExtend<L, P>>,
    skew_lane: Vec<DFF<Bits<L>>>,
    stage_tags: Vec<DFF<Bits<4>>>,
    stage_sel: Vec<DFF<Bits<NB>>>,
    wr_en: Vec<DFF<Bits<NB>>>,
    wr_bits: DFF<Bits<WB>>,
    west_tag: Signal<Local, Bits<4>>,
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const NB: usize,
        const B: usize,
        const RL: usize,
        const CP: usize,
    > SystolicArray<R, C, L, P, WB, NB, B, RL, CP>
{
    pub fn new() -> Self {
        assert_eq!(RL, R * L, "RL must be R·L");
        assert_eq!(CP, C * P, "CP must be C·P");
        assert!(R >= 1 && C >= 1 && (R * C) % WB == 0 && B == R * C / WB, "WB must divide R·C into B beats");
        let skews = R * (R - 1) / 2;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            west_lanes: Default::default(),
            west_sel: Default::default(),
            west_valid: Default::default(),
            west_first: Default::default(),
            west_acc: Default::default(),
            west_accbank: Default::default(),
            w_fire: Default::default(),
            w_group: Default::default(),
            w_bank: Default::default(),
            w_data: Default::default(),
            south_psums: Default::default(),
            south_valid: Default::default(),
            south_first: Default::default(),
            south_acc: Default::default(),
            south_accbank: Default::default(),
            pes: (0..R * C).map(|_| SignAccumulatePe::default()).collect(),
            ext: (0..R).map(|_| SignExtend::default()).collect(),
            skew_lane: (0..skews).map(|_| DFF::default()).collect(),
            stage_tags: (0..R).map(|_| DFF::default()).collect(),
            stage_sel: (0..R - 1).map(|_| DFF::default()).collect(),
            wr_en: (0..B).map(|_| DFF::default()).collect(),
            wr_bits: Default::default(),
            west_tag: Default::default(),
        }
    }

    /// PE index of (row, column): column-major, the weight stream's order.
    fn pe(r: usize, c: usize) -> usize {
        c * R + r
    }
    /// Index of the j-th skew register of row r (row r has r of them).
    fn skew(r: usize, j: usize) -> usize {
        r * (r - 1) / 2 + j
    }
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const NB: usize,
        const B: usize,
        const RL: usize,
        const CP: usize,
    > Default for SystolicArray<R, C, L, P, WB, NB, B, RL, CP>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const NB: usize,
        const B: usize,
        const RL: usize,
        const CP: usize,
    > Logic for SystolicArray<R, C, L, P, WB, NB, B, RL, CP>
{
    fn update(&mut self) {
        let clock = self.clock.val();
        let reset = self.reset.val();
        let lanes = self.west_lanes.val();
        for d in &mut self.skew_lane {
            d.clock.next = clock;
        }
        // The tag/bank chain: stage j holds the token that entered j + 1 cycles ago.
        let mut tag = Bits::<4>::default();
        tag = tag.replace_bit(TAG_VALID, self.west_valid.val());
        tag = tag.replace_bit(TAG_FIRST, self.west_first.val());
        tag = tag.replace_bit(TAG_ACC, self.west_acc.val());
        tag = tag.replace_bit(TAG_ACCBANK, self.west_accbank.val());
        self.west_tag.next = tag;
        for j in 0..R {
            self.stage_tags[j].clock.next = clock;
            let t = if j == 0 { tag } else { self.stage_tags[j - 1].q.val() };
            self.stage_tags[j].d.next = if reset { Bits::<4>::default() } else { t };
        }
        for j in 0..R - 1 {
            self.stage_sel[j].clock.next = clock;
            self.stage_sel[j].d.next = if j == 0 { self.west_sel.val() } else { self.stage_sel[j - 1].q.val() };
        }
        // Weight write stage.
        let (fire, group, bank) = (self.w_fire.val(), self.w_group.val(), self.w_bank.val());
        for g in 0..B {
            self.wr_en[g].clock.next = clock;
            self.wr_en[g].d.next = if fire & group.get_bit(g) { bank } else { Bits::<NB>::default() };
        }
        self.wr_bits.clock.next = clock;
        self.wr_bits.d.next = self.w_data.val();
        let bits = self.wr_bits.q.val();
        // West edge: row r's lane through r skew registers, broadcast along the row.
        for r in 0..R {
            let lane = lanes.get_bits::<L>(r * L);
            let a = if r == 0 {
                lane
            } else {
                let k0 = Self::skew(r, 0);
                self.skew_lane[k0].d.next = lane;
                for j in 1..r {
                    let k = Self::skew(r, j);
                    self.skew_lane[k].d.next = self.skew_lane[k - 1].q.val();
                }
                self.skew_lane[Self::skew(r, r - 1)].q.val()
            };
            let sel = if r == 0 {
                self.west_sel.val()
            } else {
                self.stage_sel[r - 1].q.val()
            };
            self.ext[r].lane.next = a;
            let wide = self.ext[r].wide.val();
            for c in 0..C {
                let i = Self::pe(r, c);
                let pe = &mut self.pes[i];
                pe.clock.next = clock;
                pe.lane_in.next = wide;
                pe.sel_in.next = sel;
                pe.wr_en.next = self.wr_en[i / WB].q.val();
                pe.wr_bit.next = bits.get_bit(i % WB);
            }
        }
        for c in 0..C {
            for r in 0..R {
                let i = Self::pe(r, c);
                self.pes[i].psum_in.next = if r == 0 {
                    Bits::<P>::default()
                } else {
                    self.pes[Self::pe(r - 1, c)].psum_out.val()
                };
            }
        }
        let mut psums = Bits::<CP>::default();
        for c in 0..C {
            psums.set_bits::<P>(c * P, self.pes[Self::pe(R - 1, c)].psum_out.val());
        }
        self.south_psums.next = psums;
        let t = self.stage_tags[R - 1].q.val();
        self.south_valid.next = t.get_bit(TAG_VALID);
        self.south_first.next = t.get_bit(TAG_FIRST);
        self.south_acc.next = t.get_bit(TAG_ACC);
        self.south_accbank.next = t.get_bit(TAG_ACCBANK);
    }

    fn connect(&mut self) {
        for d in &mut self.skew_lane {
            d.clock.connect();
            d.d.connect();
        }
        for d in self.stage_tags.iter_mut() {
            d.clock.connect();
            d.d.connect();
        }
        for d in self.stage_sel.iter_mut() {
            d.clock.connect();
            d.d.connect();
        }
        for d in self.wr_en.iter_mut() {
            d.clock.connect();
            d.d.connect();
        }
        self.wr_bits.clock.connect();
        self.wr_bits.d.connect();
        for e in &mut self.ext {
            e.lane.connect();
        }
        for p in &mut self.pes {
            p.clock.connect();
            p.lane_in.connect();
            p.sel_in.connect();
            p.psum_in.connect();
            p.wr_en.connect();
            p.wr_bit.connect();
        }
        self.west_tag.connect();
        self.south_psums.connect();
        self.south_valid.connect();
        self.south_first.connect();
        self.south_acc.connect();
        self.south_accbank.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (rust-hdl's black-box idiom; `update()` above is
        // its rust-hdl model, and every co-simulation test compares the two):
        // one named register per PE bit field and one clocked block, so
        // Verilator schedules each PE's three registers directly instead of
        // re-evaluating a grid-wide `always @(*)` wiring block, and yosys sees
        // plain registers and adders.
        Verilog::Wrapper(Wrapper {
            code: array_verilog(R, C, L, P, WB, NB, B),
            cores: String::new(),
        })
    }
}

/// Bit `i` of a `w`-bit net: rust-hdl declares 1-bit ports without a range.
fn bit(name: &str, w: usize, i: usize) -> String {
    if w == 1 {
        name.to_string()
    } else {
        format!("{name}[{i}]")
    }
}

/// The array's Verilog body (ports as declared by rust-hdl's wrapper mode:
/// inputs and outputs are nets). Register names: `ps_r[c]` (partial sum),
/// `bk_r[c]` (weight banks), `sb_r[c]` (registered subtract select) of PE
/// (r, c), with the south row's partial sums in `sp_c`; `sk_r_j` the j-th
/// west skew register of row r; `tg_j`/`sl_j` the tag and bank chains; `we_g`
/// the registered write enable of beat g; `wb` its bits. Everything powers up
/// to 0, like rust-hdl's DFF.
pub fn array_verilog(r: usize, c: usize, l: usize, p: usize, wb: usize, nb: usize, b: usize) -> String {
    use std::fmt::Write;
    let mut v = String::new();
    let mut init = String::new();
    let mut clocked = String::new();
    let reg = |v: &mut String, init: &mut String, name: &str, w: usize| {
        if w == 1 {
            writeln!(v, "reg {name};").unwrap();
        } else {
            writeln!(v, "reg [{}:0] {name};", w - 1).unwrap();
        }
        writeln!(init, "   {name} = {w}'d0;").unwrap();
    };
    // Tag chain (R stages, cleared by reset) and bank-select chain (R - 1 stages).
    writeln!(v, "wire [3:0] west_tag = {{west_accbank, west_acc, west_first, west_valid}};").unwrap();
    for j in 0..r {
        reg(&mut v, &mut init, &format!("tg_{j}"), 4);
        let src = if j == 0 { "west_tag".to_string() } else { format!("tg_{}", j - 1) };
        writeln!(clocked, "   tg_{j} <= reset ? 4'd0 : {src};").unwrap();
    }
    for j in 0..r.saturating_sub(1) {
        reg(&mut v, &mut init, &format!("sl_{j}"), nb);
        let src = if j == 0 { "west_sel".to_string() } else { format!("sl_{}", j - 1) };
        writeln!(clocked, "   sl_{j} <= {src};").unwrap();
    }
    // Weight write stage: one enable per beat, the beat's bits.
    for g in 0..b {
        reg(&mut v, &mut init, &format!("we_{g}"), nb);
        writeln!(clocked, "   we_{g} <= (w_fire & {}) ? w_bank : {nb}'d0;", bit("w_group", b, g)).unwrap();
    }
    reg(&mut v, &mut init, "wb", wb);
    writeln!(clocked, "   wb <= w_data;").unwrap();
    // West edge: row r's lane through r skew registers, sign-extended once.
    for row in 0..r {
        let lane = if row == 0 {
            format!("west_lanes[{}:0]", l - 1)
        } else {
            for j in 0..row {
                reg(&mut v, &mut init, &format!("sk_{row}_{j}"), l);
                let src = if j == 0 {
                    format!("west_lanes[{}:{}]", row * l + l - 1, row * l)
                } else {
                    format!("sk_{row}_{}", j - 1)
                };
                writeln!(clocked, "   sk_{row}_{j} <= {src};").unwrap();
            }
            format!("sk_{row}_{}", row - 1)
        };
        writeln!(v, "wire [{}:0] lr_{row} = {lane};", l - 1).unwrap();
        let lane = format!("lr_{row}");
        let wide = if p > l { format!("{{{{{}{{{lane}[{}]}}}}, {lane}}}", p - l, l - 1) } else { lane };
        writeln!(v, "wire [{}:0] ln_{row} = {wide};", p - 1).unwrap();
        let sel = if row == 0 { "west_sel".to_string() } else { format!("sl_{}", row - 1) };
        writeln!(v, "wire [{}:0] se_{row} = {sel};", nb - 1).unwrap();
    }
    // The PE grid: per row, arrays indexed by column (`ps_r`, `bk_r`, `sb_r`)
    // and one loop over the columns, rather than one statement per PE.
    // Verilator keeps a loop of more than `--unroll-count` iterations as a
    // C++ loop (onebit-sim builds with a count of 1), which the compiler
    // vectorises across the row; unrolled, the sim16 grid alone was ~40 KB
    // of straight-line code per cycle, more than the L1 instruction cache.
    // The grid is read only inside this block, so it is updated with
    // blocking assignments in dependency order (each row before the row
    // north of it, each select before its bank); the south row, which the
    // accumulators read at the same edge, is a separate set of registers
    // assigned non-blocking. `mem2reg` tells yosys these arrays are
    // registers, not memories: the same flip-flops as one `reg` per PE. The
    // loop index is an unsigned 32-bit reg: with `integer` (signed)
    // Verilator's bounds arithmetic keeps gcc from vectorising the loop.
    let sum = |north: &str, row: usize, col: &str| {
        format!("{north} + (ln_{row} ^ {{{p}{{sb_{row}[{col}]}}}}) + {{{}'d0, sb_{row}[{col}]}}", p - 1)
    };
    writeln!(v, "reg [31:0] pc;").unwrap();
    for row in 0..r {
        if row + 1 < r {
            writeln!(v, "(* mem2reg *) reg [{}:0] ps_{row} [0:{}];", p - 1, c - 1).unwrap();
        }
        writeln!(v, "(* mem2reg *) reg [{}:0] bk_{row} [0:{}];", nb - 1, c - 1).unwrap();
        writeln!(v, "(* mem2reg *) reg sb_{row} [0:{}];", c - 1).unwrap();
        writeln!(init, "   for (pc = 0; pc < {c}; pc = pc + 1) begin").unwrap();
        if row + 1 < r {
            writeln!(init, "      ps_{row}[pc] = {p}'d0;").unwrap();
        }
        writeln!(init, "      bk_{row}[pc] = {nb}'d0;").unwrap();
        writeln!(init, "      sb_{row}[pc] = 1'd0;").unwrap();
        writeln!(init, "   end").unwrap();
    }
    // South row (row R - 1): non-blocking, before the rows north of it change.
    for col in 0..c {
        let sp = format!("sp_{col}");
        reg(&mut v, &mut init, &sp, p);
        let north = if r == 1 { format!("{p}'d0") } else { format!("ps_{}[{col}]", r - 2) };
        writeln!(clocked, "   {sp} <= {};", sum(&north, r - 1, &col.to_string())).unwrap();
    }
    // Rows R - 2 down to 0 (row 0 from a zero partial sum).
    for row in (0..r.saturating_sub(1)).rev() {
        let north = if row == 0 { format!("{p}'d0") } else { format!("ps_{}[pc]", row - 1) };
        writeln!(clocked, "   for (pc = 0; pc < {c}; pc = pc + 1) ps_{row}[pc] = {};", sum(&north, row, "pc")).unwrap();
    }
    // The registered selects, from the banks as they were before this edge.
    for row in 0..r {
        writeln!(clocked, "   for (pc = 0; pc < {c}; pc = pc + 1) sb_{row}[pc] = |(bk_{row}[pc] & se_{row});").unwrap();
    }
    // The banks, written only in a beat's cycle: beat g holds stream bits
    // [g·WB, (g+1)·WB), stream bit i is PE (i mod R, i div R). Only the
    // enabled beat's group runs (nearly every cycle none or one).
    for g in 0..b {
        writeln!(clocked, "   if (we_{g} != {nb}'d0) begin").unwrap();
        for i in g * wb..(g + 1) * wb {
            let bk = format!("bk_{}[{}]", i % r, i / r);
            writeln!(clocked, "      {bk} = {} ? ({bk} | we_{g}) : ({bk} & ~we_{g});", bit("wb", wb, i % wb)).unwrap();
        }
        writeln!(clocked, "   end").unwrap();
    }
    let psums: Vec<String> = (0..c).rev().map(|col| format!("sp_{col}")).collect();
    writeln!(v, "assign south_psums = {{{}}};", psums.join(", ")).unwrap();
    let last = format!("tg_{}", r - 1);
    writeln!(v, "assign south_valid = {last}[0];").unwrap();
    writeln!(v, "assign south_first = {last}[1];").unwrap();
    writeln!(v, "assign south_acc = {last}[2];").unwrap();
    writeln!(v, "assign south_accbank = {last}[3];").unwrap();
    format!("{v}initial begin\n{init}end\n/* verilator lint_off BLKSEQ */\nalways @(posedge clock) begin\n{clocked}end\n/* verilator lint_on BLKSEQ */\n")
}
