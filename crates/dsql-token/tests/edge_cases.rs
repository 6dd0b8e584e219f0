//! Inputs found by attacking the token code: host names in upper case,
//! expiry instants no calendar can print, and trace logs of the signer.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_token::{Action, ParseError, TokenRequest, Verifier, generate, parse};

const SIGNATURE: &str = "6c1d56137688b1cc1928d9f012fc1d8289c6e0bf56105752fa00aac711c55051";

fn credentials(session_token: Option<&str>) -> Credentials {
    Credentials::new(
        "AKIDEDGE",
        "edge-secret",
        session_token.map(str::to_owned),
        None,
        "edge",
    )
}

fn admin_request(hostname: &str) -> TokenRequest {
    TokenRequest::new(
        hostname,
        "us-east-1",
        Action::DbConnectAdmin,
        Duration::from_secs(60),
    )
    .expect("valid token request")
}

fn unsigned_token(date: &str, expires: &str) -> String {
    format!(
        "localhost/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIDEDGE%2F{}%2Fus-east-1%2Fdsql%2Faws4_request\
         &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host\
         &X-Amz-Signature={SIGNATURE}",
        &date[..8]
    )
}

#[test]
fn token_for_upper_case_hostname_verifies() {
    let now = SystemTime::now();
    let token = generate(&credentials(None), &admin_request("LocalHost"), now)
        .expect("token generation works");
    let verifier = Verifier::new("localhost", "us-east-1", [credentials(None)]);

    let verified = verifier.verify(token.expose_secret(), "admin", now);
    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn upper_case_hostname_in_token_text_verifies() {
    // botocore keeps the hostname's case in the token text but signs it
    // lower-cased, so a token made for "LOCALHOST" looks like this.
    let now = SystemTime::now();
    let token = generate(&credentials(None), &admin_request("localhost"), now)
        .expect("token generation works");
    let upper = token.expose_secret().replacen("localhost", "LOCALHOST", 1);
    let verifier = Verifier::new("localhost", "us-east-1", [credentials(None)]);

    let verified = verifier.verify(&upper, "admin", now);
    assert!(verified.is_ok(), "{verified:?}");
}

#[test]
fn expiry_after_year_9999_is_rejected() {
    let token = unsigned_token("99991231T235959Z", "9999999999");
    assert!(
        matches!(
            parse(&token),
            Err(ParseError::InvalidParameter {
                name: "X-Amz-Expires",
                ..
            })
        ),
        "{:?}",
        parse(&token)
    );
}

#[test]
fn expiry_in_year_9999_is_accepted_and_printable() {
    let token = unsigned_token("99991231T235958Z", "1");
    let parsed = parse(&token).expect("expiry on the last second of 9999 parses");
    let expires_at = time::OffsetDateTime::from(parsed.expires_at());
    assert_eq!(expires_at.year(), 9999);
}

/// A log sink for `tracing_subscriber` that tests can read back.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn trace_log_never_contains_the_session_token() {
    let session_token = "IQoJb3JpZ2luX2VjEdgeSessionToken+/==";
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();

    // A global subscriber, because a scoped one misses events of call sites
    // that tests on other threads reached first. No other test sets one.
    tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");

    let now = SystemTime::now();
    let signer = credentials(Some(session_token));
    tracing::trace!("capture works");
    let token =
        generate(&signer, &admin_request("localhost"), now).expect("token generation works");
    let verifier = Verifier::new("localhost", "us-east-1", [credentials(None)]);
    let verified = verifier.verify(token.expose_secret(), "admin", now);
    assert!(verified.is_ok(), "{verified:?}");

    let text = String::from_utf8(log.0.lock().expect("log lock").clone()).expect("UTF-8 log");
    assert!(
        text.contains("capture works"),
        "the subscriber saw no events"
    );
    assert!(!text.contains("IQoJb3JpZ2luX2VjEdgeSessionToken"), "{text}");
}
