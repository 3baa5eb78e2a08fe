//! SVG line charts of scenario curves.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

/// One named curve: (x, y) points in order.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// The curves.
    pub series: Vec<Series>,
}

const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Draws `chart` as an 800×500 SVG at `path`. Axes start at zero (or below, if a value
/// is negative) and leave a tenth of headroom above the largest value.
pub fn write_svg(path: &Path, chart: &Chart<'_>) -> Result<()> {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (x, y) in points {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    if y_max <= y_min {
        y_max = y_min + 1.0;
    }
    let plot_error = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(&e))?;
    let mut context = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_min..x_max * 1.05, y_min..y_max * 1.1)
        .map_err(|e| plot_error(&e))?;
    context
        .configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .draw()
        .map_err(|e| plot_error(&e))?;
    for (i, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        context
            .draw_series(LineSeries::new(
                series.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| plot_error(&e))?
            .label(series.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        context
            .draw_series(
                series
                    .points
                    .iter()
                    .map(|p| Circle::new(*p, 3, colour.filled())),
            )
            .map_err(|e| plot_error(&e))?;
    }
    context
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(&e))?;
    root.present().map_err(|e| plot_error(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_the_curves_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        write_svg(
            &path,
            &Chart {
                title: "time to fetch",
                x_label: "fetchers",
                y_label: "seconds",
                series: vec![Series {
                    name: "swarm".into(),
                    points: vec![(1.0, 2.0), (2.0, 2.5), (4.0, 2.7)],
                }],
            },
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["time to fetch", "fetchers", "seconds", "swarm", "<polyline"] {
            assert!(svg.contains(text), "missing {text}");
        }
    }
}
