//! `muster`: the normaliser (and later the importer and forwarder) on local files,
//! writing the same lake layout as the Lambda functions write to S3.

mod forward;
mod import;
mod local;
mod normalize;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "muster",
    version,
    about = "AWS security telemetry to OCSF, findings and tickets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Normalise AWS log files (CloudTrail, VPC Flow Logs, ELB, S3 access, WAF, Route 53 Resolver, CloudFront, GuardDuty, Security Hub, CloudWatch Logs via Firehose) into an OCSF lake on disk.
    Normalize(normalize::Args),
    /// Turn detections and custom findings into ASFF findings (Security Hub's stand-in on disk).
    Import(import::Args),
    /// Replay Security Hub finding events through the ticket forwarder (routes file, local ledger).
    Forward(forward::Args),
    /// Verify CloudTrail log file integrity: digest signatures and chain, and each log file's SHA-256.
    VerifyDigests(verify::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Normalize(args) => normalize::run(args),
        Command::Import(args) => import::run(args),
        Command::VerifyDigests(args) => verify::run(args),
        Command::Forward(args) => forward::run(args),
    }
}
