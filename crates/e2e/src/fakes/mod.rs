//! In-process fakes of network backends' APIs, for the drivers' tests and benchmarks.

pub mod transit;
