//! One client connection from accept to close: TLS negotiation, the startup
//! packet, token authentication, the upstream connection, then the relay.
//!
//! Every refusal sends the client an `ErrorResponse` shaped like DSQL's and
//! logs one line with the exact reason; no log line contains the password.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use crate::relay::{self, Limits};
use crate::upstream;
use crate::wire::{self, ErrorMessage, StartupParameters};
use crate::{Error, Shared};

/// DSQL's message for every authentication refusal.
const ACCESS_DENIED: &str = "unable to accept connection, access denied";
/// SQLSTATE DSQL is reported to use for it.
const ACCESS_DENIED_CODE: &str = "08006";
/// Maximum length of a password message; tokens with session tokens are under 4 KiB.
const MAX_PASSWORD_MESSAGE: usize = 16 * 1024;

/// A client that passed authentication, ready to relay.
struct Authenticated {
    client: TlsStream<TcpStream>,
    upstream: TcpStream,
    upstream_early: BytesMut,
    role: String,
}

/// Handles one accepted connection until it closes.
pub async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let accepted_at = Instant::now();
    let _ = stream.set_nodelay(true);

    let session =
        match tokio::time::timeout(shared.startup_timeout, handshake(stream, &shared)).await {
            Ok(Ok(Some(session))) => session,
            Ok(Ok(None)) => return,
            Ok(Err(error)) => {
                tracing::info!(%error, "connection closed during startup");
                return;
            }
            Err(_) => {
                tracing::info!(
                    timeout_secs = shared.startup_timeout.as_secs_f64(),
                    "connection closed: startup did not finish in time"
                );
                return;
            }
        };

    let role = session.role.clone();
    let limits = Limits {
        expires_at: accepted_at + shared.max_connection_age,
        grace: shared.max_connection_age.min(Duration::from_secs(300)),
    };
    let end = relay::relay(
        session.client,
        session.upstream,
        BytesMut::new(),
        session.upstream_early,
        limits,
        shutdown,
    )
    .await;
    tracing::info!(
        %peer,
        role,
        reason = end.as_str(),
        duration_ms = accepted_at.elapsed().as_millis() as u64,
        "connection closed"
    );
}

/// Runs the connection's startup; `Ok(None)` means it was answered and closed.
async fn handshake(mut tcp: TcpStream, shared: &Shared) -> Result<Option<Authenticated>, Error> {
    let mut packet = read_startup_packet(&mut tcp).await?;
    if packet.code == wire::GSSENC_REQUEST {
        tcp.write_all(b"N").await?;
        packet = read_startup_packet(&mut tcp).await?;
    }
    match packet.code {
        wire::SSL_REQUEST => {}
        wire::CANCEL_REQUEST => {
            forward_cancel(&packet.body, shared).await;
            return Ok(None);
        }
        code if code >> 16 == 3 => {
            tracing::info!("rejected plain-text startup: TLS is required");
            let error = ErrorMessage::fatal(
                "28000",
                "unable to accept connection, TLS is required; connect with sslmode=require or stricter",
            );
            tcp.write_all(&error.encode()).await?;
            return Ok(None);
        }
        code => {
            tracing::info!(
                code,
                "rejected startup packet with unsupported protocol code"
            );
            reject(
                &mut tcp,
                ErrorMessage::fatal("08P01", "unsupported frontend protocol"),
            )
            .await?;
            return Ok(None);
        }
    }

    tcp.write_all(b"S").await?;
    let mut client = shared.tls.accept(tcp).await?;

    let packet = read_startup_packet(&mut client).await?;
    if packet.code == wire::CANCEL_REQUEST {
        forward_cancel(&packet.body, shared).await;
        // libpq 17 and later read until close_notify and report a bare EOF
        // as a failed cancel, even though the cancel went through.
        let _ = client.shutdown().await;
        return Ok(None);
    }
    if packet.code >> 16 != 3 {
        tracing::info!(
            code = packet.code,
            "rejected startup packet with unsupported protocol code"
        );
        reject(
            &mut client,
            ErrorMessage::fatal("08P01", "unsupported frontend protocol"),
        )
        .await?;
        return Ok(None);
    }
    let Some(parameters) = StartupParameters::parse(&packet.body) else {
        tracing::info!("rejected malformed startup packet");
        reject(
            &mut client,
            ErrorMessage::fatal("08P01", "invalid startup packet layout"),
        )
        .await?;
        return Ok(None);
    };

    if let Some(refusal) = check_sni(client.get_ref().1.server_name(), shared) {
        reject(&mut client, refusal).await?;
        return Ok(None);
    }
    let Some(role) = parameters
        .get("user")
        .filter(|user| !user.is_empty())
        .map(str::to_owned)
    else {
        tracing::info!("rejected startup without a user name");
        reject(
            &mut client,
            ErrorMessage::fatal(
                "28000",
                "no PostgreSQL user name specified in startup packet",
            ),
        )
        .await?;
        return Ok(None);
    };
    let database = parameters.get("database").unwrap_or(&role).to_owned();
    if database != "postgres" {
        tracing::info!(
            role,
            database,
            "rejected connection to a database other than postgres"
        );
        let message = format!("database \"{database}\" does not exist");
        reject(&mut client, ErrorMessage::fatal("3D000", message)).await?;
        return Ok(None);
    }

    let minor_version = packet.code & 0xffff;
    let protocol_options: Vec<String> = parameters
        .pairs
        .iter()
        .filter(|(name, _)| name.starts_with("_pq_."))
        .map(|(name, _)| name.clone())
        .collect();
    if minor_version > 0 || !protocol_options.is_empty() {
        client
            .write_all(&wire::negotiate_protocol_version(&protocol_options))
            .await?;
    }
    client
        .write_all(&wire::authentication_cleartext_password())
        .await?;
    client.flush().await?;

    let Some(password) = read_password(&mut client).await? else {
        tracing::info!(role, "rejected malformed password message");
        reject(
            &mut client,
            ErrorMessage::fatal("08P01", "invalid password message"),
        )
        .await?;
        return Ok(None);
    };

    let verified = match shared.verifier.verify(&password, &role, SystemTime::now()) {
        Ok(verified) => verified,
        Err(rejection) => {
            tracing::warn!(
                role,
                reason = rejection.kind(),
                detail = %rejection,
                token = %dsql_token::Fingerprint::of(&password),
                "authentication rejected"
            );
            let error =
                ErrorMessage::fatal(ACCESS_DENIED_CODE, ACCESS_DENIED).with_hint(rejection.hint());
            reject(&mut client, error).await?;
            return Ok(None);
        }
    };
    drop(password);

    let upstream_user = if role == "admin" {
        shared.upstream.admin_user()
    } else {
        role.as_str()
    };
    let forwarded: Vec<(String, String)> = parameters
        .pairs
        .iter()
        .filter(|(name, _)| !name.starts_with("_pq_."))
        .cloned()
        .collect();
    let (upstream, upstream_early) =
        match upstream::connect(&shared.upstream, upstream_user, &forwarded).await {
            Ok(connected) => connected,
            Err(Error::UpstreamRejected(error)) => {
                tracing::warn!(
                    role,
                    code = error.code,
                    message = error.message,
                    "upstream rejected the session"
                );
                let code = if error.code.len() == 5 {
                    passable_sqlstate(&error.code)
                } else {
                    "08006"
                };
                reject(&mut client, ErrorMessage::fatal(code, error.message)).await?;
                return Ok(None);
            }
            Err(error) => {
                tracing::error!(role, %error, "cannot open the upstream session");
                let message =
                    "unable to accept connection, the database behind the gateway is unavailable";
                reject(&mut client, ErrorMessage::fatal("08006", message)).await?;
                return Ok(None);
            }
        };

    client.write_all(&wire::authentication_ok()).await?;
    tracing::info!(
        role,
        token = %verified.fingerprint(),
        access_key_id = verified.access_key_id(),
        expires_in_secs = verified.remaining(SystemTime::now()).as_secs(),
        "client authenticated"
    );
    Ok(Some(Authenticated {
        client,
        upstream,
        upstream_early,
        role,
    }))
}

/// SQLSTATE codes are five ASCII characters; keep the few the gateway
/// passes on as static strings, and map the rest to a generic failure.
fn passable_sqlstate(code: &str) -> &'static str {
    match code {
        "28000" => "28000",
        "28P01" => "28P01",
        "3D000" => "3D000",
        "53300" => "53300",
        "57P03" => "57P03",
        _ => "08006",
    }
}

fn check_sni(server_name: Option<&str>, shared: &Shared) -> Option<ErrorMessage> {
    match server_name {
        Some(name) if name.eq_ignore_ascii_case(shared.verifier.hostname()) => None,
        None if !shared.require_sni => None,
        None => {
            tracing::info!("rejected TLS connection without SNI");
            Some(ErrorMessage::fatal(
                ACCESS_DENIED_CODE,
                "unable to accept connection, TLS SNI is required; connect by hostname, not by IP address",
            ))
        }
        Some(name) => {
            tracing::info!(
                sni = name,
                "rejected TLS connection whose SNI names another endpoint"
            );
            Some(ErrorMessage::fatal(
                ACCESS_DENIED_CODE,
                format!(
                    "unable to accept connection, this endpoint is {}",
                    shared.verifier.hostname()
                ),
            ))
        }
    }
}

struct StartupPacket {
    code: u32,
    body: Vec<u8>,
}

async fn read_startup_packet<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<StartupPacket, Error> {
    let length = stream.read_u32().await? as usize;
    if !(8..=wire::MAX_STARTUP_PACKET).contains(&length) {
        tracing::info!(length, "rejected startup packet with invalid length");
        reject(
            stream,
            ErrorMessage::fatal("08P01", "invalid length of startup packet"),
        )
        .await?;
        return Err(Error::Protocol("invalid length of startup packet".into()));
    }
    let code = stream.read_u32().await?;
    let mut body = vec![0; length - 8];
    stream.read_exact(&mut body).await?;
    Ok(StartupPacket { code, body })
}

/// Reads a `PasswordMessage`; `None` when it is malformed.
async fn read_password<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Option<String>, Error> {
    let kind = stream.read_u8().await?;
    let length = stream.read_u32().await? as usize;
    if kind != b'p' || !(5..=MAX_PASSWORD_MESSAGE).contains(&length) {
        return Ok(None);
    }
    let mut body = vec![0; length - 4];
    stream.read_exact(&mut body).await?;
    let Some((password, rest)) = wire::split_cstr(&body) else {
        return Ok(None);
    };
    if !rest.is_empty() {
        return Ok(None);
    }
    Ok(String::from_utf8(password.to_vec()).ok())
}

/// Sends `error`, closes the sending side, then reads and discards what the
/// client already sent, for up to half a second. Closing a socket with
/// unread input makes the kernel send a reset, and a reset can discard the
/// error before the client reads it.
async fn reject<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    error: ErrorMessage,
) -> Result<(), Error> {
    stream.write_all(&error.encode()).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    let mut discarded = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while matches!(stream.read(&mut discarded).await, Ok(read) if read > 0) {}
    })
    .await;
    Ok(())
}

async fn forward_cancel(body: &[u8], shared: &Shared) {
    let Ok(ids) = <[u8; 8]>::try_from(body) else {
        tracing::info!("ignored malformed cancel request");
        return;
    };
    let process_id = i32::from_be_bytes([ids[0], ids[1], ids[2], ids[3]]);
    let secret_key = i32::from_be_bytes([ids[4], ids[5], ids[6], ids[7]]);
    match upstream::cancel(&shared.upstream, process_id, secret_key).await {
        Ok(()) => tracing::info!(process_id, "forwarded cancel request"),
        Err(error) => tracing::warn!(%error, "cannot forward cancel request"),
    }
}
