//! The quality table (bench-results/quality.json): perplexity of the teacher,
//! the naive sign(W)·mean|W| baseline, the SVID student before training, the
//! distilled student (training form and its exported 1-bit file on the float
//! and bit-exact reference backends), and the ratio student/teacher.
//!
//! cargo run --release -p onebit-trainer --example quality -- \
//!   --teacher DIR --svid DIR --kd DIR --data FILE [--split val10|all] [--seq-len N] \
//!   [--max-chunks N] [--onebit FILE] [--also LABEL=STUDENT_DIR]... --out bench-results/quality.json [--name NAME]
//!
//! With `--split val10` (tinyshakespeare) only the last 10% of the tokens count
//! (nanoGPT's validation split); `all` evaluates the whole file (wikitext-2 test).
//! Perplexity: disjoint chunks of `--seq-len` tokens, remainder dropped.

use anyhow::{bail, Context, Result};
use candle_core::Device;
use onebit_core::backend::{FloatBackend, ReferenceBackend};
use onebit_core::format::QuantSettings;
use onebit_model::perplexity::{perplexity, PplOptions};
use onebit_model::tokenizer::{read_text, TextTokenizer};
use onebit_model::Llama;
use serde_json::json;
use std::path::PathBuf;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).with_context(|| format!("missing {n}"));
    let teacher_dir = PathBuf::from(need("--teacher")?);
    let svid_dir = PathBuf::from(need("--svid")?);
    let kd_dir = PathBuf::from(need("--kd")?);
    let data = PathBuf::from(need("--data")?);
    let out = PathBuf::from(need("--out")?);
    let split = arg(&args, "--split").unwrap_or_else(|| "all".into());
    let name = arg(&args, "--name").unwrap_or_else(|| "quality".into());
    let onebit_file = arg(&args, "--onebit").map(PathBuf::from);
    let max_chunks = arg(&args, "--max-chunks").map(|s| s.parse()).transpose()?;
    let dev = Device::Cpu;
    let teacher = onebit_model::checkpoint::load_hf_dir(&teacher_dir, &dev)?;
    let seq_len: usize = arg(&args, "--seq-len").map(|s| s.parse()).transpose()?.unwrap_or(teacher.config.max_position_embeddings);
    let tok = TextTokenizer::from_file(&teacher_dir.join("tokenizer.json"))?;
    let all = tok.encode(&read_text(&data)?, &data)?;
    let ids = match split.as_str() {
        "val10" => onebit_trainer::data::split_90_10(&all).1,
        "all" => all,
        s => bail!("--split {s}: expected val10 or all"),
    };
    let opts = PplOptions { seq_len, stride: None, max_chunks, progress: true, state: None };
    let ppl = |m: &Llama| -> Result<f64> { Ok(perplexity(m, &ids, &opts, &data)?.ppl) };
    let mut rows = Vec::new();
    let mut row = |what: &str, p: f64| {
        eprintln!("{what:<50} ppl {p:.4}");
        rows.push((what.to_string(), p));
    };
    let t = ppl(&teacher)?;
    row("teacher (full precision)", t);
    let float = FloatBackend { layer_norm_eps: onebit_core::numerics::LAYER_NORM_EPS };
    let naive = onebit_model::checkpoint::naive_onebit_from_dense(&teacher, QuantSettings::default())?;
    let naive_m = onebit_model::checkpoint::onebit_decoder(&naive, &teacher_dir, &float, &dev)?;
    row("naive sign(W)·mean|W|", ppl(&naive_m)?);
    let svid = onebit_trainer::student::read_student(&svid_dir)?.decoder(&dev)?;
    row("SVID, no training", ppl(&svid)?);
    let kd = onebit_trainer::student::read_student(&kd_dir)?.decoder(&dev)?;
    let kd_ppl = ppl(&kd)?;
    row("SVID + KD (training form, f32)", kd_ppl);
    // Extra students in training form, e.g. an ablation: --also "naive start + KD=DIR" (repeatable).
    for (i, a) in args.iter().enumerate() {
        if a != "--also" {
            continue;
        }
        let spec = args.get(i + 1).context("--also needs LABEL=STUDENT_DIR")?;
        let (label, dir) = spec.split_once('=').context("--also needs LABEL=STUDENT_DIR")?;
        let m = onebit_trainer::student::read_student(std::path::Path::new(dir))?.decoder(&dev)?;
        row(label, ppl(&m)?);
    }
    if let Some(f) = &onebit_file {
        let m = onebit_model::checkpoint::load_onebit_model(f, &float, &dev)?;
        row("SVID + KD, exported file, float backend", ppl(&m)?);
        let reference = ReferenceBackend { config: onebit_core::ArrayConfig::preset("sim16")?, layer_norm_eps: onebit_core::numerics::LAYER_NORM_EPS };
        let m = onebit_model::checkpoint::load_onebit_model(f, &reference, &dev)?;
        row("SVID + KD, exported file, reference backend (sim16)", ppl(&m)?);
    }
    let report = json!({
        "name": name,
        "command": args.join(" "),
        "data": data,
        "split": split,
        "validation_tokens": ids.len(),
        "chunks_evaluated": (ids.len() / seq_len).min(max_chunks.unwrap_or(usize::MAX)),
        "seq_len": seq_len,
        "max_chunks": max_chunks,
        "teacher": teacher_dir,
        "student": kd_dir,
        // How the student was distilled, from the report `onebit distill` leaves beside it.
        "distillation": std::fs::read_to_string(kd_dir.join("distill.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|d| json!({"options": d["options"], "steps_done": d["steps_done"], "tokens_per_second": d["tokens_per_second"]})),
        "rows": rows.iter().map(|(w, p)| json!({"model": w, "ppl": p, "ratio_to_teacher": p / t})).collect::<Vec<_>>(),
        "teacher_ppl": t,
        "student_ppl": kd_ppl,
        "ratio_student_over_teacher": kd_ppl / t,
        "target_ratio": 1.6,
    });
    let mut all_reports = if out.exists() { serde_json::from_str(&std::fs::read_to_string(&out)?).unwrap_or(json!({})) } else { json!({}) };
    all_reports[name.as_str()] = report;
    onebit_trainer::teacher::write_json(&out, &all_reports)?;
    eprintln!("ratio student/teacher {:.3}; written to {}", kd_ppl / t, out.display());
    Ok(())
}
