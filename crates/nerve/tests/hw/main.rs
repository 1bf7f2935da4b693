//! The hardware path: operation and energy accounting (and, as they land, integer inference,
//! NIR and accelerator simulation).

#[path = "../common/mod.rs"]
mod common;

mod energy;
mod integer;
mod nir;
mod openspike;
mod openspike_compile;
mod openspike_train;
