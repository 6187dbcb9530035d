//! Per-pixel quality maps: where in the frame two images differ, returned by the backends
//! when [`super::Options::map`] asks for them (the heat-map).

use super::Metric;
use super::window::WINDOW;

/// What a map's values are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// The SSIM of the window centred on each pixel (1 = identical, lower = worse).
    Ssim,
    /// The squared difference of each sample (0 = identical, higher = worse).
    SquaredError,
}

impl MapKind {
    pub fn name(self) -> &'static str {
        match self {
            MapKind::Ssim => "ssim",
            MapKind::SquaredError => "squared-error",
        }
    }

    /// The metric whose pair score ranks maps of this kind (SSIM; MSE for squared error).
    pub fn metric(self) -> Metric {
        match self {
            MapKind::Ssim => Metric::Ssim,
            MapKind::SquaredError => Metric::Mse,
        }
    }

    /// Border pixels without a value: SSIM has none where its window leaves the frame.
    pub fn margin(self) -> usize {
        match self {
            MapKind::Ssim => WINDOW / 2,
            MapKind::SquaredError => 0,
        }
    }
}

/// One compared plane's map. `values` covers the valid region: the frame minus
/// [`MapKind::margin`] pixels on every side, row by row.
#[derive(Clone, Debug, PartialEq)]
pub struct QualityMap {
    pub kind: MapKind,
    /// The compared plane's size.
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
}

impl QualityMap {
    /// A map over the valid region of a `width`×`height` plane.
    pub fn new(kind: MapKind, width: usize, height: usize, values: Vec<f32>) -> Self {
        let map = QualityMap {
            kind,
            width,
            height,
            values,
        };
        debug_assert_eq!(map.values.len(), map.valid_width() * map.valid_height());
        map
    }

    pub fn valid_width(&self) -> usize {
        self.width.saturating_sub(2 * self.kind.margin())
    }

    pub fn valid_height(&self) -> usize {
        self.height.saturating_sub(2 * self.kind.margin())
    }

    /// The value at pixel (`x`, `y`) of the plane; `None` outside the valid region.
    pub fn at(&self, x: usize, y: usize) -> Option<f32> {
        let m = self.kind.margin();
        let (vx, vy) = (x.checked_sub(m)?, y.checked_sub(m)?);
        (vx < self.valid_width() && vy < self.valid_height())
            .then(|| self.values[vy * self.valid_width() + vx])
    }

    /// The mean of the maps of planes of the same size and kind as the first
    /// (`channels=all`: R, G and B; chroma planes of another size are left out).
    pub fn combine(maps: Vec<QualityMap>) -> Option<QualityMap> {
        let mut maps = maps.into_iter();
        let mut first = maps.next()?;
        let mut n = 1.0f32;
        for m in
            maps.filter(|m| (m.kind, m.width, m.height) == (first.kind, first.width, first.height))
        {
            first
                .values
                .iter_mut()
                .zip(&m.values)
                .for_each(|(a, b)| *a += b);
            n += 1.0;
        }
        if n > 1.0 {
            first.values.iter_mut().for_each(|v| *v /= n);
        }
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_maps_have_no_value_in_the_margin() {
        let map = QualityMap::new(MapKind::Ssim, 14, 12, (0..8).map(|v| v as f32).collect());
        assert_eq!((map.valid_width(), map.valid_height()), (4, 2));
        assert_eq!(map.at(4, 5), None);
        assert_eq!(map.at(5, 5), Some(0.0));
        assert_eq!(map.at(8, 6), Some(7.0));
        assert_eq!(map.at(9, 6), None);
        assert_eq!(map.at(5, 7), None);
    }

    #[test]
    fn combining_averages_planes_of_the_first_size() {
        let a = QualityMap::new(MapKind::SquaredError, 2, 1, vec![1.0, 3.0]);
        let b = QualityMap::new(MapKind::SquaredError, 2, 1, vec![3.0, 5.0]);
        let small = QualityMap::new(MapKind::SquaredError, 1, 1, vec![100.0]);
        let c = QualityMap::combine(vec![a, b, small]).unwrap();
        assert_eq!(c.values, vec![2.0, 4.0]);
        assert_eq!(QualityMap::combine(vec![]), None);
    }
}
