//! The commands over many images (issue #10): set-attr, unset-attr,
//! describe and patch with `--images-from` or `--where` (every positional
//! argument is then an edit), `list` (what a `--where` selects) and `apply`
//! (a JSON Lines file of per-image edits, such as an undo file). Each turns
//! its arguments into a stream of jobs for `batch::run`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};
use url::Url;

use super::apply::{check_all, ApplyLines};
use super::lines::LineError;
use super::report::ImageResult;
use super::run::{self, failed, Item, Job, Options};
use super::select::ImageList;
use super::undo::{Journal, JournalMode};
use crate::cli::{
    ApplyArgs, BatchControl, Command, DescribeArgs, ListArgs, PatchArgs, SelectionArgs,
    SetAttrArgs, UnsetAttrArgs,
};
use crate::client::Client;
use crate::commands::{self, Edit};
use crate::error::{Error, Kind, Result};
use crate::output::OutputFormat;
use crate::settings::RunOptions;

/// The page size asked for when `--where` gives no `limit` (Glance's
/// `api_limit_max`).
pub const PAGE_SIZE: &str = "1000";

/// Runs `command` when it is a batch (`list`, `apply`, or an edit with a
/// selection) and returns its exit status; `None` for a single-image
/// command.
pub fn dispatch(client: &Client, command: &Command, options: &RunOptions) -> Option<Result<i32>> {
    let (selection, edit) = match command {
        Command::List(args) => return Some(list(client, args, options).map(|()| 0)),
        Command::Apply(args) => return Some(apply(client, args, options)),
        Command::SetAttr(a) if a.selection.is_batch() => (&a.selection, set_attr_edit(a)),
        Command::UnsetAttr(a) if a.selection.is_batch() => (&a.selection, unset_attr_edit(a)),
        Command::Describe(a) if a.selection.is_batch() => (&a.selection, describe_edit(a)),
        Command::Patch(a) if a.selection.is_batch() => (&a.selection, patch_edit(a)),
        _ => return None,
    };
    Some(edit.and_then(|edit| select_and_run(client, selection, edit, options)))
}

/// With `--undo-file`, a single-image edit reads the image first and
/// writes its undo line before the image is printed; `None` when there is
/// no undo file or the command is no single-image edit.
pub fn undoable(
    client: &Client,
    command: &Command,
    options: &RunOptions,
) -> Option<Result<commands::Outcome>> {
    let path = options.batch.undo_file.as_ref()?;
    let (image, edit) = match command {
        Command::Rename(a) => (a.image.clone(), Ok(commands::rename::edit(a))),
        Command::SetAttr(a) => (a.image.clone()?, commands::set_attr::edit(a)),
        Command::UnsetAttr(a) => (a.image.clone()?, commands::unset_attr::edit(a)),
        Command::Describe(a) => (a.image.clone()?, commands::describe::edit(a)),
        Command::Patch(a) => (
            a.image.clone()?,
            commands::patch::read_input(&a.file)
                .and_then(|(text, origin)| commands::patch::edit(&text, &origin)),
        ),
        _ => return None,
    };
    let settings = commands::RunSettings {
        patch_format: options.patch_format,
        dry_run: options.dry_run,
        read_first: options.diff,
    };
    Some(edit.and_then(|edit| {
        if options.dry_run {
            return commands::run_edit(client, settings, &image, &edit);
        }
        crate::patch::validate(&edit.ops)?;
        let journal = Journal::open(&path.value, JournalMode::CreateNew).map_err(|e| Error {
            message: format!("{} ({})", e.message, path.source),
            ..e
        })?;
        log::info!("--undo-file: the image is read before it is edited (two requests)");
        let mut scratch = commands::Outcome::default();
        let (id, _) = commands::resolve(client, &image, &mut scratch)?;
        let prior = commands::read_image(client, &id, &mut scratch)?;
        let mut outcome =
            commands::run_edit_with(client, settings, &id, &edit, Some(prior.clone()))
                .map_err(commands::ignore_missing_hint)?;
        if let (false, Value::Object(prior)) = (outcome.unchanged, &prior.value) {
            let undo = run::undo_of(&id, &edit, prior, options.patch_format)?;
            run::record_undo(&journal, &id, &undo)?;
        }
        scratch.sent.append(&mut outcome.sent);
        outcome.sent = scratch.sent;
        Ok(outcome)
    }))
}

/// With a selection the IMAGE slot holds the first edit.
fn shifted(image: &Option<String>, rest: &[String]) -> Vec<String> {
    image.iter().chain(rest).cloned().collect()
}

fn set_attr_edit(args: &SetAttrArgs) -> Result<Edit> {
    commands::set_attr::edit(&SetAttrArgs {
        diff: false,
        selection: SelectionArgs::default(),
        image: None,
        pairs: shifted(&args.image, &args.pairs),
    })
    .map_err(|mut e| {
        // The one-image example (`set-attr IMAGE ...`) misleads here.
        if e.hints.iter().any(|h| h.contains("set-attr IMAGE")) {
            e.hints = vec![
                "with --where or --images-from, every argument is an edit (no IMAGE): for example, ims-patch set-attr --where name=NAME __os_bit=64".into(),
            ];
        }
        e
    })
}

fn unset_attr_edit(args: &UnsetAttrArgs) -> Result<Edit> {
    commands::unset_attr::edit(&UnsetAttrArgs {
        diff: false,
        selection: SelectionArgs::default(),
        ignore_missing: args.ignore_missing,
        image: None,
        keys: shifted(&args.image, &args.keys),
    })
}

fn describe_edit(args: &DescribeArgs) -> Result<Edit> {
    let mut texts = shifted(&args.image, args.text.as_slice());
    if texts.len() > 1 {
        return Err(Error::usage(format!(
            "with --images-from or --where, describe takes one TEXT; got {} arguments",
            texts.len()
        ))
        .hint("the images come from the selection; quote the text as one argument"));
    }
    commands::describe::edit(&DescribeArgs {
        diff: false,
        selection: SelectionArgs::default(),
        clear: args.clear,
        ignore_missing: args.ignore_missing,
        image: None,
        text: texts.pop(),
    })
}

fn patch_edit(args: &PatchArgs) -> Result<Edit> {
    if let Some(image) = &args.image {
        return Err(Error::usage(format!(
            "with --images-from or --where, patch takes no IMAGE; got '{image}'"
        ))
        .hint("the images come from the selection and the ops from --file"));
    }
    if args.file == Path::new("-") && args.selection.images_from.as_deref() == Some(Path::new("-"))
    {
        return Err(
            Error::usage("--images-from - and the op list both read standard input")
                .hint("put the op list in a file: --file ops.json"),
        );
    }
    let (text, origin) = commands::patch::read_input(&args.file)?;
    commands::patch::edit(&text, &origin)
}

/// A `--where KEY=VALUE` as a query pair.
pub fn parse_filter(filter: &str) -> Result<(&str, &str)> {
    match filter.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(Error::usage(format!("--where '{filter}' is not KEY=VALUE"))
            .hint("for example: --where __os_type=Linux --where status=active")),
    }
}

/// `GET /v2/images?KEY=VALUE...&limit=...` for the filters.
pub fn list_url(client: &Client, filters: &[String]) -> Result<Url> {
    let mut url = client.url(&["images"])?;
    let mut has_limit = false;
    {
        let mut query = url.query_pairs_mut();
        for filter in filters {
            let (key, value) = parse_filter(filter)?;
            has_limit |= key == "limit";
            query.append_pair(key, value);
        }
        if !has_limit {
            query.append_pair("limit", PAGE_SIZE);
        }
    }
    Ok(url)
}

/// The images a list request returns, page after page, following the
/// server's `next` links; only one page is held at a time.
pub struct Pages<'a> {
    client: &'a Client,
    next: Option<Url>,
    page: std::vec::IntoIter<Value>,
    stop: Arc<AtomicBool>,
}

impl<'a> Pages<'a> {
    pub fn new(client: &'a Client, first: Url, stop: Arc<AtomicBool>) -> Pages<'a> {
        Pages {
            client,
            next: Some(first),
            page: Vec::new().into_iter(),
            stop,
        }
    }

    /// The URL of a `next` link ("/v2/images?marker=...&limit=..."), on the
    /// configured endpoint.
    fn follow(&self, current: &Url, next: &str) -> Result<Url> {
        let mut url = self.client.url(&["images"])?;
        url.set_query(next.split_once('?').map(|(_, query)| query));
        if &url == current {
            return Err(Error::runtime(format!(
                "the image list at {current} links to itself as the next page"
            )));
        }
        Ok(url)
    }
}

impl Iterator for Pages<'_> {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            if let Some(image) = self.page.next() {
                return Some(Ok(image));
            }
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            let url = self.next.take()?;
            let request = self.client.request("GET", url.clone());
            let (list, _) = match self.client.send_json(&request) {
                Ok(answer) => answer,
                Err(e) => return Some(Err(e)),
            };
            if let Some(next) = list.get("next").and_then(Value::as_str) {
                match self.follow(&url, next) {
                    Ok(next) => self.next = Some(next),
                    Err(e) => return Some(Err(e)),
                }
            }
            match images_of(list, url.as_str()) {
                Ok(images) => self.page = images.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The `images` list of a list answer.
fn images_of(list: Value, request_url: &str) -> Result<Vec<Value>> {
    match list {
        Value::Object(mut o) => match o.remove("images") {
            Some(Value::Array(images)) => Ok(images),
            _ => Err(Error::runtime(format!(
                "GET {request_url} answered without an \"images\" list"
            ))),
        },
        _ => Err(Error::runtime(format!(
            "GET {request_url} answered without an \"images\" list"
        ))),
    }
}

fn batch_options(
    options: &RunOptions,
    control: &BatchControl,
    once_per_image: bool,
    total: Option<u64>,
    empty: String,
) -> Result<Options> {
    let journal = match &options.batch.undo_file {
        Some(path) if !options.dry_run => Some(
            Journal::open(&path.value, JournalMode::CreateNew).map_err(|e| Error {
                message: format!("{} ({})", e.message, path.source),
                ..e
            })?,
        ),
        _ => None,
    };
    if journal.is_some() {
        log::info!("--undo-file: each image is read before it is edited (two requests an image)");
    }
    Ok(Options {
        settings: commands::RunSettings {
            patch_format: options.patch_format,
            dry_run: options.dry_run,
            read_first: false,
        },
        jobs: options.batch.jobs,
        output: options.output,
        fields: options.fields.clone(),
        quiet: options.quiet,
        max_failures: if control.fail_fast {
            Some(1)
        } else {
            control.max_failures
        },
        journal,
        once_per_image,
        total,
        empty,
        stop: Arc::new(AtomicBool::new(false)),
    })
}

/// A malformed line of an input file, as a failed result.
fn line_failure(origin: &str, e: LineError) -> ImageResult {
    let mut err = Error::usage(format!("{origin}: {e}"));
    err.hints = e.hints;
    failed(&format!("line {}", e.line), None, &err)
}

/// Opens FILE, or standard input for `-`.
/// `source` names the option the path came from (` (from --images-from)`).
fn open_input(path: &Path, what: &str, source: &str) -> Result<(Box<dyn BufRead + Send>, String)> {
    if path == Path::new("-") {
        return Ok((
            Box::new(BufReader::new(std::io::stdin())),
            "standard input".into(),
        ));
    }
    let file = File::open(path).map_err(|e| {
        Error::usage(format!(
            "cannot read {what} '{}'{source}: {e}",
            path.display()
        ))
    })?;
    Ok((
        Box::new(BufReader::new(file)),
        format!("'{}'", path.display()),
    ))
}

fn select_and_run(
    client: &Client,
    selection: &SelectionArgs,
    edit: Edit,
    options: &RunOptions,
) -> Result<i32> {
    crate::patch::validate(&edit.ops)?;
    if let Some(path) = &selection.images_from {
        let (reader, origin) = open_input(path, "the image list", " (from --images-from)")?;
        let batch = batch_options(
            options,
            &selection.control,
            true,
            None,
            format!("{origin} lists no image; nothing was sent"),
        )?;
        let source = ImageList::new(reader).map(move |item| match item {
            Ok(selected) => Ok(Job {
                image: selected.image,
                name: None,
                line: Some(selected.line),
                edit: edit.clone(),
            }),
            Err(e) => Err(line_failure(&origin, e)),
        });
        return run::run(client, batch, source);
    }
    let url = list_url(client, &selection.where_)?;
    let filters = describe_filters(&selection.where_);
    let batch = batch_options(
        options,
        &selection.control,
        true,
        None,
        format!("no image matches {filters}; nothing was sent"),
    )?;
    let source = Pages::new(client, url.clone(), Arc::clone(&batch.stop)).map(move |item| {
        let image = item.map_err(|e| failed(&format!("GET {url}"), None, &e))?;
        match image.get("id").and_then(Value::as_str) {
            Some(id) => Ok(Job {
                image: id.to_string(),
                name: image.get("name").and_then(Value::as_str).map(String::from),
                line: None,
                edit: edit.clone(),
            }),
            None => Err(failed(
                "?",
                None,
                &Error::runtime(format!("GET {url} listed an image without an \"id\"")),
            )),
        }
    });
    // A list that fails before its first image fails the run as a whole.
    let mut source = source.peekable();
    if let Some(Err(first)) = source.peek() {
        if first.image.starts_with("GET ") {
            return Err(Error::new(
                first.exit_code.map_or(Kind::Runtime, Kind::from_exit_code),
                first.error.clone().unwrap_or_default(),
            ));
        }
    }
    run::run(client, batch, source)
}

fn describe_filters(filters: &[String]) -> String {
    if filters.is_empty() {
        "the image list".into()
    } else {
        filters
            .iter()
            .map(|f| format!("--where '{f}'"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `ims-patch apply FILE|-`.
pub fn apply(client: &Client, args: &ApplyArgs, options: &RunOptions) -> Result<i32> {
    let mut total = None;
    if args.file != Path::new("-") {
        let (reader, origin) = open_input(&args.file, "the edits file", "")?;
        match check_all(reader) {
            Ok(count) => total = Some(count as u64),
            Err(errors) => return Err(errors.to_error(&origin)),
        }
    }
    let (reader, origin) = open_input(&args.file, "the edits file", "")?;
    let batch = batch_options(
        options,
        &args.control,
        false,
        total,
        format!("{origin} holds no edit; nothing was sent"),
    )?;
    let source = ApplyLines::new(reader).map(move |item| -> Item {
        match item {
            Ok(edit) => Ok(Job {
                image: edit.image,
                name: None,
                line: None,
                edit: Edit::new(edit.ops),
            }),
            Err(e) => Err(line_failure(&origin, e)),
        }
    });
    run::run(client, batch, source)
}

/// `ims-patch list`: ID, name, status and the `--field` keys of every
/// image the filters select; JSON Lines with `-o json`, printed page by
/// page, or a table at the end.
pub fn list(client: &Client, args: &ListArgs, options: &RunOptions) -> Result<()> {
    let url = list_url(client, &args.where_)?;
    if options.dry_run {
        let mut out = std::io::stdout().lock();
        out.write_all(client.render(&client.request("GET", url))?.as_bytes())?;
        return out.flush().map_err(Error::from);
    }
    let columns: Vec<&str> = ["id", "name", "status"]
        .into_iter()
        .chain(options.fields.iter().map(String::as_str))
        .collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut out = std::io::stdout().lock();
    let mut count = 0usize;
    for image in Pages::new(client, url, Arc::new(AtomicBool::new(false))) {
        let image = image?;
        count += 1;
        let picked: Map<String, Value> = columns
            .iter()
            .map(|k| (k.to_string(), image.get(*k).cloned().unwrap_or(Value::Null)))
            .collect();
        match options.output {
            OutputFormat::Json => {
                serde_json::to_writer(&mut out, &Value::Object(picked))
                    .map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
            }
            OutputFormat::Value => {
                crate::present::write_list_values(&mut out, &image, &options.fields)?;
            }
            _ => rows.push(
                picked
                    .values()
                    .map(|v| match v {
                        Value::String(s) => crate::sanitize::escape(s).into_owned(),
                        Value::Null => String::new(),
                        other => crate::sanitize::escape(&other.to_string()).into_owned(),
                    })
                    .collect(),
            ),
        }
    }
    if options.output == OutputFormat::Table && count > 0 {
        use std::io::IsTerminal;
        let header: Vec<String> = columns.iter().map(|c| c.to_ascii_uppercase()).collect();
        let mut table = crate::output::rows_table_with(std::io::stdout().is_terminal(), &header);
        for row in rows {
            table.add_row(row);
        }
        writeln!(out, "{table}")?;
    }
    out.flush()?;
    if count == 0 {
        return Err(Error::new(
            Kind::NotFound,
            format!("no image matches {}", describe_filters(&args.where_)),
        ));
    }
    if !options.quiet {
        super::run::note!(
            "ims-patch: {count} image{}",
            if count == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_key_value() {
        assert_eq!(
            parse_filter("__os_type=Linux").unwrap(),
            ("__os_type", "Linux")
        );
        assert_eq!(parse_filter("name=in:a,b").unwrap(), ("name", "in:a,b"));
        assert_eq!(parse_filter("k=").unwrap(), ("k", ""));
        assert!(parse_filter("novalue").is_err());
        assert!(parse_filter("=x").is_err());
    }

    #[test]
    fn the_image_slot_holds_the_first_edit() {
        assert_eq!(
            shifted(&Some("a=1".into()), &["b=2".into()]),
            ["a=1", "b=2"]
        );
        assert_eq!(shifted(&None, &[]), Vec::<String>::new());
    }
}
