//! Charts (图表) of a round's results, drawn with plotters: SVG for the web console and the
//! HTML reports, PNG for Word/WPS documents. Pure rendering: plain input structs in, an SVG
//! `String` or PNG bytes out; [`from_results`] builds the inputs from scoring results and
//! field progress.
//!
//! | family | chart |
//! |---|---|
//! | [`distribution`] | four-level distribution per dimension, diverging stacked bars |
//! | [`ranking`] | units by social-evaluation points with 95% intervals; a unit's position |
//! | [`profile`] | a unit's dimension means against the round's (dot plot) |
//! | [`response`] | final dispositions with RR1 per unit; completes per day |
//! | [`operators`] | operators' centred scores with intervals and level distributions |
//!
//! Every chart has a Chinese title, axis titles with units, n, a colour-blind-safe palette
//! ([`palette`]), and patterns, shapes or value labels wherever colour alone would carry
//! meaning, so that a greyscale print stays readable. Text uses the bundled font
//! ([`fonts`]); no chart needs the network or a system font.

pub mod canvas;
pub mod change;
pub mod distribution;
pub mod fonts;
pub mod from_results;
pub mod operators;
pub mod palette;
pub mod profile;
pub mod ranking;
pub mod response;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use canvas::Canvas;

/// Width of most charts, in CSS pixels: the printable width of an A4 page with 15 mm
/// margins (180 mm ≈ 680 px), so a chart prints at its natural size.
pub const WIDTH: u32 = 680;

/// PNG pixels per CSS pixel: 2 gives 192 dpi at the natural size, crisp in print.
pub const PNG_SCALE: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("图表绘制失败: {0}")]
    Draw(String),
    #[error("PNG 编码失败: {0}")]
    Png(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError::Draw(e.to_string())
    }
}

/// A chart: its size and how to draw it on a canvas of that size (logical pixels).
pub trait Chart {
    /// Width and height in CSS pixels.
    fn size(&self) -> (u32, u32);
    /// The title, also the SVG's accessible name and the PNG's Title.
    fn title(&self) -> &str;
    fn draw<DB: DrawingBackend>(&self, canvas: &Canvas<'_, DB>) -> Result<(), ChartError>;
}

/// The chart as a standalone SVG document (`<svg width height viewBox>` with a `<title>`).
pub fn svg<C: Chart>(chart: &C) -> Result<String, ChartError> {
    fonts::ensure_registered();
    let (w, h) = chart.size();
    let mut buf = String::with_capacity(64 * 1024);
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        draw_on(&root, chart, 1.0, true)?;
    }
    // Labels come from stored names: whatever they hold, the document stays XML (plotters
    // escapes markup, but a NUL or U+FFFE cannot be escaped at all, only left out).
    let svg = with_title(buf, chart.title());
    Ok(match crate::domain::text::xml_chars(&svg) {
        std::borrow::Cow::Borrowed(_) => svg,
        std::borrow::Cow::Owned(clean) => clean,
    })
}

/// The chart as PNG bytes, `scale` device pixels per CSS pixel (see [`PNG_SCALE`]); the PNG
/// records its density (96 × scale dpi) and its title.
pub fn png<C: Chart>(chart: &C, scale: u32) -> Result<Vec<u8>, ChartError> {
    fonts::ensure_registered();
    let scale = scale.max(1);
    let (w, h) = chart.size();
    let (pw, ph) = (w * scale, h * scale);
    let mut rgb = vec![255u8; pw as usize * ph as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (pw, ph)).into_drawing_area();
        draw_on(&root, chart, f64::from(scale), false)?;
    }
    encode_png(&rgb, pw, ph, scale, chart.title())
}

fn draw_on<DB: DrawingBackend, C: Chart>(
    root: &DrawingArea<DB, Shift>,
    chart: &C,
    scale: f64,
    svg: bool,
) -> Result<(), ChartError> {
    root.fill(&palette::WHITE)?;
    chart.draw(&Canvas::new(root, scale, svg))?;
    root.present()?;
    Ok(())
}

/// Adds `role="img"`, `aria-label` and a `<title>` to plotters' SVG.
fn with_title(svg: String, title: &str) -> String {
    let escaped = escape_xml(title);
    let Some(end) = svg.find('>') else {
        return svg;
    };
    let mut out = String::with_capacity(svg.len() + 2 * escaped.len() + 64);
    out.push_str(&svg[..end]);
    out.push_str(&format!(
        " role=\"img\" aria-label=\"{escaped}\">\n<title>{escaped}</title>"
    ));
    out.push_str(&svg[end + 1..]);
    out
}

pub(crate) fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Above this many pixels a PNG is compressed with the fast setting.
const LARGE_PNG_PIXELS: u64 = 8_000_000;

fn encode_png(rgb: &[u8], w: u32, h: u32, scale: u32, title: &str) -> Result<Vec<u8>, ChartError> {
    let err = |e: png::EncodingError| ChartError::Png(e.to_string());
    let mut out = Vec::with_capacity(rgb.len() / 8);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Measured on a typical chart (1360 × 900): default deflate without row filters makes
        // files 2.4× smaller than the fast setting (about 150 KB) for 8 ms more. Very tall
        // charts (a ranking of hundreds of units) take the fast setting with Paeth filtering
        // (1.3× smaller than unfiltered fast), so that one picture never takes seconds.
        if u64::from(w) * u64::from(h) <= LARGE_PNG_PIXELS {
            enc.set_compression(png::Compression::Default);
            enc.set_filter(png::FilterType::NoFilter);
        } else {
            enc.set_compression(png::Compression::Fast);
            enc.set_filter(png::FilterType::Paeth);
        }
        enc.set_adaptive_filter(png::AdaptiveFilterType::NonAdaptive);
        // 96 CSS px per inch → pixels per metre.
        let ppm = (f64::from(96 * scale) / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        // iTXt keeps the Chinese title (tEXt is Latin-1 only).
        enc.add_itxt_chunk("Title".into(), title.into())
            .map_err(err)?;
        enc.add_text_chunk("Software".into(), "sheping".into())
            .map_err(err)?;
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgb).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}
