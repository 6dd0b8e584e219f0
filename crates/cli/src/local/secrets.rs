//! `dsql-secrets local secrets`: the Secrets Manager emulator.
//!
//! TO THE ENGINEER BUILDING THE EMULATOR: before anything else, read
//! /tmp/brief-common.md and /tmp/brief-support.md. They hold the team's ground
//! rules (shared working tree: commit only your own paths with `git add PATHS`;
//! loopback only; no copied code; secrets never logged) and the shared test
//! helper API. Delete this paragraph when you replace the stub.

use clap::Args;

#[derive(Args)]
pub struct SecretsArgs {}

pub async fn run(_args: SecretsArgs) -> anyhow::Result<()> {
    anyhow::bail!("the Secrets Manager emulator is not part of this build yet")
}
