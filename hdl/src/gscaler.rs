//! `GScaler`: one lane of the array's west edge. Multiplies a token's
//! activation x_q by the row's input scale g_q, rescales and saturates exactly as
//! `onebit_core::numerics::lane_value`:
//! lane = sat_L(rshift_round(x_q·g_q, lane_shift)), symmetric saturation to
//! ±(2^(L-1) − 1), round-half-up.
//!
//! Four pipeline stages (`timing::LANE_LATENCY`), the shape of a DSP block
//! with its registers: the operands (x_q, and g_q of the token's bank), the
//! product, the rounded product, the saturated lane. The stages run every
//! cycle (no enable): whether a lane belongs to a token travels beside it,
//! in the controller's tags.
//!
//! Ports (all two's complement, one clock):
//! | port      | dir | width | meaning |
//! |-----------|-----|-------|---------|
//! | `clock`   | in  | 1     | the one clock |
//! | `x_in`    | in  | A     | this row's activation of the token being accepted |
//! | `g_in`    | in  | G     | this row's g_q from a TILE's scale beat |
//! | `g_wr`    | in  | NB    | write `g_in` into the g banks whose bit is set |
//! | `sel`     | in  | NB    | one-hot: the bank of the token presented on `x_in` |
//! | `lane_out`| out | L     | registered lane of the token presented `LANE_LATENCY` cycles earlier |
//!
//! g_q is banked like the weights (one register per weight bank): a TILE's
//! scale beat fills the bank its weights go to, while tokens of earlier tiles
//! still use theirs (a token presented in the cycle of a write to its bank
//! uses the bank's old value, as a register would).
//!
//! Const generics: `A` = act_bits, `G` = g_bits, `L` = lane_bits, `NB` =
//! weight_banks; the lane shift comes from the `ArrayConfig` at construction.

use crate::util::{ecp5_mult18x18d, round_shift_saturate, signed_value, twos, vlit, vsat_bit_tests, vsext};
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

#[derive(Clone, Debug, LogicBlock)]
pub struct GScaler<const A: usize, const G: usize, const L: usize, const NB: usize> {
    pub clock: Signal<In, Clock>,
    pub x_in: Signal<In, Bits<A>>,
    pub g_in: Signal<In, Bits<G>>,
    pub g_wr: Signal<In, Bits<NB>>,
    pub sel: Signal<In, Bits<NB>>,
    pub lane_out: Signal<Out, Bits<L>>,
    g_banks: Vec<DFF<Bits<G>>>,
    /// Stage 1: the operands (a DSP block's input registers).
    x_reg: DFF<Bits<A>>,
    g_reg: DFF<Bits<G>>,
    /// Stage 2: the product (its output register); A + G ≤ 32 bits.
    product: DFF<Bits<32>>,
    /// Stage 3: the product again (rounded, in the Verilog).
    rounded: DFF<Bits<32>>,
    /// Stage 4: the lane.
    lane_reg: DFF<Bits<L>>,
    shift: Constant<Bits<8>>,
    lane_max: Constant<Bits<32>>,
}

impl<const A: usize, const G: usize, const L: usize, const NB: usize> GScaler<A, G, L, NB> {
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!(
            (A, G, L, NB),
            (cfg.act_bits as usize, cfg.g_bits as usize, cfg.lane_bits as usize, cfg.weight_banks)
        );
        assert!(A + G <= 32, "the g product must fit 32 bits");
        Self {
            clock: Default::default(),
            x_in: Default::default(),
            g_in: Default::default(),
            g_wr: Default::default(),
            sel: Default::default(),
            lane_out: Default::default(),
            g_banks: (0..NB).map(|_| DFF::default()).collect(),
            x_reg: Default::default(),
            g_reg: Default::default(),
            product: Default::default(),
            rounded: Default::default(),
            lane_reg: Default::default(),
            shift: Constant::new(twos::<8>(cfg.lane_shift() as i64)),
            lane_max: Constant::new(twos::<32>(ArrayConfig::sym_max(cfg.lane_bits))),
        }
    }
}

impl<const A: usize, const G: usize, const L: usize, const NB: usize> Logic for GScaler<A, G, L, NB> {
    fn update(&mut self) {
        let clock = self.clock.val();
        for d in &mut self.g_banks {
            d.clock.next = clock;
        }
        self.x_reg.clock.next = clock;
        self.g_reg.clock.next = clock;
        self.product.clock.next = clock;
        self.rounded.clock.next = clock;
        self.lane_reg.clock.next = clock;
        self.lane_out.next = self.lane_reg.q.val();
        // The highest selected bank wins (bank 0 when none is selected).
        let mut used = self.g_banks[0].q.val();
        for b in 0..NB {
            self.g_banks[b].d.next = if self.g_wr.val().get_bit(b) { self.g_in.val() } else { self.g_banks[b].q.val() };
            if self.sel.val().get_bit(b) {
                used = self.g_banks[b].q.val();
            }
        }
        self.x_reg.d.next = self.x_in.val();
        self.g_reg.d.next = used;
        let p = signed_value(self.x_reg.q.val()) * signed_value(self.g_reg.q.val());
        self.product.d.next = twos::<32>(p);
        self.rounded.d.next = self.product.q.val();
        let lane = round_shift_saturate(signed_value(self.rounded.q.val()), self.shift.val().to_u64() as u32, self.lane_max.val().to_u64() as i64);
        self.lane_reg.d.next = twos::<L>(lane);
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        for d in &mut self.g_banks {
            d.clock.connect();
            d.d.connect();
        }
        for c in [&mut self.x_reg.clock, &mut self.g_reg.clock, &mut self.product.clock, &mut self.rounded.clock, &mut self.lane_reg.clock] {
            c.connect();
        }
        self.x_reg.d.connect();
        self.g_reg.d.connect();
        self.product.d.connect();
        self.rounded.d.connect();
        self.lane_reg.d.connect();
        self.lane_out.connect();
    }

    fn hdl(&self) -> Verilog {
        // A bank of one row (`update()` above is its rust-hdl model).
        Verilog::Wrapper(Wrapper {
            code: gscaler_bank_verilog(1, A, G, L, NB, G, self.shift.val().index(), self.lane_max.val().to_u64() as i64),
            cores: String::new(),
        })
    }
}

/// `GScalerBank`: the array's R g scalers as one block. Its rust-hdl model is
/// R [`GScaler`]s; its Verilog ([`gscaler_bank_verilog`]) computes every
/// row's stages in one loop over the rows (the g banks and stage registers
/// as arrays indexed by row), so the Verilated model runs one short loop per
/// cycle instead of R copies of the scaler.
///
/// Ports: `clock`, `g_wr` and `sel` as [`GScaler`]'s; `x_in` (X = R·A bits,
/// row r in bits [r·A, (r+1)·A)), `g_in` (the scale beat, S bits, row r's g
/// in bits [r·G, (r+1)·G)), `lane_out` (RL = R·L bits, row r's lane in bits
/// [r·L, (r+1)·L)).
#[derive(LogicBlock)]
pub struct GScalerBank<
    const R: usize,
    const A: usize,
    const G: usize,
    const L: usize,
    const NB: usize,
    const X: usize,
    const S: usize,
    const RL: usize,
> {
    pub clock: Signal<In, Clock>,
    pub x_in: Signal<In, Bits<X>>,
    pub g_in: Signal<In, Bits<S>>,
    pub g_wr: Signal<In, Bits<NB>>,
    pub sel: Signal<In, Bits<NB>>,
    pub lane_out: Signal<Out, Bits<RL>>,
    rows: Vec<GScaler<A, G, L, NB>>,
}

impl<const R: usize, const A: usize, const G: usize, const L: usize, const NB: usize, const X: usize, const S: usize, const RL: usize>
    GScalerBank<R, A, G, L, NB, X, S, RL>
{
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!((R, X, S, RL), (cfg.rows, R * A, cfg.scale_beat_bits(), R * L));
        Self {
            clock: Default::default(),
            x_in: Default::default(),
            g_in: Default::default(),
            g_wr: Default::default(),
            sel: Default::default(),
            lane_out: Default::default(),
            rows: (0..R).map(|_| GScaler::new(cfg)).collect(),
        }
    }
}

impl<const R: usize, const A: usize, const G: usize, const L: usize, const NB: usize, const X: usize, const S: usize, const RL: usize> Logic
    for GScalerBank<R, A, G, L, NB, X, S, RL>
{
    fn update(&mut self) {
        let (x, g) = (self.x_in.val(), self.g_in.val());
        let mut lanes = Bits::<RL>::default();
        for (r, s) in self.rows.iter_mut().enumerate() {
            s.clock.next = self.clock.val();
            s.x_in.next = x.get_bits::<A>(r * A);
            s.g_in.next = g.get_bits::<G>(r * G);
            s.g_wr.next = self.g_wr.val();
            s.sel.next = self.sel.val();
            lanes.set_bits::<L>(r * L, s.lane_out.val());
        }
        self.lane_out.next = lanes;
    }

    fn connect(&mut self) {
        for s in &mut self.rows {
            s.clock.connect();
            s.x_in.connect();
            s.g_in.connect();
            s.g_wr.connect();
            s.sel.connect();
        }
        self.lane_out.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them).
        let s = &self.rows[0];
        Verilog::Wrapper(Wrapper { code: gscaler_bank_verilog(R, A, G, L, NB, S, s.shift.val().index(), s.lane_max.val().to_u64() as i64), cores: String::new() })
    }
}

/// The saturated lane of a rounded product `rd` (signed, `pw` bits): bit
/// tests where the product's width allows (no carry chain after the
/// rounding add), else two compares.
fn lane_select(rd: &str, pw: usize, l: usize, shift: usize, m: i64) -> String {
    let top = shift + l - 1;
    let (above, below) = if top < pw - 1 && l >= 2 && m == (1i64 << (l - 1)) - 1 {
        vsat_bit_tests(rd, pw - 1, top, shift)
    } else {
        (format!("({rd} >= $signed({}))", vlit(pw, (m + 1) << shift)), format!("({rd} < $signed({}))", vlit(pw, (-m) << shift)))
    };
    format!("{above} ? {} : ({below} ? {} : {rd}[{top}:{shift}])", vlit(l, m), vlit(l, -m))
}

/// The bank's Verilog body, in three forms selected by defines (the
/// bitstream flow's and the netlist checks' synthesis define one; Verilator
/// and Icarus read the generic form): the generic form, one loop over the
/// rows; `ONEBIT_ECP5_DSP`, a registered MULT18X18D per row
/// ([`gscaler_bank_ecp5_dsp`]); `ONEBIT_ICE40_DSP`, two rows per registered
/// SB_MAC16 ([`gscaler_bank_ice40_dsp`]). All three have the same timing:
/// operands registered at the end of the token's cycle, the product a cycle
/// later, the lane a cycle after that. Registers power up to 0.
pub fn gscaler_bank_verilog(r: usize, a: usize, g: usize, l: usize, nb: usize, s: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    // Wide enough for the product, the rounding term and both saturation
    // thresholds ((m + 1)·2^shift = 2^(L-1+shift)) without wrapping.
    let pw = (a + g).max(l + shift) + 2;
    let mut v = String::new();
    if s > r * g {
        // A DRAIN's h values make the scale beat wider than the g values.
        writeln!(v, "wire unused_g_in = ^g_in[{}:{}];", s - 1, r * g).unwrap();
    }
    let mut init = String::new();
    for b in 0..nb {
        writeln!(v, "(* mem2reg *) reg [{}:0] gb_{b} [0:{}];", g - 1, r - 1).unwrap();
    }
    writeln!(v, "wire [{}:0] xr [0:{}];", a - 1, r - 1).unwrap();
    writeln!(v, "wire [{}:0] gi [0:{}];", g - 1, r - 1).unwrap();
    writeln!(v, "(* mem2reg *) reg [{}:0] xq [0:{}];", a - 1, r - 1).unwrap();
    writeln!(v, "(* mem2reg *) reg [{}:0] gq [0:{}];", g - 1, r - 1).unwrap();
    writeln!(v, "(* mem2reg *) reg signed [{}:0] pq [0:{}];", pw - 1, r - 1).unwrap();
    // (The rounded product's bits below the shift are unused.)
    writeln!(v, "/* verilator lint_off UNUSEDSIGNAL */\n(* mem2reg *) reg signed [{}:0] rq [0:{}];\n/* verilator lint_on UNUSEDSIGNAL */", pw - 1, r - 1).unwrap();
    writeln!(v, "(* mem2reg *) reg [{}:0] ln [0:{}];", l - 1, r - 1).unwrap();
    writeln!(v, "reg [31:0] pr;").unwrap();
    let mut lanes = vec![];
    for row in 0..r {
        writeln!(v, "assign xr[{row}] = x_in[{}:{}];", row * a + a - 1, row * a).unwrap();
        writeln!(v, "assign gi[{row}] = g_in[{}:{}];", row * g + g - 1, row * g).unwrap();
        writeln!(v, "reg [{}:0] lane_{row};", l - 1).unwrap();
        writeln!(init, "   lane_{row} = {l}'d0;").unwrap();
        lanes.push(format!("lane_{row}"));
    }
    lanes.reverse();
    writeln!(v, "assign lane_out = {{{}}};", lanes.join(", ")).unwrap();
    writeln!(init, "   for (pr = 0; pr < {r}; pr = pr + 1) begin").unwrap();
    for b in 0..nb {
        writeln!(init, "      gb_{b}[pr] = {g}'d0;").unwrap();
    }
    writeln!(init, "      xq[pr] = {a}'d0;\n      gq[pr] = {g}'d0;\n      pq[pr] = {pw}'d0;\n      rq[pr] = {pw}'d0;\n      ln[pr] = {l}'d0;\n   end").unwrap();
    // The highest selected bank wins, as in `GScaler::update()`.
    let mut used = "gb_0[pr]".to_string();
    for b in 0..nb {
        used = format!("(sel[{b}] ? gb_{b}[pr] : {used})");
    }
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    // Each row's stages in one loop, each stage from the previous one's
    // value before this edge: the lane first, then the rounded product, the
    // product, the operands (blocking assignments, read only inside this
    // block, so they are registers); the lanes the array reads at the same
    // edge are the non-blocking `lane_r`.
    let mut c = String::new();
    writeln!(c, "   for (pr = 0; pr < {r}; pr = pr + 1) begin").unwrap();
    writeln!(c, "      ln[pr] = {};", lane_select("rq[pr]", pw, l, shift, m)).unwrap();
    writeln!(c, "      rq[pr] = pq[pr] + {};", vlit(pw, round)).unwrap();
    writeln!(c, "      pq[pr] = $signed({}) * $signed({});", vsext("xq[pr]", a, pw), vsext("gq[pr]", g, pw)).unwrap();
    writeln!(c, "      xq[pr] = xr[pr];\n      gq[pr] = {used};").unwrap();
    writeln!(c, "   end").unwrap();
    for row in 0..r {
        writeln!(c, "   lane_{row} <= ln[{row}];").unwrap();
    }
    // The g banks after the operands read them.
    for b in 0..nb {
        writeln!(c, "   if (g_wr[{b}]) for (pr = 0; pr < {r}; pr = pr + 1) gb_{b}[pr] = gi[pr];").unwrap();
    }
    let generic = format!("{v}initial begin\n{init}end\n/* verilator lint_off BLKSEQ */\nalways @(posedge clock) begin\n{c}end\n/* verilator lint_on BLKSEQ */\n");
    let ecp5 = gscaler_bank_ecp5_dsp(r, a, g, l, nb, s, shift, m);
    if a <= 8 && g <= 8 {
        format!(
            "`ifdef ONEBIT_ICE40_DSP\n{}`elsif ONEBIT_ECP5_DSP\n{ecp5}`else\n{generic}`endif\n",
            gscaler_bank_ice40_dsp(r, a, g, l, nb, s, shift, m)
        )
    } else {
        format!("`ifdef ONEBIT_ECP5_DSP\n{ecp5}`else\n{generic}`endif\n")
    }
}

/// Per row: its g banks (`gb_b_r`), written by `g_wr`, and the bank the
/// token selects (`gs_r`, the highest selected bank, as in `update()`),
/// for the DSP forms. Returns (declarations, initial lines, clocked lines).
fn g_banks_per_row(r: usize, g: usize, nb: usize) -> (String, String, String) {
    use std::fmt::Write;
    let (mut v, mut init, mut clocked) = (String::new(), String::new(), String::new());
    for row in 0..r {
        for b in 0..nb {
            writeln!(v, "reg [{}:0] gb_{b}_{row};", g - 1).unwrap();
            writeln!(init, "   gb_{b}_{row} = {g}'d0;").unwrap();
            writeln!(clocked, "   if (g_wr[{b}]) gb_{b}_{row} <= g_in[{}:{}];", row * g + g - 1, row * g).unwrap();
        }
        let mut used = format!("gb_0_{row}");
        for b in 0..nb {
            used = format!("(sel[{b}] ? gb_{b}_{row} : {used})");
        }
        writeln!(v, "wire [{}:0] gs_{row} = {used};", g - 1).unwrap();
    }
    (v, init, clocked)
}

/// The ECP5 form of [`gscaler_bank_verilog`] (synthesised where
/// `ONEBIT_ECP5_DSP` is defined): per row a MULT18X18D with its input and
/// output registers (yosys maps a product to an unregistered one, whose
/// 3.9 ns multiply then sits in a fabric-to-fabric path), then the rounding
/// add into a register (the DSP's output has a long route into the
/// fabric), then the saturation into the lane register. Needs A, G ≤ 18.
pub fn gscaler_bank_ecp5_dsp(r: usize, a: usize, g: usize, l: usize, nb: usize, s: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    if a > 18 || g > 18 {
        return "initial $fatal(1, \"ONEBIT_ECP5_DSP: act_bits and g_bits must be at most 18\");\n".into();
    }
    let pw = (a + g).max(l + shift) + 2;
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let (mut v, mut init, mut clocked) = g_banks_per_row(r, g, nb);
    if s > r * g {
        writeln!(v, "wire unused_g_in = ^g_in[{}:{}];", s - 1, r * g).unwrap();
    }
    let mut lanes = vec![];
    for row in 0..r {
        writeln!(v, "wire [{}:0] xr_{row} = x_in[{}:{}];", a - 1, row * a + a - 1, row * a).unwrap();
        writeln!(v, "wire [17:0] dx_{row} = {};", vsext(&format!("xr_{row}"), a, 18)).unwrap();
        writeln!(v, "wire [17:0] dg_{row} = {};", vsext(&format!("gs_{row}"), g, 18)).unwrap();
        writeln!(v, "wire [35:0] dp_{row};").unwrap();
        v.push_str(&ecp5_mult18x18d(&format!("mul_{row}"), &format!("dx_{row}"), &format!("dg_{row}"), &format!("dp_{row}"), true));
        writeln!(v, "wire [{}:0] pd_{row} = dp_{row}[{}:0];", a + g - 1, a + g - 1).unwrap();
        writeln!(v, "/* verilator lint_off UNUSEDSIGNAL */\nreg signed [{}:0] rd_{row};\n/* verilator lint_on UNUSEDSIGNAL */", pw - 1).unwrap();
        writeln!(v, "reg [{}:0] lane_{row};", l - 1).unwrap();
        writeln!(init, "   rd_{row} = {pw}'d0;\n   lane_{row} = {l}'d0;").unwrap();
        writeln!(clocked, "   rd_{row} <= {} + {};", vsext(&format!("pd_{row}"), a + g, pw), vlit(pw, round)).unwrap();
        writeln!(clocked, "   lane_{row} <= {};", lane_select(&format!("rd_{row}"), pw, l, shift, m)).unwrap();
        writeln!(v, "wire unused_dp_{row} = ^dp_{row}[35:{}];", a + g).unwrap();
        lanes.push(format!("lane_{row}"));
    }
    lanes.reverse();
    writeln!(v, "assign lane_out = {{{}}};", lanes.join(", ")).unwrap();
    format!("{v}initial begin\n{init}end\nalways @(posedge clock) begin\n{clocked}end\n")
}

/// The iCE40 form of [`gscaler_bank_verilog`] (synthesised where
/// `ONEBIT_ICE40_DSP` is defined: the bitstream flow's and the netlist
/// checks' iCE40 synthesis): two rows per SB_MAC16 in its 8×8 mode
/// (A_SIGNED, B_SIGNED: the top half multiplies A[15:8]·B[15:8], the bottom
/// A[7:0]·B[7:0]) with its A and B input registers, its product registers,
/// and each half's 16-bit adder adding the rounding constant (C and D
/// inputs) into its output register, so the operands, the product and the
/// rounded product are registered inside the DSP, as in the generic form's
/// first three stages, and the lane in the fabric. yosys maps every product to a whole SB_MAC16 (16×16), so an 8×8
/// array needs 4 DSPs for its g products here instead of 8. Needs A, G ≤ 8:
/// the product and its rounding then fit the adder's 16 bits (|x·g| ≤
/// 2^14, round ≤ 2^13).
pub fn gscaler_bank_ice40_dsp(r: usize, a: usize, g: usize, l: usize, nb: usize, s: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    assert!(a <= 8 && g <= 8, "the 8x8 DSP form needs act and g bits <= 8");
    let pw = ((a + g).max(l + shift) + 2).max(16);
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let (mut v, mut init, mut clocked) = g_banks_per_row(r, g, nb);
    if s > r * g {
        writeln!(v, "wire unused_g_in = ^g_in[{}:{}];", s - 1, r * g).unwrap();
    }
    let mut lanes = vec![];
    for row in 0..r {
        writeln!(v, "wire [{}:0] xr_{row} = x_in[{}:{}];", a - 1, row * a + a - 1, row * a).unwrap();
        writeln!(v, "reg [{}:0] lane_{row};", l - 1).unwrap();
        writeln!(init, "   lane_{row} = {l}'d0;").unwrap();
        // The saturation as bit tests of the 16-bit rounded product (no
        // carry chain), where the lane's top bit is below the product's sign.
        let top = shift + l - 1;
        let mo = format!("mo_{}_{}", if row % 2 == 1 { "hi" } else { "lo" }, row / 2);
        let sel = if top <= 14 && l >= 2 {
            let (above, below) = vsat_bit_tests(&mo, 15, top, shift);
            format!("{above} ? {} : ({below} ? {} : {mo}[{top}:{shift}])", vlit(l, m), vlit(l, -m))
        } else {
            lane_select(&format!("rd_{row}"), pw, l, shift, m)
        };
        writeln!(clocked, "   lane_{row} <= {sel};").unwrap();
        lanes.push(format!("lane_{row}"));
    }
    lanes.reverse();
    writeln!(v, "assign lane_out = {{{}}};", lanes.join(", ")).unwrap();
    let half = |row: usize, what: &str, n: usize| if row < r { vsext(&format!("{what}_{row}"), n, 8) } else { "8'd0".into() };
    for p in 0..r.div_ceil(2) {
        let (lo, hi) = (2 * p, 2 * p + 1);
        // A_REG, B_REG: the operands registered; TOP/BOT_8x8_MULT_REG: the
        // products registered; TOP/BOTOUTPUT_SELECT 01: the adder's sum
        // (product + C or D) through the output register.
        writeln!(
            v,
            "wire [31:0] mo_{p};
SB_MAC16 #(.NEG_TRIGGER(1'b0), .C_REG(1'b0), .A_REG(1'b1), .B_REG(1'b1), .D_REG(1'b0),
  .TOP_8x8_MULT_REG(1'b1), .BOT_8x8_MULT_REG(1'b1), .PIPELINE_16x16_MULT_REG1(1'b0), .PIPELINE_16x16_MULT_REG2(1'b0),
  .TOPOUTPUT_SELECT(2'b01), .TOPADDSUB_LOWERINPUT(2'b01), .TOPADDSUB_UPPERINPUT(1'b1), .TOPADDSUB_CARRYSELECT(2'b00),
  .BOTOUTPUT_SELECT(2'b01), .BOTADDSUB_LOWERINPUT(2'b01), .BOTADDSUB_UPPERINPUT(1'b1), .BOTADDSUB_CARRYSELECT(2'b00),
  .MODE_8x8(1'b1), .A_SIGNED(1'b1), .B_SIGNED(1'b1)) mac_{p} (
  .CLK(clock), .CE(1'b1), .C({rc}), .A({{{xh}, {xl}}}), .B({{{gh}, {gl}}}), .D({rc}),
  .AHOLD(1'b0), .BHOLD(1'b0), .CHOLD(1'b0), .DHOLD(1'b0), .IRSTTOP(1'b0), .IRSTBOT(1'b0), .ORSTTOP(1'b0), .ORSTBOT(1'b0),
  .OLOADTOP(1'b0), .OLOADBOT(1'b0), .ADDSUBTOP(1'b0), .ADDSUBBOT(1'b0), .OHOLDTOP(1'b0), .OHOLDBOT(1'b0),
  .CI(1'b0), .ACCUMCI(1'b0), .SIGNEXTIN(1'b0), .O(mo_{p}), .CO(), .ACCUMCO(), .SIGNEXTOUT());",
            rc = vlit(16, round),
            xh = half(hi, "xr", a),
            xl = half(lo, "xr", a),
            gh = half(hi, "gs", g),
            gl = half(lo, "gs", g),
        )
        .unwrap();
        writeln!(v, "wire [15:0] mo_lo_{p} = mo_{p}[15:0];").unwrap();
        writeln!(v, "wire signed [{}:0] rd_{lo} = {};", pw - 1, vsext(&format!("mo_lo_{p}"), 16, pw)).unwrap();
        writeln!(v, "wire [15:0] mo_hi_{p} = mo_{p}[31:16];").unwrap();
        if hi < r {
            writeln!(v, "wire signed [{}:0] rd_{hi} = {};", pw - 1, vsext(&format!("mo_hi_{p}"), 16, pw)).unwrap();
        } else {
            writeln!(v, "wire unused_mo_{p} = ^mo_hi_{p};").unwrap();
        }
    }
    format!("{v}initial begin\n{init}end\nalways @(posedge clock) begin\n{clocked}end\n")
}
