//! The event Secrets Manager sends to a rotation function.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// One of the four rotation steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Generate a new token and store it as the pending version.
    CreateSecret,
    /// Apply the pending credential to the database; DSQL needs nothing.
    SetSecret,
    /// Log in with the pending version.
    TestSecret,
    /// Make the pending version current.
    FinishSecret,
}

impl Step {
    /// Returns the step's name as Secrets Manager sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateSecret => "createSecret",
            Self::SetSecret => "setSecret",
            Self::TestSecret => "testSecret",
            Self::FinishSecret => "finishSecret",
        }
    }
}

impl FromStr for Step {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        match name {
            "createSecret" => Ok(Self::CreateSecret),
            "setSecret" => Ok(Self::SetSecret),
            "testSecret" => Ok(Self::TestSecret),
            "finishSecret" => Ok(Self::FinishSecret),
            other => Err(Error::UnknownStep(other.to_owned())),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rotation request: `{"SecretId", "ClientRequestToken", "Step"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationEvent {
    /// The secret's name or ARN.
    pub secret_id: String,
    /// The id of the version being rotated in.
    pub client_request_token: String,
    /// The step to run.
    pub step: Step,
}

impl RotationEvent {
    /// Checks the event's fields: none may be empty, and the step must be
    /// one of the four.
    pub fn new(
        secret_id: impl Into<String>,
        client_request_token: impl Into<String>,
        step: &str,
    ) -> Result<Self, Error> {
        let secret_id = secret_id.into();
        let client_request_token = client_request_token.into();
        if secret_id.is_empty() {
            return Err(Error::EmptyEventField("SecretId"));
        }
        if client_request_token.is_empty() {
            return Err(Error::EmptyEventField("ClientRequestToken"));
        }
        Ok(Self {
            secret_id,
            client_request_token,
            step: step.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_round_trip() {
        for step in [
            Step::CreateSecret,
            Step::SetSecret,
            Step::TestSecret,
            Step::FinishSecret,
        ] {
            assert_eq!(step.as_str().parse::<Step>().unwrap(), step);
        }
    }

    #[test]
    fn unknown_step_is_rejected() {
        let error = RotationEvent::new("s", "v", "deleteSecret").unwrap_err();
        assert!(error.to_string().contains("\"deleteSecret\""), "{error}");
    }

    #[test]
    fn empty_fields_are_rejected() {
        assert!(matches!(
            RotationEvent::new("", "v", "setSecret"),
            Err(Error::EmptyEventField("SecretId"))
        ));
        assert!(matches!(
            RotationEvent::new("s", "", "setSecret"),
            Err(Error::EmptyEventField("ClientRequestToken"))
        ));
    }
}
