//! The four rotation steps against moto (Secrets Manager) and the
//! token-checking gateway in front of the real PostgreSQL.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use common::{FaultPoint, Stack, new_version_id};
use dsql_rotation::{AWSCURRENT, AWSPENDING, Error, RotationEvent, Step, TrustRoots};
use dsql_token::Action;

const PLACEHOLDER: &str = "placeholder-replaced-by-the-first-rotation";

/// Every version's staging labels and value: what a step may change.
async fn snapshot(stack: &Stack, arn: &str) -> Vec<(String, Vec<String>, Option<String>)> {
    let stages: HashMap<String, Vec<String>> = stack.stages(arn).await;
    let mut versions = Vec::new();
    for (version, mut labels) in stages {
        labels.sort();
        let value = stack
            .client()
            .get_secret_value()
            .secret_id(arn)
            .version_id(&version)
            .send()
            .await
            .ok()
            .and_then(|output| output.secret_string().map(str::to_owned));
        versions.push((version, labels, value));
    }
    versions.sort();
    versions
}

/// Checks the end state of a finished rotation: one AWSCURRENT holding a
/// live token the gateway accepts, AWSPENDING nowhere else.
async fn assert_converged(stack: &Stack, arn: &str) {
    let stages = stack.stages(arn).await;
    let current: Vec<_> = stages
        .iter()
        .filter(|(_, labels)| labels.iter().any(|l| l == AWSCURRENT))
        .collect();
    assert_eq!(current.len(), 1, "exactly one AWSCURRENT: {stages:?}");
    for (version, labels) in &stages {
        if labels.iter().any(|l| l == AWSPENDING) {
            assert!(
                labels.iter().any(|l| l == AWSCURRENT),
                "AWSPENDING left on non-current version {version}: {stages:?}"
            );
        }
    }
    let token = stack.password(arn, AWSCURRENT).await;
    let parsed = token.parse().expect("AWSCURRENT holds a DSQL token");
    assert!(parsed.expires_at() > SystemTime::now());
    stack
        .login(&token)
        .await
        .expect("the gateway accepts the AWSCURRENT token");
}

#[tokio::test]
async fn full_rotation_replaces_placeholder_with_gateway_token() {
    let stack = Stack::start();
    let initial = stack.secret_value(PLACEHOLDER);
    let mut with_extra: serde_json::Value = serde_json::from_str(&initial).unwrap();
    with_extra["dbClusterIdentifier"] = "local".into();
    let initial = with_extra.to_string();
    let arn = stack.create_secret("full-rotation", &initial).await;
    let old_version = stack.version_with(&arn, AWSCURRENT).await.unwrap();
    let version = new_version_id("full");

    stack.begin_rotation(&arn, &version).await;
    let rotator = stack.rotator(stack.client());
    stack.rotate(&rotator, &arn, &version).await.unwrap();

    assert_eq!(
        stack.version_with(&arn, AWSCURRENT).await.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(
        stack.version_with(&arn, "AWSPREVIOUS").await.as_deref(),
        Some(old_version.as_str())
    );
    assert_eq!(
        stack.value(&arn, "AWSPREVIOUS").await.as_deref(),
        Some(initial.as_str())
    );
    let token = stack.password(&arn, AWSCURRENT).await;
    let parsed = token.parse().unwrap();
    assert_eq!(parsed.hostname(), "localhost");
    assert_eq!(parsed.region(), "us-east-1");
    assert_eq!(parsed.action(), Action::DbConnectAdmin);
    assert_eq!(parsed.lifetime(), Duration::from_secs(28_800));
    let current: serde_json::Value =
        serde_json::from_str(&stack.value(&arn, AWSCURRENT).await.unwrap()).unwrap();
    assert_eq!(current["dbClusterIdentifier"], "local");
    assert_eq!(
        current["port"],
        serde_json::Value::String(stack.gateway.addr().port().to_string())
    );
    assert_converged(&stack, &arn).await;
}

#[tokio::test]
async fn each_step_repeated_after_success_changes_nothing() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("repeat-steps", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("repeat");
    stack.begin_rotation(&arn, &version).await;
    let rotator = stack.rotator(stack.client());

    for step in [
        Step::CreateSecret,
        Step::SetSecret,
        Step::TestSecret,
        Step::FinishSecret,
    ] {
        let event = RotationEvent::new(&arn, &version, step.as_str()).unwrap();
        rotator.run(&event).await.unwrap();
        let after_first = snapshot(&stack, &arn).await;
        rotator.run(&event).await.unwrap();
        let after_second = snapshot(&stack, &arn).await;
        assert_eq!(
            after_first, after_second,
            "repeating {step} changed the secret"
        );
    }
    // Once the version is current, every step succeeds and does nothing.
    let finished = snapshot(&stack, &arn).await;
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = RotationEvent::new(&arn, &version, step).unwrap();
        rotator.run(&event).await.unwrap();
    }
    assert_eq!(finished, snapshot(&stack, &arn).await);
    assert_converged(&stack, &arn).await;
}

/// Counts the Secrets Manager calls of one clean rotation.
async fn calls_in_clean_rotation(stack: &Stack) -> usize {
    let arn = stack
        .create_secret("count-calls", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("count");
    stack.begin_rotation(&arn, &version).await;
    let (client, calls) = stack.failing_client(usize::MAX, FaultPoint::BeforeSend);
    stack
        .rotate(&stack.rotator(client), &arn, &version)
        .await
        .unwrap();
    calls.load(std::sync::atomic::Ordering::SeqCst)
}

/// For each Secrets Manager call of a rotation in turn, and both before the
/// request is sent and after its response is lost: the rotation fails, the
/// old token keeps working, and running the rotation again (as the service
/// does) converges.
#[tokio::test]
async fn simulated_fault_on_each_call_converges_on_retry() {
    let stack = Stack::start();
    let total = calls_in_clean_rotation(&stack).await;
    assert!(total >= 10, "a rotation makes {total} calls");

    for point in [FaultPoint::BeforeSend, FaultPoint::AfterSend] {
        for nth in 1..=total {
            let name = format!("fault-{nth}-{point:?}").to_lowercase();
            // Signed a minute ago, so that it differs from any new token.
            let signed_at = SystemTime::now() - Duration::from_secs(60);
            let old_token = stack.token_signed_at(signed_at, Duration::from_secs(28_800));
            let arn = stack
                .create_secret(&name, &stack.secret_value(old_token.expose_secret()))
                .await;
            let version = new_version_id("fault");
            stack.begin_rotation(&arn, &version).await;

            let (client, _) = stack.failing_client(nth, point);
            let outcome = stack.rotate(&stack.rotator(client), &arn, &version).await;

            // A failed rotation leaves the old version current, unless the
            // lost response was the one to finishSecret's own update.
            let current_version = stack.version_with(&arn, AWSCURRENT).await;
            if outcome.is_err() && current_version.as_deref() != Some(version.as_str()) {
                let current_token = stack.password(&arn, AWSCURRENT).await;
                assert_eq!(current_token, old_token, "{name}: AWSCURRENT changed");
            }
            stack
                .login(&old_token)
                .await
                .unwrap_or_else(|error| panic!("{name}: old token refused: {error}"));

            // Run the rotation again: the same version while it is still
            // pending, as the service reattempts it; else a new one.
            let rotator = stack.rotator(stack.client());
            if stack.version_with(&arn, AWSCURRENT).await.as_deref() != Some(version.as_str()) {
                let pending = stack.version_with(&arn, AWSPENDING).await;
                let retry_version = match pending {
                    Some(pending) if pending == version => version.clone(),
                    _ => {
                        let retry = new_version_id("retry");
                        stack.begin_rotation(&arn, &retry).await;
                        retry
                    }
                };
                stack
                    .rotate(&rotator, &arn, &retry_version)
                    .await
                    .unwrap_or_else(|error| panic!("{name}: retry failed: {error}"));
            }
            assert_converged(&stack, &arn).await;
            assert_ne!(stack.password(&arn, AWSCURRENT).await, old_token, "{name}");
        }
    }
}

#[tokio::test]
async fn secret_deleted_mid_rotation_fails_then_converges_after_restore() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("deleted-mid-rotation", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("deleted");
    stack.begin_rotation(&arn, &version).await;
    let rotator = stack.rotator(stack.client());
    let create = RotationEvent::new(&arn, &version, "createSecret").unwrap();
    rotator.run(&create).await.unwrap();

    stack
        .client()
        .delete_secret()
        .secret_id(&arn)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let result = stack.rotate(&rotator, &arn, &version).await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, Error::SecretsManager { .. }),
        "unexpected error: {error}"
    );

    stack
        .client()
        .restore_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    stack.rotate(&rotator, &arn, &version).await.unwrap();
    assert_converged(&stack, &arn).await;
}

#[tokio::test]
async fn pending_label_removed_mid_rotation_stops_that_rotation() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("pending-removed", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("removed");
    stack.begin_rotation(&arn, &version).await;
    let rotator = stack.rotator(stack.client());
    let create = RotationEvent::new(&arn, &version, "createSecret").unwrap();
    rotator.run(&create).await.unwrap();

    stack
        .client()
        .update_secret_version_stage()
        .secret_id(&arn)
        .version_stage(AWSPENDING)
        .remove_from_version_id(&version)
        .send()
        .await
        .unwrap();
    let finish = RotationEvent::new(&arn, &version, "finishSecret").unwrap();
    let error = rotator.run(&finish).await.unwrap_err();
    assert!(matches!(error, Error::VersionNotPending { .. }), "{error}");
    assert_ne!(
        stack.version_with(&arn, AWSCURRENT).await.as_deref(),
        Some(version.as_str())
    );

    let retry = new_version_id("after-removed");
    stack.begin_rotation(&arn, &retry).await;
    stack.rotate(&rotator, &arn, &retry).await.unwrap();
    assert_converged(&stack, &arn).await;
}

#[tokio::test]
async fn unknown_version_is_rejected() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("disabled", &stack.secret_value(PLACEHOLDER))
        .await;
    let rotator = stack.rotator(stack.client());

    let unknown = RotationEvent::new(&arn, new_version_id("unknown"), "createSecret").unwrap();
    let error = rotator.run(&unknown).await.unwrap_err();
    assert!(matches!(error, Error::VersionNotFound { .. }), "{error}");
}

#[tokio::test]
async fn bad_secret_fails_create_and_leaves_secret_unchanged() {
    let stack = Stack::start();
    let port = stack.gateway.addr().port().to_string();
    let cases = [
        ("not-json", "{not json".to_owned(), "not JSON"),
        (
            "no-host",
            serde_json::json!({"username":"admin","password":"x","engine":"postgres"}).to_string(),
            "no \"host\" field",
        ),
        (
            "no-username",
            serde_json::json!({"password":"x","host":"localhost","engine":"postgres"}).to_string(),
            "no \"username\" field",
        ),
        (
            "no-password",
            serde_json::json!({"username":"admin","host":"localhost","engine":"postgres"})
                .to_string(),
            "no \"password\" field",
        ),
        (
            "mysql",
            serde_json::json!({"username":"admin","password":"x","host":"localhost","engine":"mysql","port":port})
                .to_string(),
            "not \"postgres\"",
        ),
        (
            "foreign-host",
            serde_json::json!({"username":"admin","password":"x","host":"db.example.com","engine":"postgres"})
                .to_string(),
            "not an Aurora DSQL cluster endpoint",
        ),
    ];
    let rotator = stack.rotator(stack.client());
    for (name, value, expected) in cases {
        let arn = stack.create_secret(name, &value).await;
        let version = new_version_id(name);
        stack.begin_rotation(&arn, &version).await;
        let before = snapshot(&stack, &arn).await;

        let event = RotationEvent::new(&arn, &version, "createSecret").unwrap();
        let error = rotator.run(&event).await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, Error::InvalidSecret { .. }),
            "{name}: {message}"
        );
        assert!(message.contains(expected), "{name}: {message}");
        assert!(message.contains(AWSCURRENT), "{name}: {message}");
        assert_eq!(
            before,
            snapshot(&stack, &arn).await,
            "{name}: secret changed"
        );
    }
}

#[tokio::test]
async fn untrusted_gateway_certificate_fails_test_secret() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("untrusted", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("untrusted");
    stack.begin_rotation(&arn, &version).await;
    let rotator = dsql_rotation::Rotator::new(
        stack.client(),
        aws_credential_types::provider::SharedCredentialsProvider::new(Stack::credentials()),
        stack.config_with_roots(&TrustRoots::amazon()),
    );

    let error = stack.rotate(&rotator, &arn, &version).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::PendingDiscarded { .. }), "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert_eq!(
        stack.value(&arn, AWSCURRENT).await.as_deref(),
        Some(stack.secret_value(PLACEHOLDER).as_str())
    );
    assert_eq!(stack.version_with(&arn, AWSPENDING).await, None);
}

#[tokio::test]
async fn certificate_for_another_hostname_fails_test_secret() {
    let stack = Stack::start();
    let mut value: serde_json::Value =
        serde_json::from_str(&stack.secret_value(PLACEHOLDER)).unwrap();
    value["host"] = "127.0.0.1".into();
    let arn = stack.create_secret("wrong-name", &value.to_string()).await;
    let version = new_version_id("wrong-name");
    stack.begin_rotation(&arn, &version).await;
    let rotator = stack.rotator(stack.client());

    let error = stack.rotate(&rotator, &arn, &version).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("not valid for name"), "{message}");
    assert_ne!(
        stack.version_with(&arn, AWSCURRENT).await.as_deref(),
        Some(version.as_str())
    );
}

#[tokio::test]
async fn gateway_refusal_fails_test_secret_and_keeps_old_token() {
    let stack = Stack::start();
    let old_token = stack.token_signed_at(SystemTime::now(), Duration::from_secs(28_800));
    let arn = stack
        .create_secret("refused", &stack.secret_value(old_token.expose_secret()))
        .await;
    let version = new_version_id("refused");
    stack.begin_rotation(&arn, &version).await;
    let unknown_key = aws_credential_types::Credentials::new(
        "AKIAUNKNOWNTOGATEWAY",
        "not-the-gateway-secret",
        None,
        None,
        "tests",
    );
    let rotator = dsql_rotation::Rotator::new(
        stack.client(),
        aws_credential_types::provider::SharedCredentialsProvider::new(unknown_key),
        stack.config(),
    );

    let error = stack.rotate(&rotator, &arn, &version).await.unwrap_err();
    let message = error.to_string();
    assert!(message.contains("access denied"), "{message}");
    assert_eq!(stack.password(&arn, AWSCURRENT).await, old_token);
    stack.login(&old_token).await.unwrap();

    let retry = new_version_id("after-refusal");
    stack.begin_rotation(&arn, &retry).await;
    stack
        .rotate(&stack.rotator(stack.client()), &arn, &retry)
        .await
        .unwrap();
    assert_converged(&stack, &arn).await;
}

#[tokio::test]
async fn stale_pending_value_is_discarded_by_create_secret() {
    let stack = Stack::start();
    let arn = stack
        .create_secret("stale-pending", &stack.secret_value(PLACEHOLDER))
        .await;
    let version = new_version_id("stale");
    stack.begin_rotation(&arn, &version).await;
    // An earlier attempt stored a token seven hours ago and then stopped.
    let signed_at = SystemTime::now() - Duration::from_secs(7 * 3600);
    let stale = stack.token_signed_at(signed_at, Duration::from_secs(28_800));
    stack
        .client()
        .put_secret_value()
        .secret_id(&arn)
        .client_request_token(&version)
        .secret_string(stack.secret_value(stale.expose_secret()))
        .version_stages(AWSPENDING)
        .send()
        .await
        .unwrap();

    let rotator = stack.rotator(stack.client());
    let error = stack.rotate(&rotator, &arn, &version).await.unwrap_err();
    assert!(matches!(error, Error::PendingDiscarded { .. }), "{error}");
    assert_eq!(stack.version_with(&arn, AWSPENDING).await, None);

    let retry = new_version_id("fresh");
    stack.begin_rotation(&arn, &retry).await;
    stack.rotate(&rotator, &arn, &retry).await.unwrap();
    assert_converged(&stack, &arn).await;
}
