//! Typed reads of single fields out of a JSON record kept as `RawValue`s: the JSON
//! sources (WAF, Route 53 Resolver, GuardDuty, Security Hub, CloudWatch Logs) parse a
//! record's top level once, borrow what they map and keep the rest verbatim, and every
//! failure names the field it came from.

use crate::ocsf::{Str, Unmapped, Value};
use crate::time::parse_rfc3339_ms;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// OCSF's timestamp range in epoch ms: [2000-01-01, 2100-01-01).
const MIN_MS: i64 = 946_684_800_000;
const MAX_MS: i64 = 4_102_444_800_000;

/// The fields of one JSON object, in order, values unparsed (shared with the other
/// JSON-lines sources).
pub(crate) struct Fields<'a>(pub(crate) Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(24);
                while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// Keeps `raw` under `key` in `unmapped`: verbatim, unless it holds `null`s, which
/// WAF writes for every absent field (`"terminatingRule":null`) and which say
/// nothing; those are removed, at every depth.
pub(crate) fn keep<'a>(unmapped: &mut Unmapped<'a>, key: &'a str, raw: &'a RawValue) {
    let json = raw.get();
    if json == "null" {
        return;
    }
    if !json.contains("null") {
        unmapped.raw(key, raw);
        return;
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(mut value) => {
            strip_nulls(&mut value);
            unmapped.0.push((Cow::Borrowed(key), Value::Json(value)));
        }
        Err(_) => unmapped.raw(key, raw),
    }
}

fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

/// Why a record could not be mapped.
#[derive(Debug)]
pub(crate) struct Bad {
    pub field: &'static str,
    pub reason: String,
}

pub(crate) fn bad(field: &'static str, reason: impl Into<String>) -> Bad {
    Bad {
        field,
        reason: reason.into(),
    }
}

/// A JSON string, borrowed unless it holds escapes; `None` for `null` and `""`.
pub(crate) fn text<'a>(field: &'static str, raw: &'a RawValue) -> Result<Option<Str<'a>>, Bad> {
    let json = raw.get();
    if json == "null" {
        return Ok(None);
    }
    let value: Str<'a> = match serde_json::from_str::<&'a str>(json) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => match serde_json::from_str::<String>(json) {
            Ok(s) => Cow::Owned(s),
            Err(_) => return Err(bad(field, format!("expected a string, found {json:.64}"))),
        },
    };
    Ok((!value.is_empty()).then_some(value))
}

/// A string array (`null` and empty strings left out).
pub(crate) fn texts<'a>(field: &'static str, raw: &'a RawValue) -> Result<Vec<Str<'a>>, Bad> {
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    let items: Vec<&'a RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| bad(field, format!("expected an array, found {:.64}", raw.get())))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if let Some(s) = text(field, item)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// An RFC 3339 timestamp in OCSF's range as epoch ms; `Ok(None)` when absent,
/// `Err` when present and not one.
pub(crate) fn timestamp(field: &'static str, raw: &RawValue) -> Result<Option<i64>, Bad> {
    let Some(s) = text(field, raw)? else {
        return Ok(None);
    };
    match parse_rfc3339_ms(&s) {
        Some(ms) if (MIN_MS..MAX_MS).contains(&ms) => Ok(Some(ms)),
        Some(_) => Err(bad(field, format!("{s:.64} is outside 2000-2099"))),
        None => Err(bad(field, format!("{s:.64} is not an RFC 3339 timestamp"))),
    }
}

/// A JSON number (or a number in a string, as some exporters write them).
pub(crate) fn number(field: &'static str, raw: &RawValue) -> Result<Option<f64>, Bad> {
    let json = raw.get();
    if json == "null" {
        return Ok(None);
    }
    let s = json.trim_matches('"');
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| bad(field, format!("expected a number, found {json:.64}")))
}

/// The fields of a JSON object value.
pub(crate) fn object<'a>(field: &'static str, raw: &'a RawValue) -> Result<Fields<'a>, Bad> {
    serde_json::from_str(raw.get()).map_err(|_| {
        bad(
            field,
            format!("expected an object, found {:.64}", raw.get()),
        )
    })
}

/// `field` as an integer; `None` for `null`.
pub(crate) fn integer(field: &'static str, raw: &RawValue) -> Result<Option<i64>, Bad> {
    match raw.get() {
        "null" => Ok(None),
        json => json
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(field, format!("expected an integer, found {json:.64}"))),
    }
}
