//! Rotation through a real `lambda_runtime` binary run by
//! `dsql-secrets local secrets`: the four steps in order, failures that
//! leave the pending version, schedules, and a crashed function process.

mod common;

use std::time::Duration;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::types::RotationRulesType;
use common::{emulator_command, rotation_function_binary, sdk_client, token, wait_for_rotation};
use serde_json::Value;
use test_support::Server;

const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test-rotation";
const LIMIT: Duration = Duration::from_secs(60);

struct Running {
    server: Server,
    _state: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl Running {
    fn start(extra: &[&str]) -> Running {
        let state = tempfile::tempdir().unwrap();
        let log = state.path().join("steps.log");
        let mut args = vec![
            String::from("--rotation-function"),
            format!("test-rotation={}", rotation_function_binary().display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut command = emulator_command(&state.path().join("state"), &args);
        command.env("TEST_ROTATION_LOG", &log);
        Running {
            server: Server::start(command),
            _state: state,
            log,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    fn steps(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.stop();
    }
}

fn value_of(
    output: &aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput,
) -> Value {
    serde_json::from_str(output.secret_string().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_runs_four_steps_in_order() {
    let emulator = Running::start(&[]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("app/dsql")
        .secret_string(r#"{"generation":0}"#)
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();

    let rotated = client
        .rotate_secret()
        .secret_id("app/dsql")
        .rotation_lambda_arn(FUNCTION_ARN)
        .client_request_token(token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.version_id(), Some(token(2).as_str()));
    let status = wait_for_rotation(emulator.server.addr(), "app/dsql", LIMIT, |s| {
        s["rotating"] == false && !s["lastRotatedDate"].is_null()
    })
    .await;
    assert!(status["lastFailure"].is_null(), "{status}");

    let t2 = token(2);
    let expected: Vec<String> = ["createSecret", "setSecret", "testSecret", "finishSecret"]
        .iter()
        .map(|s| format!("{s} {t2}"))
        .collect();
    assert_eq!(emulator.steps(), expected);

    let current = client
        .get_secret_value()
        .secret_id("app/dsql")
        .send()
        .await
        .unwrap();
    assert_eq!(current.version_id(), Some(t2.as_str()));
    assert_eq!(
        current.version_stages(),
        ["AWSCURRENT"],
        "AWSPENDING is removed after a successful rotation"
    );
    assert_eq!(value_of(&current)["generation"], 1);
    let previous = client
        .get_secret_value()
        .secret_id("app/dsql")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.version_id(), Some(token(1).as_str()));

    let described = client
        .describe_secret()
        .secret_id("app/dsql")
        .send()
        .await
        .unwrap();
    assert_eq!(described.rotation_enabled(), Some(true));
    assert_eq!(described.rotation_lambda_arn(), Some(FUNCTION_ARN));
    assert!(described.last_rotated_date().is_some());

    let metrics = common::http(emulator.server.addr(), "GET", "/metrics", &[], b"")
        .await
        .body;
    assert!(metrics.contains("secretsmanager_rotation_invocations_total{function=\"test-rotation\",step=\"finishSecret\"} 1"), "{metrics}");
    assert!(
        metrics.contains("secretsmanager_rotations_total{outcome=\"succeeded\"} 1"),
        "{metrics}"
    );
    let output = emulator.server.output();
    assert!(
        output.contains(&format!(
            "[function test-rotation] rotation step finishSecret finished for version {t2}"
        )),
        "the function's output reaches the emulator's stderr:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_step_leaves_pending_and_blocks_rotation() {
    let emulator = Running::start(&[]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string(r#"{"fail_at":"testSecret"}"#)
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();

    client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn(FUNCTION_ARN)
        .client_request_token(token(2))
        .send()
        .await
        .unwrap();
    let status = wait_for_rotation(emulator.server.addr(), "s", LIMIT, |s| {
        s["rotating"] == false && !s["lastFailure"].is_null()
    })
    .await;
    let failure = &status["lastFailure"];
    assert_eq!(failure["step"], "testSecret");
    assert_eq!(failure["versionId"], token(2).as_str());
    assert!(
        failure["errorMessage"]
            .as_str()
            .unwrap()
            .contains("fails at testSecret"),
        "{failure}"
    );
    assert_eq!(status["pendingVersionId"], token(2).as_str());
    let steps: Vec<String> = emulator
        .steps()
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["createSecret", "setSecret", "testSecret"]);

    let current = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert_eq!(current.version_id(), Some(token(1).as_str()));
    let pending = client
        .get_secret_value()
        .secret_id("s")
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(pending.version_id(), Some(token(2).as_str()));
    assert!(
        client
            .describe_secret()
            .secret_id("s")
            .send()
            .await
            .unwrap()
            .last_rotated_date()
            .is_none()
    );

    let again = client
        .rotate_secret()
        .secret_id("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("InvalidRequestException"));
    assert_eq!(
        again.message(),
        Some("A previous rotation isn't complete. That rotation will be reattempted.")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_schedule_rotates_without_being_asked() {
    let emulator = Running::start(&["--allow-short-schedules"]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string(r#"{"generation":0}"#)
        .send()
        .await
        .unwrap();

    let rules = RotationRulesType::builder()
        .schedule_expression("rate(2 seconds)")
        .build();
    client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(rules)
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    let described = client
        .describe_secret()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert!(described.next_rotation_date().is_some());
    assert_eq!(
        described.rotation_rules().unwrap().schedule_expression(),
        Some("rate(2 seconds)")
    );

    wait_for_rotation(emulator.server.addr(), "s", LIMIT, |s| {
        !s["lastRotatedDate"].is_null() && s["rotating"] == false
    })
    .await;
    let current = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert!(value_of(&current)["generation"].as_i64().unwrap() >= 1);
    assert_eq!(
        common::request_count(emulator.server.addr(), "RotateSecret").await,
        1
    );
}

#[tokio::test]
async fn short_schedule_needs_the_flag() {
    let emulator = Running::start(&[]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let rules = RotationRulesType::builder()
        .schedule_expression("rate(10 seconds)")
        .build();
    let error = client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(rules)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidParameterException"));
    let rules = RotationRulesType::builder()
        .automatically_after_days(0)
        .build();
    let error = client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(rules)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidParameterException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn crashed_function_is_restarted() {
    let emulator = Running::start(&[]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("crashes")
        .secret_string(r#"{"crash_at":"setSecret"}"#)
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name("works")
        .secret_string(r#"{"generation":0}"#)
        .send()
        .await
        .unwrap();

    client
        .rotate_secret()
        .secret_id("crashes")
        .rotation_lambda_arn(FUNCTION_ARN)
        .send()
        .await
        .unwrap();
    let status = wait_for_rotation(emulator.server.addr(), "crashes", LIMIT, |s| {
        !s["lastFailure"].is_null()
    })
    .await;
    assert_eq!(status["lastFailure"]["step"], "setSecret");
    assert_eq!(status["lastFailure"]["errorType"], "Emulator.ProcessExited");

    client
        .rotate_secret()
        .secret_id("works")
        .rotation_lambda_arn(FUNCTION_ARN)
        .send()
        .await
        .unwrap();
    let status = wait_for_rotation(emulator.server.addr(), "works", LIMIT, |s| {
        !s["lastRotatedDate"].is_null()
    })
    .await;
    assert!(status["lastFailure"].is_null(), "{status}");
    let output = emulator.server.output();
    assert_eq!(
        output.matches("rotation function started").count(),
        2,
        "{output}"
    );

    // A process killed while it waits for work is replaced as well.
    let idle_pid = output
        .rsplit("pid=")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &idle_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    client
        .create_secret()
        .name("after-kill")
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    client
        .rotate_secret()
        .secret_id("after-kill")
        .rotation_lambda_arn(FUNCTION_ARN)
        .send()
        .await
        .unwrap();
    let status = wait_for_rotation(emulator.server.addr(), "after-kill", LIMIT, |s| {
        !s["lastRotatedDate"].is_null() || !s["lastFailure"].is_null()
    })
    .await;
    assert!(status["lastFailure"].is_null(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_reattempts_failed_rotation_with_same_version() {
    let emulator = Running::start(&["--allow-short-schedules"]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string(r#"{"fail_at":"testSecret"}"#)
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();

    let rules = RotationRulesType::builder()
        .schedule_expression("rate(1 second)")
        .build();
    client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn(FUNCTION_ARN)
        .rotation_rules(rules)
        .client_request_token(token(2))
        .send()
        .await
        .unwrap();
    wait_for_rotation(emulator.server.addr(), "s", LIMIT, |s| {
        !s["lastFailure"].is_null()
    })
    .await;

    // Clearing the fault lets the next scheduled attempt through.
    client
        .put_secret_value()
        .secret_id("s")
        .secret_string(r#"{"fixed":true}"#)
        .client_request_token(token(3))
        .send()
        .await
        .unwrap();
    let status = wait_for_rotation(emulator.server.addr(), "s", LIMIT, |s| {
        !s["lastRotatedDate"].is_null()
    })
    .await;
    assert!(status["lastFailure"].is_null(), "{status}");
    let current = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert_eq!(
        current.version_id(),
        Some(token(2).as_str()),
        "the reattempt finishes the pending version of the failed rotation"
    );
    let finishes: Vec<String> = emulator
        .steps()
        .into_iter()
        .filter(|l| l.starts_with("finishSecret"))
        .collect();
    assert_eq!(finishes, [format!("finishSecret {}", token(2))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_secret_during_a_running_rotation_is_queued_not_dropped() {
    let emulator = Running::start(&[]);
    let client = sdk_client(&emulator.endpoint()).await;
    client
        .create_secret()
        .name("app/queued")
        .secret_string(r#"{"generation":0,"sleep_after_finish_ms":2000}"#)
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();

    let first = client
        .rotate_secret()
        .secret_id("app/queued")
        .rotation_lambda_arn(FUNCTION_ARN)
        .send()
        .await
        .unwrap();
    let first_version = first.version_id().unwrap().to_owned();

    // finishSecret has made the first version current, but the function
    // has not returned yet, so the emulator still runs that rotation.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let current = client
            .get_secret_value()
            .secret_id("app/queued")
            .send()
            .await
            .unwrap();
        if current.version_id() == Some(first_version.as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "first rotation did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = client
        .rotate_secret()
        .secret_id("app/queued")
        .send()
        .await
        .unwrap();
    let second_version = second.version_id().unwrap().to_owned();
    assert_ne!(second_version, first_version);

    let deadline = std::time::Instant::now() + LIMIT;
    let current = loop {
        let current = client
            .get_secret_value()
            .secret_id("app/queued")
            .send()
            .await
            .unwrap();
        if current.version_id() == Some(second_version.as_str()) {
            break current;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second rotation never ran"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(value_of(&current)["generation"], 2);
}
