//! In-process fakes of network backends, faithful to the documented API subset the
//! drivers use, with delays and failures a test can set.

pub mod awskms;
