//! Text generation with a key/value cache: the prompt goes through the decoder
//! once, then every new token costs one single-token step
//! ([`Llama::forward_cached`]). Greedy at temperature 0, otherwise sampling
//! from softmax(logits / T) with a seeded generator (the same seed gives the
//! same text).

use crate::error::ModelError;
use crate::llama::Llama;
use candle_core::Tensor;

/// How to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// New tokens at most.
    pub max_tokens: usize,
    /// 0: greedy (argmax); otherwise the softmax temperature.
    pub temperature: f64,
    pub seed: u64,
    /// Stop after this token (the model's end-of-sequence id), if any.
    pub stop_token: Option<u32>,
    /// `Some(n)`: when the context is full, start a fresh cache from the last
    /// `n` tokens (prompt and generated; 1 ≤ n < max_position_embeddings) and
    /// go on, instead of stopping. `None`: stop ([`StopReason::ContextFull`]).
    pub slide: Option<usize>,
}

/// What a generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The new tokens (the stop token included when it ended the text).
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub stopped_by: StopReason,
    /// Seconds in the prompt's forward pass and in the single-token steps.
    pub prompt_seconds: f64,
    pub step_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    MaxTokens,
    StopToken,
    /// The model's max_position_embeddings was reached.
    ContextFull,
}

/// The next token from one row of logits.
pub fn pick_token(logits: &[f32], temperature: f64, rng: &mut onebit_core::synth::SplitMix64) -> u32 {
    let argmax = logits
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0;
    if temperature <= 0.0 {
        return argmax as u32;
    }
    let max = logits[argmax] as f64;
    let weights: Vec<f64> = logits.iter().map(|&v| ((v as f64 - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    // 53 random bits, uniform in [0, total).
    let r = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if r < acc {
            return i as u32;
        }
    }
    argmax as u32
}

/// Continue `prompt` (token ids, at least one), calling `on_token` with every
/// new token as soon as it is chosen.
pub fn generate(
    model: &Llama,
    prompt: &[u32],
    opts: &GenerateOptions,
    mut on_token: impl FnMut(u32) -> Result<(), ModelError>,
) -> Result<Generated, ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::Input("the prompt has no tokens".into()));
    }
    let max_pos = model.config.max_position_embeddings;
    if prompt.len() >= max_pos {
        return Err(ModelError::Input(format!(
            "the prompt has {} tokens; the model's max_position_embeddings = {max_pos} leaves no room to generate",
            prompt.len()
        )));
    }
    if let Some(n) = opts.slide {
        if n == 0 || n >= max_pos {
            return Err(ModelError::Input(format!(
                "a sliding window keeps 1 to {} tokens (max_position_embeddings − 1), not {n}",
                max_pos - 1
            )));
        }
    }
    let mut rng = onebit_core::synth::SplitMix64(opts.seed);
    let mut cache = model.new_cache();
    let dev = model.device().clone();
    let last_row = |logits: Tensor| -> Result<Vec<f32>, ModelError> {
        let t = logits.dim(1)?;
        Ok(logits.narrow(1, t - 1, 1)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let start = std::time::Instant::now();
    let mut row = last_row(model.forward_cached(&Tensor::new(prompt, &dev)?, &mut cache)?)?;
    let prompt_seconds = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let mut tokens = Vec::new();
    let stopped_by = loop {
        let next = pick_token(&row, opts.temperature, &mut rng);
        tokens.push(next);
        on_token(next)?;
        if opts.stop_token == Some(next) {
            break StopReason::StopToken;
        }
        if tokens.len() >= opts.max_tokens {
            break StopReason::MaxTokens;
        }
        if cache.len() >= max_pos {
            let Some(keep) = opts.slide else {
                break StopReason::ContextFull;
            };
            // Positions restart at 0: the last `keep` tokens become a new prompt.
            let mut all: Vec<u32> = prompt.to_vec();
            all.extend_from_slice(&tokens);
            cache = model.new_cache();
            row = last_row(model.forward_cached(&Tensor::new(&all[all.len() - keep..], &dev)?, &mut cache)?)?;
            continue;
        }
        row = last_row(model.forward_cached(&Tensor::new(&[next], &dev)?, &mut cache)?)?;
    };
    Ok(Generated { tokens, stopped_by, prompt_seconds, step_seconds: start.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::random_hf_tensors;
    use crate::{LinearKind, LlamaConfig};
    use candle_core::{DType, Device};

    fn model() -> Llama {
        let mut c = LlamaConfig::tiny(31, 16, 2, 4, 2);
        c.max_position_embeddings = 24;
        let t = random_hf_tensors(&c, 9, &Device::Cpu).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(t.into_iter().collect(), DType::F32, &Device::Cpu);
        let mut m = Llama::from_var_builder(&c, vb, LinearKind::Dense, 1e-5).unwrap();
        m.differentiable = false;
        m
    }

    /// Greedy generation picks, at every step, the argmax of a full forward over
    /// everything so far (so the cached steps see the same context).
    #[test]
    fn greedy_matches_argmax_of_full_forwards() {
        let m = model();
        let prompt = [3u32, 17, 5];
        let opts = GenerateOptions { max_tokens: 8, temperature: 0.0, seed: 1, stop_token: None, slide: None };
        let mut streamed = Vec::new();
        let g = generate(&m, &prompt, &opts, |t| {
            streamed.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(g.tokens, streamed);
        assert_eq!((g.tokens.len(), g.stopped_by), (8, StopReason::MaxTokens));
        let mut seq = prompt.to_vec();
        for &t in &g.tokens {
            let logits = m.forward(&Tensor::new(seq.as_slice(), &Device::Cpu).unwrap()).unwrap();
            let last: Vec<f32> = logits.squeeze(0).unwrap().get(seq.len() - 1).unwrap().to_vec1().unwrap();
            let mut rng = onebit_core::synth::SplitMix64(0);
            assert_eq!(pick_token(&last, 0.0, &mut rng), t);
            seq.push(t);
        }
    }

    #[test]
    fn sampling_is_seeded_and_stops_where_told() {
        let m = model();
        let run = |seed, stop| {
            let opts = GenerateOptions { max_tokens: 30, temperature: 1.5, seed, stop_token: stop, slide: None };
            generate(&m, &[1, 2], &opts, |_| Ok(())).unwrap()
        };
        let (a, b, c) = (run(7, None), run(7, None), run(8, None));
        assert_eq!(a.tokens, b.tokens);
        assert_ne!(a.tokens, c.tokens, "different seeds should give different samples");
        // 2 prompt tokens + 22 fed back fill the 24 positions; the 23rd new token is
        // predicted from that full context and ends the text.
        assert_eq!((a.tokens.len(), a.stopped_by), (23, StopReason::ContextFull));
        let stop = a.tokens[3];
        let first = a.tokens.iter().position(|&t| t == stop).unwrap();
        let s = run(7, Some(stop));
        assert_eq!(s.stopped_by, StopReason::StopToken);
        assert_eq!(s.tokens, a.tokens[..=first].to_vec());
        assert!(generate(&m, &[], &GenerateOptions { max_tokens: 1, temperature: 0.0, seed: 0, stop_token: None, slide: None }, |_| Ok(())).is_err());
    }

    /// With a sliding window the text goes on past the context; each token after
    /// a slide is the argmax of a full forward over the last `keep` tokens.
    #[test]
    fn a_sliding_window_goes_past_the_context() {
        let m = model();
        let prompt = [3u32, 17, 5];
        let keep = 10;
        let opts = GenerateOptions { max_tokens: 40, temperature: 0.0, seed: 1, stop_token: None, slide: Some(keep) };
        let g = generate(&m, &prompt, &opts, |_| Ok(())).unwrap();
        assert_eq!((g.tokens.len(), g.stopped_by), (40, StopReason::MaxTokens));
        let mut seq = prompt.to_vec();
        seq.extend_from_slice(&g.tokens);
        // The context (24) fills after 3 + 21 tokens; the 22nd new token is the
        // last predicted from the full cache, the 23rd comes from the last 10.
        let first_after = 22;
        let window = &seq[prompt.len() + first_after - keep..prompt.len() + first_after];
        let logits = m.forward(&Tensor::new(window, &Device::Cpu).unwrap()).unwrap();
        let last: Vec<f32> = logits.squeeze(0).unwrap().get(keep - 1).unwrap().to_vec1().unwrap();
        let mut rng = onebit_core::synth::SplitMix64(0);
        assert_eq!(pick_token(&last, 0.0, &mut rng), g.tokens[first_after]);
        for bad in [0, 24] {
            let o = GenerateOptions { slide: Some(bad), ..opts.clone() };
            assert!(generate(&m, &prompt, &o, |_| Ok(())).is_err(), "slide {bad}");
        }
    }

    #[test]
    fn temperature_sampling_follows_the_distribution() {
        // Logits ln 1, ln 3: probabilities 1/4, 3/4.
        let logits = [0.0f32, 3f32.ln()];
        let mut rng = onebit_core::synth::SplitMix64(3);
        let n = 20_000;
        let ones = (0..n).filter(|_| pick_token(&logits, 1.0, &mut rng) == 1).count();
        let p = ones as f64 / n as f64;
        assert!((p - 0.75).abs() < 0.015, "sampled p(1) = {p}");
    }
}
