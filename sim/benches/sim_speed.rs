//! Simulated cycles per second of the same Verilog and stimulus in Verilator,
//! rust-hdl's direct `simulate()` loop and Icarus Verilog, in one run.
//! Writes bench-results/sim-speed.json. Run: `cargo bench -p onebit-sim --bench sim_speed`.

use onebit_core::ArrayConfig;
use onebit_driver::{run_layer, Deadline, PortDevice, Program};
use onebit_sim::suite::{make_layer, Fill};
use onebit_sim::{DeviceOptions, VerilatorDevice};
use std::time::Instant;

fn main() {
    let only_verilator = std::env::args().any(|a| a == "--verilator-only");
    let full = only_verilator || std::env::args().any(|a| a == "--bench");
    let cfg = ArrayConfig::SIM16;
    let mut rng = onebit_core::synth::SplitMix64(77);
    let (k, n, m) = if full { (64, 48, 128) } else { (20, 20, 8) };
    let (layer, xq) = make_layer(&cfg, &mut rng, k, n, m, Fill::Random, Fill::Random, Fill::Random, Fill::Random);
    let program = Program::compile(&cfg, &layer, xq.view()).unwrap();
    let want = onebit_core::reference::integer_forward(&cfg, &layer, xq.view()).unwrap();
    let limit = 10_000_000;

    let deadline = Deadline::IdleCycles(limit);
    let mut dev = PortDevice::new(VerilatorDevice::new("sim16", &DeviceOptions::default()).unwrap(), cfg);
    // 100 runs per trial (about 0.1 s at 2 M cycles/s); `--verilator-only`:
    // just the Verilator loop on the full stimulus, one trial (for perf).
    let reps = if only_verilator || full { 100 } else { 1 };
    // Five timed trials of `reps` runs each: this 2-core VM's speed varies by
    // ±30 % with its neighbours, so the figure is the median trial, and every
    // trial is recorded.
    let trials = if full && !only_verilator { 5 } else { 1 };
    let mut trial_rates = vec![];
    let (mut v_cycles, mut v_secs) = (0, 0.0);
    for _ in 0..trials {
        let t = Instant::now();
        let mut cycles = 0;
        for _ in 0..reps {
            let run = run_layer(&mut dev, &program, "sim_speed", deadline).unwrap();
            assert_eq!(run.output, want);
            cycles += run.progress.cycles;
        }
        let secs = t.elapsed().as_secs_f64();
        trial_rates.push(cycles as f64 / secs);
        (v_cycles, v_secs) = (cycles, secs);
    }
    let mut sorted = trial_rates.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = sorted[sorted.len() / 2];
    if only_verilator {
        println!("verilator {:>12.0} cycles/s ({v_cycles} cycles, {v_secs:.3} s, driver included)", v_cycles as f64 / v_secs);
        return;
    }

    let mut hdl = PortDevice::new(onebit_hdl::presets::sim16::build().unwrap(), cfg);
    let t = Instant::now();
    let run = run_layer(&mut hdl, &program, "sim_speed", deadline).unwrap();
    let h_secs = t.elapsed().as_secs_f64();
    assert_eq!(run.output, want);
    let h_cycles = run.progress.cycles;

    let verilog = onebit_sim::VERILOG_FILES.iter().find(|(p, _)| *p == "sim16").unwrap().1;
    let dir = std::env::temp_dir().join(format!("onebit-sim-speed-{}", std::process::id()));
    let run = onebit_sim::icarus::run_program(std::path::Path::new(verilog), &program, &dir).unwrap();
    assert_eq!(program.assemble(&run.beats).unwrap(), want);
    let _ = std::fs::remove_dir_all(&dir);

    let v = median;
    let h = h_cycles as f64 / h_secs;
    let i = run.cycles as f64 / run.seconds;
    println!("sim16 accelerator, layer K={k} N={n} M={m}, {h_cycles} cycles per run, all three outputs equal the reference");
    println!("verilator {:>12.0} cycles/s (median of {trials} trials of {v_cycles} cycles, last {v_secs:.3} s, driver included)", v);
    println!("rust-hdl  {:>12.0} cycles/s ({h_cycles} cycles, {h_secs:.3} s, driver included)", h);
    println!("icarus    {:>12.0} cycles/s ({} cycles, {:.3} s of vvp)", i, run.cycles, run.seconds);
    println!("verilator / icarus = {:.1}x (target >= 50x), verilator / rust-hdl = {:.1}x (target >= 3x)", v / i, v / h);
    if !full {
        println!("(smoke run; `cargo bench -p onebit-sim --bench sim_speed` measures and writes JSON)");
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/sim-speed.json");
    // The previous run of this bench (on this machine, an earlier design) as the before figure.
    let before = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map(|mut b| {
            if let Some(o) = b.as_object_mut() {
                o.remove("before");
            }
            b
        });
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let json = serde_json::json!({
        "verilator_cycles_per_s": v,
        "verilator_trials_cycles_per_s": trial_rates,
        "target_verilator_cycles_per_s": 1.5e6,
        "load_average": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "before": before,
        "rusthdl_cycles_per_s": h,
        "icarus_cycles_per_s": i,
        "verilator_over_icarus": v / i,
        "verilator_over_rusthdl": v / h,
        "targets": {"verilator_over_icarus": 50.0, "verilator_over_rusthdl": 3.0},
        "design": "sim16 accelerator (16x16)",
        "stimulus": format!("one random layer K={k} N={n} M={m}, no stalls; Verilator and rust-hdl through the driver's stream runner, Icarus through a generated testbench"),
        "cycles": {"verilator": v_cycles, "rusthdl": h_cycles, "icarus": run.cycles},
        "seconds": {"verilator": v_secs, "rusthdl": h_secs, "icarus_vvp": run.seconds},
        "command": if cfg!(debug_assertions) { "cargo bench --profile dev -p onebit-sim --bench sim_speed" } else { "cargo bench -p onebit-sim --bench sim_speed" },
        "profile": if cfg!(debug_assertions) { "dev (simulator crates and dependencies at opt-level 3)" } else { "release" },
    });
    onebit_core::format::write_atomically(&path, (serde_json::to_string_pretty(&json).unwrap() + "\n").as_bytes()).unwrap();
    println!("wrote {}", path.display());
}
