//! The perplexity table of a recipe run on a pretrained model (the SmolLM2
//! figures in bench-results/smollm2.json): rows read from the resumable state
//! files `onebit ppl --state` leaves (so runs still in progress report what
//! they have, marked as such), the same fixed prefix of chunks for every row,
//! tokens scored recorded for every figure, and a bar chart beside the JSON.

use anyhow::{Context, Result};
use onebit_model::perplexity::PplState;
use plotters::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// One row: a model on a backend, evaluated into `state`.
#[derive(Debug, Clone)]
pub struct RowSpec {
    /// Short key (`teacher`, `naive`, `svid`, `kd_float`, `kd_reference`).
    pub key: String,
    pub label: String,
    pub state: PathBuf,
    /// Optional JSON beside it (`onebit ppl` run information: command, load
    /// average, seconds); copied into the row.
    pub meta: Option<PathBuf>,
}

/// What one row measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFigures {
    pub chunks_done: usize,
    pub chunks_total: usize,
    /// Over every chunk done (the whole split when complete).
    pub ppl: f64,
    pub tokens_scored: usize,
    /// Over the first `prefix_chunks` chunks, when that many are done.
    pub prefix_ppl: Option<f64>,
    pub seconds: f64,
}

/// Figures of one state: whole-split chunks are `text_tokens / seq_len`.
pub fn row_figures(s: &PplState, prefix_chunks: usize) -> Option<RowFigures> {
    let done = s.chunk_nll.len();
    let (ppl, tokens) = s.prefix_ppl(done)?;
    Some(RowFigures {
        chunks_done: done,
        chunks_total: s.text_tokens / s.seq_len,
        ppl,
        tokens_scored: tokens,
        prefix_ppl: s.prefix_ppl(prefix_chunks).map(|p| p.0),
        seconds: s.chunk_seconds.iter().sum(),
    })
}

/// The report: `rows` (missing state files are listed as not run), the prefix
/// figures, and `extra` merged in at the top level. Keys `{key}_ppl` and
/// `{key}_ppl_tokens` hold each row's figure over every chunk it has done,
/// `{key}_ppl_complete` whether that is the whole split.
pub fn build_report(rows: &[RowSpec], prefix_chunks: usize, extra: Value) -> Result<Value> {
    let mut out = serde_json::Map::new();
    let mut table = Vec::new();
    let mut prefix = serde_json::Map::new();
    let mut split: Option<(usize, usize, usize)> = None;
    let mut prefix_tokens = None;
    // Every started row's state, for the figures over the chunks all of them have.
    let mut started: Vec<(String, PplState)> = Vec::new();
    for r in rows {
        if !r.state.exists() {
            table.push(json!({"key": r.key, "model": r.label, "status": "not run", "state": r.state}));
            continue;
        }
        let s = PplState::read(&r.state)?;
        let meta: Value = match &r.meta {
            Some(m) if m.exists() => serde_json::from_str(&std::fs::read_to_string(m).with_context(|| format!("{}: cannot read", m.display()))?)
                .with_context(|| format!("{}: not JSON", m.display()))?,
            _ => Value::Null,
        };
        match split {
            None => split = Some((s.text_tokens, s.seq_len, s.text_tokens / s.seq_len)),
            Some((t, l, _)) if (t, l) != (s.text_tokens, s.seq_len) => anyhow::bail!(
                "{}: {} tokens in chunks of {}, but other rows have {t} in chunks of {l}: rows must score the same text",
                r.state.display(),
                s.text_tokens,
                s.seq_len
            ),
            _ => {}
        }
        let Some(f) = row_figures(&s, prefix_chunks) else {
            table.push(json!({"key": r.key, "model": r.label, "status": "started, no chunk done yet"}));
            continue;
        };
        if let Some((p, tokens)) = s.prefix_ppl(prefix_chunks) {
            prefix.insert(r.key.clone(), json!(p));
            prefix_tokens = Some(tokens);
        }
        started.push((r.key.clone(), s.clone()));
        let complete = f.chunks_done == f.chunks_total;
        out.insert(format!("{}_ppl", r.key), json!(f.ppl));
        out.insert(format!("{}_ppl_tokens", r.key), json!(f.tokens_scored));
        out.insert(format!("{}_ppl_complete", r.key), json!(complete));
        table.push(json!({
            "key": r.key,
            "model": r.label,
            "status": if complete { "whole split".to_string() } else { format!("partial: {} of {} chunks", f.chunks_done, f.chunks_total) },
            "ppl": f.ppl,
            "tokens_scored": f.tokens_scored,
            "chunks": f.chunks_done,
            "prefix_ppl": f.prefix_ppl,
            "seconds": f.seconds,
            "seconds_per_chunk": f.seconds / f.chunks_done as f64,
            "run": meta,
        }));
    }
    if let Some((text_tokens, seq_len, chunks)) = split {
        out.insert("text_tokens".into(), json!(text_tokens));
        out.insert("seq_len".into(), json!(seq_len));
        out.insert("split_chunks".into(), json!(chunks));
        out.insert("tokens_scored".into(), json!(chunks * (seq_len - 1)));
    }
    // Until every row has the prefix: each row over the chunks that all started rows have.
    let common = started.iter().map(|(_, s)| s.chunk_nll.len()).min().unwrap_or(0);
    if common > 0 {
        let mut m = serde_json::Map::new();
        for (k, s) in &started {
            m.insert(k.clone(), json!(s.prefix_ppl(common).map(|p| p.0)));
        }
        let tokens = started[0].1.prefix_ppl(common).map(|p| p.1);
        out.insert("common_chunks".into(), json!({"chunks": common, "tokens": tokens, "ppl": m}));
    }
    out.insert("prefix_chunks".into(), json!(prefix_chunks));
    out.insert("prefix_tokens".into(), json!(prefix_tokens));
    out.insert("prefix".into(), Value::Object(prefix));
    out.insert("rows".into(), Value::Array(table));
    if let Value::Object(m) = extra {
        out.extend(m);
    }
    Ok(Value::Object(out))
}

/// Bars of each row's prefix perplexity (log scale), the same tokens for all.
pub fn plot_prefix_svg(title: &str, bars: &[(String, f64)]) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 520)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("plot: {e}");
        root.fill(&WHITE).map_err(e)?;
        let hi = bars.iter().map(|b| b.1).fold(10.0f64, f64::max) * 3.0;
        let lo = bars.iter().map(|b| b.1).fold(hi, f64::min).max(1.0) / 2.0;
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((0..n).into_segmented(), (lo..hi).log_scale())
            .map_err(e)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("perplexity (log scale)")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new([(SegmentValue::Exact(i), lo), (SegmentValue::Exact(i + 1), b.1)], BLUE.mix(0.6).filled());
                r.set_margin(0, 0, 12, 12);
                r
            }))
            .map_err(e)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                // Small perplexities (a char model's) differ in the second decimal.
                let label = if b.1 < 20.0 { format!("{:.3}", b.1) } else { format!("{:.1}", b.1) };
                Text::new(label, (SegmentValue::CenterOf(i), b.1 * 1.12), ("sans-serif", 15))
            }))
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(out)
}

/// Write the report and its plot (`.svg` beside the JSON), each atomically. The
/// plot shows the prefix figures, or, while fewer than two rows have the whole
/// prefix, the figures over the chunks every started row has (said in the title).
pub fn write_report(json_path: &Path, report: &Value, title: &str, labels: &[(String, String)]) -> Result<()> {
    let bars_of = |v: &Value| -> Vec<(String, f64)> {
        labels.iter().filter_map(|(key, label)| v[key].as_f64().map(|p| (label.clone(), p))).collect()
    };
    let mut bars = bars_of(&report["prefix"]);
    let mut title = title.to_string();
    if bars.len() < 2 && report["common_chunks"].is_object() {
        bars = bars_of(&report["common_chunks"]["ppl"]);
        title = format!("{title} (runs in progress: first {} chunks only)", report["common_chunks"]["chunks"]);
    }
    let svg = plot_prefix_svg(&title, &bars)?;
    let svg_path = json_path.with_extension("svg");
    onebit_core::format::write_atomically(&svg_path, svg.as_bytes()).with_context(|| format!("{}: cannot write", svg_path.display()))?;
    crate::teacher::write_json(json_path, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(chunks: &[(f64, usize)], text_tokens: usize, seq_len: usize) -> PplState {
        PplState {
            ids_fnv: 1,
            text_tokens,
            seq_len,
            stride: None,
            chunk_nll: chunks.iter().map(|c| c.0).collect(),
            chunk_tokens: chunks.iter().map(|c| c.1).collect(),
            chunk_seconds: vec![2.0; chunks.len()],
        }
    }

    #[test]
    fn rows_prefix_and_partial_runs() {
        let d = std::env::temp_dir().join(format!("onebit-ppl-report-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        // 3 chunks of 10 tokens (9 scored each) in a 35-token text.
        let whole = state(&[(9.0, 9), (18.0, 9), (27.0, 9)], 35, 10);
        let partial = state(&[(4.5, 9)], 35, 10);
        std::fs::write(d.join("a.json"), serde_json::to_string(&whole).unwrap()).unwrap();
        std::fs::write(d.join("b.json"), serde_json::to_string(&partial).unwrap()).unwrap();
        let row = |key: &str, f: &str| RowSpec { key: key.into(), label: key.into(), state: d.join(f), meta: None };
        let rows = [row("teacher", "a.json"), row("kd", "b.json"), row("svid", "missing.json")];
        let r = build_report(&rows, 1, json!({"kd_tokens": 5})).unwrap();
        // Whole split: NLL 54 over 27 tokens → e².
        assert!((r["teacher_ppl"].as_f64().unwrap() - 2f64.exp()).abs() < 1e-12);
        assert_eq!((r["teacher_ppl_tokens"].as_u64(), r["teacher_ppl_complete"].as_bool()), (Some(27), Some(true)));
        assert_eq!((r["kd_ppl_tokens"].as_u64(), r["kd_ppl_complete"].as_bool()), (Some(9), Some(false)));
        assert_eq!((r["tokens_scored"].as_u64(), r["split_chunks"].as_u64(), r["prefix_tokens"].as_u64()), (Some(27), Some(3), Some(9)));
        // The first chunk: NLL 9 over 9 → e; 4.5 over 9 → e^0.5.
        assert!((r["prefix"]["teacher"].as_f64().unwrap() - 1f64.exp()).abs() < 1e-12);
        assert!((r["prefix"]["kd"].as_f64().unwrap() - 0.5f64.exp()).abs() < 1e-12);
        assert_eq!(r["rows"][1]["status"], "partial: 1 of 3 chunks");
        assert_eq!(r["rows"][2]["status"], "not run");
        assert_eq!(r["kd_tokens"], 5);
        // Over the one chunk both started rows have.
        assert_eq!((r["common_chunks"]["chunks"].as_u64(), r["common_chunks"]["tokens"].as_u64()), (Some(1), Some(9)));
        assert!((r["common_chunks"]["ppl"]["teacher"].as_f64().unwrap() - 1f64.exp()).abs() < 1e-12);
        let out = d.join("report.json");
        write_report(&out, &r, "test", &[("teacher".into(), "teacher".into()), ("kd".into(), "KD".into())]).unwrap();
        let svg = std::fs::read_to_string(d.join("report.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("KD"));
        // Rows of different texts cannot share a table.
        std::fs::write(d.join("c.json"), serde_json::to_string(&state(&[(1.0, 9)], 50, 10)).unwrap()).unwrap();
        assert!(build_report(&[row("a", "a.json"), row("c", "c.json")], 1, json!({})).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
