//! The training-checkpoint reader (`onebit_trainer::checkpoint`): resuming a
//! small run from any bytes restores it or fails with an error naming the
//! file, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onebit_fuzz::scratch_dir;
use onebit_trainer::checkpoint::{checkpoint_path, load, read_tensors};
use onebit_trainer::optim::{AdamW, AdamWConfig, Param};
use onebit_model::candle_core::{Device, Var};

/// The run the seeds were saved from (tests/fuzz_seeds.rs makes the same one).
fn optimiser() -> AdamW {
    let param = |name: &str, shape: &[usize]| Param {
        name: name.into(),
        var: Var::zeros(shape, onebit_model::candle_core::DType::F32, &Device::Cpu).unwrap(),
        decay: true,
    };
    AdamW::new(vec![param("w", &[2, 3]), param("b", &[3])], AdamWConfig::default())
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir("train_checkpoint");
    let path = checkpoint_path(&dir);
    std::fs::write(&path, data).unwrap();
    let names = path.to_str().unwrap();
    if let Err(e) = read_tensors(&path) {
        assert!(format!("{e:#}").contains(names), "the error names no file: {e:#}");
    }
    let mut opt = optimiser();
    if let Err(e) = load(&dir, &mut opt, "teacher", &serde_json::json!({"seed": 1})) {
        assert!(format!("{e:#}").contains(names), "the error names no file: {e:#}");
    }
});
