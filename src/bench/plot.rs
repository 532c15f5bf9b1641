//! The latency plot (`--plot`): delivery latency percentiles (p50, p95, p99) of the latency
//! sweep against the offered rate, both axes logarithmic, with the baseline's p50 and p99 dashed
//! and issue 5's targets at 1,000/s as grey lines. A PNG drawn with `plotters`.
//!
//! Text needs a TrueType font, read at run time from the usual system places (the binary carries
//! none); without one the plot is drawn without any text.

use super::figures::Percentiles;
use super::report::Report;
use super::targets::{LATENCY_RATE, P50_MS, P99_MS, thousands};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SIZE: (u32, u32) = (1100, 700);
/// Fonts tried first, then any `*.ttf` under the font directories.
const FONTS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];
const FONT_DIRS: [&str; 3] = [
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
];
/// The family name the plot's text uses.
const FAMILY: &str = "sans-serif";

/// One curve: `(rate, percentiles)` in rate order.
type Curve = Vec<(f64, Percentiles)>;
/// A percentile by name.
type Pick = (&'static str, fn(&Percentiles) -> f64);

/// Writes the plot of `report`'s latency sweep to `path`. Returns `Ok(false)` (and writes
/// nothing) when the latency scenario did not run.
pub fn write_latency_plot(report: &Report, path: &Path) -> Result<bool, String> {
    let Some(latency) = &report.latency else {
        return Ok(false);
    };
    let platform: Curve = latency
        .sweep
        .iter()
        .map(|l| (l.rate, l.delivery_ms))
        .collect();
    let baseline: Curve = report
        .baseline
        .iter()
        .flat_map(|b| &b.latency)
        .map(|l| (l.rate, l.delivery_ms))
        .collect();
    if platform.is_empty() {
        return Ok(false);
    }
    let subtitle = format!(
        "callhook {} ({} build), {} CPUs{}",
        report.callhook_version,
        report.build,
        report.machine.cpus,
        if report.settings.quick {
            ", --quick"
        } else {
            ""
        }
    );
    draw(path, &platform, &baseline, &subtitle, font_loaded()).map_err(|e| e.to_string())?;
    Ok(true)
}

fn draw(
    path: &Path,
    platform: &Curve,
    baseline: &Curve,
    subtitle: &str,
    text: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let rates = platform.iter().chain(baseline).map(|(r, _)| *r);
    let (lo_rate, hi_rate) = bounds(rates);
    let values = platform
        .iter()
        .chain(baseline)
        .flat_map(|(_, p)| [p.p50, p.p95, p.p99])
        .chain([P50_MS, P99_MS])
        .filter(|v| *v > 0.0);
    let (lo_ms, hi_ms) = bounds(values);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(
                "Delivery latency vs offered rate (open loop, 202 read -> receiver got it)",
                (FAMILY, 24),
            )
            .x_label_area_size(60)
            .y_label_area_size(70);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart = builder.build_cartesian_2d(
        (lo_rate / 1.5..hi_rate * 1.5).log_scale(),
        (lo_ms / 2.0..hi_ms * 2.0).log_scale(),
    )?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc(format!("events/s offered   ({subtitle})"))
            .x_labels(20)
            .y_desc("latency, ms (log scale)")
            .x_label_formatter(&|v| one_two_five(*v))
            .y_label_formatter(&|v| short(*v))
            .label_style((FAMILY, 16));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw()?;

    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(214, 39, 40),
    ];
    let pick: [Pick; 3] = [("p50", |p| p.p50), ("p95", |p| p.p95), ("p99", |p| p.p99)];
    for ((name, get), colour) in pick.iter().zip(colours) {
        let points: Vec<(f64, f64)> = platform
            .iter()
            .map(|(r, p)| (*r, get(p).max(lo_ms / 2.0)))
            .collect();
        let style = colour.stroke_width(3);
        let series = chart.draw_series(LineSeries::new(points.clone(), style))?;
        if text {
            series
                .label(format!("callhook {name}"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3))
                });
        }
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 5, colour.filled())))?;
        if text && *name != "p95" {
            // The value next to each p50 and p99 point.
            let style = (FAMILY, 15).into_font().color(&colour);
            // p99 above its point, p50 below, so neither sits on a line.
            let lift = if *name == "p99" { 1.45 } else { 0.92 };
            let labels = points.iter().map(|&(x, y)| {
                Text::new(
                    format!("{} ms", short(y)),
                    (x * 1.05, y * lift),
                    style.clone(),
                )
            });
            chart.draw_series(labels)?;
        }
    }
    for ((name, get), colour) in [pick[0], pick[2]].iter().zip([colours[0], colours[2]]) {
        if baseline.is_empty() {
            break;
        }
        let points: Vec<(f64, f64)> = baseline
            .iter()
            .map(|(r, p)| (*r, get(p).max(lo_ms / 2.0)))
            .collect();
        let style = colour.mix(0.6).stroke_width(2);
        let series = chart.draw_series(DashedLineSeries::new(points, 8, 6, style))?;
        if text {
            series
                .label(format!("baseline {name} (no platform)"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.mix(0.6).stroke_width(2))
                });
        }
    }
    let grey = RGBColor(120, 120, 120);
    for (ms, name) in [(P50_MS, "p50"), (P99_MS, "p99")] {
        let span = [(LATENCY_RATE / 1.6, ms), (LATENCY_RATE * 1.6, ms)];
        let series = chart.draw_series(LineSeries::new(span, grey.stroke_width(2)))?;
        if text && name == "p99" {
            series
                .label(format!(
                    "targets at {}/s: p50 < {P50_MS} ms, p99 < {P99_MS} ms",
                    thousands(LATENCY_RATE)
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], grey.stroke_width(2))
                });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FAMILY, 16))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// The smallest and largest of `values` (1 and 10 when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi { (1.0, 10.0) } else { (lo, hi) }
}

/// The rate axis shows 100, 200, 500, 1,000, ...: other key points stay unlabelled.
fn one_two_five(v: f64) -> String {
    let lead = v / 10f64.powf(v.log10().floor());
    if [1.0, 2.0, 5.0].iter().any(|l| (lead - l).abs() < 0.01) {
        thousands(v)
    } else {
        String::new()
    }
}

/// `0.25`, `2`, `40`.
fn short(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Registers a system TrueType font once; whether there is one.
fn font_loaded() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        let candidates = FONTS
            .iter()
            .map(PathBuf::from)
            .chain(FONT_DIRS.iter().flat_map(|d| ttf_files(Path::new(d), 3)));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // The font lives as long as the process: plotters keeps a reference to it.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                tracing::debug!(font = %path.display(), "plot font");
                return true;
            }
        }
        tracing::warn!("no TrueType font found; the plot has no text");
        false
    })
}

/// `*.ttf` files under `dir`, `depth` levels down, sans-serif ones first.
fn ttf_files(dir: &Path, depth: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            found.extend(ttf_files(&path, depth - 1));
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf"))
        {
            found.push(path);
        }
    }
    found.sort_by_key(|p| !p.to_string_lossy().contains("Sans"));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(p50: f64, p99: f64) -> Percentiles {
        Percentiles {
            samples: 100,
            p50,
            p95: (p50 + p99) / 2.0,
            p99,
            max: p99 * 2.0,
        }
    }

    #[test]
    fn the_plot_is_a_png_with_or_without_a_font() {
        let dir = tempfile::tempdir().expect("temp dir");
        let platform = vec![
            (100.0, at(0.3, 0.6)),
            (1_000.0, at(0.25, 1.5)),
            (5_000.0, at(0.9, 3.3)),
        ];
        let baseline = vec![(100.0, at(0.1, 0.4)), (5_000.0, at(0.07, 0.3))];
        for text in [font_loaded(), false] {
            let path = dir.path().join(format!("plot-{text}.png"));
            draw(&path, &platform, &baseline, "test", text).expect("drawn");
            let png = std::fs::read(&path).expect("written");
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        }
    }

    #[test]
    fn only_one_two_five_rates_are_labelled() {
        assert_eq!(one_two_five(100.0), "100");
        assert_eq!(one_two_five(5_000.0), "5,000");
        assert_eq!(one_two_five(700.0), "");
    }
}
