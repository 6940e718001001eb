//! Reading an EC2 Query request: the form (or query string) parameters,
//! `Prefix.N` lists, `Filter.N` filters, `MaxResults`/`NextToken` paging and
//! id syntax.

use std::collections::BTreeMap;

use http::HeaderMap;

use super::response::{Answer, ec2_error};

/// The request's Query parameters: the form body when the request is
/// `x-www-form-urlencoded`, else the URL's query string.
pub(super) fn decode_params(parts: &http::request::Parts, body: &[u8]) -> Vec<(String, String)> {
    let is_form = header_contains(&parts.headers, "content-type", "x-www-form-urlencoded");
    let raw: &[u8] = if is_form {
        body
    } else {
        parts.uri.query().unwrap_or("").as_bytes()
    };
    url::form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Whether header `name` contains `needle`, ignoring ASCII case.
fn header_contains(headers: &HeaderMap, name: &str, needle: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
}

/// The first value of parameter `name`.
pub(super) fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The members of a Query list `Prefix.1`, `Prefix.2`, … in index order.
pub(super) fn list(params: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut items: BTreeMap<u32, String> = BTreeMap::new();
    for (k, v) in params {
        if let Some(n) = k
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('.'))
            .and_then(|n| n.parse().ok())
        {
            items.insert(n, v.clone());
        }
    }
    items.into_values().collect()
}

/// `Filter.N.Name` / `Filter.N.Value.M` pairs in index order.
pub(super) fn filters(params: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut by_index: BTreeMap<u32, (Option<String>, BTreeMap<u32, String>)> = BTreeMap::new();
    for (k, v) in params {
        let Some(rest) = k.strip_prefix("Filter.") else {
            continue;
        };
        let Some((n, field)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        let entry = by_index.entry(n).or_default();
        if field == "Name" {
            entry.0 = Some(v.clone());
        } else if let Some(m) = field
            .strip_prefix("Value.")
            .and_then(|m| m.parse::<u32>().ok())
        {
            entry.1.insert(m, v.clone());
        }
    }
    by_index
        .into_values()
        .filter_map(|(name, values)| name.map(|n| (n, values.into_values().collect())))
        .collect()
}

/// A filter name and how to read its value from an item.
pub(super) type FilterField<T> = (&'static str, fn(&T) -> Option<&str>);

/// Keep the items that every `Filter.N` matches (any of its values). A
/// filter name not in `fields` is refused, as EC2 does.
pub(super) fn apply_filters<T>(
    selected: &mut Vec<&T>,
    params: &[(String, String)],
    fields: &[FilterField<T>],
    request_id: &str,
) -> Result<(), Answer> {
    apply_filter_list(selected, filters(params), fields, request_id)
}

/// [`apply_filters`] over filters already read.
pub(super) fn apply_filter_list<T>(
    selected: &mut Vec<&T>,
    filters: Vec<(String, Vec<String>)>,
    fields: &[FilterField<T>],
    request_id: &str,
) -> Result<(), Answer> {
    for (name, values) in filters {
        let Some((_, field)) = fields.iter().find(|(n, _)| *n == name) else {
            return Err(ec2_error(
                400,
                "InvalidParameterValue",
                &format!("The filter '{name}' is invalid"),
                request_id,
            ));
        };
        selected.retain(|item| field(item).is_some_and(|v| values.iter().any(|w| w == v)));
    }
    Ok(())
}

/// Whether `id` is `prefix` then 8 or 17 lowercase hex digits, as EC2 ids are.
pub(super) fn is_hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|h| {
        (h.len() == 8 || h.len() == 17)
            && h.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// One page of `items` and the token for the next, if any.
///
/// Tokens are opaque strings that name the op, so a token from one
/// operation is refused by another.
pub(crate) fn paginate<T: Clone>(
    items: &[T],
    kind: &str,
    page_size: usize,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), String> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t
            .strip_prefix(kind)
            .and_then(|r| r.strip_prefix(".page."))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| format!("Invalid NextToken: {t}"))?,
    };
    let end = start.saturating_add(page_size).min(items.len());
    let page = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| format!("{kind}.page.{end}"));
    Ok((page, next))
}

/// `MaxResults`, if given, checked against the operation's `range`; the
/// error is EC2's message.
pub(super) fn parse_max_results(
    params: &[(String, String)],
    range: std::ops::RangeInclusive<usize>,
) -> Result<Option<usize>, String> {
    match param(params, "MaxResults") {
        None => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "Value ( {v} ) for parameter maxResults is invalid. Expecting a value between {} and {}.",
                    range.start(),
                    range.end()
                )
            }),
    }
}
