//! `describe IMAGE TEXT`: `add /__description`; `--clear` removes it.

use serde_json::Value;

use super::{run_edit, Edit, Outcome, RunSettings};
use crate::cli::DescribeArgs;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::patch::Op;

/// The IMS description attribute.
pub const KEY: &str = "__description";

pub fn edit(args: &DescribeArgs) -> Result<Edit> {
    match (&args.text, args.clear) {
        (Some(_), true) => Err(Error::usage("describe takes TEXT or --clear, not both")),
        (Some(text), false) => Ok(Edit::new(vec![Op::add(KEY, Value::String(text.clone()))])),
        (None, false) => Err(Error::usage("describe needs TEXT, or --clear")
            .hint("for example: ims-patch describe IMAGE 'Ubuntu 22.04 base image'")),
        (None, true) => Ok(Edit {
            ops: vec![Op::remove(KEY)],
            ignore_missing: args.ignore_missing,
        }),
    }
}

pub fn run(client: &Client, settings: RunSettings, args: &DescribeArgs) -> Result<Outcome> {
    let result = run_edit(
        client,
        settings,
        args.image.as_deref().unwrap_or_default(),
        &edit(args)?,
    );
    if args.clear {
        result.map_err(super::ignore_missing_hint)
    } else {
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(text: Option<&str>, clear: bool, ignore_missing: bool) -> DescribeArgs {
        DescribeArgs {
            diff: false,
            selection: Default::default(),
            clear,
            ignore_missing,
            image: Some("i".into()),
            text: text.map(String::from),
        }
    }

    #[test]
    fn sets_and_clears() {
        assert_eq!(
            edit(&args(Some("ims test"), false, false)).unwrap().ops,
            vec![Op::add("__description", json!("ims test"))]
        );
        let clear = edit(&args(None, true, true)).unwrap();
        assert!(edit(&args(None, false, false)).is_err());
        assert_eq!(clear.ops, vec![Op::remove("__description")]);
        assert!(clear.ignore_missing);
    }
}
