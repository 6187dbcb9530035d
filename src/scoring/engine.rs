//! The engine: picks the device and the backend, and scores batches of pairs within a
//! memory budget, recovering from allocation failures. Callers (the element, the command
//! line) talk only to this.

use super::device::{Device, DeviceRequest, cuda_view, nvml_gpu_of, roomiest_cuda_device};
use super::{Error, FaultInjection, ImageView, Options, Recovery, Scored, native};

#[cfg(feature = "torch")]
use super::{budgeted::BudgetedScorer, torch};

/// Which implementation scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// libtorch on a CUDA device, the native kernel on the CPU.
    #[default]
    Auto,
    /// The native multi-threaded kernel (CPU only).
    Native,
    /// libtorch, on the chosen device.
    Libtorch,
}

enum Backend {
    Native,
    #[cfg(feature = "torch")]
    Torch(Box<BudgetedScorer>),
}

pub struct Engine {
    backend: Backend,
    device: Device,
    monitor_index: u32,
    /// Pairs scored together at most.
    batch_size: usize,
}

/// Why a build without libtorch cannot do what was asked.
#[cfg(not(feature = "torch"))]
fn without_libtorch(what: &str) -> Error {
    Error::Backend(format!(
        "{what} needs libtorch (the CUDA path), and this build of the plugin has none: it \
         was built without the 'torch' cargo feature. Use backend=native device=cpu, or \
         rebuild with the default features"
    ))
}

/// CUDA devices libtorch can use (0 without the `torch` feature).
fn cuda_devices() -> usize {
    #[cfg(feature = "torch")]
    return torch::cuda_device_count();
    #[cfg(not(feature = "torch"))]
    0
}

impl Engine {
    /// Resolves the `device` and `backend` settings. `faults` makes device allocations
    /// fail on request (for testing recovery). The error is a user-facing sentence.
    pub fn new(
        device: &str,
        backend: BackendChoice,
        faults: FaultInjection,
    ) -> Result<Self, Error> {
        let request: DeviceRequest = device.parse().map_err(Error::Backend)?;
        // Only a request that can end on a GPU asks the CUDA runtime and NVML.
        let may_use_cuda = match request {
            DeviceRequest::Auto => backend != BackendChoice::Native,
            DeviceRequest::Exact(d) => d.is_cuda(),
        };
        let count = if may_use_cuda { cuda_devices() } else { 0 };
        let (cuda, nvml) = if count > 0 {
            cuda_view(count)
        } else {
            Default::default()
        };
        let device = match request {
            DeviceRequest::Auto => match (backend, roomiest_cuda_device(&cuda, &nvml)) {
                (BackendChoice::Native, _) | (_, None) => Device::Cpu,
                (_, Some(n)) => Device::Cuda(n),
            },
            DeviceRequest::Exact(d) => d,
        };
        #[cfg(not(feature = "torch"))]
        if device.is_cuda() {
            return Err(without_libtorch(&format!("device={device}")));
        }
        let use_torch = match (device, backend) {
            (Device::Cpu, BackendChoice::Libtorch) => true,
            (Device::Cpu, _) => false,
            (Device::Cuda(_), BackendChoice::Native) => {
                return Err(Error::Backend(format!(
                    "backend=native runs on the CPU only; use device=cpu, or backend=auto to \
                     score on {device}"
                )));
            }
            (Device::Cuda(_), _) => true,
        };
        let monitor_index = match device {
            Device::Cuda(n) => nvml_gpu_of(n, &cuda, &nvml).map_or(n as u32, |g| g.index),
            Device::Cpu => 0,
        };
        let backend = if use_torch {
            Self::torch_backend(device, faults)?
        } else {
            Backend::Native
        };
        Ok(Engine {
            backend,
            device,
            monitor_index,
            batch_size: 1,
        })
    }

    /// Scores up to `n` pairs together (the libtorch backend; the native kernel scores one
    /// pair at a time, each with every core).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    #[cfg(feature = "torch")]
    fn torch_backend(device: Device, faults: FaultInjection) -> Result<Backend, Error> {
        let scorer = torch::TorchScorer::new(device)?.with_faults(faults);
        Ok(Backend::Torch(Box::new(BudgetedScorer::new(scorer))))
    }

    #[cfg(not(feature = "torch"))]
    fn torch_backend(device: Device, _faults: FaultInjection) -> Result<Backend, Error> {
        Err(without_libtorch(
            match device {
                Device::Cpu => "backend=libtorch".to_string(),
                cuda => format!("device={cuda}"),
            }
            .as_str(),
        ))
    }

    /// The device pairs are scored on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// NVML's index of the GPU scored on (matched by PCI bus id), for the memory monitor;
    /// 0 on the CPU.
    pub fn monitor_index(&self) -> u32 {
        self.monitor_index
    }

    /// Whether libtorch scores (on its device), rather than the native kernel.
    pub fn uses_libtorch(&self) -> bool {
        match self.backend {
            Backend::Native => false,
            #[cfg(feature = "torch")]
            Backend::Torch(_) => true,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Native => native::Simd::active().backend_name(),
            #[cfg(feature = "torch")]
            Backend::Torch(_) => "libtorch",
        }
    }

    /// Allocation failures recovered from so far.
    pub fn recoveries(&self) -> u64 {
        match &self.backend {
            Backend::Native => 0,
            #[cfg(feature = "torch")]
            Backend::Torch(t) => t.recoveries,
        }
    }

    /// Scores `pairs` in order, batched up to the batch size, within `budget` bytes of
    /// working memory (0 = unlimited): every pair exactly once, or an error. `on_recovery`
    /// hears of each allocation failure recovered from.
    pub fn score<'a>(
        &mut self,
        pairs: &[(ImageView<'a>, ImageView<'a>)],
        opts: &Options,
        budget: u64,
        on_recovery: impl FnMut(&Recovery),
    ) -> Result<Vec<Scored>, Error> {
        match &mut self.backend {
            Backend::Native => {
                let _ = on_recovery;
                pairs
                    .iter()
                    .map(|(r, d)| {
                        native::score_within(r, d, opts, budget)
                            .map(|(scores, usage)| Scored { scores, usage })
                    })
                    .collect()
            }
            #[cfg(feature = "torch")]
            Backend::Torch(t) => t.score(pairs, opts, self.batch_size, budget, on_recovery),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{ChannelMode, Metrics};

    #[test]
    fn the_cpu_scores_with_the_native_kernel() {
        let e = Engine::new("cpu", BackendChoice::Auto, FaultInjection::default()).unwrap();
        assert_eq!(e.device(), Device::Cpu);
        assert!(e.backend_name().starts_with("native kernel"));
        let e = Engine::new("auto", BackendChoice::Native, FaultInjection::default()).unwrap();
        assert_eq!(e.device(), Device::Cpu);
        let (w, h) = (32, 24);
        let a: Vec<u8> = (0..w * h).map(|i| (i * 7 % 256) as u8).collect();
        let b: Vec<u8> = a.iter().map(|v| v.wrapping_add(3)).collect();
        let mut e = e.with_batch_size(2);
        let opts = Options {
            metrics: Metrics::default(),
            channels: ChannelMode::Luma,
            map: false,
        };
        let pairs = [
            (ImageView::gray8(&a, w, h), ImageView::gray8(&b, w, h)),
            (ImageView::gray8(&a, w, h), ImageView::gray8(&a, w, h)),
        ];
        let scored = e.score(&pairs, &opts, 0, |_| {}).unwrap();
        assert_eq!(scored.len(), 2);
        assert_eq!(scored[1].scores.ssim, Some(1.0));
        assert!(scored[0].scores.mse > 0.0);
    }

    #[test]
    fn bad_requests_are_sentences() {
        let e = |d, b| {
            Engine::new(d, b, FaultInjection::default())
                .err()
                .map(|e| e.to_string())
        };
        assert!(e("gpu", BackendChoice::Auto).is_some_and(|m| m.contains("cuda:N")));
        assert!(e("cuda:0", BackendChoice::Native).is_some());
        #[cfg(not(feature = "torch"))]
        {
            let m = e("cpu", BackendChoice::Libtorch).unwrap_or_default();
            assert!(m.contains("without the 'torch' cargo feature"), "{m}");
            let m = e("cuda", BackendChoice::Auto).unwrap_or_default();
            assert!(m.contains("without the 'torch' cargo feature"), "{m}");
        }
    }
}
