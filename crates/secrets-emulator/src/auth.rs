//! SigV4 verification of `Authorization` headers against configured access
//! keys, with the service's error types.
//!
//! The canonical request is built here (the `aws-sigv4` crate exposes no
//! public way to build it from a received request); the signing key and the
//! signature come from `aws_sigv4::sign::v4`. Presigned query-string
//! requests are not accepted: SDKs and the CLI sign with headers.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::ApiError;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "secretsmanager";
/// How far a request's signing time may be from the emulator's clock.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// An access key id and its secret access key.
#[derive(Clone)]
pub struct AccessKey {
    /// The access key id.
    pub id: String,
    /// The secret access key.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Checks request signatures for one region.
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets_by_id: HashMap<String, String>,
    region: String,
}

/// The parts of an `Authorization` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl Verifier {
    /// A verifier accepting these keys for requests scoped to `region`.
    pub fn new(keys: &[AccessKey], region: &str) -> Verifier {
        Verifier {
            secrets_by_id: keys
                .iter()
                .map(|k| (k.id.clone(), k.secret.clone()))
                .collect(),
            region: region.to_owned(),
        }
    }

    /// Verifies the request's signature; `now` is the emulator's clock.
    pub fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let Some(header) = headers.get("authorization") else {
            return Err(ApiError::missing_authentication());
        };
        let header = header.to_str().map_err(|_| {
            ApiError::incomplete_signature("The Authorization header is not ASCII.")
        })?;
        let auth = parse_authorization(header)?;

        let secret = self
            .secrets_by_id
            .get(auth.access_key_id)
            .ok_or_else(ApiError::unrecognized_client)?;
        if auth.service != SERVICE {
            return Err(ApiError::invalid_signature(format!(
                "Credential should be scoped to correct service: '{SERVICE}'. "
            )));
        }
        if auth.region != self.region {
            return Err(ApiError::invalid_signature(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            )));
        }
        if !auth.signed_headers.contains(&"host") {
            return Err(ApiError::incomplete_signature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }

        let amz_date = header_value(headers, "x-amz-date").ok_or_else(|| {
            ApiError::incomplete_signature(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            )
        })?;
        let signing_time = parse_amz_date(&amz_date)?;
        check_clock_skew(&amz_date, signing_time, now)?;
        if !amz_date.starts_with(auth.date) {
            return Err(ApiError::invalid_signature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                auth.date,
                &amz_date[..amz_date.len().min(8)]
            )));
        }

        let canonical = canonical_request(method, uri, headers, &auth.signed_headers, body);
        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let key = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            signing_time,
            auth.region,
            auth.service,
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes());

        if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::invalid_signature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ))
        }
    }
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, ApiError> {
    let rest = header
        .strip_prefix(ALGORITHM)
        .map(str::trim_start)
        .ok_or_else(|| {
            ApiError::incomplete_signature(format!(
                "Authorization header requires the {ALGORITHM} algorithm."
            ))
        })?;

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {}
        }
    }
    let missing = |name: &str| {
        ApiError::incomplete_signature(format!("Authorization header requires '{name}' parameter."))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(ApiError::incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.",
        ));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

fn parse_amz_date(value: &str) -> Result<SystemTime, ApiError> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, format)
        .map(|t| SystemTime::from(t.assume_utc()))
        .map_err(|_| {
            ApiError::incomplete_signature(format!(
                "X-Amz-Date must be in the ISO-8601 basic format yyyyMMdd'T'HHmmss'Z', not '{value}'."
            ))
        })
}

fn format_amz_date(time: SystemTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    OffsetDateTime::from(time)
        .format(format)
        .unwrap_or_default()
}

fn check_clock_skew(amz_date: &str, signed: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    if signed + MAX_CLOCK_SKEW < now {
        return Err(ApiError::invalid_signature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            format_amz_date(now - MAX_CLOCK_SKEW),
            format_amz_date(now)
        )));
    }
    if signed > now + MAX_CLOCK_SKEW {
        return Err(ApiError::invalid_signature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format_amz_date(now + MAX_CLOCK_SKEW),
            format_amz_date(now)
        )));
    }
    Ok(())
}

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &[&str],
    body: &[u8],
) -> String {
    let path = uri.path();
    let canonical_uri = if path.is_empty() {
        String::from("/")
    } else {
        path.split('/')
            .map(uri_encode)
            .collect::<Vec<_>>()
            .join("/")
    };

    let mut query: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(key)),
                uri_encode(&percent_decode(value)),
            )
        })
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");

    let mut canonical_headers = String::new();
    for name in signed_headers {
        let value = header_value(headers, name).unwrap_or_default();
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }

    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{}\n{}",
        signed_headers.join(";"),
        hex::encode(Sha256::digest(body))
    )
}

/// Percent-encodes everything but the unreserved characters, as SigV4 does.
fn uri_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes.get(i + 1..i + 3).and_then(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        });
        match (bytes[i], hex_pair) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encoding_keeps_unreserved_characters_only() {
        assert_eq!(uri_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(uri_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_alone() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
    }

    #[test]
    fn authorization_without_signature_is_incomplete() {
        let header = "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host";
        let error = parse_authorization(header).err().unwrap();
        assert_eq!(error.kind, "IncompleteSignatureException");
    }

    #[test]
    fn access_key_debug_hides_the_secret() {
        let key = AccessKey {
            id: String::from("AKIDEXAMPLE"),
            secret: String::from("wJalrXUtnFEMI"),
        };
        assert!(!format!("{key:?}").contains("wJalrXUtnFEMI"));
    }
}
