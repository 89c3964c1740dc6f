//! Agreement with transformers: tiny random LlamaForCausalLM checkpoints and the
//! logits transformers computed for them (tests/fixtures/model/*, made by
//! scripts/make_llama_fixture.py) must match this decoder within 1e-4.

use onebit_model::candle_core::{Device, Tensor};
use onebit_model::checkpoint::{load_hf_dir, WEIGHTS_INDEX_FILE};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model").join(name)
}

fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).expect("fixture reference.json");
    serde_json::from_str(&text).unwrap()
}

fn flat(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        _ => panic!("not a number"),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check(name: &str) {
    let r = reference(name);
    let model = load_hf_dir(&fixture(name), &Device::Cpu).unwrap();
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["ids"].clone()).unwrap();
    let input = Tensor::new(ids.clone(), &Device::Cpu).unwrap();
    let out = model.forward_with_hidden(&input).unwrap();
    let ours: Vec<f32> = out.logits.flatten_all().unwrap().to_vec1().unwrap();
    let theirs = flat(&r["logits"]);
    assert_eq!(out.logits.dims(), &[ids.len(), ids[0].len(), model.config.vocab_size]);
    let spread = theirs.iter().map(|v| v.abs()).fold(0.0, f32::max);
    assert!(spread > 0.5, "{name}: reference logits are too small to test anything ({spread})");
    let d = max_diff(&ours, &theirs);
    eprintln!("{name}: max |logit - transformers| = {d:.3e}");
    assert!(d < TOLERANCE, "{name}: logits differ from transformers by up to {d}");
    // transformers' hidden states 1..L-1 are the outputs of blocks 0..L-2.
    let blocks = r["block_outputs"].as_array().unwrap();
    assert_eq!(blocks.len(), model.config.num_hidden_layers - 1);
    for (i, b) in blocks.iter().enumerate() {
        let ours: Vec<f32> = out.hidden_states[i].flatten_all().unwrap().to_vec1().unwrap();
        let d = max_diff(&ours, &flat(b));
        assert!(d < TOLERANCE, "{name}: output of block {i} differs by up to {d}");
    }
}

#[test]
fn grouped_kv_heads_untied_head_f32() {
    check("llama-gqa");
}

#[test]
fn weights_stored_in_f16() {
    check("llama-gqa-f16");
}

#[test]
fn tied_head_bf16_sharded_checkpoint() {
    assert!(fixture("llama-tied-bf16-sharded").join(WEIGHTS_INDEX_FILE).is_file(), "the fixture must be sharded");
    check("llama-tied-bf16-sharded");
}

#[test]
fn cli_logits_json_matches_transformers() {
    let r = reference("llama-gqa");
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["ids"].clone()).unwrap();
    let arg: Vec<String> = ids[1].iter().map(|i| i.to_string()).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_onebit"))
        .args(["logits", "--model"])
        .arg(fixture("llama-gqa"))
        .args(["--ids", &arg.join(","), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["logits"].as_array().unwrap();
    assert_eq!(rows.len(), ids[1].len());
    let d = max_diff(&flat(&v["logits"]), &flat(&r["logits"][1]));
    assert!(d < TOLERANCE, "CLI logits differ from transformers by up to {d}");
}
