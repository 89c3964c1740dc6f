//! Bad input to `onebit logits` / `onebit ppl`: a clear error naming the file and
//! the problem, a non-zero exit, and no panic.

use onebit_model::checkpoint::{write_random_hf_dir, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use onebit_model::tokenizer::build_char_tokenizer;
use onebit_model::LlamaConfig;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onebit-model-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config() -> LlamaConfig {
    let mut c = LlamaConfig::tiny(20, 16, 1, 2, 1);
    c.max_position_embeddings = 32;
    c
}

/// A tiny model directory with a character tokenizer of "abc \n" + letters.
fn model_dir(name: &str) -> PathBuf {
    let d = scratch(name);
    let dir = d.join("model");
    write_random_hf_dir(&dir, &config(), 1).unwrap();
    let mut tok = build_char_tokenizer("abcdefghij klmnopq\n").unwrap();
    tok.save(&dir.join(TOKENIZER_FILE)).unwrap();
    dir
}

/// Run the CLI; return stderr after checking the exit is a clean failure.
fn fails(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_onebit")).args(args.iter().map(|a| a.as_ref())).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}; stderr: {err}", out.status);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn ppl(model: &Path, data: &Path) -> String {
    fails(&[&"ppl", &"--model", &model, &"--data", &data, &"--seq-len", &"8"])
}

fn text_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("data.txt");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn directory_without_config() {
    let d = scratch("noconfig");
    let e = fails(&[&"logits", &"--model", &d, &"--ids", &"1,2"]);
    assert!(e.contains(d.to_str().unwrap()) && e.contains("no config.json"), "{e}");
}

#[test]
fn unsupported_config_field() {
    let dir = model_dir("act");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    v["hidden_act"] = "gelu".into();
    std::fs::write(dir.join(CONFIG_FILE), v.to_string()).unwrap();
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1"]);
    assert!(e.contains("config.json") && e.contains("`hidden_act`") && e.contains("gelu"), "{e}");
}

#[test]
fn tensor_with_the_wrong_shape() {
    let dir = model_dir("shape");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    v["intermediate_size"] = 44.into();
    std::fs::write(dir.join(CONFIG_FILE), v.to_string()).unwrap();
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1"]);
    assert!(e.contains(WEIGHTS_FILE) && e.contains("mlp.") && e.contains("shape") && e.contains("44"), "{e}");
}

#[test]
fn missing_tensor_and_corrupt_weights() {
    let dir = model_dir("corrupt");
    std::fs::write(dir.join(WEIGHTS_FILE), b"definitely not safetensors").unwrap();
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1"]);
    assert!(e.contains(WEIGHTS_FILE) && e.contains("not a valid safetensors"), "{e}");

    let dir = model_dir("untied");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    // The checkpoint has a separate head; claim more layers than it holds.
    v["num_hidden_layers"] = 2.into();
    std::fs::write(dir.join(CONFIG_FILE), v.to_string()).unwrap();
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1"]);
    assert!(e.contains("model.layers.1.") && e.contains("missing"), "{e}");
}

#[test]
fn bad_ids() {
    let dir = model_dir("ids");
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1,x"]);
    assert!(e.contains("`x` is not a token id"), "{e}");
    let e = fails(&[&"logits", &"--model", &dir, &"--ids", &"1,20"]);
    assert!(e.contains("token id 20 is outside the vocabulary"), "{e}");
}

#[test]
fn empty_data_file() {
    let dir = model_dir("empty");
    let data = text_file(dir.parent().unwrap(), "");
    let e = ppl(&dir, &data);
    assert!(e.contains(data.to_str().unwrap()) && e.contains("empty"), "{e}");
}

#[test]
fn text_the_tokenizer_cannot_encode() {
    let dir = model_dir("unencodable");
    let data = text_file(dir.parent().unwrap(), "abc def\nghi jkl mnop\nWXYZ\n");
    let e = ppl(&dir, &data);
    assert!(e.contains(data.to_str().unwrap()) && e.contains("'W'") && e.contains("not in its vocabulary"), "{e}");
}

#[test]
fn too_little_text_for_one_chunk() {
    let dir = model_dir("short");
    let data = text_file(dir.parent().unwrap(), "abc\n");
    let e = ppl(&dir, &data);
    assert!(e.contains("fewer than one chunk"), "{e}");
}

#[test]
fn missing_tokenizer() {
    let dir = model_dir("notok");
    std::fs::remove_file(dir.join(TOKENIZER_FILE)).unwrap();
    let data = text_file(dir.parent().unwrap(), "abc def ghi jkl\n");
    let e = ppl(&dir, &data);
    assert!(e.contains(TOKENIZER_FILE), "{e}");
}

#[test]
fn backends_that_cannot_run() {
    let dir = model_dir("backend");
    let data = text_file(dir.parent().unwrap(), "abc def ghi jkl\n");
    let e = fails(&[&"ppl", &"--model", &dir, &"--data", &data, &"--backend", &"hardware"]);
    assert!(e.contains("needs a 1-bit model file"), "{e}");
    let e = fails(&[&"ppl", &"--model", &dir, &"--data", &data, &"--backend", &"reference"]);
    assert!(e.contains("needs a 1-bit model file"), "{e}");
    // A file that is not a 1-bit model.
    let e = fails(&[&"ppl", &"--model", &data, &"--data", &data]);
    assert!(e.contains(data.to_str().unwrap()) && e.contains("safetensors"), "{e}");
}

#[test]
fn seq_len_beyond_the_model() {
    let dir = model_dir("seqlen");
    let data = text_file(dir.parent().unwrap(), &"abc def ghi\n".repeat(10));
    let e = fails(&[&"ppl", &"--model", &dir, &"--data", &data, &"--seq-len", &"33"]);
    assert!(e.contains("max_position_embeddings = 32"), "{e}");
}
