//! Token streams and the batches cut from them.
//!
//! Batches are nanoGPT's `get_batch`: `batch` windows of `context + 1` tokens
//! at uniformly random offsets, inputs the first `context`, targets shifted by
//! one. The offsets of step `s` depend only on (seed, s), so a resumed run
//! sees exactly the batches an uninterrupted one would, with no RNG state to save.

use candle_core::{Device, Result, Tensor};

/// SplitMix64: tiny, fast, and enough for picking offsets.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
    /// Uniform in [0, 1).
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The generator for one step of one stream (`stream` separates train batches,
/// validation batches, ...).
pub fn step_rng(seed: u64, stream: u64, step: u64) -> SplitMix64 {
    let mut r = SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let a = r.next_u64();
    SplitMix64::new(a ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Streams of [`step_rng`].
pub const STREAM_TRAIN: u64 = 1;
pub const STREAM_VAL: u64 = 2;

/// One batch: inputs and next-token targets, both (batch, context) u32.
pub struct Batch {
    pub inputs: Tensor,
    pub targets: Tensor,
}

/// Random windows from `tokens`. Errors if the stream is shorter than `context + 1`.
pub fn random_batch(tokens: &[u32], batch: usize, context: usize, rng: &mut SplitMix64, device: &Device) -> Result<Batch> {
    if tokens.len() < context + 1 {
        candle_core::bail!("token stream of {} tokens is shorter than context + 1 = {}", tokens.len(), context + 1);
    }
    let span = (tokens.len() - context) as u64;
    let mut x = Vec::with_capacity(batch * context);
    let mut y = Vec::with_capacity(batch * context);
    for _ in 0..batch {
        let o = rng.below(span) as usize;
        x.extend_from_slice(&tokens[o..o + context]);
        y.extend_from_slice(&tokens[o + 1..o + context + 1]);
    }
    Ok(Batch { inputs: Tensor::from_vec(x, (batch, context), device)?, targets: Tensor::from_vec(y, (batch, context), device)? })
}

/// Disjoint consecutive windows covering the stream (the remainder dropped),
/// grouped `batch` at a time: a full, deterministic pass for evaluation.
pub fn sequential_batches(tokens: &[u32], batch: usize, context: usize, device: &Device) -> Result<Vec<Batch>> {
    let windows = tokens.len().saturating_sub(1) / context;
    let mut out = Vec::new();
    let mut w = 0;
    while w < windows {
        let b = batch.min(windows - w);
        let mut x = Vec::with_capacity(b * context);
        let mut y = Vec::with_capacity(b * context);
        for i in w..w + b {
            x.extend_from_slice(&tokens[i * context..(i + 1) * context]);
            y.extend_from_slice(&tokens[i * context + 1..(i + 1) * context + 1]);
        }
        out.push(Batch { inputs: Tensor::from_vec(x, (b, context), device)?, targets: Tensor::from_vec(y, (b, context), device)? });
        w += b;
    }
    Ok(out)
}

/// nanoGPT's split: the first 90% of the tokens train, the last 10% validate.
pub fn split_90_10(tokens: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let n = tokens.len() * 9 / 10;
    (tokens[..n].to_vec(), tokens[n..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_shifted_windows_and_reproducible() {
        let tokens: Vec<u32> = (0..100).collect();
        let dev = Device::Cpu;
        let a = random_batch(&tokens, 3, 8, &mut step_rng(7, STREAM_TRAIN, 5), &dev).unwrap();
        let b = random_batch(&tokens, 3, 8, &mut step_rng(7, STREAM_TRAIN, 5), &dev).unwrap();
        let c = random_batch(&tokens, 3, 8, &mut step_rng(7, STREAM_TRAIN, 6), &dev).unwrap();
        let (x, y) = (a.inputs.to_vec2::<u32>().unwrap(), a.targets.to_vec2::<u32>().unwrap());
        assert_eq!(x, b.inputs.to_vec2::<u32>().unwrap());
        assert_ne!(x, c.inputs.to_vec2::<u32>().unwrap());
        for (xr, yr) in x.iter().zip(&y) {
            for j in 0..8 {
                assert_eq!(yr[j], xr[j] + 1);
            }
            assert!(yr[7] < 100);
        }
        assert!(random_batch(&tokens[..8], 1, 8, &mut SplitMix64::new(0), &dev).is_err());
    }

    #[test]
    fn sequential_covers_disjoint_windows() {
        let tokens: Vec<u32> = (0..35).collect();
        let b = sequential_batches(&tokens, 2, 8, &Device::Cpu).unwrap();
        // 34 usable targets / 8 = 4 windows → batches of 2 and 2.
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].inputs.to_vec2::<u32>().unwrap()[1][0], 24);
        assert_eq!(b[1].targets.to_vec2::<u32>().unwrap()[1][7], 32);
        let (tr, va) = split_90_10(&tokens);
        assert_eq!((tr.len(), va.len()), (31, 4));
    }

    #[test]
    fn below_is_in_range() {
        let mut r = SplitMix64::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[r.below(7) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
