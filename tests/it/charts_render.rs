//! Every chart rendered for a demo-like round and for edge cases (one unit, 200 units, a unit
//! with no completes, long unit names, a phone-only round): the SVG carries the Chinese
//! title, axis titles and n; the PNG decodes, has the promised size and is not blank.
//! Renders are also written to `target/chart-preview/` for a reviewer to look at.

use crate::common::charts_support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use charts_support::{Round, Spec, round};
use sheping::charts::{self, Chart, PNG_SCALE, from_results as fr};

struct Rendered {
    name: String,
    svg: String,
    png: Vec<u8>,
    size: (u32, u32),
}

fn render<C: Chart>(name: &str, chart: &C) -> Rendered {
    let svg = charts::svg(chart).unwrap_or_else(|e| panic!("{name}: {e}"));
    let png = charts::png(chart, PNG_SCALE).unwrap_or_else(|e| panic!("{name}: {e}"));
    Rendered {
        name: name.to_string(),
        svg,
        png,
        size: chart.size(),
    }
}

/// Every chart of the round, and the per-unit charts of `units`.
fn render_all(r: &Round, units: &[usize]) -> Vec<Rendered> {
    let doc = &r.doc;
    let mut out = vec![
        render("round-distribution", &fr::round_distribution(doc)),
        render("ranking", &fr::ranking(doc, None)),
        render("dispositions", &fr::dispositions(doc)),
        render(
            "completes-per-day",
            &fr::completes_per_day(doc, r.days.clone()),
        ),
        render("operators", &fr::operators(doc, &r.interviews)),
    ];
    for &u in units {
        out.push(render(
            &format!("unit{u}-distribution"),
            &fr::unit_distribution(doc, u),
        ));
        out.push(render(
            &format!("unit{u}-profile"),
            &fr::unit_profile(doc, u),
        ));
        out.push(render(&format!("unit{u}-position"), &fr::position(doc, u)));
    }
    out
}

fn preview_dir(case: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/chart-preview")
        .join(case);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text content of every `<text>` element.
fn svg_texts(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find("<text") {
        rest = &rest[start..];
        let open_end = rest.find('>').unwrap();
        let close = rest.find("</text>").expect("closed <text>");
        out.push(rest[open_end + 1..close].trim().to_string());
        rest = &rest[close + 7..];
    }
    out
}

fn check_svg(r: &Rendered, expect: &[&str]) {
    let svg = &r.svg;
    let (w, h) = r.size;
    assert!(svg.starts_with("<svg"), "{}: not an SVG", r.name);
    assert!(
        svg.contains(&format!("viewBox=\"0 0 {w} {h}\"")),
        "{}: viewBox",
        r.name
    );
    assert!(svg.contains("<title>"), "{}: accessible title", r.name);
    assert!(
        svg.trim_end().ends_with("</svg>"),
        "{}: unterminated",
        r.name
    );
    assert_eq!(
        svg.matches("<text").count(),
        svg.matches("</text>").count(),
        "{}: unbalanced text elements",
        r.name
    );
    for bad in ["NaN", "inf\"", ">inf<"] {
        assert!(!svg.contains(bad), "{}: contains {bad}", r.name);
    }
    let texts = svg_texts(svg).join("\n");
    assert!(
        texts.contains("n = ") || texts.contains("n="),
        "{}: no n in\n{texts}",
        r.name
    );
    for e in expect {
        assert!(texts.contains(e), "{}: missing {e:?} in\n{texts}", r.name);
    }
    // The charts name the bundled font first, with Chinese fallbacks.
    assert!(svg.contains("font-family=\"&apos;WenQuanYi Micro Hei&apos;"));
}

fn check_png(r: &Rendered) {
    let decoder = png::Decoder::new(std::io::Cursor::new(&r.png));
    let mut reader = decoder
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let (w, h) = (r.size.0 * PNG_SCALE, r.size.1 * PNG_SCALE);
    assert_eq!((info.width, info.height), (w, h), "{}: PNG size", r.name);
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", r.name);
    let px: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let distinct: BTreeSet<[u8; 3]> = px.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "{}: {} colours",
        r.name,
        distinct.len()
    );
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / px.len() as f64;
    assert!(
        ink > 0.02 && ink < 0.9,
        "{}: {ink:.3} of pixels drawn",
        r.name
    );
    // The title's band (top margin 14 px, 16 px glyphs) has dark glyph pixels: the font
    // rendered Chinese text rather than nothing.
    let row = |y: u32| &px[(y * w) as usize..((y + 1) * w) as usize];
    let dark = (14 * PNG_SCALE..30 * PNG_SCALE)
        .flat_map(row)
        .filter(|p| p.iter().all(|&c| c < 90))
        .count();
    assert!(dark > 200, "{}: title band has {dark} dark pixels", r.name);
    // Density is recorded, so Word/WPS insert the picture at its natural size.
    let dims = reader.info().pixel_dims.expect("pHYs");
    assert_eq!(dims.unit, png::Unit::Meter);
    assert_eq!(
        dims.xppu,
        (96.0 * f64::from(PNG_SCALE) / 0.0254).round() as u32
    );
}

fn save(case: &str, rendered: &[Rendered]) {
    let dir = preview_dir(case);
    for r in rendered {
        std::fs::write(dir.join(format!("{}.svg", r.name)), &r.svg).unwrap();
        std::fs::write(dir.join(format!("{}.png", r.name)), &r.png).unwrap();
    }
}

fn find<'a>(all: &'a [Rendered], name: &str) -> &'a Rendered {
    all.iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

const DIMENSIONS: [&str; 5] = [
    "职能职责履行",
    "办事效率",
    "服务质量",
    "作风形象",
    "社会反响",
];

#[test]
fn demo_like_round_renders_every_chart_with_chinese_labels() {
    let r = round(&Spec::default());
    let first = 0;
    let last = r.doc.units.len() - 1;
    let all = render_all(&r, &[first, last]);
    save("demo", &all);
    for x in &all {
        check_png(x);
    }
    let mut dist = vec![
        "各维度评价分布",
        "回答占比(%)",
        "满意",
        "比较满意",
        "基本满意",
        "不满意",
    ];
    dist.extend(DIMENSIONS);
    check_svg(find(&all, "round-distribution"), &dist);
    check_svg(
        find(&all, "ranking"),
        &[
            "社会评价得分排名",
            "社会评价得分(分,满分 20",
            "汉滨区教育体育局",
            "教体",
            "住建",
            "电话调查(实心)",
            "现场评价(斜线)",
            "后3名概率",
            "名次(区间)",
        ],
    );
    check_svg(
        find(&all, "dispositions"),
        &[
            "处置结果与应答率",
            "代表人数(人)",
            "应答率RR1",
            "完成访问(I)",
            "拒访/中断(R)",
        ],
    );
    check_svg(
        find(&all, "completes-per-day"),
        &["每日完成访问数", "完成访问(份)", "日期(月-日", "11-01"],
    );
    check_svg(
        find(&all, "operators"),
        &[
            "话务员效应检查",
            "中心化得分(分)",
            "A01",
            "A08",
            "Holm p",
            "回答占比(%)",
        ],
    );
    let name = &r.doc.units[first].unit;
    let mut unit_dist = vec![name.as_str(), "本单位", "全部单位", "回答占比(%)"];
    unit_dist.extend(DIMENSIONS);
    check_svg(find(&all, "unit0-distribution"), &unit_dist);
    let mut profile = vec![
        name.as_str(),
        "平均得分(分,满分 100)",
        "综合(加权)",
        "全部参评单位",
    ];
    profile.extend(DIMENSIONS);
    check_svg(find(&all, "unit0-profile"), &profile);
    check_svg(
        find(&all, "unit0-position"),
        &[
            name.as_str(),
            "在全部参评单位中的位置",
            "社会评价得分",
            "第 ",
        ],
    );
    // The operator the generator biased is flagged, and the chart says so.
    assert!(
        r.doc
            .quality
            .operator_effect
            .flagged_operators
            .contains(&"A03".to_string())
    );
    assert!(
        svg_texts(&find(&all, "operators").svg)
            .iter()
            .any(|t| t.contains('*'))
    );
}

#[test]
fn one_unit() {
    let r = round(&Spec {
        units: 1,
        ..Spec::default()
    });
    let all = render_all(&r, &[0]);
    save("one-unit", &all);
    for x in &all {
        check_png(x);
    }
    check_svg(find(&all, "ranking"), &["汉滨区教育体育局", "1"]);
    check_svg(find(&all, "unit0-position"), &["第 1 名 / 1"]);
}

#[test]
fn two_hundred_units() {
    let r = round(&Spec {
        units: 200,
        respondents: 30,
        replicates: 200,
        ..Spec::default()
    });
    let all = render_all(&r, &[0, 199]);
    save("200-units", &all);
    for x in &all {
        check_png(x);
    }
    let ranking = find(&all, "ranking");
    check_svg(ranking, &["社会评价得分排名", "n = 200 个单位参与排名"]);
    // Every unit has its row: 200 rank numbers in the ranking.
    let ranks: BTreeSet<u32> = svg_texts(&ranking.svg)
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    assert!(ranks.contains(&200) || ranks.iter().filter(|r| **r >= 190).count() > 0);
    assert!(
        ranking.size.1 > 200 * 14,
        "rows need room: {:?}",
        ranking.size
    );
    check_svg(find(&all, "dispositions"), &["200 个单位"]);
}

#[test]
fn unit_without_completes() {
    let r = round(&Spec {
        units: 8,
        zero_units: vec![3],
        ..Spec::default()
    });
    assert_eq!(r.doc.units[3].phone.completes, 0);
    let all = render_all(&r, &[3]);
    save("no-completes", &all);
    for x in &all {
        check_png(x);
    }
    check_svg(find(&all, "unit3-distribution"), &["无完成访问", "n=0"]);
    check_svg(find(&all, "unit3-profile"), &["无完成访问"]);
    check_svg(find(&all, "unit3-position"), &["未排名:无完成访问"]);
    check_svg(find(&all, "ranking"), &["未排名:无完成访问"]);
}

#[test]
fn long_unit_names_are_shortened_not_overflowing() {
    let r = round(&Spec {
        units: 12,
        long_names: true,
        ..Spec::default()
    });
    let long = r.doc.units[0].unit.clone();
    assert!(long.chars().count() > 30, "{long}");
    let all = render_all(&r, &[0]);
    save("long-names", &all);
    for x in &all {
        check_png(x);
    }
    for x in &all {
        // No text element starts outside the picture.
        for cap in x.svg.split("<text x=\"").skip(1) {
            let v: f64 = cap.split('"').next().unwrap().parse().unwrap();
            assert!(v >= 0.0 && v <= f64::from(x.size.0), "{}: x = {v}", x.name);
        }
    }
    let ranking = svg_texts(&find(&all, "ranking").svg);
    assert!(
        ranking.iter().any(|t| t.ends_with('…')),
        "names shortened with …"
    );
    assert!(!ranking.contains(&long), "the full name would overflow");
    // Titles with a long name are shortened too, yet begin with the name.
    let title = svg_texts(&find(&all, "unit0-profile").svg)[0].clone();
    assert!(
        title.starts_with("汉滨区") && title.ends_with('…'),
        "{title}"
    );
}

#[test]
fn phone_only_round_ranks_by_phone_points() {
    let r = round(&Spec {
        units: 10,
        onsite: false,
        ..Spec::default()
    });
    let all = render_all(&r, &[0]);
    save("phone-only", &all);
    check_svg(
        find(&all, "ranking"),
        &[
            "电话调查得分排名",
            "电话调查得分(分,满分 10;尚无单位有现场评价)",
        ],
    );
    assert!(!find(&all, "ranking").svg.contains("现场评价(斜线)"));
    for x in &all {
        check_png(x);
    }
}

#[test]
fn rendering_is_deterministic() {
    let r = round(&Spec {
        units: 5,
        ..Spec::default()
    });
    let a = render("ranking", &fr::ranking(&r.doc, Some(2)));
    let b = render("ranking", &fr::ranking(&r.doc, Some(2)));
    assert_eq!(a.svg, b.svg);
    assert_eq!(a.png, b.png);
}
