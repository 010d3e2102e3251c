//! The sandbox's identities for its Keystone v3 emulation: users with their domain, password, projects, roles and application credentials; the default `demo` user and the `--users` file (TOML, or JSON when the name ends in `.json`).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use anyhow::anyhow;
use serde::Deserialize;

use super::image::DEFAULT_PROJECT;

/// A domain (`Default` has the id `default`, as in Keystone).
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    pub id: String,
    pub name: String,
}

/// A project and the roles its user holds on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain: Domain,
    pub roles: Vec<String>,
}

/// An application credential: always scoped to one project of its user.
/// (Its `Debug` leaves out the secret.)
#[derive(Clone, PartialEq)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub secret: String,
    /// Id of the project (one of the user's).
    pub project_id: String,
    pub roles: Vec<String>,
}

/// (Its `Debug` leaves out the password.)
#[derive(Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub password: String,
    pub domain: Domain,
    /// Id of the project an unscoped login is scoped to.
    pub default_project_id: Option<String>,
    pub projects: Vec<Project>,
    pub app_creds: Vec<AppCred>,
}

impl fmt::Debug for AppCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCred")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("project_id", &self.project_id)
            .field("roles", &self.roles)
            .finish()
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("default_project_id", &self.default_project_id)
            .field("projects", &self.projects)
            .field("app_creds", &self.app_creds)
            .finish()
    }
}

impl User {
    pub fn project(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }
}

/// Every identity the sandbox knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    pub users: Vec<User>,
}

/// The default user's application credential (documented in the README's
/// quick start; the sandbox is for tests and has no real secrets).
pub const DEMO_APP_CRED_ID: &str = "a9f1c2d3e4b5a6978812345678abcdef";
pub const DEMO_APP_CRED_NAME: &str = "demo-app-cred";
pub const DEMO_APP_CRED_SECRET: &str = "demo-app-cred-secret";
pub const DEMO_USER_ID: &str = "9d1a0e6c2b8f4a7e8c3d5f1b2a4c6e80";
/// The demo project owns the seed images, so a demo token can edit them.
pub const DEMO_PROJECT_ID: &str = DEFAULT_PROJECT;

/// Roles a user gets on a project when the file names none.
const DEFAULT_ROLES: [&str; 2] = ["member", "reader"];

impl Default for Directory {
    /// One user `demo` / `demopass` in domain `Default`, role member and
    /// reader on project `demo`, with one application credential.
    fn default() -> Directory {
        let domain = default_domain();
        let roles: Vec<String> = DEFAULT_ROLES.iter().map(|r| r.to_string()).collect();
        Directory {
            users: vec![User {
                id: DEMO_USER_ID.into(),
                name: "demo".into(),
                password: "demopass".into(),
                domain: domain.clone(),
                default_project_id: Some(DEMO_PROJECT_ID.into()),
                projects: vec![Project {
                    id: DEMO_PROJECT_ID.into(),
                    name: "demo".into(),
                    domain,
                    roles: roles.clone(),
                }],
                app_creds: vec![AppCred {
                    id: DEMO_APP_CRED_ID.into(),
                    name: DEMO_APP_CRED_NAME.into(),
                    secret: DEMO_APP_CRED_SECRET.into(),
                    project_id: DEMO_PROJECT_ID.into(),
                    roles,
                }],
            }],
        }
    }
}

fn default_domain() -> Domain {
    Domain {
        id: "default".into(),
        name: "Default".into(),
    }
}

/// A stable 32-hex-digit id made from a kind and a name, so a users file
/// without ids gives the same ids on every start.
pub fn derived_id(kind: &str, name: &str) -> String {
    let ns = uuid::Uuid::NAMESPACE_OID;
    uuid::Uuid::new_v5(&ns, format!("ims-patch-sandbox/{kind}/{name}").as_bytes())
        .simple()
        .to_string()
}

fn domain_named(name: &str, id: Option<String>) -> Domain {
    let id = id.unwrap_or_else(|| {
        if name == "Default" {
            "default".into()
        } else {
            derived_id("domain", name)
        }
    });
    Domain {
        id,
        name: name.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    users: Vec<FileUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    id: Option<String>,
    password: String,
    domain: Option<String>,
    domain_id: Option<String>,
    /// Name or id of one of `projects`; default: the first one.
    default_project: Option<String>,
    #[serde(default)]
    projects: Vec<FileProject>,
    #[serde(default)]
    application_credentials: Vec<FileAppCred>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProject {
    name: String,
    id: Option<String>,
    domain: Option<String>,
    domain_id: Option<String>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAppCred {
    name: String,
    id: Option<String>,
    secret: String,
    /// Name or id of one of the user's projects; default: the default project.
    project: Option<String>,
    /// Default: the user's roles on that project.
    roles: Option<Vec<String>>,
}

/// The example shown in errors about the users file.
const EXAMPLE: &str = "[[users]]\nname = \"demo\"\npassword = \"demopass\"\ndomain = \"Default\"\n[[users.projects]]\nname = \"demo\"\nroles = [\"member\", \"reader\"]\n[[users.application_credentials]]\nname = \"ci\"\nsecret = \"...\"";

/// Reads a users file: JSON when its name ends in `.json`, TOML otherwise.
pub fn load(path: &Path) -> anyhow::Result<Directory> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "cannot read users file \"{}\": {}; check the path given to --users",
            path.display(),
            e.to_string().to_lowercase()
        )
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse(&text, is_json).map_err(|why| {
        anyhow!(
            "users file \"{}\" is not valid: {why}\nhint: a users file looks like this ({}):\n{EXAMPLE}",
            path.display(),
            if is_json { "as TOML; the JSON form has the same keys" } else { "TOML" }
        )
    })
}

/// Parses and checks the text of a users file (the error says what is wrong,
/// without the file name).
pub fn parse(text: &str, is_json: bool) -> Result<Directory, String> {
    let doc: FileDoc = if is_json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        // The message and line only: toml's own text quotes the source line,
        // which may hold a password.
        toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => format!(
                "line {}: {}",
                text[..span.start.min(text.len())].matches('\n').count() + 1,
                e.message()
            ),
            None => e.message().to_string(),
        })?
    };
    let mut users = Vec::new();
    for u in doc.users {
        users.push(build_user(u)?);
    }
    let dir = Directory { users };
    check(&dir)?;
    Ok(dir)
}

fn build_user(u: FileUser) -> Result<User, String> {
    let domain = domain_named(u.domain.as_deref().unwrap_or("Default"), u.domain_id);
    let id =
        u.id.unwrap_or_else(|| derived_id("user", &format!("{}/{}", domain.id, u.name)));
    let mut projects = Vec::new();
    for p in u.projects {
        let pdomain = match p.domain {
            Some(name) => domain_named(&name, p.domain_id),
            None if p.domain_id.is_some() => domain_named(&domain.name, p.domain_id),
            None => domain.clone(),
        };
        let pid =
            p.id.unwrap_or_else(|| derived_id("project", &format!("{}/{}", pdomain.id, p.name)));
        let roles = p
            .roles
            .unwrap_or_else(|| DEFAULT_ROLES.iter().map(|r| r.to_string()).collect());
        projects.push(Project {
            id: pid,
            name: p.name,
            domain: pdomain,
            roles,
        });
    }
    let find = |key: &str| {
        projects
            .iter()
            .find(|p| p.id == key)
            .or_else(|| projects.iter().find(|p| p.name == key))
            .map(|p| p.id.clone())
    };
    let default_project_id = match &u.default_project {
        Some(key) => Some(find(key).ok_or_else(|| {
            format!(
                "user \"{}\": default_project \"{key}\" is not one of its projects",
                u.name
            )
        })?),
        None => projects.first().map(|p| p.id.clone()),
    };
    let mut app_creds = Vec::new();
    for a in u.application_credentials {
        let project_id = match &a.project {
            Some(key) => find(key).ok_or_else(|| {
                format!(
                    "user \"{}\": application credential \"{}\" names project \"{key}\", which is not one of the user's projects",
                    u.name, a.name
                )
            })?,
            None => default_project_id.clone().ok_or_else(|| {
                format!(
                    "user \"{}\": application credential \"{}\" needs a project, and the user has none",
                    u.name, a.name
                )
            })?,
        };
        let roles = match a.roles {
            Some(r) => r,
            None => projects
                .iter()
                .find(|p| p.id == project_id)
                .map(|p| p.roles.clone())
                .unwrap_or_default(),
        };
        let acid = a
            .id
            .unwrap_or_else(|| derived_id("application_credential", &format!("{id}/{}", a.name)));
        app_creds.push(AppCred {
            id: acid,
            name: a.name,
            secret: a.secret,
            project_id,
            roles,
        });
    }
    Ok(User {
        id,
        name: u.name,
        password: u.password,
        domain,
        default_project_id,
        projects,
        app_creds,
    })
}

/// Ids and names must be unambiguous, as in Keystone.
fn check(dir: &Directory) -> Result<(), String> {
    if dir.users.is_empty() {
        return Err("it lists no users".into());
    }
    let mut user_ids = HashSet::new();
    let mut user_names = HashSet::new();
    let mut cred_ids = HashSet::new();
    for u in &dir.users {
        if u.name.is_empty() || u.id.is_empty() {
            return Err("a user has an empty name or id".into());
        }
        if !user_ids.insert(u.id.as_str()) {
            return Err(format!("user id \"{}\" appears twice", u.id));
        }
        if !user_names.insert((u.domain.id.as_str(), u.name.as_str())) {
            return Err(format!(
                "user \"{}\" appears twice in domain \"{}\"",
                u.name, u.domain.name
            ));
        }
        let mut cred_names = HashSet::new();
        for a in &u.app_creds {
            if !cred_ids.insert(a.id.as_str()) {
                return Err(format!(
                    "application credential id \"{}\" appears twice",
                    a.id
                ));
            }
            if !cred_names.insert(a.name.as_str()) {
                return Err(format!(
                    "user \"{}\" has two application credentials named \"{}\"",
                    u.name, a.name
                ));
            }
        }
    }
    // One project id is one project, whoever lists it.
    let all: Vec<&Project> = dir.users.iter().flat_map(|u| &u.projects).collect();
    for (i, p) in all.iter().enumerate() {
        for q in &all[..i] {
            let same_id = p.id == q.id;
            let same_name = p.name == q.name && p.domain.id == q.domain.id;
            if same_id != same_name || (same_id && p.domain != q.domain) {
                return Err(format!(
                    "project \"{}\" (id \"{}\") and project \"{}\" (id \"{}\") clash: one id must be one name in one domain",
                    p.name, p.id, q.name, q.id
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_directory_is_the_demo_user() {
        let d = Directory::default();
        assert_eq!(d.users.len(), 1);
        let u = &d.users[0];
        assert_eq!((u.name.as_str(), u.password.as_str()), ("demo", "demopass"));
        assert_eq!(u.domain, default_domain());
        assert_eq!(u.projects[0].name, "demo");
        assert_eq!(u.projects[0].id, DEFAULT_PROJECT);
        assert_eq!(u.default_project_id.as_deref(), Some(DEFAULT_PROJECT));
        assert_eq!(u.app_creds[0].project_id, DEFAULT_PROJECT);
        assert_eq!(u.app_creds[0].roles, ["member", "reader"]);
        check(&d).unwrap();
    }

    #[test]
    fn toml_file_with_defaults_filled_in() {
        let text = r#"
[[users]]
name = "alice"
password = "pw"
domain = "Acme"
default_project = "beta"
[[users.projects]]
name = "alpha"
roles = ["admin"]
[[users.projects]]
name = "beta"
id = "b0"
[[users.application_credentials]]
name = "ci"
secret = "s"
project = "alpha"
"#;
        let d = parse(text, false).unwrap();
        let u = &d.users[0];
        assert_eq!(u.domain.name, "Acme");
        assert_eq!(u.domain.id, derived_id("domain", "Acme"));
        assert_eq!(u.id, derived_id("user", &format!("{}/alice", u.domain.id)));
        assert_eq!(u.id.len(), 32);
        assert_eq!(u.default_project_id.as_deref(), Some("b0"));
        assert_eq!(u.projects[1].roles, ["member", "reader"]);
        assert_eq!(u.projects[0].domain.name, "Acme");
        assert_eq!(u.app_creds[0].project_id, u.projects[0].id);
        assert_eq!(u.app_creds[0].roles, ["admin"]);
        // Same text, same ids.
        assert_eq!(parse(text, false).unwrap(), d);
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let text = format!("{:?}", Directory::default());
        assert!(!text.contains("demopass"), "{text}");
        assert!(!text.contains(DEMO_APP_CRED_SECRET), "{text}");
        assert!(text.contains("demo-app-cred"), "{text}");
    }

    #[test]
    fn json_file() {
        let text = r#"{"users": [{"name": "bob", "id": "u1", "password": "p",
            "projects": [{"name": "p1", "id": "p1id"}],
            "application_credentials": [{"name": "a", "id": "a1", "secret": "s"}]}]}"#;
        let d = parse(text, true).unwrap();
        assert_eq!(d.users[0].domain.id, "default");
        assert_eq!(d.users[0].app_creds[0].project_id, "p1id");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |t: &str| parse(t, false).unwrap_err();
        assert!(err("users = []").contains("no users"));
        assert!(err("[[users]]\nname = \"a\"\n").contains("password"));
        assert!(err("[[users]]\nname = \"a\"\npassword = \"p\"\ncolour = 1\n").contains("colour"));
        let e = err("[[users]]\nname = \"a\"\npassword = \"p\"\ndefault_project = \"x\"\n");
        assert!(e.contains("default_project \"x\""), "{e}");
        let e = err("[[users]]\nname = \"a\"\npassword = \"p\"\n[[users.application_credentials]]\nname = \"c\"\nsecret = \"s\"\n");
        assert!(e.contains("needs a project"), "{e}");
        let e = err("[[users]]\nname = \"a\"\npassword = \"p\"\n[[users]]\nname = \"a\"\npassword = \"q\"\n");
        assert!(e.contains("appears twice"), "{e}");
        let e = err("[[users]]\nname = \"a\"\npassword = \"p\"\n[[users.projects]]\nname = \"x\"\nid = \"1\"\n[[users]]\nname = \"b\"\npassword = \"p\"\n[[users.projects]]\nname = \"y\"\nid = \"1\"\n");
        assert!(e.contains("clash"), "{e}");
        // The same project listed by two users is fine.
        parse("[[users]]\nname = \"a\"\npassword = \"p\"\n[[users.projects]]\nname = \"x\"\n[[users]]\nname = \"b\"\npassword = \"p\"\n[[users.projects]]\nname = \"x\"\n", false).unwrap();
    }

    #[test]
    fn the_server_starts_with_the_users_file_and_settings() {
        let dir = std::env::temp_dir().join(format!("ims-users-srv-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.json");
        std::fs::write(
            &path,
            r#"{"users": [{"name": "zed", "password": "p", "projects": [{"name": "z"}]}]}"#,
        )
        .unwrap();
        let opts = crate::Options {
            port: 0,
            users: Some(path.clone()),
            token_ttl: std::time::Duration::from_secs(42),
            require_auth: true,
            ..crate::Options::default()
        };
        let running = crate::server::start(&opts).unwrap();
        let state = running.shared.state.lock().unwrap();
        assert_eq!(state.keystone.directory.users[0].name, "zed");
        assert_eq!(state.keystone.ttl.as_secs(), 42);
        assert!(state.keystone.require_auth);
        drop(state);
        std::fs::write(&path, "{").unwrap();
        let err = crate::server::start(&opts).err().unwrap().to_string();
        assert!(err.contains("users.json"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn load_names_the_file_and_never_shows_a_password() {
        let dir = std::env::temp_dir().join(format!("ims-users-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users.toml");
        std::fs::write(
            &path,
            "[[users]]\nname = \"a\"\npassword = \"hunter2\"\nbad = 1\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("users.toml"), "{e}");
        assert!(e.contains("hint:"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = load(&dir.join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("cannot read users file"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
