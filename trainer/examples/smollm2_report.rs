//! bench-results/smollm2.json and .svg from a `scripts/smollm2.sh` run directory
//! (the work is in `onebit_trainer::ppl_report`).
//!
//! cargo run --release -p onebit-trainer --example smollm2_report -- \
//!   --run build/smollm2/run --gguf FILE --prefix-chunks 64 --out bench-results/smollm2.json [--command TEXT]

use anyhow::{Context, Result};
use onebit_trainer::ppl_report::{build_report, write_report, RowSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn read_json(p: &Path) -> Result<Option<Value>> {
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(p).with_context(|| format!("{}: cannot read", p.display()))?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?))
}

const ROWS: [(&str, &str); 5] = [
    ("teacher", "teacher (GGUF Q4_1, dequantised to f32)"),
    ("naive", "naive sign(W)·mean|W|"),
    ("svid", "SVID (NMF), no training"),
    ("kd_float", "SVID + KD, 1-bit file, float backend"),
    ("kd_reference", "SVID + KD, 1-bit file, reference backend (sim16)"),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let need = |n: &str| arg(&args, n).with_context(|| format!("missing {n}"));
    let run = PathBuf::from(need("--run")?);
    let out = PathBuf::from(need("--out")?);
    let prefix: usize = need("--prefix-chunks")?.parse().context("--prefix-chunks")?;
    let rows: Vec<RowSpec> = ROWS
        .iter()
        .map(|(k, l)| RowSpec {
            key: k.to_string(),
            label: l.to_string(),
            state: run.join(format!("eval/{k}.state.json")),
            meta: Some(run.join(format!("eval/{k}.json"))).filter(|p| p.exists()),
        })
        .collect();
    let distill = read_json(&run.join("kd/distill.json"))?;
    let checkpoint_curve = read_json(&run.join("kd-report.json"))?;
    let export = read_json(&run.join("files/kd.export.json"))?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut extra = json!({
        "name": "SmolLM2-135M-Instruct through the OneBit recipe",
        "command": arg(&args, "--command").unwrap_or_else(|| args.join(" ")),
        "load_average_at_report": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "gguf": arg(&args, "--gguf"),
        "data": "../shared/data/wikitext-2/test.txt: the tokenized WikiText-2 release (with <unk>), not the raw text the OneBit paper evaluates on; figures are not comparable with the paper's",
        "protocol": "disjoint 2048-token chunks of the whole test file tokenized once, remainder dropped, each chunk scoring tokens 1..2047; prefix rows: the first prefix_chunks chunks, the same tokens for every row",
        "kd_tokens": distill.as_ref().map(|d| d["tokens_seen"].clone()),
        "kd": distill.as_ref().map(|d| json!({
            "recipe": d["options"]["recipe"], "steps": d["steps_done"], "batch": d["options"]["batch"],
            "context": d["options"]["context"], "lr": d["options"]["lr"], "train_seconds": d["train_seconds"],
            "tokens_per_second": d["tokens_per_second"], "val_student_ce_start": d["val_student_ce_start"],
            "val_student_ce": d["val_student_ce"], "val_teacher_ce": d["val_teacher_ce"],
            "trainable_parameters": d["trainable_parameters"], "frozen_parameters": d["frozen_parameters"],
            "data": d["options"]["data"], "note": "trained on wikitext-2 valid.txt (first 90%), validated on its last 10%; context 512 because 2048 ran out of memory (23 GB, OOM-killed) on this 24 GiB machine",
        })),
        "kd_command": checkpoint_curve.as_ref().map(|c| c["command"].clone()),
        "export": export,
        "hardware": read_json(&run.join("eval/hardware-hardware.json"))?.unwrap_or_else(|| json!({
            "status": "not run (issue 12 item 7 waits for the accelerator v2 work)",
            "command": "make smollm2-hardware   (scripts/smollm2.sh hardware: onebit ppl --model build/smollm2/run/files/kd.onebit.safetensors --data ../shared/data/wikitext-2/test.txt --backend hardware --preset ecp5 --seq-len 256 --max-chunks 1 --json, beside the same on --backend reference)"
        })),
    });
    let mut report = build_report(&rows, prefix, extra.take())?;
    // Item 7: the same chunk on the Verilated array and on the bit-exact reference.
    let hw = read_json(&run.join("eval/hardware-hardware.json"))?;
    let hw_ref = read_json(&run.join("eval/hardware-reference.json"))?;
    if let (Some(hw), Some(r)) = (hw, hw_ref) {
        report["hardware_ppl"] = hw["ppl"].clone();
        report["reference_ppl_same_chunks"] = r["ppl"].clone();
        report["hardware_equals_reference"] = json!(hw["ppl"] == r["ppl"] && hw["chunk_nll"] == r["chunk_nll"]);
        report["hardware_cycles"] = hw["hardware"]["cycles"].clone();
        report["hardware_ideal_cycles"] = hw["hardware"]["ideal_cycles"].clone();
        report["hardware_tokens"] = hw["tokens"].clone();
        report["hardware_seq_len"] = hw["seq_len"].clone();
        report["hardware_preset"] = hw["hardware"]["preset"].clone();
        report["hardware_seconds"] = hw["seconds"].clone();
        report["hardware_load_average"] = json!([hw["load_average_start"].clone(), hw["load_average_end"].clone()]);
        report["hardware_reference_command"] = r["command"].clone();
    }
    // The key names for the final model.
    for (from, to) in [("kd_float_ppl", "kd_ppl"), ("kd_float_ppl_tokens", "kd_ppl_tokens"), ("kd_float_ppl_complete", "kd_ppl_complete")] {
        if let Some(v) = report.get(from).cloned() {
            report[to] = v;
        }
    }
    let labels: Vec<(String, String)> = ROWS
        .iter()
        .map(|(k, _)| {
            let short = match *k {
                "teacher" => "teacher",
                "naive" => "naive sign",
                "svid" => "SVID",
                "kd_float" => "SVID+KD float",
                _ => "SVID+KD reference",
            };
            (k.to_string(), short.to_string())
        })
        .collect();
    let title = format!("SmolLM2-135M, WikiText-2 test (tokenized), first {prefix} chunks of 2048");
    write_report(&out, &report, &title, &labels)?;
    eprintln!("written to {} and {}", out.display(), out.with_extension("svg").display());
    Ok(())
}
