//! Log levels and log lines: what the guest's `log` calls and the host's
//! warnings produce.

use std::fmt;
use std::sync::Arc;

/// Log levels of `log` / `log_enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LogLevel {
    /// -1
    #[default]
    Debug,
    /// 0
    Info,
    /// 1
    Warn,
    /// 2
    Error,
    /// 3: nothing is logged at this level.
    None,
}

impl LogLevel {
    /// Decode the ABI's number; values past either end clamp to it.
    pub fn from_raw(raw: i32) -> LogLevel {
        match raw {
            i32::MIN..=-1 => LogLevel::Debug,
            0 => LogLevel::Info,
            1 => LogLevel::Warn,
            2 => LogLevel::Error,
            _ => LogLevel::None,
        }
    }

    /// The ABI's number.
    pub fn raw(self) -> i32 {
        match self {
            LogLevel::Debug => -1,
            LogLevel::Info => 0,
            LogLevel::Warn => 1,
            LogLevel::Error => 2,
            LogLevel::None => 3,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::None => "none",
        })
    }
}

/// A receiver of log lines (guest `log` calls and host warnings).
pub type LogSink = Arc<dyn Fn(&LogLine) + Send + Sync>;

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// The message as the guest wrote it (lossy UTF-8).
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level, self.message)
    }
}
