//! The same test bodies on rust-hdl's simulator and on Verilator (one macro,
//! two variants), with the reference as the oracle.

use onebit_core::ArrayConfig;
use onebit_sim::suite::{corner_cases, random_case, run_case};
use onebit_sim::{DeviceOptions, VerilatorDevice};

/// `on_both_simulators!(name, |dev, cfg| body)` makes `name::rusthdl` and
/// `name::verilator`, each running `body` on a fresh sim16 accelerator.
macro_rules! on_both_simulators {
    ($name:ident, |$dev:ident, $cfg:ident| $body:block) => {
        mod $name {
            use super::*;
            #[test]
            fn rusthdl() {
                let $cfg = ArrayConfig::SIM16;
                let mut $dev = onebit_driver::PortDevice::new(onebit_hdl::presets::sim16::build().expect("build the rust-hdl accelerator"), $cfg);
                $body
            }
            #[test]
            fn verilator() {
                let $cfg = ArrayConfig::SIM16;
                let mut $dev = onebit_driver::PortDevice::new(VerilatorDevice::new("sim16", &DeviceOptions::from_env()).expect("Verilated sim16"), $cfg);
                $body
            }
        }
    };
}

fn cases_from_env(default: u64) -> u64 {
    std::env::var("ONEBIT_SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

on_both_simulators!(random_layers, |dev, cfg| {
    // The Verilator variant runs ten times as many cases: it is that much faster.
    // rust-hdl's simulator is ~100x slower: it gets a slice of the cases.
    let n = if std::any::type_name_of_val(&dev).contains("Verilator") { cases_from_env(400) } else { cases_from_env(400) / 40 };
    let mut failures = Vec::new();
    for seed in 0..n {
        let case = random_case(&cfg, 1000 + seed, 300);
        let out = run_case(&mut dev, &cfg, &case).unwrap_or_else(|e| panic!("{e}"));
        if out.mismatches > 0 {
            failures.push(format!("{} (seed {}): {} of {} outputs differ", case.label, case.seed, out.mismatches, out.outputs));
        }
    }
    assert!(failures.is_empty(), "{} of {n} cases mismatched:\n{}", failures.len(), failures.join("\n"));
});

on_both_simulators!(corner_sweep, |dev, cfg| {
    let cases = corner_cases(&cfg);
    let step = if std::any::type_name_of_val(&dev).contains("Verilator") { 1 } else { 29 };
    for case in cases.iter().step_by(step) {
        let out = run_case(&mut dev, &cfg, case).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.mismatches, 0, "{}: {} of {} outputs differ", case.label, out.mismatches, out.outputs);
    }
});

/// The other built configurations: the ice40 preset (lane 10, out 22, 8-bit
/// weight beats, one word per output beat) and t6x4 (weight beats wider than
/// a column and not a multiple of R, 2 banks, 2-word output beats).
#[test]
fn ice40_and_t6x4_random_layers_on_verilator() {
    for (preset, seed0) in [("ice40", 7000u64), ("t6x4", 9000)] {
        let cfg = ArrayConfig::lookup(preset).unwrap();
        let mut dev = onebit_driver::PortDevice::new(VerilatorDevice::new(preset, &DeviceOptions::default()).expect("Verilated"), cfg);
        for seed in 0..cases_from_env(400) / 4 {
            let case = random_case(&cfg, seed0 + seed, 200);
            let out = run_case(&mut dev, &cfg, &case).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.mismatches, 0, "{preset}: {} (seed {})", case.label, case.seed);
        }
        let corners = corner_cases(&cfg);
        for case in corners.iter().step_by(3) {
            let out = run_case(&mut dev, &cfg, case).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.mismatches, 0, "{preset}: {}", case.label);
        }
    }
}

/// `ONEBIT_TRACE=/tmp/t.vcd cargo test -p onebit-sim --test equivalence trace`
/// writes the VCD there; without the variable the test traces to a scratch file.
#[test]
fn trace_writes_a_vcd_with_the_ports() {
    let path = std::env::var_os("ONEBIT_TRACE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace.vcd"));
    {
        let cfg = ArrayConfig::SIM16;
        let mut dev = onebit_driver::PortDevice::new(VerilatorDevice::new("sim16", &DeviceOptions { trace: Some(path.clone()), random_init: None }).unwrap(), cfg);
        let case = random_case(&cfg, 3, 5);
        assert_eq!(run_case(&mut dev, &cfg, &case).unwrap().mismatches, 0);
    }
    let vcd = std::fs::read_to_string(&path).unwrap();
    for port in ["cmd_data", "cmd_valid", "cmd_ready", "w_data", "x_data", "o_data", "o_valid", "o_ready", "clock", "reset"] {
        assert!(vcd.contains(port), "VCD lacks {port}");
    }
    assert!(vcd.contains("$enddefinitions") && vcd.lines().filter(|l| l.starts_with('#')).count() > 10);
}

#[test]
fn unknown_or_unbuilt_presets_are_errors() {
    assert!(VerilatorDevice::new("nope", &DeviceOptions::default()).is_err());
    if !onebit_sim::BUILT_PRESETS.contains(&"ecp5") {
        let e = VerilatorDevice::new("ecp5", &DeviceOptions::default()).err().unwrap();
        assert!(e.to_string().contains("ONEBIT_SIM_PRESETS"), "{e}");
    }
}

fn verilog_file(preset: &str) -> std::path::PathBuf {
    onebit_sim::VERILOG_FILES.iter().find(|(p, _)| *p == preset).map(|(_, f)| f.into()).expect("preset built")
}

/// The same Verilog under Icarus Verilog: nothing may depend on
/// Verilator-only semantics.
#[test]
fn icarus_smoke_matches_reference() {
    for (preset, seeds) in [("sim16", 0..2u64), ("ice40", 10..11), ("t6x4", 20..21)] {
        let cfg = ArrayConfig::lookup(preset).unwrap();
        for seed in seeds {
            let case = random_case(&cfg, seed, 40);
            let program = onebit_driver::Program::compile(&cfg, &case.layer, case.xq.view()).unwrap();
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("icarus-{preset}-{seed}"));
            let run = onebit_sim::icarus::run_program(&verilog_file(preset), &program, &dir).unwrap_or_else(|e| panic!("{preset} {}: {e}", case.label));
            let got = program.assemble(&run.beats).unwrap();
            let want = onebit_core::reference::integer_forward(&cfg, &case.layer, case.xq.view()).unwrap();
            assert_eq!(got, want, "{preset} {}", case.label);
        }
    }
}

/// `VerilatorDevice` claims `outputs_registered()`, so the driver reads the
/// readies and the output beat without settling the inputs it just set.
/// This checks the claim on every built preset: a wrapper that does not
/// claim it makes the driver settle every cycle, and compares every output
/// before and after that evaluation, through random layers with stalls.
/// (Changing `cmd_ready` to `!cb_valid & cmd_valid` in the controller makes
/// it fail at cycle 1.)
struct SettleCheck {
    dev: VerilatorDevice,
    cycles: u64,
    differences: Vec<String>,
}

use onebit_core::ports::DevicePorts;

impl SettleCheck {
    fn outputs(&self) -> (bool, bool, bool, bool, bool, Vec<u32>) {
        let d = &self.dev;
        (
            d.cmd_ready(),
            d.weight_ready(),
            d.scale_ready(),
            d.activation_ready(),
            d.out_valid(),
            d.out_data(),
        )
    }
}

impl DevicePorts for SettleCheck {
    fn set_reset(&mut self, reset: bool) {
        self.dev.set_reset(reset)
    }
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.dev.set_cmd(valid, data)
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.dev.set_weight(valid, data)
    }
    fn set_scale(&mut self, valid: bool, data: &[u32]) {
        self.dev.set_scale(valid, data)
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.dev.set_activation(valid, data)
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.dev.set_out_ready(ready)
    }
    fn eval(&mut self) {
        let before = self.outputs();
        self.dev.eval();
        let after = self.outputs();
        if before != after && self.differences.len() < 5 {
            self.differences.push(format!(
                "cycle {}: {before:?} before eval, {after:?} after",
                self.cycles
            ));
        }
    }
    fn cmd_ready(&self) -> bool {
        self.dev.cmd_ready()
    }
    fn weight_ready(&self) -> bool {
        self.dev.weight_ready()
    }
    fn scale_ready(&self) -> bool {
        self.dev.scale_ready()
    }
    fn activation_ready(&self) -> bool {
        self.dev.activation_ready()
    }
    fn out_valid(&self) -> bool {
        self.dev.out_valid()
    }
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.dev.tick();
        self.cycles += 1;
    }
}

#[test]
fn outputs_depend_on_registers_only() {
    for preset in onebit_sim::BUILT_PRESETS {
        let cfg = ArrayConfig::lookup(preset).unwrap();
        let dev = VerilatorDevice::new(preset, &DeviceOptions::default()).expect("Verilated");
        // Verilator 5.006 (the Debian package) has the edge-trigger member
        // the one-eval clock needs; without it every other test would run
        // the two-eval clock and this claim would go unused.
        assert!(
            dev.outputs_registered(),
            "{preset}: the model has no one-eval clock edge"
        );
        let mut dev = onebit_driver::PortDevice::new(
            SettleCheck {
                dev,
                cycles: 0,
                differences: vec![],
            },
            cfg,
        );
        for seed in 0..12u64 {
            // random_case picks a stall rate of 0, 0.1, 0.3 or 0.6.
            let case = random_case(&cfg, 31_000 + seed, 120);
            let out = run_case(&mut dev, &cfg, &case).unwrap_or_else(|e| panic!("{preset}: {e}"));
            assert_eq!(out.mismatches, 0, "{preset}: {}", case.label);
        }
        assert!(
            dev.ports.cycles > 1000,
            "{preset}: only {} cycles checked",
            dev.ports.cycles
        );
        assert!(
            dev.ports.differences.is_empty(),
            "{preset}: outputs changed when the inputs settled:\n{}",
            dev.ports.differences.join("\n")
        );
    }
}
