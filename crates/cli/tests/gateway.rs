//! The local gateway, driven through `dsql-secrets local gateway` with real
//! clients (psql, pgbench, tokio-postgres, psycopg) and a real PostgreSQL.
//!
//! Every gateway here logs at `trace`, and each test ends by checking that
//! the log contains none of the tokens or signatures it was shown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, TokenRequest};
use test_support::{Gateway, cargo_bin, database_url, venv_bin};

const KEY_ID: &str = "AKIDGATEWAYTEST";
const SECRET: &str = "gateway-test-secret-key";

fn start_gateway(extra_args: &[&str]) -> Gateway {
    let mut args = vec!["--startup-timeout", "3"];
    args.extend_from_slice(extra_args);
    Gateway::start_with(&database_url(), KEY_ID, SECRET, &args)
}

fn credentials() -> Credentials {
    Credentials::new(KEY_ID, SECRET, None, None, "gateway-test")
}

fn token_for(role: &str, lifetime: Duration) -> String {
    let request = TokenRequest::new(
        Gateway::HOSTNAME,
        Gateway::REGION,
        Action::for_role(role),
        lifetime,
    )
    .expect("valid token request");
    dsql_token::generate(&credentials(), &request, SystemTime::now())
        .expect("token generation works")
        .expose_secret()
        .to_owned()
}

fn admin_token() -> String {
    token_for("admin", Duration::from_secs(900))
}

fn presigned(
    credentials: &Credentials,
    hostname: &str,
    action: Action,
    lifetime: Duration,
    signed_at: SystemTime,
) -> String {
    dsql_token::presign(
        credentials,
        hostname,
        Gateway::REGION,
        action,
        lifetime,
        signed_at,
    )
    .expect("presigning works")
}

fn signature_of(token: &str) -> &str {
    token
        .rsplit_once("X-Amz-Signature=")
        .map(|(_, signature)| &signature[..64.min(signature.len())])
        .expect("token has a signature")
}

fn assert_log_has_no_secrets(gateway: &Gateway, tokens: &[&str]) {
    let log = gateway.output();
    for token in tokens {
        assert!(!log.contains(token), "gateway log contains a token");
        if token.contains("X-Amz-Signature=") {
            assert!(
                !log.contains(signature_of(token)),
                "gateway log contains a signature"
            );
        }
    }
    assert!(
        !log.contains(SECRET),
        "gateway log contains the secret access key"
    );
}

fn libpq_conninfo(gateway: &Gateway, sslmode: &str) -> String {
    format!(
        "host={} hostaddr=127.0.0.1 port={} user=admin dbname=postgres sslmode={sslmode} sslrootcert={}",
        Gateway::HOSTNAME,
        gateway.addr().port(),
        gateway.ca_file().display()
    )
}

fn run_psql(conninfo: &str, password: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .arg(conninfo)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql is installed")
}

fn tls_connector(ca_file: &Path) -> tokio_postgres_rustls::MakeRustlsConnect {
    let pem = std::fs::read(ca_file).expect("CA file exists");
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(certificate.expect("CA file is PEM"))
            .expect("CA is a valid root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

fn client_config(gateway: &Gateway, role: &str, password: &str) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(Gateway::HOSTNAME)
        .hostaddr(std::net::IpAddr::from([127, 0, 0, 1]))
        .port(gateway.addr().port())
        .user(role)
        .dbname("postgres")
        .password(password)
        .ssl_mode(tokio_postgres::config::SslMode::Require)
        .connect_timeout(Duration::from_secs(10));
    config
}

async fn connect(
    gateway: &Gateway,
    role: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = client_config(gateway, role, password)
        .connect(tls_connector(&gateway.ca_file()))
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

#[test]
fn psql_runs_a_query_with_verify_full() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    let output = run_psql(&libpq_conninfo(&gateway, "verify-full"), &token, "select 1");
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1");
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn pgbench_initialises_and_runs_select_only() {
    let gateway = start_gateway(&[]);
    let token = admin_token();
    let run = |args: &[&str]| {
        Command::new("pgbench")
            .args(args)
            .args([
                "-h",
                Gateway::HOSTNAME,
                "-p",
                &gateway.addr().port().to_string(),
            ])
            .args(["-U", "admin", "postgres"])
            .env("PGHOSTADDR", "127.0.0.1")
            .env("PGSSLMODE", "require")
            .env("PGPASSWORD", &token)
            .output()
            .expect("pgbench is installed")
    };

    let init = run(&["-i", "-q", "-s", "1"]);
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let select_only = run(&["-S", "-T", "5", "-c", "4", "-j", "2"]);
    let report = String::from_utf8_lossy(&select_only.stdout).into_owned();
    assert!(
        select_only.status.success(),
        "pgbench -S failed: {}",
        String::from_utf8_lossy(&select_only.stderr)
    );
    assert!(
        report.contains("number of failed transactions: 0"),
        "{report}"
    );
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn tokio_postgres_connects_with_verify_full() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    runtime().block_on(async {
        let client = connect(&gateway, "admin", &token)
            .await
            .expect("connects through the gateway");
        let row = client
            .query_one("select 40 + 2", &[])
            .await
            .expect("query runs");
        assert_eq!(row.get::<_, i32>(0), 42);
    });
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn psycopg_connects_and_queries() {
    let gateway = start_gateway(&[]);
    let token = admin_token();
    let script = "import os, psycopg\n\
        with psycopg.connect(os.environ['CONNINFO'], password=os.environ['TOKEN']) as conn:\n\
        \x20   print(conn.execute('select 7 * 6').fetchone()[0])\n";

    let output = Command::new(venv_bin("python"))
        .args(["-c", script])
        .env("CONNINFO", libpq_conninfo(&gateway, "verify-full"))
        .env("TOKEN", &token)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "psycopg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn create_index_async_runs_and_plain_create_index_is_rejected() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    runtime().block_on(async {
        let client = connect(&gateway, "admin", &token).await.expect("connects");
        client
            .batch_execute("create temp table gateway_index_test (id int, city text)")
            .await
            .expect("table is created");
        client
            .batch_execute("create index async gateway_city_idx on gateway_index_test (city)")
            .await
            .expect("CREATE INDEX ASYNC runs");
        let count: i64 = client
            .query_one(
                "select count(*) from pg_indexes where indexname = 'gateway_city_idx'",
                &[],
            )
            .await
            .expect("catalog query runs")
            .get(0);
        assert_eq!(count, 1);

        for (sql, message) in [
            (
                "create index gateway_plain_idx on gateway_index_test (id)",
                "unsupported mode. please use CREATE INDEX ASYNC.",
            ),
            (
                "create index concurrently gateway_conc_idx on gateway_index_test (id)",
                "CONCURRENTLY not supported for CREATE INDEX",
            ),
        ] {
            let error = client
                .batch_execute(sql)
                .await
                .expect_err("plain CREATE INDEX is rejected");
            let db_error = error.as_db_error().expect("a database error");
            assert_eq!(db_error.code().code(), "0A000");
            assert_eq!(db_error.message(), message);
        }
        let prepared = client
            .prepare("create index gateway_prepared_idx on gateway_index_test (id)")
            .await;
        let executed = match prepared {
            Ok(statement) => client.execute(&statement, &[]).await.map(|_| ()),
            Err(error) => Err(error),
        };
        let error = executed.expect_err("prepared CREATE INDEX is rejected");
        assert_eq!(error.as_db_error().map(|e| e.code().code()), Some("0A000"));

        let row = client
            .query_one("select 1", &[])
            .await
            .expect("session still works");
        assert_eq!(row.get::<_, i32>(0), 1);
    });
}

/// How a refusal must look to the client.
struct Refusal {
    name: &'static str,
    password: String,
    role: &'static str,
    log_reason: &'static str,
    hint_prefix: Option<&'static str>,
}

#[test]
fn bad_tokens_are_refused_like_dsql_and_logged_precisely() {
    let gateway = start_gateway(&[]);
    let now = SystemTime::now();
    let minute = Duration::from_secs(60);

    let good = admin_token();
    let mut forged = good.clone();
    let signature_start =
        forged.rfind("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let first = &forged[signature_start..signature_start + 1];
    let replacement = if first == "0" { "1" } else { "0" };
    forged.replace_range(signature_start..signature_start + 1, replacement);
    let unknown_key = Credentials::new("AKIDUNKNOWN", "whatever", None, None, "test");

    let refusals = [
        Refusal {
            name: "expired token",
            password: presigned(
                &credentials(),
                Gateway::HOSTNAME,
                Action::DbConnectAdmin,
                minute,
                now - 2 * minute,
            ),
            role: "admin",
            log_reason: "reason=\"expired\"",
            hint_prefix: Some("Signature expired"),
        },
        Refusal {
            name: "forged signature",
            password: forged,
            role: "admin",
            log_reason: "reason=\"bad_signature\"",
            hint_prefix: None,
        },
        Refusal {
            name: "token for another hostname",
            password: presigned(
                &credentials(),
                "other.dsql.us-east-1.on.aws",
                Action::DbConnectAdmin,
                minute,
                now,
            ),
            role: "admin",
            log_reason: "reason=\"wrong_hostname\"",
            hint_prefix: None,
        },
        Refusal {
            name: "DbConnect token for admin",
            password: token_for("app_user", Duration::from_secs(900)),
            role: "admin",
            log_reason: "reason=\"wrong_action\"",
            hint_prefix: Some("Wrong user to action mapping"),
        },
        Refusal {
            name: "unknown access key",
            password: presigned(
                &unknown_key,
                Gateway::HOSTNAME,
                Action::DbConnectAdmin,
                minute,
                now,
            ),
            role: "admin",
            log_reason: "reason=\"unknown_access_key\"",
            hint_prefix: None,
        },
        Refusal {
            name: "lifetime over 604800 s",
            password: presigned(
                &credentials(),
                Gateway::HOSTNAME,
                Action::DbConnectAdmin,
                Duration::from_secs(604_801),
                now,
            ),
            role: "admin",
            log_reason: "reason=\"lifetime_out_of_range\"",
            hint_prefix: None,
        },
        Refusal {
            name: "garbage password",
            password: String::from("hunter2-not-a-token"),
            role: "admin",
            log_reason: "reason=\"malformed\"",
            hint_prefix: None,
        },
        Refusal {
            name: "empty password",
            password: String::new(),
            role: "admin",
            log_reason: "reason=\"malformed\"",
            hint_prefix: None,
        },
    ];

    runtime().block_on(async {
        for refusal in &refusals {
            let before = gateway.output().len();
            let error = connect(&gateway, refusal.role, &refusal.password)
                .await
                .err()
                .unwrap_or_else(|| panic!("{} was accepted", refusal.name));
            let db_error = error
                .as_db_error()
                .unwrap_or_else(|| panic!("{}: not a database error: {error}", refusal.name));
            assert_eq!(db_error.severity(), "FATAL", "{}", refusal.name);
            assert_eq!(db_error.code().code(), "08006", "{}", refusal.name);
            assert_eq!(
                db_error.message(),
                "unable to accept connection, access denied",
                "{}",
                refusal.name
            );
            match refusal.hint_prefix {
                Some(prefix) => {
                    let hint = db_error.hint().unwrap_or_default();
                    assert!(hint.starts_with(prefix), "{}: hint {hint:?}", refusal.name);
                }
                None => assert_eq!(db_error.hint(), None, "{}", refusal.name),
            }
            let log = wait_for_log(&gateway, before, refusal.log_reason);
            assert!(
                log.contains(refusal.log_reason),
                "{}: log lacks {}:\n{log}",
                refusal.name,
                refusal.log_reason
            );

            let client = connect(&gateway, "admin", &good)
                .await
                .expect("gateway keeps serving");
            client
                .query_one("select 1", &[])
                .await
                .expect("query after a refusal");
        }
    });

    let passwords: Vec<&str> = refusals
        .iter()
        .map(|refusal| refusal.password.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert_log_has_no_secrets(&gateway, &passwords);
    assert_log_has_no_secrets(&gateway, &[&good]);
}

fn wait_for_log(gateway: &Gateway, from: usize, needle: &str) -> String {
    for _ in 0..50 {
        let log = gateway.output();
        let tail = log.get(from..).unwrap_or_default().to_owned();
        if tail.contains(needle) {
            return tail;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    gateway.output().get(from..).unwrap_or_default().to_owned()
}

#[test]
fn connections_without_tls_or_sni_are_refused() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    let plain = run_psql(&libpq_conninfo(&gateway, "disable"), &token, "select 1");
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(stderr.contains("TLS is required"), "{stderr}");

    let by_ip = format!(
        "host=127.0.0.1 port={} user=admin dbname=postgres sslmode=require",
        gateway.addr().port()
    );
    let no_sni = run_psql(&by_ip, &token, "select 1");
    assert!(!no_sni.status.success());
    let stderr = String::from_utf8_lossy(&no_sni.stderr);
    assert!(stderr.contains("SNI is required"), "{stderr}");

    let log = gateway.output();
    assert!(log.contains("rejected plain-text startup"), "{log}");
    assert!(log.contains("rejected TLS connection without SNI"), "{log}");

    let output = run_psql(&libpq_conninfo(&gateway, "verify-full"), &token, "select 1");
    assert!(output.status.success(), "gateway stopped serving");
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn silent_client_is_dropped_after_startup_timeout() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    let mut silent = TcpStream::connect(gateway.addr()).expect("gateway accepts");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout set");

    let output = run_psql(&libpq_conninfo(&gateway, "verify-full"), &token, "select 1");
    assert!(
        output.status.success(),
        "another client is served meanwhile"
    );

    let mut buffer = [0u8; 16];
    let read = silent
        .read(&mut buffer)
        .expect("the gateway closes the silent connection");
    assert_eq!(read, 0, "the gateway sends nothing to a silent client");
    // The gateway logs the timeout just after closing the socket.
    let log = wait_for_log(&gateway, 0, "startup did not finish in time");
    assert!(log.contains("startup did not finish in time"), "{log}");
}

#[test]
fn absurd_startup_length_is_refused() {
    let gateway = start_gateway(&[]);

    let mut client = TcpStream::connect(gateway.addr()).expect("gateway accepts");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    client
        .write_all(&0x7fff_ff00u32.to_be_bytes())
        .expect("write length");
    client
        .write_all(&196_608u32.to_be_bytes())
        .expect("write protocol");
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response);

    assert_eq!(response.first(), Some(&b'E'), "an ErrorResponse is sent");
    let text = String::from_utf8_lossy(&response);
    assert!(text.contains("08P01"), "{text}");
    assert!(text.contains("invalid length of startup packet"), "{text}");
    assert!(
        gateway
            .output()
            .contains("rejected startup packet with invalid length")
    );

    let token = admin_token();
    let output = run_psql(&libpq_conninfo(&gateway, "verify-full"), &token, "select 1");
    assert!(output.status.success(), "gateway keeps serving");
}

#[test]
fn old_connections_are_closed_and_new_ones_work() {
    let gateway = start_gateway(&["--max-connection-age", "2"]);

    runtime().block_on(async {
        let old = connect(&gateway, "admin", &admin_token())
            .await
            .expect("connects");
        old.query_one("select 1", &[]).await.expect("first query");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(
            old.is_closed() || old.query_one("select 1", &[]).await.is_err(),
            "old session still open"
        );

        let fresh = connect(&gateway, "admin", &admin_token())
            .await
            .expect("a new connection works");
        fresh
            .query_one("select 1", &[])
            .await
            .expect("query on the new connection");
    });
    assert!(gateway.output().contains("reason=\"max_connection_age\""));
}

#[test]
fn open_transaction_is_not_cut_at_max_age() {
    let gateway = start_gateway(&["--max-connection-age", "1"]);

    runtime().block_on(async {
        let client = connect(&gateway, "admin", &admin_token())
            .await
            .expect("connects");
        client.batch_execute("begin").await.expect("begin");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        client
            .query_one("select 1", &[])
            .await
            .expect("busy session keeps running");
        client.batch_execute("commit").await.expect("commit");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            client.query_one("select 1", &[]).await.is_err(),
            "idle old session is closed"
        );
    });
}

#[test]
fn two_hundred_concurrent_connections_all_succeed() {
    let gateway = start_gateway(&[]);
    let token = admin_token();

    let failures = runtime().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..200i32 {
            let config = client_config(&gateway, "admin", &token);
            let connector = tls_connector(&gateway.ca_file());
            tasks.spawn(async move {
                let (client, connection) = config.connect(connector).await?;
                let connection = tokio::spawn(connection);
                let row = client
                    .query_one(
                        "select $1::int from (select pg_sleep(0.2)) as pause",
                        &[&index],
                    )
                    .await;
                drop(client);
                let _ = connection.await;
                row.map(|row| row.get::<_, i32>(0) == index)
            });
        }
        let mut failures = Vec::new();
        while let Some(result) = tasks.join_next().await {
            match result {
                Ok(Ok(true)) => {}
                other => failures.push(format!("{other:?}")),
            }
        }
        failures
    });
    assert!(
        failures.is_empty(),
        "{} of 200 failed: {:?}",
        failures.len(),
        failures.first()
    );
    assert_log_has_no_secrets(&gateway, &[&token]);
}

#[test]
fn sigterm_stops_the_gateway_cleanly() {
    let mut gateway = start_gateway(&[]);
    let status = gateway.server().stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(gateway.output().contains("gateway stopped"));
}

#[test]
fn bad_configuration_is_rejected_at_start() {
    let binary = cargo_bin("dsql-secrets", "dsql-secrets");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--upstream", "mysql://x", "--access-key", "A:B"],
            "upstream URL is invalid",
        ),
        (
            &["--upstream", "postgres://h", "--access-key", "nocolon"],
            "ACCESS_KEY_ID:SECRET_ACCESS_KEY",
        ),
        (
            &[
                "--upstream",
                "postgres://h",
                "--access-key",
                "A:B",
                "--hostname",
                "https://x",
            ],
            "invalid --hostname",
        ),
        (
            &[
                "--upstream",
                "postgres://h",
                "--access-key",
                "A:B",
                "--max-connection-age",
                "0",
            ],
            "max-connection-age",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(&binary)
            .args(["local", "gateway", "--listen", "127.0.0.1:0"])
            .args(*args)
            .output()
            .expect("binary runs");
        assert!(!output.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
