//! The loss curve: one row per logged step, written as CSV and drawn as SVG.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One logged step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub step: u64,
    pub tokens: u64,
    pub lr: f64,
    /// Training loss of the step (cross-entropy for a teacher, total KD loss for a student).
    pub loss: f64,
    /// KD parts (students only).
    pub kl: Option<f64>,
    pub hidden: Option<f64>,
    /// Validation loss, on the steps where it was evaluated.
    pub val_loss: Option<f64>,
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// CSV text with a header.
pub fn to_csv(rows: &[CurveRow]) -> String {
    let mut s = String::from("step,tokens,lr,loss,kl,hidden,val_loss\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{:.6e},{:.6},{},{},{}\n",
            r.step,
            r.tokens,
            r.lr,
            r.loss,
            opt(r.kl),
            opt(r.hidden),
            opt(r.val_loss)
        ));
    }
    s
}

/// Write `NAME.csv` and `NAME.svg` into `dir` (each atomically).
pub fn write_curve(dir: &Path, name: &str, title: &str, rows: &[CurveRow]) -> anyhow::Result<()> {
    let csv = dir.join(format!("{name}.csv"));
    onebit_core::format::write_atomically(&csv, to_csv(rows).as_bytes())
        .map_err(|e| anyhow::anyhow!("{}: {e}", csv.display()))?;
    let svg = dir.join(format!("{name}.svg"));
    let text = plot_svg(title, rows)?;
    onebit_core::format::write_atomically(&svg, text.as_bytes()).map_err(|e| anyhow::anyhow!("{}: {e}", svg.display()))?;
    Ok(())
}

/// The curve as an SVG document: training loss per step, validation loss as points.
pub fn plot_svg(title: &str, rows: &[CurveRow]) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 540)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        let max_step = rows.iter().map(|r| r.step).max().unwrap_or(1).max(1) as f64;
        let values = rows.iter().flat_map(|r| [Some(r.loss), r.val_loss]).flatten().filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo.min(0.0_f64.max(lo - 0.1 * (hi - lo))), hi) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..max_step, lo..hi * 1.02)
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        chart.configure_mesh().x_desc("step").y_desc("loss").draw().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        chart
            .draw_series(LineSeries::new(rows.iter().filter(|r| r.loss.is_finite()).map(|r| (r.step as f64, r.loss)), &BLUE))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?
            .label("train loss")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        let val: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.val_loss.map(|v| (r.step as f64, v))).collect();
        if !val.is_empty() {
            chart
                .draw_series(LineSeries::new(val.clone(), &RED))
                .map_err(|e| anyhow::anyhow!("plot: {e}"))?
                .label("validation loss")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
            chart
                .draw_series(val.iter().map(|&p| Circle::new(p, 3, RED.filled())))
                .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_svg() {
        let rows = vec![
            CurveRow { step: 1, tokens: 10, lr: 1e-3, loss: 4.0, kl: None, hidden: None, val_loss: None },
            CurveRow { step: 2, tokens: 20, lr: 1e-3, loss: 3.0, kl: Some(1.0), hidden: Some(2.0), val_loss: Some(3.5) },
        ];
        let csv = to_csv(&rows);
        assert_eq!(csv.lines().count(), 3);
        assert_eq!(csv.lines().nth(2).unwrap(), "2,20,1.000000e-3,3.000000,1.000000,2.000000,3.500000");
        let svg = plot_svg("t", &rows).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("validation loss"));
    }
}
