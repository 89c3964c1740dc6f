//! The 1-bit model file (docs/format.md): one safetensors file holding, per
//! OneBit linear `NAME`, the tensors `NAME.signs` (u8, N × ceil(K/8)), `NAME.g`
//! (K) and `NAME.h` (N) in f16 or f32, any number of full-precision tensors
//! (embeddings, norms, LM head) in f32/f16/bf16, and JSON metadata under the
//! safetensors metadata key `onebit`.
//!
//! The reader trusts nothing: every name, shape, dtype and size is checked and
//! every problem is reported with the file and the tensor it concerns. The
//! writer writes a temporary file beside the target and renames it into place.

use crate::pack::packed_row_bytes;
use crate::reference::PackedLayer;
use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Value of the `format` field.
pub const FORMAT_NAME: &str = "onebit";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The safetensors metadata key that holds the JSON metadata.
pub const METADATA_KEY: &str = "onebit";

/// Limits every safetensors file the project reads is held to (docs/fuzzing.md).
/// The header is at most the safetensors crate's 100 MB; beyond that a file
/// may hold at most `MAX_TENSORS` tensors of rank at most `MAX_RANK`, and each
/// tensor's element count is what its bytes hold (the crate checks
/// dtype × shape against the data offsets, with checked arithmetic).
pub const MAX_HEADER_BYTES: usize = 100_000_000;
pub const MAX_TENSORS: usize = 1 << 20;
pub const MAX_RANK: usize = 8;

/// Check a parsed safetensors file against [`MAX_TENSORS`] and [`MAX_RANK`].
pub fn check_limits(st: &SafeTensors) -> Result<(), String> {
    if st.len() > MAX_TENSORS {
        return Err(format!("{} tensors, more than this reader's limit of {MAX_TENSORS}", st.len()));
    }
    for (name, t) in st.iter() {
        if t.shape().len() > MAX_RANK {
            return Err(format!("tensor `{name}` has rank {}, more than this reader's limit of {MAX_RANK}", t.shape().len()));
        }
    }
    Ok(())
}

/// One OneBit linear as listed in the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearInfo {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
}

/// Settings the numbers in the file were produced or are meant to be run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantSettings {
    /// Activation bits the model was evaluated with (informational for float use).
    pub act_bits: u32,
    /// Epsilon of the LayerNorm without affine after every OneBit linear.
    pub layer_norm_eps: f64,
    /// Sign packing convention; always this string in version 1.
    pub sign_packing: String,
}

/// The sign packing of version 1 (the official OneBit layout).
pub const SIGN_PACKING: &str = "bit1=-1,bit0=+1,8-per-byte,lsb-first-along-K";

impl Default for QuantSettings {
    fn default() -> Self {
        QuantSettings { act_bits: 8, layer_norm_eps: crate::numerics::LAYER_NORM_EPS, sign_packing: SIGN_PACKING.into() }
    }
}

/// The JSON stored under the metadata key `onebit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub format: String,
    pub format_version: u32,
    /// Free-form description of the architecture (for decoders: the Hugging Face config).
    pub architecture: serde_json::Value,
    pub quantisation: QuantSettings,
    pub linears: Vec<LinearInfo>,
}

/// Storage dtype of a float tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FloatDtype {
    F32,
    F16,
    BF16,
}

impl FloatDtype {
    fn to_safetensors(self) -> Dtype {
        match self {
            FloatDtype::F32 => Dtype::F32,
            FloatDtype::F16 => Dtype::F16,
            FloatDtype::BF16 => Dtype::BF16,
        }
    }
    fn from_safetensors(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(FloatDtype::F32),
            Dtype::F16 => Some(FloatDtype::F16),
            Dtype::BF16 => Some(FloatDtype::BF16),
            _ => None,
        }
    }
    pub fn bits(self) -> usize {
        match self {
            FloatDtype::F32 => 32,
            _ => 16,
        }
    }
    fn encode(self, v: &[f32]) -> Vec<u8> {
        match self {
            FloatDtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            FloatDtype::F16 => v.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect(),
            FloatDtype::BF16 => v.iter().flat_map(|&x| bf16::from_f32(x).to_le_bytes()).collect(),
        }
    }
    fn decode(self, b: &[u8]) -> Vec<f32> {
        match self {
            FloatDtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            FloatDtype::F16 => b.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            FloatDtype::BF16 => b.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        }
    }
}

/// A full-precision tensor (values held as f32, stored as `dtype`).
#[derive(Debug, Clone, PartialEq)]
pub struct FloatTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub dtype: FloatDtype,
}

/// A whole 1-bit model.
#[derive(Debug, Clone, PartialEq)]
pub struct OneBitModel {
    pub architecture: serde_json::Value,
    pub quantisation: QuantSettings,
    /// OneBit linears in the order they are listed in the metadata.
    pub linears: Vec<(String, PackedLayer)>,
    /// Storage dtype of g and h.
    pub value_dtype: FloatDtype,
    /// Full-precision tensors by name.
    pub tensors: BTreeMap<String, FloatTensor>,
}

/// What is wrong with a model file.
#[derive(Debug, thiserror::Error)]
pub enum FormatProblem {
    #[error("cannot read or write: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a valid safetensors file: {0}")]
    Safetensors(String),
    #[error("no `{METADATA_KEY}` metadata: not a OneBit model file")]
    MissingMetadata,
    #[error("metadata is not valid: {0}")]
    BadMetadata(String),
    #[error("format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion { found: u32 },
    #[error("tensor `{name}` is missing")]
    MissingTensor { name: String },
    #[error("tensor `{name}` has dtype {found}, expected {expected}")]
    WrongDtype { name: String, expected: String, found: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` holds a non-finite value ({value}) at flat index {index}")]
    NotFinite { name: String, index: usize, value: f32 },
    #[error("tensor `{name}` has sign bits set in the padding past K = {k}")]
    Padding { name: String, k: usize },
    #[error("tensor `{name}` looks like part of a OneBit linear that the metadata does not list")]
    UnlistedLinear { name: String },
    #[error("linear `{name}` is listed twice")]
    DuplicateLinear { name: String },
    #[error("linear `{name}` has a zero dimension ({in_features}×{out_features})")]
    EmptyLinear { name: String, in_features: usize, out_features: usize },
    #[error("g and h of the linears use different dtypes ({a:?} and {b:?})")]
    MixedValueDtype { a: FloatDtype, b: FloatDtype },
}

/// A problem with a named model file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct FormatError {
    pub path: PathBuf,
    pub problem: FormatProblem,
}

const SUFFIXES: [&str; 3] = [".signs", ".g", ".h"];

impl OneBitModel {
    /// Parameters held as signs, and full-precision parameters.
    pub fn parameter_counts(&self) -> (usize, usize) {
        let onebit = self.linears.iter().map(|(_, l)| l.in_features * l.out_features).sum();
        let full = self.tensors.values().map(|t| t.data.len()).sum();
        (onebit, full)
    }

    /// Look a linear up by name.
    pub fn linear(&self, name: &str) -> Option<&PackedLayer> {
        self.linears.iter().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    fn metadata(&self) -> ModelMetadata {
        ModelMetadata {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            architecture: self.architecture.clone(),
            quantisation: self.quantisation.clone(),
            linears: self
                .linears
                .iter()
                .map(|(n, l)| LinearInfo { name: n.clone(), in_features: l.in_features, out_features: l.out_features })
                .collect(),
        }
    }

    /// Serialise to bytes (validating every layer and tensor first).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatProblem> {
        let mut seen = std::collections::HashSet::new();
        for (name, l) in &self.linears {
            if !seen.insert(name) {
                return Err(FormatProblem::DuplicateLinear { name: name.clone() });
            }
            l.validate().map_err(|e| FormatProblem::BadMetadata(format!("linear `{name}`: {e}")))?;
        }
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, l) in &self.linears {
            owned.push((format!("{name}.signs"), Dtype::U8, vec![l.out_features, packed_row_bytes(l.in_features)], l.signs.clone()));
            owned.push((format!("{name}.g"), self.value_dtype.to_safetensors(), vec![l.in_features], self.value_dtype.encode(&l.g)));
            owned.push((format!("{name}.h"), self.value_dtype.to_safetensors(), vec![l.out_features], self.value_dtype.encode(&l.h)));
        }
        for (name, t) in &self.tensors {
            if owned.iter().any(|(n, ..)| n == name) {
                return Err(FormatProblem::DuplicateLinear { name: name.clone() });
            }
            if t.shape.iter().product::<usize>() != t.data.len() {
                return Err(FormatProblem::WrongShape { name: name.clone(), expected: t.shape.clone(), found: vec![t.data.len()] });
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(FormatProblem::NotFinite { name: name.clone(), index: i, value: t.data[i] });
            }
            owned.push((name.clone(), t.dtype.to_safetensors(), t.shape.clone(), t.dtype.encode(&t.data)));
        }
        let views: Vec<(String, TensorView)> = owned
            .iter()
            .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b).map_err(|e| FormatProblem::Safetensors(e.to_string()))?)))
            .collect::<Result<_, FormatProblem>>()?;
        let meta = serde_json::to_string(&self.metadata()).map_err(|e| FormatProblem::BadMetadata(e.to_string()))?;
        let info = HashMap::from([(METADATA_KEY.to_string(), meta)]);
        safetensors::serialize(views, Some(info)).map_err(|e| FormatProblem::Safetensors(e.to_string()))
    }

    /// Write atomically: a temporary file beside `path`, flushed, then renamed.
    pub fn save(&self, path: &Path) -> Result<(), FormatError> {
        let err = |problem| FormatError { path: path.to_path_buf(), problem };
        let bytes = self.to_bytes().map_err(err)?;
        write_atomically(path, &bytes).map_err(|e| err(FormatProblem::Io(e)))
    }

    /// Read and validate a model file.
    pub fn load(path: &Path) -> Result<OneBitModel, FormatError> {
        let err = |problem| FormatError { path: path.to_path_buf(), problem };
        let bytes = std::fs::read(path).map_err(|e| err(FormatProblem::Io(e)))?;
        Self::from_bytes(&bytes).map_err(err)
    }

    /// Parse and validate the bytes of a model file.
    pub fn from_bytes(bytes: &[u8]) -> Result<OneBitModel, FormatProblem> {
        let (_, st_meta) = SafeTensors::read_metadata(bytes).map_err(|e| match (&e, find_size_lie(bytes)) {
            (safetensors::SafeTensorError::TensorInvalidInfo, Some(lie)) => FormatProblem::Safetensors(lie),
            _ => explain(e, bytes.len()),
        })?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| explain(e, bytes.len()))?;
        check_limits(&st).map_err(FormatProblem::Safetensors)?;
        let json = st_meta
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or(FormatProblem::MissingMetadata)?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| FormatProblem::BadMetadata(e.to_string()))?;
        // Check the version before the rest, so a newer file gets the right message.
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => return Err(FormatProblem::UnsupportedVersion { found: v as u32 }),
            None => return Err(FormatProblem::BadMetadata("`format_version` is missing or not a number".into())),
        }
        let meta: ModelMetadata = serde_json::from_value(value).map_err(|e| FormatProblem::BadMetadata(e.to_string()))?;
        if meta.format != FORMAT_NAME {
            return Err(FormatProblem::BadMetadata(format!("`format` is `{}`, expected `{FORMAT_NAME}`", meta.format)));
        }
        if meta.quantisation.sign_packing != SIGN_PACKING {
            return Err(FormatProblem::BadMetadata(format!(
                "`sign_packing` is `{}`, expected `{SIGN_PACKING}`",
                meta.quantisation.sign_packing
            )));
        }
        if !(meta.quantisation.layer_norm_eps.is_finite() && meta.quantisation.layer_norm_eps >= 0.0) {
            return Err(FormatProblem::BadMetadata("`layer_norm_eps` must be finite and >= 0".into()));
        }
        let tensor = |name: &str| st.tensor(name).map_err(|_| FormatProblem::MissingTensor { name: name.into() });
        let mut linears = Vec::with_capacity(meta.linears.len());
        let mut claimed = std::collections::HashSet::new();
        let mut value_dtype: Option<FloatDtype> = None;
        for info in &meta.linears {
            let name = &info.name;
            if !claimed.insert(name.clone()) {
                return Err(FormatProblem::DuplicateLinear { name: name.clone() });
            }
            let (k, n) = (info.in_features, info.out_features);
            if k == 0 || n == 0 {
                return Err(FormatProblem::EmptyLinear { name: name.clone(), in_features: k, out_features: n });
            }
            let sname = format!("{name}.signs");
            let signs = tensor(&sname)?;
            expect_dtype(&sname, signs.dtype(), "U8", signs.dtype() == Dtype::U8)?;
            expect_shape(&sname, signs.shape(), &[n, packed_row_bytes(k)])?;
            if !crate::pack::padding_is_clear(signs.data(), n, k) {
                return Err(FormatProblem::Padding { name: sname, k });
            }
            let mut values = Vec::new();
            for (suffix, len) in [(".g", k), (".h", n)] {
                let vname = format!("{name}{suffix}");
                let t = tensor(&vname)?;
                let d = FloatDtype::from_safetensors(t.dtype());
                let d = match d {
                    Some(d @ (FloatDtype::F32 | FloatDtype::F16)) => d,
                    _ => return Err(FormatProblem::WrongDtype { name: vname, expected: "F16 or F32".into(), found: format!("{:?}", t.dtype()) }),
                };
                match value_dtype {
                    None => value_dtype = Some(d),
                    Some(a) if a != d => return Err(FormatProblem::MixedValueDtype { a, b: d }),
                    _ => {}
                }
                expect_shape(&vname, t.shape(), &[len])?;
                let v = d.decode(t.data());
                finite(&vname, &v)?;
                values.push(v);
            }
            let h = values.pop().unwrap();
            let g = values.pop().unwrap();
            linears.push((name.clone(), PackedLayer { in_features: k, out_features: n, signs: signs.data().to_vec(), g, h }));
        }
        let mut tensors = BTreeMap::new();
        for (name, t) in st.iter() {
            if let Some(base) = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) {
                if claimed.contains(base) {
                    continue;
                }
                if t.dtype() == Dtype::U8 && name.ends_with(".signs") {
                    return Err(FormatProblem::UnlistedLinear { name: name.into() });
                }
            }
            let dtype = FloatDtype::from_safetensors(t.dtype()).ok_or_else(|| FormatProblem::WrongDtype {
                name: name.into(),
                expected: "F32, F16 or BF16 (full-precision tensor)".into(),
                found: format!("{:?}", t.dtype()),
            })?;
            let data = dtype.decode(t.data());
            finite(name, &data)?;
            tensors.insert(name.to_string(), FloatTensor { shape: t.shape().to_vec(), data, dtype });
        }
        Ok(OneBitModel {
            architecture: meta.architecture,
            quantisation: meta.quantisation,
            linears,
            value_dtype: value_dtype.unwrap_or(FloatDtype::F16),
            tensors,
        })
    }
}

/// Say what a safetensors error means for someone holding the file.
fn explain(e: safetensors::SafeTensorError, len: usize) -> FormatProblem {
    use safetensors::SafeTensorError as E;
    let what = match &e {
        E::HeaderTooSmall => format!("file is {len} bytes, too short for a safetensors header (truncated or empty?)"),
        E::InvalidHeaderLength => format!("header length field points past the end of the {len}-byte file (truncated?)"),
        E::HeaderTooLarge => "header length field is implausibly large (corrupt file?)".to_string(),
        E::MetadataIncompleteBuffer => format!("tensor data does not end exactly at the end of the {len}-byte file (truncated, or sizes in the header are wrong)"),
        E::InvalidOffset(name) => format!("data offsets of tensor `{name}` disagree with its dtype and shape"),
        E::TensorInvalidInfo => "a tensor's dtype, shape and data offsets disagree".to_string(),
        _ => e.to_string(),
    };
    FormatProblem::Safetensors(what)
}

/// safetensors reports a size mismatch without the tensor's name: find it.
fn find_size_lie(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8usize.checked_add(n)?)?).ok()?;
    for (name, info) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let dtype: Dtype = serde_json::from_value(info.get("dtype")?.clone()).ok()?;
        let shape: Vec<usize> = serde_json::from_value(info.get("shape")?.clone()).ok()?;
        let offsets: (usize, usize) = serde_json::from_value(info.get("data_offsets")?.clone()).ok()?;
        let want = shape.iter().try_fold(dtype.bitsize(), |a, &d| a.checked_mul(d))? / 8;
        let have = offsets.1.checked_sub(offsets.0)?;
        if want != have {
            return Some(format!(
                "tensor `{name}`: dtype {dtype:?} and shape {shape:?} need {want} bytes, the header gives it {have}"
            ));
        }
    }
    None
}

fn expect_dtype(name: &str, found: Dtype, expected: &str, ok: bool) -> Result<(), FormatProblem> {
    if ok {
        Ok(())
    } else {
        Err(FormatProblem::WrongDtype { name: name.into(), expected: expected.into(), found: format!("{found:?}") })
    }
}

fn expect_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<(), FormatProblem> {
    if found == expected {
        Ok(())
    } else {
        Err(FormatProblem::WrongShape { name: name.into(), expected: expected.to_vec(), found: found.to_vec() })
    }
}

fn finite(name: &str, v: &[f32]) -> Result<(), FormatProblem> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(FormatProblem::NotFinite { name: name.into(), index: i, value: v[i] }),
        None => Ok(()),
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a
/// rename, so readers never see a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Summary of a model for `onebit inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    pub format_version: u32,
    pub linears: Vec<LinearSummary>,
    pub full_precision_tensors: Vec<TensorSummary>,
    pub onebit_parameters: usize,
    pub full_precision_parameters: usize,
    /// Bits per 1-bit weight over all linears, counting signs, g and h.
    pub bits_per_weight: f64,
    /// Bytes of the 1-bit linears (signs + g + h).
    pub onebit_bytes: usize,
    /// Bytes of the full-precision tensors.
    pub full_precision_bytes: usize,
    /// Size of the file on disk.
    pub file_bytes: u64,
    pub architecture: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinearSummary {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
    pub bytes: usize,
    pub bits_per_weight: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: FloatDtype,
}

impl OneBitModel {
    pub fn summary(&self, file_bytes: u64) -> ModelSummary {
        let vb = self.value_dtype.bits();
        let linears: Vec<LinearSummary> = self
            .linears
            .iter()
            .map(|(name, l)| {
                let bits = l.signs.len() * 8 + (l.in_features + l.out_features) * vb;
                LinearSummary {
                    name: name.clone(),
                    in_features: l.in_features,
                    out_features: l.out_features,
                    bytes: bits / 8,
                    bits_per_weight: bits as f64 / (l.in_features * l.out_features) as f64,
                }
            })
            .collect();
        let (onebit, full) = self.parameter_counts();
        let onebit_bytes: usize = linears.iter().map(|l| l.bytes).sum();
        let full_bytes = self.tensors.values().map(|t| t.data.len() * t.dtype.bits() / 8).sum();
        ModelSummary {
            format_version: FORMAT_VERSION,
            bits_per_weight: if onebit > 0 { onebit_bytes as f64 * 8.0 / onebit as f64 } else { 0.0 },
            linears,
            full_precision_tensors: self
                .tensors
                .iter()
                .map(|(n, t)| TensorSummary { name: n.clone(), shape: t.shape.clone(), dtype: t.dtype })
                .collect(),
            onebit_parameters: onebit,
            full_precision_parameters: full,
            onebit_bytes,
            full_precision_bytes: full_bytes,
            file_bytes,
            architecture: self.architecture.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tensor_of_rank_past_the_limit_is_an_error() {
        let shape = vec![1usize; MAX_RANK + 1];
        let data = [0u8; 4];
        let view = TensorView::new(Dtype::F32, shape, &data).unwrap();
        let bytes = safetensors::serialize([("t", view)], None).unwrap();
        let e = OneBitModel::from_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("tensor `t` has rank 9"), "{e}");
    }
}
