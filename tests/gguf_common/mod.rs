//! A tiny GGUF file the GGUF tests write themselves (shared by tests/model_gguf.rs
//! and the bad-input tests in tests/model_bad_input.rs).
#![allow(dead_code)]

use onebit_model::candle_core::quantized::{GgmlDType, QTensor};
use onebit_model::candle_core::{Device, Tensor};
use onebit_model::checkpoint::{random_hf_tensors, save_hf_dir};
use onebit_model::gguf::{write_gguf, GgufTokenizerMeta};
use onebit_model::LlamaConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onebit-gguf-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// GPT-2's byte alphabet as 256 single-character tokens, `<|endoftext|>`
/// (control) and three merges, so ordinary ASCII text encodes.
pub fn tiny_tokenizer() -> GgufTokenizerMeta {
    let mut tokens = vec!["<|endoftext|>".to_string()];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        tokens.push(if printable { char::from_u32(b) } else { n += 1; char::from_u32(255 + n) }.unwrap().to_string());
    }
    tokens.extend(["Ġt", "he", "Ġthe"].map(String::from));
    let mut token_types = vec![1; tokens.len()];
    token_types[0] = 3;
    GgufTokenizerMeta { tokens, token_types, merges: vec!["Ġ t".into(), "h e".into(), "Ġt he".into()], bos: Some(0), eos: Some(0) }
}

pub fn tiny_config() -> LlamaConfig {
    // K = 32 and 64: whole Q4_1/Q8_0 blocks of 32. 2 query heads over 1 key/value head.
    let mut c = LlamaConfig::tiny(260, 32, 2, 2, 1);
    c.intermediate_size = 64;
    c.max_position_embeddings = 64;
    c.rms_norm_eps = 1e-5;
    c.rope_theta = 100_000.0;
    c.tie_word_embeddings = true;
    c.bos_token_id = Some(0);
    c.eos_token_id = Some(0);
    c
}

pub fn storage(hf: &str) -> GgmlDType {
    if hf.ends_with("norm.weight") {
        GgmlDType::F32
    } else if hf == "model.embed_tokens.weight" {
        GgmlDType::Q8_0
    } else if hf.ends_with("v_proj.weight") {
        GgmlDType::F16
    } else {
        GgmlDType::Q4_1
    }
}

/// Random weights (larger than the usual 0.02 so the logits are far from
/// uniform) and what they are after a round trip through their GGUF storage type.
pub fn tiny_weights(c: &LlamaConfig) -> (HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let raw: HashMap<String, Tensor> = random_hf_tensors(c, 21, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let t = if t.rank() == 2 { (t * 20.0).unwrap() } else { t };
            (n, t)
        })
        .collect();
    let stored = raw
        .iter()
        .map(|(n, t)| (n.clone(), QTensor::quantize(t, storage(n)).unwrap().dequantize(&Device::Cpu).unwrap()))
        .collect();
    (raw, stored)
}

/// A tiny GGUF file and the Hugging Face directory of the same (dequantised) weights.
pub fn tiny_gguf(dir: &Path) -> (PathBuf, PathBuf) {
    let c = tiny_config();
    let (raw, stored) = tiny_weights(&c);
    let file = dir.join("tiny.gguf");
    write_gguf(&file, &c, &raw, &tiny_tokenizer(), storage).unwrap();
    let hf = dir.join("hf");
    let mut named: Vec<(String, Tensor)> = stored.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    save_hf_dir(&hf, &c, &named).unwrap();
    (file, hf)
}

