//! In-process fakes of network backends, for the drivers' tests.

pub mod cloudkms;
