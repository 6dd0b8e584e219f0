//! Token verification, as the local gateway does it in place of DSQL: the
//! signature is recomputed with the AWS SDK's signer from a table of known
//! access keys and compared in constant time, then the expiry is checked
//! against a clock the caller passes in.
//!
//! It does not model IAM policies: a known access key may connect as any role
//! whose action matches.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use subtle::ConstantTimeEq;

use crate::{Action, MAX_LIFETIME, ParseError, ParsedToken, format_amz_date, parse, presign};

/// How far in the future a signing time may be, to allow for clock skew
/// between the signer and the verifier. SigV4 services allow 5 minutes.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Why a token was rejected. `Display` is for the verifier's own log and
/// contains no token text, signature or session token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The password is not a well-formed token.
    #[error("password is not a DSQL auth token: {0}")]
    Malformed(#[from] ParseError),
    /// The token was signed for another endpoint.
    #[error("token is for hostname {token_hostname:?}, not this endpoint")]
    WrongHostname {
        /// The hostname inside the token.
        token_hostname: String,
    },
    /// The token was signed for another region.
    #[error("token is for region {token_region:?}, not this endpoint's region")]
    WrongRegion {
        /// The region inside the token.
        token_region: String,
    },
    /// The action does not match the role (`admin` needs `DbConnectAdmin`,
    /// other roles `DbConnect`).
    #[error(
        "token grants {action} but role {role:?} needs {}",
        Action::for_role(role)
    )]
    WrongAction {
        /// The database role the client asked for.
        role: String,
        /// The action the token grants.
        action: Action,
    },
    /// The access key that signed the token is not known.
    #[error("token is signed by unknown access key id {access_key_id:?}")]
    UnknownAccessKey {
        /// The access key id inside the token.
        access_key_id: String,
    },
    /// `X-Amz-Expires` is zero or longer than a week.
    #[error("token lifetime of {lifetime_secs} s is outside 1..=604800 s")]
    LifetimeOutOfRange {
        /// The lifetime the token claims.
        lifetime_secs: u64,
    },
    /// The signature does not match the token's contents.
    #[error("token signature does not match (forged or altered token, or wrong secret key)")]
    BadSignature,
    /// The token was signed further in the future than clock skew allows.
    #[error("token is signed at {signed_at}, more than 5 minutes after now ({now})")]
    NotYetValid {
        /// Signing time, `YYYYMMDDTHHMMSSZ`.
        signed_at: String,
        /// The verifier's time, same format.
        now: String,
    },
    /// The token's lifetime has passed.
    #[error("token expired at {expired_at}, now is {now}")]
    Expired {
        /// Expiry time, `YYYYMMDDTHHMMSSZ`.
        expired_at: String,
        /// The verifier's time, same format.
        now: String,
    },
}

impl Rejection {
    /// Returns the `HINT` DSQL sends with its `access denied` error, if any.
    ///
    /// An expired token gets `Signature expired: ...` so that a client knows a
    /// fresh token will help; a role and action mismatch gets DSQL's mapping
    /// hint; everything else gets no hint, as DSQL gives none when new tokens
    /// would not help.
    pub fn hint(&self) -> Option<String> {
        match self {
            // NOTE: DSQL's text after "Signature expired:" is not documented;
            // this wording is ours. Clients should only match the prefix.
            Self::Expired { expired_at, now } => Some(format!(
                "Signature expired: {expired_at} is now earlier than {now}"
            )),
            Self::WrongAction { role, action } => Some(format!(
                "Wrong user to action mapping. user: {role}, action: {action}"
            )),
            _ => None,
        }
    }

    /// Returns a short stable name for logs and metrics, such as `expired`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::WrongHostname { .. } => "wrong_hostname",
            Self::WrongRegion { .. } => "wrong_region",
            Self::WrongAction { .. } => "wrong_action",
            Self::UnknownAccessKey { .. } => "unknown_access_key",
            Self::LifetimeOutOfRange { .. } => "lifetime_out_of_range",
            Self::BadSignature => "bad_signature",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::Expired { .. } => "expired",
        }
    }
}

/// Verifies tokens for one endpoint against a table of access keys.
#[derive(Clone)]
pub struct Verifier {
    hostname: String,
    region: String,
    keys: HashMap<String, Credentials>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hostname", &self.hostname)
            .field("region", &self.region)
            .field("access_key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// Creates a verifier for tokens to `hostname` in `region`, signed by
    /// any of `keys`.
    pub fn new(
        hostname: impl Into<String>,
        region: impl Into<String>,
        keys: impl IntoIterator<Item = Credentials>,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|credentials| (credentials.access_key_id().to_owned(), credentials))
            .collect();
        Self {
            hostname: hostname.into(),
            region: region.into(),
            keys,
        }
    }

    /// Returns the hostname tokens must be signed for.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Returns the region tokens must be signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Verifies `token` as the password for database role `role` at `now`.
    ///
    /// The token is valid from its signing time (less [`MAX_CLOCK_SKEW`])
    /// through `signed_at + X-Amz-Expires`, inclusive.
    pub fn verify(
        &self,
        token: &str,
        role: &str,
        now: SystemTime,
    ) -> Result<ParsedToken, Rejection> {
        let parsed = parse(token)?;

        if !parsed.hostname.eq_ignore_ascii_case(&self.hostname) {
            return Err(Rejection::WrongHostname {
                token_hostname: parsed.hostname,
            });
        }
        if parsed.region != self.region {
            return Err(Rejection::WrongRegion {
                token_region: parsed.region,
            });
        }
        if parsed.action != Action::for_role(role) {
            return Err(Rejection::WrongAction {
                role: role.to_owned(),
                action: parsed.action,
            });
        }
        let Some(key) = self.keys.get(&parsed.access_key_id) else {
            return Err(Rejection::UnknownAccessKey {
                access_key_id: parsed.access_key_id,
            });
        };
        if parsed.lifetime.is_zero() || parsed.lifetime > MAX_LIFETIME {
            return Err(Rejection::LifetimeOutOfRange {
                lifetime_secs: parsed.lifetime.as_secs(),
            });
        }

        self.check_signature(&parsed, key)?;

        if parsed.signed_at > now + MAX_CLOCK_SKEW {
            return Err(Rejection::NotYetValid {
                signed_at: format_amz_date(parsed.signed_at),
                now: format_amz_date(now),
            });
        }
        if now > parsed.expires_at() {
            return Err(Rejection::Expired {
                expired_at: format_amz_date(parsed.expires_at()),
                now: format_amz_date(now),
            });
        }
        Ok(parsed)
    }

    /// Recomputes the signature over the token's own fields. The session
    /// token, when present, is part of what is signed; when the configured
    /// key has one, the token must carry the same.
    fn check_signature(&self, parsed: &ParsedToken, key: &Credentials) -> Result<(), Rejection> {
        if let Some(expected) = key.session_token() {
            let matches = parsed
                .session_token
                .as_deref()
                .is_some_and(|carried| bool::from(carried.as_bytes().ct_eq(expected.as_bytes())));
            if !matches {
                return Err(Rejection::BadSignature);
            }
        }
        let signer = Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            parsed.session_token.clone(),
            None,
            "dsql-token-verifier",
        );
        let recomputed = presign(
            &signer,
            &parsed.hostname,
            &parsed.region,
            parsed.action,
            parsed.lifetime,
            parsed.signed_at,
        )
        .map_err(|_| Rejection::BadSignature)?;
        let recomputed = parse(&recomputed).map_err(|_| Rejection::BadSignature)?;

        if bool::from(
            recomputed
                .signature
                .as_bytes()
                .ct_eq(parsed.signature.as_bytes()),
        ) {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}
