//! `similarity-alert`: a pair's metric fell below its threshold.

use gst::ClockTime;

use super::{Field, ParseError, Reader, Value, some, structure};
use crate::scoring::Metric;

const NAME: &str = "similarity-alert";

#[derive(Clone, Debug, PartialEq)]
pub struct SimilarityAlert {
    pub frame: u64,
    pub pts: Option<ClockTime>,
    pub metric: Metric,
    pub value: f64,
    pub threshold: f64,
}

impl SimilarityAlert {
    pub fn fields(&self) -> Vec<Field> {
        vec![
            some("frame", Value::U64(self.frame)),
            some("pts", Value::Time(self.pts)),
            some("metric", Value::Str(self.metric.name().into())),
            some("value", Value::F64(self.value)),
            some("threshold", Value::F64(self.threshold)),
        ]
    }
}

impl From<&SimilarityAlert> for gst::Structure {
    fn from(a: &SimilarityAlert) -> Self {
        structure(NAME, &a.fields())
    }
}

impl TryFrom<&gst::StructureRef> for SimilarityAlert {
    type Error = ParseError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, ParseError> {
        let r = Reader::new(s, NAME)?;
        let metric: String = r.get("metric")?;
        Ok(SimilarityAlert {
            frame: r.get("frame")?,
            pts: r.time("pts")?,
            metric: Metric::from_name(&metric)
                .ok_or_else(|| ParseError(format!("unknown metric '{metric}'")))?,
            value: r.get("value")?,
            threshold: r.get("threshold")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        gst::init().unwrap();
        let a = SimilarityAlert {
            frame: 7,
            pts: Some(ClockTime::from_mseconds(280)),
            metric: Metric::Psnr,
            value: 31.5,
            threshold: 35.0,
        };
        let s = gst::Structure::from(&a);
        assert_eq!(s.get::<u64>("pts"), Ok(280_000_000));
        assert_eq!(SimilarityAlert::try_from(s.as_ref()), Ok(a.clone()));
        let none = SimilarityAlert { pts: None, ..a };
        let s = gst::Structure::from(&none);
        assert_eq!(s.get::<u64>("pts"), Ok(u64::MAX));
        assert_eq!(SimilarityAlert::try_from(s.as_ref()), Ok(none));
        let other = gst::Structure::new_empty("similarity");
        assert!(SimilarityAlert::try_from(other.as_ref()).is_err());
    }
}
