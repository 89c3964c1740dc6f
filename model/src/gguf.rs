//! GGUF checkpoints (llama.cpp's format) of LLaMA-architecture models, read
//! as full-precision decoders: the config from the `llama.*` metadata, the
//! tokenizer from the `tokenizer.ggml.*` metadata ([`crate::tokenizer::from_gguf`]),
//! and every tensor dequantised to f32 under its Hugging Face name.
//!
//! Parsing and dequantisation are candle's (`quantized::gguf_file`); this module
//! checks the file first so that every problem names the file and the tensor:
//! the magic, the header, the architecture, each tensor's type (F32, F16, Q4_1
//! and Q8_0 are read), that its data lies inside the file and does not run into
//! the next tensor's, and its shape against the config.
//!
//! llama.cpp's converter permutes the rows of `attn_q` and `attn_k` so that
//! each head's rotary pairs are interleaved (`permute` in convert_hf_to_gguf.py);
//! [`reverse_permute`] undoes it, as transformers' GGUF loader does, giving the
//! "rotate half" layout this decoder (and transformers) uses.
//!
//! Memory: tensors are read and dequantised one at a time, so loading holds the
//! f32 model plus one tensor's raw and f32 data.

use crate::config::LlamaConfig;
use crate::error::ModelError;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

/// The first four bytes of every GGUF file.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// Tensor types this loader dequantises.
pub const SUPPORTED_TYPES: [GgmlDType; 4] = [GgmlDType::F32, GgmlDType::F16, GgmlDType::Q4_1, GgmlDType::Q8_0];

/// Whether `path` is a GGUF file: named `*.gguf`, or a file starting with the magic.
pub fn is_gguf(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == GGUF_MAGIC
}

/// Walk the metadata of a GGUF header (without keeping it) for what candle's
/// reader trusts: `general.alignment` must be a power of two (llama.cpp's rule;
/// candle divides by it). Sizes are checked against the file as it goes.
fn check_alignment(r: &mut impl Read, file_len: u64) -> Result<(), String> {
    fn bytes<const N: usize>(r: &mut impl Read) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        r.read_exact(&mut b).map_err(|_| "the header ends early (truncated?)".to_string())?;
        Ok(b)
    }
    fn skip(r: &mut impl Read, n: u64) -> Result<(), String> {
        let got = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(|e| e.to_string())?;
        if got == n { Ok(()) } else { Err("the header ends early (truncated?)".into()) }
    }
    struct Walk<'a, R> {
        r: &'a mut R,
        v1: bool,
        file_len: u64,
    }
    impl<R: Read> Walk<'_, R> {
        fn len(&mut self) -> Result<u64, String> {
            Ok(if self.v1 { u32::from_le_bytes(bytes(self.r)?) as u64 } else { u64::from_le_bytes(bytes(self.r)?) })
        }
        /// Skip one value of type `t`; return it if it is an integer.
        fn value(&mut self, t: u32, depth: usize) -> Result<Option<i128>, String> {
            let fixed = |t| match t {
                0 | 1 | 7 => Some(1u64),
                2 | 3 => Some(2),
                4 | 5 | 6 => Some(4),
                10 | 11 | 12 => Some(8),
                _ => None,
            };
            Ok(match t {
                0 => Some(bytes::<1>(self.r)?[0] as i128),
                1 => Some(bytes::<1>(self.r)?[0] as i8 as i128),
                2 => Some(u16::from_le_bytes(bytes(self.r)?) as i128),
                3 => Some(i16::from_le_bytes(bytes(self.r)?) as i128),
                4 => Some(u32::from_le_bytes(bytes(self.r)?) as i128),
                5 => Some(i32::from_le_bytes(bytes(self.r)?) as i128),
                8 => {
                    let n = self.len()?;
                    if n > self.file_len {
                        return Err(format!("a metadata string claims {n} bytes, more than the file holds"));
                    }
                    skip(self.r, n)?;
                    None
                }
                9 => {
                    if depth > 64 {
                        return Err("metadata arrays nest more than 64 deep".into());
                    }
                    let et = u32::from_le_bytes(bytes(self.r)?);
                    let n = self.len()?;
                    if n > self.file_len {
                        return Err(format!("a metadata array claims {n} values, more than the file holds"));
                    }
                    match fixed(et) {
                        Some(size) => skip(self.r, n.saturating_mul(size))?,
                        None => {
                            for _ in 0..n {
                                self.value(et, depth + 1)?;
                            }
                        }
                    }
                    None
                }
                t => skip(self.r, fixed(t).ok_or_else(|| format!("a metadata value has unknown type {t}"))?).map(|_| None)?,
            })
        }
    }
    let head = bytes::<8>(r)?;
    let v1 = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) == 1;
    let mut w = Walk { r, v1, file_len };
    let _tensors = w.len()?;
    let kvs = w.len()?;
    if kvs > file_len {
        return Err(format!("the header claims {kvs} metadata entries, more than the file holds"));
    }
    for _ in 0..kvs {
        let n = w.len()?;
        if n > file_len {
            return Err(format!("a metadata key claims {n} bytes, more than the file holds"));
        }
        let mut key = vec![0u8; n.min(64) as usize];
        w.r.read_exact(&mut key).map_err(|_| "the header ends early (truncated?)".to_string())?;
        skip(w.r, n - key.len() as u64)?;
        let t = u32::from_le_bytes(bytes(w.r)?);
        let v = w.value(t, 0)?;
        if key == b"general.alignment" {
            if let Some(a) = v.filter(|&a| a <= 0 || a & (a - 1) != 0) {
                return Err(format!("general.alignment is {a}; it must be a power of two"));
            }
        }
    }
    Ok(())
}

/// A GGUF file's header, checked: metadata and tensor directory (no tensor data).
pub struct GgufFile {
    pub path: std::path::PathBuf,
    pub content: Content,
    file_len: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GgufFile({}, {} tensors)", self.path.display(), self.content.tensor_infos.len())
    }
}

fn err(path: &Path, message: impl ToString) -> ModelError {
    ModelError::checkpoint(path, message)
}

/// A candle error's message without the backtrace candle may append.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().trim().to_string()
}

fn type_name(t: GgmlDType) -> String {
    format!("{t:?}")
}

impl GgufFile {
    /// Read and check the header of `path`.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let mut f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
        let file_len = f.metadata().map_err(|e| ModelError::io(path, e))?.len();
        let mut magic = [0u8; 4];
        if file_len < 4 || f.read_exact(&mut magic).is_err() {
            return Err(err(path, format!("not a GGUF file: only {file_len} bytes (truncated?)")));
        }
        if &magic != GGUF_MAGIC {
            return Err(err(
                path,
                format!("not a GGUF file: it starts with the bytes {magic:02x?}, not the magic \"GGUF\""),
            ));
        }
        f.rewind().map_err(|e| ModelError::io(path, e))?;
        let mut reader = std::io::BufReader::new(f);
        check_alignment(&mut reader, file_len).map_err(|e| err(path, format!("cannot read the GGUF header: {e}")))?;
        reader.rewind().map_err(|e| ModelError::io(path, e))?;
        let content = Content::read(&mut reader).map_err(|e| {
            let e = first_line(&e);
            if let Some(rest) = e.split("unknown dtype for tensor ").nth(1) {
                // candle names the type id, not the tensor.
                let id: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                err(path, format!("a tensor has GGML type id {id}, which this loader does not read (it reads F32, F16, Q4_1, Q8_0)"))
            } else {
                err(path, format!("cannot read the GGUF header (truncated or corrupt?): {e}"))
            }
        })?;
        let file = GgufFile { path: path.to_path_buf(), content, file_len };
        file.check_tensor_data()?;
        Ok(file)
    }

    /// Every tensor's type is supported, its element count fits its type's
    /// blocks, and its bytes lie inside the file without running into the next
    /// tensor's (in GGUF a tensor's size follows from its shape and type).
    fn check_tensor_data(&self) -> Result<(), ModelError> {
        let c = &self.content;
        let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(c.tensor_infos.len());
        let mut names: Vec<&String> = c.tensor_infos.keys().collect();
        names.sort();
        for name in names {
            let info = &c.tensor_infos[name];
            if !SUPPORTED_TYPES.contains(&info.ggml_dtype) {
                return Err(err(
                    &self.path,
                    format!(
                        "tensor `{name}` has type {}, which this loader does not read (it reads F32, F16, Q4_1, Q8_0)",
                        type_name(info.ggml_dtype)
                    ),
                ));
            }
            // Checked: a header may claim dimensions whose product overflows.
            let Some(elems) = info.shape.dims().iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
                return Err(err(
                    &self.path,
                    format!("tensor `{name}` has shape {:?}, more values than any file holds", info.shape.dims()),
                ));
            };
            let block = info.ggml_dtype.block_size();
            if elems == 0 || elems % block != 0 {
                return Err(err(
                    &self.path,
                    format!(
                        "tensor `{name}` has shape {:?} ({elems} values), not a whole number of {} blocks of {block}",
                        info.shape.dims(),
                        type_name(info.ggml_dtype)
                    ),
                ));
            }
            let bytes = ((elems / block) as u64).saturating_mul(info.ggml_dtype.type_size() as u64);
            let start = c.tensor_data_offset.saturating_add(info.offset);
            let end = start.saturating_add(bytes);
            if end > self.file_len {
                return Err(err(
                    &self.path,
                    format!(
                        "tensor `{name}` ({} {:?}) needs bytes {start}..{end}, but the file has {} bytes (truncated?)",
                        type_name(info.ggml_dtype),
                        info.shape.dims(),
                        self.file_len
                    ),
                ));
            }
            spans.push((start, end, name));
        }
        spans.sort();
        for w in spans.windows(2) {
            let ((_, end, a), (next, _, b)) = (w[0], w[1]);
            if end > next {
                return Err(err(
                    &self.path,
                    format!(
                        "tensor `{a}` is larger than the space before tensor `{b}` ({} bytes past it): its size disagrees with its shape",
                        end - next
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A metadata value, or an error naming the missing key.
    pub fn meta(&self, key: &str) -> Result<&Value, ModelError> {
        self.content.metadata.get(key).ok_or_else(|| err(&self.path, format!("metadata key `{key}` is missing")))
    }

    /// A non-negative integer metadata value.
    pub fn meta_usize(&self, key: &str) -> Result<usize, ModelError> {
        let v = self.meta(key)?;
        let n = match v {
            Value::U8(x) => Some(*x as u64),
            Value::U16(x) => Some(*x as u64),
            Value::U32(x) => Some(*x as u64),
            Value::U64(x) => Some(*x),
            Value::I8(x) => u64::try_from(*x).ok(),
            Value::I16(x) => u64::try_from(*x).ok(),
            Value::I32(x) => u64::try_from(*x).ok(),
            Value::I64(x) => u64::try_from(*x).ok(),
            _ => None,
        };
        n.map(|n| n as usize).ok_or_else(|| err(&self.path, format!("metadata `{key}` is {v:?}, not a non-negative integer")))
    }

    /// A floating-point metadata value.
    pub fn meta_f64(&self, key: &str) -> Result<f64, ModelError> {
        match self.meta(key)? {
            Value::F32(x) => Ok(*x as f64),
            Value::F64(x) => Ok(*x),
            v => Err(err(&self.path, format!("metadata `{key}` is {v:?}, not a number"))),
        }
    }

    /// A string metadata value.
    pub fn meta_str(&self, key: &str) -> Result<&str, ModelError> {
        match self.meta(key)? {
            Value::String(s) => Ok(s),
            v => Err(err(&self.path, format!("metadata `{key}` is {v:?}, not a string"))),
        }
    }

    /// The decoder's config from the `llama.*` metadata (the keys transformers'
    /// GGUF loader maps). Refuses architectures other than `llama`.
    pub fn config(&self) -> Result<LlamaConfig, ModelError> {
        let arch = self.meta_str("general.architecture")?;
        if arch != "llama" {
            return Err(err(
                &self.path,
                format!("general.architecture is \"{arch}\"; this loader reads LLaMA-architecture models (\"llama\") only"),
            ));
        }
        let p = |k: &str| format!("llama.{k}");
        let hidden_size = self.meta_usize(&p("embedding_length"))?;
        let heads = self.meta_usize(&p("attention.head_count"))?;
        let kv_heads = match self.content.metadata.get(&p("attention.head_count_kv")) {
            Some(_) => self.meta_usize(&p("attention.head_count_kv"))?,
            None => heads,
        };
        let vocab_size = match self.content.metadata.get(&p("vocab_size")) {
            Some(_) => self.meta_usize(&p("vocab_size"))?,
            None => match self.meta("tokenizer.ggml.tokens")? {
                Value::Array(a) => a.len(),
                v => return Err(err(&self.path, format!("metadata `tokenizer.ggml.tokens` is {v:?}, not an array"))),
            },
        };
        let head_dim = match self.content.metadata.get(&p("rope.dimension_count")) {
            Some(_) => self.meta_usize(&p("rope.dimension_count"))?,
            None if heads > 0 => hidden_size / heads,
            None => 0,
        };
        let rope_theta = match self.content.metadata.get(&p("rope.freq_base")) {
            Some(_) => self.meta_f64(&p("rope.freq_base"))?,
            None => 10000.0,
        };
        if self.content.metadata.contains_key(&p("rope.scaling.type")) {
            let t = self.meta_str(&p("rope.scaling.type")).unwrap_or("?");
            if t != "none" {
                return Err(err(&self.path, format!("llama.rope.scaling.type is \"{t}\"; only plain RoPE is supported")));
            }
        }
        let token = |k: &str| -> Result<Option<u32>, ModelError> {
            match self.content.metadata.get(k) {
                None => Ok(None),
                Some(_) => Ok(Some(self.meta_usize(k)? as u32)),
            }
        };
        // Through the same checks (and transformers' defaults) as a config.json.
        let json = serde_json::json!({
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": vocab_size,
            "hidden_size": hidden_size,
            "intermediate_size": self.meta_usize(&p("feed_forward_length"))?,
            "num_hidden_layers": self.meta_usize(&p("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": head_dim,
            "max_position_embeddings": self.meta_usize(&p("context_length"))?,
            "rms_norm_eps": self.meta_f64(&p("attention.layer_norm_rms_epsilon"))?,
            "rope_theta": rope_theta,
            "tie_word_embeddings": !self.content.tensor_infos.contains_key("output.weight"),
            "bos_token_id": token("tokenizer.ggml.bos_token_id")?,
            "eos_token_id": token("tokenizer.ggml.eos_token_id")?,
        });
        LlamaConfig::from_hf_json(&json, &self.path)
    }

    /// One tensor dequantised to f32, in Hugging Face layout (N×K for linears).
    pub fn tensor_f32(&self, name: &str, device: &Device) -> Result<Tensor, ModelError> {
        if !self.content.tensor_infos.contains_key(name) {
            return Err(err(&self.path, format!("tensor `{name}` is missing")));
        }
        let f = std::fs::File::open(&self.path).map_err(|e| ModelError::io(&self.path, e))?;
        let mut reader = std::io::BufReader::new(f);
        let q = self
            .content
            .tensor(&mut reader, name, device)
            .map_err(|e| err(&self.path, format!("tensor `{name}`: {}", first_line(&e))))?;
        let t = q.dequantize(device).map_err(|e| err(&self.path, format!("tensor `{name}`: {}", first_line(&e))))?;
        Ok(t.to_dtype(DType::F32)?)
    }
}

/// llama.cpp's tensor names and Hugging Face's: whole names, then per-block suffixes
/// (`blk.{i}.` ↔ `model.layers.{i}.`).
const WHOLE_NAMES: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];
const BLOCK_NAMES: [(&str, &str); 9] = [
    ("attn_norm.weight", "input_layernorm.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"),
    ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"),
    ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"),
    ("ffn_down.weight", "mlp.down_proj.weight"),
];

/// Map a name between the two conventions; `to_hf` picks the direction.
fn map_name(name: &str, to_hf: bool) -> Option<String> {
    let pick = |(g, h): (&'static str, &'static str)| if to_hf { (g, h) } else { (h, g) };
    if let Some((_, to)) = WHOLE_NAMES.iter().copied().map(pick).find(|(from, _)| *from == name) {
        return Some(to.to_string());
    }
    let (from_prefix, to_prefix) = if to_hf { ("blk.", "model.layers.") } else { ("model.layers.", "blk.") };
    let (layer, part) = name.strip_prefix(from_prefix)?.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (_, to) = BLOCK_NAMES.iter().copied().map(pick).find(|(from, _)| *from == part)?;
    Some(format!("{to_prefix}{layer}.{to}"))
}

/// GGUF tensor name → Hugging Face name, for the tensors of a LLaMA decoder.
pub fn hf_name(gguf: &str) -> Option<String> {
    map_name(gguf, true)
}

/// Hugging Face name → GGUF tensor name (the inverse of [`hf_name`]).
pub fn gguf_name(hf: &str) -> Option<String> {
    map_name(hf, false)
}

/// Undo llama.cpp's row permutation of a query or key weight (N×K, N = heads ×
/// head_dim): within each head, GGUF row 2j + p holds Hugging Face row
/// p·(head_dim/2) + j. transformers' `reverse_permute_weights`:
/// `w.reshape(heads, head_dim/2, 2, K).swapaxes(1, 2).reshape(N, K)`.
pub fn reverse_permute(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (n, k) = w.dims2()?;
    if heads == 0 || n % (2 * heads) != 0 {
        candle_core::bail!("cannot un-permute a {n}×{k} weight over {heads} heads");
    }
    w.reshape((heads, n / heads / 2, 2, k))?.transpose(1, 2)?.contiguous()?.reshape((n, k))
}

/// llama.cpp's permutation (the inverse of [`reverse_permute`]), for writing
/// GGUF files in tests: `w.reshape(heads, 2, head_dim/2, K).swapaxes(1, 2)`.
pub fn permute(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (n, k) = w.dims2()?;
    if heads == 0 || n % (2 * heads) != 0 {
        candle_core::bail!("cannot permute a {n}×{k} weight over {heads} heads");
    }
    w.reshape((heads, 2, n / heads / 2, k))?.transpose(1, 2)?.contiguous()?.reshape((n, k))
}

/// Every tensor `config` implies, dequantised to f32 under its Hugging Face
/// name, with q and k un-permuted; shapes are checked against the config.
/// Extra GGUF tensors (e.g. `rope_freqs.weight`) are ignored.
pub fn load_tensors(
    file: &GgufFile,
    config: &LlamaConfig,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut out = HashMap::new();
    for (hf, shape) in config.hf_tensor_shapes() {
        let name = gguf_name(&hf).expect("every decoder tensor has a GGUF name");
        let info = file.content.tensor_infos.get(&name).ok_or_else(|| {
            err(&file.path, format!("tensor `{name}` ({hf}) is missing"))
        })?;
        if info.shape.dims() != shape.as_slice() {
            return Err(err(
                &file.path,
                format!(
                    "tensor `{name}` has shape {:?} (rows × columns), expected {shape:?} from the llama.* metadata",
                    info.shape.dims()
                ),
            ));
        }
        let mut t = file.tensor_f32(&name, device)?;
        if hf.ends_with("self_attn.q_proj.weight") {
            t = reverse_permute(&t, config.num_attention_heads)?;
        } else if hf.ends_with("self_attn.k_proj.weight") {
            t = reverse_permute(&t, config.num_key_value_heads)?;
        }
        if let Some(i) = t.flatten_all()?.to_vec1::<f32>()?.iter().position(|v| !v.is_finite()) {
            return Err(err(&file.path, format!("tensor `{name}` holds a non-finite value at flat index {i}")));
        }
        out.insert(hf, t);
    }
    Ok(out)
}

/// Metadata of a byte-level BPE tokenizer, as llama.cpp stores it.
#[derive(Debug, Clone, Default)]
pub struct GgufTokenizerMeta {
    pub tokens: Vec<String>,
    /// GGUF token types: 1 normal, 3 control, 4 user-defined, ...
    pub token_types: Vec<i32>,
    /// "left right" pairs, best first.
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
}

/// Write a LLaMA decoder's f32 tensors (Hugging Face names) as a GGUF file the
/// way llama.cpp's converter lays it out: `llama.*` metadata from `config`,
/// llama.cpp tensor names, q and k rows permuted, each tensor stored as
/// `dtype_of(hf_name)` (quantised by candle). For tests and small tools; the
/// file is written to a temporary name and renamed.
pub fn write_gguf(
    path: &Path,
    config: &LlamaConfig,
    tensors: &HashMap<String, Tensor>,
    tokenizer: &GgufTokenizerMeta,
    dtype_of: impl Fn(&str) -> GgmlDType,
) -> Result<(), ModelError> {
    use candle_core::quantized::QTensor;
    let c = config;
    let s = |v: &str| Value::String(v.to_string());
    let u = |v: usize| Value::U32(v as u32);
    let mut meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), s("llama")),
        ("general.name".into(), s("onebit test model")),
        ("llama.block_count".into(), u(c.num_hidden_layers)),
        ("llama.context_length".into(), u(c.max_position_embeddings)),
        ("llama.embedding_length".into(), u(c.hidden_size)),
        ("llama.feed_forward_length".into(), u(c.intermediate_size)),
        ("llama.attention.head_count".into(), u(c.num_attention_heads)),
        ("llama.attention.head_count_kv".into(), u(c.num_key_value_heads)),
        ("llama.rope.freq_base".into(), Value::F32(c.rope_theta as f32)),
        ("llama.rope.dimension_count".into(), u(c.head_dim)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(c.rms_norm_eps as f32)),
        ("llama.vocab_size".into(), u(c.vocab_size)),
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("default")),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokenizer.tokens.iter().map(|t| s(t)).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(tokenizer.token_types.iter().map(|&t| Value::I32(t)).collect())),
        ("tokenizer.ggml.merges".into(), Value::Array(tokenizer.merges.iter().map(|m| s(m)).collect())),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
    ];
    if let Some(b) = tokenizer.bos {
        meta.push(("tokenizer.ggml.bos_token_id".into(), Value::U32(b)));
    }
    if let Some(e) = tokenizer.eos {
        meta.push(("tokenizer.ggml.eos_token_id".into(), Value::U32(e)));
    }
    let mut qtensors: Vec<(String, QTensor)> = Vec::new();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for hf in names {
        let name = gguf_name(hf).ok_or_else(|| ModelError::Input(format!("no GGUF name for tensor `{hf}`")))?;
        let mut t = tensors[hf].to_dtype(DType::F32)?;
        if hf.ends_with("self_attn.q_proj.weight") {
            t = permute(&t, c.num_attention_heads)?;
        } else if hf.ends_with("self_attn.k_proj.weight") {
            t = permute(&t, c.num_key_value_heads)?;
        }
        let q = QTensor::quantize(&t, dtype_of(hf)).map_err(|e| ModelError::Input(format!("quantising `{hf}`: {e}")))?;
        qtensors.push((name, q));
    }
    let tmp = path.with_extension("gguf.tmp");
    let write = || -> candle_core::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensor_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        candle_core::quantized::gguf_file::write(&mut f, &meta_refs, &tensor_refs)?;
        std::io::Write::flush(&mut f)?;
        Ok(())
    };
    write().map_err(|e| ModelError::checkpoint(&tmp, format!("writing GGUF: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header by hand: metadata (key, type id, value bytes) and
    /// tensors (name, dims, type id, offset), then `data`.
    fn gguf(meta: &[(&str, u32, Vec<u8>)], tensors: &[(&str, &[u64], u32, u64)], data: &[u8]) -> Vec<u8> {
        let string = |s: &str| [(s.len() as u64).to_le_bytes().as_slice(), s.as_bytes()].concat();
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend((tensors.len() as u64).to_le_bytes());
        b.extend((meta.len() as u64).to_le_bytes());
        for (k, t, v) in meta {
            b.extend(string(k));
            b.extend(t.to_le_bytes());
            b.extend(v);
        }
        for (name, dims, t, offset) in tensors {
            b.extend(string(name));
            b.extend((dims.len() as u32).to_le_bytes());
            dims.iter().for_each(|d| b.extend(d.to_le_bytes()));
            b.extend(t.to_le_bytes());
            b.extend(offset.to_le_bytes());
        }
        while b.len() % 32 != 0 {
            b.push(0);
        }
        b.extend(data);
        b
    }

    fn open_bytes(name: &str, bytes: &[u8]) -> Result<GgufFile, ModelError> {
        let path = std::env::temp_dir().join(format!("onebit-gguf-unit-{name}-{}.gguf", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let r = GgufFile::open(&path);
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn a_valid_hand_made_header_opens() {
        let f = open_bytes("ok", &gguf(&[("general.alignment", 4, 32u32.to_le_bytes().to_vec())], &[("t", &[4], 0, 0)], &[0; 16])).unwrap();
        assert_eq!(f.content.tensor_infos.len(), 1);
    }

    /// Found by fuzzing (fuzz/regressions/gguf/): dimensions whose product
    /// overflows panicked in the size check (and wrapped in release builds).
    #[test]
    fn a_shape_with_more_values_than_a_usize_is_an_error() {
        let e = open_bytes("overflow", &gguf(&[], &[("t", &[1 << 32, 1 << 32, 2], 0, 0)], &[0; 16])).unwrap_err().to_string();
        assert!(e.contains("tensor `t`") && e.contains("more values than any file holds"), "{e}");
    }

    /// candle divides by general.alignment: 0 (or any non-power of two) is refused first.
    #[test]
    fn an_alignment_of_zero_is_an_error() {
        for a in [0u32, 12] {
            let e = open_bytes("align", &gguf(&[("general.alignment", 4, a.to_le_bytes().to_vec())], &[], &[])).unwrap_err().to_string();
            assert!(e.contains(&format!("general.alignment is {a}")), "{e}");
        }
    }

    #[test]
    fn metadata_lengths_past_the_file_are_errors() {
        let huge = (1u64 << 40).to_le_bytes().to_vec();
        let e = open_bytes("string", &gguf(&[("k", 8, huge.clone())], &[], &[])).unwrap_err().to_string();
        assert!(e.contains("cannot read the GGUF header"), "{e}");
        let array = [8u32.to_le_bytes().as_slice(), &huge].concat();
        let e = open_bytes("array", &gguf(&[("k", 9, array)], &[], &[])).unwrap_err().to_string();
        assert!(e.contains("cannot read the GGUF header"), "{e}");
    }

    #[test]
    fn permutation_round_trips_and_interleaves_pairs() {
        // 2 heads of width 4 (2 rotary pairs each), K = 3.
        let w = Tensor::arange(0f32, 24.0, &Device::Cpu).unwrap().reshape((8, 3)).unwrap();
        let p = permute(&w, 2).unwrap();
        // Head 0's HF rows 0,1 | 2,3 (first half | second half) become GGUF rows 0,2,1,3.
        let rows: Vec<f32> = p.narrow(1, 0, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(rows, vec![0.0, 6.0, 3.0, 9.0, 12.0, 18.0, 15.0, 21.0]);
        let back = reverse_permute(&p, 2).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), w.to_vec2::<f32>().unwrap());
        assert!(reverse_permute(&w, 3).is_err());
    }

    #[test]
    fn names_map_both_ways() {
        for hf in ["model.embed_tokens.weight", "model.layers.12.mlp.down_proj.weight", "model.layers.0.self_attn.k_proj.weight", "lm_head.weight"] {
            assert_eq!(hf_name(&gguf_name(hf).unwrap()).as_deref(), Some(hf));
        }
        assert_eq!(hf_name("rope_freqs.weight"), None);
        assert_eq!(hf_name("blk.x.attn_q.weight"), None);
    }
}
