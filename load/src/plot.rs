//! `--plot FILE.svg`: throughput over time (left) and the latency distribution by percentile
//! (right), drawn from a [`Report`].
//!
//! Owns the chart layout. Never reads anything but the report, and only ever writes SVG (plotters
//! is built with the SVG backend alone and its font-free text layout, so no system fonts are
//! needed).

use std::path::Path;

use plotters::prelude::*;

use super::args::Scenario;
use super::error::LoadError;
use super::report::Report;

/// Draws `report` into the SVG file at `path`.
pub fn draw(report: &Report, path: &Path) -> Result<(), LoadError> {
    let fail = |e: &dyn std::fmt::Display| LoadError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(600);

    let unit = match report.scenario {
        Scenario::Connect => "handshakes/s",
        Scenario::Fanout => "deliveries/s",
        _ => "messages/s",
    };
    let step = report.timeline_step_ms as f64 / 1000.0;
    let points: Vec<(f64, f64)> = report
        .timeline
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i as f64 + 1.0) * step, v))
        .collect();
    let x_max = (points.len() as f64 * step).max(step);
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("{} throughput", report.scenario),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc(unit)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(points, &BLUE))
        .map_err(|e| fail(&e))?;

    // Percentiles on a "nines" axis: x = -log10(1 - q), so 90 % is 1, 99 % is 2, 99.9 % is 3.
    let nines = |percentile: f64| -(1.0 - percentile / 100.0).max(1e-9).log10();
    let curve: Vec<(f64, f64)> = report
        .latency_curve
        .iter()
        .map(|&(p, us)| (nines(p), us))
        .collect();
    let x_max = curve.iter().map(|p| p.0).fold(1.0, f64::max);
    let y_max = curve.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let what = match report.scenario {
        Scenario::Connect => "handshake time",
        Scenario::Fanout => "delivery latency",
        _ => "round trip",
    };
    let mut chart = ChartBuilder::on(&right)
        .caption(format!("{what} by percentile"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("µs")
        // Whole nines: 0, 90, 99, 99.9, …
        .x_labels(x_max.round() as usize + 1)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            format!("{p:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        })
        .draw()
        .map_err(|e| fail(&e))?;
    chart
        .draw_series(LineSeries::new(curve, &RED))
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
