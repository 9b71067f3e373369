//! The ranking: every unit's points as a bar split into its phone and on-site parts (solid
//! and hatched), coloured by sector with the sector's name printed, the 95% interval as an
//! error bar, the rank with its bootstrap interval, and the bootstrap's probability of being
//! among the last k — rows where that is likely are shaded, and uncertain ones say so.
//!
//! [`PositionChart`] is the compact version for one unit's feedback page: where the unit
//! stands among all units on one axis.

use plotters::prelude::DrawingBackend;

use super::canvas::{
    self, Align, Canvas, Font, LABEL, LegendItem, MARGIN, Marker, Rect, SMALL, Scale, Swatch,
    VAlign, X_AXIS_HEIGHT,
};
use super::palette::{self, Fill, Hatch, okabe_ito};
use super::{Chart, ChartError, WIDTH};

#[derive(Debug, Clone, PartialEq)]
pub struct RankUnit {
    pub name: String,
    /// Sector or unit kind: colours the bar, printed beside the name.
    pub group: String,
    /// Phone part, in points.
    pub phone: Option<f64>,
    /// On-site part, in points.
    pub onsite: Option<f64>,
    /// The value ranked on (social points, or phone points when no unit has on-site data).
    pub total: Option<f64>,
    pub ci95: Option<[f64; 2]>,
    pub rank: Option<u32>,
    pub rank_ci95: Option<[u32; 2]>,
    /// Bootstrap probability of being among the last `bottom_k`.
    pub p_bottom: Option<f64>,
    /// Why a unit has no rank (shown instead of a bar).
    pub note: Option<String>,
    /// Outlined (the unit a feedback page is about).
    pub highlight: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankingChart {
    pub title: String,
    pub subtitles: Vec<String>,
    /// Axis title with unit, e.g. "社会评价得分(分,满分 20)".
    pub x_label: String,
    pub max_points: f64,
    pub phone_label: String,
    pub onsite_label: String,
    pub bottom_k: u32,
    pub units: Vec<RankUnit>,
    pub notes: Vec<String>,
}

/// p_bottom at or above this shades the row.
pub const LIKELY_BOTTOM: f64 = 0.5;
/// Between these, the bottom place is called uncertain.
pub const UNCERTAIN: (f64, f64) = (0.05, 0.95);

const NAME_MAX: f64 = 170.0;
/// Room for a sector name of 13 characters ("上年度考核优秀单位所在系统") in full.
const GROUP_MAX: f64 = 160.0;
/// The bars get at least this much; a chart whose columns leave less grows wider (it scales
/// to its box through the viewBox, so a wider chart is never cut).
const MIN_PLOT: f64 = 200.0;
const PART_GREY: plotters::style::RGBColor = plotters::style::RGBColor(110, 110, 110);

fn onsite_fill(c: plotters::style::RGBColor) -> Fill {
    Fill::hatched(palette::tint(c, 0.55), Hatch::BackDiagonal)
}

/// Groups in order of first appearance.
fn groups(units: &[RankUnit]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for u in units {
        if !out.contains(&u.group.as_str()) {
            out.push(&u.group);
        }
    }
    out
}

fn row_height(n: usize) -> f64 {
    match n {
        0..=60 => 20.0,
        61..=300 => 16.0,
        _ => 14.0,
    }
}

struct Layout {
    width: f64,
    legend_y: f64,
    head_y: f64,
    plot_top: f64,
    row_h: f64,
    plot_bottom: f64,
    height: f64,
    rank_w: f64,
    name_w: f64,
    group_w: f64,
    value_w: f64,
    p_w: f64,
}

impl RankingChart {
    fn has_onsite(&self) -> bool {
        self.units.iter().any(|u| u.onsite.is_some())
    }

    fn legend(&self) -> Vec<LegendItem> {
        let mut items: Vec<LegendItem> = groups(&self.units)
            .iter()
            .enumerate()
            .map(|(i, g)| LegendItem::new(Swatch::Fill(Fill::solid(palette::categorical(i))), *g))
            .collect();
        items.push(LegendItem::new(
            Swatch::Fill(Fill::solid(PART_GREY)),
            format!("{}(实心)", self.phone_label),
        ));
        if self.has_onsite() {
            items.push(LegendItem::new(
                Swatch::Fill(onsite_fill(PART_GREY)),
                format!("{}(斜线)", self.onsite_label),
            ));
        }
        items.push(LegendItem::new(
            Swatch::Interval(palette::TEXT),
            "得分95%置信区间",
        ));
        items.push(LegendItem::new(
            Swatch::Band(Fill::solid(palette::BAND)),
            format!("灰底:后{}名概率≥50%", self.bottom_k),
        ));
        items
    }

    /// Units in drawing order: by rank, unranked last, ties in input order.
    fn ordered(&self) -> Vec<&RankUnit> {
        let mut v: Vec<(usize, &RankUnit)> = self.units.iter().enumerate().collect();
        v.sort_by_key(|(i, u)| (u.rank.is_none(), u.rank.unwrap_or(0), *i));
        v.into_iter().map(|(_, u)| u).collect()
    }

    fn layout(&self) -> Layout {
        let n = self.units.len().max(1);
        let rank_w = LABEL.bold().width(&n.to_string()) + SMALL.width(&format!("({n}–{n})")) + 6.0;
        let rank_w = rank_w.max(SMALL.width("名次(区间)")) + 8.0;
        let name_w = self
            .units
            .iter()
            .map(|u| LABEL.width(&u.name))
            .fold(SMALL.width("单位"), f64::max)
            .min(NAME_MAX)
            + 8.0;
        let group_w = self
            .units
            .iter()
            .map(|u| SMALL.width(&u.group) + 14.0)
            .fold(0.0, f64::max)
            .min(GROUP_MAX)
            + 6.0;
        let value_w = LABEL.width("00.00") + 8.0;
        let p_w = SMALL.width(&format!("后{}名概率", self.bottom_k)) + 4.0;
        // The columns `draw` lays out left to right, with the bars between them.
        let columns = MARGIN + rank_w + name_w + group_w + 4.0 + 8.0 + value_w + 6.0 + p_w + MARGIN;
        let w = f64::from(WIDTH).max((columns + MIN_PLOT).ceil());
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let head_y = legend_y + legend_h + 8.0;
        let plot_top = head_y + SMALL.size + 8.0;
        let row_h = row_height(self.units.len());
        let plot_bottom = plot_top + self.units.len().max(1) as f64 * row_h + 4.0;
        let height = plot_bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        Layout {
            width: w,
            legend_y,
            head_y,
            plot_top,
            row_h,
            plot_bottom,
            height,
            rank_w,
            name_w,
            group_w,
            value_w,
            p_w,
        }
    }
}

impl Chart for RankingChart {
    fn size(&self) -> (u32, u32) {
        let l = self.layout();
        (l.width as u32, l.height.ceil() as u32)
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn draw<DB: DrawingBackend>(&self, c: &Canvas<'_, DB>) -> Result<(), ChartError> {
        let l = self.layout();
        let w = l.width;
        c.header(w, &self.title, &self.subtitles)?;
        c.legend(MARGIN, l.legend_y, w - 2.0 * MARGIN, &self.legend())?;
        let group_names = groups(&self.units);
        let x_rank = MARGIN;
        let x_name = x_rank + l.rank_w;
        let x_group = x_name + l.name_w;
        let x_plot0 = x_group + l.group_w + 4.0;
        let x_p = w - MARGIN;
        let x_value = x_p - l.p_w - 6.0;
        let x_plot1 = x_value - l.value_w - 8.0;
        let scale = Scale::new((0.0, self.max_points), (x_plot0, x_plot1));
        let ticks = scale.ticks(5);

        // Row bands first, under everything.
        let ordered = self.ordered();
        for (i, u) in ordered.iter().enumerate() {
            let top = l.plot_top + i as f64 * l.row_h;
            if u.p_bottom.is_some_and(|p| p >= LIKELY_BOTTOM) {
                c.rect(
                    Rect::new(MARGIN - 4.0, top, w - MARGIN + 4.0, top + l.row_h),
                    palette::BAND,
                )?;
            }
        }
        c.x_axis(
            &scale,
            &ticks,
            l.plot_bottom,
            l.plot_top,
            &|t| canvas::num(t, if self.max_points <= 10.0 { 1 } else { 0 }),
            &self.x_label,
        )?;
        // Column heads.
        let head = SMALL;
        let hy = l.head_y;
        c.text(x_rank, hy, "名次(区间)", &head, Align::Left, VAlign::Top)?;
        c.text(x_name, hy, "单位", &head, Align::Left, VAlign::Top)?;
        c.text(x_group, hy, "系统", &head, Align::Left, VAlign::Top)?;
        c.text(x_value, hy, "得分", &head, Align::Right, VAlign::Top)?;
        c.text(
            x_p,
            hy,
            &format!("后{}名概率", self.bottom_k),
            &head,
            Align::Right,
            VAlign::Top,
        )?;

        let bar_h = (l.row_h - 6.0).max(6.0);
        let small_rows = l.row_h < 18.0;
        let name_font = if small_rows { Font::new(11.0) } else { LABEL };
        for (i, u) in ordered.iter().enumerate() {
            let top = l.plot_top + i as f64 * l.row_h;
            let cy = top + l.row_h / 2.0;
            let gi = group_names.iter().position(|g| *g == u.group).unwrap_or(0);
            let color = palette::categorical(gi);
            if let Some(r) = u.rank {
                let rank_font = name_font.bold();
                c.text(
                    x_rank,
                    cy,
                    &r.to_string(),
                    &rank_font,
                    Align::Left,
                    VAlign::Middle,
                )?;
                if let Some([a, b]) = u.rank_ci95 {
                    let rx = x_rank + rank_font.width(&r.to_string()) + 3.0;
                    let t = if a == b {
                        format!("({a})")
                    } else {
                        format!("({a}–{b})")
                    };
                    c.text(rx, cy, &t, &SMALL, Align::Left, VAlign::Middle)?;
                }
            } else {
                c.text(x_rank, cy, "—", &name_font, Align::Left, VAlign::Middle)?;
            }
            let nf = if u.highlight {
                name_font.bold()
            } else {
                name_font
            };
            c.text(
                x_name,
                cy,
                &canvas::fit(&u.name, &nf, l.name_w - 8.0),
                &nf,
                Align::Left,
                VAlign::Middle,
            )?;
            c.rect(Rect::new(x_group, cy - 4.0, x_group + 8.0, cy + 4.0), color)?;
            c.text(
                x_group + 12.0,
                cy,
                &canvas::fit(&u.group, &SMALL, l.group_w - 18.0),
                &SMALL,
                Align::Left,
                VAlign::Middle,
            )?;

            let y0 = cy - bar_h / 2.0;
            let y1 = cy + bar_h / 2.0;
            match (u.total, u.phone) {
                (Some(total), Some(phone)) => {
                    let xp = scale.map(phone);
                    c.fill(Rect::new(scale.map(0.0), y0, xp, y1), Fill::solid(color))?;
                    if let Some(on) = u.onsite {
                        let xt = scale.map(phone + on);
                        c.fill(Rect::new(xp, y0, xt, y1), onsite_fill(color))?;
                    }
                    c.outline(
                        Rect::new(scale.map(0.0), y0, scale.map(total), y1),
                        palette::AXIS,
                        0.5,
                    )?;
                    if let Some([a, b]) = u.ci95 {
                        c.interval(
                            scale.map(a),
                            scale.map(b),
                            cy,
                            (bar_h / 2.0 - 1.0).min(4.0),
                            palette::TEXT,
                            1.5,
                        )?;
                    }
                    c.text(
                        x_value,
                        cy,
                        &canvas::num(total, 2),
                        &name_font,
                        Align::Right,
                        VAlign::Middle,
                    )?;
                }
                _ => {
                    let note = u.note.as_deref().unwrap_or("无得分");
                    c.text(
                        scale.map(0.0) + 4.0,
                        cy,
                        &format!("未排名:{note}"),
                        &SMALL,
                        Align::Left,
                        VAlign::Middle,
                    )?;
                }
            }
            if let Some(p) = u.p_bottom
                && p >= 0.005
            {
                let uncertain = (UNCERTAIN.0..UNCERTAIN.1).contains(&p);
                let shown = if p < 0.01 {
                    "<1%".to_string()
                } else if p > 0.99 && p < 1.0 {
                    ">99%".to_string()
                } else {
                    canvas::pct(p)
                };
                let t = if uncertain {
                    format!("{shown} 不确定")
                } else {
                    shown
                };
                let f = if p >= LIKELY_BOTTOM {
                    SMALL.color(palette::TEXT).bold()
                } else {
                    SMALL
                };
                c.text(x_p, cy, &t, &f, Align::Right, VAlign::Middle)?;
            }
            if u.highlight {
                c.outline(
                    Rect::new(
                        MARGIN - 4.0,
                        top + 0.5,
                        w - MARGIN + 4.0,
                        top + l.row_h - 0.5,
                    ),
                    palette::TEXT,
                    1.5,
                )?;
            }
        }
        c.notes(w, l.height, &self.notes)?;
        Ok(())
    }
}

/// One unit among all: every ranked unit as a tick on the points axis, the unit as a large
/// dot with its interval, the last-k zone shaded.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionChart {
    pub title: String,
    pub subtitles: Vec<String>,
    pub x_label: String,
    pub max_points: f64,
    /// Ranked values of all units (the unit's included).
    pub values: Vec<f64>,
    pub unit_label: String,
    pub unit: Option<f64>,
    pub unit_ci95: Option<[f64; 2]>,
    /// The text above the unit's dot, e.g. "第 5 名 / 30".
    pub unit_text: String,
    pub bottom_k: u32,
    pub notes: Vec<String>,
}

const STRIP_H: f64 = 56.0;

impl PositionChart {
    fn legend(&self) -> Vec<LegendItem> {
        vec![
            LegendItem::new(
                Swatch::Marker {
                    marker: Marker::Circle,
                    color: okabe_ito::BLUE,
                    filled: true,
                },
                self.unit_label.clone(),
            ),
            LegendItem::new(Swatch::Interval(okabe_ito::BLUE), "95%置信区间"),
            LegendItem::new(
                Swatch::Fill(Fill::solid(palette::AXIS)),
                "其他参评单位(竖线)",
            ),
            LegendItem::new(
                Swatch::Band(Fill::hatched(palette::BAND, Hatch::Diagonal)),
                format!("后{}名所在区间", self.bottom_k),
            ),
        ]
    }

    fn layout(&self) -> (f64, f64, f64, f64) {
        let w = f64::from(WIDTH);
        let legend_y = canvas::header_height(self.subtitles.len());
        let (_, legend_h) = canvas::legend_layout(&self.legend(), w - 2.0 * MARGIN);
        let top = legend_y + legend_h + 8.0;
        let bottom = top + STRIP_H;
        let height = bottom + X_AXIS_HEIGHT + 4.0 + canvas::notes_height(self.notes.len());
        (legend_y, top, bottom, height)
    }

    fn domain(&self) -> (f64, f64) {
        let lowest = self
            .values
            .iter()
            .copied()
            .chain(self.unit_ci95.map(|c| c[0]))
            .chain(self.unit)
            .fold(self.max_points, f64::min);
        let step = canvas::nice_step(self.max_points / 10.0);
        let lo = ((lowest - step / 2.0) / step).floor() * step;
        (lo.max(0.0).min(self.max_points - step), self.max_points)
    }
}

impl Chart for PositionChart {
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
        let scale = Scale::new(self.domain(), (MARGIN + 10.0, w - MARGIN - 10.0));
        // The last-k zone: up to the k-th lowest value.
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        if let Some(&kth) = sorted.get((self.bottom_k as usize).saturating_sub(1))
            && sorted.len() > self.bottom_k as usize
        {
            c.fill(
                Rect::new(scale.r0, top, scale.map(kth) + 1.0, bottom),
                Fill::hatched(palette::BAND, Hatch::Diagonal),
            )?;
        }
        let ticks = scale.ticks(6);
        c.x_axis(
            &scale,
            &ticks,
            bottom,
            top,
            &|t| canvas::num(t, 1),
            &self.x_label,
        )?;
        let mid = bottom - 18.0;
        for &v in &self.values {
            let x = scale.map(v);
            c.line(&[(x, mid - 9.0), (x, mid + 9.0)], palette::AXIS, 1.5)?;
        }
        if let Some([a, b]) = self.unit_ci95 {
            c.interval(scale.map(a), scale.map(b), mid, 7.0, okabe_ito::BLUE, 2.0)?;
        }
        if let Some(u) = self.unit {
            let x = scale.map(u);
            c.marker(Marker::Circle, x, mid, 7.0, okabe_ito::BLUE, true)?;
            let f = LABEL.bold().color(okabe_ito::BLUE);
            let text = format!("{} {}", canvas::num(u, 2), self.unit_text);
            let tw = f.width(&text);
            let tx = (x - tw / 2.0).clamp(MARGIN, w - MARGIN - tw);
            c.text_on_white(tx, mid - 12.0, &text, &f, Align::Left, VAlign::Bottom)?;
        } else {
            c.text_on_white(
                scale.r0 + 4.0,
                mid - 12.0,
                &format!("{}:{}", self.unit_label, self.unit_text),
                &SMALL,
                Align::Left,
                VAlign::Bottom,
            )?;
        }
        c.notes(w, height, &self.notes)?;
        Ok(())
    }
}
