//! The signing pipeline's decisions and interfaces: the per-key policy, the high-watermark
//! rules, the watermark store and vault traits, and the service that runs one request
//! from decoded bytes to a released signature.
#![forbid(unsafe_code)]

pub mod policy;
pub mod service;
pub mod store;
pub mod vault;
pub mod verify;
pub mod watermark;
