//! The secret's JSON: the connection parameters of one cluster and role, with
//! a DSQL auth token as the password.
//!
//! The format is the one the Python reference function and RDS tooling use:
//! `username`, `password`, `host`, `engine` (`postgres`) are required; `port`
//! (string or number, default 5432), `dbname` (default `postgres`) and
//! `region` are optional. Every other field is kept as it is on rotation.

use std::fmt;

use dsql_token::AuthToken;
use serde_json::{Map, Value};

use crate::config::{HostPolicy, dsql_endpoint_region};

/// Why a secret's value cannot be rotated. Messages never contain the
/// password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The value is not JSON.
    #[error(
        "the value is not JSON (line {line}, column {column}); store the connection JSON with username, password, host and engine"
    )]
    NotJson {
        /// Line of the syntax error.
        line: usize,
        /// Column of the syntax error.
        column: usize,
    },
    /// The value is JSON but not an object.
    #[error(
        "the value is not a JSON object; store the connection JSON with username, password, host and engine"
    )]
    NotObject,
    /// A required field is absent.
    #[error("the value has no {0:?} field; add it to the secret")]
    MissingField(&'static str),
    /// A field has the wrong JSON type or is empty.
    #[error("the {field:?} field is invalid: {reason}")]
    InvalidField {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `engine` is not `postgres`.
    #[error(
        "the engine is {0:?}, not \"postgres\"; DSQL secrets must have \"engine\": \"postgres\""
    )]
    UnsupportedEngine(String),
    /// The host is neither a DSQL endpoint nor configured.
    #[error(
        "host {0:?} is not an Aurora DSQL cluster endpoint (<cluster id>.dsql.<region>.on.aws) nor an allowed host; fix the host or add it to DSQL_ALLOWED_HOSTS"
    )]
    HostNotAllowed(String),
    /// No region in the secret, the host or the function's settings.
    #[error(
        "no region for host {0:?}: add a \"region\" field to the secret or set the function's AWS_REGION"
    )]
    NoRegion(String),
}

/// A validated secret value. `Debug` prints the password's fingerprint only.
#[derive(Clone, PartialEq)]
pub struct DsqlSecret {
    fields: Map<String, Value>,
    username: String,
    password: AuthToken,
    host: String,
    port: u16,
    dbname: String,
    region: String,
}

impl DsqlSecret {
    /// Parses and validates a secret value. The region is the `region` field,
    /// else the one in a DSQL endpoint host, else `default_region`.
    pub fn parse(
        text: &str,
        hosts: &HostPolicy,
        default_region: Option<&str>,
    ) -> Result<Self, SecretError> {
        let value: Value = serde_json::from_str(text).map_err(|error| SecretError::NotJson {
            line: error.line(),
            column: error.column(),
        })?;
        let Value::Object(fields) = value else {
            return Err(SecretError::NotObject);
        };

        let username = required_string(&fields, "username")?;
        let password = required_string(&fields, "password")?;
        let host = required_string(&fields, "host")?;
        let engine = required_string(&fields, "engine")?;
        if engine != "postgres" {
            return Err(SecretError::UnsupportedEngine(engine));
        }
        let port = parse_port(fields.get("port"))?;
        let dbname = optional_string(&fields, "dbname")?.unwrap_or_else(|| "postgres".to_owned());

        if !hosts.allows(&host) {
            return Err(SecretError::HostNotAllowed(host));
        }
        let region = match optional_string(&fields, "region")? {
            Some(region) => region,
            None => dsql_endpoint_region(&host.to_ascii_lowercase())
                .map(str::to_owned)
                .or_else(|| default_region.map(str::to_owned))
                .ok_or_else(|| SecretError::NoRegion(host.clone()))?,
        };

        Ok(Self {
            fields,
            username,
            password: AuthToken::new(password),
            host,
            port,
            dbname,
            region,
        })
    }

    /// Returns the value with `password` replaced by `token` and every other
    /// field as it was, as JSON text.
    pub fn to_json_with_password(&self, token: &AuthToken) -> String {
        let mut fields = self.fields.clone();
        fields.insert(
            "password".to_owned(),
            Value::String(token.expose_secret().to_owned()),
        );
        Value::Object(fields).to_string()
    }

    /// Returns a copy with `token` as the password.
    pub fn with_token(&self, token: &AuthToken) -> Self {
        let mut secret = self.clone();
        secret.password = token.clone();
        secret
    }

    /// Returns the database role.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Returns the password, normally a DSQL auth token.
    pub fn password(&self) -> &AuthToken {
        &self.password
    }

    /// Returns the cluster endpoint.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Returns the PostgreSQL port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns the database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// Returns the region tokens for this host are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }
}

impl fmt::Debug for DsqlSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DsqlSecret")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn required_string(fields: &Map<String, Value>, name: &'static str) -> Result<String, SecretError> {
    optional_string(fields, name)?.ok_or(SecretError::MissingField(name))
}

fn optional_string(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, SecretError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Err(SecretError::InvalidField {
            field: name,
            reason: "it is empty",
        }),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(SecretError::InvalidField {
            field: name,
            reason: "it is not a string",
        }),
    }
}

fn parse_port(value: Option<&Value>) -> Result<u16, SecretError> {
    const INVALID: SecretError = SecretError::InvalidField {
        field: "port",
        reason: "it is not a port number from 1 to 65535",
    };
    let port = match value {
        None | Some(Value::Null) => return Ok(5432),
        Some(Value::Number(number)) => number.as_u64().ok_or(INVALID)?,
        Some(Value::String(text)) => text.trim().parse::<u64>().map_err(|_| INVALID)?,
        Some(_) => return Err(INVALID),
    };
    match u16::try_from(port) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(INVALID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "abc123.dsql.us-east-1.on.aws";

    fn parse(text: &str) -> Result<DsqlSecret, SecretError> {
        DsqlSecret::parse(text, &HostPolicy::default(), None)
    }

    #[test]
    fn reference_format_is_accepted() {
        let text = format!(
            r#"{{"username":"admin","password":"placeholder","host":"{ENDPOINT}","engine":"postgres","port":"5432","dbname":"postgres"}}"#
        );
        let secret = parse(&text).unwrap();
        assert_eq!(secret.username(), "admin");
        assert_eq!(secret.host(), ENDPOINT);
        assert_eq!(secret.port(), 5432);
        assert_eq!(secret.dbname(), "postgres");
        assert_eq!(secret.region(), "us-east-1");
    }

    #[test]
    fn port_as_number_and_defaults_are_accepted() {
        let text = format!(
            r#"{{"username":"app","password":"x","host":"{ENDPOINT}","engine":"postgres","port":6543}}"#
        );
        let secret = parse(&text).unwrap();
        assert_eq!(secret.port(), 6543);
        assert_eq!(secret.dbname(), "postgres");

        let text = format!(
            r#"{{"username":"app","password":"x","host":"{ENDPOINT}","engine":"postgres"}}"#
        );
        assert_eq!(parse(&text).unwrap().port(), 5432);
    }

    #[test]
    fn region_field_wins_over_host_and_default() {
        let text = format!(
            r#"{{"username":"a","password":"x","host":"{ENDPOINT}","engine":"postgres","region":"eu-west-1"}}"#
        );
        let secret = DsqlSecret::parse(&text, &HostPolicy::default(), Some("ap-south-1")).unwrap();
        assert_eq!(secret.region(), "eu-west-1");
    }

    #[test]
    fn configured_host_takes_function_region() {
        let hosts = HostPolicy::default().allow("localhost").unwrap();
        let text = r#"{"username":"a","password":"x","host":"localhost","engine":"postgres"}"#;
        let secret = DsqlSecret::parse(text, &hosts, Some("us-east-1")).unwrap();
        assert_eq!(secret.region(), "us-east-1");

        let result = DsqlSecret::parse(text, &hosts, None);
        assert_eq!(result, Err(SecretError::NoRegion("localhost".to_owned())));
    }

    #[test]
    fn bad_secrets_are_rejected_with_reason() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (
                r#"{"password":"x","host":"a.dsql.us-east-1.on.aws","engine":"postgres"}"#,
                "no \"username\" field",
            ),
            (
                r#"{"username":"a","host":"a.dsql.us-east-1.on.aws","engine":"postgres"}"#,
                "no \"password\" field",
            ),
            (
                r#"{"username":"a","password":"x","engine":"postgres"}"#,
                "no \"host\" field",
            ),
            (
                r#"{"username":"a","password":"x","host":"a.dsql.us-east-1.on.aws"}"#,
                "no \"engine\" field",
            ),
            (
                r#"{"username":"a","password":"x","host":"a.dsql.us-east-1.on.aws","engine":"mysql"}"#,
                "not \"postgres\"",
            ),
            (
                r#"{"username":"a","password":"x","host":"db.example.com","engine":"postgres"}"#,
                "not an Aurora DSQL cluster endpoint",
            ),
            (
                r#"{"username":"a","password":"x","host":"a.dsql.us-east-1.on.aws","engine":"postgres","port":"http"}"#,
                "\"port\" field is invalid",
            ),
            (
                r#"{"username":"","password":"x","host":"a.dsql.us-east-1.on.aws","engine":"postgres"}"#,
                "\"username\" field is invalid",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn rotation_keeps_unknown_fields_and_port_form() {
        let text = format!(
            r#"{{"username":"admin","password":"old","host":"{ENDPOINT}","engine":"postgres","port":"5432","dbClusterIdentifier":"abc123","tags":{{"team":"db"}}}}"#
        );
        let secret = parse(&text).unwrap();
        let rotated = secret.to_json_with_password(&AuthToken::new("new-token"));
        let value: Value = serde_json::from_str(&rotated).unwrap();
        assert_eq!(value["password"], "new-token");
        assert_eq!(value["port"], "5432");
        assert_eq!(value["dbClusterIdentifier"], "abc123");
        assert_eq!(value["tags"]["team"], "db");
        assert_eq!(value.as_object().unwrap().len(), 7);
    }

    #[test]
    fn debug_output_hides_password() {
        let text = format!(
            r#"{{"username":"admin","password":"very-secret-token","host":"{ENDPOINT}","engine":"postgres"}}"#
        );
        let secret = parse(&text).unwrap();
        let debug = format!("{secret:?}");
        assert!(!debug.contains("very-secret-token"), "{debug}");
        assert!(debug.contains("fp:"), "{debug}");
    }

    #[test]
    fn errors_never_repeat_the_password() {
        let text = r#"{"username":"a","password":"very-secret-token","host":"db.example.com","engine":"postgres"}"#;
        let error = parse(text).unwrap_err();
        assert!(!error.to_string().contains("very-secret-token"));
        assert!(!format!("{error:?}").contains("very-secret-token"));
    }
}
