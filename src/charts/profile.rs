//! A unit's dimension profile against the round: a dot plot of mean scores per dimension,
//! the unit as a filled circle, the round as an outlined diamond (shapes differ, so it reads
//! in greyscale), joined by a line, with the difference printed.

use plotters::prelude::DrawingBackend;

use super::canvas::{
    self, Align, Canvas, LABEL, LegendItem, MARGIN, Marker, SMALL, Scale, Swatch, VAlign,
    X_AXIS_HEIGHT,
};
use super::palette::{self, okabe_ito};
use super::{Chart, ChartError, WIDTH};

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    pub label: String,
    /// The unit's mean (absent without completes).
    pub unit: Option<f64>,
    /// The unit's 95% interval, where known (the weighted overall row).
    pub unit_ci95: Option<[f64; 2]>,
    /// The round's mean.
    pub round: Option<f64>,
    /// Drawn bold and set apart (the overall row).
    pub emphasis: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileChart {
    pub title: String,
    pub subtitles: Vec<String>,
    pub unit_label: String,
    pub round_label: String,
    /// The axis title, with its unit.
    pub x_label: String,
    /// The best score (the axis ends there).
    pub max: f64,
    pub rows: Vec<ProfileRow>,
    pub notes: Vec<String>,
}

const ROW_H: f64 = 28.0;
const LABEL_MAX: f64 = 150.0;
const UNIT_COLOR: plotters::style::RGBColor = okabe_ito::BLUE;
const ROUND_COLOR: plotters::style::RGBColor = okabe_ito::VERMILLION;

impl ProfileChart {
    fn legend(&self) -> Vec<LegendItem> {
        let mut items = vec![
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Circle,
                    color: UNIT_COLOR,
                    filled: true,
                },
                self.unit_label.clone(),
            ),
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Diamond,
                    color: ROUND_COLOR,
                    filled: false,
                },
                self.round_label.clone(),
            ),
        ];
        if self.rows.iter().any(|r| r.unit_ci95.is_some()) {
            items.push(LegendItem::new(Swatch::Interval(UNIT_COLOR), "95%置信区间"));
        }
        items
    }

    /// `(legend y, plot top, plot bottom, height)`.
    fn layout(&self) -> (f64, f64, f64, f64) {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let top = legend_y + legend_h + 8.0;
        let gaps = self.rows.iter().filter(|r| r.emphasis).count() as f64 * 6.0;
        let bottom = top + self.rows.len().max(1) as f64 * ROW_H + gaps + 4.0;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (legend_y, top, bottom, height)
    }

    /// The axis range: dot plots need not start at zero; from a round 10 below the lowest
    /// value (at least 20 wide) to the maximum.
    fn domain(&self) -> (f64, f64) {
        let lowest = self
            .rows
            .iter()
            .flat_map(|r| {
                [r.unit, r.round, r.unit_ci95.map(|c| c[0])]
                    .into_iter()
                    .flatten()
            })
            .fold(self.max, f64::min);
        let lo = ((lowest - 5.0) / 10.0).floor() * 10.0;
        let lo = lo.min(self.max - 20.0).max(0.0);
        (lo, self.max)
    }
}

impl Chart for ProfileChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.layout().3.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let w = f64::from(WIDTH);
        let (legend_y, top, bottom, height) = self.layout();
        c.header(w, &self.title, &self.subtitles)?;
        c.legend(MARGIN, legend_y, w - 2.0 * MARGIN, &self.legend())?;
        let label_w = self
            .rows
            .iter()
            .map(|r| LABEL.bold().width(&r.label))
            .fold(0.0, f64::max)
            .min(LABEL_MAX);
        let diff_w = SMALL.width("较均值 −00.0") + 4.0;
        let x0 = MARGIN + label_w + 12.0;
        let x1 = w - MARGIN - diff_w - 10.0;
        let (d0, d1) = self.domain();
        let scale = Scale::new((d0, d1), (x0, x1));
        let ticks = scale.ticks(6);
        c.x_axis(
            &scale,
            &ticks,
            bottom,
            top,
            &|t| canvas::num(t, 0),
            &self.x_label,
        )?;
        c.text(
            w - MARGIN,
            top - 2.0,
            "本单位−均值",
            &SMALL,
            Align::Right,
            VAlign::Bottom,
        )?;

        let mut y = top;
        for row in &self.rows {
            if row.emphasis {
                y += 6.0;
            }
            let cy = y + ROW_H / 2.0;
            let font = if row.emphasis { LABEL.bold() } else { LABEL };
            c.text(
                MARGIN,
                cy,
                &canvas::fit(&row.label, &font, LABEL_MAX),
                &font,
                Align::Left,
                VAlign::Middle,
            )?;
            // A faint guide line across the row.
            c.dashed((x0, cy), (x1, cy), palette::GRID, 1.0)?;
            if let (Some(u), Some(r)) = (row.unit, row.round) {
                c.line(
                    &[(scale.map(u), cy), (scale.map(r), cy)],
                    palette::AXIS,
                    2.0,
                )?;
            }
            if let Some([a, b]) = row.unit_ci95 {
                c.interval(scale.map(a), scale.map(b), cy, 5.0, UNIT_COLOR, 1.5)?;
            }
            if let Some(r) = row.round {
                c.marker(Marker::Diamond, scale.map(r), cy, 5.0, ROUND_COLOR, false)?;
            }
            match row.unit {
                Some(u) => {
                    c.marker(Marker::Circle, scale.map(u), cy, 5.5, UNIT_COLOR, true)?;
                    // The value beside the dot, on the side away from the round's marker,
                    // beyond the interval's end when there is one.
                    let right = row.round.is_none_or(|r| u >= r);
                    let (tx, align) = match (right, row.unit_ci95) {
                        (true, Some([_, hi])) => (scale.map(hi.max(u)) + 8.0, Align::Left),
                        (true, None) => (scale.map(u) + 10.0, Align::Left),
                        (false, Some([lo, _])) => (scale.map(lo.min(u)) - 8.0, Align::Right),
                        (false, None) => (scale.map(u) - 10.0, Align::Right),
                    };
                    let (tx, align) = if right && tx + 30.0 > x1 {
                        (scale.map(u), Align::Center)
                    } else {
                        (tx, align)
                    };
                    let ty = if align == Align::Center { cy - 8.0 } else { cy };
                    let valign = if align == Align::Center {
                        VAlign::Bottom
                    } else {
                        VAlign::Middle
                    };
                    c.text(
                        tx,
                        ty,
                        &canvas::num(u, 1),
                        &LABEL.color(UNIT_COLOR).bold(),
                        align,
                        valign,
                    )?;
                    if let Some(r) = row.round {
                        let d = u - r;
                        let sign = if d > 0.05 {
                            "+"
                        } else if d < -0.05 {
                            "−"
                        } else {
                            "±"
                        };
                        c.text(
                            w - MARGIN,
                            cy,
                            &format!("{sign}{}", canvas::num(d.abs(), 1)),
                            &LABEL,
                            Align::Right,
                            VAlign::Middle,
                        )?;
                    }
                }
                None => {
                    c.text(
                        x0 + 4.0,
                        cy - 8.0,
                        "无完成访问",
                        &SMALL,
                        Align::Left,
                        VAlign::Bottom,
                    )?;
                }
            }
            y += ROW_H;
        }
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}
