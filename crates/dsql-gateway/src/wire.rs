//! The few PostgreSQL wire-protocol messages the gateway reads and writes
//! itself. Everything after authentication is relayed as framed bytes.

use bytes::{BufMut, BytesMut};

/// `SSLRequest` code.
pub const SSL_REQUEST: u32 = 80_877_103;
/// `GSSENCRequest` code.
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// `CancelRequest` code.
pub const CANCEL_REQUEST: u32 = 80_877_102;
/// PostgreSQL's own limit on a startup packet's length.
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// Severity of an `ErrorResponse`.
#[derive(Clone, Copy, Debug)]
pub enum Severity {
    /// Ends the session.
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fatal => "FATAL",
        }
    }
}

/// An `ErrorResponse` the gateway sends on its own behalf.
#[derive(Clone, Debug)]
pub struct ErrorMessage {
    /// Severity.
    pub severity: Severity,
    /// SQLSTATE code.
    pub code: &'static str,
    /// Primary message.
    pub message: String,
    /// Optional `HINT`.
    pub hint: Option<String>,
}

impl ErrorMessage {
    /// Creates a `FATAL` error without hint.
    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Fatal,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// Encodes the message as an `ErrorResponse` (`E`).
    pub fn encode(&self) -> BytesMut {
        let mut fields = BytesMut::new();
        for (tag, value) in [
            (b'S', self.severity.as_str()),
            (b'V', self.severity.as_str()),
            (b'C', self.code),
            (b'M', self.message.as_str()),
        ] {
            put_field(&mut fields, tag, value);
        }
        if let Some(hint) = &self.hint {
            put_field(&mut fields, b'H', hint);
        }
        fields.put_u8(0);
        frame(b'E', &fields)
    }
}

fn put_field(buffer: &mut BytesMut, tag: u8, value: &str) {
    buffer.put_u8(tag);
    // A NUL inside a field would end it early; none of our texts has one.
    buffer.put_slice(value.replace('\0', " ").as_bytes());
    buffer.put_u8(0);
}

/// Frames a message: type byte, length including itself, body.
pub fn frame(kind: u8, body: &[u8]) -> BytesMut {
    let mut message = BytesMut::with_capacity(body.len() + 5);
    message.put_u8(kind);
    message.put_u32(body.len() as u32 + 4);
    message.put_slice(body);
    message
}

/// `AuthenticationCleartextPassword`.
pub fn authentication_cleartext_password() -> BytesMut {
    frame(b'R', &3u32.to_be_bytes())
}

/// `AuthenticationOk`.
pub fn authentication_ok() -> BytesMut {
    frame(b'R', &0u32.to_be_bytes())
}

/// Protocol version 3.0 as the wire encodes it: major in the high 16 bits.
pub const PROTOCOL_3_0: u32 = 3 << 16;

/// `NegotiateProtocolVersion`: the newest version we speak (3.0) and the
/// protocol options (`_pq_.*`) we do not recognise. The version field holds
/// the whole version number, major included, as PostgreSQL 15 sends it;
/// libpq 18 rejects a bare minor version 0 as a downgrade below 3.0.
pub fn negotiate_protocol_version(unrecognized: &[String]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u32(PROTOCOL_3_0);
    body.put_u32(unrecognized.len() as u32);
    for option in unrecognized {
        body.put_slice(option.as_bytes());
        body.put_u8(0);
    }
    frame(b'v', &body)
}

/// A startup message's parameters, in the order the client sent them.
#[derive(Debug, Default, Clone)]
pub struct StartupParameters {
    /// `(name, value)` pairs, `user` and `database` included.
    pub pairs: Vec<(String, String)>,
}

impl StartupParameters {
    /// Parses the key/value list that follows the protocol version.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut pairs = Vec::new();
        let mut fields = body.split(|byte| *byte == 0);
        loop {
            let name = fields.next()?;
            if name.is_empty() {
                break;
            }
            let value = fields.next()?;
            pairs.push((
                String::from_utf8(name.to_vec()).ok()?,
                String::from_utf8(value.to_vec()).ok()?,
            ));
        }
        Some(Self { pairs })
    }

    /// Returns a parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads a C string from the front of `bytes`, returning it and the rest.
pub fn split_cstr(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|byte| *byte == 0)?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_carries_code_message_and_hint() {
        let error = ErrorMessage::fatal("08006", "unable to accept connection, access denied")
            .with_hint(Some("Signature expired: x".into()));
        let encoded = error.encode();
        assert_eq!(encoded[0], b'E');
        let length = u32::from_be_bytes([encoded[1], encoded[2], encoded[3], encoded[4]]) as usize;
        assert_eq!(length + 1, encoded.len());
        let body = String::from_utf8_lossy(&encoded[5..]);
        assert!(body.contains("SFATAL\0"));
        assert!(body.contains("C08006\0"));
        assert!(body.contains("Munable to accept connection, access denied\0"));
        assert!(body.contains("HSignature expired: x\0"));
    }

    #[test]
    fn startup_parameters_parse_and_reject_truncation() {
        let parameters = StartupParameters::parse(b"user\0admin\0database\0postgres\0\0").unwrap();
        assert_eq!(parameters.get("user"), Some("admin"));
        assert_eq!(parameters.get("database"), Some("postgres"));
        assert!(StartupParameters::parse(b"user\0admin").is_none());
        assert!(StartupParameters::parse(b"user\0").is_none());
    }
}
