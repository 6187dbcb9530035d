//! The heat-map file (`heatmap-location`): the map of the worst-scoring pair as a PNG,
//! colour-mapped with viridis (dark = worse), the pixels without a value (the SSIM
//! window's margin) hatched in grey, and where it came from in PNG text chunks.

use std::fs::File;
use std::io::BufWriter;

use crate::scoring::{MapKind, QualityMap, Scores};

/// The worst pair so far and its map.
struct Worst {
    frame: u64,
    pts: Option<u64>,
    /// The pair's SSIM for an SSIM map, its MSE for a squared-error map.
    score: f64,
    map: QualityMap,
}

impl Worst {
    /// How bad the pair is: higher is worse, in either kind.
    fn badness(&self) -> f64 {
        match self.map.kind {
            MapKind::Ssim => -self.score,
            MapKind::SquaredError => self.score,
        }
    }
}

pub struct Heatmap {
    path: String,
    /// Opened when the element starts, so that an unwritable path fails at once.
    file: Option<File>,
    worst: Option<Worst>,
}

impl Heatmap {
    /// Creates (truncates) the file; the error says why it cannot be written.
    pub fn create(path: &str) -> std::io::Result<Self> {
        Ok(Heatmap {
            path: path.to_string(),
            file: Some(File::create(path)?),
            worst: None,
        })
    }

    /// Keeps `scores`' map (taken out of it) when its pair is the worst so far.
    pub fn offer(&mut self, frame: u64, pts: Option<u64>, scores: &mut Scores) {
        let Some(map) = scores.map.take() else {
            return;
        };
        let score = scores.get(map.kind.metric()).unwrap_or(1.0);
        let candidate = Worst {
            frame,
            pts,
            score,
            map,
        };
        if self
            .worst
            .as_ref()
            .is_none_or(|w| candidate.badness() > w.badness())
        {
            self.worst = Some(candidate);
        }
    }

    /// Writes the worst pair's map; `Ok(None)` when no pair was scored (the empty file is
    /// removed). Once only: later calls do nothing.
    pub fn finish(&mut self) -> Result<Option<u64>, String> {
        let Some(file) = self.file.take() else {
            return Ok(None);
        };
        let Some(worst) = self.worst.take() else {
            drop(file);
            let _ = std::fs::remove_file(&self.path);
            return Ok(None);
        };
        write_png(file, &worst).map_err(|e| format!("cannot write '{}': {e}", self.path))?;
        Ok(Some(worst.frame))
    }
}

/// A session that ends without end of stream (the pipeline stopped) still writes the worst
/// pair scored, as the stats file keeps every row: nothing scored is lost.
impl Drop for Heatmap {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Where a value falls on the colour map: 1 = identical (bright), 0 = worst (dark).
fn shade(map: &QualityMap) -> impl Fn(f32) -> f64 {
    let kind = map.kind;
    let worst = map.values.iter().copied().fold(0f32, f32::max) as f64;
    move |v| match kind {
        MapKind::Ssim => (v as f64).clamp(0.0, 1.0),
        // The RMS error, relative to the frame's largest.
        MapKind::SquaredError if worst > 0.0 => 1.0 - (v as f64 / worst).sqrt(),
        MapKind::SquaredError => 1.0,
    }
}

/// RGB pixels of the map at the compared size.
pub fn render(map: &QualityMap) -> Vec<u8> {
    let shade = shade(map);
    let mut rgb = Vec::with_capacity(map.width * map.height * 3);
    for y in 0..map.height {
        for x in 0..map.width {
            let c = match map.at(x, y) {
                Some(v) => {
                    let c = colorous::VIRIDIS.eval_continuous(shade(v));
                    [c.r, c.g, c.b]
                }
                // No value: a grey hatch that viridis never produces.
                None if (x / 2 + y / 2) % 2 == 0 => [200, 200, 200],
                None => [150, 150, 150],
            };
            rgb.extend_from_slice(&c);
        }
    }
    rgb
}

fn write_png(file: File, worst: &Worst) -> Result<(), png::EncodingError> {
    let map = &worst.map;
    let mut encoder = png::Encoder::new(BufWriter::new(file), map.width as u32, map.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Written while EOS waits: fast over small (a 4K map in well under a second).
    encoder.set_compression(png::Compression::Fast);
    let margin = map.kind.margin();
    let scale = match map.kind {
        MapKind::Ssim => "viridis(clamp(ssim, 0, 1)): dark = low SSIM".to_string(),
        MapKind::SquaredError => {
            "viridis(1 - sqrt(error / largest error)): dark = large error".to_string()
        }
    };
    let chunks = [
        ("Software", "gst-plugin-gpucompare comparesink".to_string()),
        ("frame", worst.frame.to_string()),
        (
            "pts",
            worst.pts.map_or("none".to_string(), |ns| ns.to_string()),
        ),
        ("metric", map.kind.metric().name().to_string()),
        ("score", worst.score.to_string()),
        ("map", map.kind.name().to_string()),
        ("colour-map", scale),
        (
            "valid-region",
            format!(
                "x={margin} y={margin} width={} height={} (grey hatch outside)",
                map.valid_width(),
                map.valid_height()
            ),
        ),
    ];
    for (keyword, text) in chunks {
        encoder.add_text_chunk(keyword.to_string(), text)?;
    }
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&render(map))?;
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(ssim: f64, map: QualityMap) -> Scores {
        Scores {
            mse: 0.0,
            psnr: f64::INFINITY,
            ssim: Some(ssim),
            ms_ssim: None,
            ms_ssim_scales: 0,
            vmaf: None,
            model: None,
            planes: Vec::new(),
            map: Some(map),
        }
    }

    #[test]
    fn keeps_the_lowest_ssim_and_writes_it_with_its_frame() {
        let dir = std::env::temp_dir().join(format!("heatmap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("worst.png");
        let mut h = Heatmap::create(path.to_str().unwrap()).unwrap();
        let map = |v: f32| QualityMap::new(MapKind::Ssim, 12, 11, vec![v; 2]);
        h.offer(0, Some(5), &mut scores(0.9, map(0.9)));
        h.offer(1, None, &mut scores(0.4, map(0.4)));
        h.offer(2, None, &mut scores(0.7, map(0.7)));
        assert_eq!(h.finish(), Ok(Some(1)));
        assert_eq!(h.finish(), Ok(None));
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (12, 11));
        let text: Vec<(String, String)> = info
            .uncompressed_latin1_text
            .iter()
            .map(|t| (t.keyword.clone(), t.text.clone()))
            .collect();
        assert!(text.contains(&("frame".into(), "1".into())), "{text:?}");
        assert!(text.contains(&("score".into(), "0.4".into())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_pair_leaves_no_file() {
        let dir = std::env::temp_dir().join(format!("heatmap-none-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("none.png");
        let mut h = Heatmap::create(path.to_str().unwrap()).unwrap();
        assert_eq!(h.finish(), Ok(None));
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn worse_is_darker_and_the_margin_is_grey() {
        let values = (0..4).map(|i| i as f32 / 3.0).collect();
        let map = QualityMap::new(MapKind::Ssim, 14, 11, values);
        let rgb = render(&map);
        let luma = |x: usize, y: usize| {
            let p = &rgb[(y * 14 + x) * 3..][..3];
            0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
        };
        assert!(luma(5, 5) < luma(6, 5) && luma(6, 5) < luma(8, 5));
        let corner = &rgb[..3];
        assert!(corner[0] == corner[1] && corner[1] == corner[2]);
    }
}
