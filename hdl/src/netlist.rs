//! Hand-built combinational wiring for blocks whose connections are computed
//! (the array's grid, the top's per-row and per-column children).
//!
//! rust-hdl's `#[hdl_gen]` unrolls `for` loops but can only index a `Vec` of
//! children by expressions of loop variables, so the 2-D neighbour wiring of an
//! R×C grid is written twice instead: once as plain Rust in `update()` (what the
//! simulator runs) and once here as the Verilog statement list (what
//! `generate_verilog` prints). Both are produced by the same loops over the same
//! index functions, so they cannot drift apart silently; the Verilator
//! co-simulation checks the result.

use rust_hdl::core::ast::{VerilogExpression, VerilogLiteral, VerilogStatement};
use rust_hdl::prelude::*;

/// A list of combinational assignments, printed as one `always @(*)` block.
#[derive(Default)]
pub struct Netlist(Vec<VerilogStatement>);

fn sig(name: &str) -> VerilogExpression {
    VerilogExpression::Signal(name.to_string())
}

fn lit(v: usize) -> VerilogExpression {
    VerilogExpression::Literal(VerilogLiteral::from(v as u32))
}

impl Netlist {
    /// `lhs = rhs;` between two signals (names as rust-hdl prints them, e.g. `pes$3$act_in`).
    pub fn wire(&mut self, lhs: &str, rhs: &str) {
        self.0.push(VerilogStatement::Assignment(sig(lhs), sig(rhs)));
    }
    /// `lhs = value;` with a literal of the signal's own width.
    pub fn constant<const N: usize>(&mut self, lhs: &str, value: Bits<N>) {
        self.0.push(VerilogStatement::Assignment(
            sig(lhs),
            VerilogExpression::Literal(value.into()),
        ));
    }
    /// `lhs = rhs[offset +: width];`
    pub fn from_slice(&mut self, lhs: &str, rhs: &str, offset: usize, width: usize) {
        let e = VerilogExpression::Slice(Box::new(sig(rhs)), width, Box::new(lit(offset)));
        self.0.push(VerilogStatement::Assignment(sig(lhs), e));
    }
    /// `lhs[offset +: width] = rhs;`
    pub fn into_slice(&mut self, lhs: &str, offset: usize, width: usize, rhs: &str) {
        self.0.push(VerilogStatement::SliceAssignment {
            base: sig(lhs),
            width,
            offset: lit(offset),
            replacement: sig(rhs),
        });
    }
    pub fn finish(self) -> Verilog {
        Verilog::Combinatorial(self.0)
    }
}

impl Netlist {
    /// `lhs[lhs_bit] = rhs[rhs_bit];`
    pub fn into_slice_from_slice(&mut self, lhs: &str, lhs_bit: usize, rhs: &str, rhs_bit: usize) {
        self.0.push(VerilogStatement::SliceAssignment {
            base: sig(lhs),
            width: 1,
            offset: lit(lhs_bit),
            replacement: VerilogExpression::Slice(Box::new(sig(rhs)), 1, Box::new(lit(rhs_bit))),
        });
    }
}

impl Netlist {
    /// `if (a & b[bit]) begin ... end` around the statements `body` adds.
    pub fn when_and_bit(&mut self, a: &str, b: &str, bit: usize, body: impl FnOnce(&mut Netlist)) {
        use rust_hdl::core::ast::VerilogOp;
        let test = VerilogExpression::Binary(
            Box::new(sig(a)),
            VerilogOp::BitAnd,
            Box::new(VerilogExpression::Slice(Box::new(sig(b)), 1, Box::new(lit(bit)))),
        );
        let mut inner = Netlist::default();
        body(&mut inner);
        self.0
            .push(VerilogStatement::If(rust_hdl::core::ast::VerilogConditional {
                test,
                then: inner.0,
                otherwise: rust_hdl::core::ast::VerilogBlockOrConditional::None,
            }));
    }

    /// `if (bus[bit]) begin ... end` around the statements `body` adds.
    pub fn when_bit(&mut self, bus: &str, bit: usize, body: impl FnOnce(&mut Netlist)) {
        let test = VerilogExpression::Slice(Box::new(sig(bus)), 1, Box::new(lit(bit)));
        let mut inner = Netlist::default();
        body(&mut inner);
        self.0
            .push(VerilogStatement::If(rust_hdl::core::ast::VerilogConditional {
                test,
                then: inner.0,
                otherwise: rust_hdl::core::ast::VerilogBlockOrConditional::None,
            }));
    }

    /// `if (cond) begin ... end` around the statements `body` adds.
    pub fn when(&mut self, cond: &str, body: impl FnOnce(&mut Netlist)) {
        let mut inner = Netlist::default();
        body(&mut inner);
        self.0
            .push(VerilogStatement::If(rust_hdl::core::ast::VerilogConditional {
                test: sig(cond),
                then: inner.0,
                otherwise: rust_hdl::core::ast::VerilogBlockOrConditional::None,
            }));
    }
}

impl Netlist {
    /// `lhs = ^a ^ ^b ^ ...;`: gives outputs that are legitimately left open
    /// (the east edge of the array, the reserved command bits, …) a reader, so
    /// that Verilator's UNUSED lint stays on for everything else. `lhs` must be
    /// a 1-bit local whose name contains `unused` (Verilator's default
    /// `-unused-regexp`); update() computes the same parity.
    pub fn sink(&mut self, lhs: &str, signals: &[String]) {
        use rust_hdl::core::ast::{VerilogOp, VerilogOpUnary};
        let mut e: Option<VerilogExpression> = None;
        for s in signals {
            let r = VerilogExpression::Unary(VerilogOpUnary::Xor, Box::new(sig(s)));
            e = Some(match e {
                None => r,
                Some(l) => VerilogExpression::Binary(Box::new(l), VerilogOp::BitXor, Box::new(r)),
            });
        }
        if let Some(e) = e {
            self.0.push(VerilogStatement::Assignment(sig(lhs), e));
        }
    }
}

/// XOR of all bits, the Rust side of [`Netlist::sink`].
pub fn parity<const N: usize>(b: Bits<N>) -> bool {
    (0..N).fold(false, |p, i| p ^ b.get_bit(i))
}
