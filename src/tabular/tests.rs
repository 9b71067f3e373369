use super::*;
use calamine::{Data, Reader, Xlsx};
use proptest::prelude::*;

fn opts() -> ReadOptions {
    ReadOptions::default()
}

fn read(bytes: &[u8], name: &str) -> Table {
    match read_table_bytes(bytes, name, &opts()) {
        Ok(t) => t,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn read_err(bytes: &[u8], name: &str, o: &ReadOptions) -> TableError {
    match read_table_bytes(bytes, name, o) {
        Ok(t) => panic!("{name}: expected an error, got {t:?}"),
        Err(e) => e,
    }
}

fn write_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for u in s.encode_utf16() {
        out.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

fn lines(t: &Table) -> Vec<usize> {
    t.rows.iter().map(|r| r.line).collect()
}

const ROSTER: &str =
    "参评单位,姓名,联系电话\r\n区教体局,王小明,13912345678\r\n区住建局,李娜,0915-3212345\r\n";

fn check_roster(t: &Table) {
    assert_eq!(t.headers, ["参评单位", "姓名", "联系电话"]);
    assert_eq!(lines(t), [2, 3]);
    assert_eq!(t.rows[0].cells, ["区教体局", "王小明", "13912345678"]);
    assert_eq!(t.rows[1].get(1), "李娜");
    assert_eq!(t.rows[1].get(2), "0915-3212345");
    assert_eq!(t.rows[1].get(9), "");
}

// ----- encodings -----

#[test]
fn utf8_with_bom_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(ROSTER.as_bytes());
    let path = write_file(&dir, "名单.csv", &bytes);
    let t = read_table_file(&path, &opts()).unwrap();
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Utf8));
    assert_eq!(t.format, Format::Csv);
}

#[test]
fn utf8_without_bom_lf() {
    let t = read(ROSTER.replace("\r\n", "\n").as_bytes(), "名单.CSV");
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Utf8));
}

#[test]
fn gbk_with_crlf_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _, bad) = encoding_rs::GBK.encode(ROSTER);
    assert!(!bad);
    assert!(std::str::from_utf8(&bytes).is_err());
    let path = write_file(&dir, "roster.csv", &bytes);
    let t = read_table_file(&path, &opts()).unwrap();
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Gb18030));
}

#[test]
fn gb18030_only_characters_decode() {
    // 㐀 (CJK Ext. A) exists in GB18030 but not GBK; rare-name characters like it turn up.
    let text = "姓名,电话\n王㐀,1\n";
    let (bytes, _, bad) = encoding_rs::GB18030.encode(text);
    assert!(!bad);
    let t = read(&bytes, "a.csv");
    assert_eq!(t.rows[0].cells, ["王㐀", "1"]);
}

#[test]
fn utf16le_unicode_text_is_tab_separated() {
    let dir = tempfile::tempdir().unwrap();
    let text = ROSTER.replace(',', "\t");
    let path = write_file(&dir, "名单.txt", &utf16(&text, false));
    let t = read_table_file(&path, &opts()).unwrap();
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Utf16Le));
    assert_eq!(t.format, Format::Tsv);
    // Staff rename Excel's "Unicode text" to .csv; the tab is still sniffed.
    let t = read(&utf16(&text, false), "名单.csv");
    check_roster(&t);
    assert_eq!(t.format, Format::Tsv);
}

#[test]
fn utf16be_with_bom() {
    let t = read(&utf16(ROSTER, true), "名单.csv");
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Utf16Be));
    assert_eq!(t.format, Format::Csv);
}

#[test]
fn txt_with_commas_is_sniffed_as_csv() {
    let t = read(ROSTER.as_bytes(), "名单.txt");
    check_roster(&t);
    assert_eq!(t.format, Format::Csv);
    let t = read(ROSTER.replace(',', "\t").as_bytes(), "名单.tsv");
    check_roster(&t);
    assert_eq!(t.format, Format::Tsv);
}

#[test]
fn explicit_encoding_override() {
    let (gbk, _, _) = encoding_rs::GBK.encode(ROSTER);
    let mut o = opts();
    o.encoding = Encoding::parse("GBK");
    check_roster(&read_table_bytes(&gbk, "a.csv", &o).unwrap());

    // Forcing UTF-8 on GBK bytes is an error pointing at the first bad line.
    o.encoding = Some(Encoding::Utf8);
    let e = read_err(&gbk, "a.csv", &o);
    assert!(
        matches!(
            e,
            TableError::Decode {
                line: 1,
                encoding: Encoding::Utf8,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("第 1 行"), "{e}");

    // UTF-16 without a BOM is only readable when named.
    let no_bom = &utf16(ROSTER, false)[2..];
    o.encoding = Encoding::parse("utf-16");
    let t = read_table_bytes(no_bom, "a.csv", &o).unwrap();
    check_roster(&t);
    assert_eq!(t.encoding, Some(Encoding::Utf16Le));

    // An override also wins over a BOM-less UTF-8 file that happens to be valid.
    o.encoding = Some(Encoding::Gb18030);
    let t = read_table_bytes(b"a,b\n1,2\n", "a.csv", &o).unwrap();
    assert_eq!(t.encoding, Some(Encoding::Gb18030));
}

#[test]
fn encoding_names() {
    for (name, enc) in [
        ("utf-8", Encoding::Utf8),
        ("UTF8", Encoding::Utf8),
        ("utf-16", Encoding::Utf16Le),
        ("utf-16le", Encoding::Utf16Le),
        ("UTF-16BE", Encoding::Utf16Be),
        ("gbk", Encoding::Gb18030),
        ("gb2312", Encoding::Gb18030),
        (" GB18030 ", Encoding::Gb18030),
    ] {
        assert_eq!(Encoding::parse(name), Some(enc), "{name}");
        assert_eq!(Encoding::parse(enc.name()), Some(enc));
    }
    assert_eq!(Encoding::parse("big5"), None);
    assert_eq!(Encoding::Gb18030.to_string(), "GB18030");
}

#[test]
fn damaged_utf8_is_not_misread_as_gbk() {
    let mut bytes = "姓名,电话\n张三,1\n李四,2\n".as_bytes().to_vec();
    bytes.extend(b"\xFF\n");
    let e = read_err(&bytes, "a.csv", &opts());
    assert!(
        matches!(
            e,
            TableError::Decode {
                line: 4,
                encoding: Encoding::Utf8,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn undecodable_bytes_give_unknown_encoding() {
    // 0xFF is neither UTF-8 nor GB18030.
    let e = read_err(b"a,b\n\xFF\xFF,1\n", "a.csv", &opts());
    assert!(
        matches!(e, TableError::UnknownEncoding { line: 2, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("另存为"), "{e}");
}

// ----- line structure -----

#[test]
fn lone_cr_line_ends() {
    let t = read("姓名,电话\r张三,1\r\r李四,2\r".as_bytes(), "a.csv");
    assert_eq!(t.headers, ["姓名", "电话"]);
    assert_eq!(lines(&t), [2, 4]);
    assert_eq!(t.rows[1].cells, ["李四", "2"]);
}

#[test]
fn quoted_multiline_cell_keeps_physical_lines() {
    let text =
        "姓名,备注\n张三,\"第一行\n第二行\r\n第三行, 带逗号\"\"引号\"\"\"\n李四,无\n\n王五,\"\"\n";
    let t = read(text.as_bytes(), "a.csv");
    assert_eq!(lines(&t), [2, 5, 7]);
    assert_eq!(t.rows[0].get(1), "第一行\n第二行\r\n第三行, 带逗号\"引号\"");
    assert_eq!(t.rows[1].cells, ["李四", "无"]);
    assert_eq!(t.rows[2].cells, ["王五", ""]);
}

#[test]
fn blank_lines_are_skipped_but_counted() {
    let text = "\n \r\n姓名,电话\n\n张三,1\n  ,\t, \n\u{3000},\u{a0}\n李四,2";
    let t = read(text.as_bytes(), "a.csv");
    assert_eq!(t.headers, ["姓名", "电话"]);
    assert_eq!(lines(&t), [5, 8]);
    assert_eq!(t.rows[1].cells, ["李四", "2"]);
}

#[test]
fn header_cells_are_trimmed() {
    let text = "\u{feff}\u{3000}参评单位\u{a0},  姓名 ,\u{feff}联系电话\t,,\n1,2,3\n";
    let t = read(text.as_bytes(), "a.csv");
    assert_eq!(t.headers, ["参评单位", "姓名", "联系电话"]);
    // Data cells are kept as written; trimming them is the caller's business.
    let t = read(" a ,b\n x ,y\n".as_bytes(), "a.csv");
    assert_eq!(t.headers, ["a", "b"]);
    assert_eq!(t.rows[0].cells, [" x ", "y"]);
}

#[test]
fn ragged_rows() {
    let text = "a,b,c\n1\n1,2,3,,\n1,2,3,,extra\n,,,\n";
    let t = read(text.as_bytes(), "a.csv");
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.rows[0].cells, ["1", "", ""]);
    assert_eq!(t.rows[1].cells, ["1", "2", "3"]);
    assert_eq!(t.rows[2].cells, ["1", "2", "3", "", "extra"]);
    assert!(t.rows.iter().all(|r| r.cells.len() >= t.headers.len()));
}

#[test]
fn quotes_inside_unquoted_cells_are_literal() {
    let t = read("a,b\nab\"c\"d,x\n".as_bytes(), "a.csv");
    assert_eq!(t.rows[0].cells, ["ab\"c\"d", "x"]);
    // Padding after a closing quote is tolerated.
    let t = read("a,b\n\"x\"  ,y\n".as_bytes(), "a.csv");
    assert_eq!(t.rows[0].cells, ["x", "y"]);
}

#[test]
fn header_only_and_empty_files() {
    let t = read(b"a,b\r\n", "a.csv");
    assert_eq!(t.headers, ["a", "b"]);
    assert!(t.rows.is_empty());
    for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\r\n , \r\n\n"] {
        let e = read_err(bytes, "a.csv", &opts());
        assert!(matches!(e, TableError::NoHeader { .. }), "{e:?}");
    }
}

// ----- errors and limits -----

#[test]
fn unclosed_quote_is_an_error_at_its_line() {
    let text = "姓名,备注\n张三,1\n李四,\"没有结束\n王五,2\n";
    let e = read_err(text.as_bytes(), "名单.csv", &opts());
    assert!(
        matches!(e, TableError::UnclosedQuote { line: 3, column: 2, ref header, .. } if header == "备注"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("名单.csv") && msg.contains("第 3 行") && msg.contains("B 列“备注”"),
        "{msg}"
    );
}

#[test]
fn text_after_closing_quote_is_an_error() {
    let text = "姓名,备注\n\n\"他说\"好\"\",1\n";
    let e = read_err(text.as_bytes(), "a.csv", &opts());
    assert!(
        matches!(
            e,
            TableError::TextAfterQuote {
                line: 3,
                column: 1,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn too_large() {
    let mut o = opts();
    o.max_bytes = 10;
    let e = read_err(ROSTER.as_bytes(), "a.csv", &o);
    assert!(matches!(e, TableError::TooLarge { max: 10, .. }), "{e:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(&dir, "a.xlsx", ROSTER.as_bytes());
    let e = read_table_file(&path, &o).unwrap_err();
    assert!(matches!(e, TableError::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("拆分"), "{e}");
}

#[test]
fn cell_too_long() {
    let mut o = opts();
    o.max_cell_chars = 5;
    let text = "编号,姓名\n1,张三\n2,欧阳娜娜娜娜\n";
    let e = read_err(text.as_bytes(), "a.csv", &o);
    assert!(
        matches!(
            e,
            TableError::CellTooLong {
                line: 3,
                column: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("第 3 行第 2 列(B 列“姓名”)") && msg.contains("5 个字符"),
        "{msg}"
    );
    // Exactly at the limit is fine, also inside quotes.
    let t = read_table_bytes("a\n\"12345\"\n".as_bytes(), "a.csv", &o).unwrap();
    assert_eq!(t.rows[0].cells, ["12345"]);
    let e = read_err("a\n\"12\n345\"\n".as_bytes(), "a.csv", &o);
    assert!(
        matches!(e, TableError::CellTooLong { line: 2, .. }),
        "{e:?}"
    );
}

#[test]
fn too_many_rows() {
    let mut o = opts();
    o.max_rows = 2;
    let ok = read_table_bytes(b"a\n1\n\n2\n", "a.csv", &o).unwrap();
    assert_eq!(ok.rows.len(), 2);
    let e = read_err(b"a\n1\n\n2\n3\n", "a.csv", &o);
    assert!(
        matches!(
            e,
            TableError::TooManyRows {
                line: 5,
                max: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn too_many_columns() {
    let wide = vec!["x"; MAX_COLUMNS + 1].join(",");
    let e = read_err(format!("a\n{wide}\n").as_bytes(), "a.csv", &opts());
    assert!(
        matches!(
            e,
            TableError::TooManyColumns {
                line: 2,
                column: 201,
                max: 200,
                ..
            }
        ),
        "{e:?}"
    );
    // Trailing empty cells beyond the cap (formatted-but-empty Excel columns) are ignored.
    let trailing = ",".repeat(10_000);
    let t = read(format!("a{trailing}\n1{trailing}\n").as_bytes(), "a.csv");
    assert_eq!(t.headers, ["a"]);
    assert_eq!(t.rows[0].cells, ["1"]);
}

#[test]
fn unsupported_extensions() {
    for name in ["a.doc", "a", ".csv", "a.pdf", "dir.csv/file"] {
        let e = read_err(b"a,b\n", name, &opts());
        assert!(
            matches!(e, TableError::UnsupportedFormat { .. }),
            "{name}: {e:?}"
        );
    }
    // Browser-style Windows paths still give the extension.
    let t = read(b"a,b\n1,2\n", "C:\\fakepath\\名单.csv");
    assert_eq!(t.headers, ["a", "b"]);
}

#[test]
fn corrupt_workbook_is_a_chinese_error() {
    let e = read_err(b"PK\x03\x04garbage", "a.xlsx", &opts());
    assert!(matches!(e, TableError::Workbook { .. }), "{e:?}");
    assert!(e.to_string().contains("另存为 .xlsx"), "{e}");
    let e = read_err(
        b"<html><body><table><tr><td>1</td></tr></table></body></html>",
        "export.xls",
        &opts(),
    );
    assert!(matches!(e, TableError::HtmlDisguised { .. }), "{e:?}");
}

#[test]
fn text_named_xls_is_read_as_text() {
    let t = read(ROSTER.replace(',', "\t").as_bytes(), "export.xls");
    check_roster(&t);
    assert_eq!(t.format, Format::Tsv);
}

// ----- workbooks -----

fn xlsx_fixture(dir: &tempfile::TempDir, name: &str, first_row: u32) -> std::path::PathBuf {
    use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Workbook};
    let mut wb = Workbook::new();
    // A hidden sheet in front must not be taken for the data.
    let hidden = wb.add_worksheet();
    hidden.set_name("参数").unwrap();
    hidden.write_string(0, 0, "不是数据").unwrap();
    hidden.set_hidden(true);
    let ws = wb.add_worksheet();
    ws.set_name("名单").unwrap();
    // rust_xlsxwriter un-hides the first sheet unless another one is active.
    ws.set_active(true);
    let date = XFormat::new().set_num_format("yyyy-mm-dd");
    let datetime = XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let time = XFormat::new().set_num_format("hh:mm");
    let col0 = if first_row == 0 { 0 } else { 1 };
    let headers = [
        " 参评单位 ",
        "姓名",
        "联系电话",
        "得分",
        "日期",
        "时间",
        "通话时刻",
        "有效",
        "大数",
    ];
    for (c, h) in headers.iter().enumerate() {
        ws.write_string(first_row, col0 + c as u16, *h).unwrap();
    }
    let r = first_row + 1;
    ws.write_string(r, col0, "区教体局").unwrap();
    ws.write_string(r, col0 + 1, "张三").unwrap();
    ws.write_number(r, col0 + 2, 13912345678.0).unwrap();
    ws.write_number(r, col0 + 3, 85.25).unwrap();
    let d = ExcelDateTime::from_ymd(2022, 3, 15).unwrap();
    ws.write_datetime_with_format(r, col0 + 4, &d, &date)
        .unwrap();
    let dt = ExcelDateTime::from_ymd(2022, 3, 15)
        .unwrap()
        .and_hms(14, 30, 5)
        .unwrap();
    ws.write_datetime_with_format(r, col0 + 5, &dt, &datetime)
        .unwrap();
    let t = ExcelDateTime::from_hms(9, 5, 0).unwrap();
    ws.write_datetime_with_format(r, col0 + 6, &t, &time)
        .unwrap();
    ws.write_boolean(r, col0 + 7, true).unwrap();
    ws.write_number(r, col0 + 8, 999_999_999_999_999.0).unwrap();
    // A blank row (only formatting), then a short row and a row with an extra cell.
    ws.write_blank(r + 1, col0, &date).unwrap();
    ws.write_string(r + 2, col0, "区住建局").unwrap();
    ws.write_string(r + 3, col0 + 1, "李四").unwrap();
    ws.write_string(r + 3, col0 + 10, "备注外").unwrap();
    let path = dir.path().join(name);
    wb.save(&path).unwrap();
    path
}

#[test]
fn xlsx_cells_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = xlsx_fixture(&dir, "名单.xlsx", 0);
    let t = read_table_file(&path, &opts()).unwrap();
    assert_eq!(t.format, Format::Xlsx);
    assert_eq!(t.encoding, None);
    assert_eq!(
        t.headers,
        [
            "参评单位",
            "姓名",
            "联系电话",
            "得分",
            "日期",
            "时间",
            "通话时刻",
            "有效",
            "大数"
        ]
    );
    assert_eq!(lines(&t), [2, 4, 5]);
    assert_eq!(
        t.rows[0].cells,
        [
            "区教体局",
            "张三",
            "13912345678",
            "85.25",
            "2022-03-15",
            "2022-03-15 14:30:05",
            "09:05:00",
            "TRUE",
            "999999999999999"
        ]
    );
    assert_eq!(t.rows[1].get(0), "区住建局");
    assert_eq!(t.rows[1].cells.len(), 9);
    assert_eq!(t.rows[2].cells.len(), 11);
    assert_eq!(t.rows[2].get(10), "备注外");
    assert_eq!(t.find_column(&["联系电话"]), Some(2));
}

#[test]
fn xlsx_header_on_row_3_keeps_sheet_row_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = xlsx_fixture(&dir, "名单.xlsm", 2);
    let bytes = std::fs::read(&path).unwrap();
    let t = read_table_bytes(&bytes, "名单.xlsm", &opts()).unwrap();
    // The table starts in column B: column A stays, with an empty header.
    assert_eq!(t.headers[0], "");
    assert_eq!(t.headers[1], "参评单位");
    assert_eq!(lines(&t), [4, 6, 7]);
    assert_eq!(t.rows[0].get(3), "13912345678");
    assert_eq!(t.find_column(&["姓名"]), Some(2));
    assert!(
        t.unknown_columns(&[&["参评单位", "姓名"]])
            .contains(&"得分".to_string())
    );
}

#[test]
fn xlsx_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = xlsx_fixture(&dir, "a.xlsx", 2);
    let mut o = opts();
    o.max_cell_chars = 8;
    let e = read_table_file(&path, &o).unwrap_err();
    // "13912345678" in D4 is the first cell over 8 characters.
    assert!(
        matches!(e, TableError::CellTooLong { line: 4, column: 4, ref header, .. } if header == "联系电话"),
        "{e:?}"
    );
    let mut o = opts();
    o.max_rows = 1;
    let e = read_table_file(&path, &o).unwrap_err();
    assert!(
        matches!(e, TableError::TooManyRows { line: 6, .. }),
        "{e:?}"
    );

    use rust_xlsxwriter::Workbook;
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "a").unwrap();
    ws.write_string(1, 300, "far").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let e = read_err(&bytes, "a.xlsx", &opts());
    assert!(
        matches!(
            e,
            TableError::TooManyColumns {
                line: 2,
                column: 301,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("KO 列"), "{e}");
}

#[test]
fn xlsx_renamed_to_csv_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = xlsx_fixture(&dir, "a.xlsx", 0);
    let bytes = std::fs::read(path).unwrap();
    let t = read(&bytes, "名单.csv");
    assert_eq!(t.format, Format::Xlsx);
    assert_eq!(t.rows[0].get(2), "13912345678");
}

#[test]
fn legacy_and_encrypted_workbooks_are_refused_with_advice() {
    // .xls (and encrypted .xlsx) are OLE compound files; .ods is a zip.
    let mut ole = OLE_MAGIC.to_vec();
    ole.extend([0u8; 600]);
    for name in ["a.xls", "a.xlsx", "a.csv"] {
        let e = read_err(&ole, name, &opts());
        assert!(
            matches!(e, TableError::LegacyWorkbook { .. }),
            "{name}: {e:?}"
        );
        assert!(e.to_string().contains("另存为”Excel 工作簿(.xlsx)"), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let xlsx = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
    let e = read_err(&xlsx, "a.ods", &opts());
    assert!(matches!(e, TableError::LegacyWorkbook { .. }), "{e:?}");
}

#[test]
fn cell_text_formats() {
    assert_eq!(format_number(13912345678.0), "13912345678");
    assert_eq!(format_number(999_999_999_999_999.0), "999999999999999");
    assert_eq!(format_number(1e15), "1000000000000000");
    assert_eq!(format_number(1e20), "100000000000000000000");
    assert_eq!(format_number(-0.0), "0");
    assert_eq!(format_number(-3.0), "-3");
    assert_eq!(format_number(0.1), "0.1");
    assert_eq!(format_number(85.5), "85.5");
    assert_eq!(format_number(1e-7), "0.0000001");
    assert_eq!(cell_text(&Data::Int(42)), "42");
    assert_eq!(cell_text(&Data::Bool(false)), "FALSE");
    assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
    assert_eq!(
        cell_text(&Data::Error(calamine::CellErrorType::Div0)),
        "#DIV/0!"
    );
    assert_eq!(cell_text(&Data::Empty), "");
    assert_eq!(
        cell_text(&Data::DateTimeIso("2022-03-15T00:00:00".into())),
        "2022-03-15"
    );
    assert_eq!(
        cell_text(&Data::DateTimeIso("2022-03-15T08:01:02".into())),
        "2022-03-15 08:01:02"
    );
    use calamine::{ExcelDateTime, ExcelDateTimeType};
    let dur = ExcelDateTime::new(1.5, ExcelDateTimeType::TimeDelta, false);
    assert_eq!(cell_text(&Data::DateTime(dur)), "36:00:00");
    let d1904 = ExcelDateTime::new(0.0, ExcelDateTimeType::DateTime, true);
    assert_eq!(cell_text(&Data::DateTime(d1904)), "1904-01-01");
    for v in [f64::NAN, f64::INFINITY, -1e300, 1e300] {
        let dt = ExcelDateTime::new(v, ExcelDateTimeType::DateTime, false);
        let _ = cell_text(&Data::DateTime(dt));
        let dt = ExcelDateTime::new(v, ExcelDateTimeType::TimeDelta, false);
        let _ = cell_text(&Data::DateTime(dt));
        let _ = cell_text(&Data::Float(v));
    }
}

// ----- columns -----

#[test]
fn column_lookup() {
    let t = Table {
        headers: [
            "参评单位",
            "姓　名",
            "Phone",
            "联系电话（手机）",
            "",
            "备注",
            "PHONE",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
        encoding: None,
        format: Format::Csv,
    };
    assert_eq!(t.find_column(&["姓名"]), Some(1));
    assert_eq!(t.find_column(&["phone"]), Some(2));
    assert_eq!(t.find_column(&["联系电话(手机)"]), Some(3));
    // Aliases are tried in order.
    assert_eq!(t.find_column(&["不存在", "备注", "参评单位"]), Some(5));
    assert_eq!(t.find_column(&["", "电话"]), None);
    assert_eq!(t.find_columns(&["phone"]), [2, 6]);
    assert_eq!(
        t.unknown_columns(&[&["参评单位", "单位"], &["姓名"], &["phone", "电话"]]),
        ["联系电话（手机）", "备注"]
    );
    assert_eq!(column_letter(0), "A");
    assert_eq!(column_letter(25), "Z");
    assert_eq!(column_letter(26), "AA");
    assert_eq!(column_letter(16_383), "XFD");
}

// ----- writing -----

fn sample_rows() -> Vec<Vec<String>> {
    [
        vec!["区教体局", "张三", "13912345678", "85.5"],
        vec!["区住建局,二科", "李\"四\"", "0915-3212345", "-1.5"],
        vec![
            "多行\r\n备注",
            "=HYPERLINK(\"x\")",
            "+86 139 1234 5678",
            "007",
        ],
        vec!["@SUM(A1)", "-2+cmd|' /C calc'!A0", "-", "1.50"],
    ]
    .into_iter()
    .map(|r| r.into_iter().map(String::from).collect())
    .collect()
}

const OUT_HEADERS: [&str; 4] = ["参评单位", "姓名", "联系电话", "得分"];

fn expected_back() -> Vec<Vec<String>> {
    let mut rows = sample_rows();
    rows[2][1] = "'=HYPERLINK(\"x\")".into();
    rows[3][0] = "'@SUM(A1)".into();
    rows[3][1] = "'-2+cmd|' /C calc'!A0".into();
    rows
}

#[test]
fn write_csv_bom_crlf_and_round_trip() {
    let mut out = Vec::new();
    write_csv(&mut out, &OUT_HEADERS, sample_rows(), true).unwrap();
    assert!(out.starts_with(b"\xEF\xBB\xBF\xE5"), "{:?}", &out[..8]);
    let text = std::str::from_utf8(&out[3..]).unwrap();
    assert!(text.starts_with("参评单位,姓名,联系电话,得分\r\n区教体局,张三,13912345678,85.5\r\n"));
    assert!(
        text.contains("\"区住建局,二科\",\"李\"\"四\"\"\""),
        "{text}"
    );
    let t = read(&out, "export.csv");
    assert_eq!(t.headers, OUT_HEADERS);
    assert_eq!(t.encoding, Some(Encoding::Utf8));
    let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
    assert_eq!(back, expected_back());
    // The multi-line cell makes the following row start one line later.
    assert_eq!(lines(&t), [2, 3, 4, 6]);

    let mut plain = Vec::new();
    write_csv(&mut plain, &["a"], vec![vec!["1".to_string()]], false).unwrap();
    assert_eq!(plain, b"a\r\n1\r\n");
}

#[test]
fn write_xlsx_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("导出.xlsx");
    write_xlsx(&path, "满意度", &OUT_HEADERS, sample_rows()).unwrap();
    let t = read_table_file(&path, &opts()).unwrap();
    assert_eq!(t.headers, OUT_HEADERS);
    let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
    assert_eq!(back, expected_back());
    assert_eq!(lines(&t), [2, 3, 4, 5]);

    // Numbers are real numbers; look-alikes that would lose digits stay text.
    let mut wb: Xlsx<_> = calamine::open_workbook(&path).unwrap();
    assert_eq!(wb.sheet_names(), ["满意度"]);
    let range = wb.worksheet_range("满意度").unwrap();
    assert_eq!(range.get_value((1, 2)), Some(&Data::Float(13912345678.0)));
    assert_eq!(range.get_value((1, 3)), Some(&Data::Float(85.5)));
    assert_eq!(range.get_value((2, 3)), Some(&Data::Float(-1.5)));
    assert_eq!(range.get_value((3, 3)), Some(&Data::String("007".into())));
    assert_eq!(range.get_value((4, 3)), Some(&Data::String("1.50".into())));
}

#[test]
fn write_xlsx_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let e = write_xlsx(&dir.path().join("a.xlsx"), "bad[name]", &["a"], Vec::new()).unwrap_err();
    assert!(matches!(e, TableError::Write { .. }), "{e:?}");
    let e = write_xlsx(
        &dir.path().join("missing-dir").join("a.xlsx"),
        "ok",
        &["a"],
        Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(e, TableError::Write { .. }), "{e:?}");
    assert!(e.to_string().contains("磁盘空间"), "{e}");
}

#[test]
fn formula_guard() {
    for s in [
        "=1+1", "@x", "+x", "-x", "+ 1", "\t=1", "\r=1", "-1+cmd|x", "+1e3",
    ] {
        assert_eq!(defuse_formula(s), format!("'{s}"), "{s}");
    }
    for s in [
        "",
        "-",
        "+",
        "-1.5",
        "+8613912345678",
        "+86 139-1234-5678",
        "a=b",
        "１=1",
        "0",
    ] {
        assert_eq!(defuse_formula(s), s, "{s}");
    }
}

// ----- robustness -----

const EXTENSIONS: [&str; 8] = [
    "a.csv", "a.tsv", "a.txt", "a.xlsx", "a.xlsm", "a.xls", "a.ods", "a.bin",
];

fn small_opts() -> ReadOptions {
    ReadOptions {
        encoding: None,
        max_bytes: 1 << 16,
        max_cell_chars: 50,
        max_rows: 20,
        max_cells: 200,
    }
}

fn check_invariants(t: &Table) {
    let mut last = 0;
    for r in &t.rows {
        assert!(r.cells.len() >= t.headers.len());
        assert!(r.line > last, "lines increase");
        last = r.line;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for name in EXTENSIONS {
            for o in [opts(), small_opts()] {
                if let Ok(t) = read_table_bytes(&bytes, name, &o) {
                    check_invariants(&t);
                }
            }
        }
    }

    #[test]
    fn arbitrary_magic_prefixed_bytes_never_panic(
        zip in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = if zip { ZIP_MAGIC.to_vec() } else { OLE_MAGIC.to_vec() };
        bytes.extend(tail);
        for name in EXTENSIONS {
            let _ = read_table_bytes(&bytes, name, &opts());
        }
    }

    #[test]
    fn csv_like_text_never_panics(
        text in "[a中\",\t\r\n \u{3000}\u{feff}\"]{0,80}",
        utf16 in any::<bool>(),
    ) {
        let bytes = if utf16 { super::tests::utf16(&text, false) } else { text.clone().into_bytes() };
        for name in ["a.csv", "a.txt", "a.xls"] {
            for o in [opts(), small_opts()] {
                if let Ok(t) = read_table_bytes(&bytes, name, &o) {
                    check_invariants(&t);
                }
            }
        }
    }

    #[test]
    fn csv_round_trip(
        rows in proptest::collection::vec(
            proptest::collection::vec("[a-z中,\"\r\n 　]{0,6}", 3),
            0..8,
        )
    ) {
        // The first cell is never blank, so no row is skipped as blank.
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut r| { r[0] = format!("x{}", r[0]); r })
            .collect();
        let mut out = Vec::new();
        write_csv(&mut out, &["a", "b", "c"], rows.clone(), true).unwrap();
        let t = read_table_bytes(&out, "a.csv", &opts()).unwrap();
        let back: Vec<Vec<String>> = t.rows.iter().map(|r| r.cells.clone()).collect();
        let expected: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|c| defuse_formula(c).into_owned()).collect())
            .collect();
        prop_assert_eq!(back, expected);
    }
}

#[test]
fn mutated_xlsx_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = xlsx_fixture(&dir, "a.xlsx", 0);
    let good = std::fs::read(path).unwrap();
    // A deterministic xorshift keeps the test reproducible without a seed file.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (base, name) in [(&good, "a.xlsx"), (&stored_copy(&good), "a.xlsm")] {
        for _ in 0..300 {
            let mut bytes = base.clone();
            for _ in 0..(next() % 8 + 1) {
                let i = (next() as usize) % bytes.len();
                bytes[i] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            if let Ok(t) = read_table_bytes(&bytes, name, &small_opts()) {
                check_invariants(&t);
            }
        }
    }
}

// ----- zip pre-check and inflate -----

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

struct Entry {
    name: String,
    method: u16,
    crc: u32,
    size: u32,
    data: Vec<u8>,
}

fn u16le(v: usize) -> [u8; 2] {
    (v as u16).to_le_bytes()
}

fn u32le(v: usize) -> [u8; 4] {
    (v as u32).to_le_bytes()
}

/// Entries of a zip as stored (data still compressed), via the central directory.
fn zip_entries(bytes: &[u8]) -> Vec<Entry> {
    let rd16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let rd32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let eocd = (0..bytes.len() - 21)
        .rev()
        .find(|&i| bytes[i..].starts_with(b"PK\x05\x06"))
        .unwrap();
    let mut at = rd32(eocd + 16);
    let mut out = Vec::new();
    for _ in 0..rd16(eocd + 10) {
        let name_len = rd16(at + 28);
        let local = rd32(at + 42);
        let start = local + 30 + rd16(local + 26) + rd16(local + 28);
        out.push(Entry {
            name: String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap(),
            method: rd16(at + 10) as u16,
            crc: rd32(at + 16) as u32,
            size: rd32(at + 24) as u32,
            data: bytes[start..start + rd32(at + 20)].to_vec(),
        });
        at += 46 + name_len + rd16(at + 30) + rd16(at + 32);
    }
    out
}

fn build_zip(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let local = out.len();
        let common = |v: &mut Vec<u8>| {
            v.extend(u16le(20)); // version needed
            v.extend(u16le(0)); // flags
            v.extend(u16le(e.method.into()));
            v.extend([0u8; 4]); // time, date
            v.extend(e.crc.to_le_bytes());
            v.extend(u32le(e.data.len()));
            v.extend(e.size.to_le_bytes());
            v.extend(u16le(e.name.len()));
            v.extend(u16le(0)); // extra
        };
        out.extend(b"PK\x03\x04");
        common(&mut out);
        out.extend(e.name.as_bytes());
        out.extend(&e.data);
        central.extend(b"PK\x01\x02");
        central.extend(u16le(20)); // version made by
        common(&mut central);
        central.extend([0u8; 6]); // comment len, disk, internal attrs
        central.extend([0u8; 4]); // external attrs
        central.extend(u32le(local));
        central.extend(e.name.as_bytes());
    }
    let cd_offset = out.len();
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend(u16le(entries.len()));
    out.extend(u16le(entries.len()));
    out.extend(u32le(central.len()));
    out.extend(u32le(cd_offset));
    out.extend(u16le(0));
    out
}

fn inflate_all(data: &[u8], limit: u64) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    let n = inflate(data, limit, |c| out.extend_from_slice(c))?;
    assert_eq!(n as usize, out.len());
    Ok(out)
}

/// The same archive with every entry stored uncompressed (inflated by our decoder).
fn stored_copy(xlsx: &[u8]) -> Vec<u8> {
    let entries: Vec<Entry> = zip_entries(xlsx)
        .into_iter()
        .map(|e| {
            let data = if e.method == 8 {
                inflate_all(&e.data, u64::MAX).unwrap()
            } else {
                e.data
            };
            Entry {
                method: 0,
                crc: crc32(&data),
                size: data.len() as u32,
                data,
                name: e.name,
            }
        })
        .collect();
    build_zip(&entries)
}

#[test]
fn inflate_matches_real_xlsx_crcs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.xlsx");
    let rows = (0..3000).map(|i| {
        vec![
            format!("单位{i}"),
            format!("{}", 13_900_000_000u64 + i * 7919),
            "满意".repeat(i as usize % 5),
        ]
    });
    write_xlsx(&path, "s", &["单位", "电话", "答案"], rows).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let entries = zip_entries(&bytes);
    assert!(entries.iter().any(|e| e.method == 8));
    for e in entries {
        let data = if e.method == 8 {
            inflate_all(&e.data, u64::MAX).unwrap()
        } else {
            e.data.clone()
        };
        assert_eq!(data.len(), e.size as usize, "{}", e.name);
        assert_eq!(crc32(&data), e.crc, "{}", e.name);
    }
    // A stored (uncompressed) repack reads the same.
    let a = read(&bytes, "a.xlsx");
    let b = read(&stored_copy(&bytes), "b.xlsx");
    assert_eq!(a.rows.len(), 3000);
    assert_eq!(a.rows.last().unwrap().cells, b.rows.last().unwrap().cells);
    assert_eq!(a.rows[2999].get(1), "13923749081");
}

/// Writes Huffman codes (MSB-first) and plain values (LSB-first) into a deflate bit stream.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, bits: u32) {
        let reversed = code.reverse_bits() >> (32 - bits);
        self.put(reversed, bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A fixed-Huffman block: the literal "a", then `copies` back-references of 258 bytes.
fn deflate_run(copies: usize) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(1, 1); // final block
    w.put(1, 2); // fixed Huffman
    w.code(0x30 + u32::from(b'a'), 8);
    for _ in 0..copies {
        w.code(0b1100_0101, 8); // length symbol 285 = 258 bytes
        w.code(0, 5); // distance symbol 0 = 1 byte back
    }
    w.code(0, 7); // end of block
    w.finish()
}

#[test]
fn inflate_handcrafted_streams() {
    assert_eq!(inflate_all(&deflate_run(2), 1000).unwrap(), vec![b'a'; 517]);
    // Stored block "hi".
    let stored = [0x01, 0x02, 0x00, 0xFD, 0xFF, b'h', b'i'];
    assert_eq!(inflate_all(&stored, 10).unwrap(), b"hi");
    // Damaged inputs are errors, never panics.
    assert_eq!(inflate_all(&stored[..6], 10), Err(InflateError::Corrupt));
    assert_eq!(
        inflate_all(&[0x01, 0x02, 0x00, 0x00, 0x00], 10),
        Err(InflateError::Corrupt)
    );
    assert_eq!(inflate_all(&[0x07], 10), Err(InflateError::Corrupt)); // reserved type 3
    assert_eq!(inflate_all(&[], 10), Err(InflateError::Corrupt));
    let mut w = BitWriter::default();
    w.put(1, 1);
    w.put(1, 2);
    w.code(0b1100_0101, 8);
    w.code(0, 5); // distance 1 with no history
    assert_eq!(inflate_all(&w.finish(), 1000), Err(InflateError::Corrupt));
    // Output beyond the limit stops early.
    assert_eq!(
        inflate_all(&deflate_run(10_000), 100_000),
        Err(InflateError::TooBig)
    );
}

fn xlsx_with_shared_strings(edit: impl Fn(String) -> String) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
    let stored = stored_copy(&good);
    let entries: Vec<Entry> = zip_entries(&stored)
        .into_iter()
        .map(|mut e| {
            if e.name == "xl/sharedStrings.xml" {
                e.data = edit(String::from_utf8(e.data).unwrap()).into_bytes();
                e.crc = crc32(&e.data);
                e.size = e.data.len() as u32;
            }
            e
        })
        .collect();
    build_zip(&entries)
}

#[test]
fn huge_shared_string_count_is_refused_before_calamine() {
    let ok = xlsx_with_shared_strings(|s| s);
    assert_eq!(read(&ok, "a.xlsx").rows[0].get(1), "张三");
    // Without the pre-check this file aborts the process (calamine reserves 240 GB).
    let bomb = xlsx_with_shared_strings(|s| {
        let i = s.find("uniqueCount=\"").unwrap() + 13;
        let j = i + s[i..].find('"').unwrap();
        format!("{}10000000000{}", &s[..i], &s[j..])
    });
    let e = read_err(&bomb, "a.xlsx", &opts());
    assert!(
        matches!(e, TableError::Workbook { ref detail, .. } if detail.contains("共享字符串")),
        "{e:?}"
    );
    // Hidden behind a comment and odd spacing, it is still found.
    let sneaky = xlsx_with_shared_strings(|s| {
        let s = s.replacen("<sst ", "<!-- uniqueCount=\"1\" --><sst ", 1);
        let i = s.find(" uniqueCount=\"").unwrap();
        let j = i + 14 + s[i + 14..].find('"').unwrap();
        format!(
            "{} uniqueCount = '99999999999{}",
            &s[..i],
            &s[j..].replacen('"', "'", 1)
        )
    });
    let e = read_err(&sneaky, "a.xlsx", &opts());
    assert!(matches!(e, TableError::Workbook { .. }), "{e:?}");
}

#[test]
fn zip_bomb_is_refused() {
    let bomb = deflate_run(20_000); // about 5 MB from 33 KB
    let entries = [Entry {
        name: "xl/worksheets/sheet1.xml".into(),
        method: 8,
        crc: 0,
        size: 5_160_001,
        data: bomb,
    }];
    let zip = build_zip(&entries);
    let mut o = opts();
    o.max_bytes = 100_000; // 1.6 MB unzipped at most
    let e = read_err(&zip, "a.xlsx", &o);
    assert!(
        matches!(e, TableError::Workbook { ref detail, .. } if detail.contains("解压后")),
        "{e:?}"
    );
}

#[test]
fn odd_zip_structures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(xlsx_fixture(&dir, "a.xlsx", 0)).unwrap();
    // Data in front of the archive shifts every offset.
    let mut prefixed = b"PK\x03\x04junk".to_vec();
    prefixed.extend(&good);
    assert!(precheck_zip(&prefixed, u64::MAX).is_err());
    // Truncated archive: no end-of-directory record.
    assert!(precheck_zip(&good[..good.len() - 30], u64::MAX).is_err());
    assert!(precheck_zip(&good, u64::MAX).is_ok());
    // Encrypted entry flag.
    let mut enc = good.clone();
    let cd = enc.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    enc[cd + 8] |= 1;
    assert!(precheck_zip(&enc, u64::MAX).is_err());
}

// ----- streaming -----

/// Hands out `step` bytes per read, so records, line ends and characters are cut everywhere.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn all_records(mut records: delimited::Records<'_>) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    while let Some(r) = records.next_record(&[]).unwrap() {
        out.push(r);
    }
    out
}

#[test]
fn records_cut_at_any_byte_read_the_same() {
    let text = "h1,h2\r\na,\"x\r\ny\"\rb,\"q\"\"q\"  \n\"\",c\r\n中文,“引号”\r\r\nlast,\"\"\"\"";
    for encoding in [Encoding::Utf8, Encoding::Gb18030, Encoding::Utf16Le] {
        let bytes = match encoding {
            Encoding::Utf16Le => utf16(text, false),
            _ => {
                let enc = if encoding == Encoding::Utf8 {
                    encoding_rs::UTF_8
                } else {
                    encoding_rs::GB18030
                };
                enc.encode(text).0.into_owned()
            }
        };
        let decoder = || {
            decode::TextDecoder::new(
                decode::Detected {
                    encoding,
                    guessed: false,
                    min_error_line: 1,
                },
                "a.csv",
            )
        };
        let whole = delimited::Records::new(
            &bytes,
            true,
            Box::new(std::io::empty()),
            decoder(),
            "a.csv",
            100,
        )
        .unwrap();
        let expected = all_records(whole);
        assert_eq!(expected.len(), 7, "{encoding:?}: {expected:?}");
        assert_eq!(
            expected[1],
            (2, vec!["a".to_string(), "x\r\ny".to_string()])
        );
        assert_eq!(expected[2].0, 4);
        assert_eq!(
            expected[4],
            (6, vec!["中文".to_string(), "“引号”".to_string()])
        );
        assert_eq!(expected[5], (7, vec![String::new()]));
        assert_eq!(expected[6], (8, vec!["last".to_string(), "\"".to_string()]));
        for step in 1..=7 {
            let input = Trickle {
                bytes: bytes.clone(),
                at: 0,
                step,
            };
            let cut = delimited::Records::new(&[], false, Box::new(input), decoder(), "a.csv", 100)
                .unwrap();
            assert_eq!(
                all_records(cut),
                expected,
                "{encoding:?}, {step} bytes a read"
            );
        }
    }
}

#[test]
fn a_table_read_whole_stops_at_its_cell_budget() {
    let mut o = opts();
    o.max_cells = 6;
    // Three columns: two rows fit (6 cells), the third is refused naming its line.
    let ok = read_table_bytes(b"a,b,c\n1,2,3\n4,5,6\n", "t.csv", &o).unwrap();
    assert_eq!(ok.rows.len(), 2);
    let err = read_table_bytes(b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n", "t.csv", &o).unwrap_err();
    assert!(
        matches!(
            err,
            TableError::TooManyCells {
                line: 4,
                max: 6,
                ..
            }
        ),
        "{err:?}"
    );
    // Short rows count at the header's width: a wide header cannot hide a large table.
    let err = read_table_bytes(b"a,b,c,d,e,f,g\n1\n", "t.csv", &o).unwrap_err();
    assert!(
        matches!(err, TableError::TooManyCells { line: 2, .. }),
        "{err:?}"
    );
}
