//! Choosing where tensors live: the pure-Rust `flex` CPU backend by default, GPU backends when
//! the crate is built with the `wgpu` or `cuda` feature.

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The backends this build can use, in the order `--device` lists them.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["flex"];
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names
}

/// The device named `name` (`flex`/`cpu`, `ndarray`, `wgpu`, `cuda` or `cuda:N`), without autodiff.
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(Default::default())),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0usize)),
        #[cfg(feature = "cuda")]
        n if n.starts_with("cuda:") => n[5..]
            .parse::<usize>()
            .map(Device::cuda)
            .map_err(|_| Error::invalid("device", format!("'{n}': expected cuda:<index>"))),
        other => Err(Error::invalid(
            "device",
            format!(
                "'{other}' is not available in this build (available: {}); GPU backends need `--features wgpu` or `--features cuda`",
                available().join(", ")
            ),
        )),
    }
}

/// True when `device` is Burn's Flex CPU backend, with or without autodiff (where Nerve's own
/// CPU kernels run).
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    )
}
