//! Typed, checked settings of the rotation function. The binary reads them
//! from its environment; this module only checks them, so that a bad value is
//! rejected once, at start, with a message that says what to change.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

/// Errors in the rotation function's settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The rotation interval is zero.
    #[error("rotation interval must be at least 1 second")]
    ZeroInterval,
    /// The token would expire before the next rotation plus the margin.
    #[error(
        "token lifetime of {lifetime_secs} s does not exceed the rotation interval of {interval_secs} s plus the safety margin of {margin_secs} s; choose a lifetime above {minimum_secs} s"
    )]
    LifetimeTooShort {
        /// The requested token lifetime, in seconds.
        lifetime_secs: u64,
        /// The rotation interval, in seconds.
        interval_secs: u64,
        /// The safety margin, in seconds.
        margin_secs: u64,
        /// Interval plus margin, in seconds: the lifetime must be above it.
        minimum_secs: u64,
    },
    /// The token lifetime is above what SigV4 presigning allows.
    #[error("token lifetime of {lifetime_secs} s is above the maximum of 604800 s (one week)")]
    LifetimeTooLong {
        /// The requested token lifetime, in seconds.
        lifetime_secs: u64,
    },
    /// An allowed-host entry is empty or not a hostname.
    #[error(
        "allowed host {entry:?} is invalid; give a hostname such as localhost or a suffix such as .example.internal"
    )]
    InvalidAllowedHost {
        /// The entry as given.
        entry: String,
    },
    /// A PEM file of extra CA certificates could not be used.
    #[error("CA certificates in {source_name} are unusable: {reason}")]
    InvalidCaCertificates {
        /// Where the PEM text came from, for example the file name.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS library rejected the configuration.
    #[error("TLS configuration failed: {0}")]
    Tls(String),
}

/// How often the secret is rotated and how long each new token lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSchedule {
    rotation_interval: Duration,
    token_lifetime: Duration,
    safety_margin: Duration,
}

impl TokenSchedule {
    /// Longest lifetime a DSQL auth token may have: one week.
    pub const MAX_LIFETIME: Duration = dsql_token::MAX_LIFETIME;

    /// The default rotation interval: 4 hours, the shortest schedule Secrets
    /// Manager accepts.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

    /// The default token lifetime: 8 hours.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(8 * 3600);

    /// Checks a schedule. `safety_margin` defaults to half the interval: for
    /// the 4 h schedule that is 2 h, which covers Secrets Manager's default
    /// 1 h rotation window plus a 1 h client cache. A lifetime must be above
    /// interval plus margin and at most 604 800 s.
    ///
    /// A schedule in days has a rotation window up to the end of the UTC
    /// day, so two rotations may be nearly two intervals apart. Choose the
    /// margin for such schedules explicitly.
    pub fn new(
        rotation_interval: Duration,
        token_lifetime: Duration,
        safety_margin: Option<Duration>,
    ) -> Result<Self, ConfigError> {
        if rotation_interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        let safety_margin = safety_margin.unwrap_or(rotation_interval / 2);
        let lifetime_secs = token_lifetime.as_secs();
        if token_lifetime > Self::MAX_LIFETIME {
            return Err(ConfigError::LifetimeTooLong { lifetime_secs });
        }
        let minimum = rotation_interval.saturating_add(safety_margin);
        if token_lifetime <= minimum {
            return Err(ConfigError::LifetimeTooShort {
                lifetime_secs,
                interval_secs: rotation_interval.as_secs(),
                margin_secs: safety_margin.as_secs(),
                minimum_secs: minimum.as_secs(),
            });
        }
        Ok(Self {
            rotation_interval,
            token_lifetime,
            safety_margin,
        })
    }

    /// Returns the rotation interval the function is deployed with.
    pub fn rotation_interval(&self) -> Duration {
        self.rotation_interval
    }

    /// Returns the lifetime of each new token.
    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime
    }

    /// Returns the margin a token must outlive the next rotation by.
    pub fn safety_margin(&self) -> Duration {
        self.safety_margin
    }

    /// Returns the least remaining life a token must have to be promoted: one
    /// interval plus the margin.
    pub fn minimum_remaining(&self) -> Duration {
        self.rotation_interval.saturating_add(self.safety_margin)
    }
}

impl Default for TokenSchedule {
    fn default() -> Self {
        Self {
            rotation_interval: Self::DEFAULT_INTERVAL,
            token_lifetime: Self::DEFAULT_LIFETIME,
            safety_margin: Self::DEFAULT_INTERVAL / 2,
        }
    }
}

/// Which database hosts a secret may name: every DSQL cluster endpoint
/// (`<cluster id>.dsql.<region>.on.aws`) plus configured hosts, such as the
/// local gateway's `localhost`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPolicy {
    exact_hosts: Vec<String>,
    suffixes: Vec<String>,
}

impl HostPolicy {
    /// Allows one more host. An entry starting with `.` allows every host
    /// ending with it; any other entry allows exactly that host. Hostnames
    /// are compared without regard to ASCII case.
    pub fn allow(mut self, entry: &str) -> Result<Self, ConfigError> {
        let entry = entry.trim().to_ascii_lowercase();
        let name = entry.strip_prefix('.').unwrap_or(&entry);
        let is_hostname = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !is_hostname && name.parse::<std::net::IpAddr>().is_err() {
            return Err(ConfigError::InvalidAllowedHost { entry });
        }
        if entry.starts_with('.') {
            self.suffixes.push(entry);
        } else {
            self.exact_hosts.push(entry);
        }
        Ok(self)
    }

    /// Returns whether a secret may name `host`.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        dsql_endpoint_region(&host).is_some()
            || self.exact_hosts.contains(&host)
            || self.suffixes.iter().any(|suffix| host.ends_with(suffix))
    }
}

/// Returns the region of a DSQL cluster endpoint,
/// `<cluster id>.dsql.<region>.on.aws`, or `None` for any other host.
pub fn dsql_endpoint_region(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    let [cluster_id, "dsql", region, "on", "aws"] = labels.as_slice() else {
        return None;
    };
    let cluster_id_ok =
        !cluster_id.is_empty() && cluster_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (cluster_id_ok && region_ok).then_some(*region)
}

/// The certificate authorities testSecret trusts: Amazon Root CA 1 to 4,
/// compiled in from `webpki-roots`, plus any configured extra CAs.
#[derive(Clone, Debug)]
pub struct TrustRoots {
    store: rustls::RootCertStore,
}

impl TrustRoots {
    /// Returns Amazon's root CAs only. DSQL's certificates chain to them; no
    /// other public CA is trusted, so a certificate from another CA for a
    /// DSQL hostname is rejected.
    pub fn amazon() -> Self {
        let mut store = rustls::RootCertStore::empty();
        store.extend(
            webpki_roots::TLS_SERVER_ROOTS
                .iter()
                .filter(|anchor| is_amazon_root(anchor.subject.as_ref()))
                .cloned(),
        );
        Self { store }
    }

    /// Adds every certificate in a PEM text. `source_name` names the text in
    /// errors, for example the file it was read from. Fails when the text
    /// holds no certificate or an unusable one.
    pub fn add_pem(&mut self, pem: &[u8], source_name: &str) -> Result<usize, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidCaCertificates {
            source_name: source_name.to_owned(),
            reason,
        };
        let certificates: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<_, _>>()
            .map_err(|error| invalid(error.to_string()))?;
        if certificates.is_empty() {
            return Err(invalid(String::from(
                "no PEM \"CERTIFICATE\" block found; give a PEM file of CA certificates",
            )));
        }
        let count = certificates.len();
        for certificate in certificates {
            self.store
                .add(certificate)
                .map_err(|error| invalid(error.to_string()))?;
        }
        Ok(count)
    }

    /// Returns how many CAs are trusted.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Returns whether no CA is trusted.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| ConfigError::Tls(error.to_string()))?
            .with_root_certificates(self.store.clone())
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

fn is_amazon_root(subject_der: &[u8]) -> bool {
    subject_der
        .windows(b"Amazon Root CA ".len())
        .any(|window| window == b"Amazon Root CA ")
}

/// Everything the rotation function needs besides its AWS clients.
#[derive(Clone, Debug)]
pub struct RotationConfig {
    pub(crate) schedule: TokenSchedule,
    pub(crate) hosts: HostPolicy,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) default_region: Option<String>,
    pub(crate) connect_timeout: Duration,
}

impl RotationConfig {
    /// The default time allowed for testSecret's connection and query.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Builds a configuration. `default_region` is the function's own region,
    /// used when neither the secret nor its host names one.
    pub fn new(
        schedule: TokenSchedule,
        hosts: HostPolicy,
        roots: &TrustRoots,
        default_region: Option<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            schedule,
            hosts,
            tls: roots.client_config()?,
            default_region,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// Sets the time allowed for testSecret's connection and query.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Returns the token schedule.
    pub fn schedule(&self) -> &TokenSchedule {
        &self.schedule
    }

    /// Returns the host policy.
    pub fn hosts(&self) -> &HostPolicy {
        &self.hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    #[test]
    fn default_schedule_passes_its_own_check() {
        let schedule = TokenSchedule::new(
            TokenSchedule::DEFAULT_INTERVAL,
            TokenSchedule::DEFAULT_LIFETIME,
            None,
        )
        .unwrap();
        assert_eq!(schedule, TokenSchedule::default());
    }

    #[test]
    fn lifetime_not_above_interval_plus_margin_is_rejected() {
        let result = TokenSchedule::new(
            Duration::from_secs(4 * HOUR),
            Duration::from_secs(6 * HOUR),
            None,
        );
        let error = result.unwrap_err();
        assert!(matches!(
            error,
            ConfigError::LifetimeTooShort {
                minimum_secs: 21_600,
                ..
            }
        ));
        assert!(error.to_string().contains("above 21600 s"), "{error}");
    }

    #[test]
    fn lifetime_over_one_week_is_rejected() {
        let result = TokenSchedule::new(
            Duration::from_secs(4 * HOUR),
            Duration::from_secs(604_801),
            None,
        );
        assert!(matches!(
            result,
            Err(ConfigError::LifetimeTooLong {
                lifetime_secs: 604_801
            })
        ));
    }

    #[test]
    fn second_scale_schedule_for_tests_is_accepted() {
        let schedule =
            TokenSchedule::new(Duration::from_secs(60), Duration::from_secs(120), None).unwrap();
        assert_eq!(schedule.safety_margin(), Duration::from_secs(30));
    }

    #[test]
    fn zero_interval_is_rejected() {
        let result = TokenSchedule::new(Duration::ZERO, Duration::from_secs(60), None);
        assert!(matches!(result, Err(ConfigError::ZeroInterval)));
    }

    #[test]
    fn dsql_endpoints_are_allowed_by_default() {
        let policy = HostPolicy::default();
        assert!(policy.allows("abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"));
        assert!(!policy.allows("localhost"));
        assert!(!policy.allows("db.example.com"));
        assert!(!policy.allows("x.dsql.us-east-1.on.aws.evil.example"));
        assert!(!policy.allows(".dsql.us-east-1.on.aws"));
    }

    #[test]
    fn configured_hosts_and_suffixes_are_allowed() {
        let policy = HostPolicy::default()
            .allow("localhost")
            .unwrap()
            .allow(".db.internal")
            .unwrap();
        assert!(policy.allows("localhost"));
        assert!(policy.allows("LOCALHOST"));
        assert!(policy.allows("a.db.internal"));
        assert!(!policy.allows("db.internal.example"));
        assert!(!policy.allows("localhost.example"));
    }

    #[test]
    fn malformed_allowed_host_is_rejected() {
        for entry in ["", ".", "a b", "https://x", "a..b"] {
            let result = HostPolicy::default().allow(entry);
            assert!(
                matches!(result, Err(ConfigError::InvalidAllowedHost { .. })),
                "{entry:?} was accepted"
            );
        }
    }

    #[test]
    fn region_is_read_from_dsql_endpoint() {
        assert_eq!(
            dsql_endpoint_region("abc123.dsql.eu-west-2.on.aws"),
            Some("eu-west-2")
        );
        assert_eq!(dsql_endpoint_region("localhost"), None);
        assert_eq!(dsql_endpoint_region("abc.rds.eu-west-2.on.aws"), None);
    }

    #[test]
    fn amazon_roots_are_bundled_and_nothing_else() {
        let roots = TrustRoots::amazon();
        assert_eq!(roots.len(), 4, "expected Amazon Root CA 1 to 4");
    }

    #[test]
    fn pem_without_certificates_is_rejected() {
        let mut roots = TrustRoots::amazon();
        let result = roots.add_pem(b"not a pem file", "ca.pem");
        let error = result.unwrap_err();
        assert!(error.to_string().contains("ca.pem"), "{error}");
    }
}
