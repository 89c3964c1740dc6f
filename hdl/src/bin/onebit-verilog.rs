//! Write the accelerator's Verilog for one or all presets:
//! `onebit-verilog --preset sim16|ecp5|ice40|all --out build/verilog [--check]`
//! writes <out>/<preset>/onebit_accelerator.v; `--check` then runs
//! `verilator --lint-only -Wall` and yosys elaboration on each file written and
//! fails on any problem.

use anyhow::{bail, Context, Result};
use clap::Parser;
use onebit_core::config::PRESET_NAMES;
use onebit_hdl::presets;
use onebit_hdl::verilog::{self, VerilogError};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(about = "Generate (and optionally lint) the OneBit accelerator's Verilog")]
struct Args {
    /// Preset to generate: sim16, ecp5, ice40 or all.
    #[arg(long, default_value = "all")]
    preset: String,
    /// Output directory; files go to <out>/<preset>/onebit_accelerator.v.
    #[arg(long, default_value = "build/verilog")]
    out: PathBuf,
    /// Lint with Verilator (-Wall) and elaborate with yosys after writing.
    #[arg(long)]
    check: bool,
}

fn generate(preset: &str) -> Result<String, VerilogError> {
    let build_err = |e: onebit_hdl::top::BuildError| VerilogError::Check(e.to_string());
    match preset {
        "sim16" => verilog::generate(&presets::sim16::build().map_err(build_err)?),
        "ecp5" => verilog::generate(&presets::ecp5::build().map_err(build_err)?),
        "ice40" => verilog::generate(&presets::ice40::build().map_err(build_err)?),
        other => Err(VerilogError::Check(format!("no accelerator for preset `{other}`"))),
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().context("output path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = path.with_extension("v.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onebit-verilog: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let presets: Vec<&str> = if args.preset == "all" {
        PRESET_NAMES.to_vec()
    } else if PRESET_NAMES.contains(&args.preset.as_str()) {
        vec![args.preset.as_str()]
    } else {
        bail!(
            "unknown preset `{}` (known: {}, all)",
            args.preset,
            PRESET_NAMES.join(", ")
        );
    };
    for p in presets {
        let text = generate(p).with_context(|| format!("generating the {p} accelerator"))?;
        let path = args.out.join(p).join("onebit_accelerator.v");
        write_atomically(&path, &text)?;
        let modules = text.matches("\nmodule ").count();
        println!(
            "{p}: wrote {} ({} lines, {} modules, {} bytes)",
            path.display(),
            text.lines().count(),
            modules,
            text.len()
        );
        if args.check {
            verilog::verilator_lint(&path).with_context(|| format!("linting {}", path.display()))?;
            println!(
                "{p}: verilator --lint-only -Wall: clean (waivers: {})",
                verilog::VERILATOR_WAIVERS.join(" ")
            );
            verilog::yosys_elaborate(&path).with_context(|| format!("elaborating {}", path.display()))?;
            println!("{p}: yosys hierarchy -check; proc: clean");
        }
    }
    Ok(())
}
