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
