//! Relaying an authenticated session: client messages are framed so that
//! `CREATE INDEX` statements can be checked and requests counted; server
//! messages are framed only to find `ReadyForQuery`, then copied in batches.
//!
//! The session ends when either side closes, when the client sends a message
//! larger than DSQL accepts, or when it reaches its maximum age (or the
//! gateway shuts down) and is idle: no request in flight and no open
//! transaction. A session that never becomes idle is closed after a grace
//! period, as DSQL lets a transaction run at most 5 minutes past the hour.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::ddl::{self, Verdict};
use crate::wire::split_cstr;

/// Largest client message DSQL accepts (10 MiB); larger ones end the
/// session without an error message, as DSQL does.
pub const MAX_CLIENT_MESSAGE: usize = 10 * 1024 * 1024;

/// The reason a relayed session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client sent `Terminate`.
    ClientTerminated,
    /// The client closed its side without `Terminate`.
    ClientClosed,
    /// The upstream closed its side.
    UpstreamClosed,
    /// The client sent a message longer than [`MAX_CLIENT_MESSAGE`].
    MessageTooLarge,
    /// The client sent a message with an impossible length.
    ProtocolViolation,
    /// The session reached its maximum age.
    MaxAge,
    /// The gateway is shutting down.
    Shutdown,
    /// Reading or writing failed.
    IoError,
}

impl End {
    /// Returns a short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientTerminated => "client_terminated",
            Self::ClientClosed => "client_closed",
            Self::UpstreamClosed => "upstream_closed",
            Self::MessageTooLarge => "message_too_large",
            Self::ProtocolViolation => "protocol_violation",
            Self::MaxAge => "max_connection_age",
            Self::Shutdown => "gateway_shutdown",
            Self::IoError => "io_error",
        }
    }
}

/// Session state shared by both relay directions.
struct SessionState {
    /// Requests (`Query`, `Sync`, `FunctionCall`) sent but not yet answered
    /// with `ReadyForQuery`. It starts at 1 because the relay begins before
    /// the upstream's first `ReadyForQuery`, which answers the startup.
    outstanding: AtomicI64,
    /// Whether the last `ReadyForQuery` reported "idle, no transaction".
    idle_status: AtomicBool,
    ready: Notify,
}

impl Default for SessionState {
    fn default() -> Self {
        Self {
            outstanding: AtomicI64::new(1),
            idle_status: AtomicBool::new(false),
            ready: Notify::new(),
        }
    }
}

impl SessionState {
    fn is_idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) <= 0 && self.idle_status.load(Ordering::Acquire)
    }
}

/// Limits on a relayed session.
pub struct Limits {
    /// When the session reaches its maximum age.
    pub expires_at: Instant,
    /// How long past that a busy session may go on.
    pub grace: Duration,
}

/// Relays between client and upstream until the session ends. `client_early`
/// and `upstream_early` are bytes already read from each side.
pub async fn relay<C, U>(
    client: C,
    upstream: U,
    client_early: BytesMut,
    upstream_early: BytesMut,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> End
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let state = SessionState::default();
    let (client_reader, mut client_writer) = tokio::io::split(client);
    let (upstream_reader, mut upstream_writer) = tokio::io::split(upstream);

    let end = {
        let to_upstream =
            client_to_upstream(client_reader, &mut upstream_writer, client_early, &state);
        let to_client =
            upstream_to_client(upstream_reader, &mut client_writer, upstream_early, &state);
        let closing = close_when_idle(&state, &limits, &mut shutdown);
        tokio::select! {
            end = to_upstream => end,
            end = to_client => end,
            end = closing => end,
        }
    };

    if end != End::ClientTerminated {
        let _ = upstream_writer.write_all(&[b'X', 0, 0, 0, 4]).await;
    }
    let _ = upstream_writer.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), client_writer.shutdown()).await;
    end
}

async fn close_when_idle(
    state: &SessionState,
    limits: &Limits,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let reason = tokio::select! {
        () = tokio::time::sleep_until(limits.expires_at) => End::MaxAge,
        _ = shutdown.wait_for(|stopping| *stopping) => End::Shutdown,
    };
    let hard_deadline = Instant::now() + limits.grace;
    loop {
        if state.is_idle() {
            return reason;
        }
        tokio::select! {
            () = state.ready.notified() => {}
            () = tokio::time::sleep_until(hard_deadline) => return reason,
        }
    }
}

async fn client_to_upstream<R, W>(
    mut client: R,
    upstream: &mut W,
    mut buffer: BytesMut,
    state: &SessionState,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        while buffer.len() >= 5 {
            let kind = buffer[0];
            let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
            if length < 4 {
                return End::ProtocolViolation;
            }
            if length > MAX_CLIENT_MESSAGE {
                return End::MessageTooLarge;
            }
            if buffer.len() < length + 1 {
                buffer.reserve(length + 1 - buffer.len());
                break;
            }
            let message = buffer.split_to(length + 1);
            match kind {
                b'Q' => {
                    state.outstanding.fetch_add(1, Ordering::AcqRel);
                    rewrite_query(&message, &mut out);
                }
                b'P' => rewrite_parse(&message, &mut out),
                b'S' | b'F' => {
                    state.outstanding.fetch_add(1, Ordering::AcqRel);
                    out.put_slice(&message);
                }
                b'X' => {
                    out.put_slice(&message);
                    let _ = upstream.write_all(&out).await;
                    return End::ClientTerminated;
                }
                _ => out.put_slice(&message),
            }
        }
        if !out.is_empty() {
            if upstream.write_all(&out).await.is_err() {
                return End::IoError;
            }
            tracing::trace!(bytes = out.len(), "relayed client messages");
            out.clear();
        }
        match client.read_buf(&mut buffer).await {
            Ok(0) => return End::ClientClosed,
            Ok(_) => {}
            Err(_) => return End::IoError,
        }
    }
}

async fn upstream_to_client<R, W>(
    mut upstream: R,
    client: &mut W,
    mut buffer: BytesMut,
    state: &SessionState,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    buffer.reserve(16 * 1024);
    let mut scanned = 0;
    loop {
        let mut last_ready_status = None;
        let mut ready_count = 0;
        while scanned + 5 <= buffer.len() {
            let kind = buffer[scanned];
            let length = u32::from_be_bytes([
                buffer[scanned + 1],
                buffer[scanned + 2],
                buffer[scanned + 3],
                buffer[scanned + 4],
            ]) as usize;
            if scanned + 1 + length > buffer.len() {
                break;
            }
            if kind == b'Z' && length == 5 {
                last_ready_status = Some(buffer[scanned + 5]);
                ready_count += 1;
            }
            scanned += 1 + length;
        }

        if scanned > 0 {
            if client.write_all(&buffer[..scanned]).await.is_err() || client.flush().await.is_err()
            {
                return End::IoError;
            }
            buffer.advance(scanned);
            scanned = 0;
        }
        if let Some(status) = last_ready_status {
            state.outstanding.fetch_sub(ready_count, Ordering::AcqRel);
            state.idle_status.store(status == b'I', Ordering::Release);
            state.ready.notify_one();
        }

        match upstream.read_buf(&mut buffer).await {
            Ok(0) => return End::UpstreamClosed,
            Ok(_) => {}
            Err(_) => return End::IoError,
        }
    }
}

/// Copies a `Query` message, applying DSQL's index rules to its text.
fn rewrite_query(message: &[u8], out: &mut BytesMut) {
    let body = &message[5..];
    let Some((sql, _)) = split_cstr(body) else {
        out.put_slice(message);
        return;
    };
    let Ok(sql) = std::str::from_utf8(sql) else {
        out.put_slice(message);
        return;
    };
    let replacement = match ddl::check(sql) {
        Verdict::Pass => {
            out.put_slice(message);
            return;
        }
        Verdict::Rewrite(text) => text,
        Verdict::Reject { preceding, refusal } => {
            tracing::info!(
                sqlstate = refusal.sqlstate(),
                "rejected statement DSQL does not support"
            );
            preceding + &refusal.raising_statement()
        }
    };
    let mut new_body = BytesMut::with_capacity(replacement.len() + 1);
    new_body.put_slice(replacement.as_bytes());
    new_body.put_u8(0);
    out.put_slice(&crate::wire::frame(b'Q', &new_body));
}

/// Copies a `Parse` message, applying DSQL's index rules to its text. A
/// rejected statement is replaced with no parameter types, since the
/// replacement takes none.
fn rewrite_parse(message: &[u8], out: &mut BytesMut) {
    let body = &message[5..];
    let Some((name, rest)) = split_cstr(body) else {
        out.put_slice(message);
        return;
    };
    let Some((sql, parameter_types)) = split_cstr(rest) else {
        out.put_slice(message);
        return;
    };
    let Ok(sql) = std::str::from_utf8(sql) else {
        out.put_slice(message);
        return;
    };
    let (replacement, parameter_types) = match ddl::check(sql) {
        Verdict::Pass => {
            out.put_slice(message);
            return;
        }
        Verdict::Rewrite(text) => (text, parameter_types),
        Verdict::Reject { preceding, refusal } => {
            tracing::info!(
                sqlstate = refusal.sqlstate(),
                "rejected statement DSQL does not support"
            );
            // Text before the statement makes PostgreSQL reject the Parse as
            // more than one command, as it would reject the original.
            (preceding + &refusal.raising_statement(), &[0u8, 0][..])
        }
    };
    let mut new_body = BytesMut::with_capacity(body.len() + replacement.len());
    new_body.put_slice(name);
    new_body.put_u8(0);
    new_body.put_slice(replacement.as_bytes());
    new_body.put_u8(0);
    new_body.put_slice(parameter_types);
    out.put_slice(&crate::wire::frame(b'P', &new_body));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sql: &str) -> BytesMut {
        let mut body = BytesMut::new();
        body.put_slice(sql.as_bytes());
        body.put_u8(0);
        crate::wire::frame(b'Q', &body)
    }

    #[test]
    fn plain_query_is_copied_unchanged() {
        let message = query("SELECT 1");
        let mut out = BytesMut::new();
        rewrite_query(&message, &mut out);
        assert_eq!(out, message);
    }

    #[test]
    fn async_index_query_is_rewritten_with_a_correct_length() {
        let mut out = BytesMut::new();
        rewrite_query(&query("CREATE INDEX ASYNC i ON t (x)"), &mut out);
        assert_eq!(out, query("CREATE INDEX  i ON t (x)"));
    }

    #[test]
    fn rejected_parse_loses_its_parameter_types() {
        let mut body = BytesMut::new();
        body.put_slice(b"stmt\0CREATE INDEX i ON t (x)\0");
        body.put_u16(1);
        body.put_u32(23);
        let mut out = BytesMut::new();
        rewrite_parse(&crate::wire::frame(b'P', &body), &mut out);

        let text = String::from_utf8_lossy(&out[5..]).into_owned();
        assert!(text.starts_with("stmt\0DO $dsql_gateway$"), "{text}");
        assert!(out.ends_with(b"\0\0\0"), "parameter count must be zero");
    }
}
