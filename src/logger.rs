//! The stderr logger behind the `log` facade: warnings always (as
//! `ims-patch: warning: ...`), `-v` lines (info) only when verbose, each
//! written whole in one call. A progress bar can take the output over with
//! [`set_writer`] so that log lines do not tear it.

use std::io::Write;
use std::sync::RwLock;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Where log lines go instead of stderr (one whole line per call).
pub type Writer = Box<dyn Fn(&str) + Send + Sync>;

struct Logger {
    writer: RwLock<Option<Writer>>,
}

static LOGGER: Logger = Logger {
    writer: RwLock::new(None),
};

/// A record as its line: info and debug as they are (`-v` lines), warnings
/// and errors with the program's prefix; control and bidi characters
/// escaped (a line may quote server text).
pub fn format(level: Level, message: &str) -> String {
    let message = crate::sanitize::escape_keep_newlines(message);
    match level {
        Level::Error => format!("ims-patch: error: {message}"),
        Level::Warn => format!("ims-patch: warning: {message}"),
        _ => message.to_string(),
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format(record.level(), &record.args().to_string());
        match self.writer.read().ok().as_deref() {
            Some(Some(writer)) => writer(&line),
            // A closed stderr is not worth a panic.
            _ => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the logger (once; later calls only set the level): warnings,
/// and with `verbose` the `-v` lines too.
pub fn init(verbose: bool) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if verbose {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    });
}

/// Sends log lines to `writer` (a progress bar's `println`), or back to
/// stderr with `None`.
pub fn set_writer(writer: Option<Writer>) {
    if let Ok(mut w) = LOGGER.writer.write() {
        *w = writer;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_the_documented_form() {
        assert_eq!(format(Level::Info, "> GET http://x"), "> GET http://x");
        assert_eq!(format(Level::Warn, "w"), "ims-patch: warning: w");
        assert_eq!(format(Level::Error, "e"), "ims-patch: error: e");
        assert_eq!(
            format(Level::Warn, "a\u{1b}[2J\nb"),
            "ims-patch: warning: a\\u001b[2J\nb"
        );
    }
}
