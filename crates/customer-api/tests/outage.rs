//! When the database stops, the service answers 503 with `Retry-After` and
//! recovers by itself once the database is back. The database is a
//! throwaway PostgreSQL cluster this test creates (as user `nobody`,
//! because `initdb` refuses to run as root), never the shared one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Stack, StackOptions, customer_body};
use reqwest::StatusCode;
use serde_json::Value;

/// `initdb` or `pg_ctl` from the system's PostgreSQL server binaries.
fn postgres_program(name: &str) -> String {
    test_support::postgres_bindir()
        .join(name)
        .display()
        .to_string()
}

/// A PostgreSQL cluster in a temporary folder, stopped when dropped.
struct Cluster {
    folder: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.folder.path().join("data")
    }

    fn create() -> Cluster {
        let folder = tempfile::tempdir().expect("temporary folder");
        let owner = give_to_owner(folder.path());
        let cluster = Cluster {
            folder,
            port: test_support::free_port(),
        };
        let data = cluster.data();
        run(
            owner,
            &[
                &postgres_program("initdb"),
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        cluster.start();
        cluster
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.folder.path().display()
        );
        let log = self.folder.path().join("postgres.log");
        run(
            owner(),
            &[
                &postgres_program("pg_ctl"),
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    fn stop(&self) {
        run(
            owner(),
            &[
                &postgres_program("pg_ctl"),
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(postgres_program("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// The user the cluster runs as: `nobody` when the tests run as root.
fn owner() -> Option<&'static str> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0\n"));
    root.then_some("nobody")
}

fn give_to_owner(folder: &Path) -> Option<&'static str> {
    let owner = owner();
    if let Some(user) = owner {
        let status = Command::new("chown")
            .args(["-R", user])
            .arg(folder)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown of the cluster folder failed");
    }
    owner
}

fn run(owner: Option<&str>, command: &[&str]) {
    let mut process = match owner {
        Some(user) => {
            let mut process = Command::new("runuser");
            process.args(["-u", user, "--"]).args(command);
            process
        }
        None => {
            let mut process = Command::new(command[0]);
            process.args(&command[1..]);
            process
        }
    };
    let output = process
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", command[0]));
    assert!(
        output.status.success(),
        "{} failed: {}",
        command.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_database_gets_503_then_recovers() {
    let cluster = Cluster::create();
    let stack = Stack::start(StackOptions {
        upstream: Some(cluster.url()),
        api_args: vec![
            "--connect-timeout-ms".into(),
            "1000".into(),
            "--acquire-timeout-ms".into(),
            "1000".into(),
        ],
        ..StackOptions::default()
    })
    .await;
    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(&customer_body("outage"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());

    cluster.stop();
    for route in [path.as_str(), "/api/v1/customers", "/health/ready"] {
        let response = stack.http.get(stack.url(route)).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{route}"
        );
        assert_eq!(response.headers()["retry-after"], "1", "{route}");
        let body: Value = response.json().await.unwrap();
        let expected = if route == "/health/ready" {
            "DOWN".into()
        } else {
            Value::from(503)
        };
        assert_eq!(body["status"], expected, "{body}");
    }
    let response = stack
        .http
        .post(stack.url("/api/v1/customers"))
        .json(&customer_body("outage2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    cluster.start();
    let mut recovered = None;
    for _ in 0..50 {
        let response = stack.http.get(stack.url(&path)).send().await.unwrap();
        if response.status() == StatusCode::OK {
            recovered = Some(response.json::<Value>().await.unwrap());
            break;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = recovered.expect("the service recovers once the database is back");
    assert_eq!(recovered, created);
}
