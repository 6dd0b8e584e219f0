//! Checks generation and verification against tokens made by an independent
//! implementation (botocore), read from the shared test data folder.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, Rejection, TokenRequest, Verifier, generate, parse};
use serde::Deserialize;

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    hostname: String,
    region: String,
    action: String,
    expires_in_secs: u64,
    signed_at: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    token: String,
}

impl Vector {
    fn credentials(&self) -> Credentials {
        Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "vectors",
        )
    }

    fn action(&self) -> Action {
        match self.action.as_str() {
            "DbConnectAdmin" => Action::DbConnectAdmin,
            "DbConnect" => Action::DbConnect,
            other => panic!("vector {} has unknown action {other}", self.name),
        }
    }

    fn role(&self) -> &'static str {
        match self.action() {
            Action::DbConnectAdmin => "admin",
            Action::DbConnect => "app_user",
        }
    }

    fn signed_at(&self) -> SystemTime {
        let parsed = time::OffsetDateTime::parse(
            &self.signed_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|error| panic!("vector {} has a bad signed_at: {error}", self.name));
        parsed.into()
    }
}

fn testdata_dir() -> PathBuf {
    match std::env::var_os("DSQL_TESTDATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata"),
    }
}

fn vectors() -> Vec<Vector> {
    let path = testdata_dir().join("dsql-token-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; set DSQL_TESTDATA_DIR to the folder holding it",
            path.display()
        )
    });
    let file: VectorFile = serde_json::from_str(&text).expect("vector file is valid JSON");
    assert!(!file.vectors.is_empty(), "vector file has no vectors");
    file.vectors
}

fn query_pairs(token: &str) -> Vec<(String, String)> {
    let (_, query) = token.split_once("/?").expect("token has a query");
    let mut pairs: Vec<_> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    pairs.sort();
    pairs
}

fn signature(token: &str) -> String {
    query_pairs(token)
        .into_iter()
        .find(|(name, _)| name == "X-Amz-Signature")
        .map(|(_, value)| value)
        .expect("token has a signature")
}

#[test]
fn generation_reproduces_every_vector() {
    for vector in vectors() {
        let request = TokenRequest::new(
            &vector.hostname,
            &vector.region,
            vector.action(),
            Duration::from_secs(vector.expires_in_secs),
        )
        .unwrap();
        let token = generate(&vector.credentials(), &request, vector.signed_at()).unwrap();

        let generated = token.expose_secret();
        assert_eq!(
            signature(generated),
            signature(&vector.token),
            "signature of {}",
            vector.name
        );
        assert_eq!(
            query_pairs(generated),
            query_pairs(&vector.token),
            "parameters of {}",
            vector.name
        );
        assert_eq!(generated, vector.token, "text of {}", vector.name);
    }
}

#[test]
fn parsing_reads_every_vector() {
    for vector in vectors() {
        let parsed = parse(&vector.token).unwrap();
        assert_eq!(parsed.hostname(), vector.hostname, "{}", vector.name);
        assert_eq!(parsed.region(), vector.region, "{}", vector.name);
        assert_eq!(parsed.action(), vector.action(), "{}", vector.name);
        assert_eq!(
            parsed.access_key_id(),
            vector.access_key_id,
            "{}",
            vector.name
        );
        assert_eq!(parsed.signed_at(), vector.signed_at(), "{}", vector.name);
        assert_eq!(
            parsed.lifetime().as_secs(),
            vector.expires_in_secs,
            "{}",
            vector.name
        );
        assert_eq!(
            parsed.has_session_token(),
            vector.session_token.is_some(),
            "{}",
            vector.name
        );
    }
}

#[test]
fn verification_accepts_at_signing_and_expiry() {
    for vector in vectors() {
        let verifier = Verifier::new(&vector.hostname, &vector.region, [vector.credentials()]);
        let signed_at = vector.signed_at();
        let expires_at = signed_at + Duration::from_secs(vector.expires_in_secs);

        let at_signing = verifier.verify(&vector.token, vector.role(), signed_at);
        assert!(
            at_signing.is_ok(),
            "{} at signing: {at_signing:?}",
            vector.name
        );
        let at_expiry = verifier.verify(&vector.token, vector.role(), expires_at);
        assert!(
            at_expiry.is_ok(),
            "{} at expiry: {at_expiry:?}",
            vector.name
        );
    }
}

#[test]
fn verification_rejects_one_second_after_expiry() {
    for vector in vectors() {
        let verifier = Verifier::new(&vector.hostname, &vector.region, [vector.credentials()]);
        let late = vector.signed_at() + Duration::from_secs(vector.expires_in_secs + 1);

        let rejection = verifier
            .verify(&vector.token, vector.role(), late)
            .unwrap_err();
        assert!(
            matches!(rejection, Rejection::Expired { .. }),
            "{}: {rejection:?}",
            vector.name
        );
        let hint = rejection.hint().unwrap_or_default();
        assert!(
            hint.starts_with("Signature expired"),
            "{}: {hint}",
            vector.name
        );
    }
}

#[test]
fn altered_vectors_fail_the_signature_check() {
    for vector in vectors() {
        let verifier = Verifier::new(&vector.hostname, &vector.region, [vector.credentials()]);
        let original_expiry = format!("X-Amz-Expires={}", vector.expires_in_secs);
        let longer = vector.token.replace(&original_expiry, "X-Amz-Expires=2");
        let signature = signature(&vector.token);
        let mut forged_signature = signature.clone();
        forged_signature.replace_range(0..1, if signature.starts_with('0') { "1" } else { "0" });
        let forged = vector.token.replace(&signature, &forged_signature);

        for altered in [longer, forged] {
            let rejection = verifier
                .verify(&altered, vector.role(), vector.signed_at())
                .unwrap_err();
            assert_eq!(rejection, Rejection::BadSignature, "{}", vector.name);
            assert_eq!(rejection.hint(), None, "{}", vector.name);
        }
    }
}

#[test]
fn wrong_secret_key_fails_the_signature_check() {
    for vector in vectors() {
        let wrong = Credentials::new(
            &vector.access_key_id,
            "not-the-secret",
            vector.session_token.clone(),
            None,
            "vectors",
        );
        let verifier = Verifier::new(&vector.hostname, &vector.region, [wrong]);
        let rejection = verifier
            .verify(&vector.token, vector.role(), vector.signed_at())
            .unwrap_err();
        assert_eq!(rejection, Rejection::BadSignature, "{}", vector.name);
    }
}

#[test]
fn role_and_action_must_match() {
    for vector in vectors() {
        let verifier = Verifier::new(&vector.hostname, &vector.region, [vector.credentials()]);
        let other_role = match vector.action() {
            Action::DbConnectAdmin => "app_user",
            Action::DbConnect => "admin",
        };
        let rejection = verifier
            .verify(&vector.token, other_role, vector.signed_at())
            .unwrap_err();
        assert!(
            matches!(rejection, Rejection::WrongAction { .. }),
            "{}",
            vector.name
        );
        let hint = rejection.hint().unwrap_or_default();
        assert!(hint.starts_with("Wrong user to action mapping"), "{hint}");
    }
}

#[test]
fn other_hostname_region_or_key_is_rejected() {
    let vector = &vectors()[0];
    let at = vector.signed_at();

    let other_host = Verifier::new(
        "other.dsql.us-east-1.on.aws",
        &vector.region,
        [vector.credentials()],
    );
    let rejection = other_host
        .verify(&vector.token, vector.role(), at)
        .unwrap_err();
    assert!(matches!(rejection, Rejection::WrongHostname { .. }));

    let other_region = Verifier::new(&vector.hostname, "eu-central-1", [vector.credentials()]);
    let rejection = other_region
        .verify(&vector.token, vector.role(), at)
        .unwrap_err();
    assert!(matches!(rejection, Rejection::WrongRegion { .. }));

    let other_key = Credentials::new("AKIDOTHER", "secret", None, None, "vectors");
    let no_key = Verifier::new(&vector.hostname, &vector.region, [other_key]);
    let rejection = no_key.verify(&vector.token, vector.role(), at).unwrap_err();
    assert!(matches!(rejection, Rejection::UnknownAccessKey { .. }));
}

#[test]
fn rejection_messages_never_contain_secrets() {
    for vector in vectors() {
        let verifier = Verifier::new(&vector.hostname, &vector.region, [vector.credentials()]);
        let late = vector.signed_at() + Duration::from_secs(vector.expires_in_secs + 1);
        let rejection = verifier
            .verify(&vector.token, vector.role(), late)
            .unwrap_err();
        let texts = [
            rejection.to_string(),
            format!("{rejection:?}"),
            rejection.hint().unwrap_or_default(),
        ];
        for text in texts {
            assert!(!text.contains(&signature(&vector.token)), "{text}");
            assert!(!text.contains(&vector.secret_access_key), "{text}");
            if let Some(session_token) = &vector.session_token {
                assert!(!text.contains(session_token.as_str()), "{text}");
            }
        }
    }
}
