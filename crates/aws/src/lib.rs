//! Adapters over aws-sdk-* implementing the ports of muster-core.
