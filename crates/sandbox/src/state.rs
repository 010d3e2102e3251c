//! The sandbox's mutable state (images, settings) and the `--state` file: loading it and writing it atomically.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context as _};
use serde::{Deserialize, Serialize};

use super::image::{self, Image};

/// Everything `handle` reads and changes. Guarded by one mutex in the
/// server, so each request is applied atomically.
#[derive(Debug, Clone)]
pub struct State {
    /// Images in creation order.
    pub images: Vec<Image>,
    /// `Some(token)`: every request must carry exactly this `X-Auth-Token`.
    pub token: Option<String>,
    /// `http://HOST:PORT` of the sandbox, used when a request has no `Host`.
    pub base_url: String,
    /// Set by every change; the server persists and clears it.
    pub dirty: bool,
    /// Fixed clock for tests.
    pub fixed_now: Option<String>,
    /// The Keystone v3 emulation (users, issued tokens, `--require-auth`).
    pub keystone: super::keystone::Keystone,
    /// `Some`: every request must be signed with this AK/SK pair.
    pub aksk: Option<crate::aksk::Gateway>,
}

impl State {
    pub fn new(images: Vec<Image>, base_url: &str, token: Option<String>) -> State {
        State {
            images,
            token,
            base_url: base_url.to_string(),
            dirty: false,
            fixed_now: None,
            keystone: Default::default(),
            aksk: None,
        }
    }

    /// A state holding the seed images.
    #[cfg(test)]
    pub fn seeded(base_url: &str) -> State {
        State::new(image::seed_images(), base_url, None)
    }

    /// Current time in Glance's format.
    pub fn now(&self) -> String {
        self.fixed_now
            .clone()
            .unwrap_or_else(|| image::format_time(SystemTime::now()))
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.images.iter().position(|i| i.id == id)
    }

    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.id == id)
    }
}

const STATE_FORMAT: &str = "ims-patch-sandbox-state/1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    images: Vec<Image>,
}

/// Reads a state file. `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> anyhow::Result<Option<Vec<Image>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(anyhow!(
                "cannot read state file \"{}\": {}; check its permissions or pass another file with --state",
                path.display(),
                e.to_string().to_lowercase()
            ))
        }
    };
    let corrupt = |why: String| {
        anyhow!(
            "state file \"{}\" is not a sandbox state file ({why}); it was left untouched: fix it, move it away to start again from the seed images, or pass another file with --state",
            path.display()
        )
    };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if file.format != STATE_FORMAT {
        return Err(corrupt(format!(
            "format is \"{}\", expected \"{STATE_FORMAT}\"",
            file.format
        )));
    }
    for (i, img) in file.images.iter().enumerate() {
        if img.id.is_empty() {
            return Err(corrupt(format!("image #{} has an empty id", i + 1)));
        }
        if file.images[..i].iter().any(|o| o.id == img.id) {
            return Err(corrupt(format!("image id \"{}\" appears twice", img.id)));
        }
    }
    Ok(Some(file.images))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes the images atomically: a temporary file in the same directory,
/// fsync, rename over the target, then fsync the directory.
pub fn save(path: &Path, images: &[Image]) -> anyhow::Result<()> {
    let file = StateFile {
        format: STATE_FORMAT.to_string(),
        images: images.to_vec(),
    };
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| {
            format!(
                "cannot write state file \"{}\"; check that its directory exists and is writable",
                path.display()
            )
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where the image data of a state file lives: `STATE.data/`, one file per
/// image (see `data::Store`).
pub fn data_dir(state_path: &Path) -> PathBuf {
    let mut name = state_path.as_os_str().to_os_string();
    name.push(".data");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ims-sandbox-test-{name}-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn save_then_load_round_trips() {
        let dir = scratch_dir("roundtrip");
        let path = dir.join("state.json");
        assert!(load(&path).unwrap().is_none());
        let images = image::seed_images();
        save(&path, &images).unwrap();
        assert_eq!(load(&path).unwrap().unwrap(), images);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = scratch_dir("corrupt");
        let path = dir.join("state.json");
        fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
        assert!(err.contains("not a sandbox state file"), "{err}");
        // Untouched.
        assert_eq!(fs::read_to_string(&path).unwrap(), "{not json");
        fs::write(&path, r#"{"format": "other", "images": []}"#).unwrap();
        assert!(load(&path).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
