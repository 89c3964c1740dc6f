//! Perplexity the way the OneBit/GPTQ papers measure it: the whole text
//! tokenized once, cut into disjoint chunks of `seq_len` tokens (the remainder is
//! dropped), exp of the mean next-token loss over every predicted token. The
//! sliding-window variant of the Hugging Face guide (`stride`) scores each token
//! once with up to `seq_len` tokens of context; its numbers are lower and not
//! comparable with the papers'.

use crate::error::ModelError;
use crate::llama::Llama;
use candle_core::{Tensor, D};

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct PplOptions {
    /// Tokens per chunk (window).
    pub seq_len: usize,
    /// `Some(s)`: sliding windows of `seq_len` tokens moved by `s` tokens.
    pub stride: Option<usize>,
    /// Evaluate at most this many chunks (windows).
    pub max_chunks: Option<usize>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What an evaluation measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PplResult {
    pub ppl: f64,
    /// Mean next-token negative log-likelihood, nats.
    pub mean_nll: f64,
    /// Tokens whose probability was scored.
    pub tokens: usize,
    /// Tokens of the whole text.
    pub text_tokens: usize,
    pub chunks: usize,
    pub seq_len: usize,
    pub stride: Option<usize>,
}

/// Sum of −log p(target) over positions: logits (T, V), targets (T).
pub fn nll_sum(logits: &Tensor, targets: &[u32]) -> Result<f64, ModelError> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let idx = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let picked: Vec<f32> = logp.gather(&idx, 1)?.squeeze(1)?.to_vec1()?;
    Ok(-picked.iter().map(|&v| v as f64).sum::<f64>())
}

/// The windows to evaluate: (start, end, first scored position).
fn windows(n: usize, opts: &PplOptions) -> Vec<(usize, usize, usize)> {
    let l = opts.seq_len;
    let mut out = Vec::new();
    match opts.stride {
        None => {
            for c in 0..n / l {
                out.push((c * l, (c + 1) * l, c * l + 1));
            }
        }
        Some(s) => {
            let mut prev_end = 0;
            let mut begin = 0;
            while begin < n {
                let end = (begin + l).min(n);
                // Score only tokens the previous window did not, and never the window's first.
                let first = prev_end.max(begin + 1);
                if first < end {
                    out.push((begin, end, first));
                }
                prev_end = end;
                if end == n {
                    break;
                }
                begin += s;
            }
        }
    }
    if let Some(m) = opts.max_chunks {
        out.truncate(m);
    }
    out
}

/// Perplexity of `model` on the token ids of a whole text. `origin` names the
/// text in errors.
pub fn perplexity(
    model: &Llama,
    ids: &[u32],
    opts: &PplOptions,
    origin: &std::path::Path,
) -> Result<PplResult, ModelError> {
    let data_err = |message: String| ModelError::Data { path: origin.into(), message };
    if opts.seq_len < 2 {
        return Err(ModelError::Input(format!("sequence length {} is too short (at least 2)", opts.seq_len)));
    }
    if opts.seq_len > model.config.max_position_embeddings {
        return Err(ModelError::Input(format!(
            "sequence length {} exceeds the model's max_position_embeddings = {}",
            opts.seq_len, model.config.max_position_embeddings
        )));
    }
    if let Some(0) = opts.stride {
        return Err(ModelError::Input("stride must be at least 1".into()));
    }
    if let Some(0) = opts.max_chunks {
        return Err(ModelError::Input("max-chunks must be at least 1".into()));
    }
    if opts.stride.is_none() && ids.len() < opts.seq_len {
        return Err(data_err(format!(
            "has only {} tokens, fewer than one chunk of {} (use a shorter --seq-len)",
            ids.len(),
            opts.seq_len
        )));
    }
    if ids.len() < 2 {
        return Err(data_err(format!("has only {} token(s): nothing to predict", ids.len())));
    }
    let wins = windows(ids.len(), opts);
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(wins.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} chunks, {elapsed_precise} (eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b.set_message("perplexity");
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let (mut total, mut count) = (0f64, 0usize);
    for &(begin, end, first) in &wins {
        let input = Tensor::new(&ids[begin..end], model.device())?;
        let logits = model.forward(&input)?.squeeze(0)?;
        // Logit row j predicts token j+1; scored tokens first..end are rows first-1-begin..end-1-begin.
        let rows = logits.narrow(0, first - 1 - begin, end - first)?;
        total += nll_sum(&rows, &ids[first..end])?;
        count += end - first;
        bar.inc(1);
        if count > 0 {
            bar.set_message(format!("ppl {:.3}", (total / count as f64).exp()));
        }
    }
    bar.finish_and_clear();
    let mean_nll = total / count as f64;
    Ok(PplResult {
        ppl: mean_nll.exp(),
        mean_nll,
        tokens: count,
        text_tokens: ids.len(),
        chunks: wins.len(),
        seq_len: opts.seq_len,
        stride: opts.stride,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seq_len: usize, stride: Option<usize>) -> PplOptions {
        PplOptions { seq_len, stride, max_chunks: None, progress: false }
    }

    #[test]
    fn disjoint_chunks_drop_the_remainder() {
        assert_eq!(windows(10, &opts(4, None)), vec![(0, 4, 1), (4, 8, 5)]);
    }

    #[test]
    fn sliding_windows_score_every_token_once() {
        // With stride < seq_len (the guide's use), every token after the first is
        // scored exactly once. With stride = seq_len, like the guide, a window's first
        // token has no context and is not scored.
        let w = windows(10, &opts(4, Some(4)));
        assert_eq!(w, vec![(0, 4, 1), (4, 8, 5), (8, 10, 9)]);
        for (n, l, s) in [(10, 4, 2), (10, 4, 3), (11, 4, 3), (7, 8, 2), (100, 16, 5), (100, 16, 15)] {
            let w = windows(n, &opts(l, Some(s)));
            let mut scored = vec![0; n];
            for &(b, e, f) in &w {
                assert!(e - b <= l && f > b && f <= e);
                (f..e).for_each(|p| scored[p] += 1);
            }
            assert_eq!(scored[0], 0);
            assert!(scored[1..].iter().all(|&c| c == 1), "n={n} l={l} s={s}: {scored:?}");
        }
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let logits = Tensor::zeros((3, 8), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let nll = nll_sum(&logits, &[1, 2, 7]).unwrap();
        assert!((nll - 3.0 * 8f64.ln()).abs() < 1e-5);
    }
}
