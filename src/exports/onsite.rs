//! The `onsite` export: the on-site data in the order the scoring reads it (ballots, direct
//! scores), for whoever replays the bootstrap.

use crate::domain::survey::Survey;
use crate::storage::results::{StoredBallot, StoredOnsite};

use super::columns::{
    Columns, Context, Measure, UnitCells, UnitRow, VarType, f, level_values, unit_columns,
};

/// One ballot or one unit's direct score.
pub(super) struct OnsiteLine<'a> {
    /// The unit's place in the round's unit order, from 1.
    unit_no: usize,
    unit: UnitCells<'a>,
    entry: Entry<'a>,
}

enum Entry<'a> {
    Direct(f64),
    Ballot {
        /// The ballot's place in its unit, from 1.
        no: usize,
        ballot: &'a StoredBallot,
        score: f64,
    },
}

impl UnitRow for OnsiteLine<'_> {
    fn unit(&self) -> &UnitCells<'_> {
        &self.unit
    }
}

impl OnsiteLine<'_> {
    /// A ballot's cell (empty on a direct score's row).
    fn ballot(&self, cell: impl Fn(usize, &StoredBallot, f64) -> String) -> String {
        match &self.entry {
            Entry::Ballot { no, ballot, score } => cell(*no, ballot, *score),
            Entry::Direct(_) => String::new(),
        }
    }
}

pub(super) fn columns<'a>(survey: &Survey) -> Columns<OnsiteLine<'a>> {
    use VarType::*;
    let levels = level_values(survey);
    let c = Columns::<OnsiteLine>::new().col(
        "unit_no",
        "单位在本轮单位顺序中的序号(计分与自助法按此顺序)",
        Integer,
        |r| r.unit_no.to_string(),
    );
    unit_columns(c)
        .col(
            "onsite_kind",
            "现场评价形式(ballots/direct)",
            Text,
            |r| {
                match r.entry {
                    Entry::Direct(_) => "direct",
                    Entry::Ballot { .. } => "ballots",
                }
                .to_string()
            },
        )
        .col(
            "ballot_no",
            "选票在该单位中的序号(自助法按此顺序抽取;直接得分为空)",
            Integer,
            |r| r.ballot(|no, _, _| no.to_string()),
        )
        .col("ballot", "选票编号(导入时填写)", Text, |r| {
            r.ballot(|_, b, _| b.ballot.clone())
        })
        .each(survey.dimensions.iter().enumerate(), |c, (d, dim)| {
            c.col(
                format!("{}_level", dim.key),
                format!("{}(等级序号,1 为最好;总体评价选票为空)", dim.label),
                Integer,
                move |r| {
                    r.ballot(|_, b, _| match b.overall {
                        true => String::new(),
                        false => b
                            .levels
                            .get(d)
                            .map(|l| (l + 1).to_string())
                            .unwrap_or_default(),
                    })
                },
            )
            .values(levels.clone())
            .measure(Measure::Ordinal)
        })
        .col(
            "overall_level",
            "总体评价(等级序号,1 为最好;分维度选票为空)",
            Integer,
            |r| {
                r.ballot(|_, b, _| match b.overall {
                    true => (b.levels.first().copied().unwrap_or(0) + 1).to_string(),
                    false => String::new(),
                })
            },
        )
        .values(levels.clone())
        .measure(Measure::Ordinal)
        .col(
            "ballot_score",
            "选票得分(Σ 权重×等级分,或总体评价的等级分)",
            Number,
            |r| r.ballot(|_, _, score| f(score)),
        )
        .col(
            "direct_score",
            "直接给出的现场评价得分",
            Number,
            |r| match r.entry {
                Entry::Direct(x) => f(x),
                Entry::Ballot { .. } => String::new(),
            },
        )
}

/// One row per ballot, in the order the scoring and its bootstrap read them (units in the
/// round's unit order, ballots in import order), and one row per direct score.
pub(super) fn rows<'a>(cx: &'a Context<'a>) -> Vec<OnsiteLine<'a>> {
    let data = cx.data;
    let survey = data.survey();
    let mut rows = Vec::new();
    for (i, u) in data.units.iter().enumerate() {
        let Some(stored) = data.onsite.get(&u.id) else {
            continue;
        };
        let line = |entry| OnsiteLine {
            unit_no: i + 1,
            unit: cx.unit(u.id),
            entry,
        };
        match stored {
            StoredOnsite::Direct(x) => rows.push(line(Entry::Direct(*x))),
            StoredOnsite::Ballots(ballots) => {
                for (j, b) in ballots.iter().enumerate() {
                    let score = if b.overall {
                        let l = b.levels.first().copied().unwrap_or(0);
                        survey.level_score(l).unwrap_or(0.0)
                    } else {
                        // Same order of summation as the scoring (dimension order).
                        let mut weighted = 0.0;
                        for (d, &l) in b.levels.iter().enumerate() {
                            weighted += survey.weight(d) * survey.level_score(l).unwrap_or(0.0);
                        }
                        weighted
                    };
                    rows.push(line(Entry::Ballot {
                        no: j + 1,
                        ballot: b,
                        score,
                    }));
                }
            }
        }
    }
    rows
}
