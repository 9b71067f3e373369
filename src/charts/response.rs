//! Response: each unit's panel by final disposition (AAPOR categories) as a stacked bar with
//! its RR1, and completes per day over the field period.

use chrono::{Datelike, NaiveDate};
use plotters::prelude::DrawingBackend;
use plotters::style::RGBColor;

use super::canvas::{
    self, Align, Canvas, Font, LABEL, LegendItem, MARGIN, Rect, SMALL, Scale, Swatch, VAlign,
    X_AXIS_HEIGHT,
};
use super::palette::{self, Fill, Hatch, okabe_ito};
use super::{Chart, ChartError, WIDTH};

/// A disposition category as drawn: its label and fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    pub label: String,
    pub fill: Fill,
}

impl Category {
    pub fn new(label: impl Into<String>, fill: Fill) -> Category {
        Category {
            label: label.into(),
            fill,
        }
    }
}

/// The fills of the AAPOR categories in sheping's order (I, P, R, NC, O, UH, UO, NE):
/// completes in green, refusals in vermillion, non-contacts in orange; neighbours differ in
/// lightness or pattern, so a greyscale print keeps them apart.
pub fn aapor_fills() -> [Fill; 8] {
    [
        Fill::solid(okabe_ito::BLUISH_GREEN),
        Fill::hatched(okabe_ito::SKY_BLUE, Hatch::Horizontal),
        Fill::solid(okabe_ito::VERMILLION),
        Fill::hatched(okabe_ito::ORANGE, Hatch::BackDiagonal),
        Fill::solid(okabe_ito::REDDISH_PURPLE),
        Fill::hatched(RGBColor(200, 200, 200), Hatch::Cross),
        Fill::solid(okabe_ito::YELLOW),
        Fill::hatched(RGBColor(235, 235, 235), Hatch::Vertical),
    ]
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResponseUnit {
    pub name: String,
    /// Members per category, in the chart's category order.
    pub counts: Vec<u32>,
    pub rr1: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DispositionsChart {
    pub title: String,
    pub subtitles: Vec<String>,
    pub categories: Vec<Category>,
    pub units: Vec<ResponseUnit>,
    /// RR1 below this is printed in bold with a warning mark.
    pub rr1_threshold: f64,
    pub notes: Vec<String>,
}

const NAME_MAX: f64 = 170.0;

fn row_height(n: usize) -> f64 {
    match n {
        0..=60 => 20.0,
        61..=300 => 16.0,
        _ => 14.0,
    }
}

impl DispositionsChart {
    fn legend(&self) -> Vec<LegendItem> {
        self.categories
            .iter()
            .map(|c| LegendItem::new(Swatch::Fill(c.fill), c.label.clone()))
            .collect()
    }

    /// `(legend y, head y, plot top, row height, plot bottom, height)`.
    fn layout(&self) -> (f64, f64, f64, f64, f64, f64) {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let head_y = legend_y + legend_h + 8.0;
        let top = head_y + SMALL.size + 8.0;
        let row_h = row_height(self.units.len());
        let bottom = top + self.units.len().max(1) as f64 * row_h + 4.0;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (legend_y, head_y, top, row_h, bottom, height)
    }
}

impl Chart for DispositionsChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.layout().5.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let w = f64::from(WIDTH);
        let (legend_y, head_y, top, row_h, bottom, height) = self.layout();
        c.header(w, &self.title, &self.subtitles)?;
        c.legend(MARGIN, legend_y, w - 2.0 * MARGIN, &self.legend())?;
        let name_font = if row_h < 18.0 { Font::new(11.0) } else { LABEL };
        let name_w = self
            .units
            .iter()
            .map(|u| name_font.width(&u.name))
            .fold(0.0, f64::max)
            .min(NAME_MAX);
        let rr_w = LABEL.bold().width("RR1 100%!") + 4.0;
        let x0 = MARGIN + name_w + 10.0;
        let x1 = w - MARGIN - rr_w - 8.0;
        let max_panel = self
            .units
            .iter()
            .map(|u| u.counts.iter().sum::<u32>())
            .max()
            .unwrap_or(0)
            .max(1);
        let step = canvas::nice_step(f64::from(max_panel) / 5.0);
        let scale = Scale::new((0.0, canvas::ceil_to(f64::from(max_panel), step)), (x0, x1));
        c.x_axis(
            &scale,
            &scale.ticks(5),
            bottom,
            top,
            &|t| canvas::num(t, 0),
            "代表人数(人)",
        )?;
        c.text(MARGIN, head_y, "单位", &SMALL, Align::Left, VAlign::Top)?;
        c.text(
            w - MARGIN,
            head_y,
            "应答率RR1",
            &SMALL,
            Align::Right,
            VAlign::Top,
        )?;
        let bar_h = (row_h - 6.0).max(6.0);
        let label_font = Font::new(if bar_h >= 12.0 { 10.0 } else { 8.5 });
        for (i, u) in self.units.iter().enumerate() {
            let cy = top + (i as f64 + 0.5) * row_h;
            c.text(
                MARGIN,
                cy,
                &canvas::fit(&u.name, &name_font, name_w),
                &name_font,
                Align::Left,
                VAlign::Middle,
            )?;
            let mut acc = 0u32;
            for (k, &n) in u.counts.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let fill = self
                    .categories
                    .get(k)
                    .map_or(Fill::solid(palette::AXIS), |c| c.fill);
                let a = scale.map(f64::from(acc));
                acc += n;
                let b = scale.map(f64::from(acc));
                let r = Rect::new(a, cy - bar_h / 2.0, b, cy + bar_h / 2.0);
                c.fill(r, fill)?;
                let t = n.to_string();
                if label_font.width(&t) + 4.0 <= r.width() {
                    if fill.hatch.is_some() {
                        let tw = label_font.width(&t) + 3.0;
                        c.rect(
                            Rect::new(r.cx() - tw / 2.0, r.y0 + 1.0, r.cx() + tw / 2.0, r.y1 - 1.0),
                            fill.color,
                        )?;
                    }
                    let f = label_font.color(palette::text_on(fill.color));
                    c.text(r.cx(), cy, &t, &f, Align::Center, VAlign::Middle)?;
                }
            }
            if acc == 0 {
                c.text(
                    x0 + 4.0,
                    cy,
                    "无代表名单",
                    &SMALL,
                    Align::Left,
                    VAlign::Middle,
                )?;
            }
            let (text, font) = match u.rr1 {
                Some(r) if r < self.rr1_threshold => {
                    (format!("{}!", canvas::pct(r)), name_font.bold())
                }
                Some(r) => (canvas::pct(r), name_font),
                None => ("—".to_string(), name_font),
            };
            c.text(w - MARGIN, cy, &text, &font, Align::Right, VAlign::Middle)?;
        }
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub date: NaiveDate,
    pub completes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CompletesPerDayChart {
    pub title: String,
    pub subtitles: Vec<String>,
    /// Consecutive days (missing days are drawn as 0 when the adapter fills them).
    pub days: Vec<DayCount>,
    pub notes: Vec<String>,
}

const PLOT_H: f64 = 200.0;

impl CompletesPerDayChart {
    fn layout(&self) -> (f64, f64, f64) {
        let top = canvas::header_height(self.subtitles.len()) + SMALL.size + 10.0;
        let bottom = top + PLOT_H;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (top, bottom, height)
    }
}

impl Chart for CompletesPerDayChart {
    fn size(&self) -> (u32, u32) {
        (WIDTH, self.layout().2.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let w = f64::from(WIDTH);
        let (top, bottom, height) = self.layout();
        c.header(w, &self.title, &self.subtitles)?;
        let max = self
            .days
            .iter()
            .map(|d| d.completes)
            .max()
            .unwrap_or(0)
            .max(1);
        let step = canvas::nice_step(f64::from(max) / 5.0);
        let y_scale = Scale::new((0.0, canvas::ceil_to(f64::from(max), step)), (bottom, top));
        let tick_font = SMALL;
        let y_label_w = tick_font.width(&canvas::num(y_scale.d1, 0)) + 6.0;
        let x0 = MARGIN + y_label_w.max(SMALL.width("完成访问(份)") / 2.0) + 4.0;
        let x1 = w - MARGIN;
        // The y axis: title above it, horizontal; grid lines at round counts.
        c.text(
            MARGIN,
            top - 8.0,
            "完成访问(份)",
            &SMALL.color(palette::TEXT),
            Align::Left,
            VAlign::Bottom,
        )?;
        for t in y_scale.ticks(5) {
            let y = y_scale.map(t);
            c.line(&[(x0, y), (x1, y)], palette::GRID, 1.0)?;
            c.text(
                x0 - 6.0,
                y,
                &canvas::num(t, 0),
                &tick_font,
                Align::Right,
                VAlign::Middle,
            )?;
        }
        c.line(&[(x0, top), (x0, bottom)], palette::AXIS, 1.0)?;
        c.line(&[(x0, bottom), (x1, bottom)], palette::AXIS, 1.0)?;
        let n = self.days.len().max(1);
        let slot = (x1 - x0) / n as f64;
        let bar_w = (slot * 0.7).max(1.0);
        // Label every k-th day so that labels never overlap.
        let label_w = tick_font.width("11-30") + 8.0;
        let every = (label_w / slot).ceil().max(1.0) as usize;
        let value_font = Font::new(9.5).color(palette::MUTED);
        for (i, d) in self.days.iter().enumerate() {
            let cx = x0 + (i as f64 + 0.5) * slot;
            if d.completes > 0 {
                let y = y_scale.map(f64::from(d.completes));
                c.fill(
                    Rect::new(cx - bar_w / 2.0, y, cx + bar_w / 2.0, bottom),
                    Fill::solid(okabe_ito::BLUE),
                )?;
                let t = d.completes.to_string();
                if value_font.width(&t) <= slot {
                    c.text(cx, y - 2.0, &t, &value_font, Align::Center, VAlign::Bottom)?;
                }
            }
            if i % every == 0 {
                c.line(&[(cx, bottom), (cx, bottom + 4.0)], palette::AXIS, 1.0)?;
                let label = format!("{:02}-{:02}", d.date.month(), d.date.day());
                c.text(
                    cx,
                    bottom + 6.0,
                    &label,
                    &tick_font,
                    Align::Center,
                    VAlign::Top,
                )?;
            }
        }
        if self.days.is_empty() {
            c.text(
                (x0 + x1) / 2.0,
                (top + bottom) / 2.0,
                "尚无完成访问",
                &SMALL,
                Align::Center,
                VAlign::Middle,
            )?;
        }
        c.text(
            (x0 + x1) / 2.0,
            bottom + 6.0 + SMALL.size + 6.0,
            "日期(月-日,调查所在时区)",
            &LABEL,
            Align::Center,
            VAlign::Top,
        )?;
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}
