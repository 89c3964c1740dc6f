//! Check a programmed board over its UART: run a random layer through the
//! board's byte link and compare every output with the integer reference.
//! `onebit-board-check --port /dev/ttyUSB1 --target ice40|ecp5 [--baud B] [--seed 1] [--k 40 --n 20 --m 3]`
//!
//! The work is `onebit_driver::bytelink::check_board`, the same host loop
//! the tests run against the simulated board. Not yet run against a
//! physical board.

use anyhow::{bail, Context, Result};
use clap::Parser;
use onebit_core::ArrayConfig;
use onebit_driver::bytelink;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Run a random layer on a board programmed by `make bitstream` and compare with the reference")]
struct Args {
    /// The board's serial port (iCEBreaker: usually /dev/ttyUSB1; ULX3S: /dev/ttyUSB0).
    #[arg(long)]
    port: PathBuf,
    /// ice40 (iCEBreaker, array ICE40_UP5K) or ecp5 (ULX3S, array ECP5).
    #[arg(long)]
    target: String,
    /// Baud rate the bitstream was built with (`onebit-bitstream --baud`);
    /// default: that flow's default for the target (ice40 1,500,000, ecp5 1,000,000).
    #[arg(long)]
    baud: Option<u32>,
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
    let (cfg, default_baud) = match args.target.as_str() {
        // The bitstream flow's defaults (hdl/src/bitstream.rs): 24 MHz / 8, 25 MHz / 25.
        "ice40" => (ArrayConfig::ICE40_UP5K, 3_000_000),
        "ecp5" => (ArrayConfig::ECP5, 1_000_000),
        other => bail!("unknown target `{other}` (known: ice40, ecp5)"),
    };
    let port = args.port.display().to_string();
    let link = bytelink::open_serial(&args.port, args.baud.unwrap_or(default_baud)).with_context(|| format!("opening {port}"))?;
    let report = bytelink::check_board(link, cfg, args.k, args.n, args.m, args.seed).with_context(|| format!("board on {port}"))?;
    println!("{}: {report}", args.target);
    if report.wrong > 0 {
        bail!("{} of {} outputs differ from the reference", report.wrong, report.outputs);
    }
    Ok(())
}
