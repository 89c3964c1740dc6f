//! Post-synthesis check of a board: the synthesised netlist of a board top
//! (UART + byte bridge + accelerator, yosys output written as Verilog),
//! simulated in Icarus on the family's cell models, runs random layers sent
//! over its serial line, with random idle gaps between bytes (the stalls a
//! UART link has), and every output word is compared with
//! `integer_forward_naive`.
//!
//! The testbench plays the host: it opens with a break (the board's reset),
//! sends the driver's byte stream (`bytelink::encode`, the same bytes a real
//! board gets), waits after each DRAIN for its output bytes as the host
//! rules say, and writes every byte the board sends to a file. Rust decodes
//! those bytes into beats, assembles them into the layer's words and counts
//! the words that differ from the reference. A board that stops sending
//! gives an error naming the case, the layer and the DRAIN it waited for.

use onebit_core::config::ArrayConfig;
use onebit_core::reference::integer_forward_naive;
use onebit_core::synth::{random_activations, random_quantized_layer, SplitMix64};
use onebit_core::wire::framing;
use onebit_driver::bytelink;
use onebit_driver::{Job, Program};
use onebit_hdl::verilog::{cell_models, Family};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The Verilog of a board netlist and what it simulates with.
#[derive(Debug, Clone)]
pub struct BoardNetlist {
    /// The netlist and the cell models, in compile order.
    pub files: Vec<PathBuf>,
    /// The board's module (`top`, or `board` around a PLL), ports `clock`,
    /// `uart_rx`, `uart_tx`, `led_error`, `led_alive`.
    pub top: String,
    /// Directories the cell models' `` `include``s resolve in.
    pub include_dirs: Vec<PathBuf>,
}

/// The simulator that runs the netlist and its testbench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Simulator {
    /// Icarus Verilog (`iverilog` + `vvp`): four-state, so a byte with
    /// unknown bits shows; a few hundred cycles per second on the 32×32
    /// ECP5 netlist.
    Icarus,
    /// Verilator (`--binary --timing`, the testbench's delays and events as
    /// coroutines): two-state (registers without a power-up value start at
    /// 0), compiled once, then thousands of times faster than Icarus on a
    /// large netlist.
    Verilator,
}

impl std::str::FromStr for Simulator {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "icarus" => Ok(Simulator::Icarus),
            "verilator" => Ok(Simulator::Verilator),
            other => Err(format!("unknown simulator `{other}` (known: icarus, verilator)")),
        }
    }
}

/// What to run on it.
#[derive(Debug, Clone)]
pub struct NetlistCheckOptions {
    /// The board's accelerator configuration.
    pub config: ArrayConfig,
    /// The board's UART divisor (clock cycles per bit).
    pub divisor: u32,
    /// Random layers to run, one after another in one simulation.
    pub cases: usize,
    /// Largest K, N and M of a random layer (each drawn from 1 to its maximum).
    pub max_k: usize,
    pub max_n: usize,
    pub max_m: usize,
    pub seed: u64,
    /// Probability that a byte waits 1 to 3 character times before it is sent.
    pub stall: f64,
    /// Wall-clock limit of the simulation.
    pub timeout: Duration,
    /// The board drives its LEDs low to light them (iCEBreaker).
    pub leds_active_low: bool,
    pub simulator: Simulator,
}

impl NetlistCheckOptions {
    /// Layers from one tile up to a little over two tiles each way (K and N
    /// not multiples of the array), 3 tokens at most.
    pub fn for_config(config: ArrayConfig, divisor: u32) -> Self {
        NetlistCheckOptions {
            config,
            divisor,
            cases: 3,
            max_k: 2 * config.rows + 1,
            max_n: 2 * config.cols + 1,
            max_m: 3,
            seed: 1,
            stall: 0.05,
            timeout: Duration::from_secs(3600),
            leds_active_low: false,
            simulator: Simulator::Icarus,
        }
    }
}

/// One random layer's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseReport {
    pub k: usize,
    pub n: usize,
    pub m: usize,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    pub words: usize,
    pub mismatches: usize,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetlistCheckReport {
    pub cases: Vec<CaseReport>,
    pub words: usize,
    pub mismatches: usize,
    /// The simulator, the clock cycles simulated, and how long the
    /// simulation took for them (`vvp_seconds`, whichever simulator ran it)
    /// and the compile of the netlist and testbench before.
    pub simulator: Simulator,
    pub cycles: u64,
    pub vvp_seconds: f64,
    pub compile_seconds: f64,
    /// Cycles in which the board's error LED was lit, and stop bits of 0 it sent.
    pub led_error_cycles: u64,
    pub frame_errors: u64,
}

impl NetlistCheckReport {
    /// Every word equal to the reference and no error flagged by the board.
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.led_error_cycles == 0 && self.frame_errors == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetlistCheckError {
    #[error("{0}")]
    Io(String),
    #[error("{simulator} rejected the netlist {file}:\n{log}")]
    Compile { simulator: String, file: String, log: String },
    #[error("the simulation of {file} ran past its {seconds} s limit")]
    WallTimeout { file: String, seconds: u64 },
    #[error("board stopped: case {case} (K {k}, N {n}, M {m}), DRAIN {drain}: {got} of {want} output bytes arrived (simulation log:\n{log})")]
    Stopped { case: usize, k: usize, n: usize, m: usize, drain: usize, got: u64, want: u64, log: String },
    #[error("the board's output does not decode: {0}")]
    Output(String),
}

/// One step of the host's script: send a byte after `gap` idle cycles, or
/// wait until `total` output bytes have arrived.
enum HostStep {
    Send { gap: u32, byte: u8 },
    Wait { total: usize, case: usize, drain: usize },
}

impl HostStep {
    /// 32-bit stimulus word: [31:30] 0 send / 1 wait, [29:8] gap, [7:0] byte;
    /// a wait holds its byte count in [29:0].
    fn word(&self) -> u32 {
        match *self {
            HostStep::Send { gap, byte } => (gap.min((1 << 22) - 1) << 8) | byte as u32,
            HostStep::Wait { total, .. } => (1 << 30) | total as u32,
        }
    }
}

struct Case {
    program: Program,
    want: ndarray::Array2<i64>,
    report: CaseReport,
    received: std::ops::Range<usize>,
}

/// Run `opts.cases` random layers on the board netlist in `work_dir`.
pub fn check_board_netlist(
    netlist: &BoardNetlist,
    opts: &NetlistCheckOptions,
    work_dir: &Path,
) -> Result<NetlistCheckReport, NetlistCheckError> {
    let cfg = opts.config;
    let io = |what: &str, e: std::io::Error| NetlistCheckError::Io(format!("{what}: {e}"));
    std::fs::create_dir_all(work_dir).map_err(|e| io(&work_dir.display().to_string(), e))?;
    let mut rng = SplitMix64(opts.seed);
    let char_cycles = 10 * opts.divisor;
    let per_beat = framing::output_beat_bytes(&cfg);
    let mut steps = vec![];
    let mut cases = vec![];
    let mut total = 0usize;
    for case in 0..opts.cases {
        let pick = |rng: &mut SplitMix64, max: usize| 1 + (rng.next_u64() % max.max(1) as u64) as usize;
        let (k, n, m) = (pick(&mut rng, opts.max_k), pick(&mut rng, opts.max_n), pick(&mut rng, opts.max_m));
        let layer = random_quantized_layer(&mut rng, &cfg, k, n);
        let x = random_activations(&mut rng, &cfg, m, k);
        let want = integer_forward_naive(&cfg, &layer, x.view()).map_err(|e| NetlistCheckError::Io(e.to_string()))?;
        let program = Program::compile(&cfg, &layer, x.view()).map_err(|e| NetlistCheckError::Io(e.to_string()))?;
        let segments = bytelink::encode(&Job::of(&program)).map_err(|e| NetlistCheckError::Io(e.to_string()))?;
        let start = total;
        let mut sent = 0;
        for (drain, seg) in segments.iter().enumerate() {
            for &byte in &seg.bytes {
                let gap = if (rng.unit() as f64) < opts.stall { char_cycles * (1 + (rng.next_u64() % 3) as u32) } else { 0 };
                steps.push(HostStep::Send { gap, byte });
            }
            sent += seg.bytes.len();
            total += seg.outputs_after * per_beat;
            if seg.outputs_after > 0 {
                steps.push(HostStep::Wait { total, case, drain });
            }
        }
        cases.push(Case {
            program,
            want,
            report: CaseReport { k, n, m, bytes_sent: sent, bytes_received: total - start, words: m * n, mismatches: 0 },
            received: start..total,
        });
    }
    let stim: String = steps.iter().map(|s| format!("{:08x}\n", s.word())).collect();
    std::fs::write(work_dir.join("stim.hex"), stim).map_err(|e| io("stim.hex", e))?;
    // A wait may last its bytes' time several times over (a DRAIN's flush,
    // the board's own pace) before the board counts as stopped.
    let wait_limit = 4 * char_cycles as u64 * (cfg.out_beat_bits().div_ceil(8) as u64 + 2) + 100_000;
    std::fs::write(work_dir.join("tb.v"), testbench(&netlist.top, opts.divisor, steps.len(), wait_limit, !opts.leds_active_low)).map_err(|e| io("tb.v", e))?;

    let design = netlist.files.first().map(|p| p.display().to_string()).unwrap_or_default();
    // Long work shows progress: the ECP5 board netlist compiles for tens of minutes.
    let spin = indicatif::ProgressBar::new_spinner();
    spin.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("static template"));
    spin.enable_steady_tick(Duration::from_millis(200));
    let compiling = Instant::now();
    let (tool, out) = match opts.simulator {
        Simulator::Icarus => {
            spin.set_message(format!("iverilog: compiling {design}"));
            let mut compile = Command::new("iverilog");
            compile
                .current_dir(work_dir)
                // iCE40's cell models give inputs default values, which Icarus does not parse.
                .args(["-g2012", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "-o", "tb.vvp", "-s", "tb", "tb.v"]);
            for d in &netlist.include_dirs {
                compile.arg("-I").arg(d);
            }
            compile.args(&netlist.files);
            ("iverilog", compile.output().map_err(|e| io("iverilog (make deps installs it)", e))?)
        }
        Simulator::Verilator => {
            spin.set_message(format!("verilator: compiling {design}"));
            let mut compile = Command::new("verilator");
            // A cell library is not lint-clean, and the models' timescales
            // differ from the netlist's (none); the C++ is compiled for a
            // short build, split so make runs its parts in parallel.
            compile.current_dir(work_dir).args([
                "--binary",
                "--timing",
                "-Wno-fatal",
                "-Wno-lint",
                "-Wno-style",
                "-Wno-MULTIDRIVEN",
                "-Wno-TIMESCALEMOD",
                "-Wno-COMBDLY",
                "-DNO_ICE40_DEFAULT_ASSIGNMENTS",
                "--x-assign",
                "0",
                "--x-initial",
                "0",
                "--output-split",
                "20000",
                "-j",
                "0",
                "-MAKEFLAGS",
                "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1",
                "--top-module",
                "tb",
                "-o",
                "tbsim",
                "tb.v",
            ]);
            for d in &netlist.include_dirs {
                compile.arg(format!("-I{}", d.display()));
            }
            compile.args(&netlist.files);
            ("verilator", compile.output().map_err(|e| io("verilator (make deps installs it)", e))?)
        }
    };
    let compile_seconds = compiling.elapsed().as_secs_f64();
    spin.finish_and_clear();
    if !out.status.success() {
        let mut log = String::from_utf8_lossy(&out.stderr).into_owned();
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(NetlistCheckError::Compile { simulator: tool.into(), file: design, log });
    }
    // The simulator's output goes to a file, not a pipe: a long run that
    // prints more than a pipe holds would otherwise block.
    let log_path = work_dir.join("vvp.log");
    let log_file = std::fs::File::create(&log_path).map_err(|e| io("vvp.log", e))?;
    let log_err = log_file.try_clone().map_err(|e| io("vvp.log", e))?;
    let started = Instant::now();
    let mut run = match opts.simulator {
        Simulator::Icarus => {
            let mut c = Command::new("vvp");
            c.arg("tb.vvp");
            c
        }
        Simulator::Verilator => Command::new(work_dir.join("obj_dir").join("tbsim")),
    };
    let mut child = run.current_dir(work_dir).stdout(log_file).stderr(log_err).spawn().map_err(|e| io("the simulation", e))?;
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("vvp: {pos}/{len} output bytes {bar:30} [{elapsed}, eta {eta}]").expect("static template"),
    );
    let received_path = work_dir.join("received.hex");
    loop {
        if child.try_wait().map_err(|e| io("vvp", e))?.is_some() {
            break;
        }
        // Each received byte is one line of three characters.
        bar.set_position(std::fs::metadata(&received_path).map(|m| m.len() / 3).unwrap_or(0));
        if started.elapsed() > opts.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NetlistCheckError::WallTimeout { file: design, seconds: opts.timeout.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let vvp_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let log = std::fs::read_to_string(&log_path).map_err(|e| io("vvp.log", e))?;
    if let Some(line) = log.lines().find(|l| l.starts_with("STOPPED")) {
        // "STOPPED step=I got=G want=W"
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name).and_then(|v| v.parse().ok()))
                .unwrap_or(0)
        };
        let (got, want) = (field("got="), field("want="));
        let (case, drain) = match steps.get(field("step=") as usize) {
            Some(HostStep::Wait { case, drain, .. }) => (*case, *drain),
            _ => (0, 0),
        };
        let r = &cases[case.min(cases.len() - 1)].report;
        return Err(NetlistCheckError::Stopped { case, k: r.k, n: r.n, m: r.m, drain, got, want, log });
    }
    let Some(summary) = log.lines().find(|l| l.starts_with("NETLIST")) else {
        return Err(NetlistCheckError::Output(format!("the testbench ended without its summary:\n{log}")));
    };
    let field = |name: &str| -> u64 {
        summary.split_whitespace().find_map(|f| f.strip_prefix(name).and_then(|v| v.parse().ok())).unwrap_or(0)
    };
    let text = std::fs::read_to_string(work_dir.join("received.hex")).map_err(|e| io("received.hex", e))?;
    let received = parse_received(&text)?;
    if received.len() != total {
        return Err(NetlistCheckError::Output(format!(
            "the board sent {} bytes, the program's outputs are {total}",
            received.len()
        )));
    }
    let mut words = 0;
    let mut mismatches = 0;
    let mut reports = vec![];
    for mut c in cases {
        let beats = bytelink::decode_beats(&cfg, &received[c.received.clone()]);
        let got = c.program.assemble(&beats).map_err(|e| NetlistCheckError::Output(e.to_string()))?;
        c.report.mismatches = got.iter().zip(c.want.iter()).filter(|(a, b)| a != b).count();
        words += c.report.words;
        mismatches += c.report.mismatches;
        reports.push(c.report);
    }
    Ok(NetlistCheckReport {
        cases: reports,
        words,
        mismatches,
        simulator: opts.simulator,
        cycles: field("cycles="),
        vvp_seconds,
        compile_seconds,
        led_error_cycles: field("led_error_cycles="),
        frame_errors: field("frame_errors="),
    })
}

/// What `onebit-netlist-check` runs: the board netlist a `make bitstream` run
/// left in `dir` (build/bitstream/<target>/netlist.json and netlist.v), with
/// the layer sizes and stalls overridden where given.
#[derive(Debug, Clone, Default)]
pub struct BitstreamCheck {
    pub dir: PathBuf,
    pub cases: Option<usize>,
    pub seed: Option<u64>,
    pub max_k: Option<usize>,
    pub max_n: Option<usize>,
    pub max_m: Option<usize>,
    pub stall: Option<f64>,
    pub timeout: Option<Duration>,
    /// The simulator; default Icarus for the iCE40, Verilator for the ECP5.
    pub simulator: Option<Simulator>,
}

/// Its result: what was run and what came out.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BitstreamCheckResult {
    pub target: String,
    pub netlist: String,
    pub array_config: String,
    pub uart_divisor: u32,
    pub seed: u64,
    pub cases: usize,
    pub max_k: usize,
    pub max_n: usize,
    pub max_m: usize,
    pub stall: f64,
    pub passed: bool,
    pub report: NetlistCheckReport,
    pub wall_s: f64,
}

/// Read `dir`/netlist.json (written by the bitstream flow after synthesis),
/// simulate the netlist on its family's cell models and compare it with the
/// reference. The defaults: on the iCE40, Icarus and three layers up to a
/// little over two tiles each way; on the 32×32 ECP5, whose netlist of about
/// 100 k cells Icarus runs at under 50 cycles per second, Verilator and one
/// layer of up to two K tiles and a little over one N tile, two tokens.
pub fn check_bitstream_netlist(c: &BitstreamCheck) -> Result<BitstreamCheckResult, String> {
    let meta_path = c.dir.join("netlist.json");
    let meta: serde_json::Value = std::fs::read_to_string(&meta_path)
        .map_err(|e| format!("{}: {e} (make bitstream writes it after synthesis; `onebit-bitstream --synth-only` only that)", meta_path.display()))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{}: not JSON: {e}", meta_path.display())))?;
    let field = |key: &str| meta.get(key).ok_or_else(|| format!("{}: no `{key}`", meta_path.display()));
    let text = |key: &str| -> Result<String, String> {
        field(key)?.as_str().map(String::from).ok_or_else(|| format!("{}: `{key}` is not a string", meta_path.display()))
    };
    let target = text("target")?;
    let family = match text("family")?.as_str() {
        "ice40" => Family::Ice40,
        "ecp5" => Family::Ecp5,
        other => return Err(format!("{}: family `{other}` is not ice40 or ecp5", meta_path.display())),
    };
    let config = ArrayConfig::lookup(&text("config_name")?).map_err(|e| format!("{}: {e}", meta_path.display()))?;
    let divisor = field("uart_divisor")?
        .as_u64()
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| format!("{}: `uart_divisor` is not a count", meta_path.display()))?;
    let leds_active_low = field("leds_active_low")?
        .as_bool()
        .ok_or_else(|| format!("{}: `leds_active_low` is not true or false", meta_path.display()))?;
    let top = text("top_module")?;
    let netlist = PathBuf::from(text("netlist")?);
    if !netlist.is_file() {
        return Err(format!("{}: not found (make bitstream TARGET={target} writes it)", netlist.display()));
    }
    let work = c.dir.join("netlist-check");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let cells = cell_models(family, &work).map_err(|e| e.to_string())?;
    let mut files = vec![netlist.canonicalize().map_err(|e| format!("{}: {e}", netlist.display()))?];
    files.extend(cells.files);

    let mut opts = NetlistCheckOptions::for_config(config, divisor);
    opts.leds_active_low = leds_active_low;
    opts.simulator = c.simulator.unwrap_or(if family == Family::Ecp5 { Simulator::Verilator } else { Simulator::Icarus });
    if family == Family::Ecp5 {
        // Verilator runs the 32×32 netlist at about 1.4 k cycles/s (after a
        // 20-minute compile): one layer of up to two K tiles and a little
        // over one N tile, two tokens, about 15 minutes. Icarus, at under
        // 50 cycles/s, gets a layer within about a tile.
        (opts.cases, opts.max_k, opts.max_n, opts.max_m) = match opts.simulator {
            Simulator::Verilator => (1, 2 * config.rows + 1, config.cols + 5, 2),
            Simulator::Icarus => (1, 9, 5, 1),
        };
    }
    opts.cases = c.cases.unwrap_or(opts.cases);
    opts.seed = c.seed.unwrap_or(opts.seed);
    opts.max_k = c.max_k.unwrap_or(opts.max_k);
    opts.max_n = c.max_n.unwrap_or(opts.max_n);
    opts.max_m = c.max_m.unwrap_or(opts.max_m);
    opts.stall = c.stall.unwrap_or(opts.stall);
    opts.timeout = c.timeout.unwrap_or(Duration::from_secs(4 * 3600));
    let started = Instant::now();
    let report = check_board_netlist(&BoardNetlist { files, include_dirs: cells.include_dirs, top }, &opts, &work)
        .map_err(|e| format!("{}: {e}", netlist.display()))?;
    Ok(BitstreamCheckResult {
        target,
        netlist: netlist.display().to_string(),
        array_config: config.to_string(),
        uart_divisor: divisor,
        seed: opts.seed,
        cases: opts.cases,
        max_k: opts.max_k,
        max_n: opts.max_n,
        max_m: opts.max_m,
        stall: opts.stall,
        passed: report.passed(),
        report,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Put `entry` under `key` in the JSON object at `path` (other keys kept;
/// a missing or unreadable file starts empty), written atomically.
pub fn merge_json_entry(path: &Path, key: &str, entry: serde_json::Value) -> Result<(), String> {
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    all.insert(key.to_string(), entry);
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(all)).map_err(|e| e.to_string())?;
    onebit_core::format::write_atomically(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes written by the testbench, one hex pair per line; a byte with an
/// unknown bit (x or z from the netlist) is an error.
fn parse_received(text: &str) -> Result<Vec<u8>, NetlistCheckError> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            u8::from_str_radix(l.trim(), 16)
                .map_err(|_| NetlistCheckError::Output(format!("output byte {i} is `{}` (unknown bits)", l.trim())))
        })
        .collect()
}

/// The host as a testbench: everything on the falling edge, so that the
/// board's registers never race the host's line.
fn testbench(top: &str, divisor: u32, steps: usize, wait_limit: u64, lit: bool) -> String {
    format!(
        r#"`timescale 1ns / 1ps
module tb;
  localparam DIV = {divisor};
  // The level that lights an LED on this board.
  localparam LIT = 1'b{lit};
  reg clock = 1'b0;
  always #5 clock = ~clock;
  reg uart_rx = 1'b1;
  wire uart_tx, led_error, led_alive;
  {top} dut(.clock(clock), .uart_rx(uart_rx), .uart_tx(uart_tx), .led_error(led_error), .led_alive(led_alive));
  reg [31:0] stim [0:{last}];
  reg [7:0] rx_byte;
  reg [63:0] cycles = 0, led_error_cycles = 0, frame_errors = 0, rx_count = 0, waited;
  integer out_file, i, b, j;
  always @(negedge clock) begin
    cycles = cycles + 1;
    if (led_error === LIT) led_error_cycles = led_error_cycles + 1;
  end
  // The host's receiver: a start bit, 8 data bits and the stop bit, each
  // sampled in its middle.
  initial begin
    out_file = $fopen("received.hex", "w");
    forever begin
      @(negedge clock);
      if (uart_tx === 1'b0) begin
        repeat (DIV / 2) @(negedge clock);
        for (b = 0; b < 8; b = b + 1) begin
          repeat (DIV) @(negedge clock);
          rx_byte[b] = uart_tx;
        end
        repeat (DIV) @(negedge clock);
        if (uart_tx !== 1'b1) frame_errors = frame_errors + 1;
        $fdisplay(out_file, "%h", rx_byte);
        $fflush(out_file);
        rx_count = rx_count + 1;
      end
    end
  end
  task send_byte(input [7:0] v);
    begin
      uart_rx = 1'b0;
      repeat (DIV) @(negedge clock);
      for (j = 0; j < 8; j = j + 1) begin
        uart_rx = v[j];
        repeat (DIV) @(negedge clock);
      end
      uart_rx = 1'b1;
      repeat (DIV) @(negedge clock);
    end
  endtask
  initial begin
    $readmemh("stim.hex", stim);
    // A break (the line low for three character times, then idle for three):
    // the board's reset, as a host recovers a board.
    @(negedge clock);
    uart_rx = 1'b0;
    repeat (30 * DIV) @(negedge clock);
    uart_rx = 1'b1;
    repeat (30 * DIV) @(negedge clock);
    led_error_cycles = 0;
    for (i = 0; i < {steps}; i = i + 1) begin
      if (stim[i][31:30] == 2'd0) begin
        repeat (stim[i][29:8]) @(negedge clock);
        send_byte(stim[i][7:0]);
      end else begin
        waited = 0;
        while (rx_count < stim[i][29:0] && waited < {wait_limit}) begin
          @(negedge clock);
          waited = waited + 1;
        end
        if (rx_count < stim[i][29:0]) begin
          $display("STOPPED step=%0d got=%0d want=%0d", i, rx_count, stim[i][29:0]);
          $fclose(out_file);
          $finish;
        end
      end
    end
    // Bytes beyond the program's would arrive here.
    repeat (40 * DIV) @(negedge clock);
    $fclose(out_file);
    $display("NETLIST cycles=%0d received=%0d frame_errors=%0d led_error_cycles=%0d", cycles, rx_count, frame_errors, led_error_cycles);
    $finish;
  end
endmodule
"#,
        last = steps.max(1) - 1,
        lit = lit as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_netlist_description_is_named() {
        let dir = std::env::temp_dir().join(format!("onebit-netlist-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let check = BitstreamCheck { dir: dir.clone(), ..Default::default() };
        let e = check_bitstream_netlist(&check).unwrap_err();
        assert!(e.contains("netlist.json") && e.contains("make bitstream"), "{e}");
        let meta = dir.join("netlist.json");
        std::fs::write(&meta, "{ not json").unwrap();
        assert!(check_bitstream_netlist(&check).unwrap_err().contains("not JSON"));
        let good = serde_json::json!({"target": "ice40", "family": "ice40", "config_name": "ice40_up5k",
            "uart_divisor": 8, "leds_active_low": true, "top_module": "board",
            "netlist": dir.join("netlist.v").display().to_string()});
        for (key, bad, want) in [
            ("family", serde_json::json!("xilinx"), "family `xilinx`"),
            ("config_name", serde_json::json!("nope"), "nope"),
            ("uart_divisor", serde_json::json!(-3), "uart_divisor"),
            ("leds_active_low", serde_json::json!("yes"), "leds_active_low"),
        ] {
            let mut m = good.clone();
            m[key] = bad;
            std::fs::write(&meta, m.to_string()).unwrap();
            let e = check_bitstream_netlist(&check).unwrap_err();
            assert!(e.contains(want) && e.contains("netlist.json"), "{key}: {e}");
        }
        let mut m = good.clone();
        m.as_object_mut().unwrap().remove("top_module");
        std::fs::write(&meta, m.to_string()).unwrap();
        assert!(check_bitstream_netlist(&check).unwrap_err().contains("no `top_module`"));
        // Described well, but the netlist itself is missing.
        std::fs::write(&meta, good.to_string()).unwrap();
        let e = check_bitstream_netlist(&check).unwrap_err();
        assert!(e.contains("netlist.v") && e.contains("not found"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stimulus_words_and_received_bytes() {
        assert_eq!(HostStep::Send { gap: 3, byte: 0xa5 }.word(), 0x0000_03a5);
        assert_eq!(HostStep::Wait { total: 7, case: 0, drain: 0 }.word(), 0x4000_0007);
        assert_eq!(parse_received("0a\nff\n\n").unwrap(), vec![0x0a, 0xff]);
        let e = parse_received("0a\nxx\n").unwrap_err().to_string();
        assert!(e.contains("output byte 1") && e.contains("xx"), "{e}");
    }
}
