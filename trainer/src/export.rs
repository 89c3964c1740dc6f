//! Export a student directory to the packed 1-bit model file
//! (`onebit_core::format::OneBitModel`): for every block linear its packed
//! signs, g and h under its Hugging Face name (`model.layers.{i}.self_attn.q_proj`),
//! every other tensor under its Hugging Face name in full precision, and the
//! Hugging Face config as the file's `architecture`.

use crate::student::read_student;
use anyhow::{Context, Result};
use onebit_core::format::{FloatDtype, QuantSettings};
use serde::Serialize;
use std::path::Path;

/// Sizes reported by [`export_student`].
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub linears: usize,
    pub onebit_parameters: usize,
    pub full_precision_parameters: usize,
    /// Bits per 1-bit weight (signs + g + h over the linears' weights).
    pub bits_per_weight: f64,
    pub file_bytes: u64,
    /// The same model in full precision at 32 and 16 bits per parameter.
    pub teacher_f32_bytes: u64,
    pub teacher_f16_bytes: u64,
    /// teacher bytes ÷ exported file bytes.
    pub compression_vs_f32: f64,
    pub compression_vs_f16: f64,
    /// The linears alone: 32-bit (resp. 16-bit) weights ÷ packed bytes.
    pub linear_compression_vs_f32: f64,
    pub linear_compression_vs_f16: f64,
}

/// Export the student in `student_dir` to `out` (written atomically).
pub fn export_student(student_dir: &Path, out: &Path, value_dtype: FloatDtype, full_dtype: FloatDtype) -> Result<ExportReport> {
    let student = read_student(student_dir)?;
    let decoder = student.decoder(&candle_core::Device::Cpu)?;
    let mut model = onebit_model::checkpoint::export_onebit(&decoder, QuantSettings::default(), value_dtype)
        .with_context(|| format!("{}: packing the student", student_dir.display()))?;
    for t in model.tensors.values_mut() {
        t.dtype = full_dtype;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("{}: cannot create directory", parent.display()))?;
    }
    model.save(out)?;
    let file_bytes = std::fs::metadata(out).with_context(|| format!("{}: cannot stat", out.display()))?.len();
    let summary = model.summary(file_bytes);
    let params = (summary.onebit_parameters + summary.full_precision_parameters) as u64;
    let teacher_f32_bytes = params * 4;
    let teacher_f16_bytes = params * 2;
    Ok(ExportReport {
        linears: model.linears.len(),
        onebit_parameters: summary.onebit_parameters,
        full_precision_parameters: summary.full_precision_parameters,
        bits_per_weight: summary.bits_per_weight,
        file_bytes,
        teacher_f32_bytes,
        teacher_f16_bytes,
        compression_vs_f32: teacher_f32_bytes as f64 / file_bytes as f64,
        compression_vs_f16: teacher_f16_bytes as f64 / file_bytes as f64,
        linear_compression_vs_f32: summary.onebit_parameters as f64 * 4.0 / summary.onebit_bytes as f64,
        linear_compression_vs_f16: summary.onebit_parameters as f64 * 2.0 / summary.onebit_bytes as f64,
    })
}
