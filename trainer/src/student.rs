//! The student directory: a OneBit student in training form, produced by SVID
//! from a teacher and updated by distillation.
//!
//! Layout of a student directory:
//! - `config.json`: the teacher's Hugging Face config (same architecture);
//! - `tokenizer.json`: the teacher's tokenizer, when it has one;
//! - `student.safetensors` (f32), tensor names (documented in docs/trainer.md):
//!   for every block linear `model.layers.{i}.{proj}` (proj one of
//!   `onebit_model::LINEAR_NAMES`): `….weight` the latent weight (N×K; only
//!   its sign reaches the output), `….g` (K, input side), `….h` (N, output
//!   side); every other tensor under its Hugging Face name (embeddings, norms,
//!   LM head), full precision. These are exactly the variable names of
//!   `onebit_model::Llama::from_var_builder` with `LinearKind::OneBitTraining`.
//!   Metadata key `onebit_student`: JSON with the SVID method and provenance.
//! - `svid.json`: the per-layer reconstruction errors (from `onebit svid`).

use crate::checkpoint::{read_tensors, tensors_to_bytes};
use crate::svid::{latent_init, naive_relative_error, svid, svid_relative_error, SvidMethod, SvidOptions};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use onebit_model::{LlamaConfig, LINEAR_NAMES};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// LayerNorm epsilon of every OneBit linear (the numerics contract).
pub const ONEBIT_LN_EPS: f64 = onebit_core::numerics::LAYER_NORM_EPS;

pub const STUDENT_FILE: &str = "student.safetensors";
pub const STUDENT_METADATA_KEY: &str = "onebit_student";

/// Names of all block linears of a config, `model.layers.{i}.{proj}`.
pub fn linear_names(config: &LlamaConfig) -> Vec<String> {
    (0..config.num_hidden_layers).flat_map(|i| LINEAR_NAMES.iter().map(move |p| format!("model.layers.{i}.{p}"))).collect()
}

/// Read a model directory's `config.json` (through the model crate's checks).
pub fn read_config(dir: &Path) -> Result<LlamaConfig> {
    Ok(onebit_model::checkpoint::read_hf_config(dir)?)
}

/// SVID of one linear, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSvid {
    pub name: String,
    pub out_features: usize,
    pub in_features: usize,
    /// ‖W − sign(W)⊙(h gᵀ)‖/‖W‖.
    pub svid_error: f64,
    /// ‖W − sign(W)·mean|W|‖/‖W‖.
    pub naive_error: f64,
    pub iterations: usize,
}

/// The result of [`svid_student`].
#[derive(Debug, Clone, Serialize)]
pub struct SvidReport {
    pub teacher: PathBuf,
    pub method: SvidMethod,
    pub layers: Vec<LayerSvid>,
}

/// Build a student directory by SVID from a teacher: a Hugging Face directory
/// or a GGUF file (dequantised).
pub fn svid_student(teacher: &Path, out: &Path, method: SvidMethod, progress: bool) -> Result<SvidReport> {
    let (config, tensors) = onebit_model::checkpoint::load_dense_tensors(teacher, &Device::Cpu)?;
    let mut tensors: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let total = config.num_hidden_layers * LINEAR_NAMES.len();
    let bar = if progress { indicatif::ProgressBar::new(total as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("SVID {bar:30} {pos}/{len} {msg}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut layers = Vec::new();
    let dev = Device::Cpu;
    for i in 0..config.num_hidden_layers {
        for proj in LINEAR_NAMES {
            let name = format!("model.layers.{i}.{proj}");
            let key = format!("{name}.weight");
            let w = tensors.remove(&key).with_context(|| format!("{}: tensor `{key}` is missing", teacher.display()))?;
            let (k, n) = config.linear_shape(proj).expect("known linear");
            if w.dims() != [n, k] {
                bail!("{}: tensor `{key}` has shape {:?}, config says [{n}, {k}]", teacher.display(), w.dims());
            }
            bar.set_message(name.clone());
            let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
            if let Some(j) = wv.iter().position(|x| !x.is_finite()) {
                bail!("{}: tensor `{key}` holds a non-finite value at flat index {j}", teacher.display());
            }
            let s = svid(&wv, n, k, method, SvidOptions::default());
            layers.push(LayerSvid {
                name: name.clone(),
                out_features: n,
                in_features: k,
                svid_error: svid_relative_error(&wv, n, k, &s.h, &s.g),
                naive_error: naive_relative_error(&wv, n, k),
                iterations: s.iters,
            });
            tensors.insert(key, Tensor::from_vec(latent_init(&wv), (n, k), &dev)?);
            tensors.insert(format!("{name}.g"), Tensor::from_vec(s.g, k, &dev)?);
            tensors.insert(format!("{name}.h"), Tensor::from_vec(s.h, n, &dev)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let report = SvidReport { teacher: teacher.to_path_buf(), method, layers };
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create directory", out.display()))?;
    let meta = serde_json::json!({ "svid_method": method, "teacher": teacher, "latent_scale": crate::svid::LATENT_SCALE });
    write_student(out, &tensors, &config, meta)?;
    copy_tokenizer(teacher, out)?;
    let report_path = out.join("svid.json");
    onebit_core::format::write_atomically(&report_path, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("{}: cannot write", report_path.display()))?;
    Ok(report)
}

/// Write `student.safetensors` and `config.json` into `dir` (each atomically).
pub fn write_student(dir: &Path, tensors: &BTreeMap<String, Tensor>, config: &LlamaConfig, meta: serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    let bytes = tensors_to_bytes(tensors, Some(HashMap::from([(STUDENT_METADATA_KEY.to_string(), meta.to_string())])))?;
    let path = dir.join(STUDENT_FILE);
    onebit_core::format::write_atomically(&path, &bytes).with_context(|| format!("{}: cannot write", path.display()))?;
    let cpath = dir.join("config.json");
    onebit_core::format::write_atomically(&cpath, serde_json::to_string_pretty(&config.to_hf_json())?.as_bytes())
        .with_context(|| format!("{}: cannot write", cpath.display()))?;
    Ok(())
}

/// Give the model directory `to` the tokenizer of the model `from`: a copy of
/// `tokenizer.json` from a directory, if it has one, or the tokenizer a GGUF
/// file's metadata describes. A directory without one leaves `to` without one
/// too, and says so on stderr (`ppl`/`generate` then need `--tokenizer`);
/// returns whether `to` has a tokenizer.json now.
pub fn copy_tokenizer(from: &Path, to: &Path) -> Result<bool> {
    if from.is_file() && onebit_model::gguf::is_gguf(from) {
        let mut tok = onebit_model::checkpoint::model_tokenizer(from)?;
        tok.save(&to.join("tokenizer.json"))?;
        return Ok(true);
    }
    let src = from.join("tokenizer.json");
    let dst = to.join("tokenizer.json");
    if !src.exists() {
        eprintln!(
            "note: {} has no tokenizer.json, so {} has none either (give `ppl` and `generate` a --tokenizer)",
            from.display(),
            to.display()
        );
        return Ok(dst.exists());
    }
    if from.canonicalize().ok() != to.canonicalize().ok() {
        let bytes = std::fs::read(&src).with_context(|| format!("{}: cannot read", src.display()))?;
        onebit_core::format::write_atomically(&dst, &bytes).with_context(|| format!("{}: cannot write", dst.display()))?;
    }
    Ok(true)
}

/// A student directory read back: its config and tensors, checked to be a
/// complete OneBit training-form checkpoint of that config.
pub struct Student {
    pub config: LlamaConfig,
    pub tensors: BTreeMap<String, Tensor>,
    pub meta: serde_json::Value,
}

/// The tensor names and shapes a student of `config` must have.
pub fn student_tensor_shapes(config: &LlamaConfig) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (name, shape) in config.hf_tensor_shapes() {
        out.push((name.clone(), shape.clone()));
        if let Some(base) = name.strip_suffix(".weight") {
            if LINEAR_NAMES.iter().any(|p| base.ends_with(p)) {
                out.push((format!("{base}.g"), vec![shape[1]]));
                out.push((format!("{base}.h"), vec![shape[0]]));
            }
        }
    }
    out
}

pub fn read_student(dir: &Path) -> Result<Student> {
    let config = read_config(dir)?;
    let path = dir.join(STUDENT_FILE);
    if !path.exists() {
        bail!("{}: no {STUDENT_FILE} (not a student directory; make one with `onebit svid`)", dir.display());
    }
    let (tensors, meta) = read_tensors(&path)?;
    let want = student_tensor_shapes(&config);
    for (name, shape) in &want {
        let t = tensors.get(name).with_context(|| format!("{}: tensor `{name}` is missing", path.display()))?;
        if t.dims() != shape.as_slice() {
            bail!("{}: tensor `{name}` has shape {:?}, expected {shape:?}", path.display(), t.dims());
        }
    }
    if let Some(extra) = tensors.keys().find(|k| !want.iter().any(|(n, _)| n == *k)) {
        bail!("{}: unexpected tensor `{extra}` for this config", path.display());
    }
    for (name, t) in &tensors {
        let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            bail!("{}: tensor `{name}` holds a non-finite value at flat index {i}", path.display());
        }
    }
    let meta = meta.get(STUDENT_METADATA_KEY).and_then(|s| serde_json::from_str(s).ok()).unwrap_or(serde_json::Value::Null);
    Ok(Student { config, tensors, meta })
}

impl Student {
    /// The decoder in OneBit training form, holding these tensors (no gradients).
    pub fn decoder(&self, device: &Device) -> Result<onebit_model::Llama> {
        let tensors: HashMap<String, Tensor> =
            self.tensors.iter().map(|(k, v)| Ok((k.clone(), v.to_device(device)?))).collect::<Result<_>>()?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, device);
        let mut m = onebit_model::Llama::from_var_builder(&self.config, vb, onebit_model::LinearKind::OneBitTraining, ONEBIT_LN_EPS)?;
        m.differentiable = false;
        Ok(m)
    }
}
