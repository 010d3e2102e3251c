//! Shell completion from the configured image service: IMAGE completes to
//! the names and IDs of `GET /v2/images` (first pages only), KEY to the
//! attributes of the image typed on the line (and, for `set-attr` and
//! `--field`, the base and editable IMS attributes). Answers are cached for
//! [`CACHE_TTL`] in `<cache dir>/ims-patch/complete/` (the `cache_dir`
//! setting, `IMS_PATCH_CACHE_DIR`, or the user cache directory); every
//! lookup gives up after [`TIME_LIMIT`], so a slow or unreachable service
//! never blocks the shell; nothing is asked when no credential is
//! configured.
//!
//! The completion scripts run `IMS_PATCH_COMPLETE=SHELL ims-patch -- WORDS`
//! (`commands::generate`); clap_complete calls the functions here.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use clap::{ArgMatches, CommandFactory};
use clap_complete::CompletionCandidate;
use serde_json::Value;

use crate::client::Client;
use crate::settings::CredentialSource;

/// The longest a completion waits for the service (login included).
pub const TIME_LIMIT: Duration = Duration::from_millis(1500);
/// How long an answer is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// Images asked for per page, and the pages read at most.
pub const PAGE_SIZE: usize = 200;
pub const PAGES: usize = 2;

/// The IMS attributes that can be edited, with what they mean. From the
/// Open Telekom Cloud IMS API reference, "Updating Image Information (Native
/// OpenStack API)", response parameters (docs/ims/api-ref/en-us_topic_0060804960,
/// copy in /work/shared/spec/ims-update-image-api.txt), and the IMS
/// "Updating Image Information" page that lists the attributes PATCH may change
/// (support.huaweicloud.com/intl/en-us/api-ims/, en-us_topic_0020091567);
/// the read-only ones (`__image_source_type`, `__imagetype`,
/// `__originalimagename`, `__backup_id`, `__image_size`, `__data_origin`,
/// `__root_origin`, `__productcode`, ...) are left out.
pub const IMS_EDITABLE: &[(&str, &str)] = &[
    ("__description", "image description"),
    ("__os_version", "OS version, e.g. Ubuntu 22.04 server 64bit"),
    ("__os_bit", "OS architecture: 32 or 64"),
    ("__os_type", "OS type: Linux, Windows or Other"),
    ("__platform", "OS platform, e.g. Ubuntu, CentOS, Windows"),
    (
        "__isregistered",
        "whether the image is registered: true or false",
    ),
    ("__support_kvm", "supports KVM virtualization: true"),
    ("__support_xen", "supports Xen virtualization: true"),
    ("__support_largememory", "supports large-memory ECSs: true"),
    (
        "__support_diskintensive",
        "supports disk-intensive ECSs: true",
    ),
    (
        "__support_highperformance",
        "supports high-performance ECSs: true",
    ),
    ("__support_xen_gpu_type", "GPU type on Xen"),
    ("__support_kvm_gpu_type", "GPU type on KVM"),
    ("__support_xen_hana", "supports HANA ECSs on Xen: true"),
    (
        "__support_kvm_infiniband",
        "supports InfiniBand ECSs on KVM: true",
    ),
    (
        "__support_fc_inject",
        "supports password/key injection via FusionCompute: true",
    ),
    ("__support_amd", "uses AMD x86 architecture: true"),
    ("__support_agent_list", "agents the image has: hss, ces"),
    (
        "__is_config_init",
        "initial configuration done: true or false",
    ),
    ("hw_firmware_type", "boot firmware: bios or uefi"),
    (
        "hw_vif_multiqueue_enabled",
        "supports NIC multi-queue: true",
    ),
];

/// The command definition with the completers of this module attached:
/// IMAGE of every command that has one, KEY of `set-attr` and
/// `unset-attr`, and `--field`. (`cli` stays free of this module.)
pub fn command() -> clap::Command {
    use clap_complete::{ArgValueCandidates, ArgValueCompleter};
    // `mut_args` changes arguments in place (`mut_arg` would move a
    // positional to the end).
    let mut cmd = crate::cli::Cli::command().mut_args(|a| match a.get_id().as_str() {
        "fields" => a.add(ArgValueCandidates::new(fields)),
        _ => a,
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        let verb = name.clone();
        cmd = cmd.mut_subcommand(name, move |s| {
            s.mut_args(|a| match (verb.as_str(), a.get_id().as_str()) {
                (_, "image") => a.add(ArgValueCandidates::new(images)),
                ("set-attr", "pairs") => a.add(ArgValueCompleter::new(pairs)),
                ("unset-attr", "keys") => a.add(ArgValueCandidates::new(keys_set_on_image)),
                _ => a,
            })
        });
    }
    cmd
}

/// A candidate: the value and its help.
pub type Candidate = (String, String);

/// IMAGE candidates from a list answer: every ID (help: its name) and
/// every name (help: its ID; a name that several images share once).
pub fn image_candidates(images: &[Value]) -> Vec<Candidate> {
    let mut ids = Vec::new();
    let mut names: Vec<Candidate> = Vec::new();
    for image in images {
        let Some(id) = image.get("id").and_then(Value::as_str) else {
            continue;
        };
        let name = image.get("name").and_then(Value::as_str).unwrap_or("");
        ids.push((id.to_string(), name.to_string()));
        if name.is_empty() {
            continue;
        }
        match names.iter_mut().find(|(n, _)| n == name) {
            Some((_, help)) => *help = "several images".to_string(),
            None => names.push((name.to_string(), id.to_string())),
        }
    }
    names.extend(ids);
    names
}

/// Which attributes a KEY may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `unset-attr`: those set on the image that may be removed (not the
    /// base or read-only ones).
    Removable,
    /// `set-attr`: those set on the image that are not read-only, the
    /// base attributes and the editable IMS attributes.
    Settable,
    /// `--field`: every attribute of the image, and the settable ones.
    Any,
}

/// KEY candidates for `image` (the one typed on the line, if it could be
/// read), each once: the image's own first, sorted.
pub fn key_candidates(image: Option<&Value>, keys: Keys) -> Vec<Candidate> {
    use crate::patch::{is_core, CORE, READ_ONLY};
    let mut out: Vec<Candidate> = Vec::new();
    if let Some(Value::Object(attrs)) = image {
        let mut own: Vec<&String> = attrs.keys().collect();
        own.sort();
        for key in own {
            let read_only = READ_ONLY.contains(&key.as_str());
            let wanted = match keys {
                Keys::Removable => !read_only && !is_core(key),
                Keys::Settable => !read_only,
                Keys::Any => true,
            };
            if wanted {
                out.push((key.clone(), "set on this image".to_string()));
            }
        }
    }
    if keys != Keys::Removable {
        let base = CORE.iter().map(|k| (*k, "base attribute"));
        for (key, help) in base.chain(IMS_EDITABLE.iter().copied()) {
            if !out.iter().any(|(k, _)| k == key) {
                out.push((key.to_string(), help.to_string()));
            }
        }
    }
    out
}

/// Whether a cache entry written at `modified` may still be used at `now`.
pub fn fresh(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified)
        .is_ok_and(|age| age < CACHE_TTL)
}

/// The words of the line being completed, before the current one: the
/// arguments after `--` (`IMS_PATCH_COMPLETE=SHELL ims-patch -- WORDS`);
/// bash passes the current word's index, the others put it last.
pub fn words_before_cursor(args: &[OsString], index: Option<usize>) -> Vec<OsString> {
    let Some(dash) = args.iter().position(|a| a == "--") else {
        return Vec::new();
    };
    let mut words: Vec<OsString> = args[dash + 1..].to_vec();
    let current = index.unwrap_or(words.len().saturating_sub(1));
    words.truncate(current);
    words
}

/// The command line being completed, parsed as far as it goes.
fn line() -> Option<ArgMatches> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let index = std::env::var("_CLAP_COMPLETE_INDEX")
        .ok()
        .and_then(|i| i.parse().ok());
    let words = words_before_cursor(&args, index);
    crate::cli::Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(words)
        .ok()
}

/// The IMAGE typed on the line, if any.
fn typed_image(matches: &ArgMatches) -> Option<String> {
    let (_, sub) = matches.subcommand()?;
    sub.try_get_one::<String>("image").ok().flatten().cloned()
}

/// A client from the settings the line and the environment give, with a
/// deadline of at most [`TIME_LIMIT`], and the completion cache directory
/// (`ims-patch/complete` below the `cache_dir` setting, which is
/// `IMS_PATCH_CACHE_DIR`, or the user cache directory: the token cache is
/// `ims-patch/tokens` beside it); none without a credential.
fn client(matches: &ArgMatches) -> Option<(Client, Option<PathBuf>)> {
    let resolved = crate::settings::env::resolved_from_process(matches).ok()?;
    let mut connection = crate::settings::connection(&resolved).ok()?;
    if connection.credential == CredentialSource::None {
        return None;
    }
    connection.timeout.value = connection.timeout.value.min(TIME_LIMIT);
    let cache = resolved
        .path("cache_dir")
        .map(|p| p.value)
        .or_else(dirs::cache_dir)
        .map(|root| root.join("ims-patch").join("complete"));
    Some((Client::new(connection).ok()?, cache))
}

/// The cache file of one question to one service as one credential.
fn cache_file(client: &Client, dir: Option<&Path>, question: &str) -> Option<PathBuf> {
    let endpoint = client.endpoint().ok()?.value.url(&[]).to_string();
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [endpoint.as_str(), &client.credential().source(), question] {
        hash.update(part.as_bytes());
        hash.update(&[0]);
    }
    Some(dir?.join(format!(
        "{}.json",
        hex::encode(&hash.finish().as_ref()[..16])
    )))
}

fn read_cache(path: &Path) -> Option<Value> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    if !fresh(modified, SystemTime::now()) {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Writes atomically, readable by the owner only (image names are nobody
/// else's business); a failure only costs the next completion a request.
fn write_cache(path: &Path, value: &Value) {
    let Some(dir) = path.parent() else { return };
    let made = {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)
    };
    if made.is_err() {
        return;
    }
    let Ok(mut file) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if serde_json::to_writer(&mut file, value).is_ok() {
        let _ = file.persist(path);
    }
}

/// `fetch` on its own thread; nothing if it takes longer than
/// [`TIME_LIMIT`] (the process exits after completing, which ends it).
fn within_limit<T: Send + 'static>(
    fetch: impl FnOnce() -> Option<T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("complete".into())
        .spawn(move || {
            let _ = tx.send(fetch());
        })
        .ok()?;
    rx.recv_timeout(TIME_LIMIT).ok().flatten()
}

/// The answer to `question`, from the cache or from `ask` (then cached).
fn cached_or(
    client: &Client,
    dir: Option<&Path>,
    question: &str,
    ask: impl FnOnce(&Client) -> Option<Value>,
) -> Option<Value> {
    let path = cache_file(client, dir, question);
    if let Some(hit) = path.as_deref().and_then(read_cache) {
        return Some(hit);
    }
    let answer = ask(client)?;
    if let Some(path) = &path {
        write_cache(path, &answer);
    }
    Some(answer)
}

/// The first pages of `GET /v2/images` (IDs and names only are kept).
fn list_images(client: &Client) -> Option<Value> {
    let mut kept = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..PAGES {
        let mut url = client.url(&["images"]).ok()?;
        url.query_pairs_mut()
            .append_pair("limit", &PAGE_SIZE.to_string());
        if let Some(m) = &marker {
            url.query_pairs_mut().append_pair("marker", m);
        }
        let (page, _) = client.send_json(&client.request("GET", url)).ok()?;
        let images = page.get("images")?.as_array()?;
        for image in images {
            let mut entry = serde_json::Map::new();
            for key in ["id", "name"] {
                if let Some(v) = image.get(key) {
                    entry.insert(key.into(), v.clone());
                }
            }
            kept.push(Value::Object(entry));
        }
        marker = page
            .get("next")
            .and_then(Value::as_str)
            .and_then(|next| url::Url::parse("http://next").ok()?.join(next).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "marker")
                    .map(|(_, v)| v.into_owned())
            });
        if marker.is_none() || images.is_empty() {
            break;
        }
    }
    Some(Value::Array(kept))
}

fn to_candidates(list: Vec<Candidate>) -> Vec<CompletionCandidate> {
    list.into_iter()
        .map(|(value, help)| {
            CompletionCandidate::new(value).help((!help.is_empty()).then(|| help.into()))
        })
        .collect()
}

/// IMAGE: names and IDs from the service. Everything from reading the
/// settings on (a token command, a login, the cache, the requests) runs
/// within [`TIME_LIMIT`].
pub fn images() -> Vec<CompletionCandidate> {
    let list = within_limit(|| {
        let (client, dir) = client(&line()?)?;
        cached_or(&client, dir.as_deref(), "images", list_images)
    });
    match list {
        Some(Value::Array(list)) => to_candidates(image_candidates(&list)),
        _ => Vec::new(),
    }
}

/// The image typed on the line, from the cache or the service, within
/// [`TIME_LIMIT`].
fn typed_image_attributes() -> Option<Value> {
    within_limit(|| {
        let matches = line()?;
        let image = typed_image(&matches)?;
        let (client, dir) = client(&matches)?;
        cached_or(
            &client,
            dir.as_deref(),
            &format!("image\0{image}"),
            |client| {
                let mut outcome = crate::commands::Outcome::default();
                let (id, found) = crate::commands::resolve(client, &image, &mut outcome).ok()?;
                match found {
                    Some(found) => Some(found.value),
                    None => Some(
                        crate::commands::read_image(client, &id, &mut outcome)
                            .ok()?
                            .value,
                    ),
                }
            },
        )
    })
}

/// KEY of `unset-attr`: the attributes set on the image.
pub fn keys_set_on_image() -> Vec<CompletionCandidate> {
    let image = typed_image_attributes();
    to_candidates(key_candidates(image.as_ref(), Keys::Removable))
}

/// KEY candidates for the image typed on the line.
fn keys_of_typed_image(keys: Keys) -> Vec<Candidate> {
    let image = typed_image_attributes();
    key_candidates(image.as_ref(), keys)
}

/// `--field KEY`: the image's attributes, the base ones and the editable
/// IMS ones.
pub fn fields() -> Vec<CompletionCandidate> {
    to_candidates(keys_of_typed_image(Keys::Any))
}

/// `KEY=VALUE` of `set-attr`: `KEY=` while no `=` is typed.
pub fn pairs(current: &OsStr) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy();
    if typed.contains('=') {
        return Vec::new();
    }
    to_candidates(
        keys_of_typed_image(Keys::Settable)
            .into_iter()
            .filter(|(k, _)| k.starts_with(typed.as_ref()))
            .map(|(k, help)| (format!("{k}="), help))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_command_with_completers_is_still_consistent() {
        command().debug_assert();
    }

    #[test]
    fn images_complete_to_names_and_ids() {
        let list = [
            json!({"id": "a1", "name": "web"}),
            json!({"id": "b2", "name": "db"}),
            json!({"id": "c3", "name": "web"}),
            json!({"id": "d4", "name": null}),
        ];
        let got = image_candidates(&list);
        let values: Vec<&str> = got.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(values, ["web", "db", "a1", "b2", "c3", "d4"]);
        assert_eq!(got[0].1, "several images");
        assert_eq!(got[1].1, "b2");
        assert_eq!(got[2].1, "web");
    }

    #[test]
    fn keys_for_unset_are_the_images_and_for_set_add_base_and_ims() {
        let image = json!({"name": "x", "id": "1", "__os_bit": "64", "custom": "c"});
        let keys = |kind| -> Vec<String> {
            key_candidates(Some(&image), kind)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(keys(Keys::Removable), ["__os_bit", "custom"]);
        let set = keys(Keys::Settable);
        assert!(set.starts_with(&["__os_bit".into(), "custom".into(), "name".into()]));
        assert!(!set.contains(&"id".to_string()));
        for key in [
            "min_ram",
            "__support_kvm",
            "hw_firmware_type",
            "__os_version",
            "name",
        ] {
            assert_eq!(set.iter().filter(|k| *k == key).count(), 1, "{key}");
        }
        assert!(keys(Keys::Any).starts_with(&["__os_bit".into(), "custom".into(), "id".into()]));
        // Without an image: the base and IMS attributes alone.
        assert!(key_candidates(None, Keys::Removable).is_empty());
        assert!(key_candidates(None, Keys::Settable).len() >= IMS_EDITABLE.len());
    }

    #[test]
    fn editable_ims_attributes_pass_the_local_checks() {
        for (key, _) in IMS_EDITABLE {
            let op = crate::patch::Op::add(*key, json!("true"));
            assert!(crate::patch::validate(&[op]).is_ok(), "{key}");
        }
    }

    #[test]
    fn the_cache_lasts_a_minute() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(fresh(t, t + Duration::from_secs(59)));
        assert!(!fresh(t, t + Duration::from_secs(60)));
        // A clock that went back is not a reason to trust an entry.
        assert!(!fresh(t + Duration::from_secs(5), t));
    }

    #[test]
    fn words_stop_before_the_cursor() {
        let args: Vec<OsString> = ["ims-patch", "--", "ims-patch", "unset-attr", "img", "__o"]
            .map(OsString::from)
            .to_vec();
        let want: Vec<OsString> = ["ims-patch", "unset-attr", "img"]
            .map(OsString::from)
            .to_vec();
        assert_eq!(words_before_cursor(&args, None), want);
        assert_eq!(words_before_cursor(&args, Some(3)), want);
        assert_eq!(
            words_before_cursor(&args, Some(1)),
            [OsString::from("ims-patch")]
        );
        assert!(words_before_cursor(&args[..1], None).is_empty());
    }
}
