//! Where a setting's value came from (flag, variable, profile, clouds.yaml
//! cloud, vendor profile, default) and a value tagged with it: one notion
//! shared by the settings table and the clouds.yaml/`OS_*` reader, so every
//! error can name the source of the value it is about.

use std::fmt;
use std::path::PathBuf;

use crate::error::Error;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    Profile {
        profile: String,
        file: PathBuf,
    },
    /// A cloud of a `clouds.yaml` (or `secure.yaml`) file.
    Cloud {
        cloud: String,
        file: PathBuf,
    },
    /// The built-in vendor profile (`profile: otc`) that cloud `cloud` of
    /// `file` names.
    Vendor {
        profile: String,
        cloud: String,
        file: PathBuf,
    },
    /// The service catalog of a login's token.
    Catalog,
    Default,
}

impl Source {
    /// The error for a bad value from this source: a flag's value is a usage
    /// error (exit 2, as clap's own checks), any other a configuration error.
    pub fn bad_value(&self, message: String) -> Error {
        match self {
            Source::Flag(_) => Error::usage(message),
            _ => Error::config(message),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "from {flag}"),
            Source::Env(var) => write!(f, "from {var}"),
            Source::Profile { profile, file } => {
                write!(f, "from profile '{profile}' in {}", file.display())
            }
            Source::Cloud { cloud, file } => {
                write!(f, "from cloud '{cloud}' in {}", file.display())
            }
            Source::Vendor {
                profile,
                cloud,
                file,
            } => write!(
                f,
                "from profile '{profile}' of cloud '{cloud}' in {}",
                file.display()
            ),
            Source::Catalog => f.write_str("from the service catalog"),
            Source::Default => f.write_str("by default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    /// Another value with the same source.
    pub fn with<U>(&self, value: U) -> Sourced<U> {
        Sourced {
            value,
            source: self.source.clone(),
        }
    }
}
