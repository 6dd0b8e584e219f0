//! The connection secret's JSON: what a rotated secret stores for one
//! cluster and role. Reading it checks the fields a connection needs; fields
//! this crate does not know are ignored here (the rotation keeps them).

use std::fmt;

use dsql_token::AuthToken;
use serde::Deserialize;

use crate::Error;

/// Connection parameters read from a secret. `Debug` shows the auth token's
/// fingerprint, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSecret {
    /// Database role, `admin` or a custom role.
    pub username: String,
    /// The auth token sent as the PostgreSQL password.
    pub password: AuthToken,
    /// Cluster endpoint.
    pub host: String,
    /// TCP port, 5432 unless the secret says otherwise.
    pub port: u16,
    /// Database name, `postgres` unless the secret says otherwise.
    pub dbname: String,
}

#[derive(Deserialize)]
struct RawSecret {
    username: Option<String>,
    password: Option<String>,
    host: Option<String>,
    engine: Option<String>,
    port: Option<RawPort>,
    dbname: Option<String>,
}

/// `port` is a string in secrets written by the console and the reference
/// rotation function, a number in others; both are accepted.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawPort {
    Number(u64),
    Text(String),
}

impl ConnectionSecret {
    /// Parses the secret string of secret `secret_id`. Error messages name
    /// the field at fault and never repeat a value.
    pub fn from_json(secret_id: &str, text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidSecret {
            secret_id: secret_id.to_owned(),
            reason,
        };
        // serde_json's own message may quote a value, so only its position
        // is reported.
        let raw: RawSecret = serde_json::from_str(text).map_err(|error| {
            invalid(format!(
                "it is not a JSON object with string fields (line {} column {})",
                error.line(),
                error.column()
            ))
        })?;

        let missing = |field: &str| {
            invalid(format!(
                "it has no \"{field}\" field; add it to the secret's JSON"
            ))
        };
        let username = non_blank(raw.username).ok_or_else(|| missing("username"))?;
        let password = non_blank(raw.password).ok_or_else(|| missing("password"))?;
        let host = non_blank(raw.host).ok_or_else(|| missing("host"))?;
        let engine = non_blank(raw.engine).ok_or_else(|| missing("engine"))?;
        if engine != "postgres" {
            return Err(invalid(
                "its \"engine\" is not \"postgres\"; DSQL secrets use engine postgres".to_owned(),
            ));
        }

        let port = match raw.port {
            None => Some(5432),
            Some(RawPort::Number(number)) => u16::try_from(number).ok().filter(|p| *p > 0),
            Some(RawPort::Text(text)) => text.trim().parse::<u16>().ok().filter(|p| *p > 0),
        }
        .ok_or_else(|| invalid("its \"port\" is not a TCP port (1 to 65535)".to_owned()))?;
        let dbname = non_blank(raw.dbname).unwrap_or_else(|| "postgres".to_owned());

        Ok(Self {
            username,
            password: AuthToken::new(password),
            host,
            port,
            dbname,
        })
    }
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|text| !text.trim().is_empty())
}

impl fmt::Debug for ConnectionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSecret")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "localhost/?Action=DbConnectAdmin&X-Amz-Signature=0123abcd";

    fn parse(text: &str) -> Result<ConnectionSecret, Error> {
        ConnectionSecret::from_json("app/dsql", text)
    }

    #[test]
    fn reference_secret_is_read_with_string_port() {
        let text = format!(
            r#"{{"username":"admin","password":"{TOKEN}","host":"abc.dsql.us-east-1.on.aws","engine":"postgres","port":"5432","dbname":"postgres","extra":1}}"#
        );
        let secret = parse(&text).unwrap();
        assert_eq!(secret.username, "admin");
        assert_eq!(secret.host, "abc.dsql.us-east-1.on.aws");
        assert_eq!(secret.port, 5432);
        assert_eq!(secret.dbname, "postgres");
        assert_eq!(secret.password.expose_secret(), TOKEN);
    }

    #[test]
    fn numeric_port_and_defaults_are_accepted() {
        let text = format!(
            r#"{{"username":"app","password":"{TOKEN}","host":"h","engine":"postgres","port":6543}}"#
        );
        let secret = parse(&text).unwrap();
        assert_eq!(secret.port, 6543);
        assert_eq!(secret.dbname, "postgres");
    }

    #[test]
    fn missing_fields_are_named_in_the_error() {
        for field in ["username", "password", "host", "engine"] {
            let mut value = serde_json::json!({
                "username": "admin", "password": TOKEN, "host": "h", "engine": "postgres"
            });
            value.as_object_mut().unwrap().remove(field);
            let message = parse(&value.to_string()).unwrap_err().to_string();
            assert!(message.contains(&format!("\"{field}\"")), "{message}");
            assert!(message.contains("app/dsql"), "{message}");
        }
    }

    #[test]
    fn invalid_values_are_rejected_without_echoing_them() {
        let cases = [
            r#"{"username":"a","password":"SECRETVALUE","host":"h","engine":"mysql"}"#,
            r#"{"username":"a","password":"SECRETVALUE","host":"h","engine":"postgres","port":"70000"}"#,
            r#"{"username":"a","password":"SECRETVALUE","host":"h","engine":"postgres","port":0}"#,
            r#"{"username":"a","password":["SECRETVALUE"],"host":"h","engine":"postgres"}"#,
            r#"not json SECRETVALUE"#,
        ];
        for text in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(!message.contains("SECRETVALUE"), "{message}");
        }
    }

    #[test]
    fn debug_output_shows_fingerprint_only() {
        let text = format!(
            r#"{{"username":"admin","password":"{TOKEN}","host":"h","engine":"postgres"}}"#
        );
        let debug = format!("{:?}", parse(&text).unwrap());
        assert!(!debug.contains("0123abcd"), "{debug}");
        assert!(debug.contains("fp:"), "{debug}");
    }
}
