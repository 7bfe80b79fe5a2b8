//! In-process fakes of the network backends the drivers talk to, faithful to the
//! documented REST API subset each driver uses.

pub mod awskms;
pub mod azure;
pub mod cloudkms;
pub mod transit;
