//! `onebit compare` (behind `make ppl` and the model step of `make sim`): one
//! 1-bit model file on the same tokens with its full-precision teacher, on the
//! f32 layer, on the bit-exact integer reference and on the Verilated
//! accelerator through the host driver, plus a generated sample on the
//! reference and on the hardware with the same seed.
//!
//! The hardware backend checks every integer output against the reference as
//! it runs, so a wrong bit stops the run with the layer, the driver step (tile)
//! and the output that differ; the verdict also requires the two perplexities
//! (every chunk's summed loss) and the two samples to be identical.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use onebit_core::backend::{FloatBackend, ReferenceBackend};
use onebit_core::ArrayConfig;
use onebit_model::checkpoint;
use onebit_model::generate::{generate, GenerateOptions, StopReason};
use onebit_model::perplexity::{perplexity, PplOptions, PplResult};
use onebit_model::tokenizer::{read_text, TextTokenizer};
use onebit_model::Llama;
use onebit_core::backend::LinearBackend;
use onebit_core::format::OneBitModel;
use onebit_sim::backend::{HardwareStats, VerilatorBackend};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which tokens of the text are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The whole text (WikiText-2 test).
    All,
    /// The last 10 % of the tokens (nanoGPT's tinyshakespeare validation split).
    Val10,
}

impl Split {
    pub fn parse(s: &str) -> Result<Split> {
        match s {
            "all" => Ok(Split::All),
            "val10" => Ok(Split::Val10),
            other => bail!("--split {other}: expected val10 (the last 10% of the tokens) or all"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Split::All => "all",
            Split::Val10 => "val10",
        }
    }
    /// The evaluated part of a whole text's token ids.
    pub fn apply(self, ids: Vec<u32>) -> Vec<u32> {
        match self {
            Split::All => ids,
            Split::Val10 => onebit_trainer::data::split_90_10(&ids).1,
        }
    }
}

/// The held-out tokens of `data` as `tokenizer` reads them.
pub fn eval_ids(tokenizer: &TextTokenizer, data: &Path, split: Split) -> Result<Vec<u32>> {
    let text = read_text(data)?;
    Ok(split.apply(tokenizer.encode(&text, data)?))
}

/// A text generated on the reference and on the hardware.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub prompt: String,
    pub tokens: usize,
    pub temperature: f64,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The 1-bit model file (tokenizer.json beside it).
    pub model: PathBuf,
    /// Its full-precision teacher (a Hugging Face directory or a GGUF file).
    pub teacher: Option<PathBuf>,
    pub data: PathBuf,
    pub split: Split,
    /// Tokens per chunk (default: min(2048, the model's context)).
    pub seq_len: Option<usize>,
    /// Chunks every row is evaluated on (the hardware's share of the work).
    pub chunks: usize,
    /// Also evaluate teacher, float and reference over the whole split.
    pub full_split: bool,
    /// Array configuration of the reference and the hardware.
    pub preset: String,
    /// Run the Verilated accelerator (off: software rows only).
    pub hardware: bool,
    pub sample: Option<SampleOptions>,
    pub progress: bool,
}

/// What the hardware rows run on: the Verilated accelerator in `make ppl`;
/// in tests, backends that misbehave on purpose.
pub trait HardwareUnderTest {
    fn backend(&self) -> &dyn LinearBackend;
    /// Cycles and outputs checked so far.
    fn stats(&self) -> HardwareStats;
    /// How the table names it (`sim16 on Verilator`).
    fn describe(&self) -> String;
}

struct Verilated {
    backend: VerilatorBackend,
    preset: String,
}

impl HardwareUnderTest for Verilated {
    fn backend(&self) -> &dyn LinearBackend {
        &self.backend
    }
    fn stats(&self) -> HardwareStats {
        self.backend.stats()
    }
    fn describe(&self) -> String {
        format!("{} on Verilator", self.preset)
    }
}

/// `teacher/` beside a 1-bit model file, when it holds a config.json.
pub fn default_teacher(model: &Path) -> Option<PathBuf> {
    let dir = model.parent().unwrap_or(Path::new(".")).join("teacher");
    dir.join("config.json").is_file().then_some(dir)
}

/// One perplexity measurement.
#[derive(Debug, Clone)]
pub struct Row {
    /// `teacher`, `onebit_float`, `reference` or `hardware` (the JSON keys' stem).
    pub key: &'static str,
    pub label: String,
    pub result: PplResult,
    pub seconds: f64,
}

/// Hardware figures of the perplexity run.
#[derive(Debug, Clone, Copy)]
pub struct HardwareRun {
    pub stats: HardwareStats,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every layer output, every chunk's loss and the sample agree.
    BitExact,
    /// What differed first (from the driver: layer, step and output).
    Differs(String),
    /// The hardware was not run.
    NotRun,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub prompt: String,
    pub temperature: f64,
    pub seed: u64,
    pub reference_tokens: Vec<u32>,
    pub reference_text: String,
    /// Why the reference's sample ended.
    pub stopped_by: &'static str,
    pub hardware_tokens: Option<Vec<u32>>,
    pub hardware_text: Option<String>,
    /// Cycles the hardware spent on the sample (prompt and every step).
    pub hardware_cycles: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub model: PathBuf,
    pub teacher: Option<PathBuf>,
    pub data: PathBuf,
    pub split: Split,
    pub preset: String,
    pub config: ArrayConfig,
    /// Tokens of the evaluated split.
    pub split_tokens: usize,
    pub seq_len: usize,
    /// Rows on the same first `chunks` chunks.
    pub rows: Vec<Row>,
    /// Teacher, float and reference over every chunk of the split.
    pub full_split: Vec<Row>,
    pub hardware: Option<HardwareRun>,
    pub verdict: Verdict,
    pub sample: Option<Sample>,
}

impl Comparison {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }
    /// Tokens scored by each row of the shared chunks.
    pub fn tokens(&self) -> usize {
        self.rows.first().map_or(0, |r| r.result.tokens)
    }
    pub fn chunks(&self) -> usize {
        self.rows.first().map_or(0, |r| r.result.chunks)
    }
    pub fn bit_exact(&self) -> bool {
        self.verdict == Verdict::BitExact
    }
}

fn ppl_options(seq_len: usize, max_chunks: Option<usize>, progress: bool) -> PplOptions {
    PplOptions { seq_len, stride: None, max_chunks, progress, state: None }
}

fn measure(key: &'static str, label: String, model: &Llama, ids: &[u32], opts: &PplOptions, data: &Path) -> Result<Row> {
    eprintln!("== {label}");
    let start = Instant::now();
    let result = perplexity(model, ids, opts, data).with_context(|| format!("{label}: perplexity"))?;
    Ok(Row { key, label, result, seconds: start.elapsed().as_secs_f64() })
}

fn sample_on(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompt: &[u32],
    s: &SampleOptions,
) -> Result<(Vec<u32>, String, &'static str)> {
    // Past a full context, go on from its last half: a 64-token model still writes a paragraph.
    let opts = GenerateOptions {
        max_tokens: s.tokens,
        temperature: s.temperature,
        seed: s.seed,
        stop_token: model.config.eos_token_id,
        slide: Some((model.config.max_position_embeddings / 2).max(1)),
    };
    let g = generate(model, prompt, &opts, |_| Ok(()))?;
    let text = tokenizer.decode(&g.tokens)?;
    let why = match g.stopped_by {
        StopReason::MaxTokens => "the requested number of tokens",
        StopReason::StopToken => "the end-of-sequence token",
        StopReason::ContextFull => "the model's context is full",
    };
    Ok((g.tokens, text, why))
}

/// Run the comparison on the Verilated accelerator of `opts.preset` (when
/// `opts.hardware`). An error is returned only for bad input (files, options);
/// a hardware disagreement is a [`Verdict::Differs`] in a complete report.
pub fn compare(opts: &CompareOptions) -> Result<Comparison> {
    let file = checkpoint::read_onebit_file(&opts.model)?;
    let hardware = match opts.hardware {
        true => {
            ArrayConfig::preset(&opts.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
            let eps = file.quantisation.layer_norm_eps;
            Some(Verilated { backend: VerilatorBackend::new(&opts.preset, eps)?, preset: opts.preset.clone() })
        }
        false => None,
    };
    compare_file(opts, &file, hardware.as_ref().map(|h| h as &dyn HardwareUnderTest))
}

/// [`compare`] with the hardware rows on `hardware` (`opts.hardware` is not read).
pub fn compare_on(opts: &CompareOptions, hardware: Option<&dyn HardwareUnderTest>) -> Result<Comparison> {
    compare_file(opts, &checkpoint::read_onebit_file(&opts.model)?, hardware)
}

/// The comparison of `file` (read once, from `opts.model`).
fn compare_file(opts: &CompareOptions, file: &OneBitModel, hardware: Option<&dyn HardwareUnderTest>) -> Result<Comparison> {
    let dev = Device::Cpu;
    let config = ArrayConfig::preset(&opts.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
    if opts.chunks == 0 {
        bail!("--chunks must be at least 1");
    }
    let eps = file.quantisation.layer_norm_eps;
    let tokenizer = checkpoint::model_tokenizer(&opts.model)?;
    let ids = eval_ids(&tokenizer, &opts.data, opts.split)?;

    let float_backend = FloatBackend { layer_norm_eps: eps };
    let float = checkpoint::onebit_decoder(file, &opts.model, &float_backend, &dev)?;
    let seq_len = opts.seq_len.unwrap_or_else(|| float.config.max_position_embeddings.min(2048));
    let shared = ppl_options(seq_len, Some(opts.chunks), opts.progress);
    let whole = ppl_options(seq_len, None, opts.progress);
    let reference_backend = ReferenceBackend { config, layer_norm_eps: eps };
    let reference = checkpoint::onebit_decoder(file, &opts.model, &reference_backend, &dev)?;

    let teacher = match &opts.teacher {
        None => None,
        Some(t) => {
            let model = checkpoint::load_dense_model(t, &dev)?;
            let teacher_ids = eval_ids(&checkpoint::model_tokenizer(t)?, &opts.data, opts.split)?;
            if teacher_ids != ids {
                bail!(
                    "{}: the teacher's tokenizer reads {} differently from {}'s (the rows would not score the same tokens)",
                    t.display(),
                    opts.data.display(),
                    opts.model.display()
                );
            }
            Some(model)
        }
    };

    let mut rows = Vec::new();
    if let Some(t) = &teacher {
        rows.push(measure("teacher", "teacher (full precision)".into(), t, &ids, &shared, &opts.data)?);
    }
    rows.push(measure("onebit_float", "1-bit, float (f32 layer)".into(), &float, &ids, &shared, &opts.data)?);
    let reference_label = format!("1-bit, reference ({} integer)", opts.preset);
    rows.push(measure("reference", reference_label.clone(), &reference, &ids, &shared, &opts.data)?);

    let mut verdict = Verdict::NotRun;
    let mut hardware_run = None;
    let mut hardware_model = None;
    if let Some(hw) = hardware {
        let model = checkpoint::onebit_decoder(file, &opts.model, hw.backend(), &dev)?;
        let label = format!("1-bit, hardware ({})", hw.describe());
        eprintln!("== {label}");
        let start = Instant::now();
        match perplexity(&model, &ids, &shared, &opts.data) {
            Ok(result) => {
                let seconds = start.elapsed().as_secs_f64();
                hardware_run = Some(HardwareRun { stats: hw.stats(), seconds });
                let reference_row = rows.last().expect("reference row");
                verdict = match first_chunk_difference(&reference_row.result, &result) {
                    None => Verdict::BitExact,
                    Some(d) => Verdict::Differs(format!("the perplexities differ: {d}")),
                };
                rows.push(Row { key: "hardware", label, result, seconds });
                hardware_model = Some((model, hw));
            }
            Err(e) => verdict = Verdict::Differs(format!("{e}")),
        }
    }

    let mut full_split = Vec::new();
    if opts.full_split {
        eprintln!("== the whole split ({} tokens), software rows", ids.len());
        if let Some(t) = &teacher {
            full_split.push(measure("teacher", "teacher (full precision)".into(), t, &ids, &whole, &opts.data)?);
        }
        full_split.push(measure("onebit_float", "1-bit, float (f32 layer)".into(), &float, &ids, &whole, &opts.data)?);
        full_split.push(measure("reference", reference_label, &reference, &ids, &whole, &opts.data)?);
    }

    let sample = match &opts.sample {
        None => None,
        Some(s) => {
            let prompt = tokenizer.encode(&s.prompt, Path::new("the sample prompt"))?;
            eprintln!("== sample: {} tokens from {:?} (seed {}, temperature {})", s.tokens, s.prompt, s.seed, s.temperature);
            let (reference_tokens, reference_text, stopped_by) = sample_on(&reference, &tokenizer, &prompt, s)?;
            let mut out = Sample {
                prompt: s.prompt.clone(),
                temperature: s.temperature,
                seed: s.seed,
                reference_tokens,
                reference_text,
                stopped_by,
                hardware_tokens: None,
                hardware_text: None,
                hardware_cycles: None,
            };
            if let Some((model, hw)) = &hardware_model {
                let before = hw.stats().cycles;
                match sample_on(model, &tokenizer, &prompt, s) {
                    Ok((tokens, text, _)) => {
                        if tokens != out.reference_tokens && verdict == Verdict::BitExact {
                            let at = tokens.iter().zip(&out.reference_tokens).take_while(|(a, b)| a == b).count();
                            verdict = Verdict::Differs(format!("the hardware's sample leaves the reference's at new token {at}"));
                        }
                        out.hardware_cycles = Some(hw.stats().cycles - before);
                        out.hardware_tokens = Some(tokens);
                        out.hardware_text = Some(text);
                    }
                    Err(e) => verdict = Verdict::Differs(format!("sample: {e}")),
                }
            }
            Some(out)
        }
    };

    Ok(Comparison {
        model: opts.model.clone(),
        teacher: opts.teacher.clone(),
        data: opts.data.clone(),
        split: opts.split,
        preset: opts.preset.clone(),
        config,
        split_tokens: ids.len(),
        seq_len,
        rows,
        full_split,
        hardware: hardware_run,
        verdict,
        sample,
    })
}

/// The first chunk whose summed loss differs in any bit (f64 compared exactly).
fn first_chunk_difference(a: &PplResult, b: &PplResult) -> Option<String> {
    if a.chunk_nll.len() != b.chunk_nll.len() {
        return Some(format!("{} chunks against {}", b.chunk_nll.len(), a.chunk_nll.len()));
    }
    a.chunk_nll
        .iter()
        .zip(&b.chunk_nll)
        .position(|(x, y)| x.to_bits() != y.to_bits())
        .map(|i| format!("chunk {i}'s summed loss is {:e} against {:e}", b.chunk_nll[i], a.chunk_nll[i]))
}

impl Comparison {
    /// The table people read (stdout).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let data = self.data.display();
        s.push_str(&format!(
            "{} on {} chunks of {} tokens of {data} ({}; {} tokens scored per row)\n",
            self.model.display(),
            self.chunks(),
            self.seq_len,
            self.split.name(),
            self.tokens()
        ));
        s.push_str(&format!("{:<40} {:>10} {:>9} {:>9}\n", "row", "ppl", "tokens", "seconds"));
        for r in &self.rows {
            s.push_str(&format!("{:<40} {:>10.4} {:>9} {:>9.1}\n", r.label, r.result.ppl, r.result.tokens, r.seconds));
        }
        if !self.full_split.is_empty() {
            s.push_str(&format!("whole split ({} tokens):\n", self.split_tokens));
            for r in &self.full_split {
                s.push_str(&format!("{:<40} {:>10.4} {:>9} {:>9.1}\n", r.label, r.result.ppl, r.result.tokens, r.seconds));
            }
        }
        if let Some(h) = &self.hardware {
            s.push_str(&format!(
                "hardware: {} layer calls, {} outputs checked against the reference, {} cycles ({:.0} per token scored), utilisation {:.1} % of the binding bound, {:.2} M cycles/s of simulation\n",
                h.stats.layer_calls,
                h.stats.outputs_checked,
                h.stats.cycles,
                h.stats.cycles as f64 / self.tokens().max(1) as f64,
                100.0 * h.stats.ideal_cycles as f64 / h.stats.cycles.max(1) as f64,
                h.stats.cycles as f64 / h.seconds.max(1e-9) / 1e6
            ));
        }
        if let Some(smp) = &self.sample {
            s.push_str(&format!(
                "sample (reference, seed {}, temperature {}; {} new tokens, ended by {}):\n{}{}\n",
                smp.seed,
                smp.temperature,
                smp.reference_tokens.len(),
                smp.stopped_by,
                smp.prompt,
                smp.reference_text
            ));
            match (&smp.hardware_text, &smp.hardware_tokens) {
                (Some(_), Some(t)) if *t == smp.reference_tokens => {
                    s.push_str(&format!("sample (hardware): the same {} tokens\n", t.len()))
                }
                (Some(text), Some(_)) => s.push_str(&format!("sample (hardware):\n{}{}\n", smp.prompt, text)),
                _ => {}
            }
        }
        s.push_str(&match &self.verdict {
            Verdict::BitExact => format!(
                "verdict: bit-exact on every layer (hardware_ppl == reference_ppl = {:.6})\n",
                self.row("hardware").map_or(f64::NAN, |r| r.result.ppl)
            ),
            Verdict::Differs(what) => format!("verdict: hardware differs from the reference: {what}\n"),
            Verdict::NotRun => "verdict: hardware not run\n".into(),
        });
        s
    }

    /// The machine-readable report (`bench-results/ppl.json`).
    pub fn to_json(&self, command: &str, load_start: Option<String>, load_end: Option<String>) -> Value {
        let ppl = |key: &str| self.row(key).map(|r| r.result.ppl);
        let row_json = |r: &Row| {
            json!({"key": r.key, "label": r.label, "ppl": r.result.ppl, "mean_nll": r.result.mean_nll,
                   "tokens": r.result.tokens, "chunks": r.result.chunks, "seconds": r.seconds,
                   "tokens_per_second": r.result.tokens as f64 / r.seconds.max(1e-9)})
        };
        let mut v = json!({
            "teacher_ppl": ppl("teacher"),
            "onebit_float_ppl": ppl("onebit_float"),
            "reference_ppl": ppl("reference"),
            "hardware_ppl": ppl("hardware"),
            "tokens": self.tokens(),
            "chunks": self.chunks(),
            "seq_len": self.seq_len,
            "data": self.data,
            "split": self.split.name(),
            "split_tokens": self.split_tokens,
            "model": self.model,
            "teacher": self.teacher,
            "preset": self.preset,
            "config": self.config,
            "bit_exact": self.bit_exact(),
            "verdict": match &self.verdict {
                Verdict::BitExact => "bit-exact on every layer".to_string(),
                Verdict::Differs(w) => format!("differs: {w}"),
                Verdict::NotRun => "hardware not run".to_string(),
            },
            "rows": self.rows.iter().map(row_json).collect::<Vec<_>>(),
            "command": command,
            "load_average_start": load_start,
            "load_average_end": load_end,
        });
        if !self.full_split.is_empty() {
            let get = |key: &str| self.full_split.iter().find(|r| r.key == key).map(|r| r.result.ppl);
            v["full_split"] = json!({
                "teacher_ppl": get("teacher"),
                "onebit_float_ppl": get("onebit_float"),
                "reference_ppl": get("reference"),
                "tokens": self.full_split[0].result.tokens,
                "rows": self.full_split.iter().map(row_json).collect::<Vec<_>>(),
            });
        }
        if let Some(h) = &self.hardware {
            v["hardware"] = json!({
                "simulator": "Verilator",
                "cycles": h.stats.cycles,
                "ideal_cycles": h.stats.ideal_cycles,
                "utilisation": h.stats.ideal_cycles as f64 / h.stats.cycles.max(1) as f64,
                "layer_calls": h.stats.layer_calls,
                "outputs_checked_against_reference": h.stats.outputs_checked,
                "cycles_per_token_scored": h.stats.cycles as f64 / self.tokens().max(1) as f64,
                "seconds": h.seconds,
                "simulated_cycles_per_second": h.stats.cycles as f64 / h.seconds.max(1e-9),
            });
        }
        if let Some(s) = &self.sample {
            v["sample"] = json!({
                "prompt": s.prompt, "temperature": s.temperature, "seed": s.seed,
                "reference_text": s.reference_text, "hardware_text": s.hardware_text,
                "tokens": s.reference_tokens.len(),
                "stopped_by": s.stopped_by,
                "tokens_equal": s.hardware_tokens.as_ref().map(|t| *t == s.reference_tokens),
                "hardware_cycles": s.hardware_cycles,
            });
        }
        v
    }

    /// Bars of the rows' perplexities on the shared chunks (SVG).
    pub fn plot_svg(&self) -> Result<String> {
        let bars: Vec<(String, f64)> = self.rows.iter().map(|r| (short_label(r.key, &self.preset), r.result.ppl)).collect();
        let name = self.model.parent().and_then(|p| p.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let title = format!("{name}: perplexity on {} tokens of {} ({})", self.tokens(), data_name(&self.data), self.split.name());
        onebit_trainer::ppl_report::plot_prefix_svg(&title, &bars)
    }
}

fn short_label(key: &str, preset: &str) -> String {
    match key {
        "teacher" => "teacher (f32)".into(),
        "onebit_float" => "1-bit float".into(),
        "reference" => format!("1-bit reference ({preset})"),
        "hardware" => format!("1-bit hardware ({preset})"),
        other => other.into(),
    }
}

/// `tinyshakespeare/input.txt` for `../shared/data/tinyshakespeare/input.txt`.
pub fn data_name(p: &Path) -> String {
    let parts: Vec<_> = p.components().rev().take(2).collect();
    parts.iter().rev().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Write the report and its plot (`.svg` beside the JSON), each atomically.
pub fn write_report(json_path: &Path, report: &Value, svg: &str) -> Result<()> {
    let svg_path = json_path.with_extension("svg");
    onebit_core::format::write_atomically(&svg_path, svg.as_bytes())
        .with_context(|| format!("{}: cannot write", svg_path.display()))?;
    let text = serde_json::to_string_pretty(report)? + "\n";
    onebit_core::format::write_atomically(json_path, text.as_bytes())
        .with_context(|| format!("{}: cannot write", json_path.display()))
}

/// The machine's 1, 5 and 15 minute load averages (Linux), for the record.
pub fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(chunks: &[f64]) -> PplResult {
        PplResult {
            ppl: 1.0,
            mean_nll: 0.0,
            tokens: 0,
            text_tokens: 0,
            chunks: chunks.len(),
            seq_len: 2,
            stride: None,
            chunk_nll: chunks.to_vec(),
            chunk_tokens: vec![1; chunks.len()],
            chunks_resumed: 0,
        }
    }

    #[test]
    fn chunk_losses_compare_on_every_bit() {
        assert_eq!(first_chunk_difference(&result(&[1.0, 2.0]), &result(&[1.0, 2.0])), None);
        let next = f64::from_bits(2.0f64.to_bits() + 1);
        let d = first_chunk_difference(&result(&[1.0, 2.0]), &result(&[1.0, next])).unwrap();
        assert!(d.starts_with("chunk 1's"), "{d}");
        assert!(first_chunk_difference(&result(&[1.0]), &result(&[1.0, 2.0])).is_some());
    }

    #[test]
    fn splits_and_names() {
        assert_eq!(Split::parse("val10").unwrap().apply((0..20).collect()), (18..20).collect::<Vec<u32>>());
        assert_eq!(Split::parse("all").unwrap().apply(vec![1, 2]), vec![1, 2]);
        assert!(Split::parse("test").is_err());
        assert_eq!(data_name(Path::new("../shared/data/tinyshakespeare/input.txt")), "tinyshakespeare/input.txt");
    }
}
