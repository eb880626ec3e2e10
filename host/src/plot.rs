//! Small self-contained SVG charts (lines, bands, points, category strips)
//! for `nas-host compare` and `nas-host report`: no fonts, scripts or
//! network access needed to show them.

use std::fmt::Write as _;

/// A colour per series, in order.
pub const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// How a series is drawn.
#[derive(Debug, Clone)]
pub enum Mark {
    /// A polyline through the points, in order.
    Line,
    /// A step line (value held until the next point), as for best-so-far curves.
    Steps,
    /// A circle per point; `labels` (one per point, may be empty) become tooltips.
    Points {
        /// Tooltip texts.
        labels: Vec<String>,
        /// Circle radius.
        radius: f64,
    },
    /// A filled band between the points (upper edge) and `lower`.
    Band {
        /// The lower edge, at the same x values.
        lower: Vec<(f64, f64)>,
    },
}

/// One series of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (empty: not in the legend).
    pub name: String,
    /// CSS colour.
    pub color: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// How to draw them.
    pub mark: Mark,
}

/// A chart with two axes.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label of the y axis (shown with the title).
    pub y_label: String,
    /// Logarithmic x axis (for parameter and FLOP counts).
    pub log_x: bool,
    /// Names of the x positions 0, 1, 2, ... instead of numbers (category strips).
    pub x_categories: Option<Vec<String>>,
    /// Width and height in pixels.
    pub size: (f64, f64),
    /// What to draw, in order (later on top).
    pub series: Vec<Series>,
}

impl Chart {
    /// An empty chart with a title and axis labels.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            x_categories: None,
            size: (560.0, 340.0),
            series: Vec::new(),
        }
    }

    /// Adds a series.
    pub fn with(mut self, name: &str, color: &str, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        self.series.push(Series {
            name: name.into(),
            color: color.into(),
            points,
            mark,
        });
        self
    }

    /// Adds a scatter series whose points show `labels` as tooltips.
    pub fn scatter(
        self,
        name: &str,
        color: &str,
        points: Vec<(f64, f64)>,
        labels: Vec<String>,
        radius: f64,
    ) -> Self {
        self.with(name, color, points, Mark::Points { labels, radius })
    }

    fn x_value(&self, x: f64) -> f64 {
        if self.log_x {
            x.max(f64::MIN_POSITIVE).log10()
        } else {
            x
        }
    }

    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> String {
        let (w, h) = self.size;
        let legend = self.series.iter().any(|s| !s.name.is_empty());
        let (left, top, right, bottom) = (64.0, 34.0, if legend { 150.0 } else { 16.0 }, 48.0);
        let all = || {
            self.series.iter().flat_map(|s| {
                let lower = match &s.mark {
                    Mark::Band { lower } => lower.as_slice(),
                    _ => &[],
                };
                s.points.iter().chain(lower)
            })
        };
        let range = |values: &mut dyn Iterator<Item = f64>, padded: bool| {
            let (lo, hi) = values
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            if !lo.is_finite() {
                (0.0, 1.0)
            } else if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                let pad = if padded { (hi - lo) * 0.04 } else { 0.0 };
                (lo - pad, hi + pad)
            }
        };
        let (x_lo, x_hi) = match &self.x_categories {
            Some(c) => (-0.5, c.len() as f64 - 0.5),
            None => range(&mut all().map(|p| self.x_value(p.0)), false),
        };
        // Points on the x range's ends stay inside the frame; y gets a margin.
        let (y_lo, y_hi) = range(&mut all().map(|p| p.1), true);
        let px = |x: f64| left + (w - left - right) * (self.x_value(x) - x_lo) / (x_hi - x_lo);
        let py = |y: f64| top + (h - top - bottom) * (1.0 - (y - y_lo) / (y_hi - y_lo));
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text><text x=\"{left}\" y=\"29\" fill=\"#555\">{}</text>",
            escape(&self.title),
            escape(&self.y_label)
        );
        let (x0, x1, y0, y1) = (left, w - right, top, h - bottom);
        let _ = writeln!(svg, "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>", x1 - x0, y1 - y0);
        for k in 0..=4 {
            let v = y_lo + (y_hi - y_lo) * k as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 5.0,
                py(v) + 4.0,
                number(v),
                y = py(v)
            );
        }
        match &self.x_categories {
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    let _ = writeln!(
                        svg,
                        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        left + (w - left - right) * (i as f64 - x_lo) / (x_hi - x_lo),
                        y1 + 15.0,
                        escape(name)
                    );
                }
            }
            None => {
                for k in 0..=4 {
                    let t = x_lo + (x_hi - x_lo) * k as f64 / 4.0;
                    let label = if self.log_x { 10f64.powf(t) } else { t };
                    let x = left + (w - left - right) * k as f64 / 4.0;
                    let _ = writeln!(
                        svg,
                        "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        y1 + 15.0,
                        number(label)
                    );
                }
            }
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
            (x0 + x1) / 2.0,
            h - 10.0,
            escape(&self.x_label)
        );
        let coords = |points: &[(f64, f64)]| -> Vec<String> {
            points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect()
        };
        let mut legend_row = 0.0;
        for s in &self.series {
            let color = &s.color;
            match &s.mark {
                Mark::Line => {
                    let _ = writeln!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>", coords(&s.points).join(" "));
                }
                Mark::Steps => {
                    let mut stepped = Vec::new();
                    for (k, &p) in s.points.iter().enumerate() {
                        if k > 0 {
                            stepped.push((p.0, s.points[k - 1].1));
                        }
                        stepped.push(p);
                    }
                    let _ = writeln!(svg, "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>", coords(&stepped).join(" "));
                }
                Mark::Band { lower } => {
                    let mut edge = coords(&s.points);
                    edge.extend(coords(lower).into_iter().rev());
                    let _ = writeln!(svg, "<polygon points=\"{}\" fill=\"{color}\" fill-opacity=\"0.15\" stroke=\"none\"/>", edge.join(" "));
                }
                Mark::Points { labels, radius } => {
                    for (k, &(x, y)) in s.points.iter().enumerate() {
                        if !(x.is_finite() && y.is_finite()) {
                            continue;
                        }
                        let tip = labels
                            .get(k)
                            .map(|l| format!("<title>{}</title>", escape(l)))
                            .unwrap_or_default();
                        let _ = writeln!(svg, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius}\" fill=\"{color}\" fill-opacity=\"0.7\">{tip}</circle>", px(x), py(y));
                    }
                }
            }
            if !s.name.is_empty() {
                let _ = writeln!(
                    svg,
                    "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{}</text>",
                    x1 + 10.0,
                    y0 + 16.0 * legend_row,
                    x1 + 24.0,
                    y0 + 16.0 * legend_row + 9.0,
                    escape(&s.name)
                );
                legend_row += 1.0;
            }
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// A number as an axis label: short, with thousands as k, M, G.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Text made safe for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_place_points_inside_the_plot_and_escape_text() {
        let chart = Chart::new("a <b>", "x", "y")
            .with(
                "s&p",
                COLORS[0],
                vec![(1.0, 0.0), (10.0, 1.0)],
                Mark::Points {
                    labels: vec!["one".into(), "two".into()],
                    radius: 3.0,
                },
            )
            .with("", COLORS[1], vec![(1.0, 0.0), (10.0, 1.0)], Mark::Steps);
        let svg = chart.svg();
        assert!(
            svg.contains("a &lt;b&gt;") && svg.contains("s&amp;p"),
            "{svg}"
        );
        assert!(svg.contains("<title>two</title>"));
        let cx: Vec<f64> = svg
            .match_indices("cx=\"")
            .map(|(i, _)| {
                let rest = &svg[i + 4..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert_eq!(cx.len(), 2);
        assert!(
            cx[0] >= 64.0 && cx[1] <= 560.0 - 150.0 && cx[0] < cx[1],
            "{cx:?}"
        );
        // The step line holds the first value until the second x.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(number(1_531_546.0), "1.53M");
    }
}
