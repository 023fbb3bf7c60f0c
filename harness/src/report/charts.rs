//! SVG charts for the HTML reports, drawn with plotters (no fonts needed:
//! the SVG carries text elements the browser renders).

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// Series colours, one per target, stable across charts.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];

/// A named series of values, one per group (`None`: no bar).
pub type Bars = (String, Vec<Option<f64>>);

/// Grouped bars: one group per label, one bar per series; `log` for a
/// logarithmic value axis.
pub fn grouped_bars(
    title: &str,
    groups: &[String],
    series: &[Bars],
    y_desc: &str,
    log: bool,
) -> Result<String> {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| *v > 0.0)
        .collect();
    if values.is_empty() || groups.is_empty() {
        return Ok(String::new());
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let width = (300 + groups.len() * (18 * series.len() + 24)).clamp(640, 1400) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = groups.len() as f64;
        let bar_w = 0.8 / series.len() as f64;
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                groups.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(72);
        macro_rules! draw {
            ($chart:expr, $floor:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .light_line_style(TRANSPARENT)
                    .bold_line_style(BLACK.mix(0.06))
                    .disable_x_mesh()
                    .x_labels(groups.len() * 2 + 4)
                    .x_label_formatter(&label)
                    .x_label_style(("sans-serif", 11))
                    .y_desc(y_desc)
                    .y_labels(if log { 40 } else { 8 })
                    .y_label_formatter(&|v| {
                        if log {
                            log_label(v)
                        } else {
                            crate::report::cells::si(*v)
                        }
                    })
                    .draw()
                    .map_err(err)?;
                for (s, (name, vals)) in series.iter().enumerate() {
                    let color = PALETTE[s % PALETTE.len()];
                    let rects = vals.iter().enumerate().filter_map(|(g, v)| {
                        let v = (*v)?;
                        let x0 = g as f64 - 0.4 + s as f64 * bar_w;
                        Some(Rectangle::new(
                            [(x0, $floor), (x0 + bar_w * 0.92, v.max($floor))],
                            color.filled(),
                        ))
                    });
                    chart
                        .draw_series(rects)
                        .map_err(err)?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(err)?;
            }};
        }
        // Room on the right for the legend, so it never hides a bar.
        let right = n - 0.4 + if series.len() > 1 { 1.6 } else { 0.0 };
        if log {
            let floor = min / 2.0;
            draw!(
                builder
                    .build_cartesian_2d(-0.6..right, (floor..max * 2.0).log_scale())
                    .map_err(err)?,
                floor
            );
        } else {
            draw!(
                builder
                    .build_cartesian_2d(-0.6..right, 0.0..max * 1.1)
                    .map_err(err)?,
                0.0
            );
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A log axis's tick label: only at 1, 2 and 5 times a power of ten, so a
/// narrow range (60k to 250k) gets two or three labels instead of a block
/// of them; the other ticks stay, unlabelled.
fn log_label(v: &f64) -> String {
    if *v <= 0.0 {
        return String::new();
    }
    let mantissa = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 0.02 * m)
    {
        crate::report::cells::si(*v)
    } else {
        String::new()
    }
}

/// A named line of (x, y) points.
pub type Line = (String, Vec<(f64, f64)>);

/// Lines over a logarithmic x axis (rates), linear y.
pub fn lines(title: &str, series: &[Line], x_desc: &str, y_desc: &str) -> Result<String> {
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(x, _)| *x > 0.0)
        .collect();
    if pts.is_empty() {
        return Ok(String::new());
    }
    let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let ymax = pts.iter().map(|(_, y)| *y).fold(0.0, f64::max).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(60)
            .build_cartesian_2d((xmin / 1.5..xmax * 1.5).log_scale(), 0.0..ymax * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.06))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(40)
            .x_label_formatter(&log_label)
            .draw()
            .map_err(err)?;
        for (s, (name, points)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A fitted line from one point to another.
pub type Fit = ((f64, f64), (f64, f64));

/// Lines over linear axes from zero (a time series): each series' points,
/// and a dashed line per series for its fitted trend (`fits`, same order;
/// `None`: no fit).
pub fn series(
    title: &str,
    series: &[Line],
    fits: &[Option<Fit>],
    x_desc: &str,
    y_desc: &str,
) -> Result<String> {
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if pts.is_empty() {
        return Ok(String::new());
    }
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max);
    let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..xmax * 1.02, 0.0..ymax * 1.1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.06))
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (s, (name, points)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            if let Some(Some((a, b))) = fits.get(s) {
                chart
                    .draw_series(DashedLineSeries::new(
                        [*a, *b],
                        6,
                        4,
                        color.mix(0.8).stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Latency against offered rate, both axes logarithmic, with the target
/// drawn across: where each line crosses it is that target's capacity.
/// Every measured point is a dot; a rate measured twice (a confirmation)
/// is joined at the mean of its measurements.
pub fn knee(title: &str, series: &[Line], target_us: f64, y_desc: &str) -> Result<String> {
    let valid = |(x, y): &(f64, f64)| *x > 0.0 && *y > 0.0 && y.is_finite();
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(valid)
        .collect();
    if pts.is_empty() {
        return Ok(String::new());
    }
    let (xmin, xmax) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (ymin, ymax) = pts.iter().fold((target_us, target_us), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    // Empty rates on the left (two decades) hold the legend clear of the data.
    let (x0, x1) = (xmin / 120.0, xmax * 1.5);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d((x0..x1).log_scale(), (ymin / 2.0..ymax * 2.0).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.06))
            .x_desc("offered rate (requests/s)")
            .y_desc(y_desc)
            .x_labels(40)
            .y_labels(40)
            .x_label_formatter(&log_label)
            .y_label_formatter(&log_label)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                [(xmin / 1.5, target_us), (x1, target_us)],
                BLACK.mix(0.5).stroke_width(1),
            ))
            .map_err(err)?
            .label("target")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.mix(0.5)));
        for (s, (name, points)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let mut p: Vec<(f64, f64)> = points.iter().copied().filter(valid).collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut line: Vec<(f64, f64, usize)> = Vec::new();
            for &(x, y) in &p {
                match line.last_mut() {
                    Some((lx, ly, n)) if *lx == x => {
                        *ly += y;
                        *n += 1;
                    }
                    _ => line.push((x, y, 1)),
                }
            }
            let label = if p.is_empty() {
                format!("{name} (no replies)")
            } else {
                name.clone()
            };
            chart
                .draw_series(LineSeries::new(
                    line.iter().map(|&(x, y, n)| (x, y / n as f64)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
            chart
                .draw_series(p.iter().map(|q| Circle::new(*q, 3, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_labels() {
        let svg = grouped_bars(
            "t",
            &["a".into(), "b".into()],
            &[
                ("mio".into(), vec![Some(10.0), Some(20.0)]),
                ("tokio".into(), vec![None, Some(5.0)]),
            ],
            "f/s",
            false,
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("mio") && svg.contains("<rect"));
        let svg = grouped_bars(
            "t",
            &["a".into()],
            &[("x".into(), vec![Some(100.0)])],
            "µs",
            true,
        )
        .unwrap();
        assert!(svg.contains("<svg"));
        let svg = lines(
            "loss",
            &[("mio".into(), vec![(1e4, 0.0), (2e4, 1.5)])],
            "rate",
            "loss %",
        )
        .unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"));
        assert!(grouped_bars("t", &[], &[], "", false).unwrap().is_empty());
        let svg = knee(
            "knee",
            &[(
                "mio".into(),
                vec![(1e3, 150.0), (4e3, 120.0), (1.6e4, 9000.0)],
            )],
            1000.0,
            "p99 µs",
        )
        .unwrap();
        assert!(svg.contains("<svg") && svg.contains("mio") && svg.contains("target"));
        assert!(knee("k", &[], 1000.0, "").unwrap().is_empty());
    }
}

#[cfg(test)]
mod log_label_tests {
    use super::log_label;

    #[test]
    fn only_one_two_and_five_times_a_power_of_ten_are_labelled() {
        for v in [1.0, 2.0, 5.0, 100.0, 200_000.0, 5e6, 1e-3] {
            assert!(!log_label(&v).is_empty(), "{v}");
        }
        for v in [3.0, 60_000.0, 70_000.0, 1.5e5, 0.0, -1.0] {
            assert!(log_label(&v).is_empty(), "{v}");
        }
    }
}
