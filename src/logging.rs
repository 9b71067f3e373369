//! Log setup: `RUST_LOG` decides, quiet by default on the command line.
//!
//! Logs go to stderr, coloured only when stderr is a terminal (a file or a pipe to a log
//! collector gets no escape codes). `SHEPING_LOG_FORMAT=json` writes one JSON object per line
//! for journald, ELK and the like; `text` (the default) writes plain lines.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// Reads `SHEPING_LOG_FORMAT`'s value; `None` for anything but `text` or `json`.
    pub fn parse(value: &str) -> Option<LogFormat> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sheping=info"));
    let raw = std::env::var("SHEPING_LOG_FORMAT").unwrap_or_default();
    let format = LogFormat::parse(&raw).unwrap_or_else(|| {
        // Logging is not set up yet: say it on stderr and go on with plain lines.
        eprintln!("提示: SHEPING_LOG_FORMAT={raw} 无效(可用 text 或 json),按 text 输出日志。");
        LogFormat::Text
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        // JSON never carries colour codes.
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_format() {
        assert_eq!(LogFormat::parse("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(" JSON "), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse(""), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
