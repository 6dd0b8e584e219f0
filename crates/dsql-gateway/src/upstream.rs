//! The connection from the gateway to the real PostgreSQL: startup and
//! authentication with whatever method the server asks for (trust,
//! password, MD5 or SCRAM-SHA-256), over plain TCP.
//!
//! TLS to the upstream is not supported: the upstream is meant to be a
//! PostgreSQL on the same machine or network namespace.

use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;

/// The upstream PostgreSQL's address, user and database, from a
/// `postgres://` URL.
#[derive(Clone)]
pub struct UpstreamConfig {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: String,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("database", &self.database)
            .finish()
    }
}

impl UpstreamConfig {
    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT][/DATABASE]`.
    pub fn from_url(text: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::Config(format!("upstream URL is invalid: {reason}"));
        let url = url::Url::parse(text).map_err(|_| invalid("not a URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid("the scheme must be postgres://"));
        }
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("it names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("x={}", part.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        let user = match url.username() {
            "" => String::from("postgres"),
            name => decode(name),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => String::from("postgres"),
            name => decode(name),
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(5432),
            user,
            password: url.password().map(decode),
            database,
        })
    }

    /// Returns the upstream user that the `admin` role maps to.
    pub fn admin_user(&self) -> &str {
        &self.user
    }

    /// Returns `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Connects and authenticates as `user`, passing the client's other startup
/// parameters through. Returns the stream right after `AuthenticationOk`,
/// with any bytes already read after it.
pub async fn connect(
    config: &UpstreamConfig,
    user: &str,
    client_parameters: &[(String, String)],
) -> Result<(TcpStream, BytesMut), Error> {
    let mut stream = TcpStream::connect(config.address())
        .await
        .map_err(|error| {
            Error::Upstream(format!("cannot connect to {}: {error}", config.address()))
        })?;
    let _ = stream.set_nodelay(true);

    let mut parameters: Vec<(&str, &str)> = vec![("user", user), ("database", &config.database)];
    parameters.extend(
        client_parameters
            .iter()
            .filter(|(name, _)| name != "user" && name != "database")
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let mut out = BytesMut::new();
    frontend::startup_message(parameters, &mut out).map_err(io_error)?;
    stream.write_all(&out).await.map_err(io_error)?;

    let mut buffer = BytesMut::with_capacity(1024);
    let mut scram: Option<ScramSha256> = None;
    loop {
        let message = read_message(&mut stream, &mut buffer).await?;
        out.clear();
        match message {
            backend::Message::AuthenticationOk => return Ok((stream, buffer)),
            backend::Message::AuthenticationCleartextPassword => {
                frontend::password_message(password(config)?.as_bytes(), &mut out)
                    .map_err(io_error)?;
            }
            backend::Message::AuthenticationMd5Password(body) => {
                let hashed = postgres_protocol::authentication::md5_hash(
                    user.as_bytes(),
                    password(config)?.as_bytes(),
                    body.salt(),
                );
                frontend::password_message(hashed.as_bytes(), &mut out).map_err(io_error)?;
            }
            backend::Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut has_scram = false;
                while let Some(mechanism) =
                    fallible_iterator::FallibleIterator::next(&mut mechanisms).map_err(io_error)?
                {
                    has_scram |= mechanism == SCRAM_SHA_256;
                }
                if !has_scram {
                    return Err(Error::Upstream(
                        "upstream offers no SASL mechanism the gateway supports".into(),
                    ));
                }
                let state =
                    ScramSha256::new(password(config)?.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, state.message(), &mut out)
                    .map_err(io_error)?;
                scram = Some(state);
            }
            backend::Message::AuthenticationSaslContinue(body) => {
                let state = scram
                    .as_mut()
                    .ok_or_else(|| protocol("SASL continue before start"))?;
                state
                    .update(body.data())
                    .map_err(|_| Error::Upstream("upstream SCRAM exchange failed".into()))?;
                frontend::sasl_response(state.message(), &mut out).map_err(io_error)?;
            }
            backend::Message::AuthenticationSaslFinal(body) => {
                let mut state = scram
                    .take()
                    .ok_or_else(|| protocol("SASL final before start"))?;
                state
                    .finish(body.data())
                    .map_err(|_| Error::Upstream("upstream SCRAM signature is invalid".into()))?;
                continue;
            }
            backend::Message::ErrorResponse(body) => {
                return Err(Error::UpstreamRejected(error_fields(&body)));
            }
            _ => return Err(protocol("unexpected message during authentication")),
        }
        stream.write_all(&out).await.map_err(io_error)?;
    }
}

/// Forwards a `CancelRequest` for a backend process to the upstream.
pub async fn cancel(
    config: &UpstreamConfig,
    process_id: i32,
    secret_key: i32,
) -> Result<(), Error> {
    let mut stream = TcpStream::connect(config.address())
        .await
        .map_err(io_error)?;
    let mut out = BytesMut::new();
    frontend::cancel_request(process_id, secret_key, &mut out);
    stream.write_all(&out).await.map_err(io_error)?;
    let _ = stream.shutdown().await;
    Ok(())
}

fn password(config: &UpstreamConfig) -> Result<&str, Error> {
    config.password.as_deref().ok_or_else(|| {
        Error::Upstream("upstream asks for a password but the upstream URL has none".into())
    })
}

async fn read_message(
    stream: &mut TcpStream,
    buffer: &mut BytesMut,
) -> Result<backend::Message, Error> {
    loop {
        if let Some(message) = backend::Message::parse(buffer).map_err(io_error)? {
            return Ok(message);
        }
        if stream.read_buf(buffer).await.map_err(io_error)? == 0 {
            return Err(Error::Upstream(
                "upstream closed the connection during startup".into(),
            ));
        }
    }
}

/// The SQLSTATE and message of an upstream error, for the gateway's log and
/// to pass on to the client.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    /// Severity as sent.
    pub severity: String,
    /// SQLSTATE.
    pub code: String,
    /// Message text.
    pub message: String,
}

fn error_fields(body: &backend::ErrorResponseBody) -> UpstreamError {
    let mut error = UpstreamError {
        severity: String::from("FATAL"),
        code: String::from("08006"),
        message: String::from("upstream refused the connection"),
    };
    let mut fields = body.fields();
    while let Ok(Some(field)) = fallible_iterator::FallibleIterator::next(&mut fields) {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'S' => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            _ => {}
        }
    }
    error
}

fn io_error(error: std::io::Error) -> Error {
    Error::Upstream(error.to_string())
}

fn protocol(what: &str) -> Error {
    Error::Upstream(format!("upstream protocol error: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_everything_parses() {
        let config = UpstreamConfig::from_url("postgres://app:p%40ss@127.0.0.1:6543/test").unwrap();
        assert_eq!(config.address(), "127.0.0.1:6543");
        assert_eq!(config.admin_user(), "app");
        assert_eq!(config.password.as_deref(), Some("p@ss"));
        assert_eq!(config.database, "test");
    }

    #[test]
    fn url_defaults_user_port_and_database() {
        let config = UpstreamConfig::from_url("postgresql://localhost").unwrap();
        assert_eq!(config.address(), "localhost:5432");
        assert_eq!(config.admin_user(), "postgres");
        assert_eq!(config.database, "postgres");
    }

    #[test]
    fn bad_urls_are_rejected() {
        for text in ["", "mysql://x", "postgres:///db", "not a url"] {
            assert!(UpstreamConfig::from_url(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = UpstreamConfig::from_url("postgres://app:hunter2@h/db").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
