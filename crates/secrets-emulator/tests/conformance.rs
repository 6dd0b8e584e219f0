//! The same call sequences against the emulator and against `moto_server`
//! (the independent reference), compared after normalising what differs by
//! nature: ARN suffixes, dates and generated ids. HTTP status codes are not
//! compared: the service answers every client error with 400, moto answers
//! `ResourceNotFoundException` with 404.
//!
//! Every step where the two differ is listed with the reason the emulator
//! keeps its behaviour (`Expect::Diverges`); the test checks that such
//! steps really differ, so the list cannot go stale silently.

mod common;

use std::net::SocketAddr;

use common::{InProcess, Moto, call, token};
use serde_json::{Map, Value, json};

/// What the comparison of one step must show.
enum Expect {
    /// Identical normalised results.
    Same,
    /// The same error type; the message differs for the stated reason.
    SameErrorType(&'static str),
    /// Different results, for the stated reason.
    Diverges(&'static str),
}

struct Step {
    label: &'static str,
    operation: &'static str,
    body: Value,
    expect: Expect,
}

fn step(label: &'static str, operation: &'static str, body: Value, expect: Expect) -> Step {
    Step {
        label,
        operation,
        body,
        expect,
    }
}

const DATE_FIELDS: &[&str] = &[
    "CreatedDate",
    "LastChangedDate",
    "LastAccessedDate",
    "DeletedDate",
    "DeletionDate",
    "LastRotatedDate",
    "NextRotationDate",
];

/// Replaces ARN suffixes, dates and generated version ids; drops nulls and
/// sorts label lists.
fn normalise(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                if value.is_null() {
                    continue;
                }
                let value = if DATE_FIELDS.contains(&key.as_str()) {
                    json!("<date>")
                } else {
                    normalise(value)
                };
                out.insert(normalise_text(key), value);
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalise).collect();
            if items.iter().all(Value::is_string) {
                items.sort_by_key(|v| v.to_string());
            }
            Value::Array(items)
        }
        Value::String(text) => Value::String(normalise_text(text)),
        other => other.clone(),
    }
}

fn normalise_text(text: &str) -> String {
    let prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:";
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find(prefix) {
        out.push_str(&rest[..start]);
        let after = &rest[start + prefix.len()..];
        // The ARN ends at a quote, a space, a closing full stop or the end;
        // its last seven characters are "-" and the random suffix.
        let end = after.find(['\'', ' ', '"']).unwrap_or(after.len());
        let arn = after[..end].trim_end_matches('.');
        let name = arn.get(..arn.len().saturating_sub(7)).unwrap_or(arn);
        out.push_str(&format!("<arn {name}>"));
        rest = &after[arn.len()..];
    }
    out.push_str(rest);
    if is_uuid(&out) {
        String::from("<uuid>")
    } else {
        out
    }
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The comparable outcome of one call: the normalised body, with an
/// error reduced to its type and message.
async fn outcome(addr: SocketAddr, operation: &str, body: &Value) -> Value {
    let response = call(addr, operation, body).await;
    let parsed: Value =
        serde_json::from_str(&response.body).unwrap_or(Value::String(response.body.clone()));
    if (200..300).contains(&response.status) {
        json!({"ok": normalise(&parsed)})
    } else {
        let kind = parsed["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("")
            .to_owned();
        let message = parsed
            .get("message")
            .or_else(|| parsed.get("Message"))
            .cloned()
            .unwrap_or(Value::Null);
        json!({"error": kind, "message": normalise(&message)})
    }
}

/// Why a read without a version or label differs after a label move.
const MOTO_STALE_CURRENT: &str = "the service reads the version labelled AWSCURRENT; moto reads the version that was current before UpdateSecretVersionStage moved the label";

fn sequence() -> Vec<Step> {
    let (t1, t2, t3, t9) = (token(1), token(2), token(3), token(9));
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:absent";
    use Expect::*;
    vec![
        step(
            "create",
            "CreateSecret",
            json!({"Name": "conf/a", "SecretString": "v1", "ClientRequestToken": t1}),
            Same,
        ),
        step(
            "create repeated with same token and value",
            "CreateSecret",
            json!({"Name": "conf/a", "SecretString": "v1", "ClientRequestToken": t1}),
            Same,
        ),
        step(
            "create existing name without token",
            "CreateSecret",
            json!({"Name": "conf/a", "SecretString": "v1"}),
            SameErrorType(
                "moto's text for a create without token is generic; the emulator names the secret as the service does for a create with a new token",
            ),
        ),
        step(
            "get current",
            "GetSecretValue",
            json!({"SecretId": "conf/a"}),
            Same,
        ),
        step(
            "get by version",
            "GetSecretValue",
            json!({"SecretId": "conf/a", "VersionId": t1}),
            Same,
        ),
        step(
            "get missing label",
            "GetSecretValue",
            json!({"SecretId": "conf/a", "VersionStage": "AWSPENDING"}),
            SameErrorType(
                "the service says it cannot find the value for the staging label (confirmed against AWS); moto says it cannot find the secret",
            ),
        ),
        step(
            "get missing version",
            "GetSecretValue",
            json!({"SecretId": "conf/a", "VersionId": t9}),
            Same,
        ),
        step(
            "put new version",
            "PutSecretValue",
            json!({"SecretId": "conf/a", "SecretString": "v2", "ClientRequestToken": t2}),
            Same,
        ),
        step(
            "put repeated with same token and value",
            "PutSecretValue",
            json!({"SecretId": "conf/a", "SecretString": "v2", "ClientRequestToken": t2}),
            Same,
        ),
        step(
            "put same token other value",
            "PutSecretValue",
            json!({"SecretId": "conf/a", "SecretString": "v3", "ClientRequestToken": t2}),
            Same,
        ),
        step(
            "put pending version",
            "PutSecretValue",
            json!({"SecretId": "conf/a", "SecretString": "v3", "ClientRequestToken": t3, "VersionStages": ["AWSPENDING"]}),
            Same,
        ),
        step(
            "put without value",
            "PutSecretValue",
            json!({"SecretId": "conf/a"}),
            Same,
        ),
        step(
            "move current without remove-from",
            "UpdateSecretVersionStage",
            json!({"SecretId": "conf/a", "VersionStage": "AWSCURRENT", "MoveToVersionId": t3}),
            Same,
        ),
        step(
            "move current with wrong remove-from",
            "UpdateSecretVersionStage",
            json!({"SecretId": "conf/a", "VersionStage": "AWSCURRENT", "MoveToVersionId": t3, "RemoveFromVersionId": t1}),
            SameErrorType(
                "the API reference says the call fails; the emulator uses the text other emulators use, moto its own",
            ),
        ),
        step(
            "move current",
            "UpdateSecretVersionStage",
            json!({"SecretId": "conf/a", "VersionStage": "AWSCURRENT", "MoveToVersionId": t3, "RemoveFromVersionId": t2}),
            Same,
        ),
        step(
            "get previous",
            "GetSecretValue",
            json!({"SecretId": "conf/a", "VersionStage": "AWSPREVIOUS"}),
            Same,
        ),
        step(
            "get current after move",
            "GetSecretValue",
            json!({"SecretId": "conf/a"}),
            Diverges(MOTO_STALE_CURRENT),
        ),
        step(
            "get current by label after move",
            "GetSecretValue",
            json!({"SecretId": "conf/a", "VersionStage": "AWSCURRENT"}),
            Same,
        ),
        step(
            "list versions",
            "ListSecretVersionIds",
            json!({"SecretId": "conf/a"}),
            Diverges(
                "the service lists versions without labels only with IncludeDeprecated and returns the ARN in ARN; moto lists every version and returns the name as ARN",
            ),
        ),
        step(
            "describe",
            "DescribeSecret",
            json!({"SecretId": "conf/a"}),
            Diverges(
                "the service's VersionIdsToStages holds only labelled versions; moto also lists deprecated versions with no labels and adds ListSecrets' SecretVersionsToStages",
            ),
        ),
        step(
            "tag",
            "TagResource",
            json!({"SecretId": "conf/a", "Tags": [{"Key": "team", "Value": "db"}]}),
            Same,
        ),
        step(
            "put policy",
            "PutResourcePolicy",
            json!({"SecretId": "conf/a", "ResourcePolicy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}"}),
            Same,
        ),
        step(
            "get policy",
            "GetResourcePolicy",
            json!({"SecretId": "conf/a"}),
            Same,
        ),
        step(
            "cancel rotation without function",
            "CancelRotateSecret",
            json!({"SecretId": "conf/a"}),
            SameErrorType(
                "moto's text joins two sentences without a space; the emulator uses the API reference's wording",
            ),
        ),
        step(
            "delete",
            "DeleteSecret",
            json!({"SecretId": "conf/a", "RecoveryWindowInDays": 7}),
            Same,
        ),
        step(
            "get deleted",
            "GetSecretValue",
            json!({"SecretId": "conf/a"}),
            SameErrorType(
                "moto's message embeds a botocore error prefix; the emulator uses the service's sentence",
            ),
        ),
        step(
            "delete again",
            "DeleteSecret",
            json!({"SecretId": "conf/a"}),
            SameErrorType(
                "moto's message embeds a botocore error prefix; the emulator uses the service's sentence",
            ),
        ),
        step(
            "restore",
            "RestoreSecret",
            json!({"SecretId": "conf/a"}),
            Same,
        ),
        step(
            "get restored",
            "GetSecretValue",
            json!({"SecretId": "conf/a"}),
            Diverges(MOTO_STALE_CURRENT),
        ),
        step(
            "delete with both options",
            "DeleteSecret",
            json!({"SecretId": "conf/a", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
            SameErrorType("moto's message embeds a botocore error prefix"),
        ),
        step(
            "force delete",
            "DeleteSecret",
            json!({"SecretId": "conf/a", "ForceDeleteWithoutRecovery": true}),
            Same,
        ),
        step(
            "describe deleted",
            "DescribeSecret",
            json!({"SecretId": "conf/a"}),
            Same,
        ),
        step(
            "create second",
            "CreateSecret",
            json!({"Name": "conf/b", "SecretString": "v1", "ClientRequestToken": t1}),
            Same,
        ),
        step(
            "put pending on second",
            "PutSecretValue",
            json!({"SecretId": "conf/b", "SecretString": "v2", "ClientRequestToken": t2, "VersionStages": ["AWSPENDING"]}),
            Same,
        ),
        step(
            "move current to unknown version",
            "UpdateSecretVersionStage",
            json!({"SecretId": "conf/b", "VersionStage": "AWSCURRENT", "MoveToVersionId": t9, "RemoveFromVersionId": t1}),
            Same,
        ),
        step(
            "get current after failed move",
            "GetSecretValue",
            json!({"SecretId": "conf/b"}),
            Diverges(
                "a failed call changes nothing in the service; moto removes AWSCURRENT from the old version before it finds that the target version is missing",
            ),
        ),
        step(
            "rotate with unfinished rotation",
            "RotateSecret",
            json!({"SecretId": "conf/b", "RotationLambdaARN": lambda}),
            Diverges(
                "the service refuses a rotation while AWSPENDING is on a version other than AWSCURRENT (confirmed against AWS); moto checks the opposite case and goes on to look up the function",
            ),
        ),
        step(
            "short request token",
            "PutSecretValue",
            json!({"SecretId": "conf/b", "SecretString": "v", "ClientRequestToken": "short"}),
            Diverges(
                "the service model limits ClientRequestToken to 32-64 characters, which the service's framework reports as ValidationException; moto raises InvalidParameterException",
            ),
        ),
        step(
            "invalid name",
            "CreateSecret",
            json!({"Name": "bad name#", "SecretString": "v"}),
            Diverges(
                "the service rejects characters outside -/_+=.@! with ValidationException; moto accepts any name",
            ),
        ),
        step(
            "oversize value",
            "CreateSecret",
            json!({"Name": "conf/big", "SecretString": "x".repeat(65_537)}),
            Diverges("the service limits SecretString to 65,536 bytes; moto accepts any size"),
        ),
        step(
            "rotation needs a function",
            "RotateSecret",
            json!({"SecretId": "conf/b"}),
            Diverges(
                "the service needs a rotation function to rotate; moto without one moves AWSCURRENT itself",
            ),
        ),
        step(
            "list by name prefix",
            "ListSecrets",
            json!({"Filters": [{"Key": "name", "Values": ["conf/"]}]}),
            Diverges(
                "moto adds DescribeSecret's VersionIdsToStages to ListSecrets entries and lists deprecated versions",
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn emulator_matches_moto_or_documents_why_not() {
    let emulator = InProcess::start().await;
    let moto = Moto::start().await;

    let mut problems = Vec::new();
    for step in sequence() {
        let ours = outcome(emulator.addr(), step.operation, &step.body).await;
        let theirs = outcome(moto.addr, step.operation, &step.body).await;
        let reason = match &step.expect {
            Expect::Same => "",
            Expect::SameErrorType(reason) | Expect::Diverges(reason) => reason,
        };
        let problem = match &step.expect {
            Expect::Same if ours != theirs => Some("differs but is not listed as a divergence"),
            Expect::SameErrorType(_)
                if ours.get("error").is_none() || ours["error"] != theirs["error"] =>
            {
                Some("error types differ")
            }
            Expect::SameErrorType(_) if ours == theirs => {
                Some("is identical; remove it from the divergences")
            }
            Expect::Diverges(_) if ours == theirs => {
                Some("is identical; remove it from the divergences")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            problems.push(format!(
                "step '{}' {problem} (listed reason: {reason:?})\n  emulator: {ours}\n  moto:     {theirs}",
                step.label
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} steps do not match their expectation:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn normalising_replaces_arn_suffixes_and_dates() {
    let value = json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:conf/a-AbC123",
        "message": "secret arn:aws:secretsmanager:us-east-1:123456789012:secret:conf/a-xYz789.",
        "CreatedDate": 1.5,
        "VersionId": "0b0e8a3c-1f2d-4c5b-9a8e-7d6c5b4a3f21",
        "LastAccessedDate": null,
    });
    assert_eq!(
        normalise(&value),
        json!({"ARN": "<arn conf/a>", "message": "secret <arn conf/a>.", "CreatedDate": "<date>", "VersionId": "<uuid>"})
    );
}
