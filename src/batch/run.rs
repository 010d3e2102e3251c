//! The runner of a batch: a stream of jobs (one image and its edit each)
//! edited by `--jobs` worker threads with one shared client, never two
//! requests for one image at once; each result reported as it finishes
//! (`-o json`) or in a table at the end, with the one-line summary, a
//! progress bar on a terminal, `--fail-fast`/`--max-failures`, Ctrl-C
//! (finish what is in flight, the rest `not_started`, exit 130) and the
//! undo journal (a line on disk before the image's result is reported).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::report::{ImageResult, Outcome, Tally};
use super::undo::{undo_ops, Journal};
use crate::client::{exchanges_on_this_thread, Client};
use crate::commands::{self, Edit, RunSettings};
use crate::error::{Error, Kind, Result};
use crate::output::OutputFormat;
use crate::patch::{Op, PatchFormat};

/// A line on stderr; a closed stderr is not worth a panic (which would
/// stop a worker).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(crate) use note;

/// One image to edit.
#[derive(Debug, Clone)]
pub struct Job {
    /// The ID or name as given (or the ID a list returned).
    pub image: String,
    /// The name, when the selection already knows it.
    pub name: Option<String>,
    /// The input line it came from, when it came from one.
    pub line: Option<usize>,
    pub edit: Edit,
}

/// What the source yields: a job, or a result already known (a malformed
/// line, a list page that failed), reported as it is.
pub type Item = std::result::Result<Job, ImageResult>;

/// How the batch runs.
pub struct Options {
    pub settings: RunSettings,
    pub jobs: usize,
    pub output: OutputFormat,
    /// `--field`: with `-o value`, the members of each result printed.
    pub fields: Vec<String>,
    pub quiet: bool,
    /// Stop starting images after this many failures.
    pub max_failures: Option<u64>,
    pub journal: Option<Journal>,
    /// A selection edits each image once (a second line naming the same
    /// image is skipped); `apply` runs the lines of one image one after
    /// another.
    pub once_per_image: bool,
    /// The number of jobs, when known up front (for the progress bar).
    pub total: Option<u64>,
    /// The error when the source yields nothing (exit 5).
    pub empty: String,
    /// Set to stop the source (no more list pages are fetched).
    pub stop: Arc<AtomicBool>,
}

/// Each image edited once, with the input line of the job that claimed it.
type EditedOnce = HashMap<String, Option<usize>>;

/// The image IDs in flight, and with `once_per_image` those already done:
/// never two requests for one image at once, whatever names led to it.
#[derive(Default)]
struct Claims {
    /// The images being edited; the images edited once (with `once`), with
    /// the input line of the job that claimed each.
    state: Mutex<(HashSet<String>, EditedOnce)>,
    released: Condvar,
}

struct Claim<'a> {
    claims: &'a Claims,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut state = self.claims.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0.remove(&self.id);
        self.claims.released.notify_all();
    }
}

impl Claims {
    /// Waits until no other worker edits `id`, then claims it for the job
    /// of input `line`; when `once` and the image was already edited in
    /// this run, `Err` with the line of the job that edited it.
    fn claim(&self, id: &str, once: bool, line: Option<usize>) -> Result<Claim<'_>, Option<usize>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(first) = state.1.get(id).filter(|_| once) {
                return Err(*first);
            }
            if !state.0.contains(id) {
                break;
            }
            state = self.released.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0.insert(id.to_string());
        if once {
            state.1.insert(id.to_string(), line);
        }
        Ok(Claim {
            claims: self,
            id: id.to_string(),
        })
    }
}

/// A finished image, as a worker hands it to the reporter.
struct Done {
    result: ImageResult,
    /// With `--dry-run`: the request it would send, rendered.
    planned: Option<String>,
    /// The run must stop (the undo journal failed).
    fatal: bool,
}

/// A result for an image that failed with `err`.
pub fn failed(image: &str, name: Option<String>, err: &Error) -> ImageResult {
    ImageResult {
        image: image.to_string(),
        name,
        result: Outcome::Failed,
        http_status: err.status(),
        attempts: 0,
        error: Some(err.message.clone()),
        exit_code: Some(err.exit_code()),
    }
}

fn not_started(job: &Job) -> ImageResult {
    ImageResult {
        image: job.image.clone(),
        name: job.name.clone(),
        result: Outcome::NotStarted,
        http_status: None,
        attempts: 0,
        error: None,
        exit_code: None,
    }
}

fn name_of(value: &Value) -> Option<String> {
    value.get("name").and_then(Value::as_str).map(String::from)
}

/// The undo line of an edit that changed image `id`, from the image as it
/// was before (`prior`): the ops that put back what the edit touched.
pub(super) fn undo_of(
    id: &str,
    edit: &Edit,
    prior: &Map<String, Value>,
    format: PatchFormat,
) -> Result<Vec<Op>> {
    let mut present: HashSet<String> = prior.keys().cloned().collect();
    let (ops, _) = commands::plan(edit, &mut present, format);
    undo_ops(prior, &ops).map_err(|why| {
        Error::runtime(format!(
            "image '{id}' was changed, but its undo line cannot be made: {why}"
        ))
    })
}

/// Writes the undo line of image `id` (nothing when `undo` is empty).
pub(super) fn record_undo(journal: &Journal, id: &str, undo: &[Op]) -> Result<bool> {
    journal.record(id, undo).map_err(|e| {
        Error::runtime(format!(
            "image '{id}' was changed, but its undo line was not written: {}",
            e.message
        ))
    })
}

/// Edits one image: resolves it, claims its ID, reads it first for the
/// undo journal, sends the edit, writes the undo line.
fn edit_one(client: &Client, options: &Options, claims: &Claims, job: &Job) -> Done {
    let before = exchanges_on_this_thread();
    let mut result = ImageResult {
        image: job.image.clone(),
        name: job.name.clone(),
        result: Outcome::Failed,
        http_status: None,
        attempts: 0,
        error: None,
        exit_code: None,
    };
    let mut planned = None;
    let mut fatal = false;
    let run = (|| -> Result<()> {
        let mut scratch = commands::Outcome::default();
        let (id, found) = commands::resolve(client, &job.image, &mut scratch)?;
        result.image = id.clone();
        if let Some(found) = &found {
            result.name = name_of(&found.value).or(result.name.take());
        }
        let _claim = match claims.claim(&id, options.once_per_image, job.line) {
            Ok(claim) => claim,
            Err(first) => {
                // Another line named the same image; it is edited once.
                result.result = Outcome::Skipped;
                result.error = Some(match first {
                    Some(n) => format!("the same image as line {n}"),
                    None => "the same image as an earlier one".to_string(),
                });
                return Ok(());
            }
        };
        let prior = match &options.journal {
            Some(_) if !options.settings.dry_run => {
                let image = commands::read_image(client, &id, &mut scratch)?;
                result.name = name_of(&image.value).or(result.name.take());
                Some(image)
            }
            _ => None,
        };
        let outcome =
            commands::run_edit_with(client, options.settings, &id, &job.edit, prior.clone())
                .map_err(commands::ignore_missing_hint)?;
        if let Some(request) = &outcome.planned {
            // With -o json, one JSON object a request, so `| jq` works.
            planned = Some(match options.output {
                OutputFormat::Json => serde_json::json!({
                    "image": id,
                    "name": result.name,
                    "result": "planned",
                    "request": client.render_json(request)?,
                })
                .to_string(),
                _ => client.render(request)?,
            });
            result.result = Outcome::Skipped;
            return Ok(());
        }
        if outcome.unchanged {
            result.result = Outcome::Skipped;
            return Ok(());
        }
        result.http_status = Some(200);
        if let Some(image) = &outcome.image {
            result.name = name_of(&image.value).or(result.name.take());
        }
        result.result = Outcome::Changed;
        let prior = prior.map(|image| image.value);
        if let (Some(journal), Some(Value::Object(prior))) = (&options.journal, &prior) {
            let undo = undo_of(&id, &job.edit, prior, options.settings.patch_format)?;
            if undo.is_empty() {
                result.result = Outcome::Unchanged;
            } else if let Err(e) = record_undo(journal, &id, &undo) {
                fatal = true;
                return Err(e);
            }
        }
        Ok(())
    })();
    if run.is_ok() {
        result.exit_code = Some(0);
    }
    if let Err(err) = run {
        let image = result.image.clone();
        let changed = result.result == Outcome::Changed;
        result = ImageResult {
            http_status: err.status().or(result.http_status),
            ..failed(&image, result.name.take(), &err)
        };
        if changed {
            result.http_status = Some(200);
        }
    }
    result.attempts = exchanges_on_this_thread().saturating_sub(before);
    Done {
        result,
        planned,
        fatal,
    }
}

fn progress_bar(options: &Options) -> ProgressBar {
    let target = if options.quiet {
        ProgressDrawTarget::hidden()
    } else {
        // Hidden by indicatif itself when stderr is not a terminal.
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(options.total, target);
    let template = if options.total.is_some() {
        "{bar:30} {pos}/{len} images, {per_sec}, ETA {eta} {msg}"
    } else {
        "{spinner} {pos} images, {per_sec} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Installs the Ctrl-C handling: the first sets `flag`, a second one
/// exits at once with 130.
fn catch_interrupt(flag: &Arc<AtomicBool>) {
    use signal_hook::consts::SIGINT;
    let _ = signal_hook::flag::register_conditional_shutdown(
        SIGINT,
        super::report::EXIT_INTERRUPTED,
        Arc::clone(flag),
    );
    let _ = signal_hook::flag::register(SIGINT, Arc::clone(flag));
}

/// Runs the batch and returns its exit status.
pub fn run<I>(client: &Client, options: Options, source: I) -> Result<i32>
where
    I: Iterator<Item = Item> + Send,
{
    let interrupted = Arc::new(AtomicBool::new(false));
    catch_interrupt(&interrupted);
    let claims = Claims::default();
    let failures = std::sync::atomic::AtomicU64::new(0);
    let jobs = options.jobs.max(1);
    let (job_tx, job_rx) = sync_channel::<Item>(jobs * 2);
    // Held by the workers only: when the last one ends, however it ends,
    // the producer's next send fails instead of blocking forever.
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = sync_channel::<Done>(jobs * 2);
    let bar = progress_bar(&options);
    {
        let bar = bar.clone();
        crate::logger::set_writer(Some(Box::new(move |line: &str| {
            bar.suspend(|| crate::batch::run::note!("{line}"));
        })));
    }
    let stop = Arc::clone(&options.stop);
    let mut tally = Tally::default();
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut out_error: Option<Error> = None;
    let mut planned_count = 0u64;
    let mut told = false;
    std::thread::scope(|scope| {
        let stopped = || stop.load(Ordering::SeqCst) || interrupted.load(Ordering::SeqCst);
        scope.spawn(move || {
            for item in source {
                if job_tx.send(item).is_err() {
                    break;
                }
            }
        });
        for _ in 0..jobs {
            let done_tx = done_tx.clone();
            let job_rx = Arc::clone(&job_rx);
            let (claims, options, failures) = (&claims, &options, &failures);
            scope.spawn(move || loop {
                let item = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(item) = item else { break };
                let done = match item {
                    Err(result) => Done {
                        result,
                        planned: None,
                        fatal: false,
                    },
                    Ok(job) if stopped() => Done {
                        result: not_started(&job),
                        planned: None,
                        fatal: false,
                    },
                    Ok(job) => edit_one(client, options, claims, &job),
                };
                // Counted here, before this worker takes its next job, so
                // that --fail-fast starts nothing after the failure.
                if done.result.result == Outcome::Failed {
                    let failures = failures.fetch_add(1, Ordering::SeqCst) + 1;
                    if options.max_failures.is_some_and(|max| failures >= max) {
                        options.stop.store(true, Ordering::SeqCst);
                    }
                }
                if done_tx.send(done).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        drop(job_rx);
        let mut stdout = std::io::stdout().lock();
        loop {
            // Checked before every receive, not only when results pause:
            // a busy run must say at once that it heard the Ctrl-C.
            if interrupted.load(Ordering::SeqCst) && !told {
                told = true;
                options.stop.store(true, Ordering::SeqCst);
                bar.suspend(|| {
                    crate::batch::run::note!("ims-patch: interrupted: finishing the requests in flight; Ctrl-C again aborts at once")
                });
            }
            let done = match done_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(done) => done,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if done.fatal {
                options.stop.store(true, Ordering::SeqCst);
            }
            tally.add(&done.result);
            if done.result.result == Outcome::Failed {
                let failures = tally.count(Outcome::Failed);
                bar.set_message(format!("{failures} failed"));
            }
            bar.inc(1);
            if out_error.is_some() {
                continue;
            }
            let written = if let Some(planned) = &done.planned {
                planned_count += 1;
                bar.suspend(|| writeln!(stdout, "{planned}").and_then(|()| stdout.flush()))
            } else {
                match options.output {
                    OutputFormat::Json => bar.suspend(|| {
                        writeln!(stdout, "{}", done.result.to_json_line())
                            .and_then(|()| stdout.flush())
                    }),
                    OutputFormat::Value => bar.suspend(|| {
                        let record =
                            serde_json::to_value(&done.result).map_err(std::io::Error::other)?;
                        crate::present::write_result_values(&mut stdout, &record, &options.fields)
                            .and_then(|()| stdout.flush())
                    }),
                    _ => {
                        rows.push(done.result.cells());
                        Ok(())
                    }
                }
            };
            if let Err(e) = written {
                // A closed stdout stops the run; what is in flight finishes.
                options.stop.store(true, Ordering::SeqCst);
                out_error = Some(Error::from(e));
            }
        }
    });
    bar.finish_and_clear();
    crate::logger::set_writer(None);
    if let Some(e) = out_error {
        return Err(e);
    }
    if tally.total() == 0 {
        return Err(Error::new(Kind::NotFound, options.empty.clone())
            .hint("'ims-patch list --where KEY=VALUE' shows what a filter selects"));
    }
    let is_interrupted = interrupted.load(Ordering::SeqCst);
    if options.settings.dry_run {
        crate::batch::run::note!(
            "ims-patch: --dry-run: {planned_count} PATCH request{} not sent",
            if planned_count == 1 { "" } else { "s" }
        );
    } else if !rows.is_empty() {
        print_table(&rows)?;
    }
    if !options.quiet || tally.count(Outcome::Failed) > 0 || is_interrupted {
        let why = if is_interrupted { " (interrupted)" } else { "" };
        crate::batch::run::note!("ims-patch: {tally}{why}");
    }
    Ok(tally.exit_status(is_interrupted))
}

fn print_table(rows: &[[String; 6]]) -> Result<()> {
    use std::io::IsTerminal;
    let mut table =
        crate::output::rows_table_with(std::io::stdout().is_terminal(), &ImageResult::COLUMNS);
    for row in rows {
        table.add_row(row.iter().map(|c| crate::sanitize::escape(c).into_owned()));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{table}")?;
    out.flush().map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_once_per_image_skips_repeats() {
        let claims = Claims::default();
        let first = claims.claim("a", true, Some(3)).expect("first claim");
        drop(first);
        assert_eq!(
            claims.claim("a", true, Some(7)).err(),
            Some(Some(3)),
            "edited once"
        );
        let held = claims.claim("b", false, None).expect("free");
        let waited = std::thread::scope(|s| {
            let waiter = s.spawn(|| claims.claim("b", false, None).is_ok());
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "a second claim waits");
            drop(held);
            waiter.join().unwrap()
        });
        assert!(waited);
    }
}
