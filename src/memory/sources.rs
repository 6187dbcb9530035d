//! The memory sources: NVML, libtorch's CUDA runtime, simulated, none.

use std::sync::OnceLock;

use super::{Reading, SimulatedUsage, SourceKind, Unavailable};

/// The total a simulated GPU reports: 16 GiB.
pub const SIMULATED_TOTAL_BYTES: u64 = 16 << 30;

pub(super) trait Source: Send {
    fn kind(&self) -> SourceKind;
    /// A fresh reading; `None` when it failed this time.
    fn read(&self) -> Option<Reading>;
}

pub(super) struct Simulated(pub SimulatedUsage);

impl Simulated {
    pub fn reading(&self) -> Reading {
        let used = (self.0.get() * SIMULATED_TOTAL_BYTES as f64).round() as u64;
        let mut r = Reading::from_free_total(
            SIMULATED_TOTAL_BYTES - used.min(SIMULATED_TOTAL_BYTES),
            SIMULATED_TOTAL_BYTES,
            SourceKind::Simulated,
        );
        r.usage = self.0.get();
        r
    }
}

impl Source for Simulated {
    fn kind(&self) -> SourceKind {
        SourceKind::Simulated
    }

    fn read(&self) -> Option<Reading> {
        Some(self.reading())
    }
}

pub(super) struct NoSource;

impl Source for NoSource {
    fn kind(&self) -> SourceKind {
        SourceKind::None
    }

    fn read(&self) -> Option<Reading> {
        None
    }
}

/// The process's one NVML handle (initialising NVML is expensive), or why there is none.
pub fn nvml_status() -> Result<&'static nvml_wrapper::Nvml, &'static str> {
    static NVML: OnceLock<Result<nvml_wrapper::Nvml, String>> = OnceLock::new();
    NVML.get_or_init(|| {
        nvml_wrapper::Nvml::init().map_err(|e| format!("NVML is not available ({e})"))
    })
    .as_ref()
    .map_err(|e| e.as_str())
}

pub(super) struct Nvml {
    device: u32,
}

impl Nvml {
    pub fn open(device: u32) -> Result<Nvml, Unavailable> {
        let nvml = nvml_status().map_err(|e| Unavailable(e.to_string()))?;
        let count = nvml
            .device_count()
            .map_err(|e| Unavailable(format!("NVML cannot count devices ({e})")))?;
        if device >= count {
            return Err(Unavailable(format!(
                "NVML sees {count} GPUs, there is no GPU {device}"
            )));
        }
        let source = Nvml { device };
        source
            .read()
            .ok_or_else(|| Unavailable(format!("NVML cannot read the memory of GPU {device}")))?;
        Ok(source)
    }

    fn read_device(nvml: &nvml_wrapper::Nvml, device: u32) -> Option<Reading> {
        let info = nvml.device_by_index(device).ok()?.memory_info().ok()?;
        Some(Reading::from_free_total(
            info.free,
            info.total,
            SourceKind::Nvml,
        ))
    }

    pub fn all() -> Vec<Reading> {
        let Ok(nvml) = nvml_status() else {
            return Vec::new();
        };
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|d| Self::read_device(nvml, d))
            .collect()
    }
}

impl Source for Nvml {
    fn kind(&self) -> SourceKind {
        SourceKind::Nvml
    }

    fn read(&self) -> Option<Reading> {
        Self::read_device(nvml_status().ok()?, self.device)
    }
}

type CudaSetDevice = unsafe extern "C" fn(i32) -> i32;
type CudaMemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> i32;

/// The CUDA runtime libtorch uses (cudaMemGetInfo), when libtorch has a CUDA device.
pub(super) struct Cuda {
    device: i32,
    set_device: CudaSetDevice,
    mem_get_info: CudaMemGetInfo,
    _lib: libloading::Library,
}

impl Cuda {
    pub fn open(device: u32) -> Result<Cuda, Unavailable> {
        if !tch::Cuda::is_available() {
            return Err(Unavailable("libtorch has no CUDA device".into()));
        }
        if device as i64 >= tch::Cuda::device_count() {
            return Err(Unavailable(format!("libtorch has no CUDA device {device}")));
        }
        let err = |e: libloading::Error| Unavailable(format!("cannot use the CUDA runtime ({e})"));
        // SAFETY: loading the CUDA runtime libtorch already loaded; the symbols have the
        // signatures of the CUDA runtime API.
        unsafe {
            let lib = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]
                .iter()
                .find_map(|name| libloading::Library::new(name).ok())
                .ok_or_else(|| Unavailable("the CUDA runtime library is not loadable".into()))?;
            let set_device = *lib.get::<CudaSetDevice>(b"cudaSetDevice\0").map_err(err)?;
            let mem_get_info = *lib
                .get::<CudaMemGetInfo>(b"cudaMemGetInfo\0")
                .map_err(err)?;
            let source = Cuda {
                device: device as i32,
                set_device,
                mem_get_info,
                _lib: lib,
            };
            source
                .read()
                .ok_or_else(|| Unavailable("cudaMemGetInfo failed".into()))?;
            Ok(source)
        }
    }
}

impl Source for Cuda {
    fn kind(&self) -> SourceKind {
        SourceKind::Cuda
    }

    fn read(&self) -> Option<Reading> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out-pointers; the functions come from the loaded runtime, which
        // `_lib` keeps loaded.
        let ok = unsafe {
            (self.set_device)(self.device) == 0 && (self.mem_get_info)(&mut free, &mut total) == 0
        };
        ok.then(|| Reading::from_free_total(free as u64, total as u64, SourceKind::Cuda))
    }
}
