//! Reading a token's fields. Parsing checks the token's shape only; whether
//! it is genuine and current is [`crate::Verifier`]'s job.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::{AMZ_DATE_FORMAT, Action, Fingerprint, SERVICE};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Why a string is not a well-formed DSQL auth token. Messages name the
/// offending part but never repeat its value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The text is empty.
    #[error("the token is empty")]
    Empty,
    /// The text starts or ends with white space, often a newline pasted
    /// with the token.
    #[error("the token starts or ends with white space; remove it")]
    SurroundingWhitespace,
    /// The text starts with a URL scheme such as `https://`.
    #[error("the token starts with a URL scheme; DSQL tokens are HOST/?Action=... without one")]
    HasScheme,
    /// There is no `/?` separating hostname and query.
    #[error("the token has no \"/?\" after the hostname")]
    MissingQuery,
    /// The hostname part is empty or not a hostname.
    #[error("the token's hostname is invalid")]
    InvalidHostname,
    /// A query parameter appears twice.
    #[error("the token has query parameter {0} more than once")]
    DuplicateParameter(&'static str),
    /// A query parameter that SigV4 presigned DSQL tokens never carry.
    #[error("the token has an unexpected query parameter")]
    UnknownParameter,
    /// A required query parameter is absent.
    #[error("the token has no {0} query parameter")]
    MissingParameter(&'static str),
    /// A query parameter has a value of the wrong form.
    #[error("the token's {name} query parameter is invalid: {reason}")]
    InvalidParameter {
        /// The parameter name.
        name: &'static str,
        /// What is wrong with its value.
        reason: &'static str,
    },
}

/// The fields of a well-formed token. `Debug` omits the signature and the
/// session token.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedToken {
    pub(crate) hostname: String,
    pub(crate) region: String,
    pub(crate) action: Action,
    pub(crate) access_key_id: String,
    pub(crate) signed_at: SystemTime,
    pub(crate) lifetime: Duration,
    pub(crate) session_token: Option<String>,
    pub(crate) signature: String,
    pub(crate) fingerprint: Fingerprint,
}

impl ParsedToken {
    /// Returns the cluster endpoint the token was signed for.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Returns the region in the token's credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Returns the action the token grants.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Returns the access key id that signed the token (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Returns the signing time (`X-Amz-Date`).
    pub fn signed_at(&self) -> SystemTime {
        self.signed_at
    }

    /// Returns the lifetime the token claims (`X-Amz-Expires`).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Returns the last instant at which the token is valid.
    pub fn expires_at(&self) -> SystemTime {
        self.signed_at + self.lifetime
    }

    /// Returns how long the token remains valid at `now`; zero once expired.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at()
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
    }

    /// Returns whether the token was signed with temporary credentials.
    pub fn has_session_token(&self) -> bool {
        self.session_token.is_some()
    }

    /// Returns the fingerprint of the whole token text.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

impl fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("fingerprint", &self.fingerprint)
            .field("hostname", &self.hostname)
            .field("region", &self.region)
            .field("action", &self.action)
            .field("access_key_id", &self.access_key_id)
            .field("signed_at", &crate::format_amz_date(self.signed_at))
            .field("lifetime_secs", &self.lifetime.as_secs())
            .field("has_session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Parameters {
    action: Option<String>,
    algorithm: Option<String>,
    credential: Option<String>,
    date: Option<String>,
    expires: Option<String>,
    signed_headers: Option<String>,
    security_token: Option<String>,
    signature: Option<String>,
}

impl Parameters {
    fn read(query: &str) -> Result<Self, ParseError> {
        let mut parameters = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (label, slot) = match name.as_ref() {
                "Action" => ("Action", &mut parameters.action),
                "X-Amz-Algorithm" => ("X-Amz-Algorithm", &mut parameters.algorithm),
                "X-Amz-Credential" => ("X-Amz-Credential", &mut parameters.credential),
                "X-Amz-Date" => ("X-Amz-Date", &mut parameters.date),
                "X-Amz-Expires" => ("X-Amz-Expires", &mut parameters.expires),
                "X-Amz-SignedHeaders" => ("X-Amz-SignedHeaders", &mut parameters.signed_headers),
                "X-Amz-Security-Token" => ("X-Amz-Security-Token", &mut parameters.security_token),
                "X-Amz-Signature" => ("X-Amz-Signature", &mut parameters.signature),
                _ => return Err(ParseError::UnknownParameter),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(ParseError::DuplicateParameter(label));
            }
        }
        Ok(parameters)
    }
}

fn required(value: Option<String>, name: &'static str) -> Result<String, ParseError> {
    value.ok_or(ParseError::MissingParameter(name))
}

fn invalid(name: &'static str, reason: &'static str) -> ParseError {
    ParseError::InvalidParameter { name, reason }
}

/// Parses token text into its fields, checking that it has the exact shape
/// of a SigV4-presigned DSQL token. Surrounding white space is not allowed.
pub fn parse(token: &str) -> Result<ParsedToken, ParseError> {
    if token.is_empty() {
        return Err(ParseError::Empty);
    }
    if token.trim() != token {
        return Err(ParseError::SurroundingWhitespace);
    }
    if token.contains("://") {
        return Err(ParseError::HasScheme);
    }
    let (hostname, query) = token.split_once("/?").ok_or(ParseError::MissingQuery)?;
    if !crate::generate::is_valid_hostname(hostname) {
        return Err(ParseError::InvalidHostname);
    }
    let parameters = Parameters::read(query)?;

    let action_name = required(parameters.action, "Action")?;
    let action = Action::from_name(&action_name)
        .ok_or(invalid("Action", "not DbConnect or DbConnectAdmin"))?;
    if required(parameters.algorithm, "X-Amz-Algorithm")? != ALGORITHM {
        return Err(invalid("X-Amz-Algorithm", "not AWS4-HMAC-SHA256"));
    }
    if required(parameters.signed_headers, "X-Amz-SignedHeaders")? != "host" {
        return Err(invalid("X-Amz-SignedHeaders", "not \"host\""));
    }

    let date = required(parameters.date, "X-Amz-Date")?;
    let signed_at = time::PrimitiveDateTime::parse(&date, AMZ_DATE_FORMAT)
        .map_err(|_| invalid("X-Amz-Date", "not of the form YYYYMMDDTHHMMSSZ"))?
        .assume_utc();

    let credential = required(parameters.credential, "X-Amz-Credential")?;
    let (access_key_id, region) = read_credential_scope(&credential, &date[..8])?;

    let expires = required(parameters.expires, "X-Amz-Expires")?;
    if expires.is_empty() || expires.len() > 10 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("X-Amz-Expires", "not a whole number of seconds"));
    }
    let lifetime_secs: u64 = expires
        .parse()
        .map_err(|_| invalid("X-Amz-Expires", "not a whole number of seconds"))?;
    // Keeps every instant of a parsed token within what `time` can format,
    // so callers can print the expiry without a panic.
    if signed_at
        .checked_add(time::Duration::seconds(lifetime_secs as i64))
        .is_none_or(|expires_at| expires_at.year() > 9999)
    {
        return Err(invalid(
            "X-Amz-Expires",
            "the expiry is after the year 9999",
        ));
    }

    let signature = required(parameters.signature, "X-Amz-Signature")?;
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid("X-Amz-Signature", "not 64 lower-case hex digits"));
    }
    if parameters.security_token.as_deref() == Some("") {
        return Err(invalid("X-Amz-Security-Token", "empty"));
    }

    Ok(ParsedToken {
        hostname: hostname.to_owned(),
        region,
        action,
        access_key_id,
        signed_at: signed_at.into(),
        lifetime: Duration::from_secs(lifetime_secs),
        session_token: parameters.security_token,
        signature,
        fingerprint: Fingerprint::of(token),
    })
}

/// Splits `AKID/YYYYMMDD/REGION/dsql/aws4_request`, checking the date against
/// `X-Amz-Date` and the service name.
fn read_credential_scope(credential: &str, date: &str) -> Result<(String, String), ParseError> {
    const NAME: &str = "X-Amz-Credential";
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(invalid(
            NAME,
            "not of the form KEY/DATE/REGION/dsql/aws4_request",
        ));
    };
    if access_key_id.is_empty() || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(NAME, "access key id is not alphanumeric"));
    }
    if scope_date != date {
        return Err(invalid(NAME, "scope date differs from X-Amz-Date"));
    }
    if !crate::generate::is_valid_region(region) {
        return Err(invalid(NAME, "region is invalid"));
    }
    if service != SERVICE {
        return Err(invalid(NAME, "service is not dsql"));
    }
    if terminator != "aws4_request" {
        return Err(invalid(NAME, "does not end in aws4_request"));
    }
    Ok((access_key_id.to_owned(), region.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "localhost/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261204%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20261204T150000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=6c1d56137688b1cc1928d9f012fc1d8289c6e0bf56105752fa00aac711c55051";

    #[test]
    fn well_formed_token_yields_its_fields() {
        let parsed = parse(TOKEN).unwrap();
        assert_eq!(parsed.hostname(), "localhost");
        assert_eq!(parsed.region(), "us-east-1");
        assert_eq!(parsed.action(), Action::DbConnectAdmin);
        assert_eq!(parsed.access_key_id(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(parsed.lifetime(), Duration::from_secs(60));
        assert!(!parsed.has_session_token());
    }

    #[test]
    fn debug_output_has_no_signature() {
        let parsed = parse(TOKEN).unwrap();
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("6c1d5613"), "{debug}");
        assert!(debug.contains("fp:"), "{debug}");
    }

    #[test]
    fn malformed_tokens_are_rejected_with_reasons() {
        let cases: &[(&str, ParseError)] = &[
            ("", ParseError::Empty),
            (
                "localhost/?Action=DbConnect\n",
                ParseError::SurroundingWhitespace,
            ),
            (
                " localhost/?Action=DbConnect",
                ParseError::SurroundingWhitespace,
            ),
            ("https://localhost/?Action=DbConnect", ParseError::HasScheme),
            ("localhost", ParseError::MissingQuery),
            ("not a password at all", ParseError::MissingQuery),
            ("/?Action=DbConnect", ParseError::InvalidHostname),
            (
                "localhost/?Action=DbConnect&Action=DbConnect",
                ParseError::DuplicateParameter("Action"),
            ),
            ("localhost/?Foo=bar", ParseError::UnknownParameter),
            (
                "localhost/?X-Amz-Date=20261204T150000Z",
                ParseError::MissingParameter("Action"),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).as_ref(), Err(expected), "for {text:?}");
        }
    }

    #[test]
    fn tampered_fields_are_rejected() {
        let cases = [
            ("Action=DbConnectAdmin", "Action=Connect"),
            ("X-Amz-Expires=60", "X-Amz-Expires=-60"),
            ("X-Amz-Expires=60", "X-Amz-Expires=99999999999"),
            ("X-Amz-Date=20261204T150000Z", "X-Amz-Date=20261205T150000Z"),
            ("X-Amz-Date=20261204T150000Z", "X-Amz-Date=2026-12-04"),
            ("%2Fdsql%2F", "%2Fs3%2F"),
            (
                "X-Amz-SignedHeaders=host",
                "X-Amz-SignedHeaders=host%3Bx-amz-date",
            ),
            ("X-Amz-Signature=6c1d", "X-Amz-Signature=6C1D"),
            ("HMAC-SHA256", "HMAC-SHA1"),
        ];
        for (from, to) in cases {
            let tampered = TOKEN.replace(from, to);
            assert!(
                matches!(parse(&tampered), Err(ParseError::InvalidParameter { .. })),
                "{to} was accepted"
            );
        }
    }

    #[test]
    fn error_messages_do_not_repeat_values() {
        let tampered = TOKEN.replace("X-Amz-Signature=6c1d", "X-Amz-Signature=zzzz");
        let message = parse(&tampered).unwrap_err().to_string();
        assert!(!message.contains("zzzz"), "{message}");
    }
}
