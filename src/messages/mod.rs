//! The messages the elements post, as types for Rust applications: build one from a bus
//! message's structure with `TryFrom<&gst::StructureRef>`, and the elements build their
//! structures with `From<…> for gst::Structure`.
//!
//! Each type lists its fields once ([`Field`]s in message order); the structure, the
//! parser and `comparesink`'s stats file all follow that list.

mod alert;
mod similarity;
mod summary;
mod vram_tier;

pub use alert::SimilarityAlert;
pub use similarity::{MetricValues, ModelSeen, PlaneValues, Similarity};
pub use summary::{Pooled, SimilaritySummary};
pub use vram_tier::VramTier;

use std::fmt;

use gst::ClockTime;

use crate::scoring::Metric;

/// A field value, typed as in the message.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U64(u64),
    /// A `GstClockTime`: `None` is `GST_CLOCK_TIME_NONE` in messages, empty in files.
    Time(Option<ClockTime>),
    U32(u32),
    I32(i32),
    F64(f64),
    Bool(bool),
    Str(String),
}

/// A named field; `None` where the message has no value (it leaves the field out, the
/// stats file leaves the cell empty).
pub type Field = (String, Option<Value>);

/// Why a structure is not the message asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl Value {
    /// As JSON: times in nanoseconds (`null` when unknown); JSON has no infinity, so an
    /// infinite PSNR (identical frames) is the string `"inf"`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Time(v) => v.map(|t| t.nseconds()).into(),
            Value::U64(v) => (*v).into(),
            Value::U32(v) => (*v).into(),
            Value::I32(v) => (*v).into(),
            Value::F64(v) if !v.is_finite() => v.to_string().into(),
            Value::F64(v) => (*v).into(),
            Value::Bool(v) => (*v).into(),
            Value::Str(v) => v.as_str().into(),
        }
    }
}

/// The fields that have values, as one JSON object in field order.
pub fn json_object(fields: &[Field]) -> serde_json::Map<String, serde_json::Value> {
    fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.to_json())))
        .collect()
}

/// Builds a structure from the fields that have values.
pub(crate) fn structure(name: &str, fields: &[Field]) -> gst::Structure {
    let mut b = gst::Structure::builder(name);
    for (key, value) in fields {
        let Some(value) = value else { continue };
        let key = key.as_str();
        b = match value {
            Value::U64(v) => b.field(key, *v),
            Value::Time(v) => b.field(key, *v),
            Value::U32(v) => b.field(key, *v),
            Value::I32(v) => b.field(key, *v),
            Value::F64(v) => b.field(key, *v),
            Value::Bool(v) => b.field(key, *v),
            Value::Str(v) => b.field(key, v.as_str()),
        };
    }
    b.build()
}

/// Reads structures of one name, with errors that say which field is wrong.
pub(crate) struct Reader<'a>(&'a gst::StructureRef);

impl<'a> Reader<'a> {
    pub fn new(s: &'a gst::StructureRef, name: &str) -> Result<Self, ParseError> {
        if s.name() != name {
            return Err(ParseError(format!(
                "'{}' is not a '{name}' message",
                s.name()
            )));
        }
        Ok(Reader(s))
    }

    pub fn get<T>(&self, field: &str) -> Result<T, ParseError>
    where
        T: for<'v> gst::glib::value::FromValue<'v> + 'static,
    {
        self.0
            .get::<T>(field)
            .map_err(|e| ParseError(format!("'{}' has no valid '{field}': {e}", self.0.name())))
    }

    /// A field that may be left out.
    pub fn optional<T>(&self, field: &str) -> Result<Option<T>, ParseError>
    where
        T: for<'v> gst::glib::value::FromValue<'v> + 'static,
    {
        if self.0.has_field(field) {
            self.get(field).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn time(&self, field: &str) -> Result<Option<ClockTime>, ParseError> {
        self.get::<Option<ClockTime>>(field)
    }

    pub fn names(&self) -> impl Iterator<Item = &'a str> {
        self.0.fields().map(|f| f.as_str())
    }
}

/// The per-plane values of a structure: each field `split` names as (metric, plane), in
/// the order the planes first appear.
pub(crate) fn plane_values(
    r: &Reader<'_>,
    split: impl Fn(&str) -> Option<(Metric, &str)>,
) -> Result<Vec<PlaneValues>, ParseError> {
    let mut planes: Vec<PlaneValues> = Vec::new();
    for name in r.names() {
        let Some((m, plane)) = split(name) else {
            continue;
        };
        let value = r.get::<f64>(name)?;
        let i = match planes.iter().position(|p| p.name == plane) {
            Some(i) => i,
            None => {
                planes.push(PlaneValues {
                    name: plane.into(),
                    values: MetricValues::default(),
                });
                planes.len() - 1
            }
        };
        planes[i].values.set(m, Some(value));
    }
    Ok(planes)
}

/// A field with a value.
pub(crate) fn some(name: &str, value: Value) -> Field {
    (name.to_string(), Some(value))
}
