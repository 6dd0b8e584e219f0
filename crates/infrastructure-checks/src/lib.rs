//! Test-only crate that checks `infrastructure/template.yaml` offline.
//!
//! The checks live in `tests/`: they run the cfn-guard rules in
//! `infrastructure/guard/` against the template, and against one broken copy
//! of it per fixture to prove that every rule can fail. Nothing here reaches
//! AWS, and the crate has no library API.
