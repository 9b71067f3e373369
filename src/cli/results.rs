//! `sheping results`, `sheping onsite`, `sheping export` and `sheping token`: the scoring
//! work's commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};

use super::{ImportArgs, cli_actor, finish_import, open};
use crate::exports::{self, ExportFormat, ExportKind, ExportOptions};
use crate::imports::{self, EvidenceImport, OnsiteImport};
use crate::results::{self, ResultsOptions};
use crate::storage::StoredOnsite;

/// Options of the computation (defaults: the round's stored seed, 2,000 replicates, bottom 3,
/// 60 s, 2 s).
#[derive(Args, Debug, Clone, Default)]
pub(super) struct ScoringArgs {
    /// Bootstrap seed for this computation only (default: the round's stored seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Bootstrap replicates (default 2000; 0 for no rank intervals).
    #[arg(long)]
    replicates: Option<u32>,
    /// `p_bottom` is the probability of falling in the bottom K (default 3).
    #[arg(long)]
    bottom_k: Option<u32>,
    /// Completes shorter than this many seconds are listed as suspicious (default 60).
    #[arg(long)]
    min_duration: Option<f64>,
    /// Completes whose median gap between answers is below this many seconds are listed (default 2).
    #[arg(long)]
    min_gap: Option<f64>,
}

impl ScoringArgs {
    fn options(&self) -> ResultsOptions {
        ResultsOptions {
            seed: self.seed,
            replicates: self.replicates,
            bottom_k: self.bottom_k,
            min_duration_secs: self.min_duration,
            min_median_gap_secs: self.min_gap,
        }
    }
}

#[derive(Args)]
pub(super) struct ResultsArgs {
    #[arg(long)]
    round: String,
    /// Every figure unrounded, as JSON (the same document as the HTTP API).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    scoring: ScoringArgs,
}

#[derive(Subcommand)]
pub(super) enum OnsiteCmd {
    /// Import on-site ballots (unit, ballot, one column per dimension or `overall`) or direct
    /// scores (unit, score).
    Import {
        #[arg(long)]
        round: String,
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
        /// Replace the stored on-site data of the units in the file.
        #[arg(long)]
        replace: bool,
    },
    /// On-site data per unit: ballots or direct score.
    Show {
        #[arg(long)]
        round: String,
        #[arg(long)]
        json: bool,
    },
}

/// `sheping compare --round A --with B`.
#[derive(Args)]
pub(super) struct CompareArgs {
    #[arg(long)]
    round: String,
    /// The round to compare with (e.g. the previous year's).
    #[arg(long)]
    with: String,
    #[arg(long)]
    json: bool,
    /// Also write the chart of both rounds' social points (.svg or .png).
    #[arg(long)]
    chart: Option<PathBuf>,
}

pub(super) fn compare(db: &Path, args: CompareArgs) -> Result<ExitCode> {
    let store = open(db)?;
    let store = store.as_ref();
    let a = store.round(&args.round)?;
    let b = store.round(&args.with)?;
    let doc = crate::compare::compare_rounds(store, &a, &b, chrono::Utc::now(), &cli_actor())?;
    if let Some(path) = &args.chart {
        let max = a.survey.scoring.phone_points + a.survey.scoring.onsite_points;
        let chart = crate::compare::change_chart(&doc, max);
        let bytes = match path.extension().and_then(|e| e.to_str()) {
            Some("png") => crate::charts::png(&chart, crate::charts::PNG_SCALE)?,
            Some("svg") => crate::charts::svg(&chart)?.into_bytes(),
            _ => bail!("--chart 的文件名须以 .svg 或 .png 结尾:{}", path.display()),
        };
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", crate::compare::render_table(&doc));
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub(super) enum EvidenceCmd {
    /// Import corroborating records (参评单位, 类别, 数量, optional 业务量, 来源, 备注): all
    /// or nothing.
    Import {
        #[arg(long)]
        round: String,
        file: PathBuf,
        /// Replace all of the round's stored evidence with the file's.
        #[arg(long)]
        replace: bool,
        /// Text encoding of the file (utf-8, utf-16, gbk, gb18030); detected when omitted.
        #[arg(long)]
        encoding: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(super) struct ExportArgs {
    /// responses, distributions, scores, dispositions, attempts, operators, codebook (also writes the
    /// SPSS syntax beside it as .sps) or spss.
    kind: String,
    #[arg(long)]
    round: String,
    #[arg(long)]
    out: PathBuf,
    /// csv or xlsx (default: from the file name, else csv).
    #[arg(long)]
    format: Option<String>,
    /// CSV without the UTF-8 BOM (Excel/WPS need the BOM to read Chinese correctly).
    #[arg(long)]
    no_bom: bool,
    /// Include the operators' comments (names and phone numbers in them are masked); logged.
    #[arg(long)]
    with_comments: bool,
    /// The responses CSV that the SPSS syntax reads (codebook and spss).
    #[arg(long, default_value = "responses.csv")]
    responses_file: String,
    #[command(flatten)]
    scoring: ScoringArgs,
}

#[derive(Subcommand)]
pub(super) enum TokenCmd {
    /// Create a bearer token for the HTTP API; printed once, only its hash is stored.
    Create {
        #[arg(long)]
        login: String,
        /// What the token is for (shown in `token list`).
        #[arg(long, default_value = "")]
        label: String,
        /// Days until the token expires (0: never).
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its number (from `token list`).
    Revoke { id: i64 },
}

pub(super) fn results(db: &Path, args: ResultsArgs) -> Result<ExitCode> {
    let store = open(db)?;
    let store = store.as_ref();
    let round = store.round(&args.round)?;
    let doc = results::compute(
        store,
        &round,
        &args.scoring.options(),
        chrono::Utc::now(),
        &cli_actor(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", results::render_table(&doc));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn onsite(db: &Path, cmd: OnsiteCmd) -> Result<ExitCode> {
    let store = open(db)?;
    let store = store.as_ref();
    match cmd {
        OnsiteCmd::Import {
            round,
            file,
            common,
            replace,
        } => {
            let round = store.round(&round)?;
            let table = imports::read_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let report = imports::onsite_import(
                store,
                &round,
                &table,
                &OnsiteImport {
                    skip_invalid: common.skip_invalid,
                    replace,
                },
                &cli_actor(),
            )?;
            finish_import(&report, &common, "条现场评价数据")
        }
        OnsiteCmd::Show { round, json } => {
            let round = store.round(&round)?;
            let data = store.onsite(round.id)?;
            let units = store.units(round.id)?;
            if json {
                let rows: Vec<_> = units
                    .iter()
                    .map(|u| serde_json::json!({ "unit": u.name, "onsite": data.get(&u.id) }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for u in &units {
                    let what = match data.get(&u.id) {
                        None => "无现场评价数据".to_string(),
                        Some(StoredOnsite::Direct(x)) => format!("直接得分 {x}"),
                        Some(StoredOnsite::Ballots(b)) => format!("{} 张选票", b.len()),
                    };
                    println!("{}\t{what}", u.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(super) fn evidence(db: &Path, cmd: EvidenceCmd) -> Result<ExitCode> {
    let store = open(db)?;
    let store = store.as_ref();
    let EvidenceCmd::Import {
        round,
        file,
        replace,
        encoding,
        json,
    } = cmd;
    let round = store.round(&round)?;
    let table = imports::read_file(&file, encoding.as_deref())
        .with_context(|| format!("reading {}", file.display()))?;
    let report = imports::evidence_import(
        store,
        &round,
        &table,
        &EvidenceImport { replace },
        &cli_actor(),
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.rejected {
            eprintln!("第 {} 行 [{}]: {}", r.line, r.field, r.error);
        }
        for w in &report.warnings {
            eprintln!("提示: {w}");
        }
        if report.applied {
            println!("已导入 {} 条佐证数据。", report.imported);
        } else if !report.rejected.is_empty() {
            println!(
                "有 {} 行数据有误,未导入任何数据。请改正后重新导入。",
                report.rejected.len()
            );
        }
    }
    Ok(if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) fn export(db: &Path, args: ExportArgs) -> Result<ExitCode> {
    let kind = ExportKind::parse(&args.kind).ok_or_else(|| {
        let kinds: Vec<&str> = ExportKind::all().iter().map(|k| k.key()).collect();
        anyhow!("不认识的导出种类“{}”:可选 {}", args.kind, kinds.join("、"))
    })?;
    let format = match &args.format {
        Some(f) => {
            ExportFormat::parse(f).ok_or_else(|| anyhow!("不认识的格式“{f}”:可选 csv、xlsx"))?
        }
        None => ExportFormat::from_path(&args.out),
    };
    if kind == ExportKind::Spss && args.format.is_some() {
        bail!("spss 导出的是 SPSS 语法文本(.sps),不接受 --format");
    }
    let store = open(db)?;
    let store = store.as_ref();
    let round = store.round(&args.round)?;
    let opts = ExportOptions {
        format,
        bom: !args.no_bom,
        with_comments: args.with_comments,
        responses_file: args.responses_file,
        results: args.scoring.options(),
    };
    let summary = exports::export_to_file(
        store,
        &round,
        kind,
        &args.out,
        &opts,
        &cli_actor(),
        chrono::Utc::now(),
    )?;
    for f in &summary.files {
        eprintln!("已写出 {}", f.display());
    }
    println!(
        "已导出{}:{} 行({})",
        kind.label(),
        summary.rows,
        summary.format
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn token(db: &Path, cmd: TokenCmd) -> Result<ExitCode> {
    let store = open(db)?;
    let store = store.as_ref();
    match cmd {
        TokenCmd::Create { login, label, days } => {
            let created = results::create_api_token(
                store,
                &login,
                &label,
                days,
                &cli_actor(),
                chrono::Utc::now(),
            )?;
            println!("{}", created.secret);
            for note in created.notes() {
                eprintln!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::List { json } => {
            let tokens = store.api_tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                let now = chrono::Utc::now();
                let time = |ms: Option<i64>| {
                    ms.map(|t| {
                        crate::storage::ms_to_utc(t)
                            .format("%Y-%m-%d %H:%M")
                            .to_string()
                    })
                    .unwrap_or_else(|| "—".into())
                };
                println!("编号\t用户\t角色\t前缀\t说明\t创建\t到期\t最近使用\t状态");
                for t in &tokens {
                    let state = t.state_label(now);
                    println!(
                        "{}\t{}\t{}\t{}…\t{}\t{}\t{}\t{}\t{state}",
                        t.id,
                        t.login,
                        t.role.key(),
                        t.prefix,
                        t.label,
                        time(Some(t.created_at_ms)),
                        time(t.expires_at_ms),
                        time(t.last_used_at_ms)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Revoke { id } => {
            store.revoke_api_token(id, &cli_actor())?;
            println!("已吊销 API 令牌 #{id}。");
            Ok(ExitCode::SUCCESS)
        }
    }
}
