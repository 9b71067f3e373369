//! The font every chart uses, compiled into the binary so that a PNG never depends on the
//! fonts installed where it is rendered.
//!
//! WenQuanYi Micro Hei (文泉驿微米黑, Apache-2.0; see `web/static/fonts/README.md`). plotters'
//! `ab_glyph` engine reads the first face of the `.ttc`, the proportional "Micro Hei".

use std::sync::{Once, OnceLock};

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont};
use plotters::style::{FontStyle, register_font};

/// The font file, as shipped by Debian's `fonts-wqy-microhei`.
pub static FONT_BYTES: &[u8] = include_bytes!("../../web/static/fonts/wqy-microhei.ttc");

/// The family the charts name. plotters writes it verbatim into SVG `font-family`
/// attributes, so it is a CSS font stack: a standalone SVG opened on a machine without
/// WenQuanYi still picks a Chinese sans-serif font. For PNG it is only a lookup key.
pub const FAMILY: &str =
    "'WenQuanYi Micro Hei', 'Microsoft YaHei', 'PingFang SC', 'Noto Sans CJK SC', sans-serif";

/// The same stack for CSS (HTML pages that embed the SVG charts).
pub const CSS_FAMILY: &str = "\"WenQuanYi Micro Hei\", \"Microsoft YaHei\", \"PingFang SC\", \
     \"Noto Sans CJK SC\", \"Source Han Sans SC\", sans-serif";

/// `(ascent − descent) / units-per-em` of the bundled face. plotters' bitmap text scales
/// glyphs so that ascent − descent equals the requested size, while its SVG output writes
/// `font-size = size / 1.24`; [`plotters_size`] corrects both so that one em is the size a
/// chart asks for, in PNG and SVG alike.
const HEIGHT_PER_EM: f64 = (1918.0 + 483.0) / 2048.0;
/// plotters' SVG backend divides the size by this.
const SVG_DIVISOR: f64 = 1.24;

static INIT: Once = Once::new();

/// Registers the bundled font under [`FAMILY`] and `sans-serif` (plotters' default), regular
/// and bold (the face has no bold; plotters falls back to it, SVG viewers embolden). Cheap
/// after the first call; every chart calls it before drawing or measuring text.
pub fn ensure_registered() {
    INIT.call_once(|| {
        for family in [FAMILY, "sans-serif"] {
            for style in [FontStyle::Normal, FontStyle::Bold] {
                // The bytes are compiled in: failing to parse them is a build defect.
                assert!(
                    register_font(family, style, FONT_BYTES).is_ok(),
                    "the bundled font web/static/fonts/wqy-microhei.ttc does not parse"
                );
            }
        }
    });
}

/// The size to hand plotters for text whose em is `em` pixels.
pub(crate) fn plotters_size(em: f64, svg: bool) -> f64 {
    if svg {
        em * SVG_DIVISOR
    } else {
        em * HEIGHT_PER_EM
    }
}

/// The bundled face, parsed once (ab_glyph reads the first face of the collection).
fn face() -> &'static FontRef<'static> {
    static FACE: OnceLock<FontRef<'static>> = OnceLock::new();
    FACE.get_or_init(|| {
        FontRef::try_from_slice(FONT_BYTES)
            .expect("the bundled font web/static/fonts/wqy-microhei.ttc does not parse")
    })
}

/// Width in pixels of `text` set at `em` pixels, as the bundled font lays it out (the face
/// has no bold; browsers embolden without changing advances).
pub fn text_width(text: &str, em: f64, _bold: bool) -> f64 {
    let font = face().as_scaled(PxScale::from((em * HEIGHT_PER_EM) as f32));
    let mut width = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            width += font.kern(p, id);
        }
        width += font.h_advance(id);
        prev = Some(id);
    }
    f64::from(width)
}

/// Where to put each visible glyph of `text` set with plotters at `size` (device pixels):
/// the x offset from the start of the text at which plotters must draw that one character.
///
/// plotters' ab_glyph renderer starts each glyph's bitmap at the pen position, ignoring the
/// glyph's left side bearing, so characters drawn as one string sit unevenly. Drawing them
/// one by one at pen + bearing places them as a browser does. Returns the offsets and the
/// total advance.
pub(crate) fn glyph_offsets(text: &str, size: f64) -> (Vec<(char, f64)>, f64) {
    let font = face().as_scaled(PxScale::from(size as f32));
    let mut out = Vec::with_capacity(text.len());
    let mut pen = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(pen, 0.0));
        if let Some(outline) = face().outline_glyph(glyph) {
            out.push((c, f64::from(outline.px_bounds().min.x)));
        }
        pen += font.h_advance(id);
        prev = Some(id);
    }
    (out, f64::from(pen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_glyphs_are_one_em_wide() {
        let w = text_width("满意", 20.0, false);
        assert!((w - 40.0).abs() <= 1.0, "two CJK glyphs at 20 px: {w}");
        let ascii = text_width("n=45", 20.0, false);
        // Latin glyphs are narrower than CJK ones (about half an em each).
        assert!(ascii > 20.0 && ascii < 60.0, "{ascii}");
    }

    #[test]
    fn the_font_is_the_wenquanyi_face() {
        // "WenQuanYi Micro Hei" is the family name in the first face's name table.
        let needle: Vec<u8> = "WenQuanYi Micro Hei"
            .encode_utf16()
            .flat_map(|u| u.to_be_bytes())
            .collect();
        assert!(FONT_BYTES.windows(needle.len()).any(|w| w == needle));
        assert_eq!(&FONT_BYTES[..4], b"ttcf");
    }
}
