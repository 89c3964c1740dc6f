//! The decoder's configuration, read from and written to a Hugging Face
//! `LlamaForCausalLM` config.json.
//!
//! Absent fields take the defaults of transformers' `LlamaConfig` (its
//! `save_pretrained` leaves out fields equal to the default). Anything this
//! decoder would compute differently from transformers is refused with the
//! name of the field.

use crate::error::ModelError;
use serde_json::{json, Value};
use std::path::Path;

/// Most hidden layers a config may declare (docs/fuzzing.md): far above any
/// LLaMA released (126), low enough that the list of tensors a config implies
/// stays small before a single weight is read.
pub const MAX_LAYERS: usize = 1024;
/// Largest width, vocabulary, head count or context a config may declare
/// (and the largest `num_attention_heads × head_dim`).
pub const MAX_DIM: usize = 1 << 24;

/// A LLaMA-architecture decoder's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention); equal to `num_attention_heads` for plain MHA.
    pub num_key_value_heads: usize,
    /// Width of one attention head (`hidden_size / num_attention_heads` unless given).
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// The LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl LlamaConfig {
    /// A small config with sensible defaults for tests and from-scratch training.
    pub fn tiny(vocab_size: usize, hidden_size: usize, layers: usize, heads: usize, kv_heads: usize) -> Self {
        LlamaConfig {
            vocab_size,
            hidden_size,
            intermediate_size: hidden_size * 8 / 3,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim: hidden_size / heads,
            max_position_embeddings: 256,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            tie_word_embeddings: false,
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    /// Parse a config.json; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self, ModelError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ModelError::config(path, "(whole file)", format!("not valid JSON: {e}")))?;
        Self::from_hf_json(&value, path)
    }

    /// Read `path` (a config.json).
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json_str(&text, path)
    }

    /// Interpret a Hugging Face config object; `path` names its origin in errors.
    pub fn from_hf_json(v: &Value, path: &Path) -> Result<Self, ModelError> {
        let err = |field: &str, msg: String| ModelError::config(path, field, msg);
        let obj = v.as_object().ok_or_else(|| err("(whole file)", "must be a JSON object".into()))?;
        let get = |name: &str| obj.get(name).filter(|x| !x.is_null());

        if let Some(t) = get("model_type") {
            if t.as_str() != Some("llama") {
                return Err(err("model_type", format!("{t} is not supported (only \"llama\")")));
            }
        }
        if let Some(a) = get("architectures") {
            let names: Vec<&str> =
                a.as_array().map(|a| a.iter().filter_map(|x| x.as_str()).collect()).unwrap_or_default();
            if !names.contains(&"LlamaForCausalLM") {
                return Err(err("architectures", format!("{a} is not supported (only [\"LlamaForCausalLM\"])")));
            }
        }
        let limit = |name: &str| if name == "num_hidden_layers" { MAX_LAYERS } else { MAX_DIM };
        let usize_field = |name: &str, default: Option<usize>| -> Result<usize, ModelError> {
            match get(name) {
                None => default.ok_or_else(|| err(name, "is missing".into())),
                Some(x) => match x.as_u64() {
                    Some(0) => Err(err(name, "must be at least 1".into())),
                    Some(n) if n > limit(name) as u64 => {
                        Err(err(name, format!("{n} is larger than this loader's limit of {}", limit(name))))
                    }
                    Some(n) => Ok(n as usize),
                    None => Err(err(name, format!("{x} is not a positive integer"))),
                },
            }
        };
        let f64_field = |name: &str, default: f64| -> Result<f64, ModelError> {
            match get(name) {
                None => Ok(default),
                Some(x) => match x.as_f64() {
                    Some(f) if f.is_finite() && f > 0.0 => Ok(f),
                    _ => Err(err(name, format!("{x} is not a positive number"))),
                },
            }
        };
        let bool_field = |name: &str, default: bool| -> Result<bool, ModelError> {
            match get(name) {
                None => Ok(default),
                Some(x) => x.as_bool().ok_or_else(|| err(name, format!("{x} is not true or false"))),
            }
        };
        let token_field = |name: &str| -> Result<Option<u32>, ModelError> {
            match get(name) {
                None => Ok(None),
                Some(x) if x.is_u64() => Ok(Some(x.as_u64().unwrap() as u32)),
                // A list of end tokens (LLaMA 3): keep the first.
                Some(Value::Array(a)) => Ok(a.first().and_then(|x| x.as_u64()).map(|x| x as u32)),
                Some(x) => Err(err(name, format!("{x} is not a token id"))),
            }
        };

        // Fields whose other values would change the computation.
        if let Some(act) = get("hidden_act") {
            if act.as_str() != Some("silu") {
                return Err(err("hidden_act", format!("{act} is not supported (only \"silu\")")));
            }
        }
        if let Some(rs) = get("rope_scaling") {
            return Err(err("rope_scaling", format!("{rs} is not supported (only null: plain RoPE)")));
        }
        // transformers 5 keeps θ under `rope_parameters` (older versions: top-level `rope_theta`).
        let mut rope_theta_at = ("rope_theta", get("rope_theta"));
        if let Some(rp) = get("rope_parameters") {
            let rp = rp.as_object().ok_or_else(|| err("rope_parameters", format!("{rp} is not an object")))?;
            match rp.get("rope_type").and_then(|t| t.as_str()) {
                None | Some("default") => {}
                Some(t) => {
                    return Err(err(
                        "rope_parameters.rope_type",
                        format!("\"{t}\" is not supported (only \"default\": plain RoPE)"),
                    ))
                }
            }
            if let Some(t) = rp.get("rope_theta").filter(|x| !x.is_null()) {
                rope_theta_at = ("rope_parameters.rope_theta", Some(t));
            }
        }
        for name in ["attention_bias", "mlp_bias"] {
            if bool_field(name, false)? {
                return Err(err(name, "true is not supported (linears without bias only)".into()));
            }
        }

        // Defaults are those of transformers' LlamaConfig.
        let hidden_size = usize_field("hidden_size", Some(4096))?;
        let num_attention_heads = usize_field("num_attention_heads", Some(32))?;
        let num_key_value_heads = usize_field("num_key_value_heads", Some(num_attention_heads))?;
        if num_attention_heads % num_key_value_heads != 0 {
            return Err(err(
                "num_key_value_heads",
                format!("{num_key_value_heads} does not divide num_attention_heads = {num_attention_heads}"),
            ));
        }
        let head_dim = match get("head_dim") {
            Some(_) => usize_field("head_dim", None)?,
            None => {
                if hidden_size % num_attention_heads != 0 {
                    return Err(err(
                        "num_attention_heads",
                        format!("{num_attention_heads} does not divide hidden_size = {hidden_size} (and no head_dim is given)"),
                    ));
                }
                hidden_size / num_attention_heads
            }
        };
        if num_attention_heads.saturating_mul(head_dim) > MAX_DIM {
            return Err(err(
                "head_dim",
                format!("{num_attention_heads} heads of {head_dim} exceed this loader's limit of {MAX_DIM} query features"),
            ));
        }
        if head_dim % 2 != 0 {
            return Err(err("head_dim", format!("{head_dim} is odd; rotary embeddings need an even head width")));
        }
        Ok(LlamaConfig {
            vocab_size: usize_field("vocab_size", Some(32000))?,
            hidden_size,
            intermediate_size: usize_field("intermediate_size", Some(11008))?,
            num_hidden_layers: usize_field("num_hidden_layers", Some(32))?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            max_position_embeddings: usize_field("max_position_embeddings", Some(2048))?,
            rms_norm_eps: f64_field("rms_norm_eps", 1e-6)?,
            rope_theta: match rope_theta_at {
                (_, None) => 10000.0,
                (name, Some(x)) => match x.as_f64() {
                    Some(f) if f.is_finite() && f > 0.0 => f,
                    _ => return Err(err(name, format!("{x} is not a positive number"))),
                },
            },
            tie_word_embeddings: bool_field("tie_word_embeddings", false)?,
            bos_token_id: token_field("bos_token_id")?,
            eos_token_id: token_field("eos_token_id")?,
        })
    }

    /// The config as transformers writes it (every field explicit).
    pub fn to_hf_json(&self) -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "rope_scaling": null,
            "attention_bias": false,
            "attention_dropout": 0.0,
            "mlp_bias": false,
            "pretraining_tp": 1,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "initializer_range": 0.02,
            "use_cache": true,
            "torch_dtype": "float32",
        })
    }

    /// Width of the key/value projections.
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Width of the query projection (and input of o_proj).
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// (in_features K, out_features N) of each linear of a block, by its name
    /// under `model.layers.{i}.` (see [`crate::LINEAR_NAMES`]).
    pub fn linear_shape(&self, name: &str) -> Option<(usize, usize)> {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        Some(match name {
            "self_attn.q_proj" => (h, self.q_dim()),
            "self_attn.k_proj" | "self_attn.v_proj" => (h, self.kv_dim()),
            "self_attn.o_proj" => (self.q_dim(), h),
            "mlp.gate_proj" | "mlp.up_proj" => (h, i),
            "mlp.down_proj" => (i, h),
            _ => return None,
        })
    }

    /// Every tensor of a full-precision `LlamaForCausalLM` checkpoint with its shape
    /// (`lm_head.weight` only when the head is untied).
    pub fn hf_tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![self.vocab_size, h])];
        for l in 0..self.num_hidden_layers {
            out.push((format!("model.layers.{l}.input_layernorm.weight"), vec![h]));
            out.push((format!("model.layers.{l}.post_attention_layernorm.weight"), vec![h]));
            for name in crate::LINEAR_NAMES {
                let (k, n) = self.linear_shape(name).expect("known linear");
                out.push((format!("model.layers.{l}.{name}.weight"), vec![n, k]));
            }
        }
        out.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            out.push(("lm_head.weight".to_string(), vec![self.vocab_size, h]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config alone must not make the loader build a list of 10^12 tensor
    /// names or tables for 10^12 positions (docs/fuzzing.md).
    #[test]
    fn sizes_past_the_limits_are_errors() {
        let base = LlamaConfig::tiny(16, 8, 1, 2, 1).to_hf_json();
        for (field, value) in [
            ("num_hidden_layers", 1_000_000_000_000u64),
            ("num_hidden_layers", MAX_LAYERS as u64 + 1),
            ("vocab_size", MAX_DIM as u64 + 1),
            ("max_position_embeddings", 1 << 40),
            ("head_dim", 1 << 30),
        ] {
            let mut c = base.clone();
            c[field] = value.into();
            let e = LlamaConfig::from_hf_json(&c, Path::new("config.json")).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("limit"), "{field} = {value}: {e}");
        }
        let mut c = base.clone();
        c["num_hidden_layers"] = MAX_LAYERS.into();
        assert!(LlamaConfig::from_hf_json(&c, Path::new("config.json")).is_ok());
    }
}
