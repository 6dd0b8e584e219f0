//! Token generation with the AWS SDK's SigV4 signer (`aws-sigv4`), signing
//! exactly what the SDK's own DSQL token generator signs.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

use crate::{Action, AuthToken, Error, MAX_LIFETIME, SERVICE};

/// The hostname, region, action and lifetime to sign, checked once and
/// reusable for many tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    hostname: String,
    region: String,
    action: Action,
    lifetime: Duration,
}

impl TokenRequest {
    /// Checks and stores a request for tokens to `hostname` in `region`.
    ///
    /// The lifetime must be 1 s to 604 800 s; sub-second parts are dropped
    /// because `X-Amz-Expires` counts whole seconds.
    pub fn new(
        hostname: impl Into<String>,
        region: impl Into<String>,
        action: Action,
        lifetime: Duration,
    ) -> Result<Self, Error> {
        let hostname = hostname.into();
        let region = region.into();

        if !is_valid_hostname(&hostname) {
            return Err(Error::InvalidHostname { hostname });
        }
        if !is_valid_region(&region) {
            return Err(Error::InvalidRegion { region });
        }
        let requested_secs = lifetime.as_secs();
        if requested_secs == 0 || lifetime > MAX_LIFETIME {
            return Err(Error::InvalidLifetime { requested_secs });
        }

        Ok(Self {
            hostname,
            region,
            action,
            lifetime: Duration::from_secs(requested_secs),
        })
    }

    /// Returns the cluster endpoint the token is for.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Returns the region the token is signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Returns the action the token grants.
    pub fn action(&self) -> Action {
        self.action
    }

    /// Returns how long the token stays valid after it is signed.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// Generates a token for `request`, signed with `credentials` at `signed_at`.
pub fn generate(
    credentials: &Credentials,
    request: &TokenRequest,
    signed_at: SystemTime,
) -> Result<AuthToken, Error> {
    presign(
        credentials,
        &request.hostname,
        &request.region,
        request.action,
        request.lifetime,
        signed_at,
    )
    .map(AuthToken::new)
}

/// Presigns a token without checking its inputs.
///
/// [`generate`] is the function for callers; this one exists so that a
/// verifier can recompute a signature for whatever lifetime a token claims,
/// and so that tests can make tokens DSQL would reject (a lifetime over a
/// week, for example). It returns the token text.
pub fn presign(
    credentials: &Credentials,
    hostname: &str,
    region: &str,
    action: Action,
    lifetime: Duration,
    signed_at: SystemTime,
) -> Result<String, Error> {
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(lifetime);
    settings.signature_location = SignatureLocation::QueryParams;

    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|error| Error::Signing(error.to_string()))?;

    // Host names are case-insensitive. The signer signs the host as given
    // but the URL below lowercases it, and botocore signs the lowercased
    // host, so sign it lowercased too.
    let url = format!(
        "https://{}/?Action={}",
        hostname.to_ascii_lowercase(),
        action.as_str()
    );
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|error| Error::Signing(error.to_string()))?;
    // aws-sigv4 logs the canonical request at trace level, and with
    // temporary credentials that request contains the session token. Its
    // events go to a no-op subscriber for this one call.
    let signed = tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
        sign(signable, &params.into())
    });
    let (instructions, _signature) = signed
        .map_err(|error| Error::Signing(error.to_string()))?
        .into_parts();

    let mut url = url::Url::parse(&url).map_err(|_| Error::InvalidHostname {
        hostname: hostname.to_owned(),
    })?;
    // The signature goes last, as botocore and the DSQL connectors place it,
    // so tokens match theirs byte for byte.
    {
        let mut query = url.query_pairs_mut();
        let params = instructions.params();
        let (signature, others): (Vec<_>, Vec<_>) = params
            .iter()
            .partition(|(name, _)| *name == "X-Amz-Signature");
        for (name, value) in others.into_iter().chain(signature) {
            query.append_pair(name, value);
        }
    }
    let mut token = String::from(url);
    token.replace_range(.."https://".len(), "");
    Ok(token)
}

/// Returns whether `hostname` is a DNS name (labels of letters, digits and
/// hyphens) or an IP address.
pub(crate) fn is_valid_hostname(hostname: &str) -> bool {
    if hostname.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !hostname.is_empty()
        && hostname.len() <= 253
        && hostname.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Returns whether `region` looks like an AWS region name such as
/// `us-east-1` or `us-gov-west-1`.
pub(crate) fn is_valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_of_zero_is_rejected() {
        let result = TokenRequest::new("localhost", "us-east-1", Action::DbConnect, Duration::ZERO);
        assert!(matches!(
            result,
            Err(Error::InvalidLifetime { requested_secs: 0 })
        ));
    }

    #[test]
    fn lifetime_over_one_week_is_rejected_not_clamped() {
        let result = TokenRequest::new(
            "localhost",
            "us-east-1",
            Action::DbConnect,
            Duration::from_secs(604_801),
        );
        assert!(matches!(
            result,
            Err(Error::InvalidLifetime {
                requested_secs: 604_801
            })
        ));
    }

    #[test]
    fn lifetime_of_exactly_one_week_is_accepted() {
        let request = TokenRequest::new(
            "localhost",
            "us-east-1",
            Action::DbConnect,
            Duration::from_secs(604_800),
        );
        assert!(request.is_ok());
    }

    #[test]
    fn hostname_with_scheme_or_port_is_rejected() {
        for hostname in [
            "https://x.dsql.us-east-1.on.aws",
            "x:5432",
            "",
            "a..b",
            "a/b",
        ] {
            let result = TokenRequest::new(
                hostname,
                "us-east-1",
                Action::DbConnect,
                Duration::from_secs(1),
            );
            assert!(
                matches!(result, Err(Error::InvalidHostname { .. })),
                "{hostname:?} was accepted"
            );
        }
    }

    #[test]
    fn malformed_region_is_rejected() {
        for region in ["", "US-EAST-1", "us east 1", "-us"] {
            let result = TokenRequest::new(
                "localhost",
                region,
                Action::DbConnect,
                Duration::from_secs(1),
            );
            assert!(
                matches!(result, Err(Error::InvalidRegion { .. })),
                "{region:?} was accepted"
            );
        }
    }
}
