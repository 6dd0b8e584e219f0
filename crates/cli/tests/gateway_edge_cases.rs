//! Edge cases of the local gateway found by attacking it: sessions busy at
//! their maximum age, protocol negotiation and cancel requests as libpq 18
//! sends them, session tokens in the log, and a rejected `CREATE INDEX`
//! inside a multi-statement query.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, TokenRequest};
use test_support::{Gateway, cargo_bin, database_url, venv_bin};

const KEY_ID: &str = "AKIDEDGECASES";
const SECRET: &str = "edge-cases-secret-key";

fn start_gateway(extra_args: &[&str]) -> Gateway {
    // Builds the binary before the gateway starts, so the build does not
    // eat into the startup wait.
    cargo_bin("dsql-secrets", "dsql-secrets");
    Gateway::start_with(&database_url(), KEY_ID, SECRET, extra_args)
}

fn token_signed_with(credentials: &Credentials) -> String {
    let request = TokenRequest::new(
        Gateway::HOSTNAME,
        Gateway::REGION,
        Action::DbConnectAdmin,
        Duration::from_secs(900),
    )
    .expect("valid token request");
    dsql_token::generate(credentials, &request, SystemTime::now())
        .expect("token generation works")
        .expose_secret()
        .to_owned()
}

fn admin_token() -> String {
    token_signed_with(&Credentials::new(KEY_ID, SECRET, None, None, "edge"))
}

fn libpq_conninfo(gateway: &Gateway) -> String {
    format!(
        "host={} hostaddr=127.0.0.1 port={} user=admin dbname=postgres sslmode=verify-full sslrootcert={}",
        Gateway::HOSTNAME,
        gateway.addr().port(),
        gateway.ca_file().display()
    )
}

fn run_psycopg(gateway: &Gateway, script: &str) -> std::process::Output {
    Command::new(venv_bin("python"))
        .args(["-c", script])
        .env("CONNINFO", libpq_conninfo(gateway))
        .env("TOKEN", admin_token())
        .output()
        .expect("python runs")
}

async fn connect(gateway: &Gateway) -> tokio_postgres::Client {
    let pem = std::fs::read(gateway.ca_file()).expect("CA file exists");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(certificate.expect("CA file is PEM"))
            .expect("CA is a valid root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();

    let mut config = tokio_postgres::Config::new();
    config
        .host(Gateway::HOSTNAME)
        .hostaddr(std::net::IpAddr::from([127, 0, 0, 1]))
        .port(gateway.addr().port())
        .user("admin")
        .dbname("postgres")
        .password(admin_token())
        .ssl_mode(tokio_postgres::config::SslMode::Require);
    let (client, connection) = config
        .connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
        .await
        .expect("connects through the gateway");
    tokio::spawn(connection);
    client
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

/// Opens a TLS session to the gateway by hand, for messages no driver sends.
fn raw_tls_session(gateway: &Gateway) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut tcp = TcpStream::connect(gateway.addr()).expect("gateway accepts");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout can be set");
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .expect("SSLRequest is sent");
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).expect("SSLRequest is answered");
    assert_eq!(&answer, b"S");

    let pem = std::fs::read(gateway.ca_file()).expect("CA file exists");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(certificate.expect("PEM")).expect("valid root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = Gateway::HOSTNAME.try_into().expect("valid server name");
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client starts");
    rustls::StreamOwned::new(connection, tcp)
}

fn startup_packet(version: u32, parameters: &[(&str, &str)]) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    for (name, value) in parameters {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = (body.len() as u32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

fn read_message(stream: &mut impl Read) -> (u8, Vec<u8>) {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).expect("a message header");
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0; length - 4];
    stream.read_exact(&mut body).expect("a message body");
    (header[0], body)
}

#[test]
fn running_query_is_not_cut_at_max_age() {
    let gateway = start_gateway(&["--max-connection-age", "2"]);

    runtime().block_on(async {
        let client = connect(&gateway).await;
        client
            .query_one("select 1", &[])
            .await
            .expect("first query");
        client
            .batch_execute("select pg_sleep(3)")
            .await
            .expect("a query running at the maximum age finishes");
    });
}

#[test]
fn copy_in_progress_is_not_cut_at_max_age() {
    let gateway = start_gateway(&["--max-connection-age", "2"]);
    // Autocommit, so that only the COPY keeps the session busy. The row
    // count comes from COPY's own reply, because the idle session is closed
    // right after it.
    let script = "import os, time, psycopg\n\
        conninfo = os.environ['CONNINFO']\n\
        with psycopg.connect(conninfo, password=os.environ['TOKEN'], autocommit=True) as conn:\n\
        \x20   conn.execute('create temporary table copied (n int)')\n\
        \x20   cursor = conn.cursor()\n\
        \x20   with cursor.copy('copy copied from stdin') as copy:\n\
        \x20       for n in range(30):\n\
        \x20           copy.write_row((n,))\n\
        \x20           time.sleep(0.1)\n\
        \x20   print(cursor.rowcount)\n";

    let output = run_psycopg(&gateway, script);
    assert!(
        output.status.success(),
        "COPY running at the maximum age failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "30");
}

#[test]
fn session_token_never_reaches_the_log() {
    let gateway = start_gateway(&[]);
    let session_token = "IQoJb3JpZ2luX2VjEdgeCaseSessionToken+/==";
    let credentials = Credentials::new(KEY_ID, SECRET, Some(session_token.into()), None, "edge");
    let token = token_signed_with(&credentials);

    let output = Command::new("psql")
        .arg(libpq_conninfo(&gateway))
        .args(["-X", "-At", "-c", "select 1"])
        .env("PGPASSWORD", &token)
        .output()
        .expect("psql is installed");
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let log = gateway.output();
    assert!(
        !log.contains(session_token),
        "log contains the session token"
    );
    assert!(
        !log.contains("IQoJb3JpZ2luX2VjEdgeCaseSessionToken%2B"),
        "log contains the encoded session token"
    );
    assert!(!log.contains(&token), "log contains the token");
}

#[test]
fn protocol_3_2_request_is_negotiated_down_to_3_0() {
    let gateway = start_gateway(&[]);

    let mut session = raw_tls_session(&gateway);
    let version_3_2 = (3 << 16) | 2;
    let parameters = [
        ("user", "admin"),
        ("database", "postgres"),
        ("_pq_.test_option", "on"),
    ];
    session
        .write_all(&startup_packet(version_3_2, &parameters))
        .expect("startup is sent");
    let (kind, body) = read_message(&mut session);
    assert_eq!(kind, b'v', "NegotiateProtocolVersion comes first");
    assert_eq!(
        u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        3 << 16,
        "the newest version is 3.0, major included, as PostgreSQL sends it"
    );

    let script = "import os, psycopg\n\
        conninfo = os.environ['CONNINFO'] + ' max_protocol_version=3.2'\n\
        with psycopg.connect(conninfo, password=os.environ['TOKEN']) as conn:\n\
        \x20   print(conn.execute('select 7 * 6').fetchone()[0])\n";
    let output = run_psycopg(&gateway, script);
    assert!(
        output.status.success(),
        "libpq asking for protocol 3.2 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
}

#[test]
fn cancel_over_tls_reports_success_to_libpq() {
    let gateway = start_gateway(&[]);
    // cancel_safe() sends the cancel request over TLS (libpq 17 and later)
    // and raises when the server does not end that session cleanly.
    let script = "import os, threading, time, psycopg\n\
        conn = psycopg.connect(os.environ['CONNINFO'], password=os.environ['TOKEN'])\n\
        errors = []\n\
        def cancel_later():\n\
        \x20   time.sleep(1)\n\
        \x20   try:\n\
        \x20       conn.cancel_safe()\n\
        \x20   except Exception as error:\n\
        \x20       errors.append(error)\n\
        threading.Thread(target=cancel_later).start()\n\
        try:\n\
        \x20   conn.execute('select pg_sleep(60)')\n\
        except psycopg.errors.QueryCanceled:\n\
        \x20   print('canceled')\n\
        time.sleep(1)\n\
        assert not errors, errors\n";
    let output = run_psycopg(&gateway, script);
    assert!(
        output.status.success(),
        "cancel over TLS failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "canceled");
}

#[test]
fn rejected_index_after_begin_aborts_the_transaction() {
    let gateway = start_gateway(&[]);

    runtime().block_on(async {
        let client = connect(&gateway).await;
        client
            .batch_execute("create temporary table indexed (n int)")
            .await
            .expect("table is created");

        let error = client
            .batch_execute("BEGIN; CREATE INDEX i ON indexed (n); SELECT 1")
            .await
            .expect_err("plain CREATE INDEX is rejected");
        assert_eq!(
            error.code().map(|code| code.code()),
            Some("0A000"),
            "{error}"
        );

        let error = client
            .batch_execute("SELECT 1")
            .await
            .expect_err("the transaction BEGIN opened is aborted");
        assert_eq!(
            error.code().map(|code| code.code()),
            Some("25P02"),
            "{error}"
        );
        client.batch_execute("ROLLBACK").await.expect("rollback");
        client
            .query_one("select 1", &[])
            .await
            .expect("the session works after rollback");
    });
}
