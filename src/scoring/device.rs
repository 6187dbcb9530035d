//! Where the engine scores: device names, and which CUDA device `auto` picks.
//!
//! CUDA and NVML number GPUs differently: CUDA sees only the devices `CUDA_VISIBLE_DEVICES`
//! lists, in its order, and by default puts the fastest first, while NVML numbers every GPU
//! by PCI bus. The two are matched by PCI bus id.

use std::fmt;
use std::str::FromStr;

use crate::memory::all_devices;
use crate::memory::cuda::cuda_runtime;

/// A device the engine can score on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// A CUDA ordinal, as the CUDA runtime (and libtorch) numbers devices.
    Cuda(usize),
}

impl Device {
    pub fn is_cuda(self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

impl fmt::Display for Device {
    /// `cpu` or `cuda:N`, as messages report it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// What the `device` setting asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// The CUDA device with the most free memory when there is one, else the CPU.
    Auto,
    Exact(Device),
}

impl FromStr for DeviceRequest {
    type Err = String;

    /// `auto`, `cpu`, `cuda` (device 0) or `cuda:N`.
    fn from_str(name: &str) -> Result<Self, String> {
        let exact = match name {
            "auto" => return Ok(DeviceRequest::Auto),
            "cpu" => Some(Device::Cpu),
            "cuda" => Some(Device::Cuda(0)),
            _ => name
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(Device::Cuda),
        };
        exact
            .map(DeviceRequest::Exact)
            .ok_or_else(|| format!("invalid device '{name}': expected auto, cpu, cuda or cuda:N"))
    }
}

/// Parses an exact device name: `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(name: &str) -> Option<Device> {
    match name.parse() {
        Ok(DeviceRequest::Exact(d)) => Some(d),
        _ => None,
    }
}

/// A PCI address, domain:bus:device.function. NVML writes the domain with eight hex digits
/// ("00000000:3B:00.0"), CUDA with four ("0000:3b:00.0"); both parse to the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PciBusId {
    pub domain: u32,
    pub bus: u32,
    pub device: u32,
    pub function: u32,
}

impl FromStr for PciBusId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a PCI bus id (domain:bus:device.function)");
        let hex = |v: &str| u32::from_str_radix(v.trim(), 16).map_err(|_| bad());
        let mut parts = s.trim().trim_end_matches('\0').split(':');
        let (Some(domain), Some(bus), Some(rest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (device, function) = rest.split_once('.').ok_or_else(bad)?;
        Ok(PciBusId {
            domain: hex(domain)?,
            bus: hex(bus)?,
            device: hex(device)?,
            function: hex(function)?,
        })
    }
}

/// One GPU as NVML sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NvmlGpu {
    /// NVML's index (what the memory monitor opens).
    pub index: u32,
    pub bus_id: PciBusId,
    pub free_bytes: u64,
}

/// The NVML GPU that is CUDA device `ordinal`, matched by bus id (`cuda[i]` is CUDA
/// ordinal i's bus id, when the runtime could tell).
pub fn nvml_gpu_of(ordinal: usize, cuda: &[Option<PciBusId>], nvml: &[NvmlGpu]) -> Option<NvmlGpu> {
    let bus = cuda.get(ordinal).copied().flatten()?;
    nvml.iter().find(|g| g.bus_id == bus).copied()
}

/// The CUDA ordinal with the most free memory. With one device, or when a CUDA device
/// cannot be matched to an NVML reading, it is CUDA's first device.
pub fn roomiest_cuda_device(cuda: &[Option<PciBusId>], nvml: &[NvmlGpu]) -> Option<usize> {
    if cuda.is_empty() {
        return None;
    }
    let free: Option<Vec<u64>> = (0..cuda.len())
        .map(|i| nvml_gpu_of(i, cuda, nvml).map(|g| g.free_bytes))
        .collect();
    let Some(free) = free else {
        return Some(0);
    };
    // The first of equals: CUDA's own preference breaks ties.
    let best = free
        .iter()
        .enumerate()
        .fold(0, |best, (i, f)| if *f > free[best] { i } else { best });
    Some(best)
}

/// The bus ids of the first `count` CUDA devices (from the CUDA runtime) and what NVML
/// sees: both empty where they cannot be read.
pub fn cuda_view(count: usize) -> (Vec<Option<PciBusId>>, Vec<NvmlGpu>) {
    let cuda = match cuda_runtime() {
        Ok(rt) => (0..count)
            .map(|i| rt.pci_bus_id(i).and_then(|s| s.parse().ok()))
            .collect(),
        Err(_) => vec![None; count],
    };
    let nvml = all_devices()
        .into_iter()
        .filter_map(|g| {
            Some(NvmlGpu {
                index: g.index,
                bus_id: g.bus_id.parse().ok()?,
                free_bytes: g.reading.free_bytes,
            })
        })
        .collect();
    (cuda, nvml)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus(s: &str) -> PciBusId {
        s.parse().unwrap()
    }

    #[test]
    fn device_names() {
        assert_eq!(parse_device("cpu"), Some(Device::Cpu));
        assert_eq!(parse_device("cuda"), Some(Device::Cuda(0)));
        assert_eq!(parse_device("cuda:3"), Some(Device::Cuda(3)));
        assert_eq!(parse_device("cuda:x"), None);
        assert_eq!(parse_device("gpu"), None);
        assert_eq!(parse_device("auto"), None);
        assert_eq!("auto".parse(), Ok(DeviceRequest::Auto));
        assert!(
            "gpu"
                .parse::<DeviceRequest>()
                .unwrap_err()
                .contains("cuda:N")
        );
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
        assert_eq!(Device::Cpu.to_string(), "cpu");
    }

    #[test]
    fn nvml_and_cuda_bus_ids_are_the_same_address() {
        assert_eq!(bus("00000000:3B:00.0"), bus("0000:3b:00.0"));
        assert_ne!(bus("00000000:3B:00.0"), bus("00000000:3B:00.1"));
        assert_eq!(bus("0001:af:1f.7\0").domain, 1);
        for bad in ["", "3B:00.0", "0000:3B:00", "0000:zz:00.0", "0:1:2:3.4"] {
            assert!(bad.parse::<PciBusId>().is_err(), "{bad}");
        }
    }

    /// Four GPUs by NVML (bus order); the process runs with `CUDA_VISIBLE_DEVICES=3,1`, so
    /// CUDA sees NVML's 3 as ordinal 0 and NVML's 1 as ordinal 1.
    fn four_gpus(free: [u64; 4]) -> (Vec<Option<PciBusId>>, Vec<NvmlGpu>) {
        let ids = [
            "00000000:1A:00.0",
            "00000000:3B:00.0",
            "00000000:88:00.0",
            "00000000:AF:00.0",
        ];
        let nvml = (0..4)
            .map(|i| NvmlGpu {
                index: i as u32,
                bus_id: bus(ids[i]),
                free_bytes: free[i],
            })
            .collect();
        let cuda = vec![Some(bus("0000:af:00.0")), Some(bus("0000:3b:00.0"))];
        (cuda, nvml)
    }

    #[test]
    fn the_roomiest_device_is_matched_by_bus_id_under_cuda_visible_devices() {
        // NVML's GPU 2 has the most free memory, but CUDA cannot see it; of the visible
        // ones NVML's 1 has more, and it is CUDA ordinal 1 (not NVML index 2, nor 1 by
        // chance of numbering).
        let (cuda, nvml) = four_gpus([10, 50, 90, 20]);
        assert_eq!(roomiest_cuda_device(&cuda, &nvml), Some(1));
        assert_eq!(nvml_gpu_of(1, &cuda, &nvml).map(|g| g.index), Some(1));
        // The other way round: NVML's 3 is CUDA ordinal 0, and its monitor is NVML 3.
        let (cuda, nvml) = four_gpus([10, 20, 90, 50]);
        assert_eq!(roomiest_cuda_device(&cuda, &nvml), Some(0));
        assert_eq!(nvml_gpu_of(0, &cuda, &nvml).map(|g| g.index), Some(3));
    }

    #[test]
    fn fastest_first_order_is_followed_by_bus_id_not_by_index() {
        // CUDA's default order put NVML's second GPU first.
        let nvml = vec![
            NvmlGpu {
                index: 0,
                bus_id: bus("00000000:01:00.0"),
                free_bytes: 100,
            },
            NvmlGpu {
                index: 1,
                bus_id: bus("00000000:02:00.0"),
                free_bytes: 5,
            },
        ];
        let cuda = vec![Some(bus("0000:02:00.0")), Some(bus("0000:01:00.0"))];
        assert_eq!(roomiest_cuda_device(&cuda, &nvml), Some(1));
    }

    #[test]
    fn without_a_match_the_first_cuda_device_is_used() {
        let (mut cuda, nvml) = four_gpus([10, 50, 90, 20]);
        cuda[1] = None;
        assert_eq!(roomiest_cuda_device(&cuda, &nvml), Some(0));
        assert_eq!(roomiest_cuda_device(&cuda, &[]), Some(0));
        assert_eq!(roomiest_cuda_device(&[], &nvml), None);
        // Ties go to CUDA's first.
        let (cuda, nvml) = four_gpus([0, 7, 0, 7]);
        assert_eq!(roomiest_cuda_device(&cuda, &nvml), Some(0));
    }
}
