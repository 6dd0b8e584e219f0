//! State survives SIGKILL: every write the emulator acknowledged before it
//! was killed mid-burst is there after a restart on the same directory.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{emulator_command, sdk_client, token};
use test_support::Server;
use tokio::sync::Mutex;

const WRITERS: usize = 4;
/// Acknowledged writes after which the emulator is killed.
const KILL_AFTER: usize = 120;

/// A write the emulator acknowledged: secret name, version id, value.
type Acknowledged = (String, String, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let state = tempfile::tempdir().unwrap();
    let mut server = Server::start(emulator_command(state.path(), &[]));
    let endpoint = format!("http://{}", server.addr());

    let acknowledged = Arc::new(Mutex::new(Vec::<Acknowledged>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let client = sdk_client(&endpoint).await;
        let acknowledged = Arc::clone(&acknowledged);
        let count = Arc::clone(&count);
        writers.push(tokio::spawn(async move {
            for i in 0..10_000u32 {
                let name = format!("burst/{writer}/{}", i / 5);
                let value = format!("{{\"writer\":{writer},\"write\":{i}}}");
                let version = token(writer as u32 * 100_000 + i);
                let acked = if i % 5 == 0 {
                    client
                        .create_secret()
                        .name(&name)
                        .secret_string(&value)
                        .client_request_token(&version)
                        .send()
                        .await
                        .is_ok()
                } else {
                    client
                        .put_secret_value()
                        .secret_id(&name)
                        .secret_string(&value)
                        .client_request_token(&version)
                        .send()
                        .await
                        .is_ok()
                };
                if !acked {
                    return;
                }
                acknowledged.lock().await.push((name, version, value));
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    while count.load(Ordering::SeqCst) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().await.clone();
    assert!(acknowledged.len() >= KILL_AFTER);

    let restarted = Server::start(emulator_command(state.path(), &[]));
    let client = sdk_client(&format!("http://{}", restarted.addr())).await;
    for (name, version, value) in &acknowledged {
        let read = client
            .get_secret_value()
            .secret_id(name)
            .version_id(version)
            .send()
            .await;
        let read =
            read.unwrap_or_else(|e| panic!("acknowledged write {name} {version} is lost: {e:?}"));
        assert_eq!(
            read.secret_string(),
            Some(value.as_str()),
            "{name} {version}"
        );
    }
    let output = restarted.output();
    assert!(
        !output.contains("ERROR"),
        "the state loads without error:\n{output}"
    );
}
