//! `vram-tier`: `vramscale` started at, or switched to, a quality tier.

use gst::ClockTime;

use super::{Field, ParseError, Reader, Value, some, structure};

const NAME: &str = "vram-tier";

#[derive(Clone, Debug, PartialEq)]
pub struct VramTier {
    pub tier: String,
    /// GPU memory usage, 0-1.
    pub usage: f64,
    pub used_bytes: u64,
    pub total_bytes: u64,
    /// Where the reading came from: nvml, cuda, simulated or none.
    pub source: String,
    /// The output size at this tier (0×0 before caps are known).
    pub width: u32,
    pub height: u32,
    /// The tier's JPEG-quality hint.
    pub quality: u32,
    pub running_time: Option<ClockTime>,
}

impl VramTier {
    pub fn fields(&self) -> Vec<Field> {
        vec![
            some("tier", Value::Str(self.tier.clone())),
            some("usage", Value::F64(self.usage)),
            some("used-bytes", Value::U64(self.used_bytes)),
            some("total-bytes", Value::U64(self.total_bytes)),
            some("source", Value::Str(self.source.clone())),
            some("width", Value::I32(self.width as i32)),
            some("height", Value::I32(self.height as i32)),
            some("quality", Value::I32(self.quality as i32)),
            some("running-time", Value::Time(self.running_time)),
        ]
    }
}

impl From<&VramTier> for gst::Structure {
    fn from(t: &VramTier) -> Self {
        structure(NAME, &t.fields())
    }
}

impl TryFrom<&gst::StructureRef> for VramTier {
    type Error = ParseError;

    fn try_from(s: &gst::StructureRef) -> Result<Self, ParseError> {
        let r = Reader::new(s, NAME)?;
        let size = |f| r.get::<i32>(f).map(|v| v.max(0) as u32);
        Ok(VramTier {
            tier: r.get("tier")?,
            usage: r.get("usage")?,
            used_bytes: r.get("used-bytes")?,
            total_bytes: r.get("total-bytes")?,
            source: r.get("source")?,
            width: size("width")?,
            height: size("height")?,
            quality: size("quality")?,
            running_time: r.time("running-time")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        gst::init().unwrap();
        let t = VramTier {
            tier: "medium".into(),
            usage: 0.85,
            used_bytes: 85,
            total_bytes: 100,
            source: "simulated".into(),
            width: 800,
            height: 450,
            quality: 85,
            running_time: Some(ClockTime::from_seconds(2)),
        };
        let s = gst::Structure::from(&t);
        assert_eq!(s.get::<i32>("width"), Ok(800));
        assert_eq!(VramTier::try_from(s.as_ref()), Ok(t.clone()));
        let t = VramTier {
            running_time: None,
            ..t
        };
        assert_eq!(VramTier::try_from(gst::Structure::from(&t).as_ref()), Ok(t));
    }
}
