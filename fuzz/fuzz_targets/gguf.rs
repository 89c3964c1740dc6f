//! The GGUF reader (`onebit_model::gguf`): header, config, tokenizer and every
//! tensor the config implies. Any bytes give a model or an error naming the
//! file, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onebit_fuzz::scratch_dir;
use onebit_model::candle_core::Device;
use onebit_model::error::ModelError;
use onebit_model::gguf::{load_tensors, GgufFile};

fn read(path: &std::path::Path) -> Result<(), ModelError> {
    let file = GgufFile::open(path)?;
    let config = file.config()?;
    let tokenizer = onebit_model::tokenizer::from_gguf(&file);
    load_tensors(&file, &config, &Device::Cpu)?;
    tokenizer.map(|_| ())
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_dir("gguf").join("model.gguf");
    std::fs::write(&path, data).unwrap();
    if let Err(e) = read(&path) {
        let message = e.to_string();
        assert!(message.contains(path.to_str().unwrap()), "the error names no file: {message}");
    }
});
