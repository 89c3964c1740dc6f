//! GGUF checkpoints: a small GGUF the test writes itself (Q4_1 linears, a Q8_0
//! embedding, an F16 projection, F32 norms, llama.cpp's q/k row permutation)
//! loads into the decoder that the same dequantised weights give from a
//! Hugging Face directory, and runs through every command that takes a model;
//! SmolLM2-135M-Instruct.Q4_1.gguf (`make smollm2`) agrees with transformers'
//! own GGUF loader (tests/fixtures/smollm2/reference.json,
//! scripts/make_smollm2_fixture.py).

mod gguf_common;

use gguf_common::{scratch, tiny_config, tiny_gguf};
use onebit_model::candle_core::{Device, Tensor};
use onebit_model::checkpoint::{load_dense_model, model_tokenizer};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

fn onebit(args: &[&dyn AsRef<std::ffi::OsStr>]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_onebit")).args(args.iter().map(|a| a.as_ref())).output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The loader undoes the permutation, maps the names, dequantises each type
/// and reads the config and tokenizer from the metadata: the GGUF model is the
/// Hugging Face model of the same stored weights.
#[test]
fn gguf_loads_as_the_same_decoder_as_its_weights() {
    let d = scratch("same");
    let (file, hf) = tiny_gguf(&d);
    let g = load_dense_model(&file, &Device::Cpu).unwrap();
    let h = onebit_model::checkpoint::load_hf_dir(&hf, &Device::Cpu).unwrap();
    let mut want = tiny_config();
    want.rms_norm_eps = 1e-5f32 as f64; // stored as f32 in GGUF
    assert_eq!(g.config, want);
    let ids = Tensor::new(&[3u32, 70, 257, 259, 100, 5, 81, 44, 12, 200], &Device::Cpu).unwrap();
    let (a, b) = (g.forward(&ids).unwrap(), h.forward(&ids).unwrap());
    let scale = b.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(scale > 1.0, "logits are not trivially small ({scale})");
    assert_eq!(max_abs_diff(&a, &b), 0.0, "GGUF and Hugging Face decoders of the same weights differ");
    // The file really holds permuted rows (so the test above can tell): as
    // stored, q differs from the Hugging Face layout; un-permuted it is equal.
    let stored = onebit_model::gguf::GgufFile::open(&file).unwrap().tensor_f32("blk.0.attn_q.weight", &Device::Cpu).unwrap();
    let onebit_model::BlockLinear::Dense { weight: hf_q } = &h.blocks[0].linears[0] else { panic!("dense") };
    assert!(max_abs_diff(&stored, hf_q) > 0.1);
    assert_eq!(max_abs_diff(&onebit_model::gguf::reverse_permute(&stored, 2).unwrap(), hf_q), 0.0);

    let tok = model_tokenizer(&file).unwrap();
    let enc = tok.encode(" the thing", Path::new("<text>")).unwrap();
    assert_eq!(enc[0], 259, "\"Ġthe\" is one merged token: {enc:?}");
    assert_eq!(tok.decode(&enc).unwrap(), " the thing");
    assert_eq!(tok.encode("<|endoftext|>", Path::new("<text>")).unwrap(), vec![0], "control tokens stay whole");
}

/// `--model FILE.gguf` works for logits, ppl and generate, and `svid` and
/// `distill` take a GGUF teacher.
#[test]
fn gguf_through_the_command_line() {
    let d = scratch("cli");
    let (file, hf) = tiny_gguf(&d);
    let logits = |m: &Path| -> Value {
        serde_json::from_str(&ok(onebit(&[&"logits", &"--model", &m, &"--ids", &"1,2,3,259", &"--json"]))).unwrap()
    };
    assert_eq!(logits(&file), logits(&hf));
    let text = d.join("text.txt");
    std::fs::write(&text, "the cat sat on the mat; the dog sat on the log.\n".repeat(12)).unwrap();
    let v: Value = serde_json::from_str(&ok(onebit(&[
        &"ppl", &"--model", &file, &"--data", &text, &"--seq-len", &"32", &"--json",
    ])))
    .unwrap();
    assert_eq!(v["seq_len"], 32);
    assert!(v["ppl"].as_f64().unwrap() > 1.0);
    assert_eq!(v["chunk_nll"].as_array().unwrap().len(), v["chunks"].as_u64().unwrap() as usize);
    let out = ok(onebit(&[&"generate", &"--model", &file, &"--prompt", &"the cat", &"--max-tokens", &"5", &"--ignore-eos"]));
    assert!(out.starts_with("the cat"), "{out}");
    let e = onebit(&[&"ppl", &"--model", &file, &"--data", &text, &"--backend", &"reference"]);
    assert_eq!(e.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&e.stderr).contains("full-precision GGUF file"));

    let student = d.join("student");
    let table = ok(onebit(&[&"svid", &"--teacher", &file, &"--out", &student]));
    assert!(table.contains("model.layers.1.mlp.down_proj"), "{table}");
    assert!(student.join("tokenizer.json").is_file(), "the GGUF's tokenizer is written beside the student");
    let kd = d.join("kd");
    ok(onebit(&[
        &"distill", &"--recipe", &"official", &"--teacher", &file, &"--student", &student, &"--data", &text, &"--out", &kd,
        &"--steps", &"2", &"--batch", &"2", &"--context", &"16", &"--warmup", &"1", &"--eval-batches", &"1",
    ]));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(kd.join("distill.json")).unwrap()).unwrap();
    // Frozen: the tied embedding (260 × 32); everything else trains.
    assert_eq!(report["frozen_parameters"], 260 * 32);
    assert_eq!(report["tokens_seen"], 2 * 2 * 16);
}

// ------------------------------------------------------------ SmolLM2 vs transformers

fn smollm2() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(p.is_file(), "{}: not found; `make smollm2` puts it there (make test does it first)", p.display());
    p
}

fn shared(rel: &str) -> PathBuf {
    let root = std::env::var_os("ONEBIT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let p = root.join(rel);
    assert!(p.is_file(), "{}: not found (the shipped text lives in ../shared/data or $ONEBIT_DATA)", p.display());
    p
}

fn fixture() -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smollm2/reference.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn fnv1a(ids: &[u32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &id in ids {
        for b in id.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// The tokenizer built from the GGUF metadata gives transformers' ids: for the
/// passage, and for every token of the WikiText-2 test split (count and hash).
#[test]
fn smollm2_tokenizer_matches_transformers() {
    let f = fixture();
    let tok = model_tokenizer(&smollm2()).unwrap();
    let passage = f["passage"]["text"].as_str().unwrap();
    assert_eq!(tok.encode(passage, Path::new("<passage>")).unwrap(), u32s(&f["passage"]["ids"]));
    let data = shared("wikitext-2/test.txt");
    let ids = tok.encode(&std::fs::read_to_string(&data).unwrap(), &data).unwrap();
    let whole = &f["whole_split"];
    assert_eq!(ids[..32].to_vec(), u32s(&whole["first_ids"]));
    assert_eq!(ids.len() as u64, whole["tokens"].as_u64().unwrap(), "token count of the whole split");
    assert_eq!(format!("{:016x}", fnv1a(&ids)), whole["fnv1a"].as_str().unwrap(), "ids of the whole split");
}

/// Dequantised weights (q and k un-permuted) and logits agree with
/// transformers' GGUF loader.
///
/// Tolerances. Weights: 1e-6 absolute, exact in practice: both compute
/// d·q + m (Q4_1) or d·q (Q8_0) in f32 from the same f16 scales, so only the
/// permutation or naming could make them differ, and that would be off by
/// whole weights. Logits: 2e-3 absolute (logits here span about ±30): the same
/// f32 model with other summation orders (candle's gemm against PyTorch's
/// BLAS, 30 blocks) drifts by rounding alone: 5.8e-5 measured here; a wrong
/// permutation, RoPE base or norm epsilon moves logits by whole units.
#[test]
fn smollm2_agrees_with_transformers() {
    let f = fixture();
    let model = load_dense_model(&smollm2(), &Device::Cpu).unwrap();
    let c = &model.config;
    assert_eq!(
        (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size, c.vocab_size),
        (30, 576, 9, 3, 1536, 49152)
    );
    assert!(c.tie_word_embeddings && c.rope_theta == 100_000.0);
    let tensors: HashMap<String, Tensor> = model
        .hf_tensors()
        .unwrap()
        .into_iter()
        .collect();
    for w in f["weights"].as_array().unwrap() {
        let name = w["name"].as_str().unwrap();
        let t = &tensors[name];
        let want = f32s(&w["values"]);
        let got: Vec<f32> = match w["row"].as_u64() {
            Some(r) => t.get(r as usize).unwrap().narrow(0, 0, want.len()).unwrap().to_vec1().unwrap(),
            None => t.narrow(0, 0, want.len()).unwrap().to_vec1().unwrap(),
        };
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-6, "{name} row {:?} column {i}: {a} vs transformers {b}", w["row"]);
        }
    }
    let seq_len = f["seq_len"].as_u64().unwrap() as usize;
    let ids: Vec<u32> = u32s(&f["passage"]["ids"])[..seq_len].to_vec();
    let logits = model.forward(&Tensor::new(ids.as_slice(), &Device::Cpu).unwrap()).unwrap().squeeze(0).unwrap();
    let slice = u32s(&f["vocab_slice"]);
    let mut worst = 0f32;
    for p in f["positions"].as_array().unwrap() {
        let pos = p["position"].as_u64().unwrap() as usize;
        let row: Vec<f32> = logits.get(pos).unwrap().to_vec1().unwrap();
        let argmax = row.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0;
        if p["top2_gap"].as_f64().unwrap() > 1e-2 {
            assert_eq!(argmax as u64, p["argmax"].as_u64().unwrap(), "argmax at position {pos}");
        }
        let m = row.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64;
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        let d = (lse - p["logsumexp"].as_f64().unwrap()).abs() as f32;
        worst = worst.max(d);
        assert!(d < 2e-3, "log-sum-exp at position {pos}: {lse} vs transformers {}", p["logsumexp"]);
        let mut pairs: Vec<(u32, f32)> = slice.iter().copied().zip(f32s(&p["slice_logits"])).collect();
        pairs.extend(u32s(&p["top_ids"]).into_iter().zip(f32s(&p["top_logits"])));
        for (id, want) in pairs {
            let d = (row[id as usize] - want).abs();
            worst = worst.max(d);
            assert!(d < 2e-3, "logit of token {id} at position {pos}: {} vs transformers {want}", row[id as usize]);
        }
    }
    eprintln!("largest logit difference from transformers: {worst:.2e}");
}
