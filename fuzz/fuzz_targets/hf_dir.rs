//! The Hugging Face directory loader (`onebit_model::checkpoint::load_hf_dir`):
//! the input is config.json, a NUL byte, then model.safetensors. Any bytes
//! give a decoder or an error naming a file of the directory, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onebit_fuzz::{scratch_dir, split_at_nul};
use onebit_model::candle_core::Device;
use onebit_model::checkpoint::{load_hf_dir, CONFIG_FILE, WEIGHTS_FILE};

fuzz_target!(|data: &[u8]| {
    let dir = scratch_dir("hf_dir");
    let (config, weights) = split_at_nul(data);
    std::fs::write(dir.join(CONFIG_FILE), config).unwrap();
    std::fs::write(dir.join(WEIGHTS_FILE), weights).unwrap();
    if let Err(e) = load_hf_dir(&dir, &Device::Cpu) {
        let message = e.to_string();
        assert!(message.contains(dir.to_str().unwrap()), "the error names no file: {message}");
    }
});
