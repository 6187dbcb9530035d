//! Which instruction set the kernel runs with: the best the CPU has, unless the
//! `GPUCOMPARE_SIMD` environment variable asks for a lesser one.

use std::sync::OnceLock;

/// The environment variable that caps the instruction set: `portable`, `avx2` or
/// `avx512`.
pub const SIMD_ENV: &str = "GPUCOMPARE_SIMD";

/// An instruction set the native kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Simd {
    /// Plain Rust, vectorised by the compiler for the build's target, no FMA.
    Portable,
    /// AVX2 with FMA, 8 lanes.
    Avx2,
    /// AVX-512 (F), 16 lanes.
    Avx512,
}

impl Simd {
    pub const ALL: [Simd; 3] = [Simd::Portable, Simd::Avx2, Simd::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
        }
    }

    /// The CPU backend's name with this instruction set, for logs.
    pub fn backend_name(self) -> &'static str {
        match self {
            Simd::Portable => "native kernel, portable",
            Simd::Avx2 => "native kernel, AVX2",
            Simd::Avx512 => "native kernel, AVX-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Simd> {
        Simd::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether this CPU can run the kernel compiled for this instruction set.
    pub fn supported(self) -> bool {
        match self {
            Simd::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => {
                Simd::Avx2.supported() && std::arch::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The instruction sets this CPU can run, lowest first.
    pub fn available() -> Vec<Simd> {
        Simd::ALL.into_iter().filter(|s| s.supported()).collect()
    }

    /// The best instruction set this CPU has at or below `cap`.
    pub fn best_up_to(cap: Simd) -> Simd {
        Simd::available()
            .into_iter()
            .filter(|s| *s <= cap)
            .max()
            .unwrap_or(Simd::Portable)
    }

    /// The instruction set scoring uses: the best this CPU has, capped by
    /// [`SIMD_ENV`] when set to a known name. Read once per process.
    pub fn active() -> Simd {
        static ACTIVE: OnceLock<Simd> = OnceLock::new();
        *ACTIVE.get_or_init(|| Simd::for_setting(std::env::var(SIMD_ENV).ok().as_deref()))
    }

    /// The instruction set for a value of [`SIMD_ENV`]: the best at or below the one
    /// named, or the best of all when unset or unknown.
    pub fn for_setting(value: Option<&str>) -> Simd {
        Simd::best_up_to(value.and_then(Simd::from_name).unwrap_or(Simd::Avx512))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_portable_kernel_is_always_there() {
        for s in Simd::ALL {
            assert_eq!(Simd::from_name(s.name()), Some(s));
        }
        assert_eq!(Simd::from_name(" AVX2 "), Some(Simd::Avx2));
        assert_eq!(Simd::from_name("sse"), None);
        assert!(Simd::available().contains(&Simd::Portable));
        assert_eq!(Simd::best_up_to(Simd::Portable), Simd::Portable);
        assert!(Simd::available().contains(&Simd::active()));
        let best = *Simd::available().last().unwrap();
        assert_eq!(Simd::for_setting(None), best);
        assert_eq!(Simd::for_setting(Some("nonsense")), best);
        assert_eq!(Simd::for_setting(Some("portable")), Simd::Portable);
        for s in Simd::available() {
            assert_eq!(Simd::for_setting(Some(s.name())), s);
        }
    }
}
