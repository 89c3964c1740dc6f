//! `onebit ppl` end to end on models the tests make themselves (no downloads).

use onebit_core::format::QuantSettings;
use onebit_model::candle_core::{Device, Tensor};
use onebit_model::checkpoint::{
    load_hf_dir, naive_onebit_from_dense, save_hf_dir, write_random_hf_dir, TOKENIZER_FILE,
};
use onebit_model::tokenizer::{build_char_tokenizer, train_bpe_tokenizer};
use onebit_model::LlamaConfig;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

mod common;
use common::{scratch, shared};

fn ppl_json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_onebit"))
        .arg("ppl")
        .args(args.iter().map(|a| a.as_ref()))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// All-zero weights give all-zero logits: the uniform distribution, PPL = vocabulary size.
#[test]
fn uniform_model_has_perplexity_equal_to_its_vocabulary() {
    let d = scratch("uniform");
    let text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n".repeat(4);
    let mut tok = build_char_tokenizer(&text).unwrap();
    let vocab = tok.vocab_size();
    let mut c = LlamaConfig::tiny(vocab, 16, 2, 4, 2);
    c.max_position_embeddings = 64;
    let zeros: Vec<(String, Tensor)> = c
        .hf_tensor_shapes()
        .into_iter()
        .map(|(n, s)| (n, Tensor::zeros(s, onebit_model::candle_core::DType::F32, &Device::Cpu).unwrap()))
        .collect();
    let dir = d.join("model");
    save_hf_dir(&dir, &c, &zeros).unwrap();
    tok.save(&dir.join(TOKENIZER_FILE)).unwrap();
    let data = d.join("data.txt");
    std::fs::write(&data, &text).unwrap();

    let v = ppl_json(&[&"--model", &dir, &"--data", &data, &"--seq-len", &"32"]);
    let n = text.chars().count();
    assert_eq!(v["backend"], "float");
    assert_eq!(v["text_tokens"], n);
    assert_eq!(v["chunks"], n / 32);
    assert_eq!(v["tokens"], (n / 32) * 31, "disjoint chunks predict seq_len - 1 tokens each");
    let p = v["ppl"].as_f64().unwrap();
    assert!((p - vocab as f64).abs() < 1e-3 * vocab as f64, "ppl {p}, vocabulary {vocab}");

    // Sliding windows score every token but the first.
    let v = ppl_json(&[&"--model", &dir, &"--data", &data, &"--seq-len", &"32", &"--stride", &"8"]);
    assert_eq!(v["tokens"], n - 1);
    // --max-chunks limits the work.
    let v = ppl_json(&[&"--model", &dir, &"--data", &data, &"--seq-len", &"16", &"--max-chunks", &"2"]);
    assert_eq!(v["tokens"], 30);
}

/// The acceptance run: a tiny random model with a byte-level BPE trained on
/// WikiText-2 valid, evaluated on WikiText-2 test (a few chunks to stay fast).
#[test]
fn wikitext_perplexity_of_a_tiny_model() {
    let d = scratch("wikitext");
    let mut tok = train_bpe_tokenizer(&[shared("wikitext-2/valid.txt")], 512).unwrap();
    let mut c = LlamaConfig::tiny(tok.vocab_size(), 32, 2, 4, 2);
    c.max_position_embeddings = 128;
    let dir = d.join("model");
    write_random_hf_dir(&dir, &c, 7).unwrap();
    tok.save(&dir.join(TOKENIZER_FILE)).unwrap();
    let v = ppl_json(&[
        &"--model",
        &dir,
        &"--data",
        &shared("wikitext-2/test.txt"),
        &"--backend",
        &"float",
        &"--max-chunks",
        &"4",
    ]);
    assert_eq!(v["seq_len"], 128, "default: min(2048, max_position_embeddings)");
    assert_eq!(v["tokens"], 4 * 127);
    let text_tokens = v["text_tokens"].as_u64().unwrap();
    assert!(text_tokens > 200_000, "the whole test split is tokenized ({text_tokens})");
    let p = v["ppl"].as_f64().unwrap();
    assert!(p.is_finite() && p > 1.0, "{p}");
}

/// A 1-bit model file (the naive sign baseline of a random model) runs on the
/// float and the reference backend; the tokenizer is found beside the file.
#[test]
fn onebit_file_on_float_and_reference_backends() {
    let d = scratch("onebit");
    let text = std::fs::read_to_string(shared("tinyshakespeare/input.txt")).unwrap();
    let text: String = text.chars().take(20_000).collect();
    let mut tok = build_char_tokenizer(&text).unwrap();
    let mut c = LlamaConfig::tiny(tok.vocab_size(), 40, 2, 4, 1);
    c.max_position_embeddings = 64;
    let hf = d.join("hf");
    write_random_hf_dir(&hf, &c, 3).unwrap();
    let dense = load_hf_dir(&hf, &Device::Cpu).unwrap();
    let file = d.join("model.onebit");
    naive_onebit_from_dense(&dense, QuantSettings::default()).unwrap().save(&file).unwrap();
    tok.save(&d.join(TOKENIZER_FILE)).unwrap();
    let data = d.join("data.txt");
    std::fs::write(&data, &text).unwrap();

    let run =
        |backend: &str| ppl_json(&[&"--model", &file, &"--data", &data, &"--backend", &backend, &"--max-chunks", &"3"]);
    let f = run("float");
    let r = run("reference");
    assert_eq!(f["backend"], "float");
    assert_eq!(r["backend"], "reference");
    assert_eq!(f["tokens"], 3 * 63);
    let (pf, pr) = (f["ppl"].as_f64().unwrap(), r["ppl"].as_f64().unwrap());
    assert!(pf.is_finite() && pr.is_finite());
    assert!((pf - pr).abs() / pf < 0.05, "float {pf} vs reference {pr}");
    // The Verilated accelerator is bit-exact with the reference, so the whole
    // model's perplexity is identical, not merely close.
    let one = |backend: &str| ppl_json(&[&"--model", &file, &"--data", &data, &"--backend", &backend, &"--max-chunks", &"1"]);
    let (h, r1) = (one("hardware"), one("reference"));
    assert_eq!(h["backend"], "hardware");
    assert_eq!(h["ppl"], r1["ppl"], "hardware and reference perplexity differ");
    assert!(h["hardware"]["cycles"].as_u64().unwrap() > 0, "the hardware row records its cycles: {}", h["hardware"]);
    // Other presets: --preset picks the array; one not verilated into this build says so.
    if !onebit_sim::BUILT_PRESETS.contains(&"ecp5") {
        let out = Command::new(env!("CARGO_BIN_EXE_onebit"))
            .args(["ppl", "--backend", "hardware", "--preset", "ecp5", "--max-chunks", "1"])
            .arg("--model").arg(&file).arg("--data").arg(&data)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("ecp5") && err.contains("ONEBIT_SIM_PRESETS"), "{err}");
    }
    let _ = Path::new(&file);
}
