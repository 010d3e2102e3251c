//! `GET /v2/images`: the query parameters, filters (with Glance's `in:`/`eq:` operators), sorting, markers and the `first`/`next` links, exactly as Glance 33 reads them.
//!
//! What Glance 33 does, measured on the reference server (the conformance
//! suite compares the two):
//! * `name`, `id`, `status`, `container_format`, `disk_format` take an
//!   operator: `in:a,b` (comma-separated, `"..."` quotes a value holding a
//!   comma) or `eq:x` (everything after the first `:` taken literally, so
//!   `eq:in:web` selects the image named `in:web`). A value without `:`, or
//!   that is an ISO 8601 time as a whole, is `eq`. Any other prefix before
//!   the first `:` is an error: `name=a:b` gives 400 `Unable to filter by
//!   unknown operator 'a'.`
//! * `created_at` / `updated_at` take `gt gte lt lte eq neq` and an ISO 8601
//!   time.
//! * `KEY_min` / `KEY_max` filter integer attributes by range.
//! * every other base attribute (`owner`, `min_ram`, `checksum`, ...), `tag`
//!   (repeatable, all must hold) and custom properties are compared
//!   literally: `__os_type=in:Linux` looks for the value `in:Linux`.
//! * parameters behave as webob's MultiDict: `limit`, `marker`, `member_status`,
//!   `sort` and each `tag` take the first occurrence (a second `limit=` is then
//!   a property filter), other filters the last; the `first` and `next` links
//!   keep one value per key, the last, so `tag=a&tag=b` pages on with only
//!   `tag=b` (a Glance bug that clients following `next` inherit).

use std::cmp::Ordering;

use serde_json::Value;

use crate::context::Ctx;
use crate::http::{ApiError, Request, Response};
use crate::image::Image;
use crate::state::State;

/// Glance's `limit_param_default` and `api_limit_max`.
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];

/// Glance's `images.id` column length: a longer marker fails early.
const ID_COLUMN_LENGTH: usize = 36;

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::explained(400, msg)
}

/// The query string as webob's MultiDict: in order, duplicates kept.
#[derive(Debug, Clone, Default, PartialEq)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// `MultiDict.pop`: removes and returns the first value.
    fn pop(&mut self, key: &str) -> Option<String> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// `MultiDict.get`: the last value.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// `dict(multidict)`: one entry per key, at its first position, with its
    /// last value.
    fn to_dict(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.0 {
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn urlencode(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Python's `int(text)` for the `limit` parameter (surrounding whitespace
/// and a sign allowed); large values saturate.
fn python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg { -n } else { n })
}

/// A time as microseconds since 1970 (UTC), parsed the way `iso8601`
/// (oslo's `parse_isotime`) reads it: `YYYY-MM-DD` or `YYYYMMDD`, then
/// optionally `T` or a space, `hh[:mm[:ss[.frac]]]` (colons optional) and
/// `Z` or `±hh[:mm]`.
pub fn parse_isotime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, n: usize| -> Option<i64> {
        let part = b.get(*i..*i + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i += n;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let year = num(&mut i, 4)?;
    let dashed = b.get(i) == Some(&b'-');
    if dashed {
        i += 1;
    }
    let month = num(&mut i, 2)?;
    if dashed {
        if b.get(i) != Some(&b'-') {
            return None;
        }
        i += 1;
    }
    let day = num(&mut i, 2)?;
    let (mut hour, mut minute, mut second, mut micros, mut offset) = (0, 0, 0, 0i64, 0i64);
    if i < b.len() {
        if !matches!(b[i], b'T' | b' ') {
            return None;
        }
        i += 1;
        hour = num(&mut i, 2)?;
        let colon = |i: &mut usize| {
            if b.get(*i) == Some(&b':') {
                *i += 1;
            }
        };
        if b.get(i).is_some_and(u8::is_ascii_digit) || b.get(i) == Some(&b':') {
            colon(&mut i);
            minute = num(&mut i, 2)?;
            if b.get(i).is_some_and(u8::is_ascii_digit) || b.get(i) == Some(&b':') {
                colon(&mut i);
                second = num(&mut i, 2)?;
                if matches!(b.get(i), Some(b'.' | b',')) {
                    i += 1;
                    let start = i;
                    while b.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    let frac = &s[start..i];
                    if frac.is_empty() {
                        return None;
                    }
                    let padded: String = frac.chars().chain("000000".chars()).take(6).collect();
                    micros = padded.parse().ok()?;
                }
            }
        }
        match b.get(i) {
            None => {}
            Some(b'Z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                i += 1;
                let oh = num(&mut i, 2)?;
                colon(&mut i);
                let om = if i < b.len() { num(&mut i, 2)? } else { 0 };
                let total = oh * 3600 + om * 60;
                offset = if sign == b'+' { total } else { -total };
            }
            Some(_) => return None,
        }
        if i != b.len() {
            return None;
        }
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(secs * 1_000_000 + micros)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Glance's `utils.split_filter_op`: `(operator, value)`.
pub fn split_filter_op(expression: &str) -> (&str, &str) {
    match expression.split_once(':') {
        Some(_) if parse_isotime(expression).is_some() => ("eq", expression),
        Some((op, value)) => (op, value),
        None => ("eq", expression),
    }
}

/// Glance's `utils.split_filter_value_for_quotes` (with `validate_quotes`):
/// the values of an `in:` list. Backslash escapes are kept as written.
pub fn split_in_values(value: &str) -> Result<Vec<String>, ApiError> {
    let chars: Vec<char> = value.chars().collect();
    let mut open = true;
    for (i, &c) in chars.iter().enumerate() {
        if c != '"' || (i > 0 && chars[i - 1] == '\\') {
            continue;
        }
        if open {
            if i > 0 && chars[i - 1] != ',' {
                return Err(bad_request(format!(
                    "Invalid filter value {value}. There is no comma before opening quotation mark."
                )));
            }
        } else if i + 1 != chars.len() && chars[i + 1] != ',' {
            return Err(bad_request(format!(
                "Invalid filter value {value}. There is no comma after closing quotation mark."
            )));
        }
        open = !open;
    }
    if !open {
        return Err(bad_request(format!(
            "Invalid filter value {value}. The quote is not closed."
        )));
    }
    // re.findall(r'"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,', value)
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '"' {
            let mut j = i + 1;
            let mut ok = false;
            while j < chars.len() {
                match chars[j] {
                    '\\' if j + 1 < chars.len() => j += 2,
                    '\\' => break,
                    '"' => {
                        ok = true;
                        break;
                    }
                    _ => j += 1,
                }
            }
            if ok {
                out.push(chars[i + 1..j].iter().collect());
                i = j + 1;
                if chars.get(i) == Some(&',') {
                    i += 1;
                }
                continue;
            }
        }
        if chars[i] == ',' {
            out.push(String::new());
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i] != ',' {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
        if i < chars.len() {
            i += 1;
        }
    }
    Ok(out)
}

/// One condition on an image, built from one query parameter.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// A text column equals / is one of (a NULL never matches).
    Text(&'static str, Vec<String>),
    /// An integer column equals the value as sqlite compares it.
    IntEq(&'static str, String),
    /// An integer column `>=` (`min`) or `<=` (`max`) a bound.
    Range(&'static str, bool, i64),
    /// A time column compared with a threshold (microseconds).
    Time(&'static str, String, i64),
    Protected(bool),
    /// A custom property equals the value exactly.
    Property(String, String),
    /// Matches nothing (a filter on a column that is always NULL here).
    Nothing,
}

const TEXT_COLUMNS: &[&str] = &[
    "id",
    "name",
    "disk_format",
    "container_format",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "visibility",
];
const INT_COLUMNS: &[&str] = &["size", "virtual_size", "min_disk", "min_ram"];
const OPERATOR_COLUMNS: &[&str] = &["name", "id", "status", "container_format", "disk_format"];

fn column(name: &str, list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|c| *c == name)
}

fn text_value(img: &Image, col: &str) -> Option<String> {
    match col {
        "id" => Some(img.id.clone()),
        "visibility" => Some(img.visibility.clone()),
        "status" => Some(img.status.clone()),
        _ => img
            .base_value(col)
            .and_then(|v| v.as_str().map(str::to_string)),
    }
}

fn int_value(img: &Image, col: &str) -> Option<i64> {
    match col {
        "size" => img.size,
        "virtual_size" => img.virtual_size,
        "min_disk" => Some(img.min_disk),
        "min_ram" => Some(img.min_ram),
        _ => None,
    }
}

impl Cond {
    fn holds(&self, img: &Image) -> bool {
        match self {
            Cond::Text(col, values) => text_value(img, col).is_some_and(|v| values.contains(&v)),
            Cond::IntEq(col, want) => int_value(img, col).is_some_and(|v| v.to_string() == *want),
            Cond::Range(col, is_min, bound) => {
                int_value(img, col).is_some_and(|v| if *is_min { v >= *bound } else { v <= *bound })
            }
            Cond::Time(col, op, threshold) => {
                let raw = if *col == "created_at" {
                    &img.created_at
                } else {
                    &img.updated_at
                };
                let Some(t) = parse_isotime(raw) else {
                    return false;
                };
                match op.as_str() {
                    "gt" => t > *threshold,
                    "gte" => t >= *threshold,
                    "lt" => t < *threshold,
                    "lte" => t <= *threshold,
                    "neq" => t != *threshold,
                    _ => t == *threshold,
                }
            }
            Cond::Protected(p) => img.protected == *p,
            Cond::Property(k, v) => img.properties.get(k).and_then(Value::as_str) == Some(v),
            Cond::Nothing => false,
        }
    }
}

/// The condition for one remaining filter parameter (Glance's
/// `_make_conditions_from_filters`).
fn condition(key: &str, value: &str) -> Result<Cond, ApiError> {
    if let Some(base) = key
        .strip_suffix("_min")
        .or_else(|| key.strip_suffix("_max"))
    {
        let bound = python_int(value)
            .ok_or_else(|| bad_request("Unable to filter on a range with a non-numeric value."))?;
        // Known difference: Glance answers 500 for a range on anything but
        // an integer attribute.
        let col = column(base, INT_COLUMNS).ok_or_else(|| {
            bad_request(format!(
                "Unable to filter on a range of '{base}': it must be one of {}.",
                INT_COLUMNS.join(", ")
            ))
        })?;
        return Ok(Cond::Range(col, key.ends_with("_min"), bound));
    }
    if let Some(col) = column(key, &["created_at", "updated_at"]) {
        let (op, time) = split_filter_op(value);
        let threshold = parse_isotime(time).ok_or_else(|| {
            bad_request(format!(
                "Bad \"{key}\" query filter format. Use ISO 8601 DateTime notation."
            ))
        })?;
        if !["gt", "gte", "lt", "lte", "eq", "neq"].contains(&op) {
            return Err(bad_request("Unable to filter on a unknown operator."));
        }
        return Ok(Cond::Time(col, op.to_string(), threshold));
    }
    if let Some(col) = column(key, OPERATOR_COLUMNS) {
        let (op, rest) = split_filter_op(value);
        return match op {
            "in" => Ok(Cond::Text(col, split_in_values(rest)?)),
            "eq" => Ok(Cond::Text(col, vec![rest.to_string()])),
            _ => Err(bad_request(format!(
                "Unable to filter by unknown operator '{op}'."
            ))),
        };
    }
    if let Some(col) = column(key, TEXT_COLUMNS) {
        return Ok(Cond::Text(col, vec![value.to_string()]));
    }
    if let Some(col) = column(key, INT_COLUMNS) {
        return Ok(Cond::IntEq(col, value.to_string()));
    }
    if key == "deleted_at" {
        return Ok(Cond::Nothing);
    }
    Ok(Cond::Property(key.to_string(), value.to_string()))
}

/// How to order the list: keys with `desc`.
fn sorting(params: &mut Params) -> Result<Vec<(String, bool)>, ApiError> {
    let check_key = |k: &str| {
        if SORT_KEYS.contains(&k) {
            Ok(k.to_string())
        } else {
            Err(bad_request(format!(
                "Invalid sort key: {k}. It must be one of the following: {}.",
                SORT_KEYS.join(", ")
            )))
        }
    };
    let check_dir = |d: &str| {
        if d == "asc" || d == "desc" {
            Ok(d == "desc")
        } else {
            Err(bad_request(format!("Invalid sort direction: {d}")))
        }
    };
    let mut keys = Vec::new();
    let mut dirs = Vec::new();
    if params.contains("sort") {
        if params.contains("sort_key") || params.contains("sort_dir") {
            return Err(bad_request("Old and new sorting syntax cannot be combined"));
        }
        let spec = params.pop("sort").unwrap_or_default();
        for part in spec.trim().split(',') {
            let (key, dir) = part.split_once(':').unwrap_or((part, ""));
            let dir = if dir.is_empty() { "desc" } else { dir };
            keys.push(check_key(key.trim())?);
            dirs.push(check_dir(dir.trim())?);
        }
    } else {
        while let Some(k) = params.pop("sort_key") {
            keys.push(check_key(k.trim())?);
        }
        while let Some(d) = params.pop("sort_dir") {
            dirs.push(check_dir(d.trim())?);
        }
        if dirs.len() > 1 && dirs.len() != keys.len() {
            return Err(bad_request(
                "Number of sort dirs does not match the number of sort keys",
            ));
        }
    }
    if keys.is_empty() {
        keys.push("created_at".to_string());
    }
    let default_desc = dirs.first().copied().unwrap_or(true);
    let mut sort: Vec<(String, bool)> = keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, dirs.get(i).copied().unwrap_or(default_desc)))
        .collect();
    // image_get_all: created_at and id always end the ordering, in the
    // first direction given.
    for key in ["created_at", "id"] {
        if !sort.iter().any(|(k, _)| k == key) {
            sort.push((key.to_string(), default_desc));
        }
    }
    Ok(sort)
}

/// A sort key's value. `created_at` carries the creation index, which
/// stands for Glance's microseconds (the sandbox keeps whole seconds).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Int(i64),
    Text(String, usize),
}

fn sort_value(img: &Image, index: usize, key: &str) -> Option<SortValue> {
    match key {
        "size" => img.size.map(SortValue::Int),
        "created_at" => Some(SortValue::Text(img.created_at.clone(), index)),
        _ => text_value(img, key).map(|s| SortValue::Text(s, 0)),
    }
}

/// The value the marker criteria compare: NULL as the column's default.
fn marker_value(img: &Image, index: usize, key: &str) -> SortValue {
    sort_value(img, index, key).unwrap_or(if key == "size" {
        SortValue::Int(0)
    } else {
        SortValue::Text(String::new(), 0)
    })
}

fn directed(ord: Ordering, desc: bool) -> Ordering {
    if desc {
        ord.reverse()
    } else {
        ord
    }
}

/// `ORDER BY` as sqlite does it: NULLs first when ascending.
fn order(a: (&Image, usize), b: (&Image, usize), sort: &[(String, bool)]) -> Ordering {
    for (key, desc) in sort {
        let ord = directed(
            sort_value(a.0, a.1, key).cmp(&sort_value(b.0, b.1, key)),
            *desc,
        );
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Whether `img` comes after the marker in Glance's pagination criteria.
fn after_marker(img: (&Image, usize), marker: (&Image, usize), sort: &[(String, bool)]) -> bool {
    for (key, desc) in sort {
        let ord = directed(
            marker_value(img.0, img.1, key).cmp(&marker_value(marker.0, marker.1, key)),
            *desc,
        );
        if ord != Ordering::Equal {
            return ord == Ordering::Greater;
        }
    }
    false
}

pub fn list_images(state: &State, req: &Request, ctx: &Ctx) -> Result<Response, ApiError> {
    let all = Params::parse(req.raw_query().unwrap_or(""));
    let mut params = all.clone();

    // RequestDeserializer.index
    let limit = params.pop("limit");
    let marker = params.pop("marker");
    let member_status = params.pop("member_status");
    let mut tags = Vec::new();
    while let Some(t) = params.pop("tag") {
        tags.push(t.trim().to_string());
    }
    if let Some(v) = params.get("visibility") {
        if !v.is_empty() && !["community", "public", "private", "shared", "all"].contains(&v) {
            return Err(bad_request(format!("Invalid visibility value: {v}")));
        }
    }
    // Known difference: an empty `changes-since` is a 500 on Glance.
    if params.contains("changes-since") {
        return Err(bad_request(
            "The \"changes-since\" filter is no longer available on v2.",
        ));
    }
    let os_hidden = match params.get("os_hidden") {
        None => false,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(bad_request(format!(
                "Invalid value '{v}' for 'os_hidden' filter. Valid values are 'true' or 'false'."
            )))
            }
        },
    };
    if let Some(m) = &member_status {
        if !["pending", "accepted", "rejected", "all"].contains(&m.as_str()) {
            return Err(bad_request(format!("Invalid status: {m}")));
        }
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(l) => {
            let n = python_int(&l).ok_or_else(|| bad_request("limit param must be an integer"))?;
            if n < 0 {
                return Err(bad_request("limit param must be positive"));
            }
            usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)
        }
    };
    let sort = sorting(&mut params)?;

    // ImagesController.index
    let mut conds = Vec::new();
    if let Some(p) = params.get("protected") {
        if p != "true" && p != "false" {
            return Err(bad_request(format!(
                "Invalid value '{p}' for 'protected' filter. Valid values are 'true' or 'false'."
            )));
        }
        conds.push(Cond::Protected(p == "true"));
    }

    // image_get_all and _make_conditions_from_filters
    let visibility = params.pop("visibility");
    for (key, value) in params.to_dict() {
        match key.as_str() {
            "visibility" | "os_hidden" | "protected" | "deleted" | "changes-since" => {}
            _ => conds.push(condition(&key, &value)?),
        }
    }
    let marker = match marker {
        None => None,
        Some(m) if m.chars().count() > ID_COLUMN_LENGTH => {
            return Err(bad_request(
                "Image with the given id %(image_id)s was not found",
            ))
        }
        Some(m) => {
            let i = state
                .position(&m)
                .ok_or_else(|| bad_request(format!("No image found with ID {m}")))?;
            if !ctx.can_see(&state.images[i]) {
                return Err(ApiError::explained(
                    403,
                    format!("Forbidding request, image {m} not visible"),
                ));
            }
            Some((&state.images[i], i))
        }
    };

    let matches = |img: &Image| -> bool {
        if !ctx.can_see(img) || img.status == "killed" || img.os_hidden != os_hidden {
            return false;
        }
        match visibility.as_deref() {
            Some("all") => {}
            Some(v) => {
                if img.visibility != v {
                    return false;
                }
            }
            None => {
                if img.visibility == "community"
                    && img.owner.as_deref() != Some(ctx.project.as_str())
                {
                    return false;
                }
            }
        }
        tags.iter().all(|t| img.tags.contains(t)) && conds.iter().all(|c| c.holds(img))
    };
    let mut found: Vec<(&Image, usize)> = state
        .images
        .iter()
        .enumerate()
        .filter(|(_, img)| matches(img))
        .map(|(i, img)| (img, i))
        .collect();
    found.sort_by(|a, b| order(*a, *b, &sort));
    if let Some(m) = marker {
        found.retain(|img| after_marker(*img, m, &sort));
    }
    let page: Vec<&Image> = found.into_iter().take(limit).map(|(img, _)| img).collect();

    // ResponseSerializer.index
    let mut links = all.to_dict();
    links.retain(|(k, _)| k != "marker");
    let query = urlencode(&links);
    let first = if query.is_empty() {
        "/v2/images".to_string()
    } else {
        format!("/v2/images?{query}")
    };
    let mut body = serde_json::Map::new();
    body.insert(
        "images".into(),
        Value::Array(page.iter().map(|i| Value::Object(i.view())).collect()),
    );
    body.insert("first".into(), Value::String(first));
    body.insert("schema".into(), Value::String("/v2/schemas/images".into()));
    if let Some(last) = page.last() {
        if page.len() == limit {
            links.push(("marker".into(), last.id.clone()));
            body.insert(
                "next".into(),
                Value::String(format!("/v2/images?{}", urlencode(&links))),
            );
        }
    }
    Ok(Response::json(200, &Value::Object(body), false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::handle;
    use crate::testutil::*;
    use serde_json::json;

    fn names(s: &mut State, query: &str) -> Vec<String> {
        let r = get(s, &format!("/v2/images?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.body_text());
        r.body_json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("<null>").to_string())
            .collect()
    }

    fn error(s: &mut State, query: &str) -> (u16, String) {
        let r = get(s, &format!("/v2/images?{query}"));
        (r.status, message(&r).replace("<br /><br />\n\n\n", ""))
    }

    fn with_names(extra: &[&str]) -> State {
        let mut s = state();
        for name in extra {
            let mut img = Image::new_queued(
                uuid::Uuid::new_v4().to_string(),
                Some(crate::image::DEFAULT_PROJECT.into()),
                "2029-01-01T00:00:00Z",
            );
            img.name = Some(name.to_string());
            s.images.push(img);
        }
        s
    }

    #[test]
    fn filter_operators() {
        let mut s = with_names(&["web", "in:web", "a:b", "x,y", "web2", ""]);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(names(&mut s, "name=web"), ["web"]);
        // `in:` is an operator, `eq:` makes the rest literal.
        assert_eq!(names(&mut s, "name=in:web"), ["web"]);
        assert_eq!(names(&mut s, "name=eq:in:web"), ["in:web"]);
        assert_eq!(sorted(names(&mut s, "name=in:web,web2")), ["web", "web2"]);
        assert_eq!(names(&mut s, "name=eq:a:b"), ["a:b"]);
        assert_eq!(names(&mut s, "name=x,y"), ["x,y"]);
        assert_eq!(names(&mut s, "name=in:x,y"), Vec::<String>::new());
        assert_eq!(
            sorted(names(&mut s, "name=in:%22x,y%22,web")),
            ["web", "x,y"]
        );
        assert_eq!(names(&mut s, "name="), [""]);
        assert_eq!(names(&mut s, "name=in:,"), [""]);
        assert_eq!(names(&mut s, "name=in:"), Vec::<String>::new());
        assert_eq!(names(&mut s, "name=eq:x&name=in:web"), ["web"]);
        for (q, op) in [
            ("name=a:b", "a"),
            ("name=gt:a", "gt"),
            ("status=neq:x", "neq"),
        ] {
            assert_eq!(
                error(&mut s, q),
                (400, format!("Unable to filter by unknown operator '{op}'."))
            );
        }
        assert_eq!(
            error(&mut s, "name=in:%22x,y"),
            (
                400,
                "Invalid filter value \"x,y. The quote is not closed.".into()
            )
        );
        assert_eq!(
            error(&mut s, "name=in:a%22b%22"),
            (
                400,
                "Invalid filter value a\"b\". There is no comma before opening quotation mark."
                    .into()
            )
        );
        // Other attributes and custom properties are literal.
        assert_eq!(names(&mut s, "__platform=in:Windows"), Vec::<String>::new());
        assert_eq!(names(&mut s, "__platform=Windows"), ["windows-server-2022"]);
        assert_eq!(names(&mut s, "owner=in:x"), Vec::<String>::new());
        assert_eq!(names(&mut s, "tag=in:eol"), Vec::<String>::new());
    }

    #[test]
    fn other_filters() {
        let mut s = state();
        assert_eq!(names(&mut s, "tag=eol"), ["centos-7-legacy"]);
        assert_eq!(names(&mut s, "tag=eol&tag=nope"), Vec::<String>::new());
        assert_eq!(
            error(&mut s, "size_min=x"),
            (
                400,
                "Unable to filter on a range with a non-numeric value.".into()
            )
        );
        assert_eq!(names(&mut s, "min_ram=abc"), Vec::<String>::new());
        assert_eq!(
            names(&mut s, "created_at=lt:2000-01-01T00:00:00Z"),
            Vec::<String>::new()
        );
        assert_eq!(names(&mut s, "created_at=gt:2000-01-01").len(), 4);
        assert_eq!(
            error(&mut s, "created_at=bad"),
            (
                400,
                "Bad \"created_at\" query filter format. Use ISO 8601 DateTime notation.".into()
            )
        );
        assert_eq!(
            error(&mut s, "updated_at=xx:2020-01-01T00:00:00Z"),
            (400, "Unable to filter on a unknown operator.".into())
        );
        assert_eq!(names(&mut s, "visibility="), Vec::<String>::new());
        assert_eq!(error(&mut s, "protected=").0, 400);
        assert_eq!(
            error(&mut s, "member_status=x"),
            (400, "Invalid status: x".into())
        );
        // a second `limit` is a property filter
        assert_eq!(names(&mut s, "limit=2&limit=3"), Vec::<String>::new());
        assert_eq!(names(&mut s, "limit=%2B2").len(), 2);
        assert_eq!(
            error(&mut s, "sort_key=bogus&sort_dir=up").1,
            "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at."
        );
        // Markers: too long for the id column, invisible, unknown.
        assert_eq!(
            error(&mut s, &format!("marker={}", "x".repeat(40))),
            (
                400,
                "Image with the given id %(image_id)s was not found".into()
            )
        );
        let r = handle(
            &mut s,
            &Request::new("GET", &format!("/v2/images?marker={SEED}"))
                .header("Accept", "application/json")
                .header("X-Roles", "reader,member")
                .header("X-Project-Id", "other"),
        );
        assert_eq!(
            (r.status, message(&r).replace("<br /><br />\n\n\n", "")),
            (403, format!("Forbidding request, image {SEED} not visible"))
        );
        assert_eq!(
            error(&mut s, "marker=11111111-2222-3333-4444-555555555555"),
            (
                400,
                "No image found with ID 11111111-2222-3333-4444-555555555555".into()
            )
        );
    }

    #[test]
    fn links_keep_the_last_value_of_each_key() {
        let mut s = state();
        let v = get(&mut s, "/v2/images?tag=eol&tag=x&limit=1").body_json();
        assert_eq!(v["first"], "/v2/images?tag=x&limit=1");
        let v = get(&mut s, "/v2/images?limit=1&name=in:a,b").body_json();
        assert_eq!(v["first"], "/v2/images?limit=1&name=in%3Aa%2Cb");
    }

    #[test]
    fn pages_follow_next_to_the_end() {
        let mut s = with_names(&["p1", "p2", "p3", "p4", "p5"]);
        let mut url = "/v2/images?limit=2&sort=name:asc".to_string();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let v = get(&mut s, &url).body_json();
            for i in v["images"].as_array().unwrap() {
                seen.push(i["name"].as_str().unwrap().to_string());
            }
            match v["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        let mut all = names(&mut s, "limit=100");
        all.sort();
        assert_eq!(seen, all);
        // same created_at second: creation order still decides
        assert_eq!(
            names(&mut s, "sort=created_at:asc&name=in:p1,p2,p3,p4,p5"),
            ["p1", "p2", "p3", "p4", "p5"]
        );
    }

    #[test]
    fn list_filters_and_pagination() {
        let mut s = state();
        let r = get(&mut s, "/v2/images");
        let v = r.body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 4);
        assert_eq!(v["first"], "/v2/images");
        assert_eq!(v["schema"], "/v2/schemas/images");
        assert!(v.get("next").is_none());
        // newest first
        assert_eq!(v["images"][0]["name"], "debian-12");
        let v = get(&mut s, "/v2/images?name=ims_test").body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 1);
        assert_eq!(v["images"][0]["id"], SEED);
        assert_eq!(v["first"], "/v2/images?name=ims_test");
        let v = get(&mut s, "/v2/images?name=nothing").body_json();
        assert_eq!(v["images"], json!([]));
        let v = get(&mut s, "/v2/images?limit=2").body_json();
        assert_eq!(v["images"].as_array().unwrap().len(), 2);
        let next = v["next"].as_str().unwrap().to_string();
        assert!(next.starts_with("/v2/images?limit=2&marker="), "{next}");
        let v2 = get(&mut s, &next).body_json();
        assert_eq!(v2["images"].as_array().unwrap().len(), 2);
        assert_ne!(v2["images"][0]["id"], v["images"][1]["id"]);
        assert_eq!(get(&mut s, "/v2/images?limit=x").status, 400);
        assert_eq!(get(&mut s, "/v2/images?marker=nope").status, 400);
    }

    #[test]
    fn isotime() {
        let t = parse_isotime("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(t, 1_577_836_800_000_000);
        assert_eq!(parse_isotime("2020-01-01"), Some(t));
        assert_eq!(parse_isotime("20200101T000000Z"), Some(t));
        assert_eq!(parse_isotime("2020-01-01 01:00+01:00"), Some(t));
        assert_eq!(parse_isotime("2020-01-01T00:00:00.5Z"), Some(t + 500_000));
        for bad in [
            "bad",
            "2020-13-01",
            "2020-02-30",
            "12:30",
            "2020-01-01T",
            "a:b",
        ] {
            assert_eq!(parse_isotime(bad), None, "{bad}");
        }
        assert_eq!(
            split_filter_op("2020-01-01T00:00:00"),
            ("eq", "2020-01-01T00:00:00")
        );
        assert_eq!(split_filter_op("in:a:b"), ("in", "a:b"));
    }

    #[test]
    fn in_values() {
        let v = |s: &str| split_in_values(s).unwrap();
        assert_eq!(v("a,b"), ["a", "b"]);
        assert_eq!(v("a,"), ["a"]);
        assert_eq!(v(","), [""]);
        assert_eq!(v(""), Vec::<String>::new());
        assert_eq!(v("\"x,y\",z"), ["x,y", "z"]);
        assert_eq!(v("\"we\\\"b\",c"), ["we\\\"b", "c"]);
    }
}
