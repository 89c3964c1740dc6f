//! `onebit compare` and `onebit precision` (argument parsing only; the work is
//! in the library's `e2e` and `precision` modules).

use anyhow::bail;
use onebit::e2e::{self, CompareOptions, SampleOptions, Split};
use onebit::precision::{self, PrecisionOptions};
use std::path::PathBuf;

/// The command line, recorded in every report.
fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// `--json FILE`: the report there and its plot beside it (`.svg`).
fn save(path: &std::path::Path, report: &serde_json::Value, svg: &str) -> anyhow::Result<()> {
    e2e::write_report(path, report, svg)?;
    eprintln!("wrote {} and {}", path.display(), path.with_extension("svg").display());
    Ok(())
}

/// The shipped model (models/shakespeare-char/README.md).
pub const SHIPPED_MODEL: &str = "models/shakespeare-char/model.onebit";

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// A 1-bit model file (tokenizer.json beside it).
    #[arg(long, default_value = SHIPPED_MODEL)]
    pub model: PathBuf,
    /// Its full-precision teacher (Hugging Face directory or GGUF; default:
    /// `teacher/` beside the model file, when there is one).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Held-out text.
    #[arg(long, default_value = "../shared/data/tinyshakespeare/input.txt")]
    pub data: PathBuf,
    /// `val10`: the last 10 % of the tokens (nanoGPT's validation split); `all`.
    #[arg(long, default_value = "val10")]
    pub split: String,
    /// Tokens per chunk (default: min(2048, the model's context)).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Chunks every row (the hardware's included) is evaluated on.
    #[arg(long, default_value_t = 64)]
    pub chunks: usize,
    /// Also evaluate the software rows over the whole split.
    #[arg(long)]
    pub full_split: bool,
    /// Array configuration of the reference and the Verilated accelerator.
    #[arg(long, default_value = "sim16")]
    pub preset: String,
    /// Software rows only.
    #[arg(long)]
    pub no_hardware: bool,
    /// New tokens of the generated sample (0: none).
    #[arg(long, default_value_t = 0)]
    pub sample_tokens: usize,
    #[arg(long, default_value = "ROMEO:\n")]
    pub prompt: String,
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Write the report here (and its plot, `.svg`, beside it).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn compare(a: CompareArgs) -> anyhow::Result<()> {
    let load_start = e2e::load_average();
    if !a.temperature.is_finite() || a.temperature < 0.0 {
        bail!("--temperature must be a finite number >= 0 (0 = greedy)");
    }
    let opts = CompareOptions {
        teacher: a.teacher.clone().or_else(|| e2e::default_teacher(&a.model)),
        model: a.model,
        data: a.data,
        split: Split::parse(&a.split)?,
        seq_len: a.seq_len,
        chunks: a.chunks,
        full_split: a.full_split,
        preset: a.preset,
        hardware: !a.no_hardware,
        sample: (a.sample_tokens > 0).then(|| SampleOptions {
            prompt: a.prompt,
            tokens: a.sample_tokens,
            temperature: a.temperature,
            seed: a.seed,
        }),
        progress: true,
    };
    let c = e2e::compare(&opts)?;
    super::emit(&c.table())?;
    if let Some(path) = &a.json {
        save(path, &c.to_json(&command_line(), load_start, e2e::load_average()), &c.plot_svg()?)?;
    }
    if let e2e::Verdict::Differs(what) = &c.verdict {
        bail!("the hardware differs from the reference: {what}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct PrecisionArgs {
    /// A 1-bit model file (tokenizer.json beside it).
    #[arg(long, default_value = SHIPPED_MODEL)]
    pub model: PathBuf,
    #[arg(long, default_value = "../shared/data/tinyshakespeare/input.txt")]
    pub data: PathBuf,
    /// `val10` or `all` (as for `compare`).
    #[arg(long, default_value = "val10")]
    pub split: String,
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// At most this many chunks (default: the whole split).
    #[arg(long)]
    pub chunks: Option<usize>,
    /// The preset whose widths are varied one at a time.
    #[arg(long, default_value = "sim16")]
    pub preset: String,
    /// Write the study here (and its plot, `.svg`, beside it).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn precision(a: PrecisionArgs) -> anyhow::Result<()> {
    let load_start = e2e::load_average();
    let opts = PrecisionOptions {
        model: a.model,
        data: a.data,
        split: Split::parse(&a.split)?,
        seq_len: a.seq_len,
        chunks: a.chunks,
        preset: a.preset,
        progress: true,
    };
    let s = precision::study(&opts)?;
    super::emit(&s.table())?;
    if let Some(path) = &a.json {
        save(path, &s.to_json(&command_line(), load_start, e2e::load_average()), &s.plot_svg()?)?;
    }
    Ok(())
}
