//! Bad input to `onebit logits` / `onebit ppl` (Hugging Face directories, GGUF
//! files, text): a clear error naming the file and the problem, a non-zero exit,
//! and no panic.

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

// ------------------------------------------------------------------- GGUF files

mod gguf_common;

/// A valid tiny GGUF (Q4_1, Q8_0, F16, F32 tensors) and its bytes.
fn valid_gguf(name: &str) -> (PathBuf, Vec<u8>) {
    let d = gguf_common::scratch(&format!("bad-{name}"));
    let (file, _) = gguf_common::tiny_gguf(&d);
    let bytes = std::fs::read(&file).unwrap();
    (file, bytes)
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("{:?} not in the file", String::from_utf8_lossy(needle)))
}

/// Byte offset just after a GGUF string (u64 length + bytes), found in the header.
fn after_string(bytes: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    find(bytes, &needle) + needle.len()
}

/// Write `bytes` as a .gguf file beside `like`; run `logits` on it; return stderr.
fn gguf_fails(like: &Path, name: &str, bytes: &[u8]) -> (String, PathBuf) {
    let p = like.with_file_name(format!("{name}.gguf"));
    std::fs::write(&p, bytes).unwrap();
    (fails(&[&"logits", &"--model", &p, &"--ids", &"1,2"]), p)
}

#[test]
fn gguf_truncated_or_not_a_gguf() {
    let (file, bytes) = valid_gguf("trunc");
    // Cut inside the tensor data: the header reads, a tensor's bytes are missing.
    let (e, p) = gguf_fails(&file, "half", &bytes[..bytes.len() / 2]);
    assert!(e.contains(p.to_str().unwrap()) && e.contains("truncated") && e.contains("needs bytes"), "{e}");
    // Cut inside the header.
    let (e, p) = gguf_fails(&file, "header", &bytes[..100]);
    assert!(e.contains(p.to_str().unwrap()) && e.contains("cannot read the GGUF header"), "{e}");
    let (e, _) = gguf_fails(&file, "tiny", &bytes[..3]);
    assert!(e.contains("only 3 bytes"), "{e}");
    let mut wrong = bytes.clone();
    wrong[..4].copy_from_slice(b"GGML");
    let (e, p) = gguf_fails(&file, "magic", &wrong);
    assert!(e.contains(p.to_str().unwrap()) && e.contains("not the magic \"GGUF\""), "{e}");
}

#[test]
fn gguf_unsupported_tensor_types() {
    let (file, bytes) = valid_gguf("types");
    // A type candle knows but this loader does not read (Q4_0), written by candle.
    let d = file.parent().unwrap();
    let c = gguf_common::tiny_config();
    let (raw, _) = gguf_common::tiny_weights(&c);
    let q40 = d.join("q4_0.gguf");
    onebit_model::gguf::write_gguf(&q40, &c, &raw, &gguf_common::tiny_tokenizer(), |n| {
        if n.ends_with("up_proj.weight") { onebit_model::candle_core::quantized::GgmlDType::Q4_0 } else { gguf_common::storage(n) }
    })
    .unwrap();
    let e = fails(&[&"logits", &"--model", &q40, &"--ids", &"1"]);
    assert!(e.contains(q40.to_str().unwrap()) && e.contains("ffn_up.weight") && e.contains("type Q4_0"), "{e}");
    // A type id no GGML reader knows (patched into the tensor directory).
    let mut patched = bytes.clone();
    let at = after_string(&bytes, "blk.0.attn_norm.weight");
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let ty = at + 4 + 8 * n_dims;
    patched[ty..ty + 4].copy_from_slice(&99u32.to_le_bytes());
    let (e, _) = gguf_fails(&file, "type99", &patched);
    assert!(e.contains("type id 99") && e.contains("does not read"), "{e}");
}

#[test]
fn gguf_tensor_size_disagrees_with_its_shape() {
    let (file, bytes) = valid_gguf("size");
    // Claim 64 values for a 32-value F32 norm: its bytes run into the next tensor's.
    let mut patched = bytes.clone();
    let at = after_string(&bytes, "blk.0.attn_norm.weight");
    assert_eq!(u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()), 32);
    patched[at + 4..at + 12].copy_from_slice(&64u64.to_le_bytes());
    let (e, p) = gguf_fails(&file, "overlap", &patched);
    assert!(e.contains(p.to_str().unwrap()) && e.contains("blk.0.attn_norm.weight") && e.contains("size disagrees with its shape"), "{e}");
    // A shape the metadata does not imply: feed_forward_length says 96, the tensors hold 64.
    let mut patched = bytes.clone();
    let at = after_string(&bytes, "llama.feed_forward_length");
    assert_eq!(u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()), 64);
    patched[at + 4..at + 8].copy_from_slice(&96u32.to_le_bytes());
    let (e, _) = gguf_fails(&file, "shape", &patched);
    assert!(e.contains("ffn_") && e.contains("has shape") && e.contains("96"), "{e}");
}

#[test]
fn gguf_missing_tensor_or_other_architecture() {
    let (file, bytes) = valid_gguf("missing");
    let d = file.parent().unwrap();
    let c = gguf_common::tiny_config();
    let (mut raw, _) = gguf_common::tiny_weights(&c);
    raw.remove("model.layers.1.mlp.gate_proj.weight");
    let missing = d.join("missing.gguf");
    onebit_model::gguf::write_gguf(&missing, &c, &raw, &gguf_common::tiny_tokenizer(), gguf_common::storage).unwrap();
    let e = fails(&[&"logits", &"--model", &missing, &"--ids", &"1"]);
    assert!(e.contains(missing.to_str().unwrap()) && e.contains("blk.1.ffn_gate.weight") && e.contains("missing"), "{e}");
    // general.architecture "llama" → "mamba" (same length, so the layout holds).
    let mut other = bytes.clone();
    let at = after_string(&bytes, "general.architecture");
    let value = at + 4 + 8;
    assert_eq!(&bytes[value..value + 5], b"llama");
    other[value..value + 5].copy_from_slice(b"mamba");
    let (e, p) = gguf_fails(&file, "mamba", &other);
    assert!(e.contains(p.to_str().unwrap()) && e.contains("general.architecture is \"mamba\""), "{e}");
    // And through ppl (the tokenizer path) and svid, the same clean failure.
    let data = text_file(d, "abc def ghi\n");
    let e = fails(&[&"ppl", &"--model", &p, &"--data", &data]);
    assert!(e.contains("mamba"), "{e}");
    let e = fails(&[&"svid", &"--teacher", &p, &"--out", &d.join("student")]);
    assert!(e.contains("mamba"), "{e}");
    assert!(!d.join("student").exists(), "nothing half-written");
}
