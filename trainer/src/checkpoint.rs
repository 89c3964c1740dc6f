//! Training checkpoints: everything needed to continue a run bit for bit.
//!
//! One safetensors file `checkpoint.safetensors` in the run directory holds the
//! trainable parameters under their model names, the AdamW moments under
//! `optim.NAME.exp_avg` / `optim.NAME.exp_avg_sq`, and JSON metadata (key
//! `onebit_train`): the step, the run settings that must not change on resume,
//! and the loss curve so far. It is written to a temporary file and renamed,
//! so a crash or Ctrl-C mid-write leaves the previous checkpoint intact.
//! Batches depend only on (seed, step), so no RNG state is needed.

use crate::curve::CurveRow;
use crate::optim::AdamW;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The checkpoint file's name inside a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// Safetensors metadata key.
pub const METADATA_KEY: &str = "onebit_train";
const OPTIM_PREFIX: &str = "optim.";

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// `teacher` or `distill`.
    pub kind: String,
    /// Optimiser updates completed.
    pub step: u64,
    pub tokens_seen: u64,
    /// Settings a resumed run must match (compared as JSON).
    pub run: serde_json::Value,
    pub curve: Vec<CurveRow>,
}

pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// Save parameters, optimiser moments and metadata atomically.
pub fn save(dir: &Path, opt: &AdamW, meta: &CheckpointMeta) -> Result<PathBuf> {
    let path = checkpoint_path(dir);
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for p in &opt.params {
        tensors.insert(p.name.clone(), p.var.as_tensor().to_device(&Device::Cpu)?);
    }
    for (k, v) in opt.state_tensors()? {
        tensors.insert(format!("{OPTIM_PREFIX}{k}"), v);
    }
    let json = serde_json::to_string(meta)?;
    let bytes = tensors_to_bytes(&tensors, Some(HashMap::from([(METADATA_KEY.to_string(), json)])))?;
    onebit_core::format::write_atomically(&path, &bytes).with_context(|| format!("{}: writing checkpoint", path.display()))?;
    Ok(path)
}

/// Serialise f32 tensors to safetensors bytes.
pub fn tensors_to_bytes(tensors: &BTreeMap<String, Tensor>, meta: Option<HashMap<String, String>>) -> Result<Vec<u8>> {
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, t)| {
            let v = t.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            Ok((n.clone(), t.dims().to_vec(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        })
        .collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    Ok(safetensors::serialize(views, meta)?)
}

/// Read every tensor of a safetensors file as f32 on the CPU, with its metadata.
pub fn read_tensors(path: &Path) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let (_, st_meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file: {e}", path.display()))?;
    onebit_core::format::check_limits(&st).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            safetensors::Dtype::F16 => {
                view.data().chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            safetensors::Dtype::BF16 => {
                view.data().chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
            }
            d => bail!("{}: tensor `{name}` has dtype {d:?}; expected F32, F16 or BF16", path.display()),
        };
        out.insert(name.clone(), Tensor::from_vec(data, view.shape(), &Device::Cpu)?);
    }
    Ok((out, st_meta.metadata().clone().unwrap_or_default()))
}

/// Load a checkpoint into `opt`'s parameters and moments; returns its metadata.
/// `expect_kind` and `run` must match what was saved.
pub fn load(dir: &Path, opt: &mut AdamW, expect_kind: &str, run: &serde_json::Value) -> Result<CheckpointMeta> {
    let path = checkpoint_path(dir);
    if !path.exists() {
        bail!("{}: no checkpoint to resume from", path.display());
    }
    let (tensors, meta) = read_tensors(&path)?;
    let json = meta.get(METADATA_KEY).with_context(|| format!("{}: no `{METADATA_KEY}` metadata: not a training checkpoint", path.display()))?;
    let meta: CheckpointMeta = serde_json::from_str(json).with_context(|| format!("{}: bad checkpoint metadata", path.display()))?;
    if meta.kind != expect_kind {
        bail!("{}: a `{}` checkpoint cannot resume a `{expect_kind}` run", path.display(), meta.kind);
    }
    if &meta.run != run {
        bail!(
            "{}: the checkpoint was made with different settings; resume with the same ones.\n  checkpoint: {}\n  now:        {}",
            path.display(),
            meta.run,
            run
        );
    }
    for p in &opt.params {
        let t = tensors.get(&p.name).with_context(|| format!("{}: parameter `{}` is missing", path.display(), p.name))?;
        if t.dims() != p.var.dims() {
            bail!("{}: parameter `{}` has shape {:?}, expected {:?}", path.display(), p.name, t.dims(), p.var.dims());
        }
        p.var.set(&t.to_device(p.var.device())?)?;
    }
    let optim: BTreeMap<String, Tensor> =
        tensors.iter().filter_map(|(k, v)| k.strip_prefix(OPTIM_PREFIX).map(|s| (s.to_string(), v.clone()))).collect();
    opt.load_state(&optim, meta.step).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(meta)
}
