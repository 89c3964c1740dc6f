//! `onebit inspect` and `onebit random-model`.

use anyhow::Context;
use onebit_core::format::OneBitModel;
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A 1-bit model file (safetensors with `onebit` metadata).
    pub model: PathBuf,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InspectArgs) -> anyhow::Result<()> {
    let model = OneBitModel::load(&a.model)?;
    let bytes = std::fs::metadata(&a.model).with_context(|| format!("{}", a.model.display()))?.len();
    let s = model.summary(bytes);
    let mut o = String::new();
    if a.json {
        return super::emit(&(serde_json::to_string_pretty(&s)? + "\n"));
    }
    let _ = writeln!(o, "{} (format version {})", a.model.display(), s.format_version);
    let _ = writeln!(o, "{:<44} {:>8} {:>8} {:>12} {:>9}", "1-bit linear", "in (K)", "out (N)", "bytes", "bits/w");
    for l in &s.linears {
        let _ = writeln!(o, "{:<44} {:>8} {:>8} {:>12} {:>9.4}", l.name, l.in_features, l.out_features, l.bytes, l.bits_per_weight);
    }
    if !s.full_precision_tensors.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{:<44} {:>20} {:>6}", "full-precision tensor", "shape", "dtype");
        for t in &s.full_precision_tensors {
            let _ = writeln!(o, "{:<44} {:>20} {:>6}", t.name, format!("{:?}", t.shape), format!("{:?}", t.dtype));
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "1-bit linears:        {} ({} parameters, {} bytes, {:.4} bits per weight)", s.linears.len(), s.onebit_parameters, s.onebit_bytes, s.bits_per_weight);
    let _ = writeln!(o, "full precision:       {} tensors ({} parameters, {} bytes)", s.full_precision_tensors.len(), s.full_precision_parameters, s.full_precision_bytes);
    let _ = writeln!(o, "file size:            {} bytes", s.file_bytes);
    super::emit(&o)
}

#[derive(clap::Args, Debug)]
pub struct RandomModelArgs {
    /// Where to write the model file.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    #[arg(long, default_value_t = 172)]
    pub intermediate: usize,
    #[arg(long, default_value_t = 65)]
    pub vocab: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn random_model(a: RandomModelArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.layers > 0 && a.hidden > 0 && a.intermediate > 0 && a.vocab > 0, "all sizes must be at least 1");
    let m = onebit_core::synth::toy_model(a.seed, a.layers, a.hidden, a.intermediate, a.vocab);
    m.save(&a.out)?;
    println!("wrote {}", a.out.display());
    Ok(())
}
