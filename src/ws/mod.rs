//! RFC 6455 WebSocket protocol: opening handshake, frames, streaming UTF-8 validation.

pub mod base64;
pub mod mask;
pub mod utf8;
