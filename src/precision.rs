//! `onebit precision`: what fixed point costs. The perplexity of one 1-bit
//! model file on the bit-exact reference for array configurations that differ
//! from a preset in one width at a time (activation, g, lane or h bits), with
//! the same model on the f32 layer as the ceiling (docs/numerics.md, "Choosing
//! the widths").
//!
//! Only the arithmetic changes between points; the array shape, max_k and the
//! stream widths stay the preset's, and the output word is always as wide as
//! the accumulator (`out_bits = acc_bits`, as in every preset), so no output
//! saturates.

use crate::e2e::{eval_ids, Split};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use onebit_core::backend::{FloatBackend, ReferenceBackend};
use onebit_core::ArrayConfig;
use onebit_model::checkpoint;
use onebit_model::perplexity::{perplexity, PplOptions};
use plotters::prelude::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

/// The widths swept and the values tried for each.
pub const SWEEPS: [(&str, &[u32]); 4] = [
    ("act_bits", &[4, 6, 8, 12, 16]),
    ("lane_bits", &[6, 8, 10, 12, 14, 15]),
    ("h_bits", &[4, 6, 8, 12, 16]),
    ("g_bits", &[4, 6, 8, 12, 16]),
];

/// `base` with one width changed. Sweeping act_bits or g_bits, the lane is
/// as wide as the product allows (min(16, A + G − 1)) so that the swept width,
/// not the lane, is what limits; sweeping lane_bits keeps A and G.
pub fn variant(base: &ArrayConfig, sweep: &str, bits: u32) -> Result<ArrayConfig> {
    let mut c = *base;
    match sweep {
        "act_bits" => {
            c.act_bits = bits;
            c.lane_bits = (bits + c.g_bits - 1).min(16);
        }
        "g_bits" => {
            c.g_bits = bits;
            c.lane_bits = (bits + c.act_bits - 1).min(16);
        }
        "lane_bits" => c.lane_bits = bits,
        "h_bits" => c.h_bits = bits,
        other => bail!("unknown width `{other}` (expected act_bits, g_bits, lane_bits or h_bits)"),
    }
    c.out_bits = c.acc_bits();
    c.validate().map_err(|e| anyhow::anyhow!("{sweep} = {bits}: {e}"))
}

#[derive(Debug, Clone)]
pub struct PrecisionOptions {
    pub model: PathBuf,
    pub data: PathBuf,
    pub split: Split,
    pub seq_len: Option<usize>,
    /// At most this many chunks (None: the whole split).
    pub chunks: Option<usize>,
    /// The preset the widths are varied from.
    pub preset: String,
    pub progress: bool,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub sweep: &'static str,
    pub bits: u32,
    pub config: ArrayConfig,
    pub ppl: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Study {
    pub model: PathBuf,
    pub data: PathBuf,
    pub split: Split,
    pub preset: String,
    pub base: ArrayConfig,
    pub seq_len: usize,
    pub tokens: usize,
    pub chunks: usize,
    pub float_ppl: f64,
    pub preset_ppl: f64,
    pub points: Vec<Point>,
}

pub fn study(opts: &PrecisionOptions) -> Result<Study> {
    let dev = Device::Cpu;
    let base = ArrayConfig::preset(&opts.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
    let file = checkpoint::read_onebit_file(&opts.model)?;
    let eps = file.quantisation.layer_norm_eps;
    let tokenizer = checkpoint::model_tokenizer(&opts.model)?;
    let ids = eval_ids(&tokenizer, &opts.data, opts.split)?;
    let float = checkpoint::onebit_decoder(&file, &opts.model, &FloatBackend { layer_norm_eps: eps }, &dev)?;
    let seq_len = opts.seq_len.unwrap_or_else(|| float.config.max_position_embeddings.min(2048));
    let ppl_opts = PplOptions { seq_len, stride: None, max_chunks: opts.chunks, progress: false, state: None };
    let float_r = perplexity(&float, &ids, &ppl_opts, &opts.data).context("float")?;

    let configs: Vec<(&'static str, u32)> =
        SWEEPS.iter().flat_map(|(s, values)| values.iter().map(move |&b| (*s, b))).collect();
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(configs.len() as u64 + 1);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} configurations, {elapsed_precise} (eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let run = |config: ArrayConfig| -> Result<(f64, f64)> {
        let start = Instant::now();
        let backend = ReferenceBackend { config, layer_norm_eps: eps };
        let model = checkpoint::onebit_decoder(&file, &opts.model, &backend, &dev)?;
        let r = perplexity(&model, &ids, &ppl_opts, &opts.data)?;
        Ok((r.ppl, start.elapsed().as_secs_f64()))
    };
    bar.set_message(opts.preset.clone());
    let (preset_ppl, _) = run(base).with_context(|| format!("preset {}", opts.preset))?;
    bar.inc(1);
    let mut points = Vec::new();
    for (sweep, bits) in configs {
        bar.set_message(format!("{sweep} = {bits}"));
        let config = variant(&base, sweep, bits)?;
        let (ppl, seconds) = run(config).with_context(|| format!("{sweep} = {bits}"))?;
        points.push(Point { sweep, bits, config, ppl, seconds });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Study {
        model: opts.model.clone(),
        data: opts.data.clone(),
        split: opts.split,
        preset: opts.preset.clone(),
        base,
        seq_len,
        tokens: float_r.tokens,
        chunks: float_r.chunks,
        float_ppl: float_r.ppl,
        preset_ppl,
        points,
    })
}

impl Study {
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} on {} tokens of {} ({}): float (f32 layer) {:.4}, {} preset {:.4} ({:+.3} %)\n",
            self.model.display(),
            self.tokens,
            self.data.display(),
            self.split.name(),
            self.float_ppl,
            self.preset,
            self.preset_ppl,
            self.excess(self.preset_ppl)
        );
        s.push_str(&format!("{:<10} {:>5} {:>5} {:>12} {:>14}\n", "width", "bits", "lane", "ppl", "over float, %"));
        for p in &self.points {
            s.push_str(&format!(
                "{:<10} {:>5} {:>5} {:>12.4} {:>14.3}\n",
                p.sweep,
                p.bits,
                p.config.lane_bits,
                p.ppl,
                self.excess(p.ppl)
            ));
        }
        s
    }

    /// Percent by which a perplexity exceeds the float model's.
    pub fn excess(&self, ppl: f64) -> f64 {
        100.0 * (ppl / self.float_ppl - 1.0)
    }

    pub fn to_json(&self, command: &str, load_start: Option<String>, load_end: Option<String>) -> Value {
        let mut sweeps = serde_json::Map::new();
        for (name, _) in SWEEPS {
            let pts: Vec<Value> = self
                .points
                .iter()
                .filter(|p| p.sweep == name)
                .map(|p| {
                    json!({"bits": p.bits, "ppl": p.ppl, "over_float_percent": self.excess(p.ppl),
                           "lane_bits": p.config.lane_bits, "lane_shift": p.config.lane_shift(),
                           "config": p.config, "seconds": p.seconds})
                })
                .collect();
            sweeps.insert(name.to_string(), Value::Array(pts));
        }
        json!({
            "model": self.model,
            "data": self.data,
            "split": self.split.name(),
            "seq_len": self.seq_len,
            "tokens": self.tokens,
            "chunks": self.chunks,
            "preset": self.preset,
            "preset_config": self.base,
            "float_ppl": self.float_ppl,
            "preset_ppl": self.preset_ppl,
            "preset_over_float_percent": self.excess(self.preset_ppl),
            "sweeps": sweeps,
            "command": command,
            "load_average_start": load_start,
            "load_average_end": load_end,
        })
    }

    /// Perplexity against bits, one line per width, the float model dashed.
    pub fn plot_svg(&self) -> Result<String> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
            let e = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("plot: {e}");
            root.fill(&WHITE).map_err(e)?;
            let all = self.points.iter().map(|p| p.ppl).chain([self.float_ppl]);
            let lo = all.clone().fold(f64::INFINITY, f64::min) * 0.98;
            let hi = all.fold(0.0f64, f64::max) * 1.05;
            let name = self.model.parent().and_then(|p| p.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!("{name}: reference perplexity against fixed-point width ({} tokens)", self.tokens),
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(3u32..17u32, (lo..hi).log_scale())
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("bits of the swept width (others at the preset)")
                .y_desc("perplexity (log scale)")
                .draw()
                .map_err(e)?;
            let colours = [RED, BLUE, GREEN, MAGENTA];
            for (i, (name, _)) in SWEEPS.iter().enumerate() {
                let c = colours[i % colours.len()];
                let pts: Vec<(u32, f64)> = self.points.iter().filter(|p| p.sweep == *name).map(|p| (p.bits, p.ppl)).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(e)?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(e)?;
            }
            let f = self.float_ppl;
            chart
                .draw_series(DashedLineSeries::new(vec![(3, f), (17, f)], 6, 4, BLACK.stroke_width(1)))
                .map_err(e)?
                .label(format!("1-bit model, f32 layer ({f:.3})"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
            chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.9)).draw().map_err(e)?;
            root.present().map_err(e)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sweep_point_is_a_legal_configuration() {
        for preset in onebit_core::config::PRESET_NAMES {
            let base = ArrayConfig::preset(preset).unwrap();
            for (sweep, values) in SWEEPS {
                for &b in values {
                    let c = variant(&base, sweep, b).unwrap();
                    assert_eq!(c.out_bits, c.acc_bits());
                    let changed = match sweep {
                        "act_bits" => c.act_bits,
                        "g_bits" => c.g_bits,
                        "lane_bits" => c.lane_bits,
                        _ => c.h_bits,
                    };
                    assert_eq!(changed, b, "{preset} {sweep}");
                    assert_eq!((c.rows, c.cols, c.max_k), (base.rows, base.cols, base.max_k));
                }
            }
        }
        assert_eq!(variant(&ArrayConfig::SIM16, "act_bits", 4).unwrap().lane_bits, 11);
        assert!(variant(&ArrayConfig::SIM16, "lane_bits", 16).is_err(), "16 > A + G - 1 = 15");
        assert!(variant(&ArrayConfig::SIM16, "out_bits", 8).is_err());
    }
}
