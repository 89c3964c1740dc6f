//! Config parsing (defaults, refusals naming the field) and the tokenizers.

use onebit_model::tokenizer::{build_char_tokenizer, train_bpe_tokenizer, TextTokenizer};
use onebit_model::LlamaConfig;
use serde_json::json;
use std::path::Path;

fn parse(v: serde_json::Value) -> Result<LlamaConfig, String> {
    LlamaConfig::from_hf_json(&v, Path::new("config.json")).map_err(|e| e.to_string())
}

#[test]
fn absent_fields_take_transformers_defaults() {
    let c = parse(json!({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 100, "intermediate_size": 128})).unwrap();
    assert_eq!(c.num_key_value_heads, 4);
    assert_eq!(c.head_dim, 16);
    assert_eq!(c.max_position_embeddings, 2048);
    assert_eq!(c.rms_norm_eps, 1e-6);
    assert_eq!(c.rope_theta, 10000.0);
    assert!(!c.tie_word_embeddings);
    // And to_hf_json parses back to the same config.
    assert_eq!(parse(c.to_hf_json()).unwrap(), c);
}

#[test]
fn unsupported_configs_name_the_field() {
    let base = json!({"hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        parse(b).unwrap_err()
    };
    for (field, value) in [
        ("hidden_act", json!("gelu")),
        ("rope_scaling", json!({"type": "linear", "factor": 2.0})),
        ("attention_bias", json!(true)),
        ("mlp_bias", json!(true)),
        ("model_type", json!("mistral")),
        ("num_key_value_heads", json!(3)),
        ("vocab_size", json!(0)),
        ("hidden_size", json!("big")),
        ("architectures", json!(["GPT2LMHeadModel"])),
    ] {
        let e = with(field, value);
        assert!(e.contains(&format!("`{field}`")) && e.contains("config.json"), "{field}: {e}");
    }
    assert!(parse(json!({"hidden_size": 60, "num_attention_heads": 8})).unwrap_err().contains("num_attention_heads"));
}

#[test]
fn char_tokenizer_round_trips_and_refuses_unknown_characters() {
    let text = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n";
    let tok = build_char_tokenizer(text).unwrap();
    let chars: std::collections::BTreeSet<char> = text.chars().collect();
    assert_eq!(tok.vocab_size(), chars.len());
    let ids = tok.encode(text, Path::new("input.txt")).unwrap();
    assert_eq!(ids.len(), text.chars().count());
    // Ids follow the sorted characters, like nanoGPT's stoi.
    assert_eq!(ids[0] as usize, chars.iter().position(|&c| c == 'F').unwrap());
    assert_eq!(tok.decode(&ids).unwrap(), text);
    let e = tok.encode("hear me, Zeus", Path::new("data.txt")).unwrap_err().to_string();
    assert!(e.contains("data.txt") && e.contains("'Z'"), "{e}");

    // Saved and read back as tokenizer.json.
    let path = std::env::temp_dir().join(format!("onebit-char-tok-{}.json", std::process::id()));
    let mut tok = tok;
    tok.save(&path).unwrap();
    let back = TextTokenizer::from_file(&path).unwrap();
    assert_eq!(back.encode(text, Path::new("x")).unwrap(), ids);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn byte_level_bpe_encodes_any_text() {
    let dir = std::env::temp_dir().join(format!("onebit-bpe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    let text = "the quick brown fox jumps over the lazy dog. the dog sleeps; the fox runs.\n".repeat(50);
    std::fs::write(&corpus, &text).unwrap();
    let mut tok = train_bpe_tokenizer(&[corpus], 300).unwrap();
    assert!(tok.vocab_size() > 257 && tok.vocab_size() <= 300, "{}", tok.vocab_size());
    let ids = tok.encode(&text, Path::new("x")).unwrap();
    assert!(ids.len() < text.len() / 2, "merges compress the training text ({} ids)", ids.len());
    // Unseen characters still encode, byte by byte.
    let odd = "Zürich → 東京 ∑\n";
    assert_eq!(tok.decode(&tok.encode(odd, Path::new("x")).unwrap()).unwrap(), odd);
    tok.save(&dir.join("tokenizer.json")).unwrap();
    assert!(TextTokenizer::from_file(&dir.join("tokenizer.json")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rope_theta_from_transformers_5_rope_parameters() {
    let c = parse(json!({"hidden_size": 64, "num_attention_heads": 4, "rope_parameters": {"rope_theta": 500.0, "rope_type": "default"}})).unwrap();
    assert_eq!(c.rope_theta, 500.0);
    let e = parse(json!({"hidden_size": 64, "num_attention_heads": 4, "rope_parameters": {"rope_theta": 500.0, "rope_type": "llama3"}})).unwrap_err();
    assert!(e.contains("`rope_parameters.rope_type`"), "{e}");
}
