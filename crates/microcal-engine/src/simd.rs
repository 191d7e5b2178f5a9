//! Which instruction set the kernels run on, chosen once per process.
//!
//! Three paths: `portable` (plain Rust, no FMA: the same numbers on every CPU), `avx2` (AVX2
//! with fused multiply-add, the path that trained the committed results) and `avx512`
//! (AVX-512F: the matrix tile, the Winograd transforms and the first layer's taps on 16-lane
//! vectors, and the other kernels compiled for it). The best the CPU has is the default;
//! `MICROCAL_SIMD=portable|avx2|avx512` forces one, and is refused where the CPU lacks it.
//!
//! Numbers: `avx512` computes every element of a product with the same chain of fused
//! multiply-adds, in the same order, as `avx2`, and widens only loops whose lanes are
//! independent, so the two give the same bits; `portable` rounds each product before adding
//! it, so it differs from them in the last bits (tests compare it within a tolerance). Every results row records the path that trained it.

use std::sync::OnceLock;

/// The environment variable that forces a path.
pub const ENV: &str = "MICROCAL_SIMD";

/// An instruction-set path of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdPath {
    Portable,
    Avx2,
    Avx512,
}

/// A path that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimdError {
    #[error("{ENV}={value}: unknown path; valid values are portable, avx2 and avx512")]
    Unknown { value: String },
    #[error("{ENV}={path}: this CPU does not support it; it supports {available}")]
    Unsupported {
        path: &'static str,
        available: String,
    },
}

impl SimdPath {
    pub const ALL: [SimdPath; 3] = [SimdPath::Portable, SimdPath::Avx2, SimdPath::Avx512];

    /// The name rows, benchmarks and `MICROCAL_SIMD` use.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Portable => "portable",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// A path by its name, if this CPU supports it.
    pub fn parse(value: &str) -> Result<Self, SimdError> {
        let path = Self::ALL
            .into_iter()
            .find(|p| p.name() == value.trim())
            .ok_or_else(|| SimdError::Unknown {
                value: value.to_string(),
            })?;
        if !path.is_supported() {
            return Err(SimdError::Unsupported {
                path: path.name(),
                available: Self::available()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(path)
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            SimdPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx2 => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            SimdPath::Avx512 => {
                SimdPath::Avx2.is_supported() && std::is_x86_feature_detected!("avx512f")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU supports, portable first.
    pub fn available() -> Vec<SimdPath> {
        Self::ALL.into_iter().filter(|p| p.is_supported()).collect()
    }

    /// The fastest path this CPU supports.
    pub fn best() -> SimdPath {
        *Self::available()
            .last()
            .expect("portable is always supported")
    }
}

static ACTIVE: OnceLock<SimdPath> = OnceLock::new();

/// The path `MICROCAL_SIMD` asks for, or the best this CPU supports when it is unset.
fn from_env() -> Result<SimdPath, SimdError> {
    match std::env::var(ENV) {
        Ok(value) if !value.trim().is_empty() => SimdPath::parse(&value),
        _ => Ok(SimdPath::best()),
    }
}

/// Chooses the process's path from `MICROCAL_SIMD` (programs call this first, so that a
/// path the CPU lacks is refused with a clear message before any work).
pub fn select() -> Result<SimdPath, SimdError> {
    let wanted = from_env()?;
    Ok(*ACTIVE.get_or_init(|| wanted))
}

/// The process's path: as [`select`] chose it, or (where nothing selected one) the one
/// `MICROCAL_SIMD` names if the CPU supports it, else the best.
pub fn active() -> SimdPath {
    *ACTIVE.get_or_init(|| from_env().unwrap_or_else(|_| SimdPath::best()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unsupported_or_unknown_paths_are_refused() {
        for path in SimdPath::available() {
            assert_eq!(SimdPath::parse(path.name()), Ok(path));
        }
        let err = SimdPath::parse("avx1024").unwrap_err().to_string();
        assert!(err.contains("portable, avx2 and avx512"), "{err}");
        for path in SimdPath::ALL.into_iter().filter(|p| !p.is_supported()) {
            let err = SimdPath::parse(path.name()).unwrap_err().to_string();
            assert!(err.contains("does not support"), "{err}");
        }
        assert!(SimdPath::available().contains(&SimdPath::Portable));
        assert!(SimdPath::available().contains(&active()));
    }
}
