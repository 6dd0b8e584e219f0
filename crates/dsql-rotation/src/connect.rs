//! testSecret's check: log in with the pending secret over TLS, verifying the
//! server certificate against the trusted roots and its name against the
//! secret's host (verify-full, with SNI), run `SELECT 1` and close. There is
//! no fallback to plain text or to unverified TLS.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::Error;
use crate::secret::DsqlSecret;

pub(crate) async fn check_login(
    secret: &DsqlSecret,
    tls: &Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<(), Error> {
    let failed = |message: String| Error::TestConnection {
        host: secret.host().to_owned(),
        port: secret.port(),
        user: secret.username().to_owned(),
        message,
    };

    let mut config = tokio_postgres::Config::new();
    config
        .host(secret.host())
        .port(secret.port())
        .user(secret.username())
        .password(secret.password().expose_secret())
        .dbname(secret.dbname())
        .application_name("dsql-rotation")
        .ssl_mode(SslMode::Require)
        .connect_timeout(timeout);
    let connector = MakeRustlsConnect::new(tls.as_ref().clone());

    let attempt = async {
        let (client, connection) = config
            .connect(connector)
            .await
            .map_err(|error| failed(describe_postgres_error(&error)))?;
        let driver = tokio::spawn(connection);
        let query = client.simple_query("SELECT 1").await;
        drop(client);
        // The connection task ends once the client is dropped; its own
        // error, if any, adds nothing to the query's.
        let _ = driver.await;
        query.map_err(|error| failed(describe_postgres_error(&error)))?;
        Ok(())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| failed(format!("timed out after {} s", timeout.as_secs())))?
}

/// Formats a driver error with its cause chain and, for a server error, its
/// SQLSTATE, message and hint. None of these contain the password.
fn describe_postgres_error(error: &tokio_postgres::Error) -> String {
    if let Some(db_error) = error.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db_error.severity(),
            db_error.message(),
            db_error.code().code()
        );
        if let Some(hint) = db_error.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
