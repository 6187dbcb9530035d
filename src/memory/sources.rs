//! The memory sources: NVML, libtorch's CUDA runtime, simulated, none.

use std::sync::OnceLock;

use super::cuda::{CudaRuntime, cuda_runtime};
use super::{GpuReading, Reading, SimulatedUsage, SourceKind, Unavailable};

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

    pub fn all() -> Vec<GpuReading> {
        let Ok(nvml) = nvml_status() else {
            return Vec::new();
        };
        let count = nvml.device_count().unwrap_or(0);
        (0..count)
            .filter_map(|index| {
                let bus_id = nvml.device_by_index(index).ok()?.pci_info().ok()?.bus_id;
                Some(GpuReading {
                    index,
                    bus_id,
                    reading: Self::read_device(nvml, index)?,
                })
            })
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

/// The CUDA runtime's view (cudaMemGetInfo), when there is a CUDA device.
pub(super) struct Cuda {
    device: usize,
    runtime: &'static CudaRuntime,
}

impl Cuda {
    pub fn open(device: u32) -> Result<Cuda, Unavailable> {
        let runtime = cuda_runtime().map_err(|e| Unavailable(e.to_string()))?;
        let count = runtime.device_count();
        if count == 0 {
            return Err(Unavailable("the CUDA runtime sees no CUDA device".into()));
        }
        if device as usize >= count {
            return Err(Unavailable(format!(
                "the CUDA runtime sees {count} CUDA devices, there is no device {device}"
            )));
        }
        let source = Cuda {
            device: device as usize,
            runtime,
        };
        source
            .read()
            .ok_or_else(|| Unavailable("cudaMemGetInfo failed".into()))?;
        Ok(source)
    }
}

impl Source for Cuda {
    fn kind(&self) -> SourceKind {
        SourceKind::Cuda
    }

    fn read(&self) -> Option<Reading> {
        let (free, total) = self.runtime.mem_get_info(self.device)?;
        Some(Reading::from_free_total(free, total, SourceKind::Cuda))
    }
}
