//! Recognising a connection that the database refused because of its
//! credentials. DSQL answers a bad or expired token with `FATAL: unable to
//! accept connection, access denied` (SQLSTATE 08006, reported by drivers),
//! adding the hint `Signature expired: ...` when the token has expired;
//! PostgreSQL uses SQLSTATE class 28 (invalid authorization).

use tokio_postgres::error::SqlState;

/// A credential refusal read from a connection error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The server said the token's signature has expired.
    pub expired: bool,
}

/// Returns the refusal in `error`, or `None` when the error is of another
/// kind (network, TLS, a busy server).
pub fn credential_rejection(error: &tokio_postgres::Error) -> Option<Rejection> {
    let db_error = error.as_db_error()?;
    let code = db_error.code().code();
    let access_denied = db_error.message().contains("access denied");
    let is_rejection = code.starts_with("28")
        || (*db_error.code() == SqlState::CONNECTION_FAILURE && access_denied);
    if !is_rejection {
        return None;
    }
    let expired = db_error
        .hint()
        .is_some_and(|hint| hint.contains("Signature expired"));
    Some(Rejection { expired })
}
