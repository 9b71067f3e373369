//! Change between two rounds: a dumbbell chart of each unit's social points in both rounds,
//! the earlier round as an outlined diamond, this round as a filled circle (shapes differ, so
//! it reads in greyscale), joined by a line; changes significant after Holm's adjustment are
//! drawn bold and marked with an asterisk.

use plotters::prelude::DrawingBackend;

use super::canvas::{
    self, Align, Canvas, LABEL, LegendItem, MARGIN, Marker, SMALL, Scale, Swatch, VAlign,
    X_AXIS_HEIGHT,
};
use super::palette::{self, okabe_ito};
use super::{Chart, ChartError, WIDTH};

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub label: String,
    pub now: Option<f64>,
    pub before: Option<f64>,
    pub significant: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeChart {
    pub title: String,
    pub subtitles: Vec<String>,
    pub now_label: String,
    pub before_label: String,
    pub x_label: String,
    /// The axis ends at the maximum points.
    pub max: f64,
    pub rows: Vec<ChangeRow>,
    pub notes: Vec<String>,
}

const ROW_H: f64 = 22.0;
const LABEL_MAX: f64 = 170.0;
const NOW_COLOR: plotters::style::RGBColor = okabe_ito::BLUE;
const BEFORE_COLOR: plotters::style::RGBColor = okabe_ito::VERMILLION;

impl ChangeChart {
    fn legend(&self) -> Vec<LegendItem> {
        vec![
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Circle,
                    color: NOW_COLOR,
                    filled: true,
                },
                self.now_label.clone(),
            ),
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Diamond,
                    color: BEFORE_COLOR,
                    filled: false,
                },
                self.before_label.clone(),
            ),
        ]
    }

    /// `(legend y, plot top, plot bottom, height)`.
    fn layout(&self) -> (f64, f64, f64, f64) {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let top = legend_y + legend_h + 8.0;
        let bottom = top + self.rows.len().max(1) as f64 * ROW_H + 4.0;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (legend_y, top, bottom, height)
    }

    /// From a round value 10 % of the maximum below the lowest point to the maximum.
    fn domain(&self) -> (f64, f64) {
        let lowest = self
            .rows
            .iter()
            .flat_map(|r| [r.now, r.before].into_iter().flatten())
            .fold(self.max, f64::min);
        let step = (self.max / 10.0).max(1.0);
        let lo = ((lowest - step / 2.0) / step).floor() * step;
        (lo.clamp(0.0, (self.max - 2.0 * step).max(0.0)), self.max)
    }
}

impl Chart for ChangeChart {
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
        let diff_w = SMALL.width("−00.00 *") + 4.0;
        let x0 = MARGIN + label_w + 12.0;
        let x1 = w - MARGIN - diff_w - 10.0;
        let scale = Scale::new(self.domain(), (x0, x1));
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
            "变化",
            &SMALL,
            Align::Right,
            VAlign::Bottom,
        )?;
        let mut y = top;
        for row in &self.rows {
            let cy = y + ROW_H / 2.0;
            let font = if row.significant { LABEL.bold() } else { LABEL };
            c.text(
                MARGIN,
                cy,
                &canvas::fit(&row.label, &font, LABEL_MAX),
                &font,
                Align::Left,
                VAlign::Middle,
            )?;
            c.dashed((x0, cy), (x1, cy), palette::GRID, 1.0)?;
            if let (Some(a), Some(b)) = (row.now, row.before) {
                let width = if row.significant { 3.0 } else { 1.5 };
                c.line(
                    &[(scale.map(b), cy), (scale.map(a), cy)],
                    palette::AXIS,
                    width,
                )?;
                let d = a - b;
                let sign = if d >= 0.0 { "+" } else { "−" };
                let mark = if row.significant { " *" } else { "" };
                c.text(
                    w - MARGIN,
                    cy,
                    &format!("{sign}{}{mark}", canvas::num(d.abs(), 2)),
                    &font,
                    Align::Right,
                    VAlign::Middle,
                )?;
            }
            if let Some(b) = row.before {
                c.marker(Marker::Diamond, scale.map(b), cy, 5.0, BEFORE_COLOR, false)?;
            }
            if let Some(a) = row.now {
                c.marker(Marker::Circle, scale.map(a), cy, 5.0, NOW_COLOR, true)?;
            }
            y += ROW_H;
        }
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}
