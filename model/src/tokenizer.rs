//! Tokenizers, all stored as a Hugging Face tokenizer.json (so transformers'
//! `PreTrainedTokenizerFast(tokenizer_file=...)` reads them too):
//!
//! * any tokenizer.json, through the `tokenizers` crate;
//! * a character-level tokenizer (nanoGPT's `shakespeare_char`: the sorted set of
//!   characters of the training text, ids 0..n); text with a character outside the
//!   vocabulary cannot be encoded and says which character;
//! * a byte-level BPE trained with `tokenizers` (GPT-2 style: every byte is in the
//!   alphabet, so any text encodes).

use crate::error::ModelError;
use onebit_core::format::write_atomically;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// The end-of-text special token of the byte-level BPE.
pub const BPE_END_OF_TEXT: &str = "<|endoftext|>";

/// A tokenizer and the file it came from (for error messages).
pub struct TextTokenizer {
    pub inner: Tokenizer,
    /// Where it was read from or last saved to (`<built in memory>` otherwise).
    pub path: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextTokenizer({}, vocab {})", self.path.display(), self.vocab_size())
    }
}

impl TextTokenizer {
    /// Read a tokenizer.json.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile { path: path.into(), what: "tokenizer file does not exist".into() });
        }
        let inner = Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            path: path.into(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Ok(TextTokenizer { inner, path: path.into() })
    }

    /// Parse tokenizer.json text.
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let path = PathBuf::from("<built in memory>");
        let inner: Tokenizer = json.parse().map_err(|e| ModelError::Tokenizer {
            path: path.clone(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Ok(TextTokenizer { inner, path })
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encode `text` (with the tokenizer's own special tokens, as transformers'
    /// `tokenizer(text)` does). `origin` names the text's file in errors.
    pub fn encode(&self, text: &str, origin: &Path) -> Result<Vec<u32>, ModelError> {
        match self.inner.encode(text, true) {
            Ok(enc) => Ok(enc.get_ids().to_vec()),
            Err(e) => {
                // Name the first character the vocabulary lacks, when that is the problem.
                let culprit = text.char_indices().find(|(_, c)| {
                    let mut buf = [0u8; 4];
                    self.inner.encode(&*c.encode_utf8(&mut buf), false).is_err()
                });
                let message = match culprit {
                    Some((at, c)) => format!(
                        "the tokenizer {} cannot encode this text: character {c:?} (U+{:04X}) at byte {at} is not in its vocabulary",
                        self.path.display(),
                        c as u32
                    ),
                    None => format!("the tokenizer {} cannot encode this text: {e}", self.path.display()),
                };
                Err(ModelError::Tokenizer { path: origin.into(), message })
            }
        }
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), message: format!("cannot decode: {e}") })
    }

    /// Write tokenizer.json atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), ModelError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| ModelError::Tokenizer { path: path.into(), message: format!("cannot serialise: {e}") })?;
        write_atomically(path, json.as_bytes()).map_err(|e| ModelError::io(path, e))?;
        self.path = path.into();
        Ok(())
    }
}

/// The character-level tokenizer of a text: its sorted distinct characters get ids 0..n.
pub fn build_char_tokenizer(text: &str) -> Result<TextTokenizer, ModelError> {
    let chars: BTreeSet<char> = text.chars().collect();
    if chars.is_empty() {
        return Err(ModelError::Input("cannot build a character tokenizer from empty text".into()));
    }
    let vocab: serde_json::Map<String, serde_json::Value> =
        chars.iter().enumerate().map(|(i, c)| (c.to_string(), serde_json::json!(i))).collect();
    // WordLevel over single characters: a Split pre-tokenizer isolates every
    // character; the unk token is not in the vocabulary, so an unknown character
    // is an error rather than a silent substitution. Fuse joins on decode.
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": false},
        "post_processor": null,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    TextTokenizer::from_json(&json.to_string())
}

/// Train a byte-level BPE (GPT-2 style, `<|endoftext|>` as its one special token)
/// of `vocab_size` entries on text files.
pub fn train_bpe_tokenizer(files: &[PathBuf], vocab_size: usize) -> Result<TextTokenizer, ModelError> {
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::normalizers::NormalizerWrapper;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, TokenizerBuilder};

    let alphabet = ByteLevel::alphabet();
    let alphabet_len = alphabet.len();
    if vocab_size < alphabet_len + 1 {
        return Err(ModelError::Input(format!(
            "a byte-level BPE needs a vocabulary of at least {} (256 bytes and {BPE_END_OF_TEXT})",
            alphabet_len + 1
        )));
    }
    for f in files {
        let len = std::fs::metadata(f).map_err(|e| ModelError::io(f, e))?.len();
        if len == 0 {
            return Err(ModelError::Data {
                path: f.clone(),
                message: "is empty: nothing to train a tokenizer on".into(),
            });
        }
    }
    let mut trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(2)
        .special_tokens(vec![AddedToken::from(BPE_END_OF_TEXT.to_string(), true)])
        .initial_alphabet(alphabet.into_iter().collect())
        .build();
    let mut tok = TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
        .with_model(BPE::default())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(Some(ByteLevel::new(false, true, true)))
        .with_decoder(Some(ByteLevel::new(false, true, true)))
        .build()
        .map_err(|e| ModelError::Input(format!("building the BPE tokenizer: {e}")))?;
    let names: Vec<String> = files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    tok.train_from_files(&mut trainer, names).map_err(|e| ModelError::Tokenizer {
        path: files.first().cloned().unwrap_or_default(),
        message: format!("training the BPE failed: {e}"),
    })?;
    Ok(TextTokenizer { inner: Tokenizer::from(tok), path: PathBuf::from("<built in memory>") })
}

/// Read a text file for evaluation or training: UTF-8, not empty.
pub fn read_text(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| ModelError::Data {
        path: path.into(),
        message: format!("is not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })?;
    if text.trim().is_empty() {
        return Err(ModelError::Data { path: path.into(), message: "is empty: no text to evaluate".into() });
    }
    Ok(text)
}

/// `tokenizer.ggml.pre` values for which transformers replaces GPT-2's split
/// by another regex (its `GGUF_PRE_TOKENIZER_SPLITS`); refused here rather than
/// tokenized differently.
const GGUF_OTHER_SPLITS: [&str; 23] = [
    "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "dbrx",
    "smaug-bpe", "tekken", "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "qwen35", "gpt-4o", "llama4",
    "kanana2", "talkie", "minimax-m2",
];

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
fn byte_level_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
        table[b as usize] = if printable {
            char::from_u32(b).expect("latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("valid code point")
        };
    }
    table
}

/// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata, as
/// transformers' GGUF loader builds it for `tokenizer.ggml.model = "gpt2"`
/// (`byte_level_tokenizer` + `add_gguf_special_tokens`): a byte-level BPE of
/// the listed tokens (respelled into GPT-2's byte alphabet where they are not
/// in it) and merges, GPT-2's pre-tokenizer and decoder, the tokens typed
/// CONTROL (3) as special added tokens and USER_DEFINED (4) as plain ones, and
/// BOS/EOS added only when `tokenizer.ggml.add_bos_token`/`add_eos_token` say so.
pub fn from_gguf(file: &crate::gguf::GgufFile) -> Result<TextTokenizer, ModelError> {
    use candle_core::quantized::gguf_file::Value;
    let path = &file.path;
    let bad = |message: String| ModelError::Tokenizer { path: path.clone(), message };
    let model = file.meta_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(bad(format!(
            "tokenizer.ggml.model is \"{model}\"; only byte-level BPE (\"gpt2\") tokenizers are built from GGUF metadata"
        )));
    }
    if let Ok(pre) = file.meta_str("tokenizer.ggml.pre") {
        if GGUF_OTHER_SPLITS.contains(&pre) {
            return Err(bad(format!(
                "tokenizer.ggml.pre is \"{pre}\", which splits text by its own regex; only GPT-2's split is supported"
            )));
        }
    }
    let strings = |key: &str| -> Result<Vec<String>, ModelError> {
        match file.meta(key)? {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(bad(format!("{key}[{i}] is {v:?}, not a string"))),
                })
                .collect(),
            v => Err(bad(format!("{key} is {v:?}, not an array"))),
        }
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?;
    let types: Vec<i64> = match file.content.metadata.get("tokenizer.ggml.token_type") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::I32(x) => Ok(*x as i64),
                Value::U32(x) => Ok(*x as i64),
                Value::I64(x) => Ok(*x),
                Value::U8(x) => Ok(*x as i64),
                Value::I8(x) => Ok(*x as i64),
                v => Err(bad(format!("tokenizer.ggml.token_type holds {v:?}, not integers"))),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(bad(format!("tokenizer.ggml.token_type is {v:?}, not an array"))),
    };
    let alphabet = byte_level_alphabet();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let spelled = if in_alphabet(t) { t.clone() } else { t.bytes().map(|b| alphabet[b as usize]).collect() };
        vocab.insert(spelled, serde_json::json!(i));
    }
    if vocab.len() != tokens.len() {
        return Err(bad(format!("tokenizer.ggml.tokens lists {} tokens but only {} distinct ones", tokens.len(), vocab.len())));
    }
    let mut merge_pairs = Vec::with_capacity(merges.len());
    for (i, m) in merges.iter().enumerate() {
        let (a, b) = m.split_once(' ').ok_or_else(|| bad(format!("tokenizer.ggml.merges[{i}] = {m:?} is not two tokens")))?;
        merge_pairs.push(serde_json::json!([a, b]));
    }
    let added = |special: bool, id: usize, content: &str| {
        serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                           "normalized": false, "special": special})
    };
    let mut added_tokens = Vec::new();
    for (i, (t, ty)) in tokens.iter().zip(&types).enumerate() {
        // A CONTROL token outside the byte alphabet is a llama.cpp mislabel (transformers skips it too).
        if *ty == 3 && in_alphabet(t) {
            added_tokens.push(added(true, i, t));
        } else if *ty == 4 && vocab.contains_key(t.as_str()) {
            added_tokens.push(added(false, i, t));
        }
    }
    let flag = |key: &str| matches!(file.content.metadata.get(key), Some(Value::Bool(true)));
    let special_id = |key: &str| -> Result<Option<(usize, String)>, ModelError> {
        if !file.content.metadata.contains_key(key) {
            return Ok(None);
        }
        let id = file.meta_usize(key)?;
        let t = tokens.get(id).ok_or_else(|| bad(format!("{key} = {id} is outside the {} tokens", tokens.len())))?;
        Ok(Some((id, t.clone())))
    };
    let mut single = Vec::new();
    let mut specials = serde_json::Map::new();
    let mut push_special = |(id, t): (usize, String), single: &mut Vec<serde_json::Value>| {
        single.push(serde_json::json!({"SpecialToken": {"id": t, "type_id": 0}}));
        specials.insert(t.clone(), serde_json::json!({"id": t, "ids": [id], "tokens": [t]}));
    };
    if flag("tokenizer.ggml.add_bos_token") {
        let bos = special_id("tokenizer.ggml.bos_token_id")?.ok_or_else(|| bad("add_bos_token is set but bos_token_id is missing".into()))?;
        push_special(bos, &mut single);
    }
    single.push(serde_json::json!({"Sequence": {"id": "A", "type_id": 0}}));
    if flag("tokenizer.ggml.add_eos_token") {
        let eos = special_id("tokenizer.ggml.eos_token_id")?.ok_or_else(|| bad("add_eos_token is set but eos_token_id is missing".into()))?;
        push_special(eos, &mut single);
    }
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "TemplateProcessing", "single": single, "pair": single, "special_tokens": specials},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merge_pairs}
    });
    let mut tok = TextTokenizer::from_json(&json.to_string()).map_err(|e| bad(format!("building the tokenizer: {e}")))?;
    tok.path = path.clone();
    Ok(tok)
}
