//! `dsql-secrets local up` refuses to start, before starting anything, when
//! its state directory or HTTP port is taken.

use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::cargo_bin;

fn local_up(state_dir: &std::path::Path, port: u16) -> std::process::Output {
    Command::new(cargo_bin("dsql-secrets", "dsql-secrets"))
        .args(["local", "up", "--port", &port.to_string()])
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("dsql-secrets runs")
}

#[test]
fn taken_port_is_refused_before_anything_starts() {
    let state = tempfile::tempdir().expect("temporary folder");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();

    let output = local_up(state.path(), port);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("port {port} is in use")),
        "{stderr}"
    );
    assert!(
        !state.path().join("postgres").exists(),
        "nothing was started"
    );
}

#[test]
fn state_directory_held_by_another_run_is_refused() {
    let state = tempfile::tempdir().expect("temporary folder");
    let lock = state.path().join("local-up.lock");
    let mut holder = Command::new("flock")
        .arg("--nonblock")
        .arg(&lock)
        .args(["sleep", "30"])
        .stdout(Stdio::null())
        .spawn()
        .expect("flock (util-linux) runs");
    std::thread::sleep(Duration::from_millis(300));

    let port = test_support::free_port();
    let output = local_up(state.path(), port);
    let _ = holder.kill();
    let _ = holder.wait();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("is in use by another `local up`"),
        "{stderr}"
    );
}
