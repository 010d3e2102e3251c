//! `rename IMAGE NAME`: one `replace /name`.

use serde_json::Value;

use super::{run_edit, Edit, Outcome, RunSettings};
use crate::cli::RenameArgs;
use crate::client::Client;
use crate::error::Result;
use crate::patch::Op;

pub fn edit(args: &RenameArgs) -> Edit {
    Edit::new(vec![Op::replace("name", Value::String(args.name.clone()))])
}

pub fn run(client: &Client, settings: RunSettings, args: &RenameArgs) -> Result<Outcome> {
    run_edit(client, settings, &args.image, &edit(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renames_with_replace() {
        let args = RenameArgs {
            diff: false,
            image: "i".into(),
            name: "ims_test01".into(),
        };
        assert_eq!(
            edit(&args).ops,
            vec![Op::replace("name", json!("ims_test01"))]
        );
    }
}
