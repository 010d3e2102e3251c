//! The AK/SK credential: signs each fully built request (SDK-HMAC-SHA256,
//! `crate::aksk`) just before it is sent, after finding the project ID
//! once when none is configured (a signed `GET {iam}/v3/projects?name=REGION`,
//! cached under `<cache>/ims-patch/projects/`), and explains the gateway's
//! refusals (a bad signature, an unknown key, a clock off by more than 15
//! minutes).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::{status_line, Credential, Transport};
use crate::aksk::{self, AkSk};
use crate::error::{Error, Kind, Result, WireFailure};
use crate::helper_command;
use crate::secret::Secret;
use crate::settings::aksk::{AkSkSource, SecretKey};
use crate::settings::Sourced;
use crate::wire::{Header, Reach, WireRequest, WireResponse};

/// The most bytes of a secret key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Where the project ID comes from when none is configured.
#[derive(Debug)]
struct Lookup {
    iam: Sourced<Url>,
    region: String,
    cache: Option<ProjectCache>,
}

/// The project ID in use and whether it came from the cache.
#[derive(Debug, Clone)]
struct Project {
    id: String,
    cached: bool,
}

/// Signs requests with an access key pair.
pub struct AkSkCredential {
    key: AkSk,
    describe: String,
    lookup: Option<Lookup>,
    project: Mutex<Option<Project>>,
    transport: Arc<Transport>,
}

impl AkSkCredential {
    /// Reads the secret key (file or bounded command) and prepares the
    /// project lookup; makes no request.
    pub fn build(source: &AkSkSource, transport: &Arc<Transport>) -> Result<AkSkCredential> {
        let secret_key = match &source.secret_key {
            SecretKey::Given(s) => s.value.clone(),
            SecretKey::File(f) => read_key_file(f)?,
            SecretKey::Command(c) => {
                let limits = helper_command::Limits {
                    time: transport.timeout(),
                    ..helper_command::Limits::default()
                };
                helper_command::run("secret_key_command", &c.source, &c.value, limits)?
            }
        };
        if secret_key.expose().is_empty() {
            return Err(Error::config(format!(
                "the secret key of {} is empty",
                source.describe()
            )));
        }
        if let Some(t) = &source.security_token {
            if reqwest::header::HeaderValue::from_str(t.value.expose()).is_err() {
                return Err(Error::config(format!(
                    "the security token ({}) holds characters that cannot go in an HTTP header",
                    t.source
                )));
            }
        }
        let lookup = match (&source.project_id, &source.iam, &source.region) {
            (None, Some(iam), Some(region)) => Some(Lookup {
                iam: iam.clone(),
                region: region.value.clone(),
                cache: source
                    .cache_dir
                    .clone()
                    .or_else(dirs::cache_dir)
                    .map(|root| ProjectCache::new(&root)),
            }),
            _ => None,
        };
        let project = source.project_id.as_ref().map(|p| Project {
            id: p.value.clone(),
            cached: false,
        });
        Ok(AkSkCredential {
            key: AkSk {
                access_key: source.access_key.value.clone(),
                secret_key,
                project_id: None,
                security_token: source.security_token.as_ref().map(|t| t.value.clone()),
            },
            describe: source.describe(),
            lookup,
            project: Mutex::new(project),
            transport: Arc::clone(transport),
        })
    }

    /// The project ID: configured, cached, or looked up now (once).
    fn project(&self) -> Result<String> {
        let mut project = self.project.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = project.as_ref() {
            return Ok(p.id.clone());
        }
        let lookup = self
            .lookup
            .as_ref()
            .expect("settings require a project ID or a lookup");
        let key = cache_key(&lookup.iam.value, &self.key.access_key, &lookup.region);
        if let Some(id) = lookup.cache.as_ref().and_then(|c| c.load(&key)) {
            log::info!("project of region '{}': {id} (cached)", lookup.region);
            *project = Some(Project {
                id: id.clone(),
                cached: true,
            });
            return Ok(id);
        }
        let id = self.look_up(lookup)?;
        if let Some(cache) = &lookup.cache {
            if let Err(e) = cache.store(&key, &id, &lookup.iam.value, &lookup.region) {
                log::warn!(
                    "cannot cache the project ID in '{}': {e}",
                    cache.dir.display()
                );
            }
        }
        *project = Some(Project {
            id: id.clone(),
            cached: false,
        });
        Ok(id)
    }

    /// `GET {iam}/v3/projects?name=REGION`, signed without a project.
    fn look_up(&self, lookup: &Lookup) -> Result<String> {
        let url = projects_url(&lookup.iam.value, &lookup.region);
        let mut request = WireRequest::new("GET", url)
            .header("Accept", "application/json")
            .header("User-Agent", super::USER_AGENT_VALUE);
        sign_into(&mut request, &self.key, SystemTime::now());
        let target = format!("IAM '{}' ({})", lookup.iam.value, lookup.iam.source);
        let response = self.transport.exchange(&request, &target)?;
        let what = format!(
            "looking up the project of region '{}' (GET {})",
            lookup.region, request.url
        );
        if !response.is_success() {
            let message = crate::client::message::server_message(
                response.header("content-type").unwrap_or(""),
                &String::from_utf8_lossy(&response.body),
                reqwest::StatusCode::from_u16(response.status)
                    .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
            );
            let mut err = Error::new(
                Kind::from_status(response.status),
                format!("{what} failed: {}: {message}", status_line(response.status)),
            );
            if let Some(hint) = self.refusal_hint(&response) {
                err = err.hint(hint);
            }
            return Err(err
                .hint("to skip the lookup, set IMS_PATCH_PROJECT_ID (project_id in the profile)")
                .with_wire(WireFailure {
                    reach: Reach::Reached,
                    response: Some(response),
                    timed_out: false,
                    cause: None,
                }));
        }
        pick_project(&response.body, &lookup.region).map_err(|why| {
            Error::new(Kind::Config, format!("{what}: {why}")).hint(
                "a sub-project needs its project_id given: set IMS_PATCH_PROJECT_ID or project_id in the profile",
            )
        })
    }
}

impl std::fmt::Debug for AkSkCredential {
    /// The key's Debug redacts the secret key and the security token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AkSkCredential")
            .field("key", &self.key)
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

impl Credential for AkSkCredential {
    fn apply(&self, request: &mut WireRequest) -> Result<()> {
        let project = self.project()?;
        let key = AkSk {
            project_id: Some(project),
            ..self.key.clone()
        };
        sign_into(request, &key, SystemTime::now());
        Ok(())
    }

    /// A project ID from the cache may be stale: forget it, look it up
    /// again, and send once more.
    fn renew(&self) -> Result<bool> {
        let mut project = self.project.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = project.as_ref().filter(|p| p.cached) else {
            return Ok(false);
        };
        if let Some(lookup) = &self.lookup {
            if let Some(cache) = &lookup.cache {
                let key = cache_key(&lookup.iam.value, &self.key.access_key, &lookup.region);
                let _ = cache.remove(&key);
            }
        }
        log::info!(
            "the cached project ID {} was refused; looking it up again",
            p.id
        );
        *project = None;
        Ok(true)
    }

    fn source(&self) -> String {
        self.describe.clone()
    }

    fn refusal_hint(&self, response: &WireResponse) -> Option<String> {
        Some(refusal_hint(
            response,
            &self.key.access_key,
            &self.describe,
            SystemTime::now(),
        ))
    }
}

/// Signs `request` as it is (method, URL, headers, body) at `time`: sets
/// the URL to the signed canonical one and adds `X-Sdk-Date`,
/// `X-Project-Id`, `X-Security-Token` and `Authorization` (the last two
/// redacted when rendered).
pub fn sign_into(request: &mut WireRequest, key: &AkSk, time: SystemTime) {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    let body = request.body.as_deref().unwrap_or_default();
    let signed = aksk::sign(&request.method, &request.url, &headers, body, key, time);
    let shown = signed.redacted_headers();
    // `-v`: what signing added, the signature and token redacted.
    log::info!(
        "signed {} {}: {}",
        request.method,
        signed.url,
        shown
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for ((name, value), (_, shown)) in signed.headers().into_iter().zip(shown) {
        request.headers.push(if value == shown {
            Header::new(name, value)
        } else {
            Header::sensitive(name, value, shown)
        });
    }
    request.url = signed.url;
}

/// `{iam}/v3/projects?name=REGION`.
pub fn projects_url(iam: &Url, region: &str) -> Url {
    let mut url = iam.clone();
    url.path_segments_mut()
        .expect("an http(s) URL has path segments")
        .pop_if_empty()
        .extend(["v3", "projects"]);
    url.query_pairs_mut().append_pair("name", region);
    url
}

/// The ID of the project named exactly `region` in an IAM project list.
pub fn pick_project(body: &[u8], region: &str) -> std::result::Result<String, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let projects = value
        .get("projects")
        .and_then(Value::as_array)
        .ok_or("the answer has no project list")?;
    let ids: Vec<&str> = projects
        .iter()
        .filter(|p| p.get("name").and_then(Value::as_str) == Some(region))
        .filter_map(|p| p.get("id").and_then(Value::as_str))
        .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_graphic()))
        .collect();
    match ids.as_slice() {
        [id] => Ok(id.to_string()),
        [] => Err(format!(
            "no project named '{region}' is visible to this access key"
        )),
        _ => Err(format!("{} projects are named '{region}'", ids.len())),
    }
}

/// What to do about a refused signature: the gateway's `error_msg` says
/// which check failed; a stale date names both clocks.
pub fn refusal_hint(
    response: &WireResponse,
    access_key: &str,
    describe: &str,
    now: SystemTime,
) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    // The gateway's own words, without the canonical request it appends.
    let message = body
        .get("error_msg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split(",canonicalRequest:")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let clocks = match response.header("date") {
        Some(date) => format!(
            "the server's Date header says '{date}', this machine's clock says '{}'",
            httpdate::fmt_http_date(now)
        ),
        None => format!(
            "this machine's clock says '{}'",
            httpdate::fmt_http_date(now)
        ),
    };
    if message.contains("expired") {
        return format!(
            "the signature's X-Sdk-Date is more than 15 minutes off the server's time: {clocks}; fix the system clock (enable NTP time sync)"
        );
    }
    if message.contains("ak not exist") || message.contains("secretkey failed") {
        return format!(
            "the access key '{access_key}' is not known to the cloud; check {describe}"
        );
    }
    if message.contains("signature") {
        return format!(
            "the signature was refused: check {describe}, and the system clock ({clocks})"
        );
    }
    format!("the AK/SK signature was refused: check {describe}, and the system clock ({clocks})")
}

/// The secret key from a file: trimmed, at most [`MAX_KEY_FILE`] bytes.
fn read_key_file(f: &Sourced<PathBuf>) -> Result<Secret> {
    let fail = |why: String| {
        Error::config(format!(
            "cannot read secret_key_file '{}' ({}): {why}",
            f.value.display(),
            f.source
        ))
    };
    let file = fs::File::open(&f.value).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(fail(format!(
            "it is larger than {} KiB",
            MAX_KEY_FILE / 1024
        )));
    }
    crate::settings::file::warn_if_shared(&f.value, "holds a secret key");
    let text = String::from_utf8(bytes).map_err(|_| fail("it is not UTF-8 text".into()))?;
    let key = text.trim();
    if key.is_empty() || key.chars().any(char::is_control) {
        return Err(fail("it must hold the secret key on one line".into()));
    }
    Ok(Secret::new(key))
}

/// The cache file name of one lookup: a hash of what decides its answer.
fn cache_key(iam: &Url, access_key: &str, region: &str) -> String {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [iam.as_str(), access_key, region] {
        hash.update(part.as_bytes());
        hash.update(&[0]);
    }
    hex::encode(hash.finish())
}

#[derive(Serialize, Deserialize)]
struct CacheForm {
    version: u32,
    project_id: String,
    iam: String,
    region: String,
}

/// Project IDs found by lookups, one file each, under
/// `<root>/ims-patch/projects/` (beside the Keystone helper's `tokens/`).
#[derive(Debug, Clone)]
pub struct ProjectCache {
    dir: PathBuf,
}

impl ProjectCache {
    pub fn new(root: &Path) -> ProjectCache {
        ProjectCache {
            dir: root.join("ims-patch").join("projects"),
        }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached ID; a missing, unreadable or malformed file is none.
    pub fn load(&self, key: &str) -> Option<String> {
        let file = fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes).ok()?;
        let form: CacheForm = serde_json::from_slice(&bytes).ok()?;
        let ok = form.version == 1
            && !form.project_id.is_empty()
            && form.project_id.chars().all(|c| c.is_ascii_graphic());
        ok.then_some(form.project_id)
    }

    /// Writes atomically: a 0600 temp file in a 0700 directory, renamed.
    pub fn store(&self, key: &str, id: &str, iam: &Url, region: &str) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir)?;
        let form = CacheForm {
            version: 1,
            project_id: id.to_string(),
            iam: iam.to_string(),
            region: region.to_string(),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".json")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(&form).map_err(io::Error::other)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> io::Result<()> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const AK: &str = "AKIDEXAMPLE0000000000";
    const SK: &str = "SKEXAMPLE0000000000000000000000000000000";

    fn key(project: Option<&str>, token: Option<&str>) -> AkSk {
        AkSk {
            access_key: AK.into(),
            secret_key: Secret::new(SK),
            project_id: project.map(String::from),
            security_token: token.map(Secret::new),
        }
    }

    /// 2026-12-01T12:00:00Z, the issue's vectors' date.
    fn vector_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_126_400)
    }

    #[test]
    fn the_fully_built_request_is_signed_as_the_vector_says() {
        let url = Url::parse(
            "https://ims.eu-de.otc.t-systems.com/v2/images/33ad552d-1149-471c-8190-ff6776174a00",
        )
        .unwrap();
        let mut r = WireRequest::new("PATCH", url)
            .header("Accept", "application/json")
            .with_body(
                "application/openstack-images-v2.1-json-patch",
                br#"[{"op":"replace","path":"/name","value":"ims_test01"}]"#.to_vec(),
            );
        sign_into(
            &mut r,
            &key(Some("0b1e494e2660441a957313163095fe5c"), None),
            vector_time(),
        );
        assert_eq!(r.get("X-Sdk-Date"), Some("20261201T120000Z"));
        assert_eq!(
            r.get("X-Project-Id"),
            Some("0b1e494e2660441a957313163095fe5c")
        );
        assert_eq!(
            r.get("Authorization"),
            Some("SDK-HMAC-SHA256 Access=AKIDEXAMPLE0000000000, SignedHeaders=content-type;host;x-project-id;x-sdk-date, Signature=233e96f59af07370148b47b207a92c24bd694a164b7902e1cab044d01712f454")
        );
        let shown = r.render();
        assert!(shown.contains("X-Sdk-Date: 20261201T120000Z\n"), "{shown}");
        assert!(shown.contains("Signature=<redacted>"), "{shown}");
        assert!(!shown.contains("233e96f5"), "{shown}");
        assert!(!format!("{r:?}").contains("233e96f5"));
    }

    /// Signing an edit's PATCH as the client does (clone, sign, add the
    /// headers). A measurement, not a timed assertion: bench/aksk.sh runs
    /// it in release and reports the time (the issue's bound is 0.1 ms).
    #[test]
    #[ignore = "a benchmark, meaningful in release: run by bench/aksk.sh"]
    fn bench_signing_an_edit() {
        let request = WireRequest::new(
            "PATCH",
            Url::parse("https://ims.eu-de.otc.t-systems.com/v2/images/33ad552d-1149-471c-8190-ff6776174a00").unwrap(),
        )
        .header("Accept", "application/json")
        .header("User-Agent", "ims-patch")
        .with_body(
            "application/openstack-images-v2.1-json-patch",
            br#"[{"op":"replace","path":"/name","value":"ims test \u00e9"},{"op":"add","path":"/__os_bit","value":"64"}]"#.to_vec(),
        );
        let key = key(Some("0b1e494e2660441a957313163095fe5c"), None);
        let runs = 20_000;
        let started = std::time::Instant::now();
        for _ in 0..runs {
            let mut r = request.clone();
            sign_into(&mut r, &key, SystemTime::now());
            std::hint::black_box(&r);
        }
        let each = started.elapsed() / runs;
        println!(
            "signing one PATCH: {:.1} µs (mean of {runs})",
            each.as_secs_f64() * 1e6
        );
    }

    #[test]
    fn the_url_sent_is_the_canonical_one_and_the_token_is_redacted() {
        let mut r = WireRequest::new(
            "GET",
            Url::parse("http://127.0.0.1:9292/v2/images?name=a+b%C3%A9&os_hidden=true").unwrap(),
        );
        sign_into(&mut r, &key(Some("p"), Some("tok-s3cret")), vector_time());
        assert_eq!(r.url.query(), Some("name=a%20b%C3%A9&os_hidden=true"));
        assert_eq!(r.get("X-Security-Token"), Some("tok-s3cret"));
        assert!(!r.render().contains("tok-s3cret"));
        assert!(r
            .get("Authorization")
            .unwrap()
            .contains("SignedHeaders=host;x-project-id;x-sdk-date;x-security-token,"));
    }

    #[test]
    fn the_project_is_the_one_named_as_the_region() {
        let body = br#"{"projects":[{"id":"a1","name":"eu-de_sub"},{"id":"b2","name":"eu-de"}],"links":{}}"#;
        assert_eq!(pick_project(body, "eu-de"), Ok("b2".into()));
        assert!(pick_project(body, "eu-nl")
            .unwrap_err()
            .contains("no project named 'eu-nl'"));
        assert!(pick_project(b"<html>", "eu-de").is_err());
        assert!(pick_project(br#"{"projects":{}}"#, "eu-de").is_err());
        let two = br#"{"projects":[{"id":"a","name":"x"},{"id":"b","name":"x"}]}"#;
        assert!(pick_project(two, "x").unwrap_err().contains("2 projects"));
        assert_eq!(
            projects_url(
                &Url::parse("https://iam.eu-de.otc.t-systems.com").unwrap(),
                "eu de"
            )
            .as_str(),
            "https://iam.eu-de.otc.t-systems.com/v3/projects?name=eu+de"
        );
    }

    fn refused(msg: &str, date: Option<&str>) -> WireResponse {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(d) = date {
            headers.push(("date".into(), d.into()));
        }
        WireResponse {
            status: 401,
            headers,
            body:
                serde_json::json!({"error_code": "APIGW.0301", "error_msg": msg, "request_id": "r"})
                    .to_string()
                    .into_bytes(),
        }
    }

    #[test]
    fn refusals_say_what_to_check() {
        let now = vector_time();
        let d = "the keys (from IMS_PATCH_ACCESS_KEY)";
        let h = refusal_hint(
            &refused("Incorrect IAM authentication information: verify aksk signature fail, canonicalRequest: x", None),
            AK,
            d,
            now,
        );
        assert!(
            h.contains("check the keys (from IMS_PATCH_ACCESS_KEY)"),
            "{h}"
        );
        assert!(h.contains("system clock"), "{h}");
        let h = refusal_hint(
            &refused("Incorrect IAM authentication information: calc ak sk signature fail:signature expired", Some("Tue, 01 Dec 2026 12:20:00 GMT")),
            AK,
            d,
            now,
        );
        assert!(
            h.contains("Date header says 'Tue, 01 Dec 2026 12:20:00 GMT'"),
            "{h}"
        );
        assert!(h.contains("'Tue, 01 Dec 2026 12:00:00 GMT'"), "{h}");
        assert!(h.contains("fix the system clock"), "{h}");
        let h = refusal_hint(
            &refused("Incorrect IAM authentication information: Get secretKey failed,ak:AKX,err:ak not exist", None),
            AK,
            d,
            now,
        );
        assert!(
            h.contains(&format!("access key '{AK}' is not known")),
            "{h}"
        );
    }

    #[test]
    fn the_project_cache_round_trips_and_ignores_junk() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ProjectCache::new(dir.path());
        let iam = Url::parse("https://iam.eu-de.otc.t-systems.com").unwrap();
        let k = cache_key(&iam, AK, "eu-de");
        assert_ne!(k, cache_key(&iam, AK, "eu-nl"));
        assert_ne!(k, cache_key(&iam, "AK2", "eu-de"));
        assert_eq!(cache.load(&k), None);
        cache.store(&k, "p123", &iam, "eu-de").unwrap();
        assert_eq!(cache.load(&k), Some("p123".into()));
        let path = dir.path().join(format!("ims-patch/projects/{k}.json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        fs::write(&path, "{not json").unwrap();
        assert_eq!(cache.load(&k), None);
        cache.remove(&k).unwrap();
        cache.remove(&k).unwrap();
    }

    #[test]
    fn a_key_file_is_one_trimmed_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sk");
        let sourced = |p: &Path| Sourced {
            value: p.to_path_buf(),
            source: crate::settings::Source::Default,
        };
        fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(read_key_file(&sourced(&path)).unwrap().expose(), "s3cret");
        fs::write(&path, "a\nb\n").unwrap();
        let e = read_key_file(&sourced(&path)).unwrap_err();
        assert!(e.message.contains("one line"), "{}", e.message);
        assert!(!e.message.contains('a') || !e.message.contains("\nb"));
        let e = read_key_file(&sourced(&dir.path().join("none"))).unwrap_err();
        assert_eq!(e.exit_code(), 3);
    }
}
