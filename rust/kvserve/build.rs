//! Sets `cfg(kvserve_cuda)` when the linked library has the CUDA backend (as
//! kvserve-sys found it), so the GPU example links the CUDA runtime only then.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(kvserve_cuda)");
    println!("cargo:rerun-if-env-changed=DEP_KVSERVE_CUDA");
    if std::env::var("DEP_KVSERVE_CUDA").is_ok_and(|v| v == "ON") {
        println!("cargo:rustc-cfg=kvserve_cuda");
    }
}
