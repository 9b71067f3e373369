//! Operators (statisticians only): each operator's mean unit-centred score with its 95%
//! interval, beside the operator's four-level distribution as a diverging bar. Operators the
//! operator-effect test flags are shaded, marked with a triangle instead of a dot, and their
//! adjusted p printed in bold.

use plotters::prelude::DrawingBackend;

use super::canvas::{
    self, Align, Canvas, Font, LABEL, LegendItem, MARGIN, Marker, Rect, SMALL, Scale, Swatch,
    VAlign, X_AXIS_HEIGHT,
};
use super::distribution::{self, Level};
use super::palette::{self, Fill, okabe_ito};
use super::{Chart, ChartError, WIDTH};

#[derive(Debug, Clone, PartialEq)]
pub struct OperatorRow {
    pub name: String,
    pub completes: u32,
    /// Mean of the operator's unit-centred respondent scores.
    pub mean: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    /// Holm-adjusted p of the Welch test against the other operators.
    pub p_holm: Option<f64>,
    pub flagged: bool,
    /// Straight-lines far more often than the round.
    pub straight_line_flagged: bool,
    /// All of the operator's answers per level (every dimension), best first.
    pub level_counts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperatorsChart {
    pub title: String,
    pub subtitles: Vec<String>,
    pub levels: Vec<Level>,
    pub x_label: String,
    pub rows: Vec<OperatorRow>,
    pub notes: Vec<String>,
}

const NAME_MAX: f64 = 110.0;

fn row_height(n: usize) -> f64 {
    if n <= 40 { 22.0 } else { 16.0 }
}

impl OperatorsChart {
    fn fills(&self) -> Vec<Fill> {
        let sat: Vec<bool> = self.levels.iter().map(|l| l.satisfied).collect();
        palette::level_fills(&sat)
    }

    fn legend(&self) -> Vec<LegendItem> {
        let mut items = vec![
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Circle,
                    color: okabe_ito::BLUE,
                    filled: true,
                },
                "均值",
            ),
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Triangle,
                    color: okabe_ito::VERMILLION,
                    filled: true,
                },
                "被标记(Holm p<0.05)",
            ),
            LegendItem::new(Swatch::Interval(palette::TEXT), "95%置信区间"),
        ];
        items.extend(distribution::legend_items(&self.levels, &self.fills()));
        items
    }

    fn layout(&self) -> (f64, f64, f64, f64, f64, f64) {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let head_y = legend_y + legend_h + 8.0;
        let top = head_y + SMALL.size + 8.0;
        let row_h = row_height(self.rows.len());
        let bottom = top + self.rows.len().max(1) as f64 * row_h + 4.0;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (legend_y, head_y, top, row_h, bottom, height)
    }

    fn mean_domain(&self) -> (f64, f64) {
        let m = self
            .rows
            .iter()
            .flat_map(|r| {
                r.ci95
                    .map_or([r.mean.unwrap_or(0.0); 2], |c| c)
                    .into_iter()
                    .chain(r.mean)
            })
            .fold(2.0f64, |a, v| a.max(v.abs()));
        let step = canvas::nice_step(m / 3.0);
        let m = canvas::ceil_to(m, step);
        (-m, m)
    }
}

impl Chart for OperatorsChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.layout().5.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let w = f64::from(WIDTH);
        let (legend_y, head_y, top, row_h, bottom, height) = self.layout();
        let fills = self.fills();
        c.header(w, &self.title, &self.subtitles)?;
        c.legend(MARGIN, legend_y, w - 2.0 * MARGIN, &self.legend())?;
        let name_font = if row_h < 18.0 { Font::new(11.0) } else { LABEL };
        let name_w = self
            .rows
            .iter()
            .map(|r| name_font.bold().width(&r.name))
            .fold(SMALL.width("话务员"), f64::max)
            .min(NAME_MAX);
        let n_w = SMALL.width("n=9999") + 6.0;
        let p_w = SMALL.width("p=0.000* 一致作答") + 4.0;
        let x_name = MARGIN;
        let x_n = x_name + name_w + 6.0;
        let left0 = x_n + n_w + 6.0;
        let right1 = w - MARGIN - p_w - 8.0;
        let span = right1 - left0;
        let left1 = left0 + span * 0.45;
        let right0 = left1 + 22.0;

        // Bands behind flagged rows.
        for (i, r) in self.rows.iter().enumerate() {
            if r.flagged {
                let y = top + i as f64 * row_h;
                c.rect(
                    Rect::new(MARGIN - 4.0, y, w - MARGIN + 4.0, y + row_h),
                    palette::BAND,
                )?;
            }
        }
        let mean_scale = Scale::new(self.mean_domain(), (left0, left1));
        c.x_axis(
            &mean_scale,
            &mean_scale.ticks(4),
            bottom,
            top,
            &|t| canvas::num(t, if mean_scale.d1 < 5.0 { 1 } else { 0 }),
            &self.x_label,
        )?;
        let (d0, d1) = distribution::domain(
            &self.levels,
            self.rows.iter().map(|r| r.level_counts.as_slice()),
        );
        let dist_scale = Scale::new((d0, d1), (right0, right1));
        let step = if d1 - d0 > 0.8 { 0.5 } else { 0.2 };
        let dist_ticks: Vec<f64> =
            Scale::new((d0, d1), (0.0, 1.0)).ticks(((d1 - d0) / step).round() as usize);
        c.x_axis(
            &dist_scale,
            &dist_ticks,
            bottom,
            top,
            &|t| canvas::pct(t.abs()),
            "回答占比(%)",
        )?;
        let hy = head_y;
        c.text(x_name, hy, "话务员", &SMALL, Align::Left, VAlign::Top)?;
        c.text(x_n, hy, "完成", &SMALL, Align::Left, VAlign::Top)?;
        c.text(
            (left0 + left1) / 2.0,
            hy,
            "中心化得分均值",
            &SMALL,
            Align::Center,
            VAlign::Top,
        )?;
        c.text(
            (right0 + right1) / 2.0,
            hy,
            "各等级回答分布",
            &SMALL,
            Align::Center,
            VAlign::Top,
        )?;
        c.text(w - MARGIN, hy, "Holm p", &SMALL, Align::Right, VAlign::Top)?;

        let zero = mean_scale.map(0.0);
        c.dashed((zero, top), (zero, bottom), palette::AXIS, 1.0)?;
        let bar_h = (row_h - 8.0).max(6.0);
        for (i, r) in self.rows.iter().enumerate() {
            let cy = top + (i as f64 + 0.5) * row_h;
            let nf = if r.flagged {
                name_font.bold()
            } else {
                name_font
            };
            c.text(
                x_name,
                cy,
                &canvas::fit(&r.name, &nf, name_w),
                &nf,
                Align::Left,
                VAlign::Middle,
            )?;
            c.text(
                x_n,
                cy,
                &r.completes.to_string(),
                &SMALL,
                Align::Left,
                VAlign::Middle,
            )?;
            let color = if r.flagged {
                okabe_ito::VERMILLION
            } else {
                okabe_ito::BLUE
            };
            if let Some([a, b]) = r.ci95 {
                c.interval(
                    mean_scale.map(a),
                    mean_scale.map(b),
                    cy,
                    (bar_h / 2.0).min(4.0),
                    palette::TEXT,
                    1.5,
                )?;
            }
            if let Some(m) = r.mean {
                let marker = if r.flagged {
                    Marker::Triangle
                } else {
                    Marker::Circle
                };
                c.marker(marker, mean_scale.map(m), cy, 4.5, color, true)?;
            }
            distribution::diverging_bar(
                c,
                &dist_scale,
                cy - bar_h / 2.0,
                cy + bar_h / 2.0,
                &self.levels,
                &fills,
                &r.level_counts,
                row_h >= 20.0,
            )?;
            let mut t = match r.p_holm {
                Some(p) if p < 0.001 => "p<0.001".to_string(),
                Some(p) => format!("p={}", canvas::num(p, 3)),
                None => "—".to_string(),
            };
            if r.flagged {
                t.push('*');
            }
            if r.straight_line_flagged {
                t.push_str(" 一致作答");
            }
            let f = if r.flagged || r.straight_line_flagged {
                SMALL.color(palette::TEXT).bold()
            } else {
                SMALL
            };
            c.text(w - MARGIN, cy, &t, &f, Align::Right, VAlign::Middle)?;
        }
        let z = dist_scale.map(0.0);
        c.line(&[(z, top), (z, bottom)], palette::TEXT, 1.5)?;
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}
