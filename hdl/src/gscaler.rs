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

use crate::util::{high_mask, twos, twos_flipped, vlit, vsext, Mul16};
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
