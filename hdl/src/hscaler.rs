//! `HScaler`: the output scale on the drain path. Multiplies an accumulator
//! value by the column's h_q, rescales and saturates exactly as
//! `onebit_core::numerics::scale_output`:
//! out = sat_O(rshift_round(acc·h_q, h_shift)), round-half-up, symmetric
//! saturation to ±(2^(O-1) − 1).
//!
//! Six pipeline stages (`timing::H_STAGES`) that run every cycle, with no
//! enable: the operands (a DSP block's input registers), the product (its
//! output register), two for the rounding add, the saturation tests, the
//! word. The
//! controller lets a beat in only when the output FIFO behind has room for
//! it, so nothing downstream ever asks the pipeline to wait, and no enable
//! fans out over its registers.
//!
//! Ports (values two's complement, one clock):
//! | port        | dir | width | meaning |
//! |-------------|-----|-------|---------|
//! | `clock`     | in  | 1     | the one clock |
//! | `reset`     | in  | 1     | drop the words in flight |
//! | `valid_in`  | in  | 1     | `acc_in`/`h_in` carry a word to scale |
//! | `acc_in`    | in  | ACC   | accumulator value |
//! | `h_in`      | in  | H     | the column's h_q |
//! | `valid_out` | out | 1     | `word_out` holds a word (`H_STAGES` cycles after it came in) |
//! | `word_out`  | out | O     | the scaled, saturated output word |

use crate::timing::H_STAGES;
use crate::util::{dffs, ecp5_mult18x18d, round_shift_saturate, signed_value, twos, vlit, vsat_bit_tests, vsext};
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

#[derive(Clone, Debug, LogicBlock)]
pub struct HScaler<const ACC: usize, const H: usize, const O: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub valid_in: Signal<In, Bit>,
    pub acc_in: Signal<In, Bits<ACC>>,
    pub h_in: Signal<In, Bits<H>>,
    pub valid_out: Signal<Out, Bit>,
    pub word_out: Signal<Out, Bits<O>>,
    /// One valid flag per stage.
    valid: Vec<DFF<Bit>>,
    /// Stage 1: the operands.
    acc_reg: DFF<Bits<ACC>>,
    h_reg: DFF<Bits<H>>,
    /// Stages 2 to 5: the product (acc·h ≤ 48 bits) as it is rounded and tested.
    product: Vec<DFF<Bits<64>>>,
    /// Stage 5: the word.
    word: DFF<Bits<O>>,
    shift: Constant<Bits<8>>,
    out_max: Constant<Bits<32>>,
}

impl<const ACC: usize, const H: usize, const O: usize> HScaler<ACC, H, O> {
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!((ACC, H, O), (cfg.acc_bits() as usize, cfg.h_bits as usize, cfg.out_bits as usize));
        assert!(ACC <= 32 && H <= 16, "the h product must fit 48 bits");
        assert_eq!(H_STAGES, 6, "the model's stages are written for 6");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            valid_in: Default::default(),
            acc_in: Default::default(),
            h_in: Default::default(),
            valid_out: Default::default(),
            word_out: Default::default(),
            valid: dffs(H_STAGES),
            acc_reg: Default::default(),
            h_reg: Default::default(),
            product: dffs(4),
            word: Default::default(),
            shift: Constant::new(twos::<8>(cfg.h_shift() as i64)),
            out_max: Constant::new(twos::<32>(ArrayConfig::sym_max(cfg.out_bits))),
        }
    }
}

impl<const ACC: usize, const H: usize, const O: usize> Logic for HScaler<ACC, H, O> {
    fn update(&mut self) {
        let clock = self.clock.val();
        let reset = self.reset.val();
        for d in &mut self.valid {
            d.clock.next = clock;
        }
        for d in &mut self.product {
            d.clock.next = clock;
        }
        self.acc_reg.clock.next = clock;
        self.h_reg.clock.next = clock;
        self.word.clock.next = clock;
        self.valid_out.next = self.valid[H_STAGES - 1].q.val();
        self.word_out.next = self.word.q.val();
        self.valid[0].d.next = self.valid_in.val() && !reset;
        for j in 1..H_STAGES {
            self.valid[j].d.next = self.valid[j - 1].q.val() && !reset;
        }
        self.acc_reg.d.next = self.acc_in.val();
        self.h_reg.d.next = self.h_in.val();
        let p = signed_value(self.acc_reg.q.val()) * signed_value(self.h_reg.q.val());
        self.product[0].d.next = twos::<64>(p);
        for j in 1..4 {
            self.product[j].d.next = self.product[j - 1].q.val();
        }
        let (shift, m) = (self.shift.val().to_u64() as u32, self.out_max.val().to_u64() as i64);
        self.word.d.next = twos::<O>(round_shift_saturate(signed_value(self.product[3].q.val()), shift, m));
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        for d in &mut self.valid {
            d.clock.connect();
            d.d.connect();
        }
        for d in &mut self.product {
            d.clock.connect();
            d.d.connect();
        }
        self.acc_reg.clock.connect();
        self.acc_reg.d.connect();
        self.h_reg.clock.connect();
        self.h_reg.d.connect();
        self.word.clock.connect();
        self.word.d.connect();
        self.valid_out.connect();
        self.word_out.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them).
        Verilog::Wrapper(Wrapper {
            code: hscaler_verilog(ACC, H, O, self.shift.val().index(), self.out_max.val().to_u64() as i64),
            cores: String::new(),
        })
    }
}

/// The saturation tests of a rounded product `r` (signed, `pw` bits) for
/// an O-bit word shifted by `shift`: bit tests where they apply (no carry
/// chain), else two compares. Returns (above, below).
fn saturation_tests(r: &str, pw: usize, o: usize, shift: usize, m: i64) -> (String, String) {
    let top = shift + o - 1;
    if o >= 2 && m == (1i64 << (o - 1)) - 1 && top < pw - 1 {
        vsat_bit_tests(r, pw - 1, top, shift)
    } else {
        (format!("({r} >= $signed({}))", vlit(pw, (m + 1) << shift)), format!("({r} < $signed({}))", vlit(pw, (-m) << shift)))
    }
}

/// The h scaler's Verilog body (see the module doc for the stages). Stages
/// 1 to 4 come in two forms, which both give the rounded product `r4` for
/// stage 5: the generic one (one signed product registered in stages 2, 3
/// and 4, rounded on the way out of stage 4) and, where `ONEBIT_ECP5_DSP`
/// is defined, registered MULT18X18Ds whose rounded product stage 4
/// registers ([`hscaler_ecp5_dsp`]). Stage 5 registers the saturation tests
/// and the word's bits, stage 6 the word. Registers power up to 0.
pub fn hscaler_verilog(acc: usize, h: usize, o: usize, shift: usize, m: i64) -> String {
    let pp = acc + h;
    // Wide enough for the product, the rounding term and both thresholds.
    let pw = pp.max(o + shift) + 2;
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let top = shift + o - 1;
    let (above, below) = saturation_tests("r4", pw, o, shift, m);
    // The product is registered three times (stages 2 to 4) and rounded on
    // its way into stage 5's tests: with the rounding add between a
    // product register and another register, yosys 0.23's iCE40 DSP
    // packing took the add into the SB_MAC16 as its output stage and tied
    // the rounded product's top bit (its sign, which the saturation tests
    // read) to 0; the t4x3 iCE40 netlist replay caught it. (The ECP5 has
    // its own form; this stage's add-then-test path is timed only on the
    // iCE40, at 24 MHz.)
    let generic = format!(
        "reg [{a1}:0] a1;
reg [{h1}:0] b1;
reg signed [{pp1}:0] p2;
reg signed [{pp1}:0] p3;
reg signed [{pp1}:0] p4;
/* verilator lint_off UNUSEDSIGNAL */
wire signed [{pw1}:0] r4 = $signed({p4}) + $signed({round});
/* verilator lint_on UNUSEDSIGNAL */
initial begin
   a1 = {acc}'d0; b1 = {h}'d0; p2 = {pp}'d0; p3 = {pp}'d0; p4 = {pp}'d0;
end
always @(posedge clock) begin
   a1 <= acc_in;
   b1 <= h_in;
   p2 <= $signed({a}) * $signed({b});
   p3 <= p2;
   p4 <= p3;
end
",
        a1 = acc - 1,
        h1 = h - 1,
        pp1 = pp - 1,
        pw1 = pw - 1,
        a = vsext("a1", acc, pp),
        b = vsext("b1", h, pp),
        p4 = vsext("p4", pp, pw),
        round = vlit(pw, round),
    );
    format!(
        "reg v1, v2, v3, v4, v5, v6;
reg s5_above, s5_below;
reg [{o1}:0] s5_bits;
reg [{o1}:0] w6;
`ifdef ONEBIT_ECP5_DSP
{ecp5}`else
{generic}`endif
assign valid_out = v6;
assign word_out = w6;
initial begin
   v1 = 1'd0; v2 = 1'd0; v3 = 1'd0; v4 = 1'd0; v5 = 1'd0; v6 = 1'd0;
   s5_above = 1'd0; s5_below = 1'd0; s5_bits = {o}'d0; w6 = {o}'d0;
end
always @(posedge clock) begin
   v1 <= valid_in & ~reset;
   v2 <= v1 & ~reset;
   v3 <= v2 & ~reset;
   v4 <= v3 & ~reset;
   v5 <= v4 & ~reset;
   v6 <= v5 & ~reset;
   s5_above <= {above};
   s5_below <= {below};
   s5_bits <= r4[{top}:{shift}];
   w6 <= s5_above ? {max} : (s5_below ? {min} : s5_bits);
end
",
        o1 = o - 1,
        ecp5 = hscaler_ecp5_dsp(acc, h, o, shift, m),
        max = vlit(o, m),
        min = vlit(o, -m),
    )
}

/// The ECP5 form of [`hscaler_verilog`]'s stages 1 to 4 (synthesised where
/// `ONEBIT_ECP5_DSP` is defined): the product in registered MULT18X18Ds
/// (operands in stage 1, product in stage 2). An accumulator word of more
/// than 18 bits is split, acc = hi·2^17 + lo with lo the 17 low bits
/// (unsigned, a positive 18-bit operand) and hi the rest (signed), into
/// two products; stage 3 rounds the low product, stage 4 adds the high one
/// (acc·h = hi·h·2^17 + lo·h) into `r4`. Needs acc_bits ≤ 35, h_bits ≤ 18.
pub fn hscaler_ecp5_dsp(acc: usize, h: usize, o: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    let _ = (o, m);
    if acc > 35 || h > 18 {
        return "initial $fatal(1, \"ONEBIT_ECP5_DSP: the h product needs acc_bits <= 35, h_bits <= 18\");\n".into();
    }
    let pw = (acc + h).max(o + shift) + 2;
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let mut v = String::new();
    writeln!(v, "wire [17:0] hb = {};", vsext("h_in", h, 18)).unwrap();
    if acc <= 18 {
        writeln!(v, "wire [17:0] alo = {};\nwire [35:0] plo;", vsext("acc_in", acc, 18)).unwrap();
        v.push_str(&ecp5_mult18x18d("mul_lo", "alo", "hb", "plo", true));
        writeln!(
            v,
            "wire [{pp1}:0] plo_p = plo[{pp1}:0];
reg signed [{pp1}:0] p3;
/* verilator lint_off UNUSEDSIGNAL */
reg signed [{pw1}:0] r4;
/* verilator lint_on UNUSEDSIGNAL */
initial begin
   p3 = {pp}'d0; r4 = {pw}'d0;
end
always @(posedge clock) begin
   p3 <= plo_p;
   r4 <= $signed({p3}) + $signed({round});
end
wire unused_plo = ^plo[35:{pp}];",
            pp1 = acc + h - 1,
            pp = acc + h,
            p3 = vsext("p3", acc + h, pw),
            round = vlit(pw, round),
            pw1 = pw - 1,
        )
        .unwrap();
    } else {
        let hi = acc - 17;
        // lo·h: 0 ≤ lo < 2^17, |h| ≤ 2^(h-1): 18 + h bits signed.
        let lw = 18 + h;
        writeln!(v, "wire [{}:0] acc_hi = acc_in[{}:17];", hi - 1, acc - 1).unwrap();
        writeln!(v, "wire [17:0] alo = {{1'b0, acc_in[16:0]}};\nwire [17:0] ahi = {};", vsext("acc_hi", hi, 18)).unwrap();
        writeln!(v, "wire [35:0] plo;\nwire [35:0] phi;").unwrap();
        v.push_str(&ecp5_mult18x18d("mul_lo", "alo", "hb", "plo", true));
        v.push_str(&ecp5_mult18x18d("mul_hi", "ahi", "hb", "phi", true));
        writeln!(
            v,
            "wire [{lw1}:0] plo_p = plo[{lw1}:0];
reg signed [{pw1}:0] t3;
reg signed [{hw1}:0] h3;
/* verilator lint_off UNUSEDSIGNAL */
reg signed [{pw1}:0] r4;
/* verilator lint_on UNUSEDSIGNAL */
initial begin
   t3 = {pw}'d0; h3 = {hw}'d0; r4 = {pw}'d0;
end
always @(posedge clock) begin
   t3 <= $signed({lo}) + $signed({round});
   h3 <= phi[{hw1}:0];
   r4 <= $signed({{{h3}, 17'd0}}) + t3;
end
wire unused_products = ^plo[35:{lw}] ^ ^phi[35:{hw}];",
            pw1 = pw - 1,
            hw = hi + h,
            hw1 = hi + h - 1,
            lw = lw,
            lw1 = lw - 1,
            pw = pw,
            lo = vsext("plo_p", lw, pw),
            round = vlit(pw, round),
            h3 = vsext("h3", hi + h, pw - 17),
        )
        .unwrap();
    }
    v
}
