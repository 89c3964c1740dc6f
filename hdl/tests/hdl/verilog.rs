//! Every preset's Verilog (and the small test configurations') lints clean in
//! `verilator --lint-only -Wall` (with the waivers listed in
//! `onebit_hdl::verilog::VERILATOR_WAIVERS`) and elaborates in yosys.

use onebit_hdl::presets;
use onebit_hdl::verilog::{generate, verilator_lint, yosys_elaborate, VerilogError};
use rust_hdl::prelude::*;

fn check(name: &str, verilog: &str) {
    let dir = std::env::temp_dir().join(format!("onebit-hdl-verilog-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("onebit_accelerator.v");
    std::fs::write(&path, verilog).unwrap();
    verilator_lint(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    yosys_elaborate(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        verilog.contains("\nmodule top("),
        "{name}: the top module must be `top`"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim16_lints_and_elaborates() {
    check("sim16", &generate(&presets::sim16::build().unwrap()).unwrap());
}

#[test]
fn ecp5_lints_and_elaborates() {
    check("ecp5", &generate(&presets::ecp5::build().unwrap()).unwrap());
}

#[test]
fn ice40_lints_and_elaborates() {
    check("ice40", &generate(&presets::ice40::build().unwrap()).unwrap());
}

#[test]
fn test_configs_lint_and_elaborate() {
    check("t4x3", &generate(&crate::common::t4x3::build().unwrap()).unwrap());
    check("t1x1", &generate(&crate::common::t1x1::build().unwrap()).unwrap());
    check("t3x2", &generate(&crate::common::t3x2::build().unwrap()).unwrap());
    check("t4x4", &generate(&crate::common::t4x4::build().unwrap()).unwrap());
    check("t6x4", &generate(&presets::t6x4::build().unwrap()).unwrap());
}

/// A design that fails rust-hdl's checks is an error, not a panic: here an
/// accelerator whose signals were never connected.
#[test]
fn check_all_problems_are_errors() {
    let unconnected = crate::common::t1x1::Accelerator::new(&crate::common::T1X1).unwrap();
    assert!(matches!(generate(&unconnected), Err(VerilogError::Check(_))));
}

/// A mismatch between the const widths and the configuration is refused.
#[test]
fn widths_must_match_the_config() {
    assert!(crate::common::t1x1::Accelerator::new(&crate::common::T3X2).is_err());
    let mut cfg = crate::common::T1X1;
    cfg.max_k = 1 << 24;
    assert!(crate::common::t1x1::Accelerator::new(&cfg).is_err());
    let _ = presets::ice40::build().unwrap().connect_all();
}
