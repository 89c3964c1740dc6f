//! Checkpoints in and out: Hugging Face `LlamaForCausalLM` directories
//! (config.json + model.safetensors, or sharded with model.safetensors.index.json;
//! f32/f16/bf16, loaded as f32) and 1-bit model files (onebit_core::format).
//!
//! Every tensor is checked against the config before the decoder is built, and
//! every problem names the file it is in.

use crate::config::LlamaConfig;
use crate::error::ModelError;
use crate::linear::{BackendLinear, BlockLinear, LinearKind};
use crate::llama::{Block, Llama, LINEAR_NAMES};
use candle_core::{DType, Device, Tensor};
use onebit_core::backend::LinearBackend;
use onebit_core::format::{write_atomically, OneBitModel};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Read `dir/config.json`.
pub fn read_hf_config(dir: &Path) -> Result<LlamaConfig, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::MissingFile {
            path: dir.into(),
            what: "is not a directory (expected a Hugging Face model directory)".into(),
        });
    }
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            path: dir.into(),
            what: format!("no {CONFIG_FILE}: not a Hugging Face model directory"),
        });
    }
    LlamaConfig::from_file(&path)
}

/// The safetensors files of a checkpoint directory (one, or the shards of the index).
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(WEIGHTS_INDEX_FILE);
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::checkpoint(&index, format!("not valid JSON: {e}")))?;
        let map = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::checkpoint(&index, "no `weight_map` object"))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for (name, file) in map {
            let file =
                file.as_str().filter(|f| !f.contains('/') && !f.contains('\\') && !f.is_empty()).ok_or_else(|| {
                    ModelError::checkpoint(&index, format!("weight_map entry for `{name}` is not a file name"))
                })?;
            let p = dir.join(file);
            if !files.contains(&p) {
                files.push(p);
            }
        }
        files.sort();
        return Ok(files);
    }
    let what = if dir.join("pytorch_model.bin").is_file() {
        format!("only PyTorch .bin weights; this loader reads {WEIGHTS_FILE} (save with safe_serialization=True)")
    } else {
        format!("no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE}")
    };
    Err(ModelError::MissingFile { path: dir.into(), what })
}

/// Convert one safetensors tensor to an f32 candle tensor.
fn to_f32_tensor(view: &TensorView, name: &str, file: &Path, device: &Device) -> Result<Tensor, ModelError> {
    let dtype = match view.dtype() {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        d => {
            return Err(ModelError::checkpoint(
                file,
                format!("tensor `{name}` has dtype {d:?}; expected F32, F16 or BF16"),
            ))
        }
    };
    let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), device)
        .map_err(|e| ModelError::checkpoint(file, format!("tensor `{name}`: {e}")))?;
    Ok(t.to_dtype(DType::F32)?)
}

/// Load and check every tensor the config needs from a Hugging Face checkpoint
/// directory, as f32. Extra tensors (e.g. `rotary_emb.inv_freq`) are ignored.
pub fn load_hf_tensors(
    dir: &Path,
    config: &LlamaConfig,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let expected: BTreeMap<String, Vec<usize>> = config.hf_tensor_shapes().into_iter().collect();
    let mut out = HashMap::new();
    let files = weight_files(dir)?;
    let mut seen_in: HashMap<String, PathBuf> = HashMap::new();
    for file in &files {
        if !file.is_file() {
            return Err(ModelError::MissingFile {
                path: file.clone(),
                what: "is listed in the weight index but does not exist".into(),
            });
        }
        let bytes = std::fs::read(file).map_err(|e| ModelError::io(file, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::checkpoint(file, format!("not a valid safetensors file: {e}")))?;
        onebit_core::format::check_limits(&st).map_err(|e| ModelError::checkpoint(file, e))?;
        for (name, view) in st.tensors() {
            let Some(shape) = expected.get(&name) else { continue };
            if let Some(prev) = seen_in.get(&name) {
                return Err(ModelError::checkpoint(file, format!("tensor `{name}` is also in {}", prev.display())));
            }
            if view.shape() != shape.as_slice() {
                return Err(ModelError::checkpoint(
                    file,
                    format!("tensor `{name}` has shape {:?}, expected {shape:?} from {CONFIG_FILE}", view.shape()),
                ));
            }
            out.insert(name.clone(), to_f32_tensor(&view, &name, file, device)?);
            seen_in.insert(name, file.clone());
        }
    }
    if let Some(missing) = expected.keys().find(|n| !out.contains_key(*n)) {
        let place = if files.len() == 1 { files[0].clone() } else { dir.to_path_buf() };
        let why = if missing == "lm_head.weight" { " (the config says tie_word_embeddings = false)" } else { "" };
        return Err(ModelError::checkpoint(place, format!("tensor `{missing}` is missing{why}")));
    }
    Ok(out)
}

/// Load a Hugging Face `LlamaForCausalLM` directory as a full-precision decoder (inference mode).
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<Llama, ModelError> {
    let config = read_hf_config(dir)?;
    let tensors = load_hf_tensors(dir, &config, device)?;
    dense_decoder(&config, tensors, dir, device)
}

/// A full-precision decoder (inference mode) from checked f32 tensors under
/// Hugging Face names.
fn dense_decoder(
    config: &LlamaConfig,
    tensors: HashMap<String, Tensor>,
    origin: &Path,
    device: &Device,
) -> Result<Llama, ModelError> {
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, device);
    let mut model = Llama::from_var_builder(config, vb, LinearKind::Dense, onebit_core::numerics::LAYER_NORM_EPS)
        .map_err(|e| ModelError::checkpoint(origin, e))?;
    model.differentiable = false;
    Ok(model)
}

/// The config and every f32 tensor (Hugging Face names) of a full-precision
/// model: a Hugging Face directory or a GGUF file (dequantised; q and k
/// un-permuted).
pub fn load_dense_tensors(
    path: &Path,
    device: &Device,
) -> Result<(LlamaConfig, HashMap<String, Tensor>), ModelError> {
    if path.is_dir() {
        let config = read_hf_config(path)?;
        let tensors = load_hf_tensors(path, &config, device)?;
        return Ok((config, tensors));
    }
    if !path.exists() {
        return Err(ModelError::MissingFile {
            path: path.into(),
            what: "no such file or directory (expected a Hugging Face model directory or a GGUF file)".into(),
        });
    }
    if !crate::gguf::is_gguf(path) {
        return Err(ModelError::checkpoint(
            path,
            "is neither a Hugging Face model directory nor a GGUF file (a full-precision model is needed here)",
        ));
    }
    let file = crate::gguf::GgufFile::open(path)?;
    let config = file.config()?;
    let tensors = crate::gguf::load_tensors(&file, &config, device)?;
    Ok((config, tensors))
}

/// A full-precision decoder (inference mode) from a Hugging Face directory or a GGUF file.
pub fn load_dense_model(path: &Path, device: &Device) -> Result<Llama, ModelError> {
    let (config, tensors) = load_dense_tensors(path, device)?;
    dense_decoder(&config, tensors, path, device)
}

/// The tokenizer that belongs to a model: `tokenizer.json` inside a Hugging
/// Face directory or beside a 1-bit model file, or the one a GGUF file's
/// metadata describes.
pub fn model_tokenizer(model: &Path) -> Result<crate::tokenizer::TextTokenizer, ModelError> {
    if model.is_file() && crate::gguf::is_gguf(model) {
        return crate::tokenizer::from_gguf(&crate::gguf::GgufFile::open(model)?);
    }
    crate::tokenizer::TextTokenizer::from_file(&default_tokenizer_path(model))
}

/// Where a model's tokenizer.json is expected (inside a directory, beside a file).
pub fn default_tokenizer_path(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join(TOKENIZER_FILE)
    } else {
        model.parent().unwrap_or(Path::new(".")).join(TOKENIZER_FILE)
    }
}

/// Serialise named f32 tensors to safetensors bytes (with `{"format": "pt"}`
/// metadata, which transformers expects).
pub fn safetensors_bytes(tensors: &[(String, Tensor)]) -> Result<Vec<u8>, ModelError> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let data: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        owned.push((name.clone(), t.dims().to_vec(), data.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let views = owned
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ModelError::Input(format!("serialising tensors: {e}")))?;
    let info = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(info)).map_err(|e| ModelError::Input(format!("serialising tensors: {e}")))
}

/// Write a Hugging Face checkpoint directory: config.json and model.safetensors
/// (f32), each atomically. `tensors` must be named as [`LlamaConfig::hf_tensor_shapes`]
/// says; shapes are checked before anything is written.
pub fn save_hf_dir(dir: &Path, config: &LlamaConfig, tensors: &[(String, Tensor)]) -> Result<(), ModelError> {
    let by_name: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for (name, shape) in config.hf_tensor_shapes() {
        match by_name.get(name.as_str()) {
            None => return Err(ModelError::Input(format!("saving {}: tensor `{name}` is missing", dir.display()))),
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(ModelError::Input(format!(
                    "saving {}: tensor `{name}` has shape {:?}, expected {shape:?}",
                    dir.display(),
                    t.dims()
                )))
            }
            _ => {}
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let bytes = safetensors_bytes(tensors)?;
    let path = dir.join(WEIGHTS_FILE);
    write_atomically(&path, &bytes).map_err(|e| ModelError::io(&path, e))?;
    let cfg = serde_json::to_string_pretty(&config.to_hf_json()).expect("config serialises");
    let path = dir.join(CONFIG_FILE);
    write_atomically(&path, cfg.as_bytes()).map_err(|e| ModelError::io(&path, e))
}

impl Llama {
    /// The tensors of a full-precision decoder under their Hugging Face names
    /// (fails if a block linear is not `Dense`).
    pub fn hf_tensors(&self) -> Result<Vec<(String, Tensor)>, ModelError> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), self.embed_tokens.clone())];
        for (i, b) in self.blocks.iter().enumerate() {
            out.push((format!("model.layers.{i}.input_layernorm.weight"), b.input_layernorm.clone()));
            out.push((format!("model.layers.{i}.post_attention_layernorm.weight"), b.post_attention_layernorm.clone()));
            for (name, l) in LINEAR_NAMES.iter().zip(&b.linears) {
                match l {
                    BlockLinear::Dense { weight } => {
                        out.push((format!("model.layers.{i}.{name}.weight"), weight.clone()))
                    }
                    _ => {
                        return Err(ModelError::Input(format!(
                            "model.layers.{i}.{name} is not a full-precision linear"
                        )))
                    }
                }
            }
        }
        out.push(("model.norm.weight".to_string(), self.norm.clone()));
        if let Some(h) = &self.lm_head {
            out.push(("lm_head.weight".to_string(), h.clone()));
        }
        Ok(out)
    }

    /// Save a full-precision decoder as a Hugging Face checkpoint directory.
    pub fn save_hf_dir(&self, dir: &Path) -> Result<(), ModelError> {
        save_hf_dir(dir, &self.config, &self.hf_tensors()?)
    }
}

/// Deterministic random weights for a config (no `rand`: core's SplitMix64):
/// matrices uniform with standard deviation 0.02, norm weights 1.
pub fn random_hf_tensors(
    config: &LlamaConfig,
    seed: u64,
    device: &Device,
) -> Result<Vec<(String, Tensor)>, ModelError> {
    let mut rng = onebit_core::synth::SplitMix64(seed);
    let amp = 0.02 * 3f32.sqrt();
    let mut out = Vec::new();
    for (name, shape) in config.hf_tensor_shapes() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> =
            if shape.len() == 1 { vec![1.0; n] } else { (0..n).map(|_| amp * rng.symmetric()).collect() };
        out.push((name, Tensor::from_vec(data, shape, device)?));
    }
    Ok(out)
}

/// Write a random-initialised decoder as a Hugging Face directory (config.json,
/// model.safetensors) for tests and demos.
pub fn write_random_hf_dir(dir: &Path, config: &LlamaConfig, seed: u64) -> Result<(), ModelError> {
    save_hf_dir(dir, config, &random_hf_tensors(config, seed, &Device::Cpu)?)
}

/// The decoder described by a 1-bit model file, its OneBit linears executed by
/// `backend`. `origin` names the file in errors. The config comes from the
/// file's `architecture` metadata (a Hugging Face config).
pub fn onebit_decoder(
    model: &OneBitModel,
    origin: &Path,
    backend: &dyn LinearBackend,
    device: &Device,
) -> Result<Llama, ModelError> {
    let config = LlamaConfig::from_hf_json(&model.architecture, origin)?;
    let err = |m: String| ModelError::checkpoint(origin, m);
    let tensor = |name: &str, shape: &[usize]| -> Result<Tensor, ModelError> {
        let t = model.tensors.get(name).ok_or_else(|| err(format!("full-precision tensor `{name}` is missing")))?;
        if t.shape != shape {
            return Err(err(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?} from the architecture",
                t.shape
            )));
        }
        Ok(Tensor::from_vec(t.data.clone(), shape, device)?)
    };
    let (h, v) = (config.hidden_size, config.vocab_size);
    let embed = tensor("model.embed_tokens.weight", &[v, h])?;
    let mut expected_linears = std::collections::HashSet::new();
    let mut blocks = Vec::with_capacity(config.num_hidden_layers);
    for i in 0..config.num_hidden_layers {
        let mut linears = Vec::with_capacity(LINEAR_NAMES.len());
        for name in LINEAR_NAMES {
            let full = format!("model.layers.{i}.{name}");
            let (k, n) = config.linear_shape(name).expect("known linear");
            let layer = model.linear(&full).ok_or_else(|| err(format!("OneBit linear `{full}` is missing")))?;
            if (layer.in_features, layer.out_features) != (k, n) {
                return Err(err(format!(
                    "OneBit linear `{full}` is {}→{} (K→N), expected {k}→{n} from the architecture",
                    layer.in_features, layer.out_features
                )));
            }
            linears.push(BlockLinear::Backend(BackendLinear::prepare(backend, &full, layer)?));
            expected_linears.insert(full);
        }
        blocks.push(Block {
            input_layernorm: tensor(&format!("model.layers.{i}.input_layernorm.weight"), &[h])?,
            post_attention_layernorm: tensor(&format!("model.layers.{i}.post_attention_layernorm.weight"), &[h])?,
            linears,
        });
    }
    if let Some((extra, _)) = model.linears.iter().find(|(n, _)| !expected_linears.contains(n)) {
        return Err(err(format!(
            "OneBit linear `{extra}` is not part of a {}-layer LLaMA decoder",
            config.num_hidden_layers
        )));
    }
    let norm = tensor("model.norm.weight", &[h])?;
    let lm_head = if config.tie_word_embeddings { None } else { Some(tensor("lm_head.weight", &[v, h])?) };
    Llama::new(config, embed, blocks, norm, lm_head).map_err(|e| err(e.to_string()))
}

/// Read a 1-bit model file (every problem reported with the file name).
pub fn read_onebit_file(path: &Path) -> Result<OneBitModel, ModelError> {
    OneBitModel::load(path).map_err(|e| ModelError::Checkpoint { path: path.into(), message: e.problem.to_string() })
}

/// Read a 1-bit model file and build its decoder on `backend`.
pub fn load_onebit_model(path: &Path, backend: &dyn LinearBackend, device: &Device) -> Result<Llama, ModelError> {
    onebit_decoder(&read_onebit_file(path)?, path, backend, device)
}

/// The full-precision tensors a 1-bit model file keeps (embeddings, norms, head).
fn full_precision_tensors(
    model: &Llama,
    dtype: onebit_core::format::FloatDtype,
) -> Result<BTreeMap<String, onebit_core::format::FloatTensor>, ModelError> {
    let mut tensors = BTreeMap::new();
    let mut put = |name: String, t: &Tensor| -> Result<(), ModelError> {
        let data: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        tensors.insert(name, onebit_core::format::FloatTensor { shape: t.dims().to_vec(), data, dtype });
        Ok(())
    };
    put("model.embed_tokens.weight".into(), &model.embed_tokens)?;
    for (i, b) in model.blocks.iter().enumerate() {
        put(format!("model.layers.{i}.input_layernorm.weight"), &b.input_layernorm)?;
        put(format!("model.layers.{i}.post_attention_layernorm.weight"), &b.post_attention_layernorm)?;
    }
    put("model.norm.weight".into(), &model.norm)?;
    if let Some(h) = &model.lm_head {
        put("lm_head.weight".into(), h)?;
    }
    Ok(tensors)
}

/// Pack a decoder whose block linears are in OneBit training form into a 1-bit
/// model file (signs of the latent weights, g and h stored as `value_dtype`,
/// other tensors in f32, `architecture` = the Hugging Face config).
pub fn export_onebit(
    model: &Llama,
    quantisation: onebit_core::format::QuantSettings,
    value_dtype: onebit_core::format::FloatDtype,
) -> Result<OneBitModel, ModelError> {
    let mut linears = Vec::new();
    for (name, l) in model.named_linears() {
        match l {
            BlockLinear::OneBitTrain(t) => linears.push((name, t.to_packed()?)),
            _ => return Err(ModelError::Input(format!("{name} is not in OneBit training form"))),
        }
    }
    Ok(OneBitModel {
        architecture: model.config.to_hf_json(),
        quantisation,
        linears,
        value_dtype,
        tensors: full_precision_tensors(model, onebit_core::format::FloatDtype::F32)?,
    })
}

/// The naive 1-bit baseline of a full-precision decoder: every block linear
/// becomes sign(W) with g = 1 and h = mean|W| over the whole matrix (the
/// `sign(W)·mean|W|` baseline of the OneBit paper's comparisons).
pub fn naive_onebit_from_dense(
    model: &Llama,
    quantisation: onebit_core::format::QuantSettings,
) -> Result<OneBitModel, ModelError> {
    use onebit_core::reference::PackedLayer;
    let mut linears = Vec::new();
    for (name, l) in model.named_linears() {
        let BlockLinear::Dense { weight } = l else {
            return Err(ModelError::Input(format!("{name} is not a full-precision linear")));
        };
        let (n, k) = weight.dims2()?;
        let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let mean_abs = (w.iter().map(|v| v.abs() as f64).sum::<f64>() / w.len() as f64) as f32;
        let layer = PackedLayer::from_dense(&w, n, k, vec![1.0; k], vec![mean_abs; n])
            .map_err(|e| ModelError::Input(format!("packing {name}: {e}")))?;
        linears.push((name, layer));
    }
    Ok(OneBitModel {
        architecture: model.config.to_hf_json(),
        quantisation,
        linears,
        value_dtype: onebit_core::format::FloatDtype::F16,
        tensors: full_precision_tensors(model, onebit_core::format::FloatDtype::F32)?,
    })
}
