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
    /// Resumable run: every finished chunk's loss is saved here (atomically),
    /// and a rerun with the same file, text and settings skips those chunks.
    pub state: Option<std::path::PathBuf>,
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
    /// Per chunk (window), in order: summed NLL (nats) and tokens scored, so
    /// that any prefix of the chunks can be scored again without a rerun.
    pub chunk_nll: Vec<f64>,
    pub chunk_tokens: Vec<usize>,
    /// Chunks taken from a `state` file instead of being computed.
    pub chunks_resumed: usize,
}

/// PPL and tokens scored over the first `n` chunks (`None` if fewer are there).
fn prefix_of(chunk_nll: &[f64], chunk_tokens: &[usize], n: usize) -> Option<(f64, usize)> {
    if n == 0 || n > chunk_nll.len() {
        return None;
    }
    let tokens: usize = chunk_tokens[..n].iter().sum();
    Some(((chunk_nll[..n].iter().sum::<f64>() / tokens as f64).exp(), tokens))
}

/// PPL and tokens scored over the first `n` chunks of a result.
pub fn prefix_ppl(r: &PplResult, n: usize) -> Option<(f64, usize)> {
    prefix_of(&r.chunk_nll, &r.chunk_tokens, n)
}

/// What a resumable evaluation keeps between runs (`PplOptions::state`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PplState {
    /// FNV-1a of the token ids: a state never resumes on another text or tokenizer.
    pub ids_fnv: u64,
    pub text_tokens: usize,
    pub seq_len: usize,
    pub stride: Option<usize>,
    /// Per finished chunk: summed NLL (nats) and tokens scored.
    pub chunk_nll: Vec<f64>,
    pub chunk_tokens: Vec<usize>,
    /// Wall seconds each chunk took when it was computed.
    pub chunk_seconds: Vec<f64>,
}

impl PplState {
    /// Read a state file (for reports on runs in progress).
    pub fn read(path: &std::path::Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| ModelError::Data { path: path.into(), message: format!("not a perplexity state file: {e}") })
    }

    /// PPL and tokens scored over the first `n` chunks (`None` if fewer are done).
    pub fn prefix_ppl(&self, n: usize) -> Option<(f64, usize)> {
        prefix_of(&self.chunk_nll, &self.chunk_tokens, n)
    }
}

fn fnv1a_ids(ids: &[u32]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &id in ids {
        for b in id.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn read_state(path: &std::path::Path, fresh: &PplState) -> Result<PplState, ModelError> {
    if !path.exists() {
        return Ok(fresh.clone());
    }
    let s = PplState::read(path)?;
    if (s.ids_fnv, s.text_tokens, s.seq_len, s.stride) != (fresh.ids_fnv, fresh.text_tokens, fresh.seq_len, fresh.stride)
        || s.chunk_nll.len() != s.chunk_tokens.len()
    {
        return Err(ModelError::Data {
            path: path.into(),
            message: format!(
                "was written for another evaluation ({} tokens, seq_len {}, stride {:?}); this one has {} tokens, seq_len {}, stride {:?} (delete it to start over)",
                s.text_tokens, s.seq_len, s.stride, fresh.text_tokens, fresh.seq_len, fresh.stride
            ),
        });
    }
    Ok(s)
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
    let fresh = PplState {
        ids_fnv: fnv1a_ids(ids),
        text_tokens: ids.len(),
        seq_len: opts.seq_len,
        stride: opts.stride,
        chunk_nll: Vec::new(),
        chunk_tokens: Vec::new(),
        chunk_seconds: Vec::new(),
    };
    let mut state = match &opts.state {
        Some(p) => read_state(p, &fresh)?,
        None => fresh,
    };
    // A state may hold more chunks than --max-chunks asks for now.
    let resumed = state.chunk_nll.len().min(wins.len());
    bar.inc(resumed as u64);
    let message = |s: &PplState| {
        let n: usize = s.chunk_tokens.iter().sum();
        if n > 0 {
            bar.set_message(format!("ppl {:.3}", (s.chunk_nll.iter().sum::<f64>() / n as f64).exp()));
        }
    };
    message(&state);
    for &(begin, end, first) in &wins[resumed..] {
        let t0 = std::time::Instant::now();
        let input = Tensor::new(&ids[begin..end], model.device())?;
        let logits = model.forward(&input)?.squeeze(0)?;
        // Logit row j predicts token j+1; scored tokens first..end are rows first-1-begin..end-1-begin.
        let rows = logits.narrow(0, first - 1 - begin, end - first)?;
        state.chunk_nll.push(nll_sum(&rows, &ids[first..end])?);
        state.chunk_tokens.push(end - first);
        state.chunk_seconds.push(t0.elapsed().as_secs_f64());
        if let Some(p) = &opts.state {
            let json = serde_json::to_string(&state).expect("state serialises");
            onebit_core::format::write_atomically(p, json.as_bytes()).map_err(|e| ModelError::io(p, e))?;
        }
        bar.inc(1);
        message(&state);
    }
    bar.finish_and_clear();
    let n = wins.len();
    let (chunk_nll, chunk_tokens) = (state.chunk_nll[..n].to_vec(), state.chunk_tokens[..n].to_vec());
    let total: f64 = chunk_nll.iter().sum();
    let count: usize = chunk_tokens.iter().sum();
    let mean_nll = total / count as f64;
    Ok(PplResult {
        ppl: mean_nll.exp(),
        mean_nll,
        tokens: count,
        text_tokens: ids.len(),
        chunks: n,
        seq_len: opts.seq_len,
        stride: opts.stride,
        chunk_nll,
        chunk_tokens,
        chunks_resumed: resumed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seq_len: usize, stride: Option<usize>) -> PplOptions {
        PplOptions { seq_len, stride, max_chunks: None, progress: false, state: None }
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

    /// An evaluation stopped after some chunks and resumed from its state file
    /// gives the figures of one uninterrupted run; a state made for other
    /// settings is refused.
    #[test]
    fn resumed_evaluation_equals_an_uninterrupted_one() {
        let mut c = crate::LlamaConfig::tiny(23, 16, 1, 2, 1);
        c.max_position_embeddings = 16;
        let t = crate::checkpoint::random_hf_tensors(&c, 2, &candle_core::Device::Cpu).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(t.into_iter().collect(), candle_core::DType::F32, &candle_core::Device::Cpu);
        let model = crate::Llama::from_var_builder(&c, vb, crate::LinearKind::Dense, 1e-5).unwrap();
        let ids: Vec<u32> = (0..100u32).map(|i| (i * 7 + i / 3) % 23).collect();
        let origin = std::path::Path::new("<ids>");
        let whole = perplexity(&model, &ids, &opts(16, None), origin).unwrap();
        assert_eq!((whole.chunks, whole.chunk_nll.len(), whole.chunks_resumed), (6, 6, 0));
        let dir = std::env::temp_dir().join(format!("onebit-ppl-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.json");
        let _ = std::fs::remove_file(&state);
        let mut o = opts(16, None);
        o.state = Some(state.clone());
        o.max_chunks = Some(2);
        let part = perplexity(&model, &ids, &o, origin).unwrap();
        assert_eq!((part.chunks, part.chunks_resumed), (2, 0));
        assert_eq!(prefix_ppl(&whole, 2).unwrap().0, part.ppl);
        o.max_chunks = None;
        let resumed = perplexity(&model, &ids, &o, origin).unwrap();
        assert_eq!(resumed.chunks_resumed, 2);
        assert_eq!((resumed.ppl, resumed.tokens, &resumed.chunk_nll), (whole.ppl, whole.tokens, &whole.chunk_nll));
        let mut other = opts(8, None);
        other.state = Some(state.clone());
        let e = perplexity(&model, &ids, &other, origin).unwrap_err().to_string();
        assert!(e.contains("state.json") && e.contains("another evaluation"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let logits = Tensor::zeros((3, 8), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
        let nll = nll_sum(&logits, &[1, 2, 7]).unwrap();
        assert!((nll - 3.0 * 8f64.ln()).abs() < 1e-5);
    }
}
