//! A small drawing layer over a plotters drawing area: logical pixels (one CSS pixel) scaled
//! to the device, text placed by its baseline the same way in SVG and PNG, hatched fills,
//! axes with round ticks, headers and legends. Every chart draws through it.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ChartError;
use super::fonts::{self, FAMILY};
use super::palette::{self, Fill, Hatch};

/// Text sizes (em, logical px).
pub const TITLE_SIZE: f64 = 16.0;
pub const SUBTITLE_SIZE: f64 = 12.0;
pub const LABEL_SIZE: f64 = 12.0;
pub const SMALL_SIZE: f64 = 10.5;
/// Outer margin.
pub const MARGIN: f64 = 14.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect {
        Rect {
            x0: x0.min(x1),
            y0: y0.min(y1),
            x1: x0.max(x1),
            y1: y0.max(y1),
        }
    }
    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }
    pub fn cy(&self) -> f64 {
        (self.y0 + self.y1) / 2.0
    }
    pub fn cx(&self) -> f64 {
        (self.x0 + self.x1) / 2.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VAlign {
    /// `y` is the top of the CJK ideographic box.
    Top,
    /// `y` is the middle of the CJK ideographic box.
    Middle,
    /// `y` is the bottom of the CJK ideographic box.
    Bottom,
}

/// How text looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Font {
    pub size: f64,
    pub bold: bool,
    pub color: RGBColor,
}

impl Font {
    pub const fn new(size: f64) -> Font {
        Font {
            size,
            bold: false,
            color: palette::TEXT,
        }
    }
    pub const fn bold(self) -> Font {
        Font { bold: true, ..self }
    }
    pub const fn color(self, color: RGBColor) -> Font {
        Font { color, ..self }
    }
    pub fn width(&self, text: &str) -> f64 {
        fonts::text_width(text, self.size, self.bold)
    }
}

pub const LABEL: Font = Font::new(LABEL_SIZE);
pub const SMALL: Font = Font::new(SMALL_SIZE).color(palette::MUTED);

/// `text` shortened with "…" to fit `max` pixels.
pub fn fit(text: &str, font: &Font, max: f64) -> String {
    if font.width(text) <= max {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    // Binary search for the longest prefix that fits with the ellipsis.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().chain(['…'].iter()).collect();
        if font.width(&candidate) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    chars[..lo].iter().chain(['…'].iter()).collect()
}

/// Markers for points: shapes differ, so series stay apart without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Diamond,
    Triangle,
    Square,
}

/// What a legend entry shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Swatch {
    Fill(Fill),
    /// A marker, filled or outlined.
    Marker {
        marker: Marker,
        color: RGBColor,
        filled: bool,
    },
    /// A horizontal error bar.
    Interval(RGBColor),
    /// A band behind rows.
    Band(Fill),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    pub swatch: Swatch,
    pub label: String,
}

impl LegendItem {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> LegendItem {
        LegendItem {
            swatch,
            label: label.into(),
        }
    }
}

const LEGEND_FONT: Font = Font::new(11.5);
const LEGEND_ROW: f64 = 18.0;
const SWATCH_W: f64 = 18.0;

/// Positions of legend items wrapped into `width`: `(x offset, row)` each, and the height.
pub fn legend_layout(items: &[LegendItem], width: f64) -> (Vec<(f64, usize)>, f64) {
    let mut out = Vec::with_capacity(items.len());
    let (mut x, mut row) = (0.0, 0usize);
    for item in items {
        let w = SWATCH_W + 5.0 + LEGEND_FONT.width(&item.label) + 16.0;
        if x > 0.0 && x + w > width {
            x = 0.0;
            row += 1;
        }
        out.push((x, row));
        x += w;
    }
    let height = if items.is_empty() {
        0.0
    } else {
        (row + 1) as f64 * LEGEND_ROW
    };
    (out, height)
}

/// Header height: title, subtitle lines, and a gap.
pub fn header_height(subtitles: usize) -> f64 {
    MARGIN + TITLE_SIZE + 6.0 + subtitles as f64 * (SUBTITLE_SIZE + 5.0) + 6.0
}

/// Footnote height.
pub fn notes_height(notes: usize) -> f64 {
    if notes == 0 {
        MARGIN
    } else {
        8.0 + notes as f64 * (SMALL_SIZE + 4.0) + MARGIN
    }
}

/// A linear map from data to pixels, with round tick values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Scale {
        let (d0, d1) = if domain.1 > domain.0 {
            domain
        } else {
            (domain.0, domain.0 + 1.0)
        };
        Scale {
            d0,
            d1,
            r0: range.0,
            r1: range.1,
        }
    }
    pub fn map(&self, v: f64) -> f64 {
        let v = v.clamp(self.d0, self.d1);
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
    /// Tick values: multiples of a round step (1, 2, 2.5 or 5 × 10ᵏ) inside the domain.
    pub fn ticks(&self, target: usize) -> Vec<f64> {
        let step = nice_step((self.d1 - self.d0) / target.max(1) as f64);
        let first = (self.d0 / step).ceil() as i64;
        let last = (self.d1 / step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

/// The round step nearest above `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// `v` rounded up to a multiple of `step`.
pub fn ceil_to(v: f64, step: f64) -> f64 {
    (v / step - 1e-9).ceil() * step
}

/// A number for a label: `decimals` places, halves rounded away from zero (as people round;
/// `format!` rounds halves to even), without "-0".
pub fn num(v: f64, decimals: usize) -> String {
    let scale = 10f64.powi(decimals as i32);
    let v = (v * scale).round() / scale;
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A share as a whole percentage.
pub fn pct(share: f64) -> String {
    format!("{}%", num(share * 100.0, 0))
}

pub struct Canvas<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    scale: f64,
    svg: bool,
}

impl<'a, DB: DrawingBackend> Canvas<'a, DB> {
    pub fn new(area: &'a DrawingArea<DB, Shift>, scale: f64, svg: bool) -> Self {
        Canvas { area, scale, svg }
    }

    fn p(&self, x: f64, y: f64) -> (i32, i32) {
        (
            (x * self.scale).round() as i32,
            (y * self.scale).round() as i32,
        )
    }

    fn w(&self, width: f64) -> u32 {
        (width * self.scale).round().max(1.0) as u32
    }

    pub fn rect(&self, r: Rect, color: RGBColor) -> Result<(), ChartError> {
        if r.width() <= 0.0 || r.height() <= 0.0 {
            return Ok(());
        }
        self.area.draw(&Rectangle::new(
            [self.p(r.x0, r.y0), self.p(r.x1, r.y1)],
            color.filled(),
        ))?;
        Ok(())
    }

    /// A filled rectangle, hatched when the fill says so.
    pub fn fill(&self, r: Rect, fill: Fill) -> Result<(), ChartError> {
        self.rect(r, fill.color)?;
        if let Some(h) = fill.hatch {
            self.hatch(r, h, fill.hatch_color())?;
        }
        Ok(())
    }

    /// Hatch lines clipped to `r`.
    pub fn hatch(&self, r: Rect, hatch: Hatch, color: RGBColor) -> Result<(), ChartError> {
        const GAP: f64 = 5.0;
        if r.width() < 1.0 || r.height() < 1.0 {
            return Ok(());
        }
        let mut segments: Vec<[(f64, f64); 2]> = Vec::new();
        let (w, h) = (r.width(), r.height());
        let diagonal = |segments: &mut Vec<[(f64, f64); 2]>, forward: bool| {
            // Lines x − y = c (forward "/" in screen coordinates rises to the right).
            let mut k = -h;
            while k < w {
                // Start at the bottom edge, end at the top edge, then clip to the sides.
                let (mut sx, mut sy) = (r.x0 + k, r.y1);
                let (mut ex, mut ey) = (r.x0 + k + h, r.y0);
                if sx < r.x0 {
                    sy -= r.x0 - sx;
                    sx = r.x0;
                }
                if ex > r.x1 {
                    ey += ex - r.x1;
                    ex = r.x1;
                }
                if ex > sx {
                    if forward {
                        segments.push([(sx, sy), (ex, ey)]);
                    } else {
                        // Mirror horizontally within the rectangle.
                        let m = |x: f64| r.x0 + r.x1 - x;
                        segments.push([(m(sx), sy), (m(ex), ey)]);
                    }
                }
                k += GAP * std::f64::consts::SQRT_2;
            }
        };
        match hatch {
            Hatch::Diagonal => diagonal(&mut segments, true),
            Hatch::BackDiagonal => diagonal(&mut segments, false),
            Hatch::Cross => {
                diagonal(&mut segments, true);
                diagonal(&mut segments, false);
            }
            Hatch::Horizontal => {
                let mut y = r.y0 + GAP / 2.0;
                while y < r.y1 {
                    segments.push([(r.x0, y), (r.x1, y)]);
                    y += GAP;
                }
            }
            Hatch::Vertical => {
                let mut x = r.x0 + GAP / 2.0;
                while x < r.x1 {
                    segments.push([(x, r.y0), (x, r.y1)]);
                    x += GAP;
                }
            }
        }
        for [a, b] in segments {
            self.line(&[a, b], color, 1.0)?;
        }
        Ok(())
    }

    pub fn line(&self, pts: &[(f64, f64)], color: RGBColor, width: f64) -> Result<(), ChartError> {
        let pts: Vec<(i32, i32)> = pts.iter().map(|&(x, y)| self.p(x, y)).collect();
        self.area
            .draw(&PathElement::new(pts, color.stroke_width(self.w(width))))?;
        Ok(())
    }

    /// A dashed straight line.
    pub fn dashed(
        &self,
        a: (f64, f64),
        b: (f64, f64),
        color: RGBColor,
        width: f64,
    ) -> Result<(), ChartError> {
        const DASH: f64 = 4.0;
        const GAP: f64 = 3.0;
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        if len == 0.0 {
            return Ok(());
        }
        let (ux, uy) = ((b.0 - a.0) / len, (b.1 - a.1) / len);
        let mut t = 0.0;
        while t < len {
            let e = (t + DASH).min(len);
            self.line(
                &[(a.0 + ux * t, a.1 + uy * t), (a.0 + ux * e, a.1 + uy * e)],
                color,
                width,
            )?;
            t += DASH + GAP;
        }
        Ok(())
    }

    pub fn outline(&self, r: Rect, color: RGBColor, width: f64) -> Result<(), ChartError> {
        self.line(
            &[
                (r.x0, r.y0),
                (r.x1, r.y0),
                (r.x1, r.y1),
                (r.x0, r.y1),
                (r.x0, r.y0),
            ],
            color,
            width,
        )
    }

    /// A horizontal error bar with end caps.
    pub fn interval(
        &self,
        x0: f64,
        x1: f64,
        y: f64,
        cap: f64,
        color: RGBColor,
        width: f64,
    ) -> Result<(), ChartError> {
        self.line(&[(x0, y), (x1, y)], color, width)?;
        self.line(&[(x0, y - cap), (x0, y + cap)], color, width)?;
        self.line(&[(x1, y - cap), (x1, y + cap)], color, width)
    }

    pub fn marker(
        &self,
        marker: Marker,
        x: f64,
        y: f64,
        r: f64,
        color: RGBColor,
        filled: bool,
    ) -> Result<(), ChartError> {
        let pts: Vec<(f64, f64)> = match marker {
            Marker::Circle => {
                let style = if filled {
                    color.filled()
                } else {
                    color.stroke_width(self.w(2.0))
                };
                if filled {
                    // A white ring keeps overlapping markers apart.
                    self.area.draw(&Circle::new(
                        self.p(x, y),
                        ((r + 1.0) * self.scale).round() as i32,
                        palette::WHITE.filled(),
                    ))?;
                }
                self.area.draw(&Circle::new(
                    self.p(x, y),
                    (r * self.scale).round() as i32,
                    style,
                ))?;
                return Ok(());
            }
            Marker::Diamond => vec![
                (x, y - r * 1.3),
                (x + r * 1.3, y),
                (x, y + r * 1.3),
                (x - r * 1.3, y),
            ],
            Marker::Triangle => vec![
                (x, y - r * 1.3),
                (x + r * 1.2, y + r * 0.8),
                (x - r * 1.2, y + r * 0.8),
            ],
            Marker::Square => vec![
                (x - r, y - r),
                (x + r, y - r),
                (x + r, y + r),
                (x - r, y + r),
            ],
        };
        if filled {
            let dev: Vec<(i32, i32)> = pts.iter().map(|&(a, b)| self.p(a, b)).collect();
            self.area.draw(&Polygon::new(dev, color.filled()))?;
        } else {
            let mut closed = pts.clone();
            closed.push(pts[0]);
            // White inside, so an outlined marker is not confused with what lies behind it.
            let dev: Vec<(i32, i32)> = pts.iter().map(|&(a, b)| self.p(a, b)).collect();
            self.area
                .draw(&Polygon::new(dev, palette::WHITE.filled()))?;
            self.line(&closed, color, 2.0)?;
        }
        Ok(())
    }

    /// Text anchored horizontally by `align` and vertically by `valign` (of the CJK
    /// ideographic box: about 0.88 em above and 0.12 em below the baseline).
    pub fn text(
        &self,
        x: f64,
        y: f64,
        text: &str,
        font: &Font,
        align: Align,
        valign: VAlign,
    ) -> Result<(), ChartError> {
        if text.is_empty() {
            return Ok(());
        }
        let em = font.size;
        let baseline = match valign {
            VAlign::Top => y + 0.88 * em,
            VAlign::Middle => y + 0.38 * em,
            VAlign::Bottom => y - 0.12 * em,
        };
        // Where each backend puts the baseline for an anchor at the top: SVG writes
        // dy="0.76em"; plotters' bitmap text puts it half the requested size down.
        let plotters_size = fonts::plotters_size(em, self.svg);
        let top = if self.svg {
            baseline - 0.76 * em
        } else {
            baseline - plotters_size / 2.0
        };
        let style = TextStyle::from((
            FAMILY,
            plotters_size * self.scale,
            if font.bold {
                FontStyle::Bold
            } else {
                FontStyle::Normal
            },
        ))
        .color(&font.color);
        if self.svg {
            // The viewer lays the text out: anchor it and let it.
            let h = match align {
                Align::Left => HPos::Left,
                Align::Center => HPos::Center,
                Align::Right => HPos::Right,
            };
            let style = style.pos(Pos::new(h, VPos::Top));
            self.area.draw_text(text, &style, self.p(x, top))?;
            return Ok(());
        }
        // Bitmap: one glyph at a time at its own position (see `fonts::glyph_offsets`).
        let (glyphs, width) = fonts::glyph_offsets(text, plotters_size * self.scale);
        let start = x * self.scale
            - match align {
                Align::Left => 0.0,
                Align::Center => width / 2.0,
                Align::Right => width,
            };
        let style = style.pos(Pos::new(HPos::Left, VPos::Top));
        let y = (top * self.scale).round() as i32;
        let mut buf = [0u8; 4];
        // The face has no bold: embolden by drawing again one device pixel to the right (as
        // browsers synthesise bold for the SVG).
        let strikes = if font.bold { 2 } else { 1 };
        for (c, dx) in glyphs {
            let gx = (start + dx).round() as i32;
            for k in 0..strikes {
                self.area
                    .draw_text(c.encode_utf8(&mut buf), &style, (gx + k, y))?;
            }
        }
        Ok(())
    }

    /// Text on a white patch, for text over lines or hatching.
    #[allow(clippy::too_many_arguments)]
    pub fn text_on_white(
        &self,
        x: f64,
        y: f64,
        text: &str,
        font: &Font,
        align: Align,
        valign: VAlign,
    ) -> Result<(), ChartError> {
        let w = font.width(text);
        let x0 = match align {
            Align::Left => x,
            Align::Center => x - w / 2.0,
            Align::Right => x - w,
        };
        let y0 = match valign {
            VAlign::Top => y,
            VAlign::Middle => y - font.size / 2.0,
            VAlign::Bottom => y - font.size,
        };
        self.rect(
            Rect::new(x0 - 3.0, y0 - 2.0, x0 + w + 3.0, y0 + font.size + 2.0),
            palette::WHITE,
        )?;
        self.text(x, y, text, font, align, valign)
    }

    /// A legend swatch in the box `r`.
    pub fn swatch(&self, r: Rect, swatch: &Swatch) -> Result<(), ChartError> {
        match *swatch {
            Swatch::Fill(f) => {
                self.fill(r, f)?;
                self.outline(r, palette::AXIS, 0.5)
            }
            Swatch::Band(f) => self.fill(r, f),
            Swatch::Marker {
                marker,
                color,
                filled,
            } => self.marker(marker, r.cx(), r.cy(), 4.5, color, filled),
            Swatch::Interval(color) => {
                self.interval(r.x0 + 1.0, r.x1 - 1.0, r.cy(), 4.0, color, 1.5)
            }
        }
    }

    /// Draws the legend at `(x, y)` wrapped into `width`; returns its height.
    pub fn legend(
        &self,
        x: f64,
        y: f64,
        width: f64,
        items: &[LegendItem],
    ) -> Result<f64, ChartError> {
        let (pos, height) = legend_layout(items, width);
        for (item, (dx, row)) in items.iter().zip(pos) {
            let top = y + row as f64 * LEGEND_ROW;
            let r = Rect::new(x + dx, top + 3.0, x + dx + SWATCH_W, top + LEGEND_ROW - 5.0);
            self.swatch(r, &item.swatch)?;
            self.text(
                r.x1 + 5.0,
                r.cy(),
                &item.label,
                &LEGEND_FONT,
                Align::Left,
                VAlign::Middle,
            )?;
        }
        Ok(height)
    }

    /// Title and subtitle lines from the top; returns the y below them.
    pub fn header(&self, width: f64, title: &str, subtitles: &[String]) -> Result<f64, ChartError> {
        let title_font = Font::new(TITLE_SIZE).bold();
        let mut y = MARGIN;
        self.text(
            MARGIN,
            y,
            &fit(title, &title_font, width - 2.0 * MARGIN),
            &title_font,
            Align::Left,
            VAlign::Top,
        )?;
        y += TITLE_SIZE + 6.0;
        let sub = Font::new(SUBTITLE_SIZE).color(palette::MUTED);
        for s in subtitles {
            self.text(
                MARGIN,
                y,
                &fit(s, &sub, width - 2.0 * MARGIN),
                &sub,
                Align::Left,
                VAlign::Top,
            )?;
            y += SUBTITLE_SIZE + 5.0;
        }
        Ok(y + 6.0)
    }

    /// Footnotes at the bottom of a chart of height `height`.
    pub fn notes(&self, width: f64, height: f64, notes: &[String]) -> Result<(), ChartError> {
        let mut y = height - notes_height(notes.len()) + 8.0;
        for n in notes {
            self.text(
                MARGIN,
                y,
                &fit(n, &SMALL, width - 2.0 * MARGIN),
                &SMALL,
                Align::Left,
                VAlign::Top,
            )?;
            y += SMALL_SIZE + 4.0;
        }
        Ok(())
    }

    /// A horizontal value axis at `y` (ticks below), with grid lines up to `grid_top`, tick
    /// labels from `label`, and a title centred under the axis. Returns the y below it.
    #[allow(clippy::too_many_arguments)]
    pub fn x_axis(
        &self,
        scale: &Scale,
        ticks: &[f64],
        y: f64,
        grid_top: f64,
        label: &dyn Fn(f64) -> String,
        title: &str,
    ) -> Result<f64, ChartError> {
        for &t in ticks {
            let x = scale.map(t);
            self.line(&[(x, grid_top), (x, y)], palette::GRID, 1.0)?;
        }
        self.line(&[(scale.r0, y), (scale.r1, y)], palette::AXIS, 1.0)?;
        let tick_font = Font::new(SMALL_SIZE).color(palette::MUTED);
        for &t in ticks {
            let x = scale.map(t);
            self.line(&[(x, y), (x, y + 4.0)], palette::AXIS, 1.0)?;
            self.text(
                x,
                y + 6.0,
                &label(t),
                &tick_font,
                Align::Center,
                VAlign::Top,
            )?;
        }
        let title_y = y + 6.0 + SMALL_SIZE + 6.0;
        self.text(
            (scale.r0 + scale.r1) / 2.0,
            title_y,
            title,
            &LABEL.color(palette::TEXT),
            Align::Center,
            VAlign::Top,
        )?;
        Ok(title_y + LABEL_SIZE + 4.0)
    }
}

/// Height an [`Canvas::x_axis`] takes below its line.
pub const X_AXIS_HEIGHT: f64 = 6.0 + SMALL_SIZE + 6.0 + LABEL_SIZE + 4.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        let s = Scale::new((0.0, 20.0), (0.0, 100.0));
        assert_eq!(s.ticks(5), [0.0, 5.0, 10.0, 15.0, 20.0]);
        let s = Scale::new((-0.3, 1.0), (0.0, 100.0));
        let t = s.ticks(7);
        let want = [-0.2, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len());
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        assert_eq!(s.ticks(6).len(), 6, "steps of 0.25");
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(ceil_to(0.31, 0.1), 0.4);
        assert!((ceil_to(0.3, 0.1) - 0.3).abs() < 1e-9);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(-0.001, 1), "0.0");
        assert_eq!(num(12.345, 2), "12.35");
        assert_eq!(pct(0.625), "63%");
        assert_eq!(num(2.5, 0), "3");
        assert_eq!(num(-2.5, 0), "-3");
    }

    #[test]
    fn long_text_is_shortened_to_fit() {
        let name = "汉滨区某某某某某某某某某某某某某某某某某某某某某某某管理服务中心";
        let short = fit(name, &LABEL, 120.0);
        assert!(short.ends_with('…'));
        assert!(LABEL.width(&short) <= 120.0);
        assert_eq!(fit("教体", &LABEL, 120.0), "教体");
    }
}
