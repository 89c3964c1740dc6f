//! The fuzz targets' seed inputs (fuzz/seeds/TARGET/, docs/fuzzing.md): small
//! files the project writes, named `valid-*`, and broken ones, named
//! `malformed-*`. `ONEBIT_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds`
//! (and `--test format_files`, which owns the malformed 1-bit files) writes
//! them; every run checks that each committed seed still reads, or fails,
//! through the entry point its target fuzzes.

#[path = "../fuzz/src/link.rs"]
mod link;

use onebit_core::format::{FloatDtype, OneBitModel};
use onebit_model::candle_core::quantized::GgmlDType;
use onebit_model::candle_core::{DType, Device, Var};
use onebit_model::checkpoint::{load_hf_dir, random_hf_tensors, safetensors_bytes, CONFIG_FILE, WEIGHTS_FILE};
use onebit_model::gguf::{write_gguf, GgufFile, GgufTokenizerMeta};
use onebit_model::LlamaConfig;
use onebit_trainer::checkpoint::{self as train_checkpoint, CheckpointMeta};
use onebit_trainer::optim::{AdamW, AdamWConfig, Param};
use std::path::{Path, PathBuf};

const TARGETS: [&str; 5] = ["onebit_model", "hf_dir", "gguf", "train_checkpoint", "bytelink"];

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target)
}

/// A fresh directory per call: the tests run in parallel threads and more than
/// one of them reads seeds of the same target (a shared directory let one test
/// delete the file another had just written).
fn scratch(name: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_seeds").join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// config.json, a NUL, model.safetensors: the hf_dir target's input.
fn hf_input(config: &serde_json::Value, weights: &[u8]) -> Vec<u8> {
    let mut v = serde_json::to_vec(config).unwrap();
    v.push(0);
    v.extend_from_slice(weights);
    v
}

fn tiny_hf_config() -> LlamaConfig {
    let mut c = LlamaConfig::tiny(16, 8, 1, 2, 1);
    c.max_position_embeddings = 16;
    c
}

/// A tokenizer of eight tokens and one merge.
fn tiny_gguf_tokenizer() -> GgufTokenizerMeta {
    let tokens: Vec<String> = ["<|endoftext|>", "a", "b", "c", "d", "e", "ab", "Ġ"].map(String::from).to_vec();
    let mut token_types = vec![1; tokens.len()];
    token_types[0] = 3;
    GgufTokenizerMeta { tokens, token_types, merges: vec!["a b".into()], bos: Some(0), eos: Some(0) }
}

fn gguf_bytes(config: &LlamaConfig, dtype_of: impl Fn(&str) -> GgmlDType) -> Vec<u8> {
    let dir = scratch("gguf");
    let tensors = random_hf_tensors(config, 5, &Device::Cpu).unwrap().into_iter().collect();
    let path = dir.join("seed.gguf");
    write_gguf(&path, config, &tensors, &tiny_gguf_tokenizer(), dtype_of).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// The small run the train_checkpoint target resumes (the same as in
/// fuzz/fuzz_targets/train_checkpoint.rs).
fn optimiser() -> AdamW {
    let param = |name: &str, shape: &[usize]| Param {
        name: name.into(),
        var: Var::zeros(shape, DType::F32, &Device::Cpu).unwrap(),
        decay: true,
    };
    AdamW::new(vec![param("w", &[2, 3]), param("b", &[3])], AdamWConfig::default())
}

fn checkpoint_bytes(kind: &str) -> Vec<u8> {
    let dir = scratch("checkpoint");
    let opt = optimiser();
    for (i, p) in opt.params.iter().enumerate() {
        let n = p.var.elem_count();
        let t = onebit_model::candle_core::Tensor::arange(0f32, n as f32, &Device::Cpu).unwrap();
        p.var.set(&(t * (i as f64 + 0.5)).unwrap().reshape(p.var.shape()).unwrap()).unwrap();
    }
    let curve = vec![onebit_trainer::curve::CurveRow { step: 1, tokens: 64, lr: 1e-3, loss: 2.5, kl: None, hidden: None, val_loss: Some(2.6) }];
    let meta = CheckpointMeta { kind: kind.into(), step: 1, tokens_seen: 64, run: serde_json::json!({"seed": 1}), curve };
    let path = train_checkpoint::save(&dir, &opt, &meta).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Every seed this file makes: (target, file name, bytes).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut put = |target, name: &str, bytes: Vec<u8>| out.push((target, name.to_string(), bytes));

    // 1-bit model files: one decoder layer, f32 and f16 values.
    for (name, dtype) in [("valid-f32-values", FloatDtype::F32), ("valid-f16-values", FloatDtype::F16)] {
        let mut m = onebit_core::synth::toy_model(1, 1, 8, 16, 12);
        m.value_dtype = dtype;
        put("onebit_model", name, m.to_bytes().unwrap());
    }

    // Hugging Face directories: untied and tied heads, and the cases of tests/model_bad_input.rs.
    let c = tiny_hf_config();
    let tensors = random_hf_tensors(&c, 3, &Device::Cpu).unwrap();
    let weights = safetensors_bytes(&tensors).unwrap();
    put("hf_dir", "valid-untied", hf_input(&c.to_hf_json(), &weights));
    let mut tied = c.clone();
    tied.tie_word_embeddings = true;
    let tied_tensors: Vec<_> = tensors.iter().filter(|(n, _)| n != "lm_head.weight").cloned().collect();
    put("hf_dir", "valid-tied", hf_input(&tied.to_hf_json(), &safetensors_bytes(&tied_tensors).unwrap()));
    let mut gelu = c.to_hf_json();
    gelu["hidden_act"] = "gelu".into();
    put("hf_dir", "malformed-unsupported-activation", hf_input(&gelu, &weights));
    let mut wide = c.to_hf_json();
    wide["intermediate_size"] = 22.into();
    put("hf_dir", "malformed-tensor-shape", hf_input(&wide, &weights));
    put("hf_dir", "malformed-truncated-weights", hf_input(&c.to_hf_json(), &weights[..weights.len() - 7]));

    // GGUF: every tensor type the reader takes (Q4_1 and Q8_0 need rows of 32).
    let small = tiny_hf_config();
    let mut small = LlamaConfig { vocab_size: 8, ..small };
    small.tie_word_embeddings = true;
    let f_types = gguf_bytes(&small, |n| if n.ends_with("norm.weight") || n.contains("q_proj") { GgmlDType::F32 } else { GgmlDType::F16 });
    put("gguf", "valid-f32-f16", f_types.clone());
    let mut wide = LlamaConfig::tiny(8, 32, 1, 2, 1);
    wide.intermediate_size = 32;
    wide.max_position_embeddings = 16;
    wide.tie_word_embeddings = true;
    let quantised = |n: &str| match n {
        _ if n.ends_with("norm.weight") => GgmlDType::F32,
        "model.embed_tokens.weight" => GgmlDType::Q8_0,
        _ if n.ends_with("v_proj.weight") => GgmlDType::F16,
        _ => GgmlDType::Q4_1,
    };
    put("gguf", "valid-q4_1-q8_0", gguf_bytes(&wide, quantised));
    put("gguf", "malformed-truncated-data", f_types[..f_types.len() / 2].to_vec());
    put("gguf", "malformed-truncated-header", f_types[..100].to_vec());
    let mut magic = f_types.clone();
    magic[..4].copy_from_slice(b"GGUX");
    put("gguf", "malformed-magic", magic);

    // Training checkpoints: the run the target resumes, and one of another kind.
    put("train_checkpoint", "valid-teacher", checkpoint_bytes("teacher"));
    put("train_checkpoint", "malformed-other-kind", checkpoint_bytes("distill"));

    // The byte link: a working board on each transport, array and shape.
    for selector in (0..32u8).map(|s| s | (s % 3) << 5) {
        let job = link::job(selector);
        let mut input = vec![selector];
        input.extend(if selector & 1 == 0 { link::correct_output_bytes(&job) } else { link::correct_port_script(&job) });
        put("bytelink", &format!("valid-{selector:03}"), input);
    }
    out
}

/// Whether a seed reads through its target's entry point (Err: the problem).
fn reads(target: &str, bytes: &[u8]) -> Result<(), String> {
    match target {
        "onebit_model" => OneBitModel::from_bytes(bytes).map(|_| ()).map_err(|e| e.to_string()),
        "hf_dir" => {
            let dir = scratch("check-hf");
            let split = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            std::fs::write(dir.join(CONFIG_FILE), &bytes[..split]).unwrap();
            std::fs::write(dir.join(WEIGHTS_FILE), bytes.get(split + 1..).unwrap_or_default()).unwrap();
            let r = load_hf_dir(&dir, &Device::Cpu).map(|_| ()).map_err(|e| e.to_string());
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
        "gguf" => {
            let dir = scratch("check-gguf");
            let path = dir.join("seed.gguf");
            std::fs::write(&path, bytes).unwrap();
            let r = (|| {
                let file = GgufFile::open(&path)?;
                let config = file.config()?;
                onebit_model::tokenizer::from_gguf(&file)?;
                onebit_model::gguf::load_tensors(&file, &config, &Device::Cpu).map(|_| ())
            })()
            .map_err(|e| e.to_string());
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
        "train_checkpoint" => {
            let dir = scratch("check-checkpoint");
            std::fs::write(train_checkpoint::checkpoint_path(&dir), bytes).unwrap();
            let mut opt = optimiser();
            let r = train_checkpoint::load(&dir, &mut opt, "teacher", &serde_json::json!({"seed": 1}))
                .map(|_| ())
                .map_err(|e| format!("{e:#}"));
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
        "bytelink" => {
            let (&selector, device) = bytes.split_first().ok_or("empty")?;
            let job = link::job(selector);
            let run = if selector & 1 == 0 {
                let link = link::ScriptedSerial { bytes: device, chunk: 1 + (selector as usize >> 5), written: 0 };
                let mut dev = onebit_driver::bytelink::SerialLink { link, config: job.config };
                let deadline = onebit_driver::Deadline::IdleTime(std::time::Duration::from_secs(1));
                onebit_driver::run_layer_checked(&mut dev, &job.program, "seed", deadline, &job.want)
            } else {
                let mut dev = onebit_driver::bytelink::ByteLinkDevice::new(link::ScriptedPorts::new(device), job.config);
                onebit_driver::run_layer_checked(&mut dev, &job.program, "seed", onebit_driver::Deadline::IdleCycles(64), &job.want)
            };
            run.map(|_| ()).map_err(|e| e.to_string())
        }
        other => panic!("no target {other}"),
    }
}

#[test]
fn seeds_are_written_on_request() {
    if std::env::var_os("ONEBIT_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    for (target, name, bytes) in seeds() {
        let dir = seeds_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

#[test]
fn committed_seeds_read_or_fail_as_named() {
    for target in TARGETS {
        let dir = seeds_dir(target);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (ONEBIT_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds writes the seeds)", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        assert!(entries.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with("valid-")), "{target}: no valid seed");
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() <= 16 * 1024, "{}: seeds stay small ({} bytes)", path.display(), bytes.len());
            match (name.starts_with("valid-"), reads(target, &bytes)) {
                (true, Err(e)) => panic!("{}: a valid seed fails: {e}", path.display()),
                (false, Ok(())) => panic!("{}: a malformed seed reads", path.display()),
                _ => {}
            }
        }
    }
}

#[test]
fn the_seeds_this_file_makes_are_the_committed_kind() {
    // What `seeds()` makes must pass the same check before it is written.
    for (target, name, bytes) in seeds() {
        let r = reads(target, &bytes);
        assert_eq!(name.starts_with("valid-"), r.is_ok(), "{target}/{name}: {r:?}");
    }
}

/// Every input that crashed a fuzz target (fuzz/regressions/TARGET/, one
/// file per crash found) now gives a value or an error, not a panic.
#[test]
fn crashes_found_by_fuzzing_stay_fixed() {
    for target in TARGETS {
        let Ok(dir) = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target)) else {
            continue;
        };
        for path in dir.map(|e| e.unwrap().path()) {
            let _ = reads(target, &std::fs::read(&path).unwrap());
        }
    }
}
