//! RFC 6455 WebSocket protocol: the opening handshake, frames, unmasking, streaming UTF-8
//! validation. The client table and the public API are in [`crate::service`].

pub mod base64;
pub mod frame;
pub mod handshake;
pub mod mask;
pub mod utf8;
