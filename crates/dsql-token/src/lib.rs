//! Aurora DSQL auth tokens: generate them with the AWS SDK's SigV4 signer,
//! parse them into their fields, and verify them as DSQL does.
//!
//! A token is a SigV4-presigned `GET https://HOST/?Action=...` URL without its
//! scheme, for the service `dsql`. It is a credential: every type here that
//! holds one prints a [`Fingerprint`] in `Debug` and `Display`, never the
//! signature or session token. This crate does not fetch credentials; callers
//! pass them in (the CLI and the rotation function use the AWS SDK's chain).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use aws_credential_types::Credentials;
//! use dsql_token::{generate, Action, TokenRequest, Verifier};
//!
//! let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "doc");
//! let request = TokenRequest::new("localhost", "us-east-1", Action::DbConnectAdmin, Duration::from_secs(60))?;
//! let now = SystemTime::now();
//! let token = generate(&credentials, &request, now)?;
//! assert!(!format!("{token:?}").contains("Signature"));
//!
//! let verifier = Verifier::new("localhost", "us-east-1", [credentials]);
//! let verified = verifier.verify(token.expose_secret(), "admin", now)?;
//! assert_eq!(verified.action(), Action::DbConnectAdmin);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod generate;
mod parse;
mod verify;

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use generate::{TokenRequest, generate, presign};
pub use parse::{ParseError, ParsedToken, parse};
pub use verify::{Rejection, Verifier};

/// The SigV4 service name that DSQL tokens are signed for.
pub const SERVICE: &str = "dsql";

/// Longest lifetime a SigV4-presigned URL may have: one week.
pub const MAX_LIFETIME: Duration = Duration::from_secs(604_800);

/// Errors from generating a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested lifetime is outside 1 s ..= 604 800 s.
    #[error("token lifetime of {requested_secs} s is invalid; choose between 1 and 604800 seconds")]
    InvalidLifetime {
        /// The lifetime that was requested, in seconds.
        requested_secs: u64,
    },
    /// The hostname is empty or contains characters a hostname cannot have.
    #[error(
        "hostname {hostname:?} is invalid; pass the cluster endpoint without scheme, port or path"
    )]
    InvalidHostname {
        /// The hostname as given.
        hostname: String,
    },
    /// The region is empty or malformed.
    #[error("region {region:?} is invalid; pass an AWS region such as us-east-1")]
    InvalidRegion {
        /// The region as given.
        region: String,
    },
    /// The SigV4 signer failed.
    #[error("signing the token failed: {0}")]
    Signing(String),
}

/// The IAM action a token grants: `DbConnectAdmin` for the `admin` role,
/// `DbConnect` for every other role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `dsql:DbConnect`, for custom database roles.
    DbConnect,
    /// `dsql:DbConnectAdmin`, for the `admin` role.
    DbConnectAdmin,
}

impl Action {
    /// Returns the action DSQL requires for a database role.
    pub fn for_role(role: &str) -> Self {
        if role == "admin" {
            Self::DbConnectAdmin
        } else {
            Self::DbConnect
        }
    }

    /// Returns the action's name as it appears in the token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DbConnect => "DbConnect",
            Self::DbConnectAdmin => "DbConnectAdmin",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "DbConnect" => Some(Self::DbConnect),
            "DbConnectAdmin" => Some(Self::DbConnectAdmin),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short, non-secret identifier of a token: the first 8 hex digits of the
/// SHA-256 of the whole token text, printed as `fp:3f9a21c0`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// Computes the fingerprint of any token text, valid or not.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fp:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A DSQL auth token. `Debug` and `Display` print only its fingerprint; use
/// [`AuthToken::expose_secret`] to hand the text to a database driver.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps token text, for example a password read from a secret.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Returns the token text, to be sent as a PostgreSQL password.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Returns the token's fingerprint, safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.0)
    }

    /// Parses the token into its fields.
    pub fn parse(&self) -> Result<ParsedToken, ParseError> {
        parse(&self.0)
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthToken({})", self.fingerprint())
    }
}

impl fmt::Display for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fingerprint())
    }
}

impl From<String> for AuthToken {
    fn from(token: String) -> Self {
        Self(token)
    }
}

/// Formats an instant as SigV4's basic ISO 8601 form, `20250601T120000Z`.
pub(crate) fn format_amz_date(instant: std::time::SystemTime) -> String {
    let datetime = time::OffsetDateTime::from(instant);
    datetime
        .format(&AMZ_DATE_FORMAT)
        .unwrap_or_else(|_| String::from("invalid-date"))
}

pub(crate) const AMZ_DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
