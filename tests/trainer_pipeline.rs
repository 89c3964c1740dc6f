//! The trainer end to end through the built binary, on a tiny configuration:
//! train-teacher → svid → distill → export, bit-identical resume, Ctrl-C, and
//! bad input. Everything is made here from a small synthetic text.

use onebit_core::backend::FloatBackend;
use onebit_model::candle_core::{Device, Tensor};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::ffi::OsString;
use std::process::{Command, Output};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("onebit-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic text with structure a tiny model can learn quickly.
fn write_text(dir: &Path) -> PathBuf {
    let words = ["the", "king", "queen", "doth", "speak", "of", "love", "and", "war", "to", "thee", "my", "lord"];
    let mut s = String::new();
    let mut x = 7u32;
    for i in 0..1500 {
        x = x.wrapping_mul(1103515245).wrapping_add(12345);
        s.push_str(words[(x >> 16) as usize % words.len()]);
        s.push(if i % 11 == 10 { '\n' } else { ' ' });
    }
    let p = dir.join("text.txt");
    std::fs::write(&p, s).unwrap();
    p
}

fn onebit(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onebit")).args(args.iter().map(|a| a.as_ref())).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A clean failure: exit code 1 (not a panic's 101), a message naming `needle`.
fn fails_with(out: Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected a clean failure, got {:?}: {err}", out.status);
    assert!(err.contains(needle), "error does not mention `{needle}`: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

const TINY_TEACHER: [&str; 20] = [
    "--layers", "2", "--heads", "2", "--hidden", "32", "--context", "16", "--batch", "8", "--steps", "60", "--warmup", "5",
    "--eval-batches", "4", "--eval-every", "20", "--lr", "3e-3",
];

fn train_tiny_teacher(dir: &Path, text: &Path) -> PathBuf {
    let teacher = dir.join("teacher");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"train-teacher", &"--recipe", &"shakespeare-char", &"--data", &text, &"--out", &teacher];
    for a in &TINY_TEACHER {
        args.push(a);
    }
    ok(onebit(&args));
    teacher
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn distill_args(teacher: &Path, student: &Path, text: &Path, out: &Path, steps: &str) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["distill".into(), "--teacher".into(), teacher.into(), "--student".into(), student.into()];
    v.extend(["--data".into(), text.into(), "--out".into(), out.into(), "--steps".into(), steps.into()]);
    for a in ["--batch", "4", "--context", "16", "--warmup", "2", "--eval-batches", "2", "--eval-every", "5", "--checkpoint-every", "2", "--lr", "3e-3"] {
        v.push(a.into());
    }
    v
}

fn run(args: &[OsString]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onebit")).args(args).output().unwrap()
}

#[test]
fn teacher_svid_distill_export_end_to_end() {
    let d = scratch("e2e");
    let text = write_text(&d);
    let teacher = train_tiny_teacher(&d, &text);
    for f in ["config.json", "model.safetensors", "tokenizer.json", "teacher.json", "teacher_loss.csv", "teacher_loss.svg"] {
        assert!(teacher.join(f).is_file(), "teacher is missing {f}");
    }
    // The teacher learned something: validation loss well below the uniform ln(vocab).
    let report = read_json(&teacher.join("teacher.json"));
    let vocab = report["vocab_size"].as_f64().unwrap();
    let val = report["val_loss_full_pass"].as_f64().unwrap();
    assert!(val < 0.8 * vocab.ln(), "teacher validation loss {val} vs ln(vocab) {}", vocab.ln());
    // transformers-compatible directory: the model crate loads it.
    let t = onebit_model::checkpoint::load_hf_dir(&teacher, &Device::Cpu).unwrap();
    assert_eq!(t.config.num_hidden_layers, 2);

    let student = d.join("student");
    let table = ok(onebit(&[&"svid", &"--teacher", &teacher, &"--out", &student]));
    assert!(table.contains("model.layers.1.mlp.down_proj"), "{table}");
    let svid = read_json(&student.join("svid.json"));
    let layers = svid["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 14);
    for l in layers {
        assert!(l["svid_error"].as_f64().unwrap() <= l["naive_error"].as_f64().unwrap() + 1e-9, "{l}");
    }

    let kd = d.join("kd");
    ok(run(&distill_args(&teacher, &student, &text, &kd, "20")));
    for f in ["config.json", "student.safetensors", "tokenizer.json", "distill.json", "distill_loss.csv", "distill_loss.svg", "checkpoint.safetensors"] {
        assert!(kd.join(f).is_file(), "distilled student is missing {f}");
    }
    let csv = std::fs::read_to_string(kd.join("distill_loss.csv")).unwrap();
    let losses: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(3).unwrap().parse().unwrap()).collect();
    assert!(losses.iter().all(|l| l.is_finite()));
    let dr = read_json(&kd.join("distill.json"));
    assert!(dr["val_kd_loss"].as_f64().unwrap().is_finite());
    // Distillation works: the student's cross-entropy on the validation batches
    // falls below where SVID left it, under both recipes.
    let (start, end) = (dr["val_student_ce_start"].as_f64().unwrap(), dr["val_student_ce"].as_f64().unwrap());
    assert!(end < start, "project recipe: student cross-entropy {end} after distillation, {start} at the SVID start");
    let kd_official = d.join("kd-official");
    let mut args = distill_args(&teacher, &student, &text, &kd_official, "20");
    args.extend(["--recipe".into(), "official".into()]);
    ok(run(&args));
    let dr = read_json(&kd_official.join("distill.json"));
    let (start, end) = (dr["val_student_ce_start"].as_f64().unwrap(), dr["val_student_ce"].as_f64().unwrap());
    assert!(end < start, "official recipe: student cross-entropy {end} after distillation, {start} at the SVID start");
    // Frozen embedding and head: the tied embedding (vocab × 32) is not trained, and comes out unchanged.
    let vocab = report["vocab_size"].as_u64().unwrap();
    assert_eq!(dr["frozen_parameters"].as_u64(), Some(vocab * 32));
    let before = onebit_trainer::student::read_student(&student).unwrap().tensors["model.embed_tokens.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let after = onebit_trainer::student::read_student(&kd_official).unwrap().tensors["model.embed_tokens.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(before, after);

    // Export with f32 values so the file must reproduce the student exactly.
    let model_file = d.join("out/model.onebit");
    let out = ok(onebit(&[&"export", &"--student", &kd, &"--out", &model_file, &"--value-dtype", &"f32", &"--json"]));
    let er: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(er["linears"].as_u64(), Some(14));
    let bpw = er["bits_per_weight"].as_f64().unwrap();
    assert!(bpw > 1.0 && bpw < 3.0, "bits per weight {bpw}");
    assert!(d.join("out/tokenizer.json").is_file());
    ok(onebit(&[&"inspect", &model_file]));

    // The exported file on the float backend computes what the training-form student computes.
    let s = onebit_trainer::student::read_student(&kd).unwrap().decoder(&Device::Cpu).unwrap();
    let backend = FloatBackend { layer_norm_eps: onebit_core::numerics::LAYER_NORM_EPS };
    let m = onebit_model::checkpoint::load_onebit_model(&model_file, &backend, &Device::Cpu).unwrap();
    let ids = Tensor::new(&[[1u32, 5, 3, 7, 2, 0, 4]], &Device::Cpu).unwrap();
    let a: Vec<f32> = s.forward(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = m.forward(&ids).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let max = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max < 1e-3, "exported model differs from the student by {max}");
}

fn student_tensors(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let s = onebit_trainer::student::read_student(dir).unwrap();
    s.tensors.iter().map(|(k, v)| (k.clone(), v.flatten_all().unwrap().to_vec1().unwrap())).collect()
}

#[test]
fn resume_is_bit_identical_and_ctrl_c_saves_a_checkpoint() {
    let d = scratch("resume");
    let text = write_text(&d);
    let teacher = train_tiny_teacher(&d, &text);
    let student = d.join("student");
    ok(onebit(&[&"svid", &"--teacher", &teacher, &"--out", &student, &"--method", &"svd"]));

    let straight = d.join("straight");
    ok(run(&distill_args(&teacher, &student, &text, &straight, "7")));
    let split = d.join("split");
    let mut first = distill_args(&teacher, &student, &text, &split, "7");
    first.extend(["--stop-at".into(), "3".into()]);
    let msg = ok(run(&first));
    assert!(msg.contains("stopped at step 3"), "{msg}");
    assert!(!split.join("student.safetensors").exists());
    // Without --resume an existing checkpoint is never overwritten.
    fails_with(run(&distill_args(&teacher, &student, &text, &split, "7")), "--resume");
    // Different settings cannot resume.
    let mut changed = distill_args(&teacher, &student, &text, &split, "8");
    changed.push("--resume".into());
    fails_with(run(&changed), "different settings");
    let mut resume = distill_args(&teacher, &student, &text, &split, "7");
    resume.push("--resume".into());
    ok(run(&resume));
    let (a, b) = (student_tensors(&straight), student_tensors(&split));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()), "tensor {na} differs after resume");
    }
    // The curves agree too.
    assert_eq!(std::fs::read_to_string(straight.join("distill_loss.csv")).unwrap(), std::fs::read_to_string(split.join("distill_loss.csv")).unwrap());

    // Ctrl-C: a long run, interrupted once its first checkpoint exists, saves and exits non-zero.
    #[cfg(unix)]
    {
        let long = d.join("long");
        let mut args = distill_args(&teacher, &student, &text, &long, "100000");
        let i = args.iter().position(|a| a == "--eval-every").unwrap();
        args[i + 1] = "0".into();
        let mut child = Command::new(env!("CARGO_BIN_EXE_onebit"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let ckpt = long.join("checkpoint.safetensors");
        let t0 = std::time::Instant::now();
        while !ckpt.exists() && t0.elapsed().as_secs() < 120 && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if !ckpt.exists() {
            let out = child.wait_with_output().unwrap();
            panic!("no checkpoint appeared: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(st.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("checkpoint saved"));
        let bytes = std::fs::read(&ckpt).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let m: Value = serde_json::from_str(&meta.metadata().as_ref().unwrap()["onebit_train"]).unwrap();
        let step = m["step"].as_u64().unwrap();
        assert!(step >= 2 && step < 100000, "step {step}");
    }
}

#[test]
fn bad_input_fails_cleanly() {
    let d = scratch("bad");
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(onebit(&[&"svid", &"--teacher", &empty, &"--out", &d.join("s")]), "config.json");
    fails_with(onebit(&[&"export", &"--student", &empty, &"--out", &d.join("m.onebit")]), "config.json");
    assert!(!d.join("m.onebit").exists());
    let out = onebit(&[&"svid", &"--teacher", &empty, &"--out", &d.join("s"), &"--method", &"qr"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown SVID method `qr`"));
    let text = d.join("empty.txt");
    std::fs::write(&text, "").unwrap();
    fails_with(onebit(&[&"train-teacher", &"--data", &text, &"--out", &d.join("t")]), "empty.txt");
    // A teacher directory is not a student.
    let hf = d.join("hf");
    let cfg = onebit_model::LlamaConfig::tiny(11, 16, 1, 2, 2);
    onebit_model::checkpoint::write_random_hf_dir(&hf, &cfg, 3).unwrap();
    fails_with(onebit(&[&"export", &"--student", &hf, &"--out", &d.join("m.onebit")]), "student.safetensors");
    // A student with a damaged tensor names it.
    let st = d.join("st");
    ok(onebit(&[&"svid", &"--teacher", &hf, &"--out", &st]));
    let mut tensors = onebit_trainer::student::read_student(&st).unwrap().tensors;
    tensors.insert("model.layers.0.mlp.up_proj.g".into(), Tensor::zeros(3, onebit_model::candle_core::DType::F32, &Device::Cpu).unwrap());
    onebit_trainer::student::write_student(&st, &tensors, &cfg, Value::Null).unwrap();
    fails_with(onebit(&[&"export", &"--student", &st, &"--out", &d.join("m.onebit")]), "model.layers.0.mlp.up_proj.g");
    assert!(!d.join("m.onebit").exists());
}
