//! The Rust SDK against the emulator: the calls an application and a
//! rotation function make, with the service's responses and errors.

mod common;

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use common::{InProcess, sdk_client, token};

fn stages(list: &[String]) -> Vec<&str> {
    let mut stages: Vec<&str> = list.iter().map(String::as_str).collect();
    stages.sort_unstable();
    stages
}

#[tokio::test]
async fn sdk_reads_by_label_and_by_version() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;

    let created = client
        .create_secret()
        .name("app/dsql")
        .secret_string(r#"{"password":"one"}"#)
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(created.name(), Some("app/dsql"));
    assert_eq!(created.version_id(), Some(token(1).as_str()));
    let arn = created.arn().unwrap().to_owned();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/dsql-"));
    assert_eq!(
        arn.len(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/dsql-".len() + 6
    );

    let by_label = client
        .get_secret_value()
        .secret_id("app/dsql")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert_eq!(by_label.secret_string(), Some(r#"{"password":"one"}"#));
    assert_eq!(by_label.version_stages(), ["AWSCURRENT"]);
    let by_version = client
        .get_secret_value()
        .secret_id(&arn)
        .version_id(token(1))
        .send()
        .await
        .unwrap();
    assert_eq!(by_version.secret_string(), Some(r#"{"password":"one"}"#));
    let partial_arn = &arn[..arn.len() - 7];
    let by_partial_arn = client
        .get_secret_value()
        .secret_id(partial_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(by_partial_arn.version_id(), Some(token(1).as_str()));

    let missing_label = client
        .get_secret_value()
        .secret_id("app/dsql")
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing_label.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        missing_label.message(),
        Some("Secrets Manager can't find the specified secret value for staging label: AWSPENDING")
    );
    let missing_version = client
        .get_secret_value()
        .secret_id("app/dsql")
        .version_id(token(9))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing_version.message(),
        Some(
            format!(
                "Secrets Manager can't find the specified secret value for VersionId: {}",
                token(9)
            )
            .as_str()
        )
    );
    let missing_secret = client
        .get_secret_value()
        .secret_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing_secret.code(), Some("ResourceNotFoundException"));
    assert_eq!(
        missing_secret.message(),
        Some("Secrets Manager can't find the specified secret.")
    );
}

#[tokio::test]
async fn put_with_same_request_token_and_value_is_a_no_op() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string("v1")
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();

    let put = client
        .put_secret_value()
        .secret_id("s")
        .secret_string("v2")
        .client_request_token(token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_id(), Some(token(2).as_str()));
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);
    let repeated = client
        .put_secret_value()
        .secret_id("s")
        .secret_string("v2")
        .client_request_token(token(2))
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.version_id(), Some(token(2).as_str()));

    let conflict = client
        .put_secret_value()
        .secret_id("s")
        .secret_string("other")
        .client_request_token(token(2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), Some("ResourceExistsException"));
    assert!(conflict.message().unwrap().starts_with(&format!(
        "You can't use ClientRequestToken {} because that value is already in use",
        token(2)
    )));

    // Without a token the SDK makes one up, so each call is a new version.
    let first = client
        .put_secret_value()
        .secret_id("s")
        .secret_string("v3")
        .send()
        .await
        .unwrap();
    let second = client
        .put_secret_value()
        .secret_id("s")
        .secret_string("v3")
        .send()
        .await
        .unwrap();
    assert_ne!(first.version_id(), second.version_id());

    let versions = client
        .list_secret_version_ids()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    let labelled: Vec<_> = versions
        .versions()
        .iter()
        .map(|v| (v.version_id().unwrap(), stages(v.version_stages())))
        .collect();
    assert_eq!(
        labelled,
        [
            (first.version_id().unwrap(), vec!["AWSPREVIOUS"]),
            (second.version_id().unwrap(), vec!["AWSCURRENT"])
        ]
    );
    let all = client
        .list_secret_version_ids()
        .secret_id("s")
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert_eq!(all.versions().len(), 4);
    let current = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some("v3"));
}

#[tokio::test]
async fn labels_move_with_remove_from_version() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string("v1")
        .client_request_token(token(1))
        .send()
        .await
        .unwrap();
    client
        .put_secret_value()
        .secret_id("s")
        .secret_string("v2")
        .client_request_token(token(2))
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();

    let without_remove = client
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token(2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(without_remove.code(), Some("InvalidParameterException"));
    assert_eq!(without_remove.message(), Some(format!("The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently attached to version {}, so you must explicitly reference that version in RemoveFromVersionId.", token(1)).as_str()));
    let wrong_remove = client
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token(2))
        .remove_from_version_id(token(2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(wrong_remove.code(), Some("InvalidParameterException"));

    client
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSCURRENT")
        .move_to_version_id(token(2))
        .remove_from_version_id(token(1))
        .send()
        .await
        .unwrap();
    let described = client
        .describe_secret()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    let map = described.version_ids_to_stages().unwrap();
    assert_eq!(stages(&map[&token(1)]), ["AWSPREVIOUS"]);
    assert_eq!(stages(&map[&token(2)]), ["AWSCURRENT", "AWSPENDING"]);

    client
        .update_secret_version_stage()
        .secret_id("s")
        .version_stage("AWSPENDING")
        .remove_from_version_id(token(2))
        .send()
        .await
        .unwrap();
    let current = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some("v2"));
    assert_eq!(current.version_stages(), ["AWSCURRENT"]);
}

#[tokio::test]
async fn deleted_secret_is_unreadable_until_restored() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string("v1")
        .send()
        .await
        .unwrap();

    let deleted = client
        .delete_secret()
        .secret_id("s")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert!(deleted.deletion_date().is_some());
    let read = client
        .get_secret_value()
        .secret_id("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(read.code(), Some("InvalidRequestException"));
    assert_eq!(
        read.message(),
        Some("You can't perform this operation on the secret because it was marked for deletion.")
    );
    let recreate = client
        .create_secret()
        .name("s")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(recreate.code(), Some("InvalidRequestException"));
    let listed = client.list_secrets().send().await.unwrap();
    assert!(listed.secret_list().is_empty());
    let listed = client
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.secret_list().len(), 1);
    assert!(
        client
            .describe_secret()
            .secret_id("s")
            .send()
            .await
            .unwrap()
            .deleted_date()
            .is_some()
    );

    client.restore_secret().secret_id("s").send().await.unwrap();
    assert_eq!(
        client
            .get_secret_value()
            .secret_id("s")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v1")
    );

    client
        .delete_secret()
        .secret_id("s")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let gone = client
        .describe_secret()
        .secret_id("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Some("ResourceNotFoundException"));
    let both = client
        .delete_secret()
        .secret_id("x")
        .force_delete_without_recovery(true)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap_err();
    assert_eq!(both.code(), Some("InvalidParameterException"));
}

#[tokio::test]
async fn tags_policies_and_listing() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    let tag = |k: &str, v: &str| {
        aws_sdk_secretsmanager::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    client
        .create_secret()
        .name("app/a")
        .secret_string("a")
        .description("first")
        .tags(tag("team", "db"))
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name("app/b")
        .secret_string("b")
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name("other")
        .secret_string("c")
        .send()
        .await
        .unwrap();

    client
        .tag_resource()
        .secret_id("app/b")
        .tags(tag("team", "web"))
        .send()
        .await
        .unwrap();
    let described = client
        .describe_secret()
        .secret_id("app/b")
        .send()
        .await
        .unwrap();
    assert_eq!(described.tags()[0].value(), Some("web"));

    let by_prefix = aws_sdk_secretsmanager::types::Filter::builder()
        .key("name".into())
        .values("app/")
        .build();
    let listed = client
        .list_secrets()
        .filters(by_prefix)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = listed
        .secret_list()
        .iter()
        .filter_map(|s| s.name())
        .collect();
    assert_eq!(names, ["app/a", "app/b"]);
    let page = client.list_secrets().max_results(2).send().await.unwrap();
    assert_eq!(page.secret_list().len(), 2);
    let rest = client
        .list_secrets()
        .max_results(2)
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.secret_list().len(), 1);
    assert!(rest.next_token().is_none());

    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    client
        .put_resource_policy()
        .secret_id("app/a")
        .resource_policy(policy)
        .send()
        .await
        .unwrap();
    let read = client
        .get_resource_policy()
        .secret_id("app/a")
        .send()
        .await
        .unwrap();
    assert_eq!(read.resource_policy(), Some(policy));
    let malformed = client
        .put_resource_policy()
        .secret_id("app/a")
        .resource_policy("{not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Some("MalformedPolicyDocumentException"));
    assert_eq!(
        common::request_count(server.addr(), "PutResourcePolicy").await,
        2
    );
}

#[tokio::test]
async fn rotation_without_function_is_refused() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    client
        .create_secret()
        .name("s")
        .secret_string("v")
        .send()
        .await
        .unwrap();

    let no_function = client
        .rotate_secret()
        .secret_id("s")
        .send()
        .await
        .unwrap_err();
    assert_eq!(no_function.code(), Some("InvalidRequestException"));
    let unknown = client
        .rotate_secret()
        .secret_id("s")
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("ResourceNotFoundException"));
    let versions = client
        .list_secret_version_ids()
        .secret_id("s")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "a refused rotation adds no pending version"
    );
}

#[tokio::test]
async fn binary_values_and_update_secret() {
    let server = InProcess::start().await;
    let client = sdk_client(&server.endpoint()).await;
    let bytes = aws_sdk_secretsmanager::primitives::Blob::new(vec![0u8, 1, 2, 255]);
    client
        .create_secret()
        .name("bin")
        .secret_binary(bytes.clone())
        .send()
        .await
        .unwrap();
    let read = client
        .get_secret_value()
        .secret_id("bin")
        .send()
        .await
        .unwrap();
    assert_eq!(read.secret_binary(), Some(&bytes));
    assert!(read.secret_string().is_none());

    let empty = client.create_secret().name("empty").send().await.unwrap();
    assert!(
        empty.version_id().is_none(),
        "a secret created without a value has no version"
    );
    let no_value = client
        .get_secret_value()
        .secret_id("empty")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        no_value.message(),
        Some("Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
    );

    let updated = client
        .update_secret()
        .secret_id("empty")
        .secret_string("first")
        .description("now set")
        .send()
        .await
        .unwrap();
    assert!(updated.version_id().is_some());
    let read = client
        .get_secret_value()
        .secret_id("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(read.secret_string(), Some("first"));
    assert_eq!(read.version_stages(), ["AWSCURRENT"]);
    let described = client
        .describe_secret()
        .secret_id("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(described.description(), Some("now set"));
}
