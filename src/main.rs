//! `onebit`: the command-line front end of the OneBit accelerator project.
//! Each subcommand group lives in its own module under `src/cmd/`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;

#[derive(Parser)]
#[command(name = "onebit", version, about = "OneBit 1-bit LLMs: train, pack, simulate and run on the sign-accumulate accelerator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a 1-bit model file's layers, shapes, bits per weight and size.
    Inspect(cmd::inspect::InspectArgs),
    /// Write a deterministic random 1-bit model file (for demos and tests).
    RandomModel(cmd::inspect::RandomModelArgs),
    /// Run layers on the simulated accelerator against the reference.
    Sim(cmd::sim::SimArgs),
    /// Train a full-precision teacher from scratch on shipped text.
    TrainTeacher(cmd::train::TrainTeacherArgs),
    /// SVID initialisation of a 1-bit student from a teacher.
    Svid(cmd::train::SvidArgs),
    /// Knowledge distillation of a 1-bit student from its teacher.
    Distill(cmd::train::DistillArgs),
    /// Pack a trained student into a 1-bit model file.
    Export(cmd::train::ExportArgs),
    /// Print a model's logits for given token ids.
    Logits(cmd::model::LogitsArgs),
    /// Perplexity of a model on a text file, on any backend.
    Ppl(cmd::model::PplArgs),
    /// Continue a prompt with a model (KV cache), printing tokens as they come.
    Generate(cmd::model::GenerateArgs),
    /// A 1-bit model's perplexity with its teacher, on the f32 layer, the
    /// reference and the Verilated accelerator, side by side (`make ppl`).
    Compare(cmd::eval::CompareArgs),
    /// Reference perplexity against activation, g, lane and h bits.
    Precision(cmd::eval::PrecisionArgs),
    /// Synthesise FPGA bitstreams with open tools.
    Bitstream(cmd::reserved::ReservedArgs),
    /// Run the benchmarks.
    Bench(cmd::reserved::ReservedArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("ONEBIT_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // candle allocates per op; keep freed buffers for reuse (trainer/src/memory.rs).
    onebit_trainer::memory::retain_freed_memory();
    let result = match cli.command {
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::RandomModel(a) => cmd::inspect::random_model(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::TrainTeacher(a) => cmd::train::train_teacher(a),
        Command::Svid(a) => cmd::train::svid(a),
        Command::Distill(a) => cmd::train::distill(a),
        Command::Export(a) => cmd::train::export(a),
        Command::Logits(a) => cmd::model::logits(a),
        Command::Ppl(a) => cmd::model::ppl(a),
        Command::Generate(a) => cmd::model::generate(a),
        Command::Compare(a) => cmd::eval::compare(a),
        Command::Precision(a) => cmd::eval::precision(a),
        Command::Bitstream(a) => cmd::reserved::run("bitstream", "use `make bitstream` (cargo run --release -p onebit-hdl --bin onebit-bitstream; docs/bitstream.md)", a),
        Command::Bench(a) => cmd::reserved::run("bench", "use `make bench`", a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
