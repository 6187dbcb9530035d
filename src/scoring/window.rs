//! The Gaussian window and the MS-SSIM scale plan.

/// Side of the Gaussian window.
pub const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;

/// MS-SSIM scale weights, finest scale first.
pub const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// The normalised 11-tap Gaussian (σ = 1.5).
pub fn gaussian() -> [f64; WINDOW] {
    let mut g = [0.0; WINDOW];
    let c = (WINDOW / 2) as f64;
    for (i, v) in g.iter_mut().enumerate() {
        let d = i as f64 - c;
        *v = (-(d * d) / (2.0 * SIGMA * SIGMA)).exp();
    }
    let sum: f64 = g.iter().sum();
    g.iter_mut().for_each(|v| *v /= sum);
    g
}

/// Size of a side after one 2×2 average pooling with zero padding on odd sides.
pub fn pooled(n: usize) -> usize {
    n / 2 + n % 2
}

/// How many MS-SSIM scales fit an image: at most five, each at least one window wide.
/// 0 when the image itself is smaller than the window.
pub fn ms_ssim_scales(width: usize, height: usize) -> u32 {
    let (mut w, mut h) = (width, height);
    let mut scales = 0;
    while scales < MS_SSIM_WEIGHTS.len() as u32 && w >= WINDOW && h >= WINDOW {
        scales += 1;
        w = pooled(w);
        h = pooled(h);
    }
    scales
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_is_normalised_and_symmetric() {
        let g = gaussian();
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..WINDOW {
            assert!((g[i] - g[WINDOW - 1 - i]).abs() < 1e-15);
        }
        assert!(g[5] > g[4] && g[4] > g[0]);
    }

    #[test]
    fn scale_plan() {
        assert_eq!(ms_ssim_scales(10, 100), 0);
        assert_eq!(ms_ssim_scales(11, 11), 1);
        assert_eq!(ms_ssim_scales(21, 21), 2); // 21 -> 11
        assert_eq!(ms_ssim_scales(20, 20), 1); // 20 -> 10
        assert_eq!(ms_ssim_scales(176, 176), 5);
        assert_eq!(ms_ssim_scales(1920, 1080), 5);
        assert_eq!(pooled(5), 3);
        assert_eq!(pooled(6), 3);
    }
}
