//! `onebit compare` and `onebit precision` (`make ppl`, `make sim`'s model step,
//! `make precision`) on a model the test makes, and on the shipped model.

use onebit::e2e::{compare, CompareOptions, SampleOptions, Split, Verdict};
use onebit::precision::{study, PrecisionOptions};
use onebit_core::format::QuantSettings;
use onebit_model::candle_core::Device;
use onebit_model::checkpoint::{load_hf_dir, naive_onebit_from_dense, write_random_hf_dir, TOKENIZER_FILE};
use onebit_model::tokenizer::build_char_tokenizer;
use onebit_model::LlamaConfig;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{scratch, shared};

/// Software rows only, no teacher, 2 chunks of the validation split, no
/// sample: each test sets what it is about.
fn options(model: PathBuf, data: PathBuf) -> CompareOptions {
    CompareOptions {
        model,
        teacher: None,
        data,
        split: Split::Val10,
        seq_len: None,
        chunks: 2,
        full_split: false,
        preset: "sim16".into(),
        hardware: false,
        sample: None,
        progress: false,
    }
}

/// A random teacher in `teacher/`, its naive 1-bit file beside it, a char
/// tokenizer in both places, and a text: the layout `make ppl` expects.
fn tiny_model(d: &std::path::Path) -> (PathBuf, PathBuf) {
    let text: String = std::fs::read_to_string(shared("tinyshakespeare/input.txt")).unwrap().chars().take(20_000).collect();
    let mut tok = build_char_tokenizer(&text).unwrap();
    let mut c = LlamaConfig::tiny(tok.vocab_size(), 40, 2, 4, 1);
    c.max_position_embeddings = 32;
    let teacher = d.join("teacher");
    write_random_hf_dir(&teacher, &c, 11).unwrap();
    tok.save(&teacher.join(TOKENIZER_FILE)).unwrap();
    let dense = load_hf_dir(&teacher, &Device::Cpu).unwrap();
    let file = d.join("model.onebit");
    naive_onebit_from_dense(&dense, QuantSettings::default()).unwrap().save(&file).unwrap();
    tok.save(&d.join(TOKENIZER_FILE)).unwrap();
    let data = d.join("data.txt");
    std::fs::write(&data, &text).unwrap();
    (file, data)
}

/// Every row scores the same tokens; the Verilated accelerator equals the
/// reference on every chunk's loss and on the sample; the CLI writes the
/// report and its plot and exits 0.
#[test]
fn compare_puts_teacher_float_reference_and_hardware_side_by_side() {
    let d = scratch("compare");
    let (file, data) = tiny_model(&d);
    let opts = CompareOptions {
        teacher: onebit::e2e::default_teacher(&file),
        full_split: true,
        hardware: true,
        sample: Some(SampleOptions { prompt: "ROMEO:".into(), tokens: 6, temperature: 0.8, seed: 5 }),
        ..options(file.clone(), data.clone())
    };
    let c = compare(&opts).unwrap();
    assert_eq!(c.verdict, Verdict::BitExact, "{}", c.table());
    let keys: Vec<&str> = c.rows.iter().map(|r| r.key).collect();
    assert_eq!(keys, ["teacher", "onebit_float", "reference", "hardware"]);
    for r in &c.rows {
        assert_eq!(r.result.tokens, 2 * 31, "{}: scores 2 chunks of 32", r.label);
        assert!(r.result.ppl.is_finite() && r.result.ppl > 1.0, "{}", r.label);
    }
    let (h, r) = (c.row("hardware").unwrap(), c.row("reference").unwrap());
    assert_eq!(h.result.chunk_nll, r.result.chunk_nll);
    assert!(c.hardware.unwrap().stats.outputs_checked > 0);
    let s = c.sample.as_ref().unwrap();
    assert_eq!(s.hardware_tokens.as_ref(), Some(&s.reference_tokens));
    assert_eq!(s.reference_tokens.len(), 6);
    assert!(c.full_split.iter().all(|r| r.result.tokens > c.tokens()), "the whole split scores more tokens");

    let json = d.join("out/ppl.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_onebit"))
        .args(["compare", "--chunks", "1", "--sample-tokens", "4", "--prompt", "A"])
        .arg("--model")
        .arg(&file)
        .arg("--data")
        .arg(&data)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verdict: bit-exact on every layer"), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["teacher_ppl", "onebit_float_ppl", "reference_ppl", "hardware_ppl", "tokens", "data", "command"] {
        assert!(!v[key].is_null(), "{key} missing from {v}");
    }
    assert_eq!(v["hardware_ppl"], v["reference_ppl"]);
    assert_eq!(v["bit_exact"], true);
    assert!(std::fs::read_to_string(json.with_extension("svg")).unwrap().contains("<svg"));
}

/// Bad input names the file: a model that is not there, a teacher whose
/// tokenizer reads the text differently.
#[test]
fn compare_rejects_bad_input_with_the_file_named() {
    let d = scratch("bad");
    let (file, data) = tiny_model(&d);
    let out = Command::new(env!("CARGO_BIN_EXE_onebit"))
        .args(["compare", "--no-hardware", "--model", "/nonexistent/model.onebit"])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.onebit"));
    // A teacher whose tokenizer knows one more character (sorted first), so
    // every id it gives is one higher than the model's.
    let other = d.join("other-teacher");
    std::fs::create_dir_all(&other).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(d.join("teacher").join(f), other.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(&data).unwrap();
    build_char_tokenizer(&format!("\u{1}{text}")).unwrap().save(&other.join(TOKENIZER_FILE)).unwrap();
    let opts = CompareOptions { teacher: Some(other.clone()), split: Split::All, chunks: 1, ..options(file, data) };
    let e = compare(&opts).expect_err("the teacher's tokenizer differs");
    let msg = format!("{e:#}");
    assert!(msg.contains("other-teacher") && msg.contains("tokenizer"), "{msg}");
}

/// The precision study's preset point is the reference row of `compare` (the
/// same backend on the same tokens), and every point is a finite perplexity.
#[test]
fn precision_study_agrees_with_compare_at_the_preset() {
    let d = scratch("precision");
    let (file, data) = tiny_model(&d);
    let s = study(&PrecisionOptions {
        model: file.clone(),
        data: data.clone(),
        split: Split::Val10,
        seq_len: None,
        chunks: Some(2),
        preset: "sim16".into(),
        progress: false,
    })
    .unwrap();
    let c = compare(&options(file, data)).unwrap();
    assert_eq!(s.preset_ppl, c.row("reference").unwrap().result.ppl);
    assert_eq!(s.float_ppl, c.row("onebit_float").unwrap().result.ppl);
    let n: usize = onebit::precision::SWEEPS.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(s.points.len(), n);
    assert!(s.points.iter().all(|p| p.ppl.is_finite() && p.ppl > 1.0));
    // The act_bits = 8 point with a lossless-as-possible lane (15 bits) is not the preset (12).
    let v = s.to_json("test", None, None);
    assert_eq!(v["sweeps"]["act_bits"].as_array().unwrap().len(), 5);
    assert!(s.plot_svg().unwrap().contains("<svg"));
}

/// The model shipped in the repository is a trained one: far below the
/// uniform perplexity (its vocabulary, 65) on held-out text, the 1-bit file
/// above its teacher, and the integer reference close to the f32 layer.
#[test]
fn shipped_model_is_trained_and_runs_on_every_software_backend() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shakespeare-char/model.onebit");
    assert!(model.is_file(), "{} is shipped with the repository", model.display());
    let c = compare(&CompareOptions {
        teacher: onebit::e2e::default_teacher(&model),
        chunks: 8,
        ..options(model, shared("tinyshakespeare/input.txt"))
    })
    .unwrap();
    let ppl = |k: &str| c.row(k).unwrap_or_else(|| panic!("row {k}")).result.ppl;
    let (t, f, r) = (ppl("teacher"), ppl("onebit_float"), ppl("reference"));
    assert!(t < f, "teacher {t} vs 1-bit {f}");
    assert!(f < 12.0, "a trained char model is far below the uniform 65: {f}");
    assert!((r / f - 1.0).abs() < 0.02, "reference {r} vs float {f}");
}

/// A stand-in for the hardware that goes wrong in one named layer: either it
/// reports a mismatch (as the driver does) or it silently changes one output
/// by 10^-3. Either way the verdict names what differed.
struct FaultyHardware {
    reference: onebit_core::backend::ReferenceBackend,
    layer: &'static str,
    silent: bool,
}

struct FaultyLayer {
    inner: Box<dyn onebit_core::backend::PreparedLinear>,
    name: Option<String>,
    silent: bool,
}

impl onebit_core::backend::PreparedLinear for FaultyLayer {
    fn forward(
        &self,
        x: ndarray::ArrayView2<f32>,
    ) -> Result<ndarray::Array2<f32>, onebit_core::backend::BackendError> {
        let mut y = self.inner.forward(x)?;
        match (&self.name, self.silent) {
            (None, _) => {}
            (Some(name), false) => {
                return Err(onebit_core::backend::BackendError::new(
                    "hardware",
                    format!("layer {name}: DRAIN tile n0=0, token 0, column 3: got 17, want 16"),
                ))
            }
            (Some(_), true) => y[[0, 3]] += 1e-3,
        }
        Ok(y)
    }
}

impl onebit_core::backend::LinearBackend for FaultyHardware {
    fn name(&self) -> &str {
        "hardware"
    }
    fn prepare(
        &self,
        layer: &onebit_core::PackedLayer,
    ) -> Result<Box<dyn onebit_core::backend::PreparedLinear>, onebit_core::backend::BackendError> {
        self.prepare_named("?", layer)
    }
    fn prepare_named(
        &self,
        name: &str,
        layer: &onebit_core::PackedLayer,
    ) -> Result<Box<dyn onebit_core::backend::PreparedLinear>, onebit_core::backend::BackendError> {
        Ok(Box::new(FaultyLayer {
            inner: self.reference.prepare(layer)?,
            name: (name == self.layer).then(|| name.to_string()),
            silent: self.silent,
        }))
    }
}

impl onebit::e2e::HardwareUnderTest for FaultyHardware {
    fn backend(&self) -> &dyn onebit_core::backend::LinearBackend {
        self
    }
    fn stats(&self) -> onebit_sim::backend::HardwareStats {
        Default::default()
    }
    fn describe(&self) -> String {
        "a faulty stand-in".into()
    }
}

#[test]
fn compare_names_the_layer_or_chunk_that_differs() {
    let d = scratch("faulty");
    let (file, data) = tiny_model(&d);
    let opts = CompareOptions { hardware: true, ..options(file, data) };
    let reference = || onebit_core::backend::ReferenceBackend { config: onebit_core::ArrayConfig::SIM16, layer_norm_eps: 1e-5 };
    let layer = "model.layers.1.mlp.down_proj";
    let loud = FaultyHardware { reference: reference(), layer, silent: false };
    let c = onebit::e2e::compare_on(&opts, Some(&loud)).unwrap();
    match &c.verdict {
        Verdict::Differs(what) => assert!(what.contains(layer) && what.contains("token 0, column 3"), "{what}"),
        v => panic!("a reported mismatch must be the verdict, got {v:?}"),
    }
    assert!(c.row("hardware").is_none(), "no hardware perplexity from a failed run");
    assert!(c.table().contains("hardware differs from the reference"));
    assert_eq!(c.to_json("test", None, None)["bit_exact"], false);

    let quiet = FaultyHardware { reference: reference(), layer, silent: true };
    let c = onebit::e2e::compare_on(&opts, Some(&quiet)).unwrap();
    match &c.verdict {
        Verdict::Differs(what) => assert!(what.contains("chunk 0"), "{what}"),
        v => panic!("one output of one layer off by 1e-3 must show, got {v:?}"),
    }
    // A faithful stand-in (the wrong layer name never matches) is bit-exact.
    let faithful = FaultyHardware { reference: reference(), layer: "no such layer", silent: true };
    assert_eq!(onebit::e2e::compare_on(&opts, Some(&faithful)).unwrap().verdict, Verdict::BitExact);
}
