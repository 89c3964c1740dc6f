//! The hdl crate's tests, in one binary so the generic code is compiled
//! once: each block against the numerics contract in rust-hdl's simulator,
//! and Verilog lint and elaboration. The whole accelerator against the
//! reference, through the driver, is tested in sim/ (sim/tests/rusthdl and
//! sim/tests/equivalence.rs), since the HDL does not depend on the driver.

mod blocks;
mod common;
mod verilog;
