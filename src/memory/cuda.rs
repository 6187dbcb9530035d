//! The CUDA runtime (libcudart), loaded at run time: device count, free memory and PCI bus
//! ids. With libtorch in the process this is the runtime libtorch loaded, so the ordinals
//! are libtorch's; without it, or without a driver or GPU, it is simply unavailable.

use std::ffi::{CStr, c_char, c_int};
use std::sync::OnceLock;

type GetDeviceCount = unsafe extern "C" fn(*mut c_int) -> c_int;
type SetDevice = unsafe extern "C" fn(c_int) -> c_int;
type MemGetInfo = unsafe extern "C" fn(*mut usize, *mut usize) -> c_int;
type DeviceGetPciBusId = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;

pub struct CudaRuntime {
    get_device_count: GetDeviceCount,
    set_device: SetDevice,
    mem_get_info: MemGetInfo,
    pci_bus_id: DeviceGetPciBusId,
    _lib: libloading::Library,
}

/// The process's CUDA runtime, or why there is none.
pub fn cuda_runtime() -> Result<&'static CudaRuntime, &'static str> {
    static RUNTIME: OnceLock<Result<CudaRuntime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(CudaRuntime::load)
        .as_ref()
        .map_err(|e| e.as_str())
}

impl CudaRuntime {
    fn load() -> Result<CudaRuntime, String> {
        let err = |e: libloading::Error| format!("cannot use the CUDA runtime ({e})");
        // SAFETY: loading the CUDA runtime; the symbols have the signatures of the CUDA
        // runtime API, and `_lib` keeps them loaded.
        unsafe {
            let lib = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"]
                .iter()
                .find_map(|name| libloading::Library::new(name).ok())
                .ok_or("the CUDA runtime library (libcudart) is not loadable")?;
            Ok(CudaRuntime {
                get_device_count: *lib.get(b"cudaGetDeviceCount\0").map_err(err)?,
                set_device: *lib.get(b"cudaSetDevice\0").map_err(err)?,
                mem_get_info: *lib.get(b"cudaMemGetInfo\0").map_err(err)?,
                pci_bus_id: *lib.get(b"cudaDeviceGetPCIBusId\0").map_err(err)?,
                _lib: lib,
            })
        }
    }

    /// CUDA devices visible to this process (0 without a driver or GPU).
    pub fn device_count(&self) -> usize {
        let mut n: c_int = 0;
        // SAFETY: a valid out-pointer.
        let ok = unsafe { (self.get_device_count)(&mut n) } == 0;
        if ok { n.max(0) as usize } else { 0 }
    }

    /// Free and total bytes of CUDA device `ordinal`.
    pub fn mem_get_info(&self, ordinal: usize) -> Option<(u64, u64)> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: valid out-pointers.
        let ok = unsafe {
            (self.set_device)(ordinal as c_int) == 0
                && (self.mem_get_info)(&mut free, &mut total) == 0
        };
        ok.then_some((free as u64, total as u64))
    }

    /// The PCI bus id of CUDA device `ordinal`, as the runtime writes it.
    pub fn pci_bus_id(&self, ordinal: usize) -> Option<String> {
        let mut buf = [0 as c_char; 32];
        // SAFETY: the buffer's length is passed; the runtime writes a NUL-terminated id.
        let ok =
            unsafe { (self.pci_bus_id)(buf.as_mut_ptr(), buf.len() as c_int, ordinal as c_int) }
                == 0;
        buf[buf.len() - 1] = 0;
        // SAFETY: NUL-terminated within the buffer (the last byte is 0).
        ok.then(|| {
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        })
    }
}
