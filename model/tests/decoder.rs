//! The decoder's forms agree with each other, gradients reach every trainable
//! tensor, and checkpoints round-trip.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use onebit_core::backend::{FloatBackend, ReferenceBackend};
use onebit_core::format::{FloatDtype, OneBitModel, QuantSettings};
use onebit_core::ArrayConfig;
use onebit_model::checkpoint::{self, load_hf_dir, onebit_decoder, random_hf_tensors, save_hf_dir};
use onebit_model::{LinearKind, Llama, LlamaConfig};

fn gqa_config() -> LlamaConfig {
    // K and N not multiples of 8 or 16 on purpose (24, 40).
    let mut c = LlamaConfig::tiny(37, 24, 2, 4, 2);
    c.intermediate_size = 40;
    c.max_position_embeddings = 32;
    c
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

fn ids(n: usize, vocab: usize) -> Tensor {
    let v: Vec<u32> = (0..n).map(|i| ((i * 7 + 3) % vocab) as u32).collect();
    Tensor::new(v.as_slice(), &Device::Cpu).unwrap()
}

/// A student in training form with non-trivial g, h and norms.
fn onebit_student(c: &LlamaConfig, seed: u64) -> (VarMap, Llama) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = Llama::from_var_builder(c, vb, LinearKind::OneBitTraining, 1e-5).unwrap();
    let mut rng = onebit_core::synth::SplitMix64(seed);
    for (_, var) in varmap.data().lock().unwrap().iter() {
        let n = var.elem_count();
        let vals: Vec<f32> = (0..n)
            .map(|_| {
                let v = 0.5 + rng.unit();
                if rng.unit() < 0.5 {
                    -v
                } else {
                    v
                }
            })
            .collect();
        var.set(&Tensor::from_vec(vals, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    (varmap, model)
}

fn export(_c: &LlamaConfig, model: &Llama) -> OneBitModel {
    checkpoint::export_onebit(model, QuantSettings::default(), FloatDtype::F32).unwrap()
}

#[test]
fn training_form_and_float_backend_compute_the_same_decoder() {
    let c = gqa_config();
    let (_vm, student) = onebit_student(&c, 11);
    let file = export(&c, &student);
    // Through the file format's bytes, as the evaluator would see it.
    let file = OneBitModel::from_bytes(&file.to_bytes().unwrap()).unwrap();
    let backend = FloatBackend { layer_norm_eps: file.quantisation.layer_norm_eps };
    let decoder = onebit_decoder(&file, std::path::Path::new("<memory>"), &backend, &Device::Cpu).unwrap();
    let x = ids(19, c.vocab_size);
    let a = student.forward(&x).unwrap();
    let b = decoder.forward(&x).unwrap();
    let d = max_abs_diff(&a, &b);
    assert!(d < 1e-4, "training form vs float backend: max |diff| = {d}");
    let scale = a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(scale > 0.1, "logits are not trivially small ({scale})");
}

#[test]
fn reference_backend_stays_close_to_float() {
    let c = gqa_config();
    let (_vm, student) = onebit_student(&c, 5);
    let file = export(&c, &student);
    let eps = file.quantisation.layer_norm_eps;
    let float = onebit_decoder(&file, "<m>".as_ref(), &FloatBackend { layer_norm_eps: eps }, &Device::Cpu).unwrap();
    let reference = onebit_decoder(
        &file,
        "<m>".as_ref(),
        &ReferenceBackend { config: ArrayConfig::SIM16, layer_norm_eps: eps },
        &Device::Cpu,
    )
    .unwrap();
    let x = ids(16, c.vocab_size);
    let a = float.forward(&x).unwrap();
    let b = reference.forward(&x).unwrap();
    let rel = max_abs_diff(&a, &b) / a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    // 8-bit activations through two blocks: close, not equal.
    assert!(rel < 0.1, "reference vs float relative max diff {rel}");
    assert!(max_abs_diff(&a, &b) > 0.0, "the integer path should not be bit-identical to f32");
}

#[test]
fn fast_and_differentiable_paths_agree() {
    let c = gqa_config();
    let tensors = random_hf_tensors(&c, 3, &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(tensors.into_iter().collect(), DType::F32, &Device::Cpu);
    let mut m = Llama::from_var_builder(&c, vb, LinearKind::Dense, 1e-5).unwrap();
    assert!(m.differentiable);
    let x = ids(23, c.vocab_size);
    let slow = m.forward_with_hidden(&x).unwrap();
    m.differentiable = false;
    let fast = m.forward_with_hidden(&x).unwrap();
    assert!(max_abs_diff(&slow.logits, &fast.logits) < 1e-5);
    assert_eq!(fast.hidden_states.len(), c.num_hidden_layers);
    for (s, f) in slow.hidden_states.iter().zip(&fast.hidden_states) {
        assert_eq!(f.dims(), &[1, 23, c.hidden_size]);
        assert!(max_abs_diff(s, f) < 1e-5);
    }
}

#[test]
fn gradients_reach_every_trainable_tensor() {
    let mut c = gqa_config();
    c.tie_word_embeddings = true;
    let (varmap, student) = onebit_student(&c, 9);
    let x = ids(12, c.vocab_size);
    let out = student.forward_with_hidden(&x).unwrap();
    let loss = (out.logits.sqr().unwrap().mean_all().unwrap() + out.hidden_states[0].mean_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    assert!(vars.contains_key("model.layers.1.mlp.down_proj.g"));
    assert!(!vars.contains_key("lm_head.weight"), "tied head has no separate tensor");
    for (name, var) in vars.iter() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm.is_finite() && norm > 0.0, "gradient of {name} is {norm}");
    }
}

#[test]
fn sign_ste_forward_and_backward() {
    let w = Var::from_vec(vec![-2.0f32, -0.3, -0.0, 0.0, 0.4, 3.0], 6, &Device::Cpu).unwrap();
    let s = onebit_model::sign_ste(w.as_tensor()).unwrap();
    assert_eq!(s.to_vec1::<f32>().unwrap(), vec![-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]);
    let up = Tensor::new(&[1.0f32, 2.0, -1.0, 0.5, 3.0, -2.0], &Device::Cpu).unwrap();
    let grads = (s * &up).unwrap().sum_all().unwrap().backward().unwrap();
    let g: Vec<f32> = grads.get(w.as_tensor()).unwrap().to_vec1().unwrap();
    for ((&gw, &x), &u) in g.iter().zip(&[-2.0f32, -0.3, -0.0, 0.0, 0.4, 3.0]).zip(&[1.0f32, 2.0, -1.0, 0.5, 3.0, -2.0])
    {
        let want = u * (1.001 - x.tanh().powi(2));
        assert!((gw - want).abs() < 1e-6, "{gw} vs {want}");
    }
}

#[test]
fn hf_directory_round_trip() {
    let dir = std::env::temp_dir().join(format!("onebit-model-rt-{}", std::process::id()));
    let c = gqa_config();
    let tensors = random_hf_tensors(&c, 4, &Device::Cpu).unwrap();
    save_hf_dir(&dir, &c, &tensors).unwrap();
    let loaded = load_hf_dir(&dir, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, c);
    let again = dir.join("again");
    loaded.save_hf_dir(&again).unwrap();
    let a = std::fs::read(dir.join(checkpoint::WEIGHTS_FILE)).unwrap();
    let b = std::fs::read(again.join(checkpoint::WEIGHTS_FILE)).unwrap();
    assert_eq!(a, b, "save → load → save is byte-identical");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn out_of_vocabulary_ids_and_long_inputs_are_errors() {
    let c = gqa_config();
    let vb = VarBuilder::from_tensors(
        random_hf_tensors(&c, 1, &Device::Cpu).unwrap().into_iter().collect(),
        DType::F32,
        &Device::Cpu,
    );
    let m = Llama::from_var_builder(&c, vb, LinearKind::Dense, 1e-5).unwrap();
    let bad = Tensor::new(&[1u32, c.vocab_size as u32], &Device::Cpu).unwrap();
    let e = m.forward(&bad).unwrap_err().to_string();
    assert!(e.contains("outside the vocabulary"), "{e}");
    let e = m.forward(&ids(c.max_position_embeddings + 1, c.vocab_size)).unwrap_err().to_string();
    assert!(e.contains("max_position_embeddings"), "{e}");
}

/// Generation's cached path: feeding a sequence in pieces (a prompt, then one
/// token at a time, then a few at once) gives the logits of one full forward,
/// for a full-precision model and a 1-bit one on the float backend.
#[test]
fn kv_cache_gives_the_full_forward_logits() {
    let c = gqa_config();
    let tensors = random_hf_tensors(&c, 4, &Device::Cpu).unwrap();
    let vb = VarBuilder::from_tensors(tensors.into_iter().collect(), DType::F32, &Device::Cpu);
    let mut dense = Llama::from_var_builder(&c, vb, LinearKind::Dense, 1e-5).unwrap();
    dense.differentiable = false;
    let (_vm, student) = onebit_student(&c, 12);
    let file = export(&c, &student);
    let onebit = onebit_decoder(&file, "<m>".as_ref(), &FloatBackend { layer_norm_eps: 1e-5 }, &Device::Cpu).unwrap();
    let x = ids(c.max_position_embeddings, c.vocab_size);
    for model in [&dense, &onebit] {
        let full = model.forward(&x).unwrap().squeeze(0).unwrap();
        let mut cache = model.new_cache();
        let mut pieces = Vec::new();
        let mut at = 0;
        for n in [7, 1, 1, 1, 3, 1, 18] {
            pieces.push(model.forward_cached(&x.narrow(0, at, n).unwrap(), &mut cache).unwrap().squeeze(0).unwrap());
            at += n;
        }
        assert_eq!((at, cache.len()), (c.max_position_embeddings, c.max_position_embeddings));
        let stepped = Tensor::cat(&pieces, 0).unwrap();
        let d = max_abs_diff(&full, &stepped);
        let scale = full.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-4 * scale.max(1.0), "cached vs full forward: max |diff| = {d} (logits up to {scale})");
        // The cache is full: one more token is past max_position_embeddings.
        let e = model.forward_cached(&x.narrow(0, 0, 1).unwrap(), &mut cache).unwrap_err().to_string();
        assert!(e.contains("max_position_embeddings"), "{e}");
    }
}
