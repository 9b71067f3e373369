//! The `sheping` command line: a thin layer that parses arguments, calls the library and
//! reports errors with context.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

use crate::domain::phone::mask_canonical;
use crate::domain::survey::Survey;
use crate::imports::{self, ImportReport, RosterImport};
use crate::storage::sqlite::SqliteStore;
use crate::storage::{NewRound, Storage};

#[derive(Parser)]
#[command(
    name = "sheping",
    version,
    about = "社评: telephone social-evaluation survey service"
)]
struct Cli {
    /// SQLite database file.
    #[arg(
        long,
        global = true,
        env = "SHEPING_DB",
        default_value = "data/sheping.db"
    )]
    db: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluation rounds (评估轮次).
    #[command(subcommand)]
    Round(RoundCmd),
    /// Units under evaluation (参评单位).
    #[command(subcommand)]
    Units(UnitsCmd),
    /// The contact database of representatives (电话调查数据库).
    #[command(subcommand)]
    Roster(RosterCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Serve the web console.
    Serve(ServeArgs),
    /// Create the demo round when the database is empty, then serve it.
    Demo(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "SHEPING_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
}

#[derive(Subcommand)]
enum RoundCmd {
    /// Create a round; it keeps a copy of its survey definition.
    Create {
        key: String,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "surveys/default.toml")]
        survey: PathBuf,
        /// First day of the field period (YYYY-MM-DD).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day of the field period (YYYY-MM-DD).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UnitsCmd {
    /// Import units from CSV/TSV/XLSX (columns 单位名称, 单位类型, 系统, 单位代码).
    Import {
        #[arg(long)]
        round: String,
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
    },
}

#[derive(Args)]
struct ImportArgs {
    /// Store the valid rows and skip the rejected ones.
    #[arg(long)]
    skip_invalid: bool,
    /// With --skip-invalid: write the rejected rows and their errors to this CSV.
    #[arg(long)]
    rejects: Option<PathBuf>,
    /// Text encoding of the file (utf-8, utf-16, gbk, gb18030); detected when omitted.
    #[arg(long)]
    encoding: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum RosterCmd {
    /// Import representatives (参评单位, 姓名, 联系电话, 代表类别, 工作单位及职务, 备注).
    Import {
        #[arg(long)]
        round: String,
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
        /// Area code for bare local numbers, e.g. 0915.
        #[arg(long)]
        area_code: Option<String>,
        /// Replace the panels of the units in the file (refused once calls were made).
        #[arg(long)]
        replace: bool,
    },
    /// List panels with masked phone numbers.
    Show {
        #[arg(long)]
        round: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the audit log's hash chain.
    Verify,
}

/// The actor recorded in the audit log for command-line actions.
fn cli_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("错误: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn open(db: &Path) -> Result<SqliteStore> {
    SqliteStore::open(db).with_context(|| format!("opening database {}", db.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Round(cmd) => round(&open(&cli.db)?, cmd),
        Command::Units(UnitsCmd::Import {
            round,
            file,
            common,
        }) => {
            let store = open(&cli.db)?;
            let round = store.round(&round)?;
            let table = imports::read_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let report =
                imports::units_import(&store, &round, &table, common.skip_invalid, &cli_actor())?;
            finish_import(&report, &common, "个单位")
        }
        Command::Roster(RosterCmd::Import {
            round,
            file,
            common,
            area_code,
            replace,
        }) => {
            let store = open(&cli.db)?;
            let round = store.round(&round)?;
            let table = imports::read_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let opts = RosterImport {
                area_code: area_code.as_deref(),
                skip_invalid: common.skip_invalid,
                replace,
            };
            let report = imports::roster_import(&store, &round, &table, &opts, &cli_actor())?;
            finish_import(&report, &common, "名代表")
        }
        Command::Roster(RosterCmd::Show { round, unit, json }) => {
            roster_show(&open(&cli.db)?, &round, unit.as_deref(), json)
        }
        Command::Audit(AuditCmd::Verify) => {
            let store = open(&cli.db)?;
            match store.verify_audit()? {
                Ok(n) => {
                    println!("审计日志完整:{n} 条记录,哈希链无断裂。");
                    Ok(ExitCode::SUCCESS)
                }
                Err(brk) => {
                    println!("审计日志被篡改: {brk}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Serve(args) => serve(cli.db, args, false),
        Command::Demo(args) => serve(cli.db, args, true),
    }
}

fn round(store: &SqliteStore, cmd: RoundCmd) -> Result<ExitCode> {
    match cmd {
        RoundCmd::Create {
            key,
            title,
            survey,
            from,
            to,
        } => {
            if key.trim().is_empty()
                || key.len() > 40
                || key.chars().any(|c| c.is_whitespace() || c == '/')
            {
                bail!(
                    "round key `{key}` must be 1–40 characters without spaces or `/` (e.g. 2022)"
                );
            }
            let text = std::fs::read_to_string(&survey)
                .with_context(|| format!("reading {}", survey.display()))?;
            let parsed =
                Survey::from_toml_str(&text).with_context(|| format!("in {}", survey.display()))?;
            let field = match (from, to) {
                (Some(a), Some(b)) if a <= b => Some((a, b)),
                (Some(_), Some(_)) => bail!("--from must not be after --to"),
                (None, None) => None,
                _ => bail!("give both --from and --to for the field period"),
            };
            let r = store.create_round(
                &NewRound {
                    key,
                    title,
                    survey: parsed,
                    survey_source: survey.display().to_string(),
                    field,
                },
                &cli_actor(),
            )?;
            println!(
                "已创建评估轮次 {}「{}」(问卷 {})",
                r.key, r.title, r.survey_source
            );
            Ok(ExitCode::SUCCESS)
        }
        RoundCmd::List { json } => {
            let rounds = store.rounds()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rounds)?);
            } else if rounds.is_empty() {
                println!("还没有评估轮次。用 `sheping round create KEY --title 标题` 创建。");
            } else {
                for r in rounds {
                    let lock = if r.round.is_locked() {
                        " [已锁定]"
                    } else {
                        ""
                    };
                    println!(
                        "{}\t{}\t{} 个单位\t{} 名代表{lock}",
                        r.round.key, r.round.title, r.units, r.members
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn finish_import(report: &ImportReport, common: &ImportArgs, noun: &str) -> Result<ExitCode> {
    if let Some(path) = &common.rejects {
        if !common.skip_invalid {
            bail!("--rejects goes with --skip-invalid");
        }
        report.write_rejects(path)?;
    }
    if common.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for r in &report.rejected {
            eprintln!("第 {} 行 [{}]: {}", r.line, r.field, r.error);
        }
        for w in &report.warnings {
            eprintln!("提示: {w}");
        }
        if report.applied {
            println!("已导入 {} {noun}。", report.imported);
            if !report.rejected.is_empty() {
                println!("跳过 {} 行有误的数据。", report.rejected.len());
            }
        } else {
            println!(
                "有 {} 行数据有误,未导入任何数据。请改正后重新导入,或加 --skip-invalid 只导入正确的行。",
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

fn roster_show(
    store: &SqliteStore,
    round: &str,
    unit: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let round = store.round(round)?;
    let unit_id = match unit {
        Some(name) => Some(
            store
                .units(round.id)?
                .into_iter()
                .find(|u| u.name == name)
                .ok_or_else(|| anyhow!("单位“{name}”不在轮次 {} 中", round.key))?
                .id,
        ),
        None => None,
    };
    let mut members = store.members(round.id, unit_id)?;
    for m in &mut members {
        m.phone = m.phone.as_deref().map(mask_canonical);
        m.phone_alt = m.phone_alt.as_deref().map(mask_canonical);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&members)?);
    } else {
        for m in &members {
            println!(
                "{}\t{}\t{}\t{}",
                m.unit,
                m.name.as_deref().unwrap_or("(已清除)"),
                m.phone.as_deref().unwrap_or("-"),
                m.category.label()
            );
        }
        println!("共 {} 名代表", members.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(db: PathBuf, args: ServeArgs, demo: bool) -> Result<ExitCode> {
    let store = open(&db)?;
    if demo {
        crate::demo::ensure_demo(&store)?;
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let addr = listener.local_addr()?;
        println!("sheping 已启动: http://{addr}/  (数据库 {})", db.display());
        crate::web::serve(
            listener,
            std::sync::Arc::new(store),
            crate::web::shutdown_signal(),
        )
        .await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
