//! `GScaler`: one lane of the array's west edge. Multiplies a token's
//! activation x_q by the row's input scale g_q, rescales and saturates exactly as
//! `onebit_core::numerics::lane_value`:
//! lane = sat_L(rshift_round(x_q·g_q, lane_shift)), symmetric saturation to
//! ±(2^(L-1) − 1), round-half-up.
//!
//! Ports (all two's complement, one clock):
//! | port      | dir | width | meaning |
//! |-----------|-----|-------|---------|
//! | `clock`   | in  | 1     | the one clock |
//! | `x_in`    | in  | A     | this row's activation of the token being accepted |
//! | `g_in`    | in  | G     | this row's g_q from a TILE's scale beat |
//! | `g_wr`    | in  | NB    | write `g_in` into the g banks whose bit is set |
//! | `sel`     | in  | NB    | one-hot: the bank of the token presented on `x_in` |
//! | `lane_out`| out | L     | registered lane: valid the cycle after `x_in` was presented |
//!
//! g_q is banked like the weights (one register per weight bank): a TILE's
//! scale beat fills the bank its weights go to, while tokens of earlier tiles
//! still use theirs.
//!
//! Const generics: `A` = act_bits, `G` = g_bits, `L` = lane_bits, `NB` =
//! weight_banks; the lane shift comes from the `ArrayConfig` at construction.

use crate::util::{high_mask, twos, twos_flipped, vlit, vsat_bit_tests, vsext, Mul16};
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
    g_used: Signal<Local, Bits<G>>,
    lane_reg: DFF<Bits<L>>,
    mul: Mul16,
    x_ext: Signal<Local, Bits<16>>,
    g_ext: Signal<Local, Bits<16>>,
    x_neg: Signal<Local, Bit>,
    g_neg: Signal<Local, Bit>,
    product: Signal<Local, Bits<32>>,
    rounded: Signal<Local, Bits<32>>,
    rounded_flipped: Signal<Local, Bits<32>>,
    // Constants: sign thresholds, sign-extension masks, zero, rounding term,
    // saturation thresholds (sign-flipped), the saturated lane values.
    x_half: Constant<Bits<A>>,
    g_half: Constant<Bits<G>>,
    x_ext_mask: Constant<Bits<16>>,
    g_ext_mask: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    zero32: Constant<Bits<32>>,
    flip32: Constant<Bits<32>>,
    round_term: Constant<Bits<32>>,
    shift: Constant<Bits<8>>,
    above_max: Constant<Bits<32>>,
    below_min: Constant<Bits<32>>,
    lane_max: Constant<Bits<L>>,
    lane_min: Constant<Bits<L>>,
}

impl<const A: usize, const G: usize, const L: usize, const NB: usize> GScaler<A, G, L, NB> {
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!(
            (A, G, L, NB),
            (cfg.act_bits as usize, cfg.g_bits as usize, cfg.lane_bits as usize, cfg.weight_banks)
        );
        let s = cfg.lane_shift() as i64;
        let m = ArrayConfig::sym_max(cfg.lane_bits);
        Self {
            clock: Default::default(),
            x_in: Default::default(),
            g_in: Default::default(),
            g_wr: Default::default(),
            sel: Default::default(),
            lane_out: Default::default(),
            g_banks: (0..NB).map(|_| DFF::default()).collect(),
            g_used: Default::default(),
            lane_reg: Default::default(),
            mul: Default::default(),
            x_ext: Default::default(),
            g_ext: Default::default(),
            x_neg: Default::default(),
            g_neg: Default::default(),
            product: Default::default(),
            rounded: Default::default(),
            rounded_flipped: Default::default(),
            x_half: Constant::new(twos::<A>(1 << (A - 1))),
            g_half: Constant::new(twos::<G>(1 << (G - 1))),
            x_ext_mask: Constant::new(high_mask::<16>(A)),
            g_ext_mask: Constant::new(high_mask::<16>(G)),
            zero16: Constant::new(0u64.into()),
            zero32: Constant::new(0u64.into()),
            flip32: Constant::new(twos::<32>(1 << 31)),
            round_term: Constant::new(twos::<32>(if s == 0 { 0 } else { 1 << (s - 1) })),
            shift: Constant::new(twos::<8>(s)),
            // lane > m  <=>  rounded >= (m+1)·2^s;  lane < -m  <=>  rounded < -m·2^s
            above_max: Constant::new(twos_flipped::<32>((m + 1) << s)),
            below_min: Constant::new(twos_flipped::<32>((-m) << s)),
            lane_max: Constant::new(twos::<L>(m)),
            lane_min: Constant::new(twos::<L>(-m)),
        }
    }
}

impl<const A: usize, const G: usize, const L: usize, const NB: usize> Logic for GScaler<A, G, L, NB> {
    fn update(&mut self) {
        dff_setup!(self, clock, lane_reg);
        self.lane_out.next = self.lane_reg.q.val();
        self.g_used.next = self.g_banks[0].q.val();
        for b in 0..NB {
            self.g_banks[b].clock.next = self.clock.val();
            self.g_banks[b].d.next = self.g_banks[b].q.val();
            if self.g_wr.val().get_bit(b) {
                self.g_banks[b].d.next = self.g_in.val();
            }
            if self.sel.val().get_bit(b) {
                self.g_used.next = self.g_banks[b].q.val();
            }
        }
        // Sign-extend both operands to 16 bits, then multiply magnitudes.
        self.x_neg.next = self.x_in.val() >= self.x_half.val();
        self.g_neg.next = self.g_used.val() >= self.g_half.val();
        self.x_ext.next = bit_cast::<16, A>(self.x_in.val());
        if self.x_neg.val() {
            self.x_ext.next = bit_cast::<16, A>(self.x_in.val()) | self.x_ext_mask.val();
        }
        self.g_ext.next = bit_cast::<16, G>(self.g_used.val());
        if self.g_neg.val() {
            self.g_ext.next = bit_cast::<16, G>(self.g_used.val()) | self.g_ext_mask.val();
        }
        self.mul.a.next = self.x_ext.val();
        if self.x_neg.val() {
            self.mul.a.next = self.zero16.val() - self.x_ext.val();
        }
        self.mul.b.next = self.g_ext.val();
        if self.g_neg.val() {
            self.mul.b.next = self.zero16.val() - self.g_ext.val();
        }
        self.product.next = self.mul.p.val();
        if self.x_neg.val() ^ self.g_neg.val() {
            self.product.next = self.zero32.val() - self.mul.p.val();
        }
        // Round half up, then saturate symmetrically; the shift is a bit slice.
        self.rounded.next = self.product.val() + self.round_term.val();
        self.rounded_flipped.next = self.rounded.val() ^ self.flip32.val();
        self.lane_reg.d.next = self.rounded.val().get_bits::<L>(self.shift.val().index());
        if self.rounded_flipped.val() >= self.above_max.val() {
            self.lane_reg.d.next = self.lane_max.val();
        }
        if self.rounded_flipped.val() < self.below_min.val() {
            self.lane_reg.d.next = self.lane_min.val();
        }
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        self.lane_reg.clock.connect();
        self.lane_reg.d.connect();
        self.g_ext.connect();
        self.g_neg.connect();
        self.g_used.connect();
        self.lane_out.connect();
        self.mul.a.connect();
        self.mul.b.connect();
        self.product.connect();
        self.rounded.connect();
        self.rounded_flipped.connect();
        self.x_ext.connect();
        self.x_neg.connect();
        for d in &mut self.g_banks {
            d.clock.connect();
            d.d.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them): a signed product instead of
        // magnitudes and negations, which Verilator evaluates in a few
        // operations and yosys maps to one signed DSP multiply.
        Verilog::Wrapper(Wrapper {
            code: gscaler_verilog(A, G, L, NB, self.shift.val().index(), self.lane_max.val().to_u64() as i64),
            cores: String::new(),
        })
    }
}

/// The g scaler's Verilog body: `lane = sat_L(rshift_round(x·g, shift))`,
/// registered; `gb_b` the g bank b. Registers power up to 0.
pub fn gscaler_verilog(a: usize, g: usize, l: usize, nb: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    let mut v = String::new();
    // Wide enough for the product, the rounding term and both saturation
    // thresholds ((m + 1)·2^shift = 2^(L-1+shift)) without wrapping.
    let pw = (a + g).max(l + shift) + 2;
    for b in 0..nb {
        writeln!(v, "reg [{}:0] gb_{b};", g - 1).unwrap();
    }
    writeln!(v, "reg [{}:0] lane_reg;", l - 1).unwrap();
    let mut used = "gb_0".to_string();
    for b in 0..nb {
        used = format!("(sel[{b}] ? gb_{b} : {used})");
    }
    // The loop in `update()` lets the highest selected bank win; the nesting above does the same.
    writeln!(v, "wire [{}:0] g_used = {used};", g - 1).unwrap();
    writeln!(v, "wire signed [{}:0] product = $signed({}) * $signed({});", pw - 1, vsext("x_in", a, pw), vsext("g_used", g, pw)).unwrap();
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    writeln!(v, "wire signed [{}:0] rounded = product + {};", pw - 1, vlit(pw, round)).unwrap();
    writeln!(v, "wire above = rounded >= $signed({});", vlit(pw, (m + 1) << shift)).unwrap();
    writeln!(v, "wire below = rounded < $signed({});", vlit(pw, (-m) << shift)).unwrap();
    writeln!(v, "assign lane_out = lane_reg;").unwrap();
    writeln!(v, "initial begin").unwrap();
    for b in 0..nb {
        writeln!(v, "   gb_{b} = {g}'d0;").unwrap();
    }
    writeln!(v, "   lane_reg = {l}'d0;\nend").unwrap();
    writeln!(v, "always @(posedge clock) begin").unwrap();
    for b in 0..nb {
        writeln!(v, "   if (g_wr[{b}]) gb_{b} <= g_in;").unwrap();
    }
    writeln!(
        v,
        "   lane_reg <= above ? {} : (below ? {} : rounded[{}:{}]);\nend",
        vlit(l, m),
        vlit(l, -m),
        shift + l - 1,
        shift
    )
    .unwrap();
    v
}

/// `GScalerBank`: the array's R g scalers as one block. Its rust-hdl model is
/// R [`GScaler`]s; its Verilog ([`gscaler_bank_verilog`]) computes every
/// row's lane in one loop over the rows (the g banks as arrays indexed by
/// row), so the Verilated model runs one short loop per cycle instead of R
/// copies of the scaler, and evaluates the products at the clock edge only
/// (each `GScaler`'s product was a net of the `x_data` input, evaluated
/// whenever the inputs were).
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
        Verilog::Wrapper(Wrapper {
            code: gscaler_bank_verilog(R, A, G, L, NB, S, self.rows[0].shift.val().index(), self.rows[0].lane_max.val().to_u64() as i64),
            cores: String::new(),
        })
    }
}

/// The bank's Verilog body: [`gscaler_verilog`]'s arithmetic for every row in
/// one loop. `gb_b[r]` is row r's g bank b; the loop's temporaries (`gu`,
/// `pd`, `ln`) are assigned before they are read, so they are nets in
/// synthesis, and the lanes the array reads at the same edge are the
/// non-blocking registers `lane_r`. Registers power up to 0.
pub fn gscaler_bank_verilog(r: usize, a: usize, g: usize, l: usize, nb: usize, s: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
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
    writeln!(v, "(* mem2reg *) reg [{}:0] ln [0:{}];", l - 1, r - 1).unwrap();
    writeln!(v, "reg [{}:0] gu;", g - 1).unwrap();
    writeln!(v, "reg signed [{}:0] pd;", pw - 1).unwrap();
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
    writeln!(init, "      ln[pr] = {l}'d0;\n   end").unwrap();
    // The highest selected bank wins, as in `GScaler::update()`.
    let mut used = "gb_0[pr]".to_string();
    for b in 0..nb {
        used = format!("(sel[{b}] ? gb_{b}[pr] : {used})");
    }
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let mut c = String::new();
    writeln!(c, "   for (pr = 0; pr < {r}; pr = pr + 1) begin").unwrap();
    writeln!(c, "      gu = {used};").unwrap();
    // The product alone in a signed context (a signed multiply, as
    // `gscaler_verilog`'s `product` net): with the unsigned rounding literal
    // in the same expression the multiply is unsigned, which computes the
    // same bits but which yosys's iCE40 DSP mapping got wrong (the t4x3
    // iCE40 netlist replay failed).
    writeln!(c, "      pd = $signed({}) * $signed({});", vsext("xr[pr]", a, pw), vsext("gu", g, pw)).unwrap();
    writeln!(c, "      pd = pd + {};", vlit(pw, round)).unwrap();
    writeln!(
        c,
        "      ln[pr] = (pd >= $signed({})) ? {} : ((pd < $signed({})) ? {} : pd[{}:{}]);",
        vlit(pw, (m + 1) << shift),
        vlit(l, m),
        vlit(pw, (-m) << shift),
        vlit(l, -m),
        shift + l - 1,
        shift
    )
    .unwrap();
    writeln!(c, "   end").unwrap();
    for row in 0..r {
        writeln!(c, "   lane_{row} <= ln[{row}];").unwrap();
    }
    // The g banks after the lanes read them (a scale beat and a token in the
    // same cycle: the token uses the bank's old value, as a register would).
    for b in 0..nb {
        writeln!(c, "   if (g_wr[{b}]) for (pr = 0; pr < {r}; pr = pr + 1) gb_{b}[pr] = gi[pr];").unwrap();
    }
    let generic = format!("{v}initial begin\n{init}end\n/* verilator lint_off BLKSEQ */\nalways @(posedge clock) begin\n{c}end\n/* verilator lint_on BLKSEQ */\n");
    if a <= 8 && g <= 8 {
        format!("`ifdef ONEBIT_ICE40_DSP\n{}`else\n{generic}`endif\n", gscaler_bank_ice40_dsp(r, a, g, l, nb, s, shift, m))
    } else {
        generic
    }
}

/// The iCE40 form of [`gscaler_bank_verilog`] (synthesised where
/// `ONEBIT_ICE40_DSP` is defined: the bitstream flow's and the netlist
/// checks' iCE40 synthesis): two rows per SB_MAC16 in its 8×8 mode
/// (A_SIGNED, B_SIGNED: the top half multiplies A[15:8]·B[15:8], the bottom
/// A[7:0]·B[7:0]), and each half's 16-bit adder adds the rounding constant
/// (C and D inputs), all without registers, so the lanes are registered in
/// the fabric in the same cycle as in the generic form. yosys maps every
/// product to a whole SB_MAC16 (16×16), so an 8×8 array needs 4 DSPs for
/// its g products here instead of 8. Needs A, G ≤ 8: the product and its
/// rounding then fit the adder's 16 bits (|x·g| ≤ 2^14, round ≤ 2^13).
pub fn gscaler_bank_ice40_dsp(r: usize, a: usize, g: usize, l: usize, nb: usize, s: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    assert!(a <= 8 && g <= 8, "the 8x8 DSP form needs act and g bits <= 8");
    let pw = ((a + g).max(l + shift) + 2).max(16);
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let mut v = String::new();
    if s > r * g {
        writeln!(v, "wire unused_g_in = ^g_in[{}:{}];", s - 1, r * g).unwrap();
    }
    let mut init = String::new();
    let mut clocked = String::new();
    let mut lanes = vec![];
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
        writeln!(v, "wire [{}:0] xr_{row} = x_in[{}:{}];", a - 1, row * a + a - 1, row * a).unwrap();
        writeln!(v, "reg [{}:0] lane_{row};", l - 1).unwrap();
        writeln!(init, "   lane_{row} = {l}'d0;").unwrap();
        // The saturation as bit tests of the 16-bit rounded product r (no
        // carry chain): with v = r >>> shift, v > m iff r is positive and a bit
        // above the lane's sign bit is set; v < -m iff r is negative and
        // either not every bit above the lane's sign bit is set or v is
        // exactly -2^(L-1) (the lane's bits below its sign all clear).
        let top = shift + l - 1;
        let (above, below) = if top <= 14 && l >= 2 {
            // Row 2p is the bottom half of SB_MAC16 p, row 2p + 1 the top.
            let mo = format!("mo_{}_{}", if row % 2 == 1 { "hi" } else { "lo" }, row / 2);
            vsat_bit_tests(&mo, 15, top, shift)
        } else {
            (format!("(rd_{row} >= $signed({}))", vlit(pw, (m + 1) << shift)), format!("(rd_{row} < $signed({}))", vlit(pw, (-m) << shift)))
        };
        writeln!(clocked, "   lane_{row} <= {above} ? {} : ({below} ? {} : rd_{row}[{}:{}]);", vlit(l, m), vlit(l, -m), shift + l - 1, shift).unwrap();
        lanes.push(format!("lane_{row}"));
    }
    lanes.reverse();
    writeln!(v, "assign lane_out = {{{}}};", lanes.join(", ")).unwrap();
    let half = |row: usize, what: &str, n: usize| if row < r { vsext(&format!("{what}_{row}"), n, 8) } else { "8'd0".into() };
    for p in 0..r.div_ceil(2) {
        let (lo, hi) = (2 * p, 2 * p + 1);
        writeln!(
            v,
            "wire [31:0] mo_{p};
SB_MAC16 #(.NEG_TRIGGER(1'b0), .C_REG(1'b0), .A_REG(1'b0), .B_REG(1'b0), .D_REG(1'b0),
  .TOP_8x8_MULT_REG(1'b0), .BOT_8x8_MULT_REG(1'b0), .PIPELINE_16x16_MULT_REG1(1'b0), .PIPELINE_16x16_MULT_REG2(1'b0),
  .TOPOUTPUT_SELECT(2'b00), .TOPADDSUB_LOWERINPUT(2'b01), .TOPADDSUB_UPPERINPUT(1'b1), .TOPADDSUB_CARRYSELECT(2'b00),
  .BOTOUTPUT_SELECT(2'b00), .BOTADDSUB_LOWERINPUT(2'b01), .BOTADDSUB_UPPERINPUT(1'b1), .BOTADDSUB_CARRYSELECT(2'b00),
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
