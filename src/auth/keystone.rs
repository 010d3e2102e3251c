//! Keystone v3 (and OTC IAM): the `POST /v3/auth/tokens` body keystoneauth
//! sends, the token answer, the image endpoint picked from its catalog, the
//! identity service's error bodies, and the `DELETE /v3/auth/tokens` revoke
//! request. Pure: the caller does the HTTP.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use url::Url;

use crate::auth::clouds::{AuthConfig, Sourced};
use crate::error::{Error, Kind, Result};
use crate::secret::Secret;

/// The `auth_type`s ims-patch knows (the issue's list; keystoneauth entry
/// point names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// `password`, `v3password`.
    Password,
    /// `v3applicationcredential` (also `application_credential`).
    ApplicationCredential,
    /// `token`, `v3token`: exchange a token for a (project-scoped) one.
    Token,
    /// `admin_token`, `token_endpoint`: the endpoint and token as given, no
    /// identity call.
    AdminToken,
}

impl AuthType {
    pub fn parse(text: &str) -> Option<AuthType> {
        Some(match text {
            "password" | "v3password" => AuthType::Password,
            "v3applicationcredential" | "application_credential" => AuthType::ApplicationCredential,
            "token" | "v3token" => AuthType::Token,
            "admin_token" | "token_endpoint" => AuthType::AdminToken,
            _ => return None,
        })
    }

    /// The name used in the cache key and in messages.
    pub fn name(self) -> &'static str {
        match self {
            AuthType::Password => "password",
            AuthType::ApplicationCredential => "v3applicationcredential",
            AuthType::Token => "v3token",
            AuthType::AdminToken => "admin_token",
        }
    }

    /// The configured `auth_type`, or the one its settings imply: a token
    /// without a password means `token` (as openstackclient does with
    /// `--os-token`), an application credential secret without a password
    /// means `v3applicationcredential`; else `password` (openstacksdk's
    /// default).
    pub fn of(config: &AuthConfig) -> Result<AuthType> {
        if let Some(t) = &config.auth_type {
            return AuthType::parse(&t.value).ok_or_else(|| {
                Error::config(format!(
                    "auth_type '{}' ({}) is not supported",
                    t.value, t.source
                ))
                .hint("use password, v3password, v3applicationcredential, token, v3token, admin_token or token_endpoint")
            });
        }
        Ok(if config.password.is_some() {
            AuthType::Password
        } else if config.application_credential_secret.is_some() {
            AuthType::ApplicationCredential
        } else if config.token.is_some() {
            AuthType::Token
        } else {
            AuthType::Password
        })
    }
}

/// A domain, by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

impl DomainRef {
    fn json(&self) -> Value {
        match self {
            DomainRef::Id(id) => json!({ "id": id }),
            DomainRef::Name(name) => json!({ "name": name }),
        }
    }

    /// keystoneauth prefers the id when both are given.
    fn pick(id: &Option<Sourced<String>>, name: &Option<Sourced<String>>) -> Option<DomainRef> {
        match (id, name) {
            (Some(id), _) => Some(DomainRef::Id(id.value.clone())),
            (None, Some(name)) => Some(DomainRef::Name(name.value.clone())),
            (None, None) => None,
        }
    }
}

/// A user: by id, or by name and (normally) domain. A name without a
/// domain is sent as is, as keystoneauth does; Keystone answers 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name {
        name: String,
        domain: Option<DomainRef>,
    },
}

impl UserRef {
    fn json(&self) -> Map<String, Value> {
        let mut user = Map::new();
        match self {
            UserRef::Id(id) => {
                user.insert("id".into(), json!(id));
            }
            UserRef::Name { name, domain } => {
                user.insert("name".into(), json!(name));
                if let Some(d) = domain {
                    user.insert("domain".into(), d.json());
                }
            }
        }
        user
    }
}

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Password {
        user: UserRef,
        password: Secret,
    },
    /// By id, or by name and user.
    ApplicationCredential {
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: Secret,
    },
    /// An existing token, exchanged for a new (scoped) one.
    Token {
        token: Secret,
    },
}

/// What the token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// No scope sent: Keystone scopes to the user's default project, if any.
    Unscoped,
    ProjectId(String),
    ProjectName {
        name: String,
        domain: Option<DomainRef>,
    },
    Domain(DomainRef),
}

/// One login: the identity URL as configured, the method and the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub auth_url: String,
    pub method: Method,
    pub scope: Scope,
}

fn missing(what: &str, how: &str) -> Error {
    Error::config(format!("no {what} for the login")).hint(how.to_string())
}

impl AuthRequest {
    /// The login the settings describe. `admin_token`/`token_endpoint` make
    /// no identity call: the caller handles them before (this refuses them).
    pub fn from_config(config: &AuthConfig) -> Result<AuthRequest> {
        let auth_type = AuthType::of(config)?;
        // Where to set what is missing: the cloud's keys, or the variables.
        let set = |keys: &str, vars: &str| match &config.cloud {
            Some(c) => format!("set {keys} in cloud '{c}' (clouds.yaml or secure.yaml)"),
            None => format!("set {vars}"),
        };
        let auth_url = config
            .auth_url
            .as_ref()
            .ok_or_else(|| missing("identity URL (auth_url)", &set("auth_url", "OS_AUTH_URL")))?
            .value
            .clone();
        let user = || -> Option<UserRef> {
            match (&config.user_id, &config.username) {
                (Some(id), _) => Some(UserRef::Id(id.value.clone())),
                (None, Some(name)) => Some(UserRef::Name {
                    name: name.value.clone(),
                    domain: DomainRef::pick(&config.user_domain_id, &config.user_domain_name),
                }),
                (None, None) => None,
            }
        };
        // keystoneauth1/identity/v3/base.py get_auth_ref: domain id or name,
        // else project id, else project name (+ its domain id or name); both a
        // domain and a project is refused ("cannot be scoped to multiple
        // targets"). openstacksdk's _handle_domain_id already turned a
        // domain given with a project into the user and project domains.
        let scope = || -> Result<Scope> {
            let domain_scope = DomainRef::pick(&config.domain_id, &config.domain_name);
            let project = config.project_id.as_ref().or(config.project_name.as_ref());
            if let (Some(_), Some(p)) = (&domain_scope, project) {
                let d = config.domain_id.as_ref().or(config.domain_name.as_ref());
                return Err(Error::config(format!(
                "the login cannot be scoped to both project '{}' ({}) and domain '{}' ({})",
                p.value,
                p.source,
                d.map_or("", |d| d.value.as_str()),
                d.map_or(String::new(), |d| d.source.to_string()),
            ))
            .hint("set user_domain_name/project_domain_name instead of domain_name for a project login"));
            }
            let scope = if let Some(d) = domain_scope {
                Scope::Domain(d)
            } else if let Some(id) = &config.project_id {
                Scope::ProjectId(id.value.clone())
            } else if let Some(name) = &config.project_name {
                Scope::ProjectName {
                    name: name.value.clone(),
                    domain: DomainRef::pick(&config.project_domain_id, &config.project_domain_name),
                }
            } else {
                Scope::Unscoped
            };
            Ok(scope)
        };
        let method = match auth_type {
            AuthType::Password => Method::Password {
                user: user().ok_or_else(|| {
                    missing("user", &set("username and user_domain_name (or user_id)", "OS_USERNAME and OS_USER_DOMAIN_NAME (or OS_USER_ID)"))
                })?,
                password: config
                    .password
                    .as_ref()
                    .ok_or_else(|| missing("password", &set("password", "OS_PASSWORD")))?
                    .value
                    .clone(),
            },
            AuthType::ApplicationCredential => {
                let secret = config
                    .application_credential_secret
                    .as_ref()
                    .ok_or_else(|| missing("application credential secret", &set("application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET")))?
                    .value
                    .clone();
                let id = config.application_credential_id.as_ref().map(|s| s.value.clone());
                let name = config.application_credential_name.as_ref().map(|s| s.value.clone());
                let user = if id.is_none() { user() } else { None };
                if id.is_none() && (name.is_none() || user.is_none()) {
                    return Err(missing(
                        "application credential id",
                        &set(
                            "application_credential_id (or application_credential_name with username and user_domain_name)",
                            "OS_APPLICATION_CREDENTIAL_ID (or OS_APPLICATION_CREDENTIAL_NAME with OS_USERNAME and OS_USER_DOMAIN_NAME)",
                        ),
                    ));
                }
                Method::ApplicationCredential { id, name, user, secret }
            }
            AuthType::Token => Method::Token {
                token: config
                    .token
                    .as_ref()
                    .ok_or_else(|| missing("token", &set("token", "OS_TOKEN")))?
                    .value
                    .clone(),
            },
            AuthType::AdminToken => {
                return Err(Error::config(
                    "auth_type admin_token makes no identity call: it needs an image endpoint and a token",
                ))
            }
        };
        // Keystone refuses a scope with an application credential (401
        // "Application credentials cannot request a scope."): send none.
        let scope = match method {
            Method::ApplicationCredential { .. } => Scope::Unscoped,
            _ => scope()?,
        };
        Ok(AuthRequest {
            auth_url,
            method,
            scope,
        })
    }

    pub fn auth_type(&self) -> AuthType {
        match self.method {
            Method::Password { .. } => AuthType::Password,
            Method::ApplicationCredential { .. } => AuthType::ApplicationCredential,
            Method::Token { .. } => AuthType::Token,
        }
    }

    /// `{auth_url}/auth/tokens`, with `/v3` added when the URL lacks it.
    pub fn tokens_url(&self) -> Result<Url> {
        tokens_url(&self.auth_url)
    }

    /// The JSON body, with the secret in it: only for the wire.
    pub fn body(&self) -> Value {
        self.body_with(|s| s.expose().to_string())
    }

    /// The body with every secret replaced by `<redacted>`, for `--dry-run`
    /// and `-v`.
    pub fn redacted_body(&self) -> Value {
        self.body_with(|_| "<redacted>".to_string())
    }

    fn body_with(&self, secret: impl Fn(&Secret) -> String) -> Value {
        // keystoneauth1/identity/v3/password.py, application_credential.py,
        // tokens.py: one method each.
        let (method, data) = match &self.method {
            Method::Password { user, password } => {
                let mut user = user.json();
                user.insert("password".into(), json!(secret(password)));
                ("password", json!({ "user": user }))
            }
            Method::ApplicationCredential {
                id,
                name,
                user,
                secret: s,
            } => {
                let mut data = Map::new();
                data.insert("secret".into(), json!(secret(s)));
                if let Some(id) = id {
                    data.insert("id".into(), json!(id));
                } else {
                    data.insert("name".into(), json!(name));
                    data.insert(
                        "user".into(),
                        Value::Object(user.as_ref().map(UserRef::json).unwrap_or_default()),
                    );
                }
                ("application_credential", Value::Object(data))
            }
            Method::Token { token } => ("token", json!({ "id": secret(token) })),
        };
        let mut identity = Map::new();
        identity.insert("methods".into(), json!([method]));
        identity.insert(method.into(), data);
        let mut auth = Map::new();
        auth.insert("identity".into(), Value::Object(identity));
        let scope = self.scope_json();
        if let Some(scope) = scope {
            auth.insert("scope".into(), scope);
        }
        json!({ "auth": auth })
    }

    /// The `scope` object, or `None` for no scope
    /// (keystoneauth1/identity/v3/base.py).
    fn scope_json(&self) -> Option<Value> {
        match &self.scope {
            Scope::Unscoped => None,
            Scope::ProjectId(id) => Some(json!({ "project": { "id": id } })),
            Scope::ProjectName { name, domain } => {
                let mut project = Map::new();
                project.insert("name".into(), json!(name));
                if let Some(d) = domain {
                    project.insert("domain".into(), d.json());
                }
                Some(json!({ "project": project }))
            }
            Scope::Domain(d) => Some(json!({ "domain": d.json() })),
        }
    }

    /// The non-secret identity of this login, for the token cache key: the
    /// normalised auth URL, the method, the user or credential id and the
    /// scope. `None` for the token method, whose only identity is the
    /// secret token itself (such logins are not cached).
    pub fn cache_identity(&self) -> Option<String> {
        let url = tokens_url(&self.auth_url).ok()?;
        let who = match &self.method {
            Method::Password { user, .. } => Value::Object(user.json()),
            Method::ApplicationCredential { id: Some(id), .. } => json!({ "id": id }),
            Method::ApplicationCredential { name, user, .. } => json!({
                "name": name,
                "user": user.as_ref().map(UserRef::json),
            }),
            Method::Token { .. } => return None,
        };
        // A JSON array: no value can pass for another field.
        let identity = json!([
            url.as_str(),
            self.auth_type().name(),
            who,
            self.scope_json()
        ]);
        Some(identity.to_string())
    }
}

/// `{auth_url}/auth/tokens`: `https://h:5000`, `https://h:5000/`,
/// `https://h:5000/v3` and `https://h:5000/v3/` all give
/// `https://h:5000/v3/auth/tokens`. No version discovery request is made.
pub fn tokens_url(auth_url: &str) -> Result<Url> {
    let bad = |why: &str| {
        Error::config(format!("auth_url '{auth_url}' is not usable: {why}"))
            .hint("it is the identity service's URL, e.g. https://iam.eu-de.otc.t-systems.com/v3")
    };
    let mut url = Url::parse(auth_url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(
            "it must start with https:// (or http://) and name a host",
        ));
    }
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    match segments.last().map(String::as_str) {
        Some("v3") => {}
        Some(v) if v.starts_with("v2") => {
            return Err(bad(
                "it points at the identity API v2, which is gone; use /v3",
            ))
        }
        _ => segments.push("v3".into()),
    }
    segments.push("auth".into());
    segments.push("tokens".into());
    url.set_path(&segments.join("/"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// An id and a name (Keystone omits either at times).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A user or project of a token, with its domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<IdName>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    #[serde(rename = "type")]
    pub service_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEndpoint {
    pub interface: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub url: String,
}

impl CatalogEndpoint {
    fn region_name(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
}

/// A token the identity service issued.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub token: Secret,
    pub expires_at: SystemTime,
    /// As sent, e.g. `2026-11-26T19:14:06.000000Z`.
    pub expires_at_text: String,
    pub user: Option<Owner>,
    pub project: Option<Owner>,
    /// The domain of a domain-scoped token.
    pub domain: Option<IdName>,
    /// Empty for an unscoped token.
    pub catalog: Vec<Service>,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenFields,
}

#[derive(Deserialize)]
struct TokenFields {
    expires_at: String,
    #[serde(default)]
    user: Option<Owner>,
    #[serde(default)]
    project: Option<Owner>,
    #[serde(default)]
    domain: Option<IdName>,
    #[serde(default)]
    catalog: Option<Vec<Service>>,
}

/// Parses an RFC 3339 UTC time as Keystone writes it (`...Z`, microseconds
/// or none); `+00:00` is accepted too.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let t = text.trim();
    let t = t
        .strip_suffix("+00:00")
        .map_or(t.to_string(), |s| format!("{s}Z"));
    humantime::parse_rfc3339(&t).ok()
}

/// Reads the answer to a successful `POST /v3/auth/tokens` (201): the
/// token from the `X-Subject-Token` header, the rest from the body.
pub fn parse_token_response(subject_token: Option<&str>, body: &[u8]) -> Result<Token> {
    let token = subject_token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::runtime("the identity service answered without an X-Subject-Token header")
        })?;
    let parsed: TokenBody = serde_json::from_slice(body).map_err(|e| {
        Error::runtime(format!(
            "the identity service's token answer is not the expected JSON ({e})"
        ))
    })?;
    let fields = parsed.token;
    let expires_at = parse_time(&fields.expires_at).ok_or_else(|| {
        Error::runtime(format!(
            "the identity service's expires_at '{}' is not an RFC 3339 time",
            fields.expires_at
        ))
    })?;
    Ok(Token {
        token: Secret::new(token),
        expires_at,
        expires_at_text: fields.expires_at,
        user: fields.user,
        project: fields.project,
        domain: fields.domain,
        catalog: fields.catalog.unwrap_or_default(),
    })
}

/// keystoneauth's `normalize_interface` for v3 catalogs: `publicURL` →
/// `public` (access/service_catalog.py strips a trailing `URL`).
pub fn normalize_interface(interface: &str) -> String {
    interface.trim_end_matches(['U', 'R', 'L']).to_string()
}

/// The image API base URL (ending in `/v2`) from the catalog: service type
/// `image`, `interface` (default `public`), `region` (required when the
/// candidates span several regions).
pub fn select_image_endpoint(
    catalog: &[Service],
    interface: Option<&str>,
    region: Option<&str>,
) -> Result<String> {
    let interface = normalize_interface(interface.unwrap_or("public"));
    let images: Vec<&CatalogEndpoint> = catalog
        .iter()
        .filter(|s| s.service_type == "image")
        .flat_map(|s| s.endpoints.iter())
        .collect();
    if images.is_empty() {
        let services: Vec<String> = catalog
            .iter()
            .map(|s| {
                let mut regions: Vec<&str> =
                    s.endpoints.iter().filter_map(|e| e.region_name()).collect();
                regions.sort();
                regions.dedup();
                format!(
                    "{} (regions: {})",
                    s.service_type,
                    if regions.is_empty() {
                        "none".into()
                    } else {
                        regions.join(", ")
                    }
                )
            })
            .collect();
        let what = if services.is_empty() {
            "the token's catalog is empty (an unscoped token has none)".to_string()
        } else {
            format!(
                "the token's catalog has no image service; it has: {}",
                services.join("; ")
            )
        };
        return Err(Error::config(what)
            .hint("scope the login to a project (project_name or project_id), or set image_endpoint_override"));
    }
    let on_interface: Vec<&CatalogEndpoint> = images
        .iter()
        .copied()
        .filter(|e| normalize_interface(&e.interface) == interface)
        .collect();
    if on_interface.is_empty() {
        let mut have: Vec<&str> = images.iter().map(|e| e.interface.as_str()).collect();
        have.sort();
        have.dedup();
        return Err(Error::config(format!(
            "the image service has no '{interface}' endpoint (it has: {})",
            have.join(", ")
        ))
        .hint("set interface (OS_INTERFACE) to one of those"));
    }
    let mut regions: Vec<&str> = on_interface
        .iter()
        .filter_map(|e| e.region_name())
        .collect();
    regions.sort();
    regions.dedup();
    let chosen = match region {
        // access/service_catalog.py _get_endpoint_region: region_id, else
        // the older region field.
        Some(r) => on_interface
            .iter()
            .find(|e| e.region_name() == Some(r))
            .ok_or_else(|| {
                Error::config(format!(
                    "the image service has no '{interface}' endpoint in region '{r}' (its regions: {})",
                    if regions.is_empty() { "none".to_string() } else { regions.join(", ") }
                ))
                .hint("set region_name (OS_REGION_NAME) to one of those")
            })?,
        None if regions.len() > 1 => {
            return Err(Error::config(format!(
                "the image service has endpoints in several regions: {}",
                regions.join(", ")
            ))
            .hint("choose one with region_name (OS_REGION_NAME)"))
        }
        None => on_interface[0],
    };
    image_api_base(&chosen.url)
}

/// A catalog URL as the image API v2 base: `https://ims.eu-de.otc.t-systems.com`
/// and `http://h:9292` get `/v2` (no version discovery request, as
/// otcextensions does for IMS), `.../v2` is kept, `.../v2/` loses its slash.
pub fn image_api_base(catalog_url: &str) -> Result<String> {
    let bad = |why: &str| Error::config(format!("the catalog's image URL '{catalog_url}' {why}"));
    let mut url =
        Url::parse(catalog_url.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("is not an http(s) URL"));
    }
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    match segments.last().map(String::as_str) {
        Some("v2") => {}
        Some(v) if v.starts_with("v2.") => {
            segments.pop();
            segments.push("v2".into());
        }
        Some("v1") | Some("v1.0") | Some("v1.1") => {
            return Err(bad("is the image API v1; ims-patch speaks v2")
                .hint("set image_endpoint_override to the v2 URL"))
        }
        _ => segments.push("v2".into()),
    }
    url.set_path(&format!("/{}", segments.join("/")));
    url.set_fragment(None);
    Ok(url.to_string())
}

/// The message of an identity (or image) service error body: Keystone's
/// `{"error":{"code","title","message"}}`, OTC IAM's
/// `{"error_code","error_msg"}`, `{"error":{"code":"IAM.xxxx","message"}}`,
/// and keystonemiddleware's `{"message","code","title"}`. A string code
/// (`IAM.0062`) is put in front. `None` when the body is none of those.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(clean)
            .filter(|s| !s.is_empty())
    };
    let string_code = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|c| !c.chars().next().is_some_and(|ch| ch.is_ascii_digit()))
            .map(str::to_string)
    };
    let with_code = |code: Option<String>, msg: String| match code {
        Some(code) => format!("{code}: {msg}"),
        None => msg,
    };
    if let Some(error) = obj.get("error") {
        if let Some(e) = error.as_object() {
            let msg = text(e.get("message")).or_else(|| text(e.get("title")))?;
            return Some(with_code(string_code(e.get("code")), msg));
        }
        if let Some(msg) = text(Some(error)) {
            return Some(msg);
        }
    }
    if let Some(msg) = text(obj.get("error_msg")) {
        return Some(with_code(string_code(obj.get("error_code")), msg));
    }
    text(obj.get("message")).or_else(|| text(obj.get("title")))
}

/// Collapses whitespace and the `<br />` keystonemiddleware puts in, and
/// bounds the length.
fn clean(s: &str) -> String {
    let joined = s
        .replace("<br />", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if joined.chars().count() > 300 {
        let cut: String = joined.chars().take(300).collect();
        format!("{cut}...")
    } else {
        joined
    }
}

/// The error for a failed login: 401/403 are auth errors (exit 4), 400 a
/// configuration error (exit 3), 404 a wrong auth_url (exit 3), 5xx a
/// server error. `used` is [`AuthConfig::describe_used`]: names and
/// origins, never secret values.
pub fn login_error(status: u16, body: &[u8], tokens_url: &Url, used: &[String]) -> Error {
    let said = error_message(body).map_or(String::new(), |m| format!(": {m}"));
    let settings = if used.is_empty() {
        None
    } else {
        Some(format!("settings used: {}", used.join(", ")))
    };
    let mut err = match status {
        401 | 403 => Error::new(
            Kind::Auth,
            format!("the identity service at '{tokens_url}' refused the login ({status}){said}"),
        )
        .hint("check the user name, password (or application credential), their domain and the project: a wrong value in any of them gives this same answer"),
        400 => Error::config(format!(
            "the identity service at '{tokens_url}' rejected the login request (400){said}"
        ))
        .hint("a user name needs user_domain_name or user_domain_id; a project name needs project_domain_name or project_domain_id"),
        404 | 405 => Error::config(format!(
            "'{tokens_url}' is not a Keystone v3 token API ({status}){said}"
        ))
        .hint("check auth_url: it is the identity URL, ending in /v3"),
        500..=599 => Error::new(
            Kind::Server,
            format!("the identity service at '{tokens_url}' failed ({status}){said}"),
        ),
        _ => Error::new(
            Kind::from_status(status),
            format!("the identity service at '{tokens_url}' answered {status}{said}"),
        ),
    };
    if let Some(s) = settings {
        err = err.hint(s);
    }
    err
}

/// A `DELETE /v3/auth/tokens` that revokes `token`, authenticated by
/// `caller` (the same token revokes itself).
#[derive(Debug, Clone)]
pub struct RevokeRequest {
    pub url: Url,
    /// `X-Auth-Token` and `X-Subject-Token`.
    pub headers: Vec<(&'static str, Secret)>,
}

pub fn revoke_request(auth_url: &str, caller: &Secret, token: &Secret) -> Result<RevokeRequest> {
    Ok(RevokeRequest {
        url: tokens_url(auth_url)?,
        headers: vec![
            ("X-Auth-Token", caller.clone()),
            ("X-Subject-Token", token.clone()),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clouds::Source;

    fn src(v: &str) -> Option<Sourced<String>> {
        Some(Sourced {
            value: v.into(),
            source: Source::Env("OS_X"),
        })
    }

    fn secret(v: &str) -> Option<Sourced<Secret>> {
        Some(Sourced {
            value: Secret::new(v),
            source: Source::Env("OS_PASSWORD"),
        })
    }

    fn password_config() -> AuthConfig {
        AuthConfig {
            auth_url: src("http://127.0.0.1:5000/v3/"),
            username: src("admin"),
            user_domain_name: src("Default"),
            password: secret("secret"),
            project_name: src("admin"),
            project_domain_name: src("Default"),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn password_project_by_name_is_keystoneauths_body() {
        let req = AuthRequest::from_config(&password_config()).unwrap();
        // keystone-behaviour.md, the request measured against Keystone 30.
        let expected: Value = serde_json::from_str(r#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"name":"Default"},"password":"secret"}}},
         "scope":{"project":{"name":"admin","domain":{"name":"Default"}}}}}"#).unwrap();
        assert_eq!(req.body(), expected);
        let redacted = req.redacted_body().to_string();
        assert!(!redacted.contains("secret\""), "{redacted}");
        assert!(
            redacted.contains("\"password\":\"<redacted>\""),
            "{redacted}"
        );
        assert_eq!(
            req.tokens_url().unwrap().as_str(),
            "http://127.0.0.1:5000/v3/auth/tokens"
        );
        assert!(!format!("{req:?}").contains("\"secret\""));
    }

    #[test]
    fn ids_win_over_names_and_scopes_follow_keystoneauth() {
        let mut c = password_config();
        c.user_id = src("u1");
        c.project_id = src("p1");
        let body = AuthRequest::from_config(&c).unwrap().body();
        assert_eq!(
            body,
            json!({"auth":{"identity":{"methods":["password"],"password":{"user":{"id":"u1","password":"secret"}}},"scope":{"project":{"id":"p1"}}}})
        );
        let mut c = password_config();
        c.user_domain_id = src("default");
        c.project_domain_id = src("default");
        let body = AuthRequest::from_config(&c).unwrap().body();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"],
            json!({"id":"default"})
        );
        assert_eq!(
            body["auth"]["scope"]["project"]["domain"],
            json!({"id":"default"})
        );
        // Domain scope.
        let mut c = password_config();
        c.project_name = None;
        c.domain_name = src("Default");
        assert_eq!(
            AuthRequest::from_config(&c).unwrap().body()["auth"]["scope"],
            json!({"domain":{"name":"Default"}})
        );
        c.project_id = src("p1");
        let err = AuthRequest::from_config(&c).unwrap_err();
        assert!(err.message.contains("both project 'p1'"), "{}", err.message);
        c.project_id = None;
        // Unscoped: no scope key at all.
        c.domain_name = None;
        let body = AuthRequest::from_config(&c).unwrap().body();
        assert!(body["auth"].get("scope").is_none(), "{body}");
        // A user name without a domain goes as is (Keystone answers 400).
        c.user_domain_name = None;
        let body = AuthRequest::from_config(&c).unwrap().body();
        assert_eq!(
            body["auth"]["identity"]["password"]["user"],
            json!({"name":"admin","password":"secret"})
        );
    }

    #[test]
    fn application_credentials_send_no_scope() {
        let c = AuthConfig {
            auth_type: src("v3applicationcredential"),
            auth_url: src("https://id/v3"),
            application_credential_id: src("ac1"),
            application_credential_secret: secret("acs"),
            project_name: src("ignored"),
            domain_name: src("also ignored"),
            ..AuthConfig::default()
        };
        let req = AuthRequest::from_config(&c).unwrap();
        assert_eq!(
            req.body(),
            json!({"auth":{"identity":{"methods":["application_credential"],"application_credential":{"secret":"acs","id":"ac1"}}}})
        );
        let c = AuthConfig {
            auth_url: src("https://id/v3"),
            application_credential_name: src("mine"),
            application_credential_secret: secret("acs"),
            username: src("demo"),
            user_domain_id: src("default"),
            ..AuthConfig::default()
        };
        let req = AuthRequest::from_config(&c).unwrap();
        assert_eq!(req.auth_type(), AuthType::ApplicationCredential);
        assert_eq!(
            req.body()["auth"]["identity"]["application_credential"],
            json!({"secret":"acs","name":"mine","user":{"name":"demo","domain":{"id":"default"}}})
        );
        let c = AuthConfig {
            username: None,
            ..c
        };
        let err = AuthRequest::from_config(&c).unwrap_err();
        assert!(
            err.message.contains("no application credential id"),
            "{}",
            err.message
        );
    }

    #[test]
    fn token_exchange() {
        let c = AuthConfig {
            auth_type: src("v3token"),
            auth_url: src("https://id"),
            token: secret("tok"),
            project_id: src("p1"),
            ..AuthConfig::default()
        };
        let req = AuthRequest::from_config(&c).unwrap();
        assert_eq!(
            req.body(),
            json!({"auth":{"identity":{"methods":["token"],"token":{"id":"tok"}},"scope":{"project":{"id":"p1"}}}})
        );
        assert_eq!(req.cache_identity(), None);
        assert_eq!(
            req.redacted_body()["auth"]["identity"]["token"]["id"],
            "<redacted>"
        );
    }

    #[test]
    fn auth_types() {
        let mut c = password_config();
        for (t, want) in [
            ("password", AuthType::Password),
            ("v3password", AuthType::Password),
            ("token", AuthType::Token),
            ("token_endpoint", AuthType::AdminToken),
        ] {
            c.auth_type = src(t);
            assert_eq!(AuthType::of(&c).unwrap(), want);
        }
        c.auth_type = src("v3oidcpassword");
        let err = AuthType::of(&c).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(
            err.message,
            "auth_type 'v3oidcpassword' (from OS_X) is not supported"
        );
        c.auth_type = src("admin_token");
        assert_eq!(AuthRequest::from_config(&c).unwrap_err().exit_code(), 3);
        let c = AuthConfig {
            password: None,
            token: secret("t"),
            ..password_config()
        };
        assert_eq!(AuthType::of(&c).unwrap(), AuthType::Token);
    }

    #[test]
    fn missing_settings_are_config_errors() {
        let c = AuthConfig {
            password: None,
            ..password_config()
        };
        let err = AuthRequest::from_config(&c).unwrap_err();
        assert_eq!(err.message, "no password for the login");
        assert_eq!(err.hints[0], "set OS_PASSWORD");
        let c = AuthConfig {
            cloud: Some("demo".into()),
            password: None,
            ..password_config()
        };
        let err = AuthRequest::from_config(&c).unwrap_err();
        assert_eq!(
            err.hints[0],
            "set password in cloud 'demo' (clouds.yaml or secure.yaml)"
        );
        let c = AuthConfig {
            auth_url: None,
            ..password_config()
        };
        assert_eq!(AuthRequest::from_config(&c).unwrap_err().exit_code(), 3);
        let c = AuthConfig {
            username: None,
            ..password_config()
        };
        assert_eq!(
            AuthRequest::from_config(&c).unwrap_err().message,
            "no user for the login"
        );
    }

    #[test]
    fn auth_url_spellings() {
        for u in [
            "http://h:5000",
            "http://h:5000/",
            "http://h:5000/v3",
            "http://h:5000/v3/",
            "http://h:5000//v3//",
        ] {
            assert_eq!(
                tokens_url(u).unwrap().as_str(),
                "http://h:5000/v3/auth/tokens",
                "{u}"
            );
        }
        assert_eq!(
            tokens_url("https://h/identity/v3").unwrap().as_str(),
            "https://h/identity/v3/auth/tokens"
        );
        assert_eq!(
            tokens_url("https://iam.eu-de.otc.t-systems.com/v3")
                .unwrap()
                .as_str(),
            "https://iam.eu-de.otc.t-systems.com/v3/auth/tokens"
        );
        // openstacksdk's otc-swiss.json bug: no scheme.
        assert!(tokens_url("iam-pub.eu-ch2.sc.otc.t-systems.com/v3").is_err());
        assert!(tokens_url("http://h:5000/v2.0").is_err());
    }

    #[test]
    fn cache_identity_has_no_secret_and_tells_logins_apart() {
        let a = AuthRequest::from_config(&password_config()).unwrap();
        let id = a.cache_identity().unwrap();
        assert!(!id.contains("secret"), "{id}");
        assert!(
            id.contains(r#"{"name":"admin","domain":{"name":"Default"}}"#),
            "{id}"
        );
        // Same login via another auth_url spelling and password: same identity.
        let mut c = password_config();
        c.auth_url = src("http://127.0.0.1:5000");
        c.password = secret("other");
        assert_eq!(
            AuthRequest::from_config(&c)
                .unwrap()
                .cache_identity()
                .unwrap(),
            id
        );
        c.project_name = src("demo");
        assert_ne!(
            AuthRequest::from_config(&c)
                .unwrap()
                .cache_identity()
                .unwrap(),
            id
        );
    }

    /// The demo token answer of keystone-behaviour.md (trimmed as there).
    const DEMO_TOKEN: &str = r#"{"token": {
  "methods": ["password"],
  "user": {"domain": {"id": "default", "name": "Default"}, "id": "55a5", "name": "admin", "password_expires_at": null},
  "audit_ids": ["GeTBvLOZTZ-mQQYBYqnDow"],
  "expires_at": "2026-11-26T19:14:06.000000Z",
  "issued_at":  "2026-11-26T18:14:06.000000Z",
  "project": {"domain": {"id": "default", "name": "Default"}, "id": "2a15", "name": "admin"},
  "is_domain": false,
  "roles": [{"id": "ca94", "name": "manager"}],
  "catalog": [
 {"type": "identity", "name": "keystone", "id": "37f2",
  "endpoints": [
   {"id": "577b", "interface": "public",   "region_id": "RegionOne", "region": "RegionOne", "url": "http://127.0.0.1:5000/v3/"},
   {"id": "0132", "interface": "internal", "region_id": "RegionOne", "region": "RegionOne", "url": "http://127.0.0.1:5000/v3/"},
   {"id": "4c96", "interface": "admin",    "region_id": "RegionOne", "region": "RegionOne", "url": "http://127.0.0.1:5000/v3/"}]},
 {"type": "image", "name": "glance", "id": "bf7b",
  "endpoints": [
   {"id": "3960", "interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "http://127.0.0.1:9292"},
   {"id": "6605", "interface": "public", "region_id": "RegionTwo", "region": "RegionTwo", "url": "http://127.0.0.1:9393"}]}
]}}"#;

    #[test]
    fn parses_keystones_token_answer() {
        let t = parse_token_response(Some("gAAAAABrCHvt"), DEMO_TOKEN.as_bytes()).unwrap();
        assert_eq!(t.token.expose(), "gAAAAABrCHvt");
        assert_eq!(t.expires_at_text, "2026-11-26T19:14:06.000000Z");
        assert_eq!(
            t.expires_at,
            humantime::parse_rfc3339("2026-11-26T19:14:06Z").unwrap()
        );
        assert_eq!(t.user.as_ref().unwrap().name.as_deref(), Some("admin"));
        let project = t.project.as_ref().unwrap();
        assert_eq!(project.id.as_deref(), Some("2a15"));
        assert_eq!(
            project.domain.as_ref().unwrap().name.as_deref(),
            Some("Default")
        );
        assert_eq!(t.catalog.len(), 2);
        assert!(parse_token_response(None, DEMO_TOKEN.as_bytes()).is_err());
        assert!(parse_token_response(Some("t"), b"{\"token\": {}}").is_err());
        assert!(parse_token_response(Some("t"), b"<html>").is_err());
        // Unscoped: no catalog.
        let t = parse_token_response(
            Some("t"),
            br#"{"token":{"expires_at":"2026-11-26T19:14:06Z","user":{"id":"u"}}}"#,
        )
        .unwrap();
        assert!(t.catalog.is_empty() && t.project.is_none());
        assert!(parse_time("2026-11-26T19:14:06.123+00:00").is_some());
    }

    #[test]
    fn selects_the_image_endpoint() {
        let t = parse_token_response(Some("t"), DEMO_TOKEN.as_bytes()).unwrap();
        let err = select_image_endpoint(&t.catalog, None, None).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert_eq!(
            err.message,
            "the image service has endpoints in several regions: RegionOne, RegionTwo"
        );
        assert_eq!(
            select_image_endpoint(&t.catalog, None, Some("RegionTwo")).unwrap(),
            "http://127.0.0.1:9393/v2"
        );
        assert_eq!(
            select_image_endpoint(&t.catalog, Some("publicURL"), Some("RegionOne")).unwrap(),
            "http://127.0.0.1:9292/v2"
        );
        let err = select_image_endpoint(&t.catalog, None, Some("RegionThree")).unwrap_err();
        assert!(
            err.message
                .contains("region 'RegionThree' (its regions: RegionOne, RegionTwo)"),
            "{}",
            err.message
        );
        let err = select_image_endpoint(&t.catalog, Some("internal"), None).unwrap_err();
        assert_eq!(
            err.message,
            "the image service has no 'internal' endpoint (it has: public)"
        );
        let no_image: Vec<Service> = t
            .catalog
            .iter()
            .filter(|s| s.service_type != "image")
            .cloned()
            .collect();
        let err = select_image_endpoint(&no_image, None, None).unwrap_err();
        assert_eq!(
            err.message,
            "the token's catalog has no image service; it has: identity (regions: RegionOne)"
        );
        assert!(select_image_endpoint(&[], None, None)
            .unwrap_err()
            .message
            .contains("empty"));
    }

    #[test]
    fn otc_catalog_gets_v2() {
        let catalog: Vec<Service> = serde_json::from_value(json!([
            {"type":"image","name":"glance","endpoints":[{"interface":"public","region":"eu-de","region_id":"eu-de","url":"https://ims.eu-de.otc.t-systems.com","id":"x"}]}
        ])).unwrap();
        assert_eq!(
            select_image_endpoint(&catalog, None, None).unwrap(),
            "https://ims.eu-de.otc.t-systems.com/v2"
        );
    }

    #[test]
    fn image_urls_are_versioned() {
        for (from, to) in [
            (
                "https://ims.eu-de.otc.t-systems.com",
                "https://ims.eu-de.otc.t-systems.com/v2",
            ),
            ("https://host:9292", "https://host:9292/v2"),
            ("https://host:9292/", "https://host:9292/v2"),
            ("https://host/image/v2", "https://host/image/v2"),
            ("https://host/image/v2/", "https://host/image/v2"),
            ("https://host/v2.1", "https://host/v2"),
        ] {
            assert_eq!(image_api_base(from).unwrap(), to, "{from}");
        }
        assert!(image_api_base("https://host/v1").is_err());
        assert!(image_api_base("ftp://host").is_err());
    }

    #[test]
    fn error_bodies() {
        // keystone-behaviour.md: wrong password.
        let keystone = br#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;
        assert_eq!(
            error_message(keystone).unwrap(),
            "The request you have made requires authentication."
        );
        let otc = br#"{"error_code":"IAM.0062","error_msg":"Incorrect password."}"#;
        assert_eq!(error_message(otc).unwrap(), "IAM.0062: Incorrect password.");
        let variant = br#"{"error":{"code":"IAM.0066","message":"The token has expired."}}"#;
        assert_eq!(
            error_message(variant).unwrap(),
            "IAM.0066: The token has expired."
        );
        let middleware = br#"{"message": "This server could not verify that you are authorized to access the document you requested.<br /><br />\nAuthentication required", "code": "401 Unauthorized", "title": "Unauthorized"}"#;
        assert_eq!(
            error_message(middleware).unwrap(),
            "This server could not verify that you are authorized to access the document you requested. Authentication required"
        );
        assert_eq!(error_message(b"<html>401</html>"), None);
        assert_eq!(error_message(b"[]"), None);
        let long = format!(
            r#"{{"error":{{"code":400,"message":"{}"}}}}"#,
            "x".repeat(1000)
        );
        assert!(error_message(long.as_bytes()).unwrap().len() < 310);
    }

    #[test]
    fn login_errors_are_classified() {
        let url = tokens_url("http://127.0.0.1:5000/v3").unwrap();
        let c = password_config();
        let used = c.describe_used();
        let body = br#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#;
        let err = login_error(401, body, &url, &used);
        assert_eq!(err.exit_code(), 4);
        assert_eq!(
            err.message,
            "the identity service at 'http://127.0.0.1:5000/v3/auth/tokens' refused the login (401): The request you have made requires authentication."
        );
        let hints = err.hints.join("\n");
        assert!(hints.contains("username 'admin' (from OS_X)"), "{hints}");
        assert!(hints.contains("password (from OS_PASSWORD)"), "{hints}");
        assert!(!hints.contains("secret'"), "{hints}");
        let body = br#"{"error":{"code":400,"message":"Expecting to find domain in user. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.","title":"Bad Request"}}"#;
        let err = login_error(400, body, &url, &used);
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message
                .contains("(400): Expecting to find domain in user."),
            "{}",
            err.message
        );
        assert_eq!(login_error(404, b"", &url, &[]).exit_code(), 3);
        assert_eq!(login_error(503, b"", &url, &[]).exit_code(), 8);
        assert_eq!(login_error(429, b"", &url, &[]).exit_code(), 7);
    }

    #[test]
    fn revoke_builds_both_headers() {
        let r = revoke_request(
            "http://127.0.0.1:5000/v3/",
            &Secret::new("a"),
            &Secret::new("b"),
        )
        .unwrap();
        assert_eq!(r.url.as_str(), "http://127.0.0.1:5000/v3/auth/tokens");
        assert_eq!(r.headers[0].0, "X-Auth-Token");
        assert_eq!(r.headers[0].1.expose(), "a");
        assert_eq!(r.headers[1].0, "X-Subject-Token");
        assert_eq!(r.headers[1].1.expose(), "b");
    }

    proptest::proptest! {
        #[test]
        fn error_message_never_panics_and_is_bounded(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Some(m) = error_message(&body) {
                proptest::prop_assert!(m.chars().count() <= 330);
            }
        }

        #[test]
        fn error_message_reads_any_keystone_message(msg in "[ -~]{1,200}", code in 400u16..600) {
            let body = json!({"error": {"code": code, "title": "T", "message": msg}}).to_string();
            let got = error_message(body.as_bytes()).unwrap_or_default();
            let want = msg.replace("<br />", " ").split_whitespace().collect::<Vec<_>>().join(" ");
            if want.is_empty() {
                proptest::prop_assert_eq!(got, "T");
            } else {
                proptest::prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn image_base_ends_in_v2_and_is_stable(
            host in "[a-z][a-z0-9]{0,10}(\\.[a-z]{2,5})?",
            port in proptest::option::of(1u16..),
            path in proptest::collection::vec("[a-z0-9_-]{1,8}", 0..4),
            slash in proptest::bool::ANY,
        ) {
            let port = port.map_or(String::new(), |p| format!(":{p}"));
            let url = format!("https://{host}{port}/{}{}", path.join("/"), if slash { "/" } else { "" });
            if let Ok(base) = image_api_base(&url) {
                proptest::prop_assert!(base.ends_with("/v2"), "{}", base);
                proptest::prop_assert_eq!(image_api_base(&base).unwrap(), base.clone());
                proptest::prop_assert_eq!(image_api_base(&format!("{base}/")).unwrap(), base);
            } else {
                proptest::prop_assert!(path.last().is_some_and(|l| matches!(l.as_str(), "v1" | "v1.0" | "v1.1")));
            }
        }

        #[test]
        fn tokens_url_always_ends_in_v3_auth_tokens(path in proptest::collection::vec("[a-z0-9]{1,6}", 0..4), v3 in proptest::bool::ANY, slash in proptest::bool::ANY) {
            let mut url = format!("https://id.example/{}", path.join("/"));
            if v3 { url = format!("{}/v3", url.trim_end_matches('/')); }
            if slash { url.push('/'); }
            match tokens_url(&url) {
                Ok(t) => proptest::prop_assert!(t.as_str().ends_with("/v3/auth/tokens"), "{}", t),
                Err(_) => proptest::prop_assert!(!v3 && path.last().is_some_and(|l| l.starts_with("v2"))),
            }
        }

        #[test]
        fn secrets_appear_only_in_the_wire_body(pw in "PW-[ -~]{1,40}", method in 0u8..3) {
            let mut c = password_config();
            match method {
                0 => c.password = secret(&pw),
                1 => { c.auth_type = src("v3applicationcredential"); c.application_credential_id = src("ac"); c.application_credential_secret = secret(&pw); }
                _ => { c.auth_type = src("v3token"); c.token = secret(&pw); }
            }
            let req = AuthRequest::from_config(&c).unwrap();
            proptest::prop_assert!(req.body().to_string().contains(&serde_json::to_string(&pw).unwrap()[1..]));
            proptest::prop_assert!(!req.redacted_body().to_string().contains(&pw));
            let debug = format!("{:?}", req);
            proptest::prop_assert!(!debug.contains(&pw));
            if let Some(id) = req.cache_identity() {
                proptest::prop_assert!(!id.contains(&pw));
            }
        }
    }
}
