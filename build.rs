//! Makes the plugin find libtorch at run time without `LD_LIBRARY_PATH`, and keeps
//! libtorch's CUDA backend linked when the libtorch in use has one.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    // rpath for the plugin, the tests, the examples and the benchmarks.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    // The linker's as-needed default drops libtorch_cuda.so, since no symbol of it is
    // referenced directly; without it libtorch reports no CUDA device.
    if Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
