//! A local stand-in for Aurora DSQL's front end: a PostgreSQL wire-protocol
//! server that requires TLS with SNI, verifies the password as a DSQL auth
//! token, and relays the session to a real PostgreSQL.
//!
//! DSQL behaviours it reproduces: the `access denied` refusals with their
//! hints, `CREATE INDEX ASYNC` (run as a normal index build) and the refusal
//! of a plain `CREATE INDEX`, the maximum connection age, and the single
//! database `postgres`. It does not model IAM policies, OCC conflicts,
//! transaction limits or DSQL's SQL dialect beyond index creation.
//!
//! ```no_run
//! # async fn example() -> Result<(), dsql_gateway::Error> {
//! use std::time::Duration;
//! use aws_credential_types::Credentials;
//! use dsql_gateway::{Config, Gateway, TlsIdentity, UpstreamConfig};
//! use dsql_token::Verifier;
//!
//! let key = Credentials::new("AKIDLOCAL", "local-secret", None, None, "example");
//! let config = Config {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     upstream: UpstreamConfig::from_url("postgres://postgres@127.0.0.1:5432/postgres")?,
//!     verifier: Verifier::new("localhost", "us-east-1", [key]),
//!     tls: TlsIdentity::generate("localhost")?,
//!     max_connection_age: Duration::from_secs(3600),
//!     require_sni: true,
//!     startup_timeout: Duration::from_secs(10),
//!     shutdown_grace: Duration::from_secs(5),
//! };
//! let gateway = Gateway::bind(config).await?;
//! println!("listening on {}", gateway.local_addr());
//! gateway.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

mod ddl;
mod relay;
mod session;
mod tls;
mod upstream;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dsql_token::Verifier;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub use relay::MAX_CLIENT_MESSAGE;
pub use tls::TlsIdentity;
pub use upstream::{UpstreamConfig, UpstreamError};

/// Errors of the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid configuration.
    #[error("{0}")]
    Config(String),
    /// Certificate or TLS setup failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The client broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The upstream PostgreSQL could not be reached or spoke nonsense.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The upstream PostgreSQL refused the session.
    #[error("upstream refused the session: {} {}", .0.code, .0.message)]
    UpstreamRejected(UpstreamError),
}

/// Everything the gateway needs to run.
pub struct Config {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The PostgreSQL to relay to. Role `admin` connects as its user; any
    /// other role connects as the upstream role of the same name.
    pub upstream: UpstreamConfig,
    /// Checks passwords as auth tokens; its hostname is also the name the
    /// client's SNI must carry.
    pub verifier: Verifier,
    /// Certificate and key.
    pub tls: TlsIdentity,
    /// Sessions are closed once this old and idle (DSQL: 60 minutes).
    pub max_connection_age: Duration,
    /// Reject TLS handshakes without SNI, as DSQL does.
    pub require_sni: bool,
    /// Time a client has from connect to authenticated.
    pub startup_timeout: Duration,
    /// On shutdown, how long sessions may take to finish their work.
    pub shutdown_grace: Duration,
}

/// State shared by all connections.
pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) upstream: UpstreamConfig,
    pub(crate) tls: TlsAcceptor,
    pub(crate) max_connection_age: Duration,
    pub(crate) require_sni: bool,
    pub(crate) startup_timeout: Duration,
}

/// A bound gateway, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown_grace: Duration,
}

impl Gateway {
    /// Checks the configuration and binds the listening socket.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        if config.max_connection_age.is_zero() {
            return Err(Error::Config(
                "the maximum connection age must be at least 1 second".into(),
            ));
        }
        if config.startup_timeout.is_zero() {
            return Err(Error::Config(
                "the startup timeout must be above zero".into(),
            ));
        }
        let tls = TlsAcceptor::from(config.tls.server_config()?);
        let listener = TcpListener::bind(config.listen).await.map_err(|error| {
            Error::Config(format!("cannot listen on {}: {error}", config.listen))
        })?;
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                verifier: config.verifier,
                upstream: config.upstream,
                tls,
                max_connection_age: config.max_connection_age,
                require_sni: config.require_sni,
                startup_timeout: config.startup_timeout,
            }),
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// Returns the address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Accepts connections until `shutdown` completes, then stops accepting,
    /// lets sessions finish their current work for up to the shutdown grace,
    /// and closes the rest.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let (stop_sender, stop_receiver) = watch::channel(false);
        let mut sessions = JoinSet::new();
        let mut next_id: u64 = 0;
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        next_id += 1;
                        let span = tracing::info_span!("connection", id = next_id, %peer);
                        let shared = Arc::clone(&self.shared);
                        let stop = stop_receiver.clone();
                        sessions.spawn(tracing::Instrument::instrument(
                            session::handle(stream, peer, shared, stop),
                            span,
                        ));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; retrying shortly");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }

        tracing::info!(open_sessions = sessions.len(), "gateway stopping");
        drop(self.listener);
        let _ = stop_sender.send(true);
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                closed = sessions.len(),
                "closing sessions still busy after the shutdown grace"
            );
            sessions.shutdown().await;
        }
        tracing::info!("gateway stopped");
        Ok(())
    }
}
