//! Deterministic synthetic layers and models for tests, benchmarks and demos
//! (no `rand` dependency: SplitMix64 is enough and never changes underneath us).

use crate::format::{FloatDtype, FloatTensor, OneBitModel, QuantSettings};
use crate::numerics::FixedVector;
use crate::pack::pack_sign_values;
use crate::reference::PackedLayer;
use crate::{ArrayConfig, QuantizedLayer};
use std::collections::BTreeMap;

/// SplitMix64: tiny, fast, and stable across versions.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Uniform in [-1, 1).
    pub fn symmetric(&mut self) -> f32 {
        2.0 * self.unit() - 1.0
    }
    /// Uniform integer in [lo, hi].
    pub fn range_i64(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
}

/// A random OneBit layer: random signs, g in [0.5, 1.5), h in [-1, 1).
pub fn random_layer(rng: &mut SplitMix64, k: usize, n: usize) -> PackedLayer {
    let w: Vec<f32> = (0..n * k).map(|_| rng.symmetric()).collect();
    let g = (0..k).map(|_| 0.5 + rng.unit()).collect();
    let h = (0..n).map(|_| rng.symmetric()).collect();
    PackedLayer::from_dense(&w, n, k, g, h).expect("shapes are consistent")
}

/// A small model with `layers` blocks of q/k/v/o and MLP-shaped OneBit linears
/// plus an embedding, a final norm and an LM head in full precision.
pub fn toy_model(seed: u64, layers: usize, hidden: usize, intermediate: usize, vocab: usize) -> OneBitModel {
    let mut rng = SplitMix64(seed);
    // Heads of 16 (or fewer) dimensions that divide the hidden size.
    let heads = (1..=hidden).rev().find(|h| hidden % h == 0 && hidden / h >= 16.min(hidden)).unwrap_or(1);
    let mut linears = Vec::new();
    for l in 0..layers {
        for (name, k, n) in [
            ("self_attn.q_proj", hidden, hidden),
            ("self_attn.k_proj", hidden, hidden),
            ("self_attn.v_proj", hidden, hidden),
            ("self_attn.o_proj", hidden, hidden),
            ("mlp.gate_proj", hidden, intermediate),
            ("mlp.up_proj", hidden, intermediate),
            ("mlp.down_proj", intermediate, hidden),
        ] {
            linears.push((format!("model.layers.{l}.{name}"), random_layer(&mut rng, k, n)));
        }
    }
    let mut tensors = BTreeMap::new();
    let mut t = |name: &str, shape: Vec<usize>, rng: &mut SplitMix64| {
        let len = shape.iter().product();
        let data = (0..len).map(|_| 0.02 * rng.symmetric()).collect();
        tensors.insert(name.to_string(), FloatTensor { shape, data, dtype: FloatDtype::F32 });
    };
    t("model.embed_tokens.weight", vec![vocab, hidden], &mut rng);
    t("lm_head.weight", vec![vocab, hidden], &mut rng);
    // RMSNorm weights of one, as a freshly initialised LLaMA has.
    let mut ones = |name: String| {
        tensors.insert(name, FloatTensor { shape: vec![hidden], data: vec![1.0; hidden], dtype: FloatDtype::F32 });
    };
    ones("model.norm.weight".into());
    for l in 0..layers {
        ones(format!("model.layers.{l}.input_layernorm.weight"));
        ones(format!("model.layers.{l}.post_attention_layernorm.weight"));
    }
    OneBitModel {
        architecture: serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "hidden_act": "silu",
            "tie_word_embeddings": false,
            "vocab_size": vocab,
            "synthetic": true,
        }),
        quantisation: QuantSettings::default(),
        linears,
        value_dtype: FloatDtype::F16,
        tensors,
    }
}

/// A value in the `bits`-wide port range, with the extremes (and ±1, 0)
/// drawn a quarter of the time.
pub fn port_value(rng: &mut SplitMix64, bits: u32) -> i64 {
    let (lo, hi) = ArrayConfig::port_range(bits);
    if rng.next_u64() % 4 == 0 {
        [lo, lo + 1, -1, 0, 1, hi - 1, hi][(rng.next_u64() % 7) as usize]
    } else {
        rng.range_i64(lo, hi)
    }
}

/// A random quantised layer; g and h over their whole port ranges.
pub fn random_quantized_layer(rng: &mut SplitMix64, cfg: &ArrayConfig, k: usize, n: usize) -> QuantizedLayer {
    let signs: Vec<i8> = (0..n * k)
        .map(|_| if rng.next_u64() & 1 == 0 { 1 } else { -1 })
        .collect();
    QuantizedLayer {
        in_features: k,
        out_features: n,
        signs: pack_sign_values(&signs, n, k),
        g: FixedVector {
            q: (0..k).map(|_| port_value(rng, cfg.g_bits) as i32).collect(),
            frac: 0,
        },
        h: FixedVector {
            q: (0..n).map(|_| port_value(rng, cfg.h_bits) as i32).collect(),
            frac: 0,
        },
    }
}

/// Random activations over the act_bits port range, extremes mixed in.
pub fn random_activations(rng: &mut SplitMix64, cfg: &ArrayConfig, m: usize, k: usize) -> ndarray::Array2<i32> {
    ndarray::Array2::from_shape_fn((m, k), |_| port_value(rng, cfg.act_bits) as i32)
}
