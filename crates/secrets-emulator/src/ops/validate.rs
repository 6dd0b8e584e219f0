//! The service's input constraints, reported the way its framework reports
//! them: `ValidationException` with `N validation error(s) detected: ...`.
//! Values of secret fields are never echoed.

use crate::error::ApiError;
use crate::model::SecretValue;

/// The largest `SecretString` or decoded `SecretBinary`, in bytes.
pub const MAX_SECRET_BYTES: usize = 65_536;

/// Collects constraint violations for one request.
#[derive(Default)]
pub struct Checks {
    violations: Vec<String>,
}

impl Checks {
    /// Records a violation unless `value` is present.
    pub fn required<T>(&mut self, member: &str, value: &Option<T>) -> &mut Self {
        if value.is_none() {
            self.violations.push(format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            ));
        }
        self
    }

    /// Records a violation when `value` is present and its length in
    /// characters is outside `min..=max`.
    pub fn length(
        &mut self,
        member: &str,
        value: Option<&str>,
        min: usize,
        max: usize,
    ) -> &mut Self {
        if let Some(value) = value {
            self.check_length(member, Some(value), value.chars().count(), min, max);
        }
        self
    }

    fn check_length(
        &mut self,
        member: &str,
        shown: Option<&str>,
        len: usize,
        min: usize,
        max: usize,
    ) {
        let subject = match shown {
            Some(value) => format!("Value '{value}' at '{member}'"),
            None => format!("Value at '{member}'"),
        };
        if len < min {
            self.violations.push(format!(
                "{subject} failed to satisfy constraint: Member must have length greater than or equal to {min}"
            ));
        } else if len > max {
            self.violations.push(format!(
                "{subject} failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
    }

    /// Records a violation when the number is outside `min..=max`.
    pub fn range(&mut self, member: &str, value: Option<i64>, min: i64, max: i64) -> &mut Self {
        if let Some(value) = value {
            if value < min {
                self.violations.push(format!(
                    "Value '{value}' at '{member}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                ));
            } else if value > max {
                self.violations.push(format!(
                    "Value '{value}' at '{member}' failed to satisfy constraint: Member must have value less than or equal to {max}"
                ));
            }
        }
        self
    }

    /// Records violations of the secret value's size, without showing it.
    pub fn secret_value(&mut self, string: Option<&str>, binary: Option<&str>) -> &mut Self {
        if let Some(string) = string {
            self.check_length("secretString", None, string.len(), 0, MAX_SECRET_BYTES);
        }
        if let Some(binary) = binary {
            self.check_length(
                "secretBinary",
                None,
                decoded_len(binary),
                0,
                MAX_SECRET_BYTES,
            );
        }
        self
    }

    /// Fails with every violation recorded so far.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        match self.violations.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.violations[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.violations.join("; ")
            ))),
        }
    }
}

/// Returns the length of base64 data once decoded.
fn decoded_len(base64: &str) -> usize {
    let padding = base64.bytes().rev().take_while(|b| *b == b'=').count();
    (base64.len() / 4 * 3).saturating_sub(padding) + (base64.len() % 4).saturating_sub(1)
}

/// Checks a new secret's name: the characters the service allows.
pub fn secret_name(name: &str) -> Result<(), ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-!".contains(c);
    if name.chars().all(allowed) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ))
    }
}

/// Returns the value given as `SecretString` or `SecretBinary`, or `None`
/// when neither is given.
pub fn secret_value(
    string: Option<String>,
    binary: Option<String>,
) -> Result<Option<SecretValue>, ApiError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(ApiError::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(string), None) => Ok(Some(SecretValue::String(string))),
        (None, Some(binary)) => {
            let valid = binary.len() % 4 == 0
                && binary
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            if !valid {
                return Err(ApiError::serialization("SecretBinary is not valid base64."));
            }
            Ok(Some(SecretValue::Binary(binary)))
        }
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_length_accounts_for_padding() {
        assert_eq!(decoded_len("YQ=="), 1);
        assert_eq!(decoded_len("YWI="), 2);
        assert_eq!(decoded_len("YWJj"), 3);
    }

    #[test]
    fn oversize_string_message_hides_the_value() {
        let big = "x".repeat(MAX_SECRET_BYTES + 1);
        let error = Checks::default()
            .secret_value(Some(&big), None)
            .finish()
            .unwrap_err();
        assert_eq!(
            error.message,
            "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
        );
    }

    #[test]
    fn two_violations_are_reported_together() {
        let error = Checks::default()
            .required::<String>("secretId", &None)
            .length("clientRequestToken", Some("short"), 32, 64)
            .finish()
            .unwrap_err();
        assert!(error.message.starts_with("2 validation errors detected: "));
    }
}
