//! The contact database (电话调查数据库): validating a roster of representatives (服务对象代表)
//! against a round's units before anything is stored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::import::{Column, Rejection, clean_cell, closest, refuse_control};
use super::phone::{Phone, PhoneError, pack_canonical, parse_phone_cell, unpack_canonical};

/// A representative's category. Party-congress deputies, People's-Congress deputies and
/// CPPCC members together are the "两代一委".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberCategory {
    PartyDeputy,
    NpcDeputy,
    CppccMember,
    ServiceRecipient,
}

impl MemberCategory {
    pub fn label(self) -> &'static str {
        match self {
            MemberCategory::PartyDeputy => "党代表",
            MemberCategory::NpcDeputy => "人大代表",
            MemberCategory::CppccMember => "政协委员",
            MemberCategory::ServiceRecipient => "服务对象",
        }
    }

    /// Reads what rosters write: "区人大代表", "市政协委员", "党代表" ...; anything else or empty
    /// is a service recipient.
    pub fn parse(text: &str) -> MemberCategory {
        let t = clean_cell(text);
        if t.contains("党代表") {
            MemberCategory::PartyDeputy
        } else if t.contains("人大") {
            MemberCategory::NpcDeputy
        } else if t.contains("政协") {
            MemberCategory::CppccMember
        } else {
            MemberCategory::ServiceRecipient
        }
    }

    /// The category whose label is exactly `label` (what the database stores); unlike
    /// `parse`, an unknown text is not taken for a service recipient.
    pub fn from_stored_label(label: &str) -> Option<MemberCategory> {
        [
            MemberCategory::PartyDeputy,
            MemberCategory::NpcDeputy,
            MemberCategory::CppccMember,
            MemberCategory::ServiceRecipient,
        ]
        .into_iter()
        .find(|c| c.label() == label)
    }

    pub fn from_label(label: &str) -> MemberCategory {
        Self::parse(label)
    }

    pub fn is_two_deputies_one_member(self) -> bool {
        self != MemberCategory::ServiceRecipient
    }
}

pub const ROSTER_COLUMNS: &[Column] = &[
    Column {
        field: "unit",
        aliases: &["参评单位", "单位名称", "单位", "unit"],
        required: true,
    },
    Column {
        field: "name",
        aliases: &["姓名", "代表姓名", "name"],
        required: true,
    },
    Column {
        field: "phone",
        aliases: &["联系电话", "电话", "手机", "手机号码", "电话号码", "phone"],
        required: true,
    },
    Column {
        field: "category",
        aliases: &["代表类别", "类别", "身份", "category"],
        required: false,
    },
    Column {
        field: "organization",
        aliases: &["工作单位及职务", "工作单位", "职务", "organization"],
        required: false,
    },
    Column {
        field: "note",
        aliases: &["备注", "note"],
        required: false,
    },
];

const MAX_NAME_CHARS: usize = 40;
const MAX_TEXT_CHARS: usize = 200;

/// A representative ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMember {
    pub unit_id: i64,
    pub name: String,
    /// Canonical phone (see `phone::Phone::canonical`).
    pub phone: String,
    pub phone_alt: Option<String>,
    pub category: MemberCategory,
    pub organization: Option<String>,
    pub note: Option<String>,
    pub line: usize,
}

/// A unit of the round as the roster validation needs it.
#[derive(Debug, Clone)]
pub struct RosterUnit {
    pub id: i64,
    pub name: String,
    /// Canonical phones of the panel already stored.
    pub phones: BTreeSet<String>,
    /// Stored members who are 两代一委.
    pub two_deputies_one_member: usize,
    /// Whether the unit was planned or called (then its panel can no longer be replaced).
    pub in_use: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RosterOptions {
    pub area_code: Option<String>,
    /// Replace the panels of the units named in the file.
    pub replace: bool,
    pub panel_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitPanel {
    pub unit: String,
    pub panel: usize,
    pub target: usize,
    pub two_deputies_one_member: usize,
}

/// The outcome of validating a roster: what would be stored, and everything wrong with it.
#[derive(Debug, Clone, Default)]
pub struct RosterCheck {
    pub members: Vec<NewMember>,
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<String>,
    /// Units whose stored panel is replaced (with `--replace`).
    pub replace_units: Vec<i64>,
    /// Every unit of the round with its panel as it would be after the import.
    pub units: Vec<UnitPanel>,
}

/// Finds each roster column in the header; `Err` lists the missing required columns.
pub fn map_columns(headers: &[String]) -> Result<(Vec<Option<usize>>, Vec<String>), String> {
    let norm: Vec<String> = headers
        .iter()
        .map(|h| clean_cell(h).to_ascii_lowercase())
        .collect();
    let mut map = Vec::new();
    let mut missing = Vec::new();
    for col in ROSTER_COLUMNS {
        let idx = norm
            .iter()
            .position(|h| col.aliases.iter().any(|a| a.eq_ignore_ascii_case(h)));
        if idx.is_none() && col.required {
            missing.push(format!("{}(可用列名:{})", col.field, col.aliases.join("/")));
        }
        map.push(idx);
    }
    if !missing.is_empty() {
        return Err(format!("表头缺少必需的列:{}", missing.join(";")));
    }
    let unknown = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !map.contains(&Some(*i)) && !clean_cell(h).is_empty())
        .map(|(_, h)| clean_cell(h).to_string())
        .collect();
    Ok((map, unknown))
}

fn phone_error_text(e: &PhoneError) -> String {
    e.to_string()
}

/// Validates roster rows (physical line numbers, header = 1) against the round's units.
pub fn check_roster<'a>(
    rows: impl IntoIterator<Item = (usize, &'a [String])>,
    columns: &[Option<usize>],
    units: &[RosterUnit],
    opts: &RosterOptions,
) -> RosterCheck {
    let mut checker = RowChecker::new(units, opts);
    let rows = rows.into_iter();
    let mut members = Vec::with_capacity(rows.size_hint().0);
    let mut rejected = Vec::new();
    for (line, cells) in rows {
        match checker.check(line, cells, columns) {
            Ok(member) => members.push(member),
            Err(rejection) => rejected.push(rejection),
        }
    }
    let summary = checker.finish();
    RosterCheck {
        members,
        rejected,
        warnings: summary.warnings,
        replace_units: summary.replace_units,
        units: summary.units,
    }
}

/// What a roster would change, without its members: see [`RowChecker::finish`].
#[derive(Debug, Clone, Default)]
pub struct RosterSummary {
    pub warnings: Vec<String>,
    /// Units whose stored panel is replaced (with `--replace`), in id order.
    pub replace_units: Vec<i64>,
    /// Every unit of the round with its panel as it would be after the import.
    pub units: Vec<UnitPanel>,
}

/// Checks roster rows one at a time (in file order), keeping only what the duplicate checks and
/// the summary need, so that each member can be stored as soon as it is checked; the row-by-row
/// form of [`check_roster`].
pub struct RowChecker<'u> {
    units: &'u [RosterUnit],
    opts: &'u RosterOptions,
    /// Index into `units` by name.
    by_name: HashMap<&'u str, usize>,
    /// The unit of the previous row: rosters list a unit's representatives together.
    last_unit: Option<usize>,
    /// Phones (`Phone::key`) of the members accepted for each unit of `units`: duplicates
    /// within the file are found here. Small sets, one per unit, stay in cache while a unit's
    /// rows go by.
    file_phones: Vec<HashSet<u128>>,
    /// 两代一委 among the members accepted for each unit of `units`.
    deputies: Vec<usize>,
    replace: BTreeSet<i64>,
    refused_replace: BTreeSet<i64>,
    /// The unit whose panel the last row started to replace.
    replace_started: Option<i64>,
}

impl<'u> RowChecker<'u> {
    pub fn new(units: &'u [RosterUnit], opts: &'u RosterOptions) -> RowChecker<'u> {
        RowChecker {
            units,
            opts,
            by_name: units
                .iter()
                .enumerate()
                .map(|(i, u)| (u.name.as_str(), i))
                .collect(),
            last_unit: None,
            file_phones: vec![HashSet::new(); units.len()],
            deputies: vec![0; units.len()],
            replace: BTreeSet::new(),
            refused_replace: BTreeSet::new(),
            replace_started: None,
        }
    }

    /// The unit whose stored panel is to be replaced from the row just checked on (with
    /// `replace`, once per unit, before any member of it; whether or not the row is valid).
    pub fn take_replace_started(&mut self) -> Option<i64> {
        self.replace_started.take()
    }

    /// Checks one row: the member to store, or why the row is rejected.
    pub fn check(
        &mut self,
        line: usize,
        cells: &[String],
        columns: &[Option<usize>],
    ) -> Result<NewMember, Rejection> {
        let get = |field: usize| -> &str {
            columns
                .get(field)
                .copied()
                .flatten()
                .and_then(|c| cells.get(c))
                .map(|s| clean_cell(s))
                .unwrap_or("")
        };
        let reject = |field: &str, error: String| Rejection::new(line, field, error, cells);
        let column = |i: usize| columns.get(i).copied().flatten();
        let text_columns = [
            ("unit", "参评单位", column(0)),
            ("name", "姓名", column(1)),
            ("phone", "联系电话", column(2)),
            ("category", "代表类别", column(3)),
            ("organization", "工作单位及职务", column(4)),
            ("note", "备注", column(5)),
        ];
        if let Some(r) = refuse_control(line, cells, &text_columns) {
            return Err(r);
        }
        let unit_name = get(0);
        if unit_name.is_empty() {
            return Err(reject(
                "unit",
                "参评单位为空:请填写该代表所评价的单位".into(),
            ));
        }
        let index = match self.last_unit {
            Some(i) if self.units[i].name == unit_name => i,
            _ => {
                let Some(&index) = self.by_name.get(unit_name) else {
                    let names = self.units.iter().map(|u| u.name.as_str());
                    let hint = match closest(unit_name, names) {
                        Some(c) => format!(",是否应为“{c}”?"),
                        // The domain names no tool: the CLI and the console each say how
                        // units are imported there.
                        None => ",请先导入该参评单位,再导入其代表名单".into(),
                    };
                    return Err(reject(
                        "unit",
                        format!("单位“{unit_name}”不在本轮参评单位中{hint}"),
                    ));
                };
                self.last_unit = Some(index);
                index
            }
        };
        let unit = &self.units[index];
        if self.opts.replace {
            if unit.in_use {
                return Err(if self.refused_replace.insert(unit.id) {
                    reject(
                        "unit",
                        format!(
                            "单位“{}”已排入拨打计划或已开始电话调查,不能再替换其代表名单",
                            unit.name
                        ),
                    )
                } else {
                    reject(
                        "unit",
                        format!("单位“{}”已排入拨打计划或已开始电话调查,不能替换", unit.name),
                    )
                });
            }
            if self.replace.insert(unit.id) {
                self.replace_started = Some(unit.id);
            }
        }
        let name = get(1);
        if name.is_empty() {
            return Err(reject("name", "姓名为空:请填写代表姓名".into()));
        }
        // A character is at least one byte, so a short name needs no counting.
        if name.len() > MAX_NAME_CHARS && name.chars().count() > MAX_NAME_CHARS {
            return Err(reject(
                "name",
                format!("姓名超过 {MAX_NAME_CHARS} 个字,请检查是否填错列"),
            ));
        }
        let phones = parse_phone_cell(get(2), self.opts.area_code.as_deref())
            .map_err(|e| reject("phone", phone_error_text(&e)))?;
        let stored_dupe = !self.opts.replace && unit.phones.contains(phones.primary.canonical());
        if stored_dupe || !self.file_phones[index].insert(phones.primary.key()) {
            let where_ = if stored_dupe {
                "已在该单位的代表名单中"
            } else {
                "在文件中该单位下重复出现"
            };
            return Err(reject(
                "phone",
                format!(
                    "号码 {} {where_}:同一单位的代表不能重复,请删除重复行",
                    phones.primary.masked()
                ),
            ));
        }
        let category = MemberCategory::parse(get(3));
        let text = |field: usize| {
            let t = get(field);
            (!t.is_empty()).then(|| {
                if t.len() <= MAX_TEXT_CHARS {
                    t.to_string()
                } else {
                    t.chars().take(MAX_TEXT_CHARS).collect::<String>()
                }
            })
        };
        self.deputies[index] += usize::from(category.is_two_deputies_one_member());
        Ok(NewMember {
            unit_id: unit.id,
            name: name.to_string(),
            phone: phones.primary.into_canonical(),
            phone_alt: phones.alternate.map(Phone::into_canonical),
            category,
            organization: text(4),
            note: text(5),
            line,
        })
    }

    /// The panels and warnings once every row is checked.
    pub fn finish(self) -> RosterSummary {
        let replace_units: Vec<i64> = self.replace.iter().copied().collect();
        let mut warnings = self.shared_phone_warnings();
        let mut panels = Vec::with_capacity(self.units.len());
        for (i, u) in self.units.iter().enumerate() {
            let replaced = self.replace.contains(&u.id);
            let (new, new_deputies) = (self.file_phones[i].len(), self.deputies[i]);
            let (panel, deputies) = if replaced {
                (new, new_deputies)
            } else {
                (
                    u.phones.len() + new,
                    u.two_deputies_one_member + new_deputies,
                )
            };
            if new > 0 || replaced {
                if panel != self.opts.panel_size {
                    warnings.push(format!(
                        "单位“{}”的代表名单有 {panel} 人,应为 {} 人",
                        u.name, self.opts.panel_size
                    ));
                }
                warnings.push(format!("单位“{}”的代表中有两代一委 {deputies} 人", u.name));
            }
            panels.push(UnitPanel {
                unit: u.name.clone(),
                panel,
                target: self.opts.panel_size,
                two_deputies_one_member: deputies,
            });
        }
        RosterSummary {
            warnings,
            replace_units,
            units: panels,
        }
    }

    /// The same person may represent several units (a deputy often does): warn, never reject.
    /// One warning per phone in more than one unit's panel after the import, in phone order,
    /// naming the units in id order.
    fn shared_phone_warnings(&self) -> Vec<String> {
        // Phones are grouped as packed integers (no string compares), each beside the index of
        // its unit; stored text that does not pack (never a canonical phone) is grouped as
        // text. A packed phone that fits in 64 bits (every mobile and most landlines) takes 16
        // bytes a pair, not 32: at a million rows this list is the peak of the import's memory.
        // Sized once: grown by doubling, it would briefly take half as much again.
        let phones: usize = (self.units.iter().map(|u| u.phones.len()))
            .chain(self.file_phones.iter().map(HashSet::len))
            .sum();
        let mut narrow: Vec<(u64, u32)> = Vec::with_capacity(phones);
        let mut wide: Vec<(u128, u32)> = Vec::new();
        let mut text: Vec<(&str, u32)> = Vec::new();
        let mut push = |key: u128, unit: u32| match u64::try_from(key) {
            Ok(key) => narrow.push((key, unit)),
            Err(_) => wide.push((key, unit)),
        };
        for (i, u) in self.units.iter().enumerate() {
            let unit = u32::try_from(i).expect("fewer than 2^32 units");
            if !self.replace.contains(&u.id) {
                for p in &u.phones {
                    match pack_canonical(p) {
                        Some(key) => push(key, unit),
                        None => text.push((p, unit)),
                    }
                }
            }
            for &key in &self.file_phones[i] {
                push(key, unit);
            }
        }
        // A group's units by id (their indexes need not follow ids).
        let ids = |units: Vec<u32>| {
            let mut ids: Vec<i64> = units.iter().map(|&i| self.units[i as usize].id).collect();
            ids.sort_unstable();
            ids
        };
        let unpack = |key: u128| unpack_canonical(key).expect("packed from text");
        let mut shared: Vec<(String, Vec<i64>)> = Vec::new();
        for (key, units) in in_several_units(narrow) {
            shared.push((unpack(key.into()), ids(units)));
        }
        for (key, units) in in_several_units(wide) {
            shared.push((unpack(key), ids(units)));
        }
        for (key, units) in in_several_units(text) {
            shared.push((key.to_owned(), ids(units)));
        }
        if shared.is_empty() {
            return Vec::new();
        }
        shared.sort_unstable();
        let names: BTreeMap<i64, &str> =
            self.units.iter().map(|u| (u.id, u.name.as_str())).collect();
        shared
            .iter()
            .map(|(phone, ids)| {
                let list: Vec<&str> = ids.iter().map(|u| names[u]).collect();
                format!(
                    "号码 {} 同时出现在 {} 个单位的代表名单中:{}",
                    super::phone::mask_canonical(phone),
                    list.len(),
                    list.join("、")
                )
            })
            .collect()
    }
}

/// The keys of `pairs` (key, unit index) found in more than one unit, each with its units in
/// index order. The list is consumed, so its memory goes before the next one is grouped.
fn in_several_units<K: Ord + Copy>(mut pairs: Vec<(K, u32)>) -> Vec<(K, Vec<u32>)> {
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .chunk_by(|a, b| a.0 == b.0)
        .filter(|g| g.len() > 1)
        .map(|g| (g[0].0, g.iter().map(|p| p.1).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units() -> Vec<RosterUnit> {
        vec![
            RosterUnit {
                id: 1,
                name: "汉滨区教育体育局".into(),
                phones: BTreeSet::from(["13900000001".to_string()]),
                two_deputies_one_member: 0,
                in_use: false,
            },
            RosterUnit {
                id: 2,
                name: "汉滨区交通运输局".into(),
                phones: BTreeSet::new(),
                two_deputies_one_member: 0,
                in_use: true,
            },
        ]
    }

    fn rows(data: &[&[&str]]) -> Vec<Vec<String>> {
        data.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    /// Rows of (unit, name, phone), from line 2, against `us` with panels of 45.
    fn check_phones(us: &[RosterUnit], data: &[&[&str]]) -> RosterCheck {
        let headers: Vec<String> = ["单位", "姓名", "手机"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cols, _) = map_columns(&headers).unwrap();
        let rows = rows(data);
        check_roster(
            rows.iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())),
            &cols,
            us,
            &RosterOptions {
                panel_size: 45,
                ..Default::default()
            },
        )
    }

    fn check(data: &[&[&str]], opts: &RosterOptions) -> RosterCheck {
        let headers: Vec<String> = ["参评单位", "姓名", "联系电话", "代表类别", "籍贯"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cols, unknown) = map_columns(&headers).unwrap();
        assert_eq!(unknown, ["籍贯"]);
        let rows = rows(data);
        check_roster(
            rows.iter().enumerate().map(|(i, r)| (i + 2, r.as_slice())),
            &cols,
            &units(),
            opts,
        )
    }

    #[test]
    fn rejects_each_bad_row_with_line_and_field() {
        let opts = RosterOptions {
            panel_size: 45,
            ..Default::default()
        };
        let c = check(
            &[
                &[
                    "汉滨区教育体育局",
                    "张三",
                    "139 0000 0002",
                    "区人大代表",
                    "",
                ],
                &["汉滨区教育局", "李四", "13900000003", "", ""],
                &["汉滨区教育体育局", "", "13900000004", "", ""],
                &["汉滨区教育体育局", "王五", "1.39E+10", "", ""],
                &["汉滨区教育体育局", "赵六", "13900000001", "", ""],
                &["汉滨区教育体育局", "钱七", "+86 139-0000-0002", "", ""],
                &["", "孙八", "13900000005", "", ""],
            ],
            &opts,
        );
        assert_eq!(c.members.len(), 1);
        assert_eq!(c.members[0].category, MemberCategory::NpcDeputy);
        let got: Vec<_> = c
            .rejected
            .iter()
            .map(|r| (r.line, r.field.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "unit"),
                (4, "name"),
                (5, "phone"),
                (6, "phone"),
                (7, "phone"),
                (8, "unit")
            ]
        );
        assert!(
            c.rejected[0].error.contains("汉滨区教育体育局"),
            "suggests the closest unit: {}",
            c.rejected[0].error
        );
        assert!(
            c.rejected[2].error.contains("科学计数"),
            "{}",
            c.rejected[2].error
        );
        let unit = &c.units[0];
        assert_eq!(
            (unit.panel, unit.target, unit.two_deputies_one_member),
            (2, 45, 1)
        );
        assert!(c.warnings.iter().any(|w| w.contains("有 2 人,应为 45 人")));
    }

    #[test]
    fn replace_ignores_stored_phones_but_not_units_with_calls() {
        let opts = RosterOptions {
            panel_size: 2,
            replace: true,
            ..Default::default()
        };
        let c = check(
            &[
                &["汉滨区教育体育局", "张三", "13900000001", "政协委员", ""],
                &["汉滨区教育体育局", "李四", "13900000002", "", ""],
                &["汉滨区交通运输局", "王五", "13900000003", "", ""],
            ],
            &opts,
        );
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.replace_units, [1]);
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].line, 4);
        assert_eq!(c.units[0].panel, 2);
    }

    #[test]
    fn warns_about_a_phone_in_several_units() {
        let mut us = units();
        us[1].in_use = false;
        let c = check_phones(&us, &[&["汉滨区交通运输局", "张三", "13900000001"]]);
        assert_eq!(c.members.len(), 1);
        assert!(
            c.warnings.iter().any(|w| w.contains("同时出现在 2 个单位")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn duplicates_and_shared_phones_are_found_in_any_row_order() {
        let mut us = units();
        us[1].in_use = false;
        us.push(RosterUnit {
            id: 3,
            name: "汉滨区民政局".into(),
            phones: BTreeSet::from(["0915-3212345".to_string()]),
            two_deputies_one_member: 0,
            in_use: false,
        });
        let c = check_phones(
            &us,
            &[
                &["汉滨区交通运输局", "甲", "13900000009"],
                &["汉滨区民政局", "乙", "13900000009"],
                &["汉滨区交通运输局", "丙", "0915-3212345"],
                &["汉滨区教育体育局", "丁", "13900000009"],
                &["汉滨区交通运输局", "戊", "139 0000 0009"],
                &["汉滨区民政局", "己", "13900000002"],
            ],
        );
        let rejected: Vec<(usize, &str)> = c
            .rejected
            .iter()
            .map(|r| (r.line, r.error.as_str()))
            .collect();
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert_eq!(rejected[0].0, 6);
        assert!(rejected[0].1.contains("在文件中该单位下重复出现"));
        assert_eq!(c.members.len(), 5);
        let shared: Vec<&String> = c
            .warnings
            .iter()
            .filter(|w| w.contains("同时出现在"))
            .collect();
        assert_eq!(
            shared,
            [
                "号码 0915-***2345 同时出现在 2 个单位的代表名单中:汉滨区交通运输局、汉滨区民政局",
                "号码 139****0009 同时出现在 3 个单位的代表名单中:汉滨区教育体育局、汉滨区交通运输局、汉滨区民政局",
            ]
        );
    }

    #[test]
    fn a_landline_too_long_for_64_bits_is_found_shared_beside_a_mobile() {
        // "0915-32123456-123456" packs to more than 2^64 (20 base-12 digits): it is grouped
        // apart from the mobiles, and the warnings still come in phone order.
        let mut us = units();
        us[1].in_use = false;
        assert!(pack_canonical("0915-32123456-123456").unwrap() > u128::from(u64::MAX));
        let c = check_phones(
            &us,
            &[
                &["汉滨区交通运输局", "甲", "0915-32123456转123456"],
                &["汉滨区教育体育局", "乙", "0915-32123456 分机 123456"],
                &["汉滨区交通运输局", "丙", "13900000001"],
                &["汉滨区交通运输局", "丁", "0915-32123456转12345"],
            ],
        );
        assert!(c.rejected.is_empty(), "{:?}", c.rejected);
        let shared: Vec<&String> = c
            .warnings
            .iter()
            .filter(|w| w.contains("同时出现在"))
            .collect();
        assert_eq!(
            shared,
            [
                "号码 0915-****3456 同时出现在 2 个单位的代表名单中:汉滨区教育体育局、汉滨区交通运输局",
                "号码 139****0001 同时出现在 2 个单位的代表名单中:汉滨区教育体育局、汉滨区交通运输局",
            ]
        );
    }

    #[test]
    fn missing_required_columns_are_named() {
        let headers: Vec<String> = ["单位", "姓名"].iter().map(|s| s.to_string()).collect();
        let err = map_columns(&headers).unwrap_err();
        assert!(err.contains("phone"), "{err}");
    }

    #[test]
    fn categories() {
        assert_eq!(
            MemberCategory::parse("市党代表"),
            MemberCategory::PartyDeputy
        );
        assert_eq!(
            MemberCategory::parse("区政协委员"),
            MemberCategory::CppccMember
        );
        assert_eq!(
            MemberCategory::parse("群众"),
            MemberCategory::ServiceRecipient
        );
        assert_eq!(MemberCategory::parse(""), MemberCategory::ServiceRecipient);
    }
}
