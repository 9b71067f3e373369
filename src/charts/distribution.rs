//! The four-level distribution per dimension as diverging stacked bars: the levels that do
//! not count as satisfied to the left of zero, the satisfied ones to the right, mildest next
//! to zero (the usual layout for Likert-type answers). Each segment is labelled with its
//! share and count when it has room; n is printed per bar.

use plotters::prelude::DrawingBackend;

use super::canvas::{
    self, Align, Canvas, Font, LABEL, LegendItem, MARGIN, Rect, SMALL, Scale, Swatch, VAlign,
    X_AXIS_HEIGHT,
};
use super::palette::{self, Fill};
use super::{Chart, ChartError, WIDTH};

/// A level of the answer scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub label: String,
    /// Counts as satisfied (满意率); drawn right of zero.
    pub satisfied: bool,
}

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct DistRow {
    /// First column (a dimension); empty continues the group above.
    pub label: String,
    /// Second column, e.g. "本单位" / "全部单位".
    pub series: Option<String>,
    /// Answers per level, in the scale's order (best first).
    pub counts: Vec<u32>,
    /// A comparison bar: drawn thinner, labelled in grey.
    pub reference: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DistributionChart {
    pub title: String,
    pub subtitles: Vec<String>,
    /// Best first.
    pub levels: Vec<Level>,
    pub rows: Vec<DistRow>,
    pub notes: Vec<String>,
}

const ROW_H: f64 = 26.0;
const BAR_H: f64 = 18.0;
const REF_ROW_H: f64 = 20.0;
const REF_BAR_H: f64 = 11.0;
const GROUP_GAP: f64 = 6.0;
const LABEL_MAX: f64 = 150.0;

/// Level indices from zero outward: `(left side, right side)`.
pub(crate) fn sides(levels: &[Level]) -> (Vec<usize>, Vec<usize>) {
    // Right: satisfied levels, the mildest (last in best-first order) next to zero.
    let right: Vec<usize> = (0..levels.len())
        .rev()
        .filter(|&i| levels[i].satisfied)
        .collect();
    // Left: the other levels, the mildest (first in best-first order) next to zero.
    let left: Vec<usize> = (0..levels.len())
        .filter(|&i| !levels[i].satisfied)
        .collect();
    (left, right)
}

/// Legend entries in the order the segments appear, left to right.
pub(crate) fn legend_items(levels: &[Level], fills: &[Fill]) -> Vec<LegendItem> {
    let (left, right) = sides(levels);
    left.iter()
        .rev()
        .chain(right.iter())
        .map(|&i| LegendItem::new(Swatch::Fill(fills[i]), levels[i].label.clone()))
        .collect()
}

/// Shares left and right of zero for `counts` (0 when there are no answers).
pub(crate) fn side_shares(levels: &[Level], counts: &[u32]) -> (f64, f64) {
    let total: u32 = counts.iter().sum();
    if total == 0 {
        return (0.0, 0.0);
    }
    let sum = |sat: bool| -> f64 {
        counts
            .iter()
            .zip(levels)
            .filter(|(_, l)| l.satisfied == sat)
            .map(|(c, _)| f64::from(*c))
            .sum::<f64>()
            / f64::from(total)
    };
    (sum(false), sum(true))
}

/// Domain `[-left, right]` covering every bar, in steps of 10 %, at least 20 % each side.
pub(crate) fn domain<'a>(levels: &[Level], rows: impl Iterator<Item = &'a [u32]>) -> (f64, f64) {
    let (mut l, mut r) = (0.2f64, 0.2f64);
    for counts in rows {
        let (a, b) = side_shares(levels, counts);
        l = l.max(canvas::ceil_to(a, 0.1));
        r = r.max(canvas::ceil_to(b, 0.1));
    }
    (-l.min(1.0), r.min(1.0))
}

/// Draws one diverging bar between `y0` and `y1`; segment labels when `labels`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn diverging_bar<DB: DrawingBackend>(
    c: &Canvas<'_, DB>,
    scale: &Scale,
    y0: f64,
    y1: f64,
    levels: &[Level],
    fills: &[Fill],
    counts: &[u32],
    labels: bool,
) -> Result<(), ChartError> {
    let total: u32 = counts.iter().sum();
    if total == 0 {
        return Ok(());
    }
    let (left, right) = sides(levels);
    let font = Font::new(if y1 - y0 >= 16.0 { 11.0 } else { 9.5 });
    let draw_side = |order: &[usize], sign: f64| -> Result<(), ChartError> {
        let mut acc = 0.0;
        for &i in order {
            let share = f64::from(counts[i]) / f64::from(total);
            if counts[i] == 0 {
                continue;
            }
            let a = scale.map(sign * acc);
            acc += share;
            let b = scale.map(sign * acc);
            let r = Rect::new(a, y0, b, y1);
            c.fill(r, fills[i])?;
            if labels {
                let long = format!("{}({})", canvas::pct(share), counts[i]);
                let short = canvas::pct(share);
                let text = if font.width(&long) + 6.0 <= r.width() {
                    Some(long)
                } else if font.width(&short) + 4.0 <= r.width() {
                    Some(short)
                } else {
                    None
                };
                if let Some(t) = text {
                    if fills[i].hatch.is_some() {
                        // A plain patch under the label keeps it legible over the hatch.
                        let w = font.width(&t) + 4.0;
                        c.rect(
                            Rect::new(r.cx() - w / 2.0, y0 + 1.0, r.cx() + w / 2.0, y1 - 1.0),
                            fills[i].color,
                        )?;
                    }
                    let f = font.color(palette::text_on(fills[i].color));
                    c.text(r.cx(), r.cy(), &t, &f, Align::Center, VAlign::Middle)?;
                }
            }
        }
        Ok(())
    };
    draw_side(&left, -1.0)?;
    draw_side(&right, 1.0)?;
    Ok(())
}

struct Layout {
    height: f64,
    legend_y: f64,
    plot_top: f64,
    /// (row top, row height) per row.
    rows: Vec<(f64, f64)>,
    plot_bottom: f64,
    label_w: f64,
    series_w: f64,
    n_w: f64,
}

impl DistributionChart {
    fn fills(&self) -> Vec<Fill> {
        let sat: Vec<bool> = self.levels.iter().map(|l| l.satisfied).collect();
        palette::level_fills(&sat)
    }

    fn layout(&self) -> Layout {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) =
            canvas::legend_layout(&legend_items(&self.levels, &self.fills()), w - 2.0 * MARGIN);
        let plot_top = legend_y + legend_h + 8.0;
        let mut y = plot_top;
        let mut rows = Vec::with_capacity(self.rows.len());
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 && !r.label.is_empty() {
                y += GROUP_GAP;
            }
            let h = if r.reference { REF_ROW_H } else { ROW_H };
            rows.push((y, h));
            y += h;
        }
        if self.rows.is_empty() {
            y += ROW_H;
        }
        let plot_bottom = y + 4.0;
        let label_w = self
            .rows
            .iter()
            .map(|r| LABEL.width(&r.label))
            .fold(0.0, f64::max)
            .min(LABEL_MAX);
        let series_w = self
            .rows
            .iter()
            .filter_map(|r| r.series.as_deref())
            .map(|s| SMALL.width(s) + 8.0)
            .fold(0.0, f64::max);
        let n_w = self
            .rows
            .iter()
            .map(|r| SMALL.width(&format!("n={}", r.counts.iter().sum::<u32>())))
            .fold(SMALL.width("n=0"), f64::max);
        let height = plot_bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        Layout {
            height,
            legend_y,
            plot_top,
            rows,
            plot_bottom,
            label_w,
            series_w,
            n_w,
        }
    }
}

impl Chart for DistributionChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.layout().height.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let w = f64::from(WIDTH);
        let l = self.layout();
        let fills = self.fills();
        c.header(w, &self.title, &self.subtitles)?;
        c.legend(
            MARGIN,
            l.legend_y,
            w - 2.0 * MARGIN,
            &legend_items(&self.levels, &fills),
        )?;

        let x_label = MARGIN;
        let x_series = x_label + l.label_w + 8.0;
        let plot_x0 = x_series + l.series_w + 4.0;
        let plot_x1 = w - MARGIN - l.n_w - 8.0;
        let (d0, d1) = domain(&self.levels, self.rows.iter().map(|r| r.counts.as_slice()));
        let scale = Scale::new((d0, d1), (plot_x0, plot_x1));
        let step = if d1 - d0 > 0.8 { 0.2 } else { 0.1 };
        let ticks = Scale::new((d0, d1), (0.0, 1.0)).ticks(((d1 - d0) / step).round() as usize);
        let (left_names, right_names) = {
            let (lft, rgt) = sides(&self.levels);
            let names = |ix: &[usize]| {
                ix.iter()
                    .map(|&i| self.levels[i].label.as_str())
                    .collect::<Vec<_>>()
                    .join("、")
            };
            (names(&lft), names(&rgt))
        };
        let axis_title = format!("回答占比(%) · 零线左侧:{left_names};右侧:{right_names}");
        c.x_axis(
            &scale,
            &ticks,
            l.plot_bottom,
            l.plot_top,
            &|t| canvas::pct(t.abs()),
            &axis_title,
        )?;

        for (row, &(top, h)) in self.rows.iter().zip(&l.rows) {
            let bar_h = if row.reference { REF_BAR_H } else { BAR_H };
            let y0 = top + (h - bar_h) / 2.0;
            let y1 = y0 + bar_h;
            let cy = top + h / 2.0;
            if !row.label.is_empty() {
                c.text(
                    x_label,
                    cy,
                    &canvas::fit(&row.label, &LABEL, LABEL_MAX),
                    &LABEL,
                    Align::Left,
                    VAlign::Middle,
                )?;
            }
            if let Some(s) = &row.series {
                let f = if row.reference {
                    SMALL
                } else {
                    SMALL.color(palette::TEXT)
                };
                c.text(x_series, cy, s, &f, Align::Left, VAlign::Middle)?;
            }
            let n: u32 = row.counts.iter().sum();
            if n == 0 {
                c.text(
                    scale.map(0.0) + 6.0,
                    cy,
                    "无完成访问",
                    &SMALL,
                    Align::Left,
                    VAlign::Middle,
                )?;
            } else {
                diverging_bar(c, &scale, y0, y1, &self.levels, &fills, &row.counts, true)?;
            }
            c.text(
                w - MARGIN,
                cy,
                &format!("n={n}"),
                &SMALL,
                Align::Right,
                VAlign::Middle,
            )?;
        }
        // The zero line over the bars.
        let x0 = scale.map(0.0);
        c.line(
            &[(x0, l.plot_top - 2.0), (x0, l.plot_bottom)],
            palette::TEXT,
            1.5,
        )?;
        c.notes(w, l.height, &self.notes)?;
        Ok(())
    }
}
