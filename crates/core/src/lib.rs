//! muster-core: the pure domain shared by every muster function and the CLI.
//!
//! Nothing here performs I/O of its own, talks to AWS or knows about Lambda: it reads
//! from `std::io::Read`ers and writes to the ports in [`ports`], which the adapters
//! (S3, local files, in-memory fakes) implement.

pub mod asff;
pub mod detect;
pub mod digest;
pub mod error;
pub mod framing;
pub mod metrics;
pub mod normalize;
pub mod ocsf;
pub mod ports;
pub mod s3event;
pub mod sources;
pub mod tickets;
pub mod time;

pub use error::{Error, Result};
