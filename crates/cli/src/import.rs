//! `muster import`: detections and custom findings to ASFF, into the local stand-in
//! for Security Hub (`<out>/findings/`, one file per finding Id, re-imports overwrite
//! as Security Hub updates).

use muster_core::asff::import::{self, ItemResult, ItemStatus};
use muster_core::asff::{Finding, ImportTarget};
use muster_core::ports::{FailedFinding, FindingsSink};
use muster_core::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Lake directory; findings are written under <out>/findings/.
    #[arg(long, default_value = "muster-lake")]
    out: PathBuf,
    /// Account whose Security Hub receives the findings (names the ProductArn).
    #[arg(long, default_value = "111122223333")]
    account: String,
    /// Region of that Security Hub.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Print one JSON object with a result per finding.
    #[arg(long)]
    json: bool,
    /// JSON or JSON-lines files (or directories of them): custom findings,
    /// {"findings":[...]} payloads, or muster.detection EventBridge events.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Security Hub's stand-in on disk.
struct LocalFindings {
    dir: PathBuf,
}

impl FindingsSink for LocalFindings {
    fn import(&self, findings: &[Finding]) -> Result<Vec<FailedFinding>> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::sink(self.dir.display().to_string(), e, false))?;
        for f in findings {
            let name = format!("{}.json", hex_id(&f.id));
            let body = serde_json::to_vec_pretty(f).map_err(|e| Error::sink(&name, e, false))?;
            let path = self.dir.join(&name);
            let temp = self.dir.join(format!(".{name}.tmp"));
            std::fs::write(&temp, body)
                .and_then(|_| std::fs::rename(&temp, &path))
                .map_err(|e| Error::sink(path.display().to_string(), e, false))?;
        }
        Ok(Vec::new())
    }
}

/// Finding Ids contain '/': a file name derived from the Id keeps one file per finding.
fn hex_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Serialize)]
struct Report {
    inputs: usize,
    findings: usize,
    imported: usize,
    invalid: usize,
    failed: usize,
    results: Vec<FileResult>,
}

#[derive(Serialize)]
struct FileResult {
    path: String,
    #[serde(flatten)]
    result: ItemResult,
}

fn files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            if !e
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                files(&e, out)?;
            }
        }
    } else {
        std::fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    Ok(())
}

pub fn run(args: Args) -> ExitCode {
    let target = ImportTarget {
        account: args.account.clone(),
        region: args.region.clone(),
        partition: "aws".into(),
    };
    let sink = LocalFindings {
        dir: args.out.join("findings"),
    };
    let now = muster_core::time::format_rfc3339_ms(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    );
    let mut paths = Vec::new();
    for p in &args.paths {
        if let Err(e) = files(p, &mut paths) {
            eprintln!("muster: {}: cannot read: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let mut report = Report {
        inputs: paths.len(),
        findings: 0,
        imported: 0,
        invalid: 0,
        failed: 0,
        results: Vec::new(),
    };
    for path in &paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("muster: {}: cannot read: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let (findings, mut results) = import::build(import::parse_document(&text), &target, &now);
        let failed = match sink.import(&findings) {
            Ok(failed) => failed,
            Err(e) => {
                eprintln!("muster: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        for r in results.iter_mut().filter(|r| r.status == ItemStatus::Ready) {
            match failed.iter().find(|f| Some(&f.id) == r.id.as_ref()) {
                Some(f) => {
                    r.status = ItemStatus::Failed;
                    r.error = Some(format!("{}: {}", f.error_code, f.error_message));
                }
                None => r.status = ItemStatus::Imported,
            }
        }
        report.findings += findings.len();
        for r in results {
            match r.status {
                ItemStatus::Imported => report.imported += 1,
                ItemStatus::Invalid => report.invalid += 1,
                ItemStatus::Failed => report.failed += 1,
                ItemStatus::Ready => {}
            }
            report.results.push(FileResult {
                path: path.display().to_string(),
                result: r,
            });
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for r in report
            .results
            .iter()
            .filter(|r| r.result.status != ItemStatus::Imported)
        {
            eprintln!(
                "muster: {}: {}",
                r.path,
                r.result.error.as_deref().unwrap_or("failed")
            );
        }
        println!(
            "{} input file(s): {} finding(s) imported into {}, {} invalid, {} failed",
            report.inputs,
            report.findings,
            sink.dir.display(),
            report.invalid,
            report.failed
        );
    }
    if report.invalid + report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
