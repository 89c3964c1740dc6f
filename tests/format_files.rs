//! The 1-bit model file: round trips, the CLI's summary, and malformed files
//! that must each give a clear error naming the file and the problem, a
//! non-zero exit, and no panic.

use onebit_core::format::{FloatDtype, FormatProblem, OneBitModel};
use onebit_core::synth::toy_model;
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("format_files");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn onebit(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_onebit")).args(args).output().expect("run onebit");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A safetensors file from raw parts, so every field can lie.
fn raw_file(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)], meta: Option<&str>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if let Some(m) = meta {
        header.insert("__metadata__".into(), serde_json::json!({ "onebit": m }));
    }
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [start, data.len()] }),
        );
    }
    let mut h = serde_json::to_string(&header).unwrap().into_bytes();
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn meta(version: u32, k: usize, n: usize) -> String {
    serde_json::json!({
        "format": "onebit", "format_version": version, "architecture": {},
        "quantisation": {"act_bits": 8, "layer_norm_eps": 1e-5, "sign_packing": onebit_core::format::SIGN_PACKING},
        "linears": [{"name": "l", "in_features": k, "out_features": n}]
    })
    .to_string()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A valid one-layer file (K = 9, N = 2) and ways to break each part of it.
fn one_layer(signs: Vec<u8>, g: Vec<u8>, h: Vec<u8>, g_dtype: &str, meta_json: Option<&str>) -> Vec<u8> {
    raw_file(
        &[("l.signs", "U8", vec![2, 2], signs), ("l.g", g_dtype, vec![9], g), ("l.h", "F32", vec![2], h)],
        meta_json,
    )
}

#[test]
fn round_trip_is_exact_with_f32_values() {
    let mut m = toy_model(3, 1, 24, 40, 11);
    m.value_dtype = FloatDtype::F32;
    let path = scratch("roundtrip.safetensors");
    m.save(&path).unwrap();
    assert_eq!(OneBitModel::load(&path).unwrap(), m);
}

#[test]
fn f16_values_round_trip_after_rounding() {
    let m = toy_model(4, 1, 17, 9, 5);
    let path = scratch("f16.safetensors");
    m.save(&path).unwrap();
    let a = OneBitModel::load(&path).unwrap();
    for ((_, l0), (_, l1)) in m.linears.iter().zip(&a.linears) {
        assert_eq!(l0.signs, l1.signs);
        for (x, y) in l0.g.iter().zip(&l1.g) {
            assert_eq!(half::f16::from_f32(*x).to_f32(), *y);
        }
    }
    a.save(&path).unwrap();
    assert_eq!(OneBitModel::load(&path).unwrap(), a, "second round trip is exact");
}

#[test]
fn inspect_prints_summary_and_json() {
    let path = scratch("inspect.safetensors");
    let (ok, _, err) = onebit(&["random-model", "--out", path.to_str().unwrap(), "--layers", "1", "--hidden", "32", "--intermediate", "48"]);
    assert!(ok, "{err}");
    let (ok, out, err) = onebit(&["inspect", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("model.layers.0.mlp.down_proj") && out.contains("bits per weight"), "{out}");
    let (ok, out, _) = onebit(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["linears"].as_array().unwrap().len(), 7);
    // 32×48 signs = 192 bytes, g 32 + h 48 halves = 160 bytes: (192 + 160)·8 / 1536 bits per weight.
    let bpw = v["linears"][4]["bits_per_weight"].as_f64().unwrap();
    assert!((bpw - (192.0 + 160.0) * 8.0 / 1536.0).abs() < 1e-9, "{bpw}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["inspect", "random-model", "sim", "train-teacher", "svid", "distill", "export", "logits", "ppl", "bitstream", "bench"] {
        let (ok, out, err) = onebit(&[sub, "--help"]);
        assert!(ok && out.contains("Usage"), "{sub}: {out}{err}");
    }
}

struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    /// Text the error must contain (besides the file name).
    expect: &'static str,
    check: fn(&FormatProblem) -> bool,
}

fn malformed_cases() -> Vec<Case> {
    let k9 = meta(1, 9, 2);
    let good_signs = vec![0b1010_0101, 0b1, 0xff, 0b0];
    let g = f32s(&[0.5; 9]);
    let h = f32s(&[1.0, -1.0]);
    let valid = one_layer(good_signs.clone(), g.clone(), h.clone(), "F32", Some(&k9));
    assert!(OneBitModel::from_bytes(&valid).is_ok(), "the base case must be valid");
    let mut g_nan = vec![0.5f32; 9];
    g_nan[4] = f32::NAN;
    let mut lying = valid.clone();
    // Claim a header longer than the file.
    lying[..8].copy_from_slice(&(valid.len() as u64 * 4).to_le_bytes());
    vec![
        Case { what: "empty file", bytes: vec![], expect: "too short", check: |p| matches!(p, FormatProblem::Safetensors(_)) },
        Case { what: "truncated in the data", bytes: valid[..valid.len() - 5].to_vec(), expect: "truncated", check: |p| matches!(p, FormatProblem::Safetensors(_)) },
        Case { what: "truncated in the header", bytes: valid[..40].to_vec(), expect: "truncated", check: |p| matches!(p, FormatProblem::Safetensors(_)) },
        Case { what: "header length lies", bytes: lying, expect: "header length", check: |p| matches!(p, FormatProblem::Safetensors(_)) },
        Case {
            what: "header lies about a tensor's size",
            bytes: raw_file(&[("l.signs", "U8", vec![2, 3], good_signs.clone()), ("l.g", "F32", vec![9], g.clone()), ("l.h", "F32", vec![2], h.clone())], Some(&k9)),
            expect: "l.signs",
            check: |p| matches!(p, FormatProblem::Safetensors(_)),
        },
        Case { what: "not safetensors at all", bytes: b"hello, this is plain text and not a model".to_vec(), expect: "header", check: |p| matches!(p, FormatProblem::Safetensors(_)) },
        Case { what: "no onebit metadata", bytes: one_layer(good_signs.clone(), g.clone(), h.clone(), "F32", None), expect: "metadata", check: |p| matches!(p, FormatProblem::MissingMetadata) },
        Case { what: "metadata is not JSON", bytes: one_layer(good_signs.clone(), g.clone(), h.clone(), "F32", Some("{not json")), expect: "metadata", check: |p| matches!(p, FormatProblem::BadMetadata(_)) },
        Case { what: "unknown format version", bytes: one_layer(good_signs.clone(), g.clone(), h.clone(), "F32", Some(&meta(7, 9, 2))), expect: "version 7", check: |p| matches!(p, FormatProblem::UnsupportedVersion { found: 7 }) },
        Case {
            what: "wrong dtype for g",
            bytes: one_layer(good_signs.clone(), vec![0; 36], h.clone(), "I32", Some(&k9)),
            expect: "l.g",
            check: |p| matches!(p, FormatProblem::WrongDtype { .. }),
        },
        Case {
            what: "wrong shape for signs",
            bytes: raw_file(&[("l.signs", "U8", vec![4], good_signs.clone()), ("l.g", "F32", vec![9], g.clone()), ("l.h", "F32", vec![2], h.clone())], Some(&k9)),
            expect: "l.signs",
            check: |p| matches!(p, FormatProblem::WrongShape { .. }),
        },
        Case { what: "NaN in g", bytes: one_layer(good_signs.clone(), f32s(&g_nan), h.clone(), "F32", Some(&k9)), expect: "l.g", check: |p| matches!(p, FormatProblem::NotFinite { index: 4, .. }) },
        Case { what: "infinity in h", bytes: one_layer(good_signs.clone(), g.clone(), f32s(&[1.0, f32::INFINITY]), "F32", Some(&k9)), expect: "l.h", check: |p| matches!(p, FormatProblem::NotFinite { index: 1, .. }) },
        Case {
            what: "missing tensor",
            bytes: raw_file(&[("l.signs", "U8", vec![2, 2], good_signs.clone()), ("l.g", "F32", vec![9], g.clone())], Some(&k9)),
            expect: "l.h",
            check: |p| matches!(p, FormatProblem::MissingTensor { .. }),
        },
        Case { what: "padding bits set", bytes: one_layer(vec![0, 0b10, 0, 0], g.clone(), h.clone(), "F32", Some(&k9)), expect: "padding", check: |p| matches!(p, FormatProblem::Padding { .. }) },
        Case {
            what: "signs of a linear the metadata does not list",
            bytes: raw_file(&[("l.signs", "U8", vec![2, 2], good_signs.clone()), ("l.g", "F32", vec![9], g.clone()), ("l.h", "F32", vec![2], h.clone()), ("x.signs", "U8", vec![1], vec![0])], Some(&k9)),
            expect: "x.signs",
            check: |p| matches!(p, FormatProblem::UnlistedLinear { .. }),
        },
        Case {
            what: "full-precision tensor of an integer dtype",
            bytes: raw_file(&[("l.signs", "U8", vec![2, 2], good_signs.clone()), ("l.g", "F32", vec![9], g.clone()), ("l.h", "F32", vec![2], h.clone()), ("emb", "I64", vec![1], vec![0; 8])], Some(&k9)),
            expect: "emb",
            check: |p| matches!(p, FormatProblem::WrongDtype { .. }),
        },
        Case {
            what: "zero-sized linear",
            bytes: one_layer(good_signs, g, h, "F32", Some(&meta(1, 0, 2))),
            expect: "zero dimension",
            check: |p| matches!(p, FormatProblem::EmptyLinear { .. }),
        },
    ]
}

#[test]
fn malformed_files_are_clear_errors() {
    let cases = malformed_cases();
    assert!(cases.len() >= 10);
    for (i, case) in cases.into_iter().enumerate() {
        // Library: the right problem.
        let problem = OneBitModel::from_bytes(&case.bytes).expect_err(case.what);
        assert!((case.check)(&problem), "{}: unexpected problem {problem}", case.what);
        // CLI: non-zero exit, the file's name and the problem on stderr, no panic.
        let path = scratch(&format!("malformed-{i}.safetensors"));
        std::fs::write(&path, &case.bytes).unwrap();
        let (ok, _, err) = onebit(&["inspect", path.to_str().unwrap()]);
        assert!(!ok, "{}: inspect succeeded", case.what);
        assert!(err.contains(path.to_str().unwrap()), "{}: error does not name the file: {err}", case.what);
        assert!(err.contains(case.expect), "{}: error does not mention `{}`: {err}", case.what, case.expect);
        assert!(!err.contains("panicked"), "{}: {err}", case.what);
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let (ok, _, err) = onebit(&["inspect", "/nonexistent/model.safetensors"]);
    assert!(!ok && err.contains("/nonexistent/model.safetensors"), "{err}");
}

#[test]
fn failed_save_leaves_no_file() {
    let mut m = toy_model(5, 1, 8, 8, 4);
    m.tensors.get_mut("model.norm.weight").unwrap().data[0] = f32::NAN;
    let path = scratch("never-written.safetensors");
    let _ = std::fs::remove_file(&path);
    assert!(m.save(&path).is_err());
    assert!(!path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("never-written"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

/// The malformed files are seeds of the onebit_model fuzz target too
/// (tests/fuzz_seeds.rs checks the committed ones).
#[test]
fn malformed_cases_are_written_as_fuzz_seeds_on_request() {
    if std::env::var_os("ONEBIT_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/onebit_model");
    std::fs::create_dir_all(&dir).unwrap();
    for case in malformed_cases() {
        let name: String = case.what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        std::fs::write(dir.join(format!("malformed-{name}")), &case.bytes).unwrap();
    }
}
