//! The command line, as clap derive definitions only: this help text is the
//! single source for `--help`, the man pages and the shell completions.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Arg, ArgAction, ArgMatches, Args, Parser, Subcommand};

pub use crate::output::OutputFormat;
use crate::settings::table::{Parse, Setting, SETTINGS};

const ABOUT: &str =
    "Edit image metadata on Open Telekom Cloud IMS and OpenStack Glance with one PATCH request";

const LONG_ABOUT: &str = "\
Edit image metadata on Open Telekom Cloud IMS and any OpenStack Glance \
(Images API v2) with PATCH /v2/images/{image_id}.

An edit is one HTTP request: the 200 response is the whole image, which is \
printed as a table or, with -o json, exactly as the server returned it. \
IMAGE is an image ID, or a name that is looked up first.";

const EXAMPLES: &str = "\
Examples:
  ims-patch rename 33ad552d-1149-471c-8190-ff6776174a00 ims_test01
  ims-patch describe 33ad552d-1149-471c-8190-ff6776174a00 'Ubuntu 22.04 with CUDA'
  ims-patch set-attr ims_test __os_bit=64 min_ram:=2048 protected=true
  ims-patch unset-attr --ignore-missing ims_test __support_kvm
  ims-patch show ims_test -o json --field name --field __os_version
  ims-patch --dry-run rename ims_test ims_test01";

const CONFIGURATION_HEAD: &str = "\
Configuration:
  Every option can also come from a profile in the config file, TOML at \
<user config dir>/ims-patch/config.toml (on Linux ~/.config/ims-patch/config.toml):

    default_profile = \"otc\"

    [profiles.otc]
    endpoint = \"https://ims.eu-de.otc.t-systems.com\"
    token_command = \"my-token-issuer --project eu-de\"

  Profile keys: {keys}. Precedence: flag, then environment variable, then \
profile, then default.";

/// The long help after the options: examples, configuration, environment
/// and exit codes, also the extra sections of the man page.
pub fn after_long_help() -> String {
    let keys = crate::settings::table::profile_keys().join(", ");
    [
        EXAMPLES.to_string(),
        CONFIGURATION_HEAD.replace("{keys}", &keys),
        crate::settings::table::environment_help(),
        crate::error::EXIT_CODES_HELP.to_string(),
    ]
    .join("\n\n")
}

#[derive(Debug, Parser)]
#[command(
    name = "ims-patch",
    bin_name = "ims-patch",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = after_long_help(),
    after_help = "Run 'ims-patch --help' for examples, configuration, environment and exit codes.",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The flag-only client options (the table's flags are the others), by
/// argument id, with their flag.
const FLAG_ONLY: &[(&str, &str)] = &[
    ("dry_run", "--dry-run"),
    ("verbose", "--verbose"),
    ("fields", "--field"),
    ("quiet", "--quiet"),
];

/// Every client option, by argument id, with its flag: the table's flags
/// and the flag-only ones. `sandbox` and `generate` refuse them when typed
/// (the sandbox takes `--token`).
pub fn client_args() -> Vec<(&'static str, &'static str)> {
    SETTINGS
        .iter()
        .filter_map(|s| s.flag.map(|(flag, _)| (s.name, flag)))
        .chain(FLAG_ONLY.iter().copied())
        .collect()
}

/// The flags of the settings table, as global arguments made from its rows
/// (id = setting name). Their values are read from the matches, with their
/// source, by `settings::env::flags`; this type holds nothing.
#[derive(Debug, Clone, Default)]
pub struct TableArgs;

fn table_arg(s: &Setting) -> Arg {
    let (flag, value_name) = s.flag.expect("only rows with a flag");
    let mut arg = Arg::new(s.name)
        .long(flag.trim_start_matches("--"))
        .global(true)
        .help(s.flag_help())
        .help_heading(s.heading);
    if let Some(letter) = s.short {
        arg = arg.short(letter);
    }
    let Some(value_name) = value_name else {
        return arg.action(ArgAction::SetTrue);
    };
    arg = arg.value_name(value_name).action(ArgAction::Set);
    match s.parse {
        Parse::Path => arg
            .value_parser(clap::value_parser!(PathBuf))
            .value_hint(clap::ValueHint::FilePath),
        Parse::Seconds { .. } => arg.allow_negative_numbers(true),
        Parse::Choice(words) => arg.value_parser(PossibleValuesParser::new(
            words
                .iter()
                .map(|(w, help)| PossibleValue::new(*w).help(*help)),
        )),
        _ if s.name == "profile" => arg.add(clap_complete::ArgValueCandidates::new(
            crate::settings::file::profile_candidates,
        )),
        _ => arg,
    }
}

impl clap::FromArgMatches for TableArgs {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(TableArgs)
    }
    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for TableArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SETTINGS
            .iter()
            .filter(|s| s.flag.is_some())
            .fold(cmd, |cmd, s| cmd.arg(table_arg(s)))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Options of the client commands; each may come before or after the
/// command. The settings table's flags come first, made from its rows.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    #[command(flatten)]
    pub table: TableArgs,

    /// Print the PATCH instead of sending it (reads it needs first, such as a name lookup, still happen)
    #[arg(long, global = true, help_heading = "Request")]
    pub dry_run: bool,

    /// Print each request and response status line on stderr (credentials redacted)
    #[arg(short, long, global = true, help_heading = "Request")]
    pub verbose: bool,

    /// Show only this attribute (repeatable)
    #[arg(
        long = "field",
        global = true,
        value_name = "KEY",
        help_heading = "Output"
    )]
    pub fields: Vec<String>,

    /// Print nothing on success (errors and warnings still go to stderr)
    #[arg(short, long, global = true, help_heading = "Output")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rename an image (replace /name)
    #[command(
        long_about = "\
Rename an image: sends one PATCH with replace /name.",
        after_long_help = "\
Examples:
  ims-patch rename 33ad552d-1149-471c-8190-ff6776174a00 ims_test01
  ims-patch rename ims_test ims_test01 -o json"
    )]
    Rename(RenameArgs),

    /// Set or clear the IMS description (__description)
    #[command(
        override_usage = "ims-patch describe [OPTIONS] IMAGE [TEXT]\n       ims-patch describe [OPTIONS] (--images-from FILE | --where KEY=VALUE...) [TEXT]",
        long_about = "\
Set the IMS description attribute __description (add /__description), or \
remove it with --clear. With --images-from or --where, every positional \
argument is the edit (TEXT) and the images come from the selection.",
        after_long_help = "\
Examples:
  ims-patch describe 33ad552d-1149-471c-8190-ff6776174a00 'Ubuntu 22.04 base image'
  ims-patch describe --clear 33ad552d-1149-471c-8190-ff6776174a00
  ims-patch describe --clear --ignore-missing ims_test
  ims-patch describe --where __os_type=Linux 'maintained by ops'"
    )]
    Describe(DescribeArgs),

    /// Set attributes, all in one atomic request
    #[command(
        override_usage = "ims-patch set-attr [OPTIONS] IMAGE KEY=VALUE...\n       ims-patch set-attr [OPTIONS] (--images-from FILE | --where KEY=VALUE...) KEY=VALUE...",
        long_about = "\
Set one or more attributes in one request: one add per pair, applied all or \
nothing by the server. With --images-from or --where, every positional \
argument is a KEY=VALUE and the images come from the selection.

KEY=VALUE sends VALUE as text, except for the base attributes with a known \
type, which it converts: min_ram and min_disk (whole numbers), protected and \
os_hidden (true or false), visibility (public, private, shared, community) and \
tags (a comma-separated list). KEY:=JSON sends a JSON value as it is.",
        after_long_help = "\
Examples:
  ims-patch set-attr ims_test __os_bit=64 min_ram:=2048
  ims-patch set-attr 33ad552d-1149-471c-8190-ff6776174a00 protected=true tags=gold,2024
  ims-patch set-attr ims_test tags:='[\"a\",\"b\"]' hw_firmware_type=uefi
  ims-patch set-attr --where __os_version='Ubuntu 14.04' hw_firmware_type=uefi
  ims-patch set-attr --images-from ids.txt --jobs 8 --undo-file undo.jsonl __os_bit=64"
    )]
    SetAttr(SetAttrArgs),

    /// Remove attributes, all in one atomic request
    #[command(
        override_usage = "ims-patch unset-attr [OPTIONS] IMAGE KEY...\n       ims-patch unset-attr [OPTIONS] (--images-from FILE | --where KEY=VALUE...) KEY...",
        long_about = "\
Remove one or more custom attributes in one request (one remove per key). \
With --images-from or --where, every positional argument is a KEY. \
Removing an attribute that is not set is a conflict (exit 6) unless \
--ignore-missing is given, which reads the image first and skips the keys \
that are not set (sending nothing if none is left).",
        after_long_help = "\
Examples:
  ims-patch unset-attr ims_test __support_kvm __support_xen
  ims-patch unset-attr --ignore-missing 33ad552d-1149-471c-8190-ff6776174a00 __support_kvm
  ims-patch unset-attr --images-from ids.txt --ignore-missing __support_kvm"
    )]
    UnsetAttr(UnsetAttrArgs),

    /// Show an image
    #[command(
        long_about = "\
Show an image (GET /v2/images/{id}).",
        after_long_help = "\
Examples:
  ims-patch show 33ad552d-1149-471c-8190-ff6776174a00
  ims-patch show ims_test -o json --field __os_version"
    )]
    Show(ShowArgs),

    /// Send an op list written in the v2.1 form, checked locally first
    #[command(
        override_usage = "ims-patch patch [OPTIONS] IMAGE\n       ims-patch patch [OPTIONS] (--images-from FILE | --where KEY=VALUE...) --file FILE",
        long_about = "\
Send a list of operations written in the v2.1 form, read from FILE or from \
standard input:

  [{\"op\": \"replace\", \"path\": \"/name\", \"value\": \"ims_test01\"},
   {\"op\": \"remove\", \"path\": \"/__support_xen\"}]

The list is checked locally first. With --patch-format v2.0 it is sent in \
the v2.0 form.",
        after_long_help = "\
Examples:
  ims-patch patch ims_test --file ops.json
  echo '[{\"op\":\"add\",\"path\":\"/__os_bit\",\"value\":\"64\"}]' | ims-patch patch ims_test
  ims-patch patch --where os_distro=ubuntu --file ops.json"
    )]
    Patch(PatchArgs),

    /// List the images a selection matches (ID, name, status and --field keys)
    #[command(
        long_about = "\
List the images that GET /v2/images?KEY=VALUE... returns, following the \
server's next links to the end: the selection --where makes for set-attr, \
unset-attr, describe and patch, to look before editing. Glance filters on \
base attributes (name, status, visibility, owner, tag, os_hidden, ...) and \
on custom properties (__os_type=Linux); operators such as name=in:a,b pass \
through unchanged. --where limit=N sets the page size.",
        after_long_help = "\
Examples:
  ims-patch list --where __os_type=Linux --field __os_version
  ims-patch list --where status=active --where visibility=private -o json"
    )]
    List(ListArgs),

    /// Apply a JSON Lines file of per-image edits (or an undo file)
    #[command(
        long_about = "\
Apply per-image edits from a JSON Lines file, one object a line:

  {\"image\": ID_OR_NAME, \"name\": ..., \"description\": ..., \"set\": {KEY: VALUE}, \"unset\": [KEY], \"patch\": [v2.1 ops]}

Any subset of the members; all of a line's changes go in one request. A \
file written by --undo-file is such a file. The whole FILE is checked \
first and nothing is sent when a line is malformed; from standard input \
(-) a malformed line fails only itself.",
        after_long_help = "\
Examples:
  ims-patch apply edits.jsonl --jobs 8
  ims-patch apply undo.jsonl"
    )]
    Apply(ApplyArgs),

    /// Run a local Images API v2 server to try ims-patch and test scripts on
    #[command(
        long_about = "\
Run a local Images API v2 server that behaves like OpenStack Glance, seeded \
with example images (among them 33ad552d-1149-471c-8190-ff6776174a00, named \
ims_test). It prints the export lines that point ims-patch at it and runs \
until interrupted. With --token given on its command line, every request \
without that X-Auth-Token is answered 401; without it any token is accepted. \
With --journal, every request received is appended to a file as a JSON line, \
to see exactly what a script sent. It also answers the Keystone v3 login \
calls under /v3 (user demo, password demopass, project demo, domain Default, \
or --users FILE) with a service catalog pointing at itself; with \
--require-auth its image API answers 401 to unknown or expired tokens. With \
--access-key and --secret-key, every request must instead carry a valid AK/SK \
signature (as OTC's API Gateway checks it; a missing, wrong or stale one is \
answered 401 with the gateway's error), and GET /v3/projects?name=REGION \
answers the region's project as OTC's IAM does.

With -- COMMAND [ARGS...], it starts a fresh sandbox on a free port, runs \
COMMAND with IMS_PATCH_ENDPOINT and IMS_PATCH_TOKEN set to it, every other \
OS_* and IMS_PATCH_* variable unset, IMS_PATCH_CONFIG pointing at an empty \
config file and IMS_PATCH_CACHE_DIR at a temporary directory (so that nothing \
real is reached or kept), stops the sandbox when COMMAND \
exits and exits with COMMAND's status (128+N if signal N ended it). With \
--require-auth and no --token, COMMAND gets no token but OS_AUTH_URL of the \
sandbox's Keystone (and, without --users, the demo user's OS_USERNAME, \
OS_PASSWORD, OS_PROJECT_NAME and domains), so it logs in as on a real cloud. \
With --access-key and --secret-key, COMMAND gets IMS_PATCH_ACCESS_KEY, \
IMS_PATCH_SECRET_KEY (and IMS_PATCH_SECURITY_TOKEN) and IMS_PATCH_REGION \
instead, and signs its requests.",
        after_long_help = "\
Examples:
  ims-patch sandbox
  ims-patch sandbox --port 9393 --state images.json --token s3cret
  ims-patch sandbox --port 0 --journal requests.jsonl
  ims-patch sandbox --require-auth --token-ttl 600 --users users.toml
  ims-patch sandbox --access-key AKEXAMPLE --secret-key SKEXAMPLE

  ims-patch sandbox -- ims-patch rename 33ad552d-1149-471c-8190-ff6776174a00 ims_test01
  ims-patch sandbox --journal run.jsonl -- ./fix-images.sh"
    )]
    Sandbox(SandboxArgs),

    /// Log in with Keystone / OTC IAM, show the login, print or forget its token
    #[command(
        long_about = "\
Log in like the OpenStack clients (clouds.yaml with --os-cloud or OS_CLOUD, \
OS_* variables, or profile keys such as auth_url, username, project_name, \
password_command) and manage the cached token (in the user cache directory, \
ims-patch/tokens/, or IMS_PATCH_CACHE_DIR).",
        after_long_help = "\
Examples:
  ims-patch --os-cloud otc auth login
  ims-patch auth status -o json
  export OS_TOKEN=$(ims-patch auth token)
  ims-patch auth logout --revoke"
    )]
    Auth(AuthArgs),

    /// Generate shell completions or man pages
    #[command(hide = true)]
    Generate(GenerateArgs),
}

impl Command {
    /// Whether this edit selects its images with `--images-from`/`--where`.
    pub fn is_batch(&self) -> bool {
        match self {
            Command::SetAttr(a) => a.selection.is_batch(),
            Command::UnsetAttr(a) => a.selection.is_batch(),
            Command::Describe(a) => a.selection.is_batch(),
            Command::Patch(a) => a.selection.is_batch(),
            _ => false,
        }
    }

    /// Whether `--diff` was given (only the editing commands have it).
    pub fn diff(&self) -> bool {
        match self {
            Command::Rename(a) => a.diff,
            Command::Describe(a) => a.diff,
            Command::SetAttr(a) => a.diff,
            Command::UnsetAttr(a) => a.diff,
            Command::Patch(a) => a.diff,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub what: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in now, cache the token, print user, project, region, image endpoint and expiry
    Login,
    /// Show which login and settings would be used, where each came from, and the cached token
    Status,
    /// Print a valid token on standard output, logging in if needed
    Token,
    /// Delete the cached token
    Logout {
        /// Also revoke it with the identity service (DELETE /v3/auth/tokens)
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Read the image first and print only the attributes the edit touches, with their values before and after (with --dry-run: what it would change, nothing sent)
    #[arg(long, help_heading = "Output")]
    pub diff: bool,
    /// Image ID or name
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The new name (at most 255 characters)
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Many images instead of one (issue #10): then every positional argument
/// is an edit.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectionArgs {
    /// Edit every image listed in FILE (- reads standard input): one ID or exact name a line, blank lines and # comments skipped
    #[arg(long, value_name = "FILE", help_heading = "Batch", conflicts_with = "where", value_hint = clap::ValueHint::FilePath)]
    pub images_from: Option<PathBuf>,
    /// Edit every image GET /v2/images?KEY=VALUE lists (repeatable; all must hold)
    #[arg(
        long = "where",
        id = "where",
        value_name = "KEY=VALUE",
        help_heading = "Batch"
    )]
    pub where_: Vec<String>,
    #[command(flatten)]
    pub control: BatchControl,
}

impl SelectionArgs {
    pub fn is_batch(&self) -> bool {
        self.images_from.is_some() || !self.where_.is_empty()
    }
}

/// When a batch stops early.
#[derive(Debug, Args, Clone, Default)]
pub struct BatchControl {
    /// Stop starting images after the first failure
    #[arg(long, help_heading = "Batch")]
    pub fail_fast: bool,
    /// Stop starting images after N failures
    #[arg(long, value_name = "N", help_heading = "Batch", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_failures: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Keep the images GET /v2/images?KEY=VALUE lists (repeatable; all must hold)
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub where_: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// JSON Lines file of edits; - reads standard input
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    #[command(flatten)]
    pub control: BatchControl,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Read the image first and print only the attributes the edit touches, with their values before and after (with --dry-run: what it would change, nothing sent)
    #[arg(long, help_heading = "Output")]
    pub diff: bool,
    /// Remove the description instead of setting it
    #[arg(long, conflicts_with = "text")]
    pub clear: bool,
    /// With --clear: succeed without a change when there is no description
    #[arg(long, requires = "clear")]
    pub ignore_missing: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Image ID or name (with --images-from or --where: the first edit)
    #[arg(value_name = "IMAGE", required_unless_present_any = ["images_from", "where"])]
    pub image: Option<String>,
    /// The description
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetAttrArgs {
    /// Read the image first and print only the attributes the edit touches, with their values before and after (with --dry-run: what it would change, nothing sent)
    #[arg(long, help_heading = "Output")]
    pub diff: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Image ID or name (with --images-from or --where: the first edit)
    #[arg(value_name = "IMAGE", required_unless_present_any = ["images_from", "where"])]
    pub image: Option<String>,
    /// Attributes to set: KEY=VALUE, or KEY:=JSON for a typed value
    #[arg(value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnsetAttrArgs {
    /// Read the image first and print only the attributes the edit touches, with their values before and after (with --dry-run: what it would change, nothing sent)
    #[arg(long, help_heading = "Output")]
    pub diff: bool,
    /// Skip keys that are not set (reads the image first)
    #[arg(long)]
    pub ignore_missing: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Image ID or name (with --images-from or --where: the first edit)
    #[arg(value_name = "IMAGE", required_unless_present_any = ["images_from", "where"])]
    pub image: Option<String>,
    /// Attributes to remove
    #[arg(value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Image ID or name
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Read the image first and print only the attributes the edit touches, with their values before and after (with --dry-run: what it would change, nothing sent)
    #[arg(long, help_heading = "Output")]
    pub diff: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Image ID or name (none with --images-from or --where)
    #[arg(value_name = "IMAGE", required_unless_present_any = ["images_from", "where"])]
    pub image: Option<String>,
    /// File with the op list; - reads standard input
    #[arg(long, short, value_name = "FILE", default_value = "-", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port to listen on (0 picks a free one)
    #[arg(long, default_value_t = 9292)]
    pub port: u16,
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Keep the images in this JSON file across restarts (written atomically)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub state: Option<PathBuf>,
    /// Append every request received to FILE as a JSON line
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub journal: Option<PathBuf>,
    /// Most image data (PUT /v2/images/ID/file) kept over all images, in bytes; an upload past it gets 413
    #[arg(long, value_name = "BYTES", default_value_t = ims_patch_sandbox::DEFAULT_MAX_IMAGE_SIZE)]
    pub max_image_size: u64,
    /// Lifetime of the tokens its Keystone v3 (/v3/auth/tokens) issues, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub token_ttl: u64,
    /// Keystone users, projects and application credentials (TOML, or JSON if it ends in .json) [default: demo / demopass in project demo, domain Default]
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub users: Option<PathBuf>,
    /// Answer 401 to image API requests without a valid token of its Keystone (or the --token)
    #[arg(long)]
    pub require_auth: bool,
    /// Check an AK/SK signature (SDK-HMAC-SHA256) of this access key on every request, as OTC's API Gateway does
    #[arg(
        long,
        value_name = "AK",
        requires = "secret_key",
        help_heading = "AK/SK"
    )]
    pub access_key: Option<String>,
    /// The secret key the signatures are checked with
    #[arg(
        long,
        value_name = "SK",
        requires = "access_key",
        help_heading = "AK/SK"
    )]
    pub secret_key: Option<String>,
    /// With AK/SK: require this X-Security-Token (a temporary key pair)
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "access_key",
        help_heading = "AK/SK"
    )]
    pub security_token: Option<String>,
    /// Run COMMAND against a fresh sandbox (on a free port unless --port), then stop it; exit with COMMAND's status
    #[arg(last = true, value_name = "COMMAND", value_hint = clap::ValueHint::CommandWithArguments)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Write the completion script for SHELL to standard output
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write ims-patch.1 and one page per subcommand into DIR
    Man {
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        out_dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_client_option_is_listed() {
        let cmd = Cli::command();
        assert!(cmd.get_arguments().filter(|a| a.is_global_set()).count() >= 14);
        for arg in cmd.get_arguments().filter(|a| a.is_global_set()) {
            assert!(
                client_args()
                    .iter()
                    .any(|(id, _)| *id == arg.get_id().as_str()),
                "{}",
                arg.get_id()
            );
        }
    }

    #[test]
    fn long_help_has_examples_environment_and_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for text in [
            "Examples:",
            "IMS_PATCH_ENDPOINT",
            "IMS_PATCH_CONFIG",
            "Exit status:",
            "  8  server error",
        ] {
            assert!(help.contains(text), "{text}");
        }
    }
}
