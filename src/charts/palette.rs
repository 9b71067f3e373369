//! Colours and fill patterns: colour-blind-safe, and readable when printed in greyscale.
//!
//! - Categories (sectors, unit kinds, dispositions): the Okabe–Ito palette, distinguishable
//!   under the common colour-vision deficiencies.
//! - Ordered levels (满意 … 不满意): ColorBrewer RdBu, a diverging scheme marked safe for
//!   colour-blind readers, whose lightness is monotonic on each side of the midpoint so the
//!   order survives greyscale printing.
//! - Wherever colour separates two things that could sit side by side, a hatch pattern or a
//!   text label separates them too (see each chart).

use plotters::style::RGBColor;

pub const WHITE: RGBColor = RGBColor(255, 255, 255);
pub const BLACK: RGBColor = RGBColor(0, 0, 0);
/// Body text.
pub const TEXT: RGBColor = RGBColor(34, 34, 34);
/// Secondary text: subtitles, notes, tick labels (7.6:1 contrast on white).
pub const MUTED: RGBColor = RGBColor(85, 85, 85);
/// Axis lines.
pub const AXIS: RGBColor = RGBColor(120, 120, 120);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(224, 224, 224);
/// Band behind highlighted rows.
pub const BAND: RGBColor = RGBColor(235, 235, 235);

/// Okabe & Ito (2008), "Color Universal Design".
pub mod okabe_ito {
    use plotters::style::RGBColor;
    pub const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
    pub const SKY_BLUE: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
    pub const BLUISH_GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
    pub const YELLOW: RGBColor = RGBColor(0xF0, 0xE4, 0x42);
    pub const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
    pub const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
    pub const REDDISH_PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
    pub const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);
}

/// Colours for groups (sectors, unit kinds), in order of first appearance; they cycle after
/// seven, so charts always print the group's name beside its colour.
pub fn categorical(i: usize) -> RGBColor {
    use okabe_ito::*;
    const ORDER: [RGBColor; 7] = [
        BLUE,
        ORANGE,
        BLUISH_GREEN,
        VERMILLION,
        REDDISH_PURPLE,
        SKY_BLUE,
        GREY,
    ];
    ORDER[i % ORDER.len()]
}

/// ColorBrewer RdBu (11 classes), red (bad) to blue (good).
const RDBU: [RGBColor; 11] = [
    RGBColor(0x67, 0x00, 0x1F),
    RGBColor(0xB2, 0x18, 0x2B),
    RGBColor(0xD6, 0x60, 0x4D),
    RGBColor(0xF4, 0xA5, 0x82),
    RGBColor(0xFD, 0xDB, 0xC7),
    RGBColor(0xF7, 0xF7, 0xF7),
    RGBColor(0xD1, 0xE5, 0xF0),
    RGBColor(0x92, 0xC5, 0xDE),
    RGBColor(0x43, 0x93, 0xC3),
    RGBColor(0x21, 0x66, 0xAC),
    RGBColor(0x05, 0x30, 0x61),
];

/// Colours for a scale's levels, best first, given which levels count as satisfied (a
/// prefix of the best-first order in every survey that makes sense; any order works).
/// Satisfied levels take blues, darker the better; the others reds, darker the worse.
pub fn levels(satisfied: &[bool]) -> Vec<RGBColor> {
    let n_sat = satisfied.iter().filter(|s| **s).count();
    let n_unsat = satisfied.len() - n_sat;
    // Blues from the darkest outward-most shade, one step per level; with few levels skip
    // the palest so that even "basically satisfied" is visibly tinted.
    let blues: Vec<RGBColor> = match n_sat {
        0 => vec![],
        1 => vec![RDBU[9]],
        2 => vec![RDBU[9], RDBU[7]],
        3 => vec![RDBU[9], RDBU[8], RDBU[6]],
        4 => vec![RDBU[10], RDBU[9], RDBU[8], RDBU[6]],
        n => (0..n).map(|i| RDBU[10 - (i * 4 / (n - 1))]).collect(),
    };
    // Reds from the mildest: with one level, a strong red so that dissatisfaction stands out.
    let reds: Vec<RGBColor> = match n_unsat {
        0 => vec![],
        1 => vec![RDBU[1]],
        2 => vec![RDBU[2], RDBU[0]],
        3 => vec![RDBU[3], RDBU[2], RDBU[0]],
        n => (0..n).map(|i| RDBU[4 - (i * 4 / (n - 1))]).collect(),
    };
    let (mut b, mut r) = (0, 0);
    satisfied
        .iter()
        .map(|&s| {
            if s {
                b += 1;
                blues[b - 1]
            } else {
                r += 1;
                reds[r - 1]
            }
        })
        .collect()
}

/// Relative luminance, 0–255 (Rec. 709 weights on the sRGB values; enough to choose a
/// legible text colour and to check greyscale separation).
pub fn luminance(c: RGBColor) -> f64 {
    0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2)
}

/// WCAG relative luminance, 0–1 (linearised sRGB).
pub fn relative_luminance(c: RGBColor) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.040_45 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2)
}

/// WCAG contrast ratio of two colours (1–21).
pub fn contrast(a: RGBColor, b: RGBColor) -> f64 {
    let (la, lb) = (relative_luminance(a), relative_luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Black or white, whichever has the higher contrast on `background`.
pub fn text_on(background: RGBColor) -> RGBColor {
    if contrast(WHITE, background) > contrast(TEXT, background) {
        WHITE
    } else {
        TEXT
    }
}

/// `c` mixed with white: `amount` 0 keeps `c`, 1 gives white.
pub fn tint(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// Hatch patterns drawn over a fill, so that areas stay distinct in greyscale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hatch {
    /// `/` lines.
    Diagonal,
    /// `\` lines.
    BackDiagonal,
    /// Both diagonals.
    Cross,
    Horizontal,
    Vertical,
}

/// A fill: a colour, optionally hatched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fill {
    pub color: RGBColor,
    pub hatch: Option<Hatch>,
}

impl Fill {
    pub const fn solid(color: RGBColor) -> Fill {
        Fill { color, hatch: None }
    }
    pub const fn hatched(color: RGBColor, hatch: Hatch) -> Fill {
        Fill {
            color,
            hatch: Some(hatch),
        }
    }
    /// The colour of the hatch lines: contrasting with the fill.
    pub fn hatch_color(&self) -> RGBColor {
        let l = luminance(self.color);
        if l < 140.0 {
            tint(self.color, 0.75)
        } else if l > 225.0 {
            // A pale background band: a quiet hatch that text can sit on.
            RGBColor(175, 175, 175)
        } else {
            RGBColor(60, 60, 60)
        }
    }
}

/// Fills of the four (or n) levels, best first: the dissatisfied levels are hatched, so
/// they differ from the satisfied levels of similar grey on a greyscale print.
pub fn level_fills(satisfied: &[bool]) -> Vec<Fill> {
    levels(satisfied)
        .into_iter()
        .zip(satisfied)
        .map(|(c, &s)| {
            if s {
                Fill::solid(c)
            } else {
                Fill::hatched(c, Hatch::Diagonal)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_colours_darken_outward_on_each_side() {
        let sat = [true, true, true, false];
        let c = levels(&sat);
        assert_eq!(c.len(), 4);
        // Satisfied side: best darkest, then lighter towards the midpoint.
        assert!(luminance(c[0]) < luminance(c[1]) && luminance(c[1]) < luminance(c[2]));
        // Greyscale steps of the satisfied side are at least 35 apart (of 255).
        assert!(luminance(c[1]) - luminance(c[0]) > 35.0);
        assert!(luminance(c[2]) - luminance(c[1]) > 35.0);
        // The dissatisfied level is a red, hatched.
        assert!(c[3].0 > c[3].2);
        assert_eq!(level_fills(&sat)[3].hatch, Some(Hatch::Diagonal));
        for n_sat in 0..=6 {
            for n_unsat in 0..=5 {
                let s: Vec<bool> = (0..n_sat + n_unsat).map(|i| i < n_sat).collect();
                assert_eq!(levels(&s).len(), s.len());
            }
        }
    }

    #[test]
    fn text_colour_contrasts() {
        assert_eq!(text_on(RGBColor(0x21, 0x66, 0xAC)), WHITE);
        assert_eq!(text_on(RGBColor(0xD1, 0xE5, 0xF0)), TEXT);
        assert_eq!(text_on(RGBColor(0xB2, 0x18, 0x2B)), WHITE);
        // Every level colour carries its label at WCAG AA (4.5:1) or better.
        for c in levels(&[true, true, true, false]) {
            assert!(contrast(text_on(c), c) >= 4.5, "{c:?}");
        }
        assert_eq!(tint(BLACK, 1.0), WHITE);
    }
}
