//! The firing options shared by kernels and neurons: how a membrane is reset after a spike.
//!
//! It sits at the bottom of the crate so that the fused kernels and the neurons that call them
//! name the same reset without the kernels reaching up into [`crate::neurons`].

/// How the membrane is reset after a spike (serialised by snnTorch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reset {
    /// Subtract the threshold (snnTorch `"subtract"`, the default).
    #[default]
    Subtract,
    /// Set the membrane to zero (snnTorch `"zero"`).
    Zero,
    /// No reset (snnTorch `"none"`).
    None,
}

impl Reset {
    /// Parses snnTorch's reset mechanism names: `subtract`, `zero`, `none`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "subtract" => Some(Reset::Subtract),
            "zero" => Some(Reset::Zero),
            "none" => Some(Reset::None),
            _ => None,
        }
    }
}
