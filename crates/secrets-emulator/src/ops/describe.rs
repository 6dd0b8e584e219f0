//! The secret's metadata as `DescribeSecret` and `ListSecrets` return it.

use serde_json::{Map, Value, json};

use crate::model::Secret;

/// Which operation the description is for: they name the version map
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `DescribeSecret`: `VersionIdsToStages`.
    Describe,
    /// `ListSecrets`: `SecretVersionsToStages`.
    List,
}

/// Renders a secret's metadata; never its value.
pub fn describe(secret: &Secret, form: Form) -> Value {
    let mut out = Map::new();
    out.insert("ARN".into(), json!(secret.arn));
    out.insert("Name".into(), json!(secret.name));
    if let Some(description) = &secret.description {
        out.insert("Description".into(), json!(description));
    }
    if let Some(kms_key_id) = &secret.kms_key_id {
        out.insert("KmsKeyId".into(), json!(kms_key_id));
    }

    let rotation = &secret.rotation;
    if rotation.requested {
        out.insert("RotationEnabled".into(), json!(rotation.enabled));
        if let Some(arn) = &rotation.lambda_arn {
            out.insert("RotationLambdaARN".into(), json!(arn));
        }
        if let Some(rules) = &rotation.rules {
            out.insert("RotationRules".into(), json!(rules));
        }
        if let Some(date) = rotation.last_rotated_date {
            out.insert("LastRotatedDate".into(), json!(date));
        }
        if let (true, Some(date)) = (rotation.enabled, rotation.next_rotation_date) {
            out.insert("NextRotationDate".into(), json!(date));
        }
    }

    out.insert("LastChangedDate".into(), json!(secret.last_changed_date));
    if let Some(date) = secret.deleted_date {
        out.insert("DeletedDate".into(), json!(date));
    }
    if !secret.tags.is_empty() {
        out.insert("Tags".into(), json!(secret.tags));
    }

    let stages: Map<String, Value> = secret
        .versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.id.clone(), json!(v.stages)))
        .collect();
    if !stages.is_empty() {
        let key = match form {
            Form::Describe => "VersionIdsToStages",
            Form::List => "SecretVersionsToStages",
        };
        out.insert(key.into(), Value::Object(stages));
    }
    out.insert("CreatedDate".into(), json!(secret.created_date));
    Value::Object(out)
}
