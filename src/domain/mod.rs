//! The domain: plain Rust with no HTTP and no SQL. Storage, web and CLI are thin layers over it.

pub mod survey;
