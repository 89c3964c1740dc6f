//! The LLaMA-architecture decoder: token embedding, blocks of
//! (RMSNorm → grouped-query attention with rotary embeddings → residual,
//! RMSNorm → SwiGLU MLP → residual), final RMSNorm, tied or untied LM head.
//! Computation follows transformers' `LlamaForCausalLM` (eager attention).

use crate::config::LlamaConfig;
use crate::error::ModelError;
use crate::linear::{BlockLinear, LinearKind};
use crate::train_ops;
use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder};

/// The linears of one block, by their Hugging Face names under `model.layers.{i}.`,
/// in the order [`Block::linears`] holds them.
pub const LINEAR_NAMES: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];
const Q: usize = 0;
const K: usize = 1;
const V: usize = 2;
const O: usize = 3;
const GATE: usize = 4;
const UP: usize = 5;
const DOWN: usize = 6;

/// One decoder block.
#[derive(Debug)]
pub struct Block {
    /// RMSNorm weight before attention (hidden).
    pub input_layernorm: Tensor,
    /// RMSNorm weight before the MLP (hidden).
    pub post_attention_layernorm: Tensor,
    /// The seven linears, in [`LINEAR_NAMES`] order.
    pub linears: Vec<BlockLinear>,
}

impl Block {
    /// A linear by its name under `model.layers.{i}.` (e.g. `self_attn.q_proj`).
    pub fn linear(&self, name: &str) -> Option<&BlockLinear> {
        LINEAR_NAMES.iter().position(|n| *n == name).map(|i| &self.linears[i])
    }
}

/// Logits plus the hidden state after every block.
#[derive(Debug)]
pub struct ForwardOutput {
    /// (batch, seq, vocab).
    pub logits: Tensor,
    /// `hidden_states[i]`: output of block i (batch, seq, hidden), before the final norm.
    pub hidden_states: Vec<Tensor>,
}

/// A LLaMA-architecture decoder.
#[derive(Debug)]
pub struct Llama {
    pub config: LlamaConfig,
    /// (vocab, hidden).
    pub embed_tokens: Tensor,
    pub blocks: Vec<Block>,
    /// Final RMSNorm weight (hidden).
    pub norm: Tensor,
    /// (vocab, hidden); `None` when tied to `embed_tokens`.
    pub lm_head: Option<Tensor>,
    /// Use only ops with a backward pass (slower); off for inference.
    pub differentiable: bool,
    /// Rotary inverse frequencies; the cos/sin rows of the positions a forward
    /// pass needs are computed from them then (a table for every position up
    /// to max_position_embeddings would cost memory the weights do not justify).
    inv_freq: Vec<f32>,
}

impl Llama {
    /// Assemble a decoder from its parts (shapes are checked).
    pub fn new(
        config: LlamaConfig,
        embed_tokens: Tensor,
        blocks: Vec<Block>,
        norm: Tensor,
        lm_head: Option<Tensor>,
    ) -> Result<Self, ModelError> {
        let c = &config;
        let bad = |what: String| Err(ModelError::Input(format!("assembling the decoder: {what}")));
        if embed_tokens.dims() != [c.vocab_size, c.hidden_size] {
            return bad(format!(
                "embed_tokens is {:?}, expected [{}, {}]",
                embed_tokens.dims(),
                c.vocab_size,
                c.hidden_size
            ));
        }
        if blocks.len() != c.num_hidden_layers {
            return bad(format!("{} blocks, config says {}", blocks.len(), c.num_hidden_layers));
        }
        for (i, b) in blocks.iter().enumerate() {
            if b.linears.len() != LINEAR_NAMES.len() {
                return bad(format!("block {i} has {} linears, expected {}", b.linears.len(), LINEAR_NAMES.len()));
            }
            for (name, l) in LINEAR_NAMES.iter().zip(&b.linears) {
                let want = c.linear_shape(name).expect("known linear");
                if l.shape() != want {
                    return bad(format!("model.layers.{i}.{name} is K×N = {:?}, expected {want:?}", l.shape()));
                }
            }
            for (what, t) in
                [("input_layernorm", &b.input_layernorm), ("post_attention_layernorm", &b.post_attention_layernorm)]
            {
                if t.dims() != [c.hidden_size] {
                    return bad(format!("model.layers.{i}.{what} is {:?}, expected [{}]", t.dims(), c.hidden_size));
                }
            }
        }
        if norm.dims() != [c.hidden_size] {
            return bad(format!("norm is {:?}, expected [{}]", norm.dims(), c.hidden_size));
        }
        if let Some(h) = &lm_head {
            if h.dims() != [c.vocab_size, c.hidden_size] {
                return bad(format!("lm_head is {:?}, expected [{}, {}]", h.dims(), c.vocab_size, c.hidden_size));
            }
        }
        let inv_freq = rope_inv_freq(c);
        Ok(Llama { config, embed_tokens, blocks, norm, lm_head, differentiable: false, inv_freq })
    }

    /// Build from a `VarBuilder` with Hugging Face tensor names. With a builder on
    /// a `VarMap`, missing variables are created (embeddings and linears
    /// ~ N(0, 0.02²), norms 1; see [`LinearKind`] for OneBit linears) and trained
    /// through the map. The result is `differentiable`.
    pub fn from_var_builder(
        config: &LlamaConfig,
        vb: VarBuilder,
        kind: LinearKind,
        onebit_layer_norm_eps: f64,
    ) -> Result<Self, ModelError> {
        let c = config;
        let h = c.hidden_size;
        let randn = Init::Randn { mean: 0.0, stdev: 0.02 };
        let m = vb.pp("model");
        let embed = m.get_with_hints((c.vocab_size, h), "embed_tokens.weight", randn)?;
        let mut blocks = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let lb = m.pp(format!("layers.{i}"));
            let mut linears = Vec::with_capacity(LINEAR_NAMES.len());
            for name in LINEAR_NAMES {
                let (k, n) = c.linear_shape(name).expect("known linear");
                linears.push(BlockLinear::from_var_builder(&lb.pp(name), kind, k, n, onebit_layer_norm_eps)?);
            }
            blocks.push(Block {
                input_layernorm: lb.get_with_hints(h, "input_layernorm.weight", Init::Const(1.0))?,
                post_attention_layernorm: lb.get_with_hints(h, "post_attention_layernorm.weight", Init::Const(1.0))?,
                linears,
            });
        }
        let norm = m.get_with_hints(h, "norm.weight", Init::Const(1.0))?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(vb.get_with_hints((c.vocab_size, h), "lm_head.weight", randn)?)
        };
        let mut model = Llama::new(c.clone(), embed, blocks, norm, lm_head)?;
        model.differentiable = true;
        Ok(model)
    }

    pub fn device(&self) -> &Device {
        self.embed_tokens.device()
    }

    /// Every block linear with its full Hugging Face name (`model.layers.{i}.{name}`).
    pub fn named_linears(&self) -> Vec<(String, &BlockLinear)> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for (name, l) in LINEAR_NAMES.iter().zip(&b.linears) {
                out.push((format!("model.layers.{i}.{name}"), l));
            }
        }
        out
    }

    /// Logits (batch, seq, vocab) for token ids of shape (batch, seq) or (seq,).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor, ModelError> {
        Ok(self.run(ids, false)?.logits)
    }

    /// Logits and the hidden state after every block.
    pub fn forward_with_hidden(&self, ids: &Tensor) -> Result<ForwardOutput, ModelError> {
        self.run(ids, true)
    }

    /// Ids as (batch, seq) u32, checked against the vocabulary and, after
    /// `past` cached tokens, against max_position_embeddings.
    fn check_ids(&self, ids: &Tensor, past: usize) -> Result<Tensor, ModelError> {
        let ids = match ids.rank() {
            1 => ids.unsqueeze(0)?,
            2 => ids.clone(),
            r => {
                return Err(ModelError::Input(format!(
                    "token ids must have shape (batch, seq) or (seq,), got rank {r}"
                )))
            }
        };
        let ids = ids.to_dtype(DType::U32)?;
        let (_, t) = ids.dims2()?;
        if t == 0 {
            return Err(ModelError::Input("no token ids".into()));
        }
        if past + t > self.config.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "{} tokens exceed the model's max_position_embeddings = {}",
                past + t,
                self.config.max_position_embeddings
            )));
        }
        let max = ids.max_all()?.to_scalar::<u32>()? as usize;
        if max >= self.config.vocab_size {
            return Err(ModelError::Input(format!(
                "token id {max} is outside the vocabulary (size {})",
                self.config.vocab_size
            )));
        }
        Ok(ids)
    }

    fn run(&self, ids: &Tensor, keep_hidden: bool) -> Result<ForwardOutput, ModelError> {
        let c = &self.config;
        let ids = self.check_ids(ids, 0)?;
        let (b, t) = ids.dims2()?;
        // Activations stay (b·t, hidden) between the blocks: the linears and
        // norms work on rows, and every reshape would be one more autograd node.
        let mut x = self.embed_tokens.index_select(&ids.flatten_all()?, 0)?;
        let rope = rope_rows(&self.inv_freq, 0, t, x.device())?;
        let mask = causal_mask(t, 0, x.device())?;
        let mut hidden_states = Vec::new();
        for block in &self.blocks {
            x = self.block_forward(block, &x, (b, t), (&rope.0, &rope.1), Some(&mask), None)?;
            if keep_hidden {
                hidden_states.push(x.reshape((b, t, c.hidden_size))?);
            }
        }
        let logits = self.head(&x, (b, t))?;
        Ok(ForwardOutput { logits, hidden_states })
    }

    /// Final norm and LM head: rows (b·t, hidden) → logits (b, t, vocab).
    fn head(&self, x: &Tensor, (b, t): (usize, usize)) -> Result<Tensor, ModelError> {
        let x = self.rms_norm(x, &self.norm)?;
        let head = self.lm_head.as_ref().unwrap_or(&self.embed_tokens);
        Ok(x.matmul(&head.t()?)?.reshape((b, t, self.config.vocab_size))?)
    }

    /// An empty key/value cache for [`Llama::forward_cached`].
    pub fn new_cache(&self) -> KvCache {
        KvCache { layers: (0..self.blocks.len()).map(|_| None).collect(), len: 0 }
    }

    /// Logits (batch, seq, vocab) for `ids` continuing the tokens already in
    /// `cache` (positions cache.len()..), which then holds them too. The same
    /// logits as a full forward over all the tokens, with each step's work
    /// proportional to its new tokens (generation). Inference only.
    pub fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor, ModelError> {
        if cache.layers.len() != self.blocks.len() {
            return Err(ModelError::Input(format!(
                "the cache has {} layers, the model {}",
                cache.layers.len(),
                self.blocks.len()
            )));
        }
        let past = cache.len;
        let ids = self.check_ids(ids, past)?;
        let (b, t) = ids.dims2()?;
        let mut x = self.embed_tokens.index_select(&ids.flatten_all()?, 0)?;
        let rope = rope_rows(&self.inv_freq, past, t, x.device())?;
        // One new token may attend to everything before it: no mask needed.
        let mask = if t > 1 { Some(causal_mask(t, past, x.device())?) } else { None };
        for (block, kv) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            x = self.block_forward(block, &x, (b, t), (&rope.0, &rope.1), mask.as_ref(), Some(kv))?;
        }
        cache.len += t;
        self.head(&x, (b, t))
    }

    fn rms_norm(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        let eps = self.config.rms_norm_eps as f32;
        if self.differentiable {
            train_ops::rms_norm(x, w, eps as f64)
        } else {
            candle_nn::ops::rms_norm(x, w, eps)
        }
    }

    /// One block on rows (b·t, hidden). `rope`: cos and sin of the t new
    /// positions. `kv`: this block's cache entry (keys and values of the
    /// earlier positions, before `repeat_kv`), extended in place; `None` for a
    /// plain forward over the whole sequence. `mask`: additive (1, 1, t, past + t),
    /// or `None` when nothing needs masking.
    fn block_forward(
        &self,
        blk: &Block,
        x: &Tensor,
        (b, t): (usize, usize),
        (cos, sin): (&Tensor, &Tensor),
        mask: Option<&Tensor>,
        kv: Option<&mut Option<(Tensor, Tensor)>>,
    ) -> Result<Tensor, ModelError> {
        let c = &self.config;
        let (hd, nh, nkv) = (c.head_dim, c.num_attention_heads, c.num_key_value_heads);

        let xn = self.rms_norm(x, &blk.input_layernorm)?;
        // Rows (b·t, heads·hd) → (b, heads, t, hd), with RoPE on q and k, one node each.
        let q = train_ops::split_heads(&blk.linears[Q].forward(&xn)?, (b, t, nh, hd), Some((cos, sin)))?;
        let mut k = train_ops::split_heads(&blk.linears[K].forward(&xn)?, (b, t, nkv, hd), Some((cos, sin)))?;
        let mut v = train_ops::split_heads(&blk.linears[V].forward(&xn)?, (b, t, nkv, hd), None)?;
        let cached = kv.is_some();
        if let Some(entry) = kv {
            if let Some((pk, pv)) = entry.as_ref() {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            *entry = Some((k.clone(), v.clone()));
        }
        let k = repeat_kv(k, nh / nkv)?;
        let v = repeat_kv(v, nh / nkv)?;
        let scale = (hd as f64).powf(-0.5);
        let probs = if self.differentiable && !cached {
            // The mask is built into the fused op (it is causal by construction).
            train_ops::causal_softmax(&q.matmul(&k.t()?)?, scale)?
        } else {
            let scores = (q.matmul(&k.t()?)? * scale)?;
            let scores = match mask {
                Some(m) => scores.broadcast_add(m)?,
                None => scores,
            };
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let attn = train_ops::merge_heads(&probs.matmul(&v)?)?;
        let x = (x + blk.linears[O].forward(&attn)?)?;

        let xn = self.rms_norm(&x, &blk.post_attention_layernorm)?;
        let gate = blk.linears[GATE].forward(&xn)?;
        let up = blk.linears[UP].forward(&xn)?;
        // One fused pass either way (candle's silu calls libm's expf per element).
        let act = train_ops::swiglu(&gate, &up)?;
        let mlp = blk.linears[DOWN].forward(&act)?;
        Ok((x + mlp)?)
    }
}

/// Keys and values of the tokens a decoder has seen, per block (for
/// [`Llama::forward_cached`]).
#[derive(Debug)]
pub struct KvCache {
    /// Per block: keys and values (batch, kv_heads, len, head_dim).
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Rotary inverse frequencies as transformers computes them: 1/θ^(2i/d) in f32.
fn rope_inv_freq(c: &LlamaConfig) -> Vec<f32> {
    (0..c.head_dim / 2).map(|i| 1.0f32 / (c.rope_theta as f32).powf((2 * i) as f32 / c.head_dim as f32)).collect()
}

/// cos and sin of the rotary angles of positions past..past + t, (t, head_dim/2):
/// angle = pos·inv_freq in f32, as transformers computes them.
fn rope_rows(inv_freq: &[f32], past: usize, t: usize, dev: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for p in past..past + t {
        for &f in inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((Tensor::from_vec(cos, (t, half), dev)?, Tensor::from_vec(sin, (t, half), dev)?))
}

/// (1, 1, t, past + t): new token i (position past + i) sees keys 0..=past + i;
/// 0 where it may look, −∞ elsewhere.
fn causal_mask(t: usize, past: usize, dev: &Device) -> candle_core::Result<Tensor> {
    let n = past + t;
    let m: Vec<f32> =
        (0..t).flat_map(|i| (0..n).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(m, (1, 1, t, n), dev)
}

/// (b, kv, t, d) → (b, kv·n_rep, t, d); query head j reads key/value head j / n_rep.
fn repeat_kv(x: Tensor, n_rep: usize) -> candle_core::Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, kv, t, d) = x.dims4()?;
    x.unsqueeze(2)?.expand((b, kv, n_rep, t, d))?.reshape((b, kv * n_rep, t, d))
}
