//! `set-attr IMAGE KEY=VALUE...`: one `add` per pair, all in one request.

use serde_json::Value;

use super::{run_edit, Edit, Outcome, RunSettings};
use crate::cli::SetAttrArgs;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::patch::{typed_value, Op};

/// Reads `KEY=VALUE` (text, converted for typed base attributes) or
/// `KEY:=JSON` (a JSON value as it is).
pub fn parse_pair(pair: &str) -> Result<Op> {
    let Some(eq) = pair.find('=') else {
        return Err(
            Error::usage(format!("'{pair}' is not KEY=VALUE or KEY:=JSON"))
                .hint("for example: ims-patch set-attr IMAGE __os_bit=64 min_ram:=2048"),
        );
    };
    let (key, value) = if pair[..eq].ends_with(':') {
        let key = &pair[..eq - 1];
        let json = &pair[eq + 1..];
        let value: Value = serde_json::from_str(json).map_err(|e| {
            Error::usage(format!("'{pair}': '{json}' is not valid JSON ({e})")).hint(format!(
                "for text, write {key}={json}; a JSON string needs quotes: {key}:='\"{json}\"'"
            ))
        })?;
        (key, value)
    } else {
        let key = &pair[..eq];
        (key, typed_value(key, &pair[eq + 1..])?)
    };
    Ok(Op::add(key, value))
}

pub fn edit(args: &SetAttrArgs) -> Result<Edit> {
    if args.pairs.is_empty() {
        return Err(Error::usage("set-attr needs at least one KEY=VALUE")
            .hint("for example: ims-patch set-attr IMAGE __os_bit=64"));
    }
    let ops = args
        .pairs
        .iter()
        .map(|p| parse_pair(p))
        .collect::<Result<Vec<_>>>()?;
    Ok(Edit::new(ops))
}

pub fn run(client: &Client, settings: RunSettings, args: &SetAttrArgs) -> Result<Outcome> {
    run_edit(
        client,
        settings,
        args.image.as_deref().unwrap_or_default(),
        &edit(args)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs() {
        assert_eq!(
            parse_pair("__os_bit=64").unwrap(),
            Op::add("__os_bit", json!("64"))
        );
        assert_eq!(
            parse_pair("min_ram:=2048").unwrap(),
            Op::add("min_ram", json!(2048))
        );
        assert_eq!(
            parse_pair("min_ram=2048").unwrap(),
            Op::add("min_ram", json!(2048))
        );
        assert_eq!(
            parse_pair("protected:=true").unwrap(),
            Op::add("protected", json!(true))
        );
        assert_eq!(
            parse_pair("tags:=[\"a\",\"b\"]").unwrap(),
            Op::add("tags", json!(["a", "b"]))
        );
        assert_eq!(
            parse_pair("tags=a,b").unwrap(),
            Op::add("tags", json!(["a", "b"]))
        );
        assert_eq!(parse_pair("k=a=b").unwrap(), Op::add("k", json!("a=b")));
        assert_eq!(parse_pair("k=").unwrap(), Op::add("k", json!("")));
        assert_eq!(parse_pair("a:b=c").unwrap(), Op::add("a:b", json!("c")));
        assert_eq!(parse_pair("k:=\"x\"").unwrap(), Op::add("k", json!("x")));
        assert!(parse_pair("novalue")
            .unwrap_err()
            .message
            .contains("'novalue'"));
        assert!(parse_pair("k:=abc")
            .unwrap_err()
            .message
            .contains("not valid JSON"));
        assert!(parse_pair("min_ram=lots").is_err());
    }
}
