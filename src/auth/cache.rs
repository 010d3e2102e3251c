//! The token cache: `<cache dir>/ims-patch/tokens/<sha256>.json`, one file per
//! login (directory 0700, files 0600, replaced atomically), holding the token,
//! its expiry, the catalog's image endpoints and who it is for. Never the
//! password. A file that cannot be read or parsed counts as absent.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::auth::keystone::{AuthRequest, IdName, Owner, Service, Token};
use crate::secret::Secret;

/// A cached token is used until this long before it expires (keystoneauth
/// renews 120 s early too: `access/access.py` `will_expire_soon`).
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(120);

/// The largest cache file read; a bigger one counts as corrupt.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The file format's version; another version counts as absent.
const VERSION: u32 = 1;

/// The key of one login: hex SHA-256 of its non-secret identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// `None` for logins that are not cached (the token method).
    pub fn of(request: &AuthRequest) -> Option<CacheKey> {
        let identity = request.cache_identity()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, identity.as_bytes());
        Some(CacheKey(hex::encode(digest)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is cached for one login.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedToken {
    pub token: Secret,
    pub expires_at: SystemTime,
    /// The identity URL as configured (for `auth status` and revoking).
    pub auth_url: String,
    pub auth_type: String,
    pub user: Option<Owner>,
    pub project: Option<Owner>,
    pub domain: Option<IdName>,
    /// The image services of the catalog, with all their endpoints, so the
    /// endpoint can be selected again without logging in.
    pub catalog: Vec<Service>,
}

impl CachedToken {
    pub fn new(token: &Token, request: &AuthRequest) -> CachedToken {
        CachedToken {
            token: token.token.clone(),
            expires_at: token.expires_at,
            auth_url: request.auth_url.clone(),
            auth_type: request.auth_type().name().to_string(),
            user: token.user.clone(),
            project: token.project.clone(),
            domain: token.domain.clone(),
            catalog: token
                .catalog
                .iter()
                .filter(|s| s.service_type == "image")
                .cloned()
                .collect(),
        }
    }

    /// Usable at `now`: more than [`EXPIRY_MARGIN`] before it expires.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now.checked_add(EXPIRY_MARGIN)
            .is_some_and(|t| t < self.expires_at)
    }
}

/// The file's form.
#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    token: String,
    expires_at: String,
    auth_url: String,
    auth_type: String,
    #[serde(default)]
    user: Option<Owner>,
    #[serde(default)]
    project: Option<Owner>,
    #[serde(default)]
    domain: Option<IdName>,
    #[serde(default)]
    catalog: Vec<Service>,
}

/// The cache directory and its files.
#[derive(Debug, Clone)]
pub struct TokenCache {
    dir: PathBuf,
}

impl TokenCache {
    /// The cache under `cache_root` (the user cache directory, e.g.
    /// `dirs::cache_dir()`, or an override): `<root>/ims-patch/tokens`.
    pub fn new(cache_root: &Path) -> TokenCache {
        TokenCache {
            dir: cache_root.join("ims-patch").join("tokens"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of one login.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.0))
    }

    /// The cached token of a login, if there is a readable, well-formed one
    /// (fresh or not: check [`CachedToken::is_fresh`]).
    pub fn load(&self, key: &CacheKey) -> Option<CachedToken> {
        let file = fs::File::open(self.path(key)).ok()?;
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return None;
        }
        let form: FileForm = serde_json::from_slice(&bytes).ok()?;
        if form.version != VERSION || form.token.is_empty() {
            return None;
        }
        Some(CachedToken {
            token: Secret::new(form.token),
            expires_at: humantime::parse_rfc3339(&form.expires_at).ok()?,
            auth_url: form.auth_url,
            auth_type: form.auth_type,
            user: form.user,
            project: form.project,
            domain: form.domain,
            catalog: form.catalog,
        })
    }

    /// Writes the entry: a 0600 temp file in the same directory, synced,
    /// then renamed over the old file, so a reader sees the old file or the
    /// new one, never a part (parallel runs may race: the last rename wins,
    /// and every file it leaves is whole).
    pub fn store(&self, key: &CacheKey, entry: &CachedToken) -> io::Result<()> {
        self.create_dir()?;
        let form = FileForm {
            version: VERSION,
            token: entry.token.expose().to_string(),
            expires_at: humantime::format_rfc3339(entry.expires_at).to_string(),
            auth_url: entry.auth_url.clone(),
            auth_type: entry.auth_type.clone(),
            user: entry.user.clone(),
            project: entry.project.clone(),
            domain: entry.domain.clone(),
            catalog: entry.catalog.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&form).map_err(io::Error::other)?;
        // tempfile creates the file with mode 0600 on Unix.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".json")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        // Make the rename durable; not every file system can sync a directory.
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Deletes a login's cached token (logout); `Ok(false)` if there was none.
    pub fn remove(&self, key: &CacheKey) -> io::Result<bool> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the directory 0700, and narrows an existing one to 0700.
    fn create_dir(&self) -> io::Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            builder.mode(0o700);
            builder.create(&self.dir)?;
            let mode = fs::metadata(&self.dir)?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
            }
            Ok(())
        }
        #[cfg(not(unix))]
        builder.create(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clouds::{AuthConfig, Source, Sourced};
    use crate::auth::keystone::CatalogEndpoint;

    fn request(project: &str, password: &str) -> AuthRequest {
        let s = |v: &str| {
            Some(Sourced {
                value: v.to_string(),
                source: Source::Env("OS_X"),
            })
        };
        let config = AuthConfig {
            auth_url: s("http://127.0.0.1:5000/v3"),
            username: s("demo"),
            user_domain_name: s("Default"),
            password: Some(Sourced {
                value: Secret::new(password),
                source: Source::Env("OS_PASSWORD"),
            }),
            project_name: s(project),
            project_domain_id: s("default"),
            ..AuthConfig::default()
        };
        AuthRequest::from_config(&config).unwrap()
    }

    fn entry(token: &str, expires_at: SystemTime) -> CachedToken {
        CachedToken {
            token: Secret::new(token),
            expires_at,
            auth_url: "http://127.0.0.1:5000/v3".into(),
            auth_type: "password".into(),
            user: Some(Owner {
                id: Some("u1".into()),
                name: Some("demo".into()),
                domain: Some(IdName {
                    id: Some("default".into()),
                    name: Some("Default".into()),
                }),
            }),
            project: Some(Owner {
                id: Some("p1".into()),
                name: Some("demo".into()),
                domain: None,
            }),
            domain: None,
            catalog: vec![Service {
                service_type: "image".into(),
                name: Some("glance".into()),
                endpoints: vec![CatalogEndpoint {
                    interface: "public".into(),
                    region_id: Some("RegionOne".into()),
                    region: Some("RegionOne".into()),
                    url: "http://127.0.0.1:9292".into(),
                }],
            }],
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn key_has_no_secret_and_ignores_the_password() {
        let a = CacheKey::of(&request("demo", "pw1")).unwrap();
        let b = CacheKey::of(&request("demo", "pw2")).unwrap();
        let c = CacheKey::of(&request("admin", "pw1")).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().chars().all(|ch| ch.is_ascii_hexdigit()));
    }

    #[test]
    fn fresh_until_120_seconds_before_expiry() {
        let e = entry("t", at(10_000));
        assert!(e.is_fresh(at(9_879)));
        assert!(!e.is_fresh(at(9_880)));
        assert!(!e.is_fresh(at(10_001)));
    }

    #[test]
    fn round_trip_with_modes() {
        let root = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(root.path());
        let key = CacheKey::of(&request("demo", "pw")).unwrap();
        assert!(cache.load(&key).is_none());
        let e = entry("gAAAA-token", at(1_800_000_000));
        cache.store(&key, &e).unwrap();
        assert_eq!(cache.load(&key).unwrap(), e);
        let path = cache.path(&key);
        assert_eq!(path.parent().unwrap(), root.path().join("ims-patch/tokens"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"pw\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(cache.dir()), 0o700);
            fs::set_permissions(cache.dir(), fs::Permissions::from_mode(0o755)).unwrap();
            cache.store(&key, &e).unwrap();
            assert_eq!(mode(cache.dir()), 0o700);
        }
        // No temp file is left behind.
        let names: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(cache.remove(&key).unwrap());
        assert!(!cache.remove(&key).unwrap());
        assert!(cache.load(&key).is_none());
    }

    #[test]
    fn corrupt_files_count_as_absent_and_are_replaced() {
        let root = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(root.path());
        let key = CacheKey::of(&request("demo", "pw")).unwrap();
        fs::create_dir_all(cache.dir()).unwrap();
        for junk in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"{\"version\":1}",
            b"{\"version\":2,\"token\":\"t\",\"expires_at\":\"2030-01-01T00:00:00Z\",\"auth_url\":\"u\",\"auth_type\":\"password\"}",
            b"{\"version\":1,\"token\":\"t\",\"expires_at\":\"soon\",\"auth_url\":\"u\",\"auth_type\":\"password\"}",
        ] {
            fs::write(cache.path(&key), junk).unwrap();
            assert!(cache.load(&key).is_none(), "{junk:?}");
        }
        let e = entry("t", at(1_800_000_000));
        cache.store(&key, &e).unwrap();
        assert_eq!(cache.load(&key).unwrap(), e);
        // A directory where the file should be is not a token either.
        fs::remove_file(cache.path(&key)).unwrap();
        fs::create_dir(cache.path(&key)).unwrap();
        assert!(cache.load(&key).is_none());
    }

    #[test]
    fn from_a_token_answer_keeps_only_image_services() {
        let body = br#"{"token":{"expires_at":"2026-11-26T19:14:06.000000Z","user":{"id":"u","name":"demo"},
          "catalog":[{"type":"identity","endpoints":[{"interface":"public","url":"http://k/v3"}]},
                     {"type":"image","endpoints":[{"interface":"public","region_id":"R","url":"http://g"}]}]}}"#;
        let token = crate::auth::keystone::parse_token_response(Some("tok"), body).unwrap();
        let e = CachedToken::new(&token, &request("demo", "pw"));
        assert_eq!(e.catalog.len(), 1);
        assert_eq!(e.catalog[0].service_type, "image");
        assert_eq!(e.auth_type, "password");
        assert_eq!(e.token.expose(), "tok");
        assert_eq!(
            crate::auth::keystone::select_image_endpoint(&e.catalog, None, None).unwrap(),
            "http://g/v2"
        );
    }

    #[test]
    fn twenty_threads_share_one_cache() {
        let root = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(root.path());
        std::thread::scope(|s| {
            for i in 0..20u64 {
                let cache = cache.clone();
                s.spawn(move || write_and_read(&cache, i));
            }
        });
        let names: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp files left: {names:?}");
    }

    /// One writer-reader of [`twenty_processes_share_one_cache`]: stores and
    /// loads 25 entries under `IMS_PATCH_TEST_CACHE_ROOT` (or, run alone,
    /// under a temp dir of its own), checking each entry read is whole.
    #[test]
    #[ignore = "a worker process of twenty_processes_share_one_cache, which runs it"]
    fn cache_worker_process() {
        let own = tempfile::tempdir().unwrap();
        let root = std::env::var_os("IMS_PATCH_TEST_CACHE_ROOT")
            .map_or(own.path().to_path_buf(), PathBuf::from);
        let worker: u64 = std::env::var("IMS_PATCH_TEST_WORKER")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
        write_and_read(&TokenCache::new(&root), worker);
    }

    /// Stores 25 self-consistent entries (the token names its expiry, with
    /// microseconds) and checks every entry read back is whole.
    fn write_and_read(cache: &TokenCache, worker: u64) {
        let key = CacheKey::of(&request("demo", "pw")).unwrap();
        for j in 0..25u64 {
            let micros = 1_800_000_000_000_000 + worker * 1_000_000 + j * 1_001;
            let expires = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            let e = entry(&format!("token-{micros}"), expires);
            cache.store(&key, &e).unwrap();
            let read = cache.load(&key).expect("a reader found no whole file");
            let got = read
                .expires_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros();
            assert_eq!(read.token.expose(), format!("token-{got}"));
            assert_eq!(read.catalog, e.catalog);
        }
    }

    #[test]
    fn twenty_processes_share_one_cache() {
        let root = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..20)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args([
                        "--ignored",
                        "--exact",
                        "auth::cache::tests::cache_worker_process",
                        "--test-threads=1",
                    ])
                    .env("IMS_PATCH_TEST_CACHE_ROOT", root.path())
                    .env("IMS_PATCH_TEST_WORKER", i.to_string())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The worker really ran (not filtered out).
            assert!(stdout.contains("1 passed"), "{stdout}");
        }
        let cache = TokenCache::new(root.path());
        assert!(cache
            .load(&CacheKey::of(&request("demo", "pw")).unwrap())
            .is_some());
        let names: Vec<_> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "temp files left: {names:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_file_content_loads_or_is_ignored(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let root = tempfile::tempdir().unwrap();
            let cache = TokenCache::new(root.path());
            let key = CacheKey::of(&request("demo", "pw")).unwrap();
            fs::create_dir_all(cache.dir()).unwrap();
            fs::write(cache.path(&key), &bytes).unwrap();
            let _ = cache.load(&key);
        }
    }
}
