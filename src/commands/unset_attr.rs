//! `unset-attr IMAGE KEY...`: one `remove` per key, all in one request.

use super::{run_edit, Edit, Outcome, RunSettings};
use crate::cli::UnsetAttrArgs;
use crate::client::Client;
use crate::error::Result;
use crate::patch::Op;

pub fn edit(args: &UnsetAttrArgs) -> Result<Edit> {
    if args.keys.is_empty() {
        return Err(
            crate::error::Error::usage("unset-attr needs at least one KEY")
                .hint("for example: ims-patch unset-attr IMAGE __support_kvm"),
        );
    }
    Ok(Edit {
        ops: args.keys.iter().map(|k| Op::remove(k.clone())).collect(),
        ignore_missing: args.ignore_missing,
    })
}

pub fn run(client: &Client, settings: RunSettings, args: &UnsetAttrArgs) -> Result<Outcome> {
    run_edit(
        client,
        settings,
        args.image.as_deref().unwrap_or_default(),
        &edit(args)?,
    )
    .map_err(super::ignore_missing_hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_remove_per_key() {
        let args = UnsetAttrArgs {
            diff: false,
            selection: Default::default(),
            ignore_missing: true,
            image: Some("i".into()),
            keys: vec!["__support_kvm".into(), "a/b".into()],
        };
        let e = edit(&args).unwrap();
        assert_eq!(e.ops, vec![Op::remove("__support_kvm"), Op::remove("a/b")]);
        assert!(e.ignore_missing);
    }
}
