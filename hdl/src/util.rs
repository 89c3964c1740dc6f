//! Small helpers shared by the blocks: two's complement constants for `Bits`,
//! and the 16×16 unsigned multiplier primitive.
//!
//! The blocks keep every value in `Bits<N>` (two's complement where signed)
//! rather than `Signed<N>`: rust-hdl's `Signed` compares and multiplies through
//! `BigInt`, which made the simulator an order of magnitude slower, and it has no
//! shifts. Signed comparisons are done as unsigned comparisons with the sign bit
//! flipped, against constants computed here at construction time.

use rust_hdl::prelude::*;

/// `n` registers of type `T`, each powering up to 0.
pub fn dffs<T: Synth>(n: usize) -> Vec<DFF<T>> {
    (0..n).map(|_| DFF::default()).collect()
}

/// `v` as an `N`-bit two's complement bit pattern (`N` <= 64).
pub fn twos<const N: usize>(v: i64) -> Bits<N> {
    assert!(N <= 64, "twos: {N} bits do not fit a u64");
    let mask = if N == 64 { u64::MAX } else { (1u64 << N) - 1 };
    Bits::<N>::from((v as u64) & mask)
}

/// `v` as `N`-bit two's complement with the sign bit flipped: the unsigned
/// order of these patterns is the signed order of the values.
pub fn twos_flipped<const N: usize>(v: i64) -> Bits<N> {
    twos::<N>(v) ^ twos::<N>(1i64 << (N - 1))
}

/// Bits above the low `from` bits of an `N`-bit word set: OR-ing them into a
/// zero-extended value sign-extends it.
pub fn high_mask<const N: usize>(from: usize) -> Bits<N> {
    let all: u64 = if N == 64 { u64::MAX } else { (1u64 << N) - 1 };
    let low: u64 = if from >= 64 { u64::MAX } else { (1u64 << from) - 1 };
    Bits::<N>::from(all & !low)
}

/// Read an `N`-bit two's complement pattern back as i64 (N <= 64).
pub fn signed_value<const N: usize>(b: Bits<N>) -> i64 {
    let u = b.to_u64();
    if N == 64 {
        u as i64
    } else if (u >> (N - 1)) & 1 == 1 {
        (u as i64) - (1i64 << N)
    } else {
        u as i64
    }
}

/// An unsigned 16×16 → 32 multiplier: the one primitive written in Verilog by
/// hand, so that the product width is explicit (`{16'b0, a} * {16'b0, b}`) and
/// lints clean; yosys maps it to one DSP block (MULT18X18D, SB_MAC16).
///
/// Ports: `a` in 16b, `b` in 16b (unsigned), `p` out 32b = a·b (combinational).
#[derive(Clone, Debug, Default, LogicBlock)]
pub struct Mul16 {
    pub a: Signal<In, Bits<16>>,
    pub b: Signal<In, Bits<16>>,
    pub p: Signal<Out, Bits<32>>,
}

impl Logic for Mul16 {
    fn update(&mut self) {
        self.p.next = self.a.val() * self.b.val();
    }
    fn connect(&mut self) {
        self.p.connect();
    }
    fn hdl(&self) -> Verilog {
        Verilog::Custom("always @(*) p = {16'b0, a} * {16'b0, b};".into())
    }
}

/// A `W`-bit two's complement literal of `v` for hand-written Verilog
/// (`W'h…`, so no sign or width surprises in comparisons).
pub fn vlit(w: usize, v: i64) -> String {
    let mask = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
    format!("{w}'h{:x}", (v as u64) & mask)
}

/// Symmetric saturation of v = x >>> `shift` to ±(2^(L−1) − 1) as bit
/// tests, for x's sign at bit `sign` and v's at bit `top` = shift + L − 1
/// (L ≥ 2, top < sign): v exceeds the range exactly when x's bits above
/// `top` disagree with its sign, or v is −2^(L−1) (its bits below its sign
/// all clear). Returns the Verilog (above, below) expressions, which replace
/// two full-width compares after an add (a critical path on the iCE40).
pub fn vsat_bit_tests(x: &str, sign: usize, top: usize, shift: usize) -> (String, String) {
    let (s, up, low) = (format!("{x}[{sign}]"), format!("{x}[{}:{top}]", sign - 1), format!("{x}[{}:{shift}]", top - 1));
    (format!("(~{s} & (|{up}))"), format!("({s} & (~(&{up}) | ~(|{low})))"))
}

/// `{{(W-N){x[N-1]}}, x}`: an N-bit net sign-extended to W bits (W >= N).
pub fn vsext(x: &str, n: usize, w: usize) -> String {
    if w == n {
        x.to_string()
    } else {
        format!("{{{{{}{{{x}[{}]}}}}, {x}}}", w - n, n - 1)
    }
}

/// `p` rounded half up and shifted right by `shift` (floor of (p + 2^(shift−1))
/// / 2^shift), then saturated symmetrically to ±m: the arithmetic of the g
/// and h scalers (`numerics::lane_value`, `numerics::scale_output`), written
/// once for their rust-hdl models.
pub fn round_shift_saturate(p: i64, shift: u32, m: i64) -> i64 {
    let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
    ((p + round) >> shift).clamp(-m, m)
}

/// An ECP5 MULT18X18D instance `inst`: `p` (a 36-bit net) = `a` · `b` (18-bit
/// nets, both signed), with the input registers (A and B) and the output
/// register clocked by `clock` when `registered` (two cycles from the
/// operands to the product, the configuration nextpnr times as
/// MULT18X18D_REGS_ALL), none otherwise. Clock enables on, resets off; the
/// project's model is hdl/verilog/MULT18X18D_sim.v.
pub fn ecp5_mult18x18d(inst: &str, a: &str, b: &str, p: &str, registered: bool) -> String {
    let reg = if registered { "CLK0" } else { "NONE" };
    let bits = |port: &str, net: &str, n: usize| (0..n).map(|i| format!(".{port}{i}({net}[{i}])")).collect::<Vec<_>>().join(", ");
    format!(
        "MULT18X18D #(.REG_INPUTA_CLK(\"{reg}\"), .REG_INPUTB_CLK(\"{reg}\"), .REG_OUTPUT_CLK(\"{reg}\"), .REG_PIPELINE_CLK(\"NONE\"),
  .REG_INPUTC_CLK(\"NONE\"), .GSR(\"DISABLED\"), .RESETMODE(\"SYNC\"), .MULT_BYPASS(\"DISABLED\")) {inst} (
  {}, {},
  .SIGNEDA(1'b1), .SIGNEDB(1'b1), .SOURCEA(1'b0), .SOURCEB(1'b0),
  .CLK0(clock), .CLK1(1'b0), .CLK2(1'b0), .CLK3(1'b0), .CE0(1'b1), .CE1(1'b0), .CE2(1'b0), .CE3(1'b0),
  .RST0(1'b0), .RST1(1'b0), .RST2(1'b0), .RST3(1'b0),
  {});
",
        bits("A", a, 18),
        bits("B", b, 18),
        bits("P", p, 36)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twos_round_trips() {
        for v in [-2048i64, -1, 0, 1, 2047] {
            assert_eq!(signed_value::<12>(twos::<12>(v)), v);
        }
        assert_eq!(signed_value::<64>(twos::<64>(-5)), -5);
        assert!(twos_flipped::<8>(-3).to_u64() < twos_flipped::<8>(2).to_u64());
        assert_eq!(high_mask::<16>(12).to_u64(), 0xF000);
        assert_eq!(vlit(8, -3), "8'hfd");
        assert_eq!(vsext("a", 4, 8), "{{4{a[3]}}, a}");
        assert_eq!(round_shift_saturate(11, 2, 100), 3);
        assert_eq!(round_shift_saturate(10, 2, 100), 3);
        assert_eq!(round_shift_saturate(9, 2, 100), 2);
        assert_eq!(round_shift_saturate(-10, 2, 100), -2);
        assert_eq!(round_shift_saturate(-11, 2, 100), -3);
        assert_eq!(round_shift_saturate(1000, 2, 100), 100);
        assert_eq!(round_shift_saturate(-1000, 0, 100), -100);
    }
}
