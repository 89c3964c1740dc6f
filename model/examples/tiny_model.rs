//! Write a tiny random-initialised LLaMA in Hugging Face format with a tokenizer,
//! for demos and for `onebit ppl` without downloads:
//!
//!     cargo run -p onebit-model --example tiny_model -- OUT_DIR [bpe|char]
//!
//! `bpe` (default): byte-level BPE (vocabulary 512) trained on WikiText-2 valid;
//! `char`: the character vocabulary of tinyshakespeare. Data are read from
//! ../shared/data relative to the repository root.

use onebit_model::checkpoint::{write_random_hf_dir, TOKENIZER_FILE};
use onebit_model::tokenizer::{build_char_tokenizer, read_text, train_bpe_tokenizer};
use onebit_model::LlamaConfig;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(PathBuf::from) else {
        eprintln!("usage: tiny_model OUT_DIR [bpe|char]");
        std::process::exit(2);
    };
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    let mut tok = match args.get(1).map(String::as_str).unwrap_or("bpe") {
        "bpe" => train_bpe_tokenizer(&[data.join("wikitext-2/valid.txt")], 512)?,
        "char" => build_char_tokenizer(&read_text(&data.join("tinyshakespeare/input.txt"))?)?,
        other => return Err(format!("unknown tokenizer kind `{other}` (bpe or char)").into()),
    };
    let mut config = LlamaConfig::tiny(tok.vocab_size(), 64, 2, 4, 2);
    config.max_position_embeddings = 256;
    write_random_hf_dir(&out, &config, 1)?;
    tok.save(&out.join(TOKENIZER_FILE))?;
    println!(
        "wrote {} (vocabulary {}, {} layers, hidden {})",
        out.display(),
        config.vocab_size,
        config.num_hidden_layers,
        config.hidden_size
    );
    Ok(())
}
