//! `onebit-netlist-check --target ice40|ecp5`: `make bitstream`'s
//! post-synthesis check (`onebit_sim::netlist_check::check_bitstream_netlist`;
//! this binary only parses the arguments and prints). The board netlist a
//! bitstream is made from (build/bitstream/<target>/netlist.v, described by
//! netlist.json) runs random layers over its UART against the reference, in
//! Icarus (the iCE40's default) or Verilator (the ECP5's). Writes its report into bench-results/netlist-check.json (one
//! entry per target) and exits 1 on any mismatch, error flag or stopped board.

use onebit_sim::netlist_check::{check_bitstream_netlist, merge_json_entry, BitstreamCheck};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "onebit-netlist-check --target ice40|ecp5 [--dir build/bitstream] [--cases N] [--seed S] \
[--max-k K] [--max-n N] [--max-m M] [--stall P] [--timeout-s T] [--simulator icarus|verilator] [--json FILE | --no-json]";

struct Args {
    target: String,
    dir: PathBuf,
    check: BitstreamCheck,
    json: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        target: String::new(),
        dir: "build/bitstream".into(),
        check: BitstreamCheck::default(),
        json: Some("bench-results/netlist-check.json".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| v.parse::<u64>().map_err(|e| format!("{name}: `{v}`: {e}"));
        let c = &mut a.check;
        match arg.as_str() {
            "--target" => a.target = val("--target")?,
            "--dir" => a.dir = val("--dir")?.into(),
            "--cases" => c.cases = Some(num("--cases", val("--cases")?)? as usize),
            "--seed" => c.seed = Some(num("--seed", val("--seed")?)?),
            "--max-k" => c.max_k = Some(num("--max-k", val("--max-k")?)? as usize),
            "--max-n" => c.max_n = Some(num("--max-n", val("--max-n")?)? as usize),
            "--max-m" => c.max_m = Some(num("--max-m", val("--max-m")?)? as usize),
            "--stall" => c.stall = Some(val("--stall")?.parse().map_err(|e| format!("--stall: {e}"))?),
            "--timeout-s" => c.timeout = Some(Duration::from_secs(num("--timeout-s", val("--timeout-s")?)?)),
            "--simulator" => c.simulator = Some(val("--simulator")?.parse()?),
            "--json" => a.json = Some(val("--json")?.into()),
            "--no-json" => a.json = None,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if a.target.is_empty() {
        return Err("--target is required".into());
    }
    a.check.dir = a.dir.join(&a.target);
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("== post-synthesis check of {} (the family's cell models)", args.check.dir.join("netlist.v").display());
    let r = match check_bitstream_netlist(&args.check) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "   {}: {} random layers up to K {} N {} M {}, UART divisor {}, stall {}",
        r.array_config, r.cases, r.max_k, r.max_n, r.max_m, r.uart_divisor, r.stall
    );
    for c in &r.report.cases {
        println!(
            "   K {:>3} N {:>3} M {}: {} bytes sent, {} received, {} words, {} mismatches",
            c.k, c.n, c.m, c.bytes_sent, c.bytes_received, c.words, c.mismatches
        );
    }
    let rep = &r.report;
    println!(
        "{}: {} words, {} mismatches, {} cycles in {:.1} s of {:?} ({:.0} cycles/s; compiled in {:.0} s), error LED lit {} cycles, {} frame errors",
        if r.passed { "PASS" } else { "FAIL" },
        rep.words,
        rep.mismatches,
        rep.cycles,
        rep.vvp_seconds,
        rep.simulator,
        rep.cycles as f64 / rep.vvp_seconds.max(1e-9),
        rep.compile_seconds,
        rep.led_error_cycles,
        rep.frame_errors
    );
    if let Some(json) = &args.json {
        let mut entry = serde_json::to_value(&r).expect("the result serialises");
        entry["command"] = std::env::args().collect::<Vec<_>>().join(" ").into();
        entry["load_average"] = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
            .into();
        if let Err(e) = merge_json_entry(json, &args.target, entry) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        println!("wrote {}", json.display());
    }
    if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
