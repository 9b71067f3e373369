//! The `sheping` command line: a thin layer that parses arguments, calls the library and
//! reports errors with context.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

use crate::domain::phone::mask_canonical;
use crate::domain::round as round_text;
use crate::domain::survey::Survey;
use crate::domain::user::{self, Role};
use crate::engine;
use crate::imports::{self, ImportReport, RosterImport};
use crate::storage::DatabaseLocation;
use crate::storage::prelude::*;
use crate::storage::sqlite::SqliteStore;
use crate::storage::{AttemptInput, NewRound, NewUser};

mod report;
mod results;

#[derive(Parser)]
#[command(
    name = "sheping",
    version,
    about = "社评: telephone social-evaluation survey service"
)]
struct Cli {
    /// SQLite database file; a postgres:// or postgresql:// URL selects PostgreSQL (so far for
    /// `serve`, `demo` and `migrate`; see docs/deploy.md).
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
    /// Users: admins, operators, statisticians, evaluators.
    #[command(subcommand)]
    User(UserCmd),
    /// Operators' conflicts of interest.
    #[command(subcommand)]
    Operators(OperatorsCmd),
    /// Call plans, the operators' queue and call lists.
    #[command(subcommand)]
    Calls(CallsCmd),
    /// Call attempts recorded outside the web form.
    #[command(subcommand)]
    Attempts(AttemptsCmd),
    /// Field progress: dispositions and response rates per unit and operator.
    Progress {
        #[arg(long)]
        round: String,
        #[arg(long)]
        json: bool,
    },
    /// Copy the database with SQLite's online backup (safe while the service runs).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Check the database: integrity, foreign keys, engine invariants, audit chain.
    Check {
        /// Rebuild this round's call queue from the attempts.
        #[arg(long)]
        repair_round: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Social-evaluation results: scores, rank intervals, quality checks (--json for all figures).
    Results(results::ResultsArgs),
    /// On-site evaluation data (现场评价).
    #[command(subcommand)]
    Onsite(results::OnsiteCmd),
    /// Corroborating records (佐证依据): 12345 complaints, petitions, disciplinary cases.
    #[command(subcommand)]
    Evidence(results::EvidenceCmd),
    /// Compare a round's results with another round's (e.g. the previous year's).
    Compare(results::CompareArgs),
    /// Statisticians' exports (anonymised): responses, distributions, scores, dispositions, attempts, operators, codebook, spss.
    Export(results::ExportArgs),
    /// Bearer tokens for the HTTP API.
    #[command(subcommand)]
    Token(results::TokenCmd),
    /// Reports: the round report (index.html), feedback pages per unit, charts and exports.
    Report(report::ReportArgs),
    /// Serve the web console.
    Serve(ServeArgs),
    /// Create the demo round when the database is empty, then serve it.
    Demo(ServeArgs),
    /// Copy a SQLite database into an empty PostgreSQL database, checked table by table
    /// (counts, checksums, audit chain) before it is committed.
    Migrate {
        /// The SQLite database file (opened read-only).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database: postgres://user@host:port/dbname (must hold no rows).
        #[arg(long)]
        to: String,
    },
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
        /// The previous round (its key): compared with on the feedback pages (与上年度比较).
        #[arg(long)]
        previous: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change the field period (an admin's correction; logged).
    Field {
        key: String,
        #[arg(long)]
        from: chrono::NaiveDate,
        #[arg(long)]
        to: chrono::NaiveDate,
    },
    /// Lock a round when its results are final: nothing about it changes afterwards.
    Lock { key: String },
    /// Delete the names and phone numbers of a locked round (data minimisation).
    PurgeContacts { key: String },
    /// Reopen a member (e.g. a refusal) with a reason; logged.
    Reopen {
        key: String,
        #[arg(long)]
        member: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user; without --password-env a password is generated and printed once.
    Add {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// Name of an environment variable holding the password.
        #[arg(long)]
        password_env: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Disable {
        login: String,
    },
}

#[derive(Subcommand)]
enum OperatorsCmd {
    /// Record a conflict of interest: the operator never calls that unit's panel.
    Exclude {
        login: String,
        #[arg(long)]
        round: String,
        #[arg(long)]
        unit: String,
    },
    /// End a conflict of interest recorded by `exclude`.
    Include {
        login: String,
        #[arg(long)]
        round: String,
        #[arg(long)]
        unit: String,
    },
    /// Conflicts of interest per operator and per unit, with each operator's pending contacts.
    List {
        #[arg(long)]
        round: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CallsCmd {
    /// Generate the call plan (members never called get an operator and an order).
    Generate {
        #[arg(long)]
        round: String,
        /// Comma-separated operator logins (default: all active operators).
        #[arg(long, value_delimiter = ',')]
        operators: Option<Vec<String>>,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Move an absent operator's pending calls to others.
    Reassign {
        #[arg(long)]
        round: String,
        #[arg(long)]
        from: String,
        #[arg(long, value_delimiter = ',')]
        to: Option<Vec<String>>,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Write the call lists as CSV (UTF-8 with BOM).
    Export {
        #[arg(long)]
        round: String,
        #[arg(long)]
        operator: Option<String>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Full phone numbers (admins only; logged).
        #[arg(long)]
        reveal_phones: bool,
    },
    /// Claim an operator's next contact (what the web form does), printed as JSON.
    Next {
        #[arg(long)]
        round: String,
        #[arg(long)]
        operator: String,
    },
    /// Record the outcome of a claimed contact.
    Record {
        #[arg(long)]
        round: String,
        #[arg(long)]
        operator: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        outcome: String,
        /// Answers as 1-based level numbers per dimension, e.g. 1,2,1,1,3 (empty for none).
        #[arg(long, default_value = "")]
        answers: String,
        #[arg(long)]
        comment: Option<String>,
        /// Appointment time (local), e.g. "2022-11-03 15:00".
        #[arg(long)]
        appointment: Option<String>,
    },
    /// List the plans of a round with their seeds, algorithms, digests and inputs (JSON).
    Plans {
        #[arg(long)]
        round: String,
        /// Write each plan's inputs to DIR/plan-ID-inputs.json (the format is in docs/plan.md).
        #[arg(long, value_name = "DIR")]
        inputs: Option<PathBuf>,
    },
    /// Re-derive every stored plan from its stored inputs and seed and compare it with what is
    /// stored (digest and current assignments); exit status 1 on any difference.
    Verify {
        #[arg(long)]
        round: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AttemptsCmd {
    /// Load attempts from CSV/XLSX (paper forms, spreadsheets): unit, phone, operator, outcome, at, one column per dimension.
    Import {
        #[arg(long)]
        round: String,
        file: PathBuf,
        #[command(flatten)]
        common: ImportArgs,
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
    /// Correct a member's phone number; reopens the member.
    FixPhone {
        #[arg(long)]
        round: String,
        #[arg(long)]
        member: i64,
        #[arg(long)]
        phone: String,
        #[arg(long, default_value = "号码更正")]
        reason: String,
        #[arg(long)]
        area_code: Option<String>,
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

fn migrate(from: &Path, to: &str) -> Result<ExitCode> {
    let DatabaseLocation::Postgres(_) = to.parse::<DatabaseLocation>()? else {
        bail!("--to 的值 {to} 不是 PostgreSQL 连接地址。格式:postgres://用户@主机:端口/数据库名");
    };
    let report = crate::storage::postgres::copy::migrate(from, to)?;
    println!("迁移完成:{} → PostgreSQL", from.display());
    for t in &report.tables {
        println!(
            "  {:<20} {:>10} 行  校验和 {}",
            t.table,
            t.rows,
            &t.checksum[..16]
        );
    }
    println!(
        "共 {} 张表、{} 行,用时 {:.1} 秒。行数与校验和两边一致;审计日志 {} 条,哈希链完整,链头 {}。",
        report.tables.len(),
        report.rows(),
        report.elapsed.as_secs_f64(),
        report.audit_entries,
        report.audit_head.as_deref().unwrap_or("(空)")
    );
    Ok(ExitCode::SUCCESS)
}

/// The store `--db` names: a SQLite file, or a PostgreSQL database (`postgres://…`), behind
/// the one storage seam every command uses.
fn open(db: &Path) -> Result<Box<dyn Store>> {
    match DatabaseLocation::from_os_str(db.as_os_str())? {
        DatabaseLocation::Postgres(url) => Ok(Box::new(
            crate::storage::postgres::PgBackend::open(url.secret_str())
                .with_context(|| format!("opening database {url}"))?,
        )),
        DatabaseLocation::Sqlite(path) => {
            Ok(Box::new(SqliteStore::open(&path).with_context(|| {
                format!("opening database {}", path.display())
            })?))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Migrate { from, to } => migrate(&from, &to),
        Command::Round(cmd) => round(open(&cli.db)?.as_ref(), cmd),
        Command::Units(UnitsCmd::Import {
            round,
            file,
            common,
        }) => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            let round = store.round(&round)?;
            let table = imports::read_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let report =
                imports::units_import(store, &round, &table, common.skip_invalid, &cli_actor())?;
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
            let store = store.as_ref();
            let round = store.round(&round)?;
            // Read as a stream: province-wide rosters are large, and memory must not grow
            // with them.
            let reader = imports::open_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let opts = RosterImport {
                area_code: area_code.as_deref(),
                skip_invalid: common.skip_invalid,
                replace,
            };
            let report = match imports::roster_import_stream(
                store,
                &round,
                reader,
                &opts,
                &cli_actor(),
                &mut imports::RejectLog::all(),
            ) {
                // A file unreadable halfway reads as one unreadable at the start did.
                Err(e @ imports::ImportError::Table(_)) => {
                    return Err(
                        anyhow::Error::from(e).context(format!("reading {}", file.display()))
                    );
                }
                report => report?,
            };
            finish_import(&report, &common, "名代表")
        }
        Command::Roster(RosterCmd::Show { round, unit, json }) => {
            roster_show(open(&cli.db)?.as_ref(), &round, unit.as_deref(), json)
        }
        Command::Audit(AuditCmd::Verify) => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
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
        Command::User(cmd) => user(open(&cli.db)?.as_ref(), cmd),
        Command::Operators(OperatorsCmd::Exclude { login, round, unit }) => {
            operators_exclusion(open(&cli.db)?.as_ref(), &round, &login, &unit, true)
        }
        Command::Operators(OperatorsCmd::Include { login, round, unit }) => {
            operators_exclusion(open(&cli.db)?.as_ref(), &round, &login, &unit, false)
        }
        Command::Operators(OperatorsCmd::List { round, json }) => {
            operators_list(open(&cli.db)?.as_ref(), &round, json)
        }
        Command::Calls(cmd) => calls(open(&cli.db)?.as_ref(), cmd),
        Command::Attempts(AttemptsCmd::Import {
            round,
            file,
            common,
        }) => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            let round = store.round(&round)?;
            let table = imports::read_file(&file, common.encoding.as_deref())
                .with_context(|| format!("reading {}", file.display()))?;
            let report = imports::attempts_import(
                store,
                &round,
                &table,
                common.skip_invalid,
                &cli_actor(),
                chrono::Utc::now(),
            )?;
            finish_import(&report, &common, "条拨打记录")
        }
        Command::Progress { round, json } => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            let round = store.round(&round)?;
            let p = engine::progress(store, &round, chrono::Utc::now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print_progress(&p);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Roster(RosterCmd::FixPhone {
            round,
            member,
            phone,
            reason,
            area_code,
        }) => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            let round = store.round(&round)?;
            crate::domain::text::check_reason(&reason)?;
            let parsed = crate::domain::phone::parse_phone(&phone, area_code.as_deref())?;
            store.fix_phone(
                &round,
                member,
                parsed.canonical(),
                &reason,
                &cli_actor(),
                chrono::Utc::now(),
            )?;
            println!(
                "已更正代表 {member} 的号码为 {},该代表重新进入拨打队列。",
                parsed.masked()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { out } => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            crate::storage::BackupStore::backup_logged(
                store,
                &out,
                &out.display().to_string(),
                &cli_actor(),
            )?;
            println!("已备份到 {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { repair_round, json } => {
            let store = open(&cli.db)?;
            let store = store.as_ref();
            if let Some(key) = repair_round {
                let n = store.rebuild_queue(&key, chrono::Utc::now())?;
                println!("已根据拨打记录重建轮次 {key} 的拨打队列({n} 名代表)。");
            }
            let report = store.check()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("完整性检查: {}", report.integrity.join("; "));
                println!("外键问题: {}", report.foreign_keys);
                for p in &report.problems {
                    println!("问题: {p}");
                }
                for l in &report.late_records {
                    println!("迟交记录(领取超时后提交,请核查): {l}");
                }
                match &report.audit_break {
                    None => println!("审计日志: {} 条,哈希链完整", report.audit_entries),
                    Some(b) => println!("审计日志被篡改: {b}"),
                }
                println!(
                    "{}",
                    if report.ok() {
                        "检查通过。"
                    } else {
                        "检查未通过。"
                    }
                );
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Results(args) => results::results(&cli.db, args),
        Command::Onsite(cmd) => results::onsite(&cli.db, cmd),
        Command::Evidence(cmd) => results::evidence(&cli.db, cmd),
        Command::Compare(args) => results::compare(&cli.db, args),
        Command::Export(args) => results::export(&cli.db, args),
        Command::Token(cmd) => results::token(&cli.db, cmd),
        Command::Report(args) => {
            report::report(open(&cli.db)?.as_ref(), args, &cli_actor())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(cli.db, args, false),
        Command::Demo(args) => serve(cli.db, args, true),
    }
}

fn round(store: &dyn Store, cmd: RoundCmd) -> Result<ExitCode> {
    match cmd {
        RoundCmd::Create {
            key,
            title,
            survey,
            from,
            to,
            previous,
        } => {
            // Checked before anything is read or stored; the message names the character.
            round_text::validate_round_key(&key)?;
            round_text::validate_round_title(&title)?;
            let text = std::fs::read_to_string(&survey)
                .with_context(|| format!("reading {}", survey.display()))?;
            let parsed =
                Survey::from_toml_str(&text).with_context(|| format!("in {}", survey.display()))?;
            round_text::validate_survey_labels(&parsed)
                .with_context(|| format!("in {}", survey.display()))?;
            let field = match (from, to) {
                (Some(a), Some(b)) => {
                    round_text::check_field_period(a, b)?;
                    Some((a, b))
                }
                (None, None) => None,
                _ => bail!("give both --from and --to for the field period"),
            };
            let previous = previous.map(|p| store.round(&p)).transpose()?;
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
            if let Some(p) = previous {
                RoundStore::set_previous_round(store, &r, &p, &cli_actor())?;
                println!("上一轮:{}", p.key);
            }
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
        RoundCmd::Field { key, from, to } => {
            round_text::check_field_period(from, to)?;
            let round = store.round(&key)?;
            store.set_field_period(&round, from, to, &cli_actor())?;
            println!("轮次 {key} 的调查期改为 {from} 至 {to}。");
            Ok(ExitCode::SUCCESS)
        }
        RoundCmd::Lock { key } => {
            let round = store.round(&key)?;
            store.lock_round(&round, &cli_actor())?;
            println!("轮次 {key} 已锁定:此后不能再修改任何数据。");
            Ok(ExitCode::SUCCESS)
        }
        RoundCmd::PurgeContacts { key } => {
            let round = store.round(&key)?;
            let n = store.purge_contacts(&round, &cli_actor())?;
            println!(
                "已清除轮次 {key} 中 {n} 名代表的姓名和联系方式(存放它们的表已重写,旧值不再留在数据文件中);统计结果与导出不受影响。"
            );
            // Backups taken since the round was created still hold its names and numbers.
            let backups = store.backups_made_since(round.created_at_ms)?;
            if backups.is_empty() {
                println!("审计日志中没有清除前制作的备份。");
            } else {
                println!(
                    "以下 {} 份备份制作于清除之前,仍含有这些姓名和号码,请按规定销毁(包括其复制件):",
                    backups.len()
                );
                for b in &backups {
                    let at = chrono::DateTime::from_timestamp_millis(b.at_ms)
                        .map(|t| {
                            t.with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M")
                                .to_string()
                        })
                        .unwrap_or_default();
                    let state = if Path::new(&b.out).exists() {
                        "文件仍在"
                    } else {
                        "原位置已无此文件,可能已移走"
                    };
                    println!("  {at}\t{}\t({state})", b.out);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RoundCmd::Reopen {
            key,
            member,
            reason,
        } => {
            let round = store.round(&key)?;
            if reason.trim().is_empty() {
                bail!("--reason must say why the member is reopened");
            }
            crate::domain::text::check_reason(&reason)?;
            store.reopen(&round, member, &reason, &cli_actor(), chrono::Utc::now())?;
            println!("已重新开放代表 {member}(原因:{reason})。");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn operators_exclusion(
    store: &dyn Store,
    round: &str,
    login: &str,
    unit: &str,
    excluded: bool,
) -> Result<ExitCode> {
    let round = store.round(round)?;
    let change = engine::set_exclusion(store, &round, login, unit, excluded, &cli_actor())?;
    for m in change.messages() {
        println!("{m}");
    }
    Ok(ExitCode::SUCCESS)
}

fn operators_list(store: &dyn Store, round: &str, json: bool) -> Result<ExitCode> {
    let round = store.round(round)?;
    let o = engine::exclusions(store, &round)?;
    let names: std::collections::BTreeMap<i64, String> = store
        .units(round.id)?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    let name = |id: &i64| names.get(id).cloned().unwrap_or_default();
    if json {
        let doc = serde_json::json!({
            "by_operator": o.by_operator.iter().map(|(op, units)| {
                (op.clone(), units.iter().map(name).collect::<Vec<_>>())
            }).collect::<std::collections::BTreeMap<_, _>>(),
            "by_unit": o.by_unit.iter().map(|(u, ops)| (name(u), ops.clone()))
                .collect::<std::collections::BTreeMap<_, _>>(),
            "pending_per_operator": o.balance,
            "conflicts": o.conflicts.iter().map(|((op, u), n)| {
                serde_json::json!({ "operator": op, "unit": name(u), "pending": n })
            }).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    if o.by_operator.is_empty() {
        println!("本轮没有回避记录。");
    }
    for (op, units) in &o.by_operator {
        let list: Vec<String> = units.iter().map(name).collect();
        println!("{op}\t回避:{}", list.join("、"));
    }
    println!("各话务员待拨代表:");
    for (op, n) in &o.balance {
        println!("{op}\t{n}");
    }
    for ((op, u), n) in &o.conflicts {
        println!(
            "注意:{op} 还有“{}”的 {n} 名待拨代表(回避在重新生成计划或转派后生效)",
            name(u)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn user(store: &dyn Store, cmd: UserCmd) -> Result<ExitCode> {
    match cmd {
        UserCmd::Add {
            login,
            name,
            role,
            password_env,
        } => {
            user::validate_login(&login)?;
            let role = Role::parse(&role).ok_or_else(|| user::UserError::BadRole(role.clone()))?;
            user::validate_name(&name)?;
            let (password, generated) = match password_env {
                Some(var) => (
                    std::env::var(&var)
                        .with_context(|| format!("environment variable {var} is not set"))?,
                    false,
                ),
                None => (user::generate_password(&mut rand::rng()), true),
            };
            user::validate_password(&password)?;
            let u = store.add_user(
                &NewUser {
                    login,
                    name,
                    role,
                    password_hash: user::hash_password(&password),
                },
                &cli_actor(),
            )?;
            println!("已添加用户 {}({},{})", u.login, u.name, u.role.label());
            if generated {
                println!("初始密码(只显示这一次): {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCmd::List { json } => {
            let users = store.users()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in users {
                    let state = if u.active { "" } else { " [已停用]" };
                    println!("{}\t{}\t{}{state}", u.login, u.name, u.role.key());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCmd::Disable { login } => {
            store.set_user_active(&login, false, &cli_actor())?;
            println!("已停用用户 {login}。");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn calls(store: &dyn Store, cmd: CallsCmd) -> Result<ExitCode> {
    let now = chrono::Utc::now();
    match cmd {
        CallsCmd::Generate {
            round,
            operators,
            seed,
        } => {
            let round = store.round(&round)?;
            let ops = engine::plan_operators(store, operators.as_deref())?;
            let seed = seed.unwrap_or_else(engine::random_seed);
            let out = engine::generate_plan(store, &round, ops, seed, &cli_actor())?;
            println!(
                "已生成拨打计划 #{}: {} 名代表分配给 {} 名话务员(种子 {},算法 {},摘要 {})",
                out.plan.id,
                out.planned,
                out.plan.operators.len(),
                out.plan.seed,
                out.plan.algorithm,
                out.plan.digest
            );
            if out.called > 0 {
                println!(
                    "已拨打过的 {} 名代表保持原分配不变,只重新安排从未拨打的代表。",
                    out.called
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Reassign {
            round,
            from,
            to,
            seed,
        } => {
            let round = store.round(&round)?;
            let targets = match to {
                Some(t) => engine::plan_operators(store, Some(&t))?,
                None => engine::plan_operators(store, None)?
                    .into_iter()
                    .filter(|l| *l != from)
                    .collect(),
            };
            let seed = seed.unwrap_or_else(engine::random_seed);
            let out = engine::reassign(store, &round, &from, targets, seed, &cli_actor())?;
            println!(
                "已将 {from} 的 {} 个待拨任务转给 {}(种子 {},摘要 {})",
                out.planned,
                out.plan.operators.join("、"),
                out.plan.seed,
                out.plan.digest
            );
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Export {
            round,
            operator,
            out,
            reveal_phones,
        } => {
            let round = store.round(&round)?;
            let rows =
                engine::call_list_rows(store, &round, operator.as_deref(), reveal_phones, now)?;
            store.audit(&crate::storage::AuditEvent {
                actor: &cli_actor(),
                action: if reveal_phones {
                    "export.call_list.reveal_phones"
                } else {
                    "export.call_list"
                },
                round_key: Some(&round.key),
                detail: serde_json::json!({ "operator": operator, "rows": rows.len() }),
            })?;
            match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    crate::tabular::write_csv(
                        std::io::BufWriter::new(file),
                        &engine::CALL_LIST_COLUMNS,
                        rows,
                        true,
                    )?;
                    eprintln!("已写出拨打清单 {}", path.display());
                }
                None => crate::tabular::write_csv(
                    std::io::stdout().lock(),
                    &engine::CALL_LIST_COLUMNS,
                    rows,
                    true,
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Next { round, operator } => {
            let round = store.round(&round)?;
            let op = store.user(&operator)?;
            match store.claim_next(&round, &op, now)? {
                Some(claim) => println!("{}", serde_json::to_string_pretty(&claim)?),
                None => println!("null"),
            }
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Record {
            round,
            operator,
            token,
            outcome,
            answers,
            comment,
            appointment,
        } => {
            let round = store.round(&round)?;
            let op = store.user(&operator)?;
            let outcome = crate::domain::disposition::Outcome::parse(&outcome)
                .ok_or_else(|| anyhow!("unknown outcome `{outcome}`"))?;
            let answers = if answers.trim().is_empty() {
                Vec::new()
            } else {
                answers
                    .split(',')
                    .map(|a| match a.trim() {
                        "" => Ok(None),
                        t => round
                            .survey
                            .find_level(t)
                            .map(Some)
                            .ok_or_else(|| anyhow!("unknown answer `{t}`")),
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            let appointment = match appointment {
                Some(t) => Some(
                    imports::parse_local_time(&t, round.survey.timezone())
                        .ok_or_else(|| anyhow!("unknown time `{t}`"))?,
                ),
                None => None,
            };
            let input = AttemptInput {
                outcome: Some(outcome),
                answers,
                answer_ms: Vec::new(),
                comment,
                appointment,
            };
            let rec = store.record(&round, &token, &op, &input, now)?;
            println!("{}", serde_json::to_string_pretty(&rec)?);
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Plans { round, inputs } => {
            let round = store.round(&round)?;
            if let Some(dir) = &inputs {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut listed = Vec::new();
            for plan in store.plans(&round)? {
                let stored = store.plan_inputs(&round, plan.id)?;
                // Where the inputs are: the file written now, or how to get it.
                let inputs_at = match (&stored, &inputs) {
                    (None, _) => serde_json::Value::Null,
                    (Some(text), Some(dir)) => {
                        let path = dir.join(format!("plan-{}-inputs.json", plan.id));
                        std::fs::write(&path, text)
                            .with_context(|| format!("writing {}", path.display()))?;
                        path.display().to_string().into()
                    }
                    (Some(_), None) => format!(
                        "sheping calls plans --round {} --inputs DIR",
                        shell_word(&round.key)
                    )
                    .into(),
                };
                let mut value = serde_json::to_value(&plan)?;
                value["inputs"] = inputs_at;
                listed.push(value);
            }
            println!("{}", serde_json::to_string_pretty(&listed)?);
            if let Some(dir) = inputs {
                eprintln!(
                    "已写出各计划的输入到 {}(格式见 docs/plan.md;代表的单位编号与代表编号也在 `calls export` 的 unit_id、member_id 列)",
                    dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CallsCmd::Verify { round, json } => {
            let round = store.round(&round)?;
            let checks = engine::verify_plans(store, &round)?;
            let bad = checks.iter().filter(|c| !c.ok()).count();
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                for c in &checks {
                    println!(
                        "计划 #{}({},种子 {},算法 {},摘要 {}):{}",
                        c.plan_id,
                        c.kind,
                        c.seed,
                        c.algorithm,
                        c.stored_digest,
                        if c.ok() {
                            format!(
                                "一致(重算 {} 名代表;当前仍属本计划的 {} 条分配逐条相同)",
                                c.members, c.current
                            )
                        } else {
                            "不一致".to_string()
                        }
                    );
                    for p in &c.problems {
                        println!("  - {p}");
                    }
                }
            }
            if checks.is_empty() {
                eprintln!("轮次 {} 还没有拨打计划", round.key);
            }
            if bad > 0 {
                eprintln!("{bad} 个计划与重算结果不一致或无法复核");
                Ok(ExitCode::from(1))
            } else {
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// A round key as one shell word (keys are letters, digits, Chinese, `-`, `_`, `.`: safe as is).
fn shell_word(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn print_progress(p: &engine::ProgressReport) {
    println!(
        "轮次 {}{}",
        p.round,
        if p.field_closed {
            "(调查期已结束)"
        } else {
            ""
        }
    );
    println!("单位\t代表\t完成\t部分\t待拨\t通话中\t已结案\tRR1\tRR2\tCOOP1\tREF1\tCON1");
    let line = |name: &str, t: &crate::domain::progress::Tally| {
        println!(
            "{name}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.panel,
            t.completes,
            t.partials,
            t.pending,
            t.in_progress,
            t.final_,
            pct(t.rates.rr1),
            pct(t.rates.rr2),
            pct(t.rates.coop1),
            pct(t.rates.ref1),
            pct(t.rates.con1)
        )
    };
    for u in &p.units {
        line(&u.unit, &u.tally);
    }
    line("合计", &p.overall);
    println!();
    println!("话务员\t拨打次数\t完成\t完成率\t未结案");
    for o in &p.operators {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            o.operator,
            o.attempts,
            o.completes,
            pct(o.completion_rate),
            o.open_assigned
        );
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

fn roster_show(store: &dyn Store, round: &str, unit: Option<&str>, json: bool) -> Result<ExitCode> {
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
            // Names stored before control characters were refused must not reach the
            // terminal's control sequences.
            use crate::domain::text::for_terminal;
            println!(
                "{}\t{}\t{}\t{}",
                for_terminal(&m.unit),
                for_terminal(m.name.as_deref().unwrap_or("(已清除)")),
                m.phone.as_deref().unwrap_or("-"),
                m.category.label()
            );
        }
        println!("共 {} 名代表", members.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(db: PathBuf, args: ServeArgs, demo: bool) -> Result<ExitCode> {
    if let DatabaseLocation::Postgres(url) = DatabaseLocation::from_os_str(db.as_os_str())? {
        return serve_postgres(url, args, demo);
    }
    let store = std::sync::Arc::new(
        SqliteStore::open(&db).with_context(|| format!("opening database {}", db.display()))?,
    );
    if demo {
        crate::demo::ensure_demo(store.as_ref())?;
    }
    let served = std::sync::Arc::clone(&store);
    let rt = tokio::runtime::Runtime::new()?;
    let outcome = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let addr = listener.local_addr()?;
        // Installed before the address is announced, so a SIGTERM from then on stops gracefully.
        let stop = crate::web::shutdown_signal();
        println!("sheping 已启动: http://{addr}/  (数据库 {})", db.display());
        if demo {
            crate::demo::print_logins();
        }
        crate::web::serve(listener, served, stop).await?;
        Ok::<_, anyhow::Error>(())
    });
    // The requests in flight have finished; background work still on the blocking pool gets
    // a moment, then the WAL goes into the database file so the `.db` alone holds everything.
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    match store.checkpoint(std::time::Duration::from_secs(10)) {
        Ok(c) if c.complete => tracing::info!("stopped; the database file holds every write"),
        Ok(_) => tracing::warn!(
            "stopped, but another process is reading the database: its WAL was not emptied"
        ),
        Err(e) => tracing::error!(error = %e, "checkpoint at shutdown failed"),
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// `serve` (and `demo`) on PostgreSQL: several instances may serve one database at once; the
/// database keeps every write, so there is no checkpoint at the end.
fn serve_postgres(
    url: crate::storage::location::PostgresUrl,
    args: ServeArgs,
    demo: bool,
) -> Result<ExitCode> {
    let store = std::sync::Arc::new(crate::storage::postgres::PgBackend::open(url.secret_str())?);
    if demo {
        crate::demo::ensure_demo(store.as_ref())?;
    }
    let served = std::sync::Arc::clone(&store);
    let rt = tokio::runtime::Runtime::new()?;
    let outcome = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.addr)
            .await
            .with_context(|| format!("binding {}", args.addr))?;
        let addr = listener.local_addr()?;
        let stop = crate::web::shutdown_signal();
        println!("sheping 已启动: http://{addr}/  (数据库 {url})");
        if demo {
            crate::demo::print_logins();
        }
        crate::web::serve(listener, served, stop).await?;
        Ok::<_, anyhow::Error>(())
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(10));
    outcome?;
    Ok(ExitCode::SUCCESS)
}
