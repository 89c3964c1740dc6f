//! `HScaler`: the output scale on the drain path. Multiplies an accumulator
//! value by the column's h_q, rescales and saturates exactly as
//! `onebit_core::numerics::scale_output`:
//! out = sat_O(rshift_round(acc·h_q, h_shift)), round-half-up, symmetric
//! saturation to ±(2^(O-1) − 1).
//!
//! Five pipeline stages (`timing::H_STAGES`) that run every cycle, with no
//! enable: the operands (a DSP block's input registers), the product (its
//! output register), the rounding, the saturation tests, the word. The
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
    /// Stages 2 to 4: the product (acc·h ≤ 48 bits) as it is rounded.
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
        assert_eq!(H_STAGES, 5, "the model's stages are written for 5");
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
            product: dffs(3),
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
        self.product[1].d.next = self.product[0].q.val();
        self.product[2].d.next = self.product[1].q.val();
        let (shift, m) = (self.shift.val().to_u64() as u32, self.out_max.val().to_u64() as i64);
        self.word.d.next = twos::<O>(round_shift_saturate(signed_value(self.product[2].q.val()), shift, m));
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

/// The h scaler's Verilog body (see the module doc for the stages), in two
/// forms: the generic one (one signed product registered in stage 2 and
/// again in stage 3, rounded and tested into stage 4's saturation flags and
/// word bits, the word in stage 5) and, where `ONEBIT_ECP5_DSP` is defined, registered MULT18X18Ds
/// ([`hscaler_ecp5_dsp`]). Both have the same timing. Registers power up
/// to 0.
pub fn hscaler_verilog(acc: usize, h: usize, o: usize, shift: usize, m: i64) -> String {
    let pp = acc + h;
    // Wide enough for the product, the rounding term and both thresholds.
    let pw = pp.max(o + shift) + 2;
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let top = shift + o - 1;
    let (above, below) = saturation_tests("r4", pw, o, shift, m);
    // Stage 3 registers the product again, and stage 4 rounds it and tests
    // it in one: with the rounding add between the product and stage 3's
    // register, yosys 0.23's iCE40 DSP packing took the add into the
    // SB_MAC16 and tied the rounded product's top bit (its sign, which the
    // saturation tests read) to 0; the t4x3 iCE40 netlist replay caught it.
    // The ECP5 has its own form, so this stage's longer path (add, then the
    // tests) is timed only on the iCE40, at 24 MHz.
    let generic = format!(
        "reg [{a1}:0] a1;
reg [{h1}:0] b1;
reg signed [{pp1}:0] p2;
reg signed [{pp1}:0] p3;
/* verilator lint_off UNUSEDSIGNAL */
wire signed [{pw1}:0] r4 = $signed({p3}) + $signed({round});
/* verilator lint_on UNUSEDSIGNAL */
reg s4_above, s4_below;
reg [{o1}:0] s4_bits;
initial begin
   a1 = {acc}'d0; b1 = {h}'d0; p2 = {pp}'d0; p3 = {pp}'d0; s4_above = 1'd0; s4_below = 1'd0; s4_bits = {o}'d0;
end
always @(posedge clock) begin
   a1 <= acc_in;
   b1 <= h_in;
   p2 <= $signed({a}) * $signed({b});
   p3 <= p2;
   s4_above <= {above};
   s4_below <= {below};
   s4_bits <= r4[{top}:{shift}];
end
",
        a1 = acc - 1,
        h1 = h - 1,
        pp1 = pp - 1,
        pw1 = pw - 1,
        o1 = o - 1,
        a = vsext("a1", acc, pp),
        b = vsext("b1", h, pp),
        p3 = vsext("p3", pp, pw),
        round = vlit(pw, round),
    );
    format!(
        "reg v1, v2, v3, v4, v5;
reg [{o1}:0] w5;
`ifdef ONEBIT_ECP5_DSP
{ecp5}`else
{generic}`endif
assign valid_out = v5;
assign word_out = w5;
initial begin
   v1 = 1'd0; v2 = 1'd0; v3 = 1'd0; v4 = 1'd0; v5 = 1'd0; w5 = {o}'d0;
end
always @(posedge clock) begin
   v1 <= valid_in & ~reset;
   v2 <= v1 & ~reset;
   v3 <= v2 & ~reset;
   v4 <= v3 & ~reset;
   v5 <= v4 & ~reset;
   w5 <= s4_above ? {max} : (s4_below ? {min} : s4_bits);
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
/// (acc·h = hi·h·2^17 + lo·h) and registers the saturation tests and the
/// word's bits, as the generic form does. Needs acc_bits ≤ 35, h_bits ≤ 18.
pub fn hscaler_ecp5_dsp(acc: usize, h: usize, o: usize, shift: usize, m: i64) -> String {
    use std::fmt::Write;
    if acc > 35 || h > 18 {
        return "initial $fatal(1, \"ONEBIT_ECP5_DSP: the h product needs acc_bits <= 35, h_bits <= 18\");\n".into();
    }
    let pw = (acc + h).max(o + shift) + 2;
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    let top = shift + o - 1;
    let mut v = String::new();
    writeln!(v, "wire [17:0] hb = {};", vsext("h_in", h, 18)).unwrap();
    // The rounded product in stage 4 (`r4`), for the saturation tests.
    let r4 = if acc <= 18 {
        writeln!(v, "wire [17:0] alo = {};\nwire [35:0] plo;", vsext("acc_in", acc, 18)).unwrap();
        v.push_str(&ecp5_mult18x18d("mul_lo", "alo", "hb", "plo", true));
        writeln!(
            v,
            "reg signed [{pw1}:0] r3;
initial r3 = {pw}'d0;
wire [{pp1}:0] plo_p = plo[{pp1}:0];
always @(posedge clock) r3 <= $signed({}) + $signed({});
/* verilator lint_off UNUSEDSIGNAL */
wire signed [{pw1}:0] r4 = r3;
/* verilator lint_on UNUSEDSIGNAL */",
            vsext("plo_p", acc + h, pw),
            vlit(pw, round),
            pw1 = pw - 1,
            pp1 = acc + h - 1
        )
        .unwrap();
        writeln!(v, "wire unused_plo = ^plo[35:{}];", acc + h).unwrap();
        "r4".to_string()
    } else {
        let hi = acc - 17;
        // lo·h: |lo| < 2^17, |h| ≤ 2^(h-1): 18 + h bits signed.
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
reg signed [{pw1}:0] r4;
initial begin
   t3 = {pw}'d0; h3 = {hw}'d0; r4 = {pw}'d0;
end
always @(posedge clock) begin
   t3 <= $signed({lo}) + $signed({round});
   h3 <= phi[{hw1}:0];
   r4 <= $signed({{{h3}, 17'd0}}) + t3;
end",
            pw1 = pw - 1,
            hw = hi + h,
            hw1 = hi + h - 1,
            pw = pw,
            lo = vsext("plo_p", lw, pw),
            lw1 = lw - 1,
            round = vlit(pw, round),
            h3 = vsext("h3", hi + h, pw - 17),
        )
        .unwrap();
        "r4".to_string()
    };
    let (above, below) = saturation_tests(&r4, pw, o, shift, m);
    writeln!(
        v,
        "reg s4_above, s4_below;
reg [{o1}:0] s4_bits;
initial begin
   s4_above = 1'd0; s4_below = 1'd0; s4_bits = {o}'d0;
end"
    , o1 = o - 1)
    .unwrap();
    if acc <= 18 {
        // r3 is stage 3; the tests register in stage 4.
        writeln!(v, "always @(posedge clock) begin\n   s4_above <= {above};\n   s4_below <= {below};\n   s4_bits <= r3[{top}:{shift}];\nend").unwrap();
    } else {
        // r4 is stage 4's sum; the tests come from it combinationally, and
        // stage 5 (the word) registers them: a register less than the
        // generic form, the same timing.
        v = v.replace("reg s4_above, s4_below;", "wire s4_above, s4_below;");
        v = v.replace(&format!("reg [{}:0] s4_bits;", o - 1), &format!("wire [{}:0] s4_bits;", o - 1));
        v = v.replace(&format!("initial begin\n   s4_above = 1'd0; s4_below = 1'd0; s4_bits = {o}'d0;\nend\n"), "");
        writeln!(v, "assign s4_above = {above};\nassign s4_below = {below};\nassign s4_bits = {r4}[{top}:{shift}];").unwrap();
        writeln!(v, "wire unused_products = ^plo[35:{}] ^ ^phi[35:{}];", 18 + h, acc - 17 + h).unwrap();
    }
    v
}
