//! `sheping report`: arguments and printing; the work is `crate::report`.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;
use clap::Args;

use crate::engine::Store;
use crate::report::{ReportOptions, default_out, run, write_zip};
use crate::results::ResultsOptions;

/// `sheping report`.
#[derive(Args, Debug, Clone)]
pub(super) struct ReportArgs {
    #[arg(long)]
    pub round: String,
    /// Only this unit's feedback page and charts (unit name or unit code).
    #[arg(long)]
    pub unit: Option<String>,
    /// Output directory (default: reports/KEY/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Include the respondents' comments (意见建议), names and numbers masked.
    #[arg(long)]
    pub with_comments: bool,
    /// Also pack the directory as DIR.zip.
    #[arg(long)]
    pub zip: bool,
    /// Leave out the PNG files (quicker; the HTML uses the SVG).
    #[arg(long)]
    pub no_png: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sheping report` on an open store.
pub(super) fn report(store: &dyn Store, args: ReportArgs, actor: &str) -> anyhow::Result<()> {
    let round = store
        .round(&args.round)
        .with_context(|| format!("轮次 {}", args.round))?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&round.key));
    let opts = ReportOptions {
        unit: args.unit.clone(),
        with_comments: args.with_comments,
        skip_png: args.no_png,
        results: ResultsOptions::default(),
    };
    let summary = run(store, &round, &opts, &out, actor, Utc::now())?;
    let zip_path = if args.zip {
        Some(write_zip(&out, &round.key)?)
    } else {
        None
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "summary": summary,
                "zip": zip_path,
            }))?
        );
    } else {
        match &summary.index {
            Some(i) => println!("已写出报告:{}", i.display()),
            None => println!("已写出单位反馈意见:{}", out.join("feedback").display()),
        }
        println!(
            "  单位反馈意见 {} 页,图件 {} 幅,数据文件 {} 个,共 {} 个文件",
            summary.feedback_pages,
            summary.charts,
            summary.exports.len(),
            summary.files
        );
        if let Some(z) = zip_path {
            println!("  压缩包:{}", z.display());
        }
    }
    Ok(())
}
