//! Check a programmed board over its UART: run a random layer through the
//! board's byte link and compare every output with the integer reference.
//! `onebit-board-check --port /dev/ttyUSB1 --target ice40|ecp5 [--baud 115200] [--seed 1] [--k 40 --n 20 --m 3]`
//!
//! The port is put into raw mode with `stty` (8N1, no flow control, a 2 s
//! read timeout), then driven by `onebit_driver::bytelink::run_transport`,
//! the same host loop the tests run against the simulated board top
//! (hdl/tests/hdl/bridge.rs). Not yet run against a physical board.

use anyhow::{bail, Context, Result};
use clap::Parser;
use ndarray::Array2;
use onebit_core::reference::integer_forward_naive;
use onebit_core::synth::{random_layer, SplitMix64};
use onebit_core::ArrayConfig;
use onebit_driver::{bytelink, Program};
use std::path::PathBuf;
use std::process::Command;

#[derive(Parser)]
#[command(
    about = "Run a random layer on a board programmed by `make bitstream` and compare with the reference"
)]
struct Args {
    /// The board's serial port (iCEBreaker: usually /dev/ttyUSB1; ULX3S: /dev/ttyUSB0).
    #[arg(long)]
    port: PathBuf,
    /// ice40 (iCEBreaker, array ICE40_UP5K) or ecp5 (ULX3S, array ECP5).
    #[arg(long)]
    target: String,
    /// Baud rate the bitstream was built with (`onebit-bitstream --baud`).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Inputs K, outputs N, tokens M of the random layer.
    #[arg(long, default_value_t = 40)]
    k: usize,
    #[arg(long, default_value_t = 20)]
    n: usize,
    #[arg(long, default_value_t = 3)]
    m: usize,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onebit-board-check: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let cfg = match args.target.as_str() {
        "ice40" => ArrayConfig::ICE40_UP5K,
        "ecp5" => ArrayConfig::ECP5,
        other => bail!("unknown target `{other}` (known: ice40, ecp5)"),
    };
    if args.k == 0 || args.n == 0 || args.m == 0 {
        bail!("--k, --n and --m must be at least 1");
    }
    let port = args.port.display().to_string();
    let status = Command::new("stty")
        .args(["-F", &port, &args.baud.to_string()])
        .args([
            "raw", "-echo", "cs8", "-cstopb", "-parenb", "-crtscts", "-ixon", "-ixoff",
        ])
        .args(["min", "0", "time", "20"])
        .status()
        .context("cannot run stty")?;
    if !status.success() {
        bail!("stty could not configure {port}");
    }
    let mut link = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&args.port)
        .with_context(|| format!("cannot open {port}"))?;
    let mut rng = SplitMix64(args.seed);
    let layer = random_layer(&mut rng, args.k, args.n)
        .quantize(&cfg)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (lo, hi) = ArrayConfig::port_range(cfg.act_bits);
    let x = Array2::from_shape_fn((args.m, args.k), |_| rng.range_i64(lo, hi) as i32);
    let want = integer_forward_naive(&cfg, &layer, x.view()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let program = Program::compile(&cfg, &layer, x.view()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = std::time::Instant::now();
    let words = bytelink::run_transport(&mut link, &program)
        .with_context(|| format!("talking to {port}"))?;
    let got = program
        .assemble(&words)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let wrong = got.iter().zip(want.iter()).filter(|(a, b)| a != b).count();
    println!(
        "{}: K={} N={} M={}: {} outputs in {secs:.2} s, {wrong} differ from the reference",
        args.target,
        args.k,
        args.n,
        args.m,
        want.len()
    );
    if wrong > 0 {
        bail!(
            "{wrong} of {} outputs differ from integer_forward_naive",
            want.len()
        );
    }
    Ok(())
}
