//! `make sim`: build, run thousands of random layers plus the corner-case
//! sweep on the Verilated accelerator, compare each output with the reference,
//! print a verdict table and write bench-results/sim.json. Exits non-zero on
//! any mismatch.

use indicatif::{ProgressBar, ProgressStyle};
use onebit_core::ArrayConfig;
use onebit_sim::suite::{corner_cases, random_case, run_case, Totals};
use onebit_sim::{DeviceOptions, VerilatorDevice};
use std::process::ExitCode;
use std::time::Instant;

struct Args {
    preset: String,
    cases: u64,
    seed: u64,
    json: Option<String>,
    random_init: Option<u32>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args { preset: "sim16".into(), cases: 10_000, seed: 1, json: Some("bench-results/sim.json".into()), random_init: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--preset" => a.preset = val("--preset")?,
            "--cases" => a.cases = val("--cases")?.parse().map_err(|e| format!("--cases: {e}"))?,
            "--seed" => a.seed = val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--json" => a.json = Some(val("--json")?),
            "--no-json" => a.json = None,
            "--random-init" => a.random_init = Some(val("--random-init")?.parse().map_err(|e| format!("--random-init: {e}"))?),
            "--trace" => std::env::set_var("ONEBIT_TRACE", val("--trace")?),
            "-h" | "--help" => {
                println!("onebit-sim [--preset sim16|ice40] [--cases N] [--seed S] [--json FILE | --no-json] [--trace FILE.vcd] [--random-init SEED (with an ONEBIT_X_INITIAL=unique build)]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match ArrayConfig::lookup(&args.preset) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = DeviceOptions { random_init: args.random_init, ..DeviceOptions::from_env() };
    let mut dev = match VerilatorDevice::new(&args.preset, &options) {
        Ok(d) => onebit_driver::PortDevice::new(d, cfg),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!("Verilator co-simulation of the {} accelerator ({cfg})", args.preset);
    let corners = corner_cases(&cfg);
    let total = args.cases + corners.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} cases {per_sec} eta {eta} {msg}").unwrap());
    let start = Instant::now();
    let mut random = Totals::default();
    let mut corner = Totals::default();
    let mut first_failures = Vec::new();
    let mut record = |totals: &mut Totals, label: &str, seed: u64, r: Result<onebit_sim::suite::Outcome, String>| match r {
        Ok(o) => {
            if o.mismatches > 0 && first_failures.len() < 10 {
                first_failures.push(format!("{label} (seed {seed}): {} of {} outputs differ", o.mismatches, o.outputs));
            }
            totals.add(&o);
        }
        Err(e) => {
            if first_failures.len() < 10 {
                first_failures.push(e);
            }
            totals.add(&onebit_sim::suite::Outcome { mismatches: 1, ..Default::default() });
        }
    };
    for i in 0..args.cases {
        let case = random_case(&cfg, args.seed.wrapping_mul(1_000_003).wrapping_add(i), 300);
        let r = run_case(&mut dev, &cfg, &case);
        record(&mut random, &case.label, case.seed, r);
        bar.inc(1);
    }
    for case in &corners {
        let r = run_case(&mut dev, &cfg, case);
        record(&mut corner, &case.label, case.seed, r);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mut all = random;
    for (a, b) in [(&mut all, &corner)] {
        a.cases += b.cases;
        a.failed_cases += b.failed_cases;
        a.mismatches += b.mismatches;
        a.outputs += b.outputs;
        a.cycles += b.cycles;
        a.ideal_cycles += b.ideal_cycles;
    }
    println!();
    println!("{:<14} {:>8} {:>12} {:>14} {:>14} {:>14} {:>12}", "suite", "cases", "mismatches", "outputs", "cycles", "ideal cycles", "utilisation");
    for (name, t) in [("random", &random), ("corner sweep", &corner), ("total", &all)] {
        println!(
            "{:<14} {:>8} {:>12} {:>14} {:>14} {:>14} {:>11.1}%",
            name, t.cases, t.mismatches, t.outputs, t.cycles, t.ideal_cycles, 100.0 * t.utilisation()
        );
    }
    println!("{:.1} s, {:.2} M simulated cycles/s (driver included)", secs, all.cycles as f64 / secs / 1e6);
    for f in &first_failures {
        println!("MISMATCH {f}");
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "preset": args.preset,
            "config": cfg,
            "cases": all.cases,
            "random_cases": random.cases,
            "corner_cases": corner.cases,
            "mismatches": all.mismatches,
            "failed_cases": all.failed_cases,
            "outputs_compared": all.outputs,
            "cycles": all.cycles,
            "ideal_cycles": all.ideal_cycles,
            "utilisation": all.utilisation(),
            "seconds": secs,
            "simulator": "Verilator",
            "x_initial": onebit_sim::X_INITIAL,
            "random_init": args.random_init,
            "command": format!("make sim (cargo run -p onebit-sim --bin onebit-sim -- --preset {} --cases {} --seed {})", args.preset, args.cases, args.seed),
        });
        let text = serde_json::to_string_pretty(&json).unwrap() + "\n";
        if let Err(e) = onebit_core::format::write_atomically(std::path::Path::new(path), text.as_bytes()) {
            eprintln!("error: {path}: {e}");
            return ExitCode::from(2);
        }
        println!("wrote {path}");
    }
    if all.mismatches > 0 {
        println!("FAIL: {} mismatching outputs in {} cases", all.mismatches, all.failed_cases);
        ExitCode::FAILURE
    } else {
        println!("PASS: 0 mismatches in {} cases", all.cases);
        ExitCode::SUCCESS
    }
}
