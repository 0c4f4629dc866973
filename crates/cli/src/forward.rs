//! `muster forward`: Security Hub events replayed from files through the same forwarder
//! the Lambda runs, with the ledger in a local file and the write-back recorded on disk.
//!
//! The ledger file keeps the Lambda's guarantee across processes: every conditional
//! write takes a lock file (created exclusively), re-reads the ledger, checks the
//! version and replaces the file by an atomic rename, so two `muster forward` runs over
//! the same events still make one ticket per finding.

use muster_core::ports::{Budget, FailedFinding, FindingsWriteBack, Ledger, Secrets};
use muster_core::tickets::{
    parse_events, ForwardFailure, ForwardSummary, Forwarder, LedgerEntry, Routes, WriteBack,
};
use muster_core::{Error, Result};
use muster_tickets::{HttpOptions, HttpTickets};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// Routing rules (JSON): backends with their base URLs, and the rules that pick one.
    #[arg(long)]
    routes: PathBuf,
    /// Lake directory: the ledger and the write-back record go under <out>/tickets/.
    #[arg(long, default_value = "muster-lake")]
    out: PathBuf,
    /// Ledger file (finding Id -> ticket); default <out>/tickets/ledger.json.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// JSON object of backend credentials by secret name. Without it (or for names it
    /// lacks) a secret comes from the variable MUSTER_SECRET_<NAME> (upper case, every
    /// other character than A-Z and 0-9 as '_').
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// Do not record write-backs (<out>/tickets/write-back.jsonl).
    #[arg(long)]
    no_write_back: bool,
    /// Findings of one event handled at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Ledger items expire this many days after their last write (0: never).
    #[arg(long, default_value_t = 400)]
    ttl_days: u32,
    /// Print one JSON object with the counts and the failures.
    #[arg(long)]
    json: bool,
    /// Event files (JSON or JSON lines; directories are walked): EventBridge
    /// "Security Hub Findings - Imported" / "- Custom Action" events, or bare ASFF findings.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// A claim on a finding lasts this long; a run that died mid-create is taken over after it.
const LEASE_SECONDS: i64 = 900;
/// A lock file older than this belongs to a process that died holding it.
const STALE_LOCK: Duration = Duration::from_secs(30);
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The ledger as one JSON file: `{"<finding id>": <entry>, ...}`.
pub struct FileLedger {
    path: PathBuf,
    lock: PathBuf,
}

impl FileLedger {
    pub fn new(path: impl Into<PathBuf>) -> FileLedger {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        FileLedger {
            path,
            lock: lock.into(),
        }
    }

    fn error(&self, e: impl std::fmt::Display, retryable: bool) -> Error {
        Error::sink(self.path.display().to_string(), e, retryable)
    }

    fn read(&self) -> Result<BTreeMap<String, LedgerEntry>> {
        match fs::read(&self.path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.error(format!("not a muster ledger: {e}"), false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e, true)),
        }
    }

    /// Runs `change` on the ledger under the lock; writes the ledger back when it says so.
    fn locked<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, LedgerEntry>) -> (bool, T),
    ) -> Result<T> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.error(e, false))?;
        }
        let _guard = self.acquire()?;
        let mut entries = self.read()?;
        let (write, result) = change(&mut entries);
        if write {
            let body = serde_json::to_vec_pretty(&entries).map_err(|e| self.error(e, false))?;
            let mut temp = self.path.clone().into_os_string();
            temp.push(format!(".{}.tmp", std::process::id()));
            let temp = PathBuf::from(temp);
            fs::write(&temp, body)
                .and_then(|_| fs::rename(&temp, &self.path))
                .map_err(|e| {
                    let _ = fs::remove_file(&temp);
                    self.error(e, true)
                })?;
        }
        Ok(result)
    }

    fn acquire(&self) -> Result<LockGuard<'_>> {
        let start = Instant::now();
        loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&self.lock)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(LockGuard(&self.lock));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&self.lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = fs::remove_file(&self.lock);
                        continue;
                    }
                    if start.elapsed() > LOCK_WAIT {
                        return Err(self.error(
                            format!(
                                "ledger is locked by another process ({}); remove it if no muster runs",
                                self.lock.display()
                            ),
                            true,
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(self.error(e, false)),
            }
        }
    }
}

struct LockGuard<'a>(&'a Path);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0);
    }
}

impl Ledger for FileLedger {
    fn get(&self, finding_id: &str) -> Result<Option<LedgerEntry>> {
        // Whole-file renames: a read without the lock sees one complete version.
        Ok(self.read()?.remove(finding_id))
    }

    fn put_new(&self, entry: &LedgerEntry) -> Result<bool> {
        self.locked(|entries| {
            if entries.contains_key(&entry.finding_id) {
                return (false, false);
            }
            entries.insert(entry.finding_id.clone(), entry.clone());
            (true, true)
        })
    }

    fn replace(&self, entry: &LedgerEntry, expected_version: u64) -> Result<bool> {
        self.locked(|entries| match entries.get(&entry.finding_id) {
            Some(current) if current.version == expected_version => {
                entries.insert(entry.finding_id.clone(), entry.clone());
                (true, true)
            }
            _ => (false, false),
        })
    }
}

/// Backend credentials from a JSON file, then from `MUSTER_SECRET_<NAME>` variables.
pub struct LocalSecrets {
    file: BTreeMap<String, String>,
}

/// The variable a secret name is read from: `jira/api` -> `MUSTER_SECRET_JIRA_API`.
pub fn secret_variable(name: &str) -> String {
    let mut v = String::from("MUSTER_SECRET_");
    v.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    v
}

impl LocalSecrets {
    /// Values may be strings or JSON objects (kept as their JSON text, as Secrets Manager
    /// keeps key/value secrets).
    pub fn load(path: Option<&Path>) -> std::result::Result<LocalSecrets, String> {
        let Some(path) = path else {
            return Ok(LocalSecrets {
                file: BTreeMap::new(),
            });
        };
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let map: BTreeMap<String, Value> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: expected a JSON object of secrets by name: {e}",
                path.display()
            )
        })?;
        let mut file = BTreeMap::new();
        for (name, value) in map {
            let text = match value {
                Value::String(s) => s,
                v @ Value::Object(_) => v.to_string(),
                _ => {
                    return Err(format!(
                        "{}: secret {name:?}: expected a string or an object",
                        path.display()
                    ))
                }
            };
            file.insert(name, text);
        }
        Ok(LocalSecrets { file })
    }
}

impl Secrets for LocalSecrets {
    fn get(&self, name: &str) -> Result<String> {
        if let Some(v) = self.file.get(name) {
            return Ok(v.clone());
        }
        let variable = secret_variable(name);
        std::env::var(&variable)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "secret {name:?}: set {variable} or give it in --secrets FILE"
                ))
            })
    }
}

/// Security Hub's stand-in: each write-back appended as one JSON line.
pub struct LocalWriteBack {
    path: PathBuf,
}

#[derive(Serialize)]
struct Recorded<'a> {
    at: String,
    #[serde(flatten)]
    update: &'a WriteBack,
}

impl FindingsWriteBack for LocalWriteBack {
    fn write_back(&self, updates: &[WriteBack]) -> Result<Vec<FailedFinding>> {
        let fail =
            |e: &dyn std::fmt::Display| Error::sink(self.path.display().to_string(), e, false);
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let at = muster_core::time::format_rfc3339_ms(now_ms());
        let mut text = String::new();
        for update in updates {
            let line = serde_json::to_string(&Recorded {
                at: at.clone(),
                update,
            })
            .map_err(|e| fail(&e))?;
            text.push_str(&line);
            text.push('\n');
        }
        // One write of whole lines: concurrent runs append without interleaving.
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| fail(&e))?;
        Ok(Vec::new())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn files(path: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            let hidden = e
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let event_file = e.is_dir()
                || e.extension()
                    .is_some_and(|x| x == "json" || x == "jsonl" || x == "ndjson");
            // Walking a directory takes event files only (a README or a script beside
            // them is not an event); a file named on the command line is always read.
            if !hidden && event_file {
                files(&e, out)?;
            }
        }
    } else {
        fs::metadata(path)?;
        out.push(path.to_path_buf());
    }
    Ok(())
}

#[derive(Serialize)]
struct Report {
    files: usize,
    events: usize,
    /// Events that could not be parsed (each in `errors`).
    invalid_events: usize,
    findings: usize,
    created: usize,
    updated: usize,
    closed: usize,
    reopened: usize,
    unchanged: usize,
    unrouted: usize,
    failed: usize,
    write_back_failed: usize,
    failures: Vec<ForwardFailure>,
    errors: Vec<String>,
    ledger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    write_back: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let fail = |message: String| {
        eprintln!("muster: {message}");
        ExitCode::from(2)
    };
    let routes = match fs::read_to_string(&args.routes) {
        Ok(text) => match Routes::from_json(&text, &args.routes.display().to_string()) {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()),
        },
        Err(e) => return fail(format!("{}: {e}", args.routes.display())),
    };
    let secrets = match LocalSecrets::load(args.secrets.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let tickets = match HttpTickets::new(Arc::new(secrets), HttpOptions::default()) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let tickets_dir = args.out.join("tickets");
    let ledger_path = args
        .ledger
        .clone()
        .unwrap_or_else(|| tickets_dir.join("ledger.json"));
    let ledger = FileLedger::new(&ledger_path);
    let write_back = (!args.no_write_back).then(|| LocalWriteBack {
        path: tickets_dir.join("write-back.jsonl"),
    });
    let mut paths = Vec::new();
    for p in &args.paths {
        if let Err(e) = files(p, &mut paths) {
            return fail(format!("{}: cannot read: {e}", p.display()));
        }
    }
    let forwarder = Forwarder {
        routes: &routes,
        ledger: &ledger,
        tickets: &tickets,
        write_back: write_back.as_ref().map(|w| w as &dyn FindingsWriteBack),
        ttl_days: (args.ttl_days > 0).then_some(args.ttl_days),
        concurrency: args.concurrency.max(1),
        lease_seconds: LEASE_SECONDS,
    };
    let mut summary = ForwardSummary::default();
    let (mut events, mut errors) = (0, Vec::new());
    for path in &paths {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(format!("{}: cannot read: {e}", path.display())),
        };
        for parsed in parse_events(&text, &path.display().to_string()) {
            match parsed {
                Ok(event) => {
                    events += 1;
                    summary.merge(forwarder.forward(&event, now_ms() / 1000, Budget::default()));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    let report = Report {
        files: paths.len(),
        events,
        invalid_events: errors.len(),
        findings: summary.findings,
        created: summary.created,
        updated: summary.updated,
        closed: summary.closed,
        reopened: summary.reopened,
        unchanged: summary.unchanged,
        unrouted: summary.unrouted,
        failed: summary.failed,
        write_back_failed: summary.write_back_failed,
        failures: summary.failures,
        errors,
        ledger: ledger_path.display().to_string(),
        write_back: write_back.map(|w| w.path.display().to_string()),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for e in &report.errors {
            eprintln!("muster: {e}");
        }
        for f in &report.failures {
            let again = if f.retryable {
                " (may pass on a re-run)"
            } else {
                ""
            };
            eprintln!("muster: {}: {}{again}", f.finding_id, f.error);
        }
        println!(
            "{} file(s), {} event(s), {} finding(s): {} created, {} updated, {} closed, {} reopened, {} unchanged, {} unrouted, {} failed; ledger {}",
            report.files,
            report.events,
            report.findings,
            report.created,
            report.updated,
            report.closed,
            report.reopened,
            report.unchanged,
            report.unrouted,
            report.failed,
            report.ledger
        );
    }
    if report.failed + report.invalid_events + report.write_back_failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::tickets::TicketState;

    fn entry(id: &str, version: u64) -> LedgerEntry {
        LedgerEntry {
            finding_id: id.into(),
            state: TicketState::Creating,
            ticket: None,
            route: "r".into(),
            state_hash: "h".into(),
            write_back_hash: None,
            lease_until: 0,
            expires_at: None,
            updated_at: "2026-11-20T10:00:00.000Z".into(),
            version,
        }
    }

    #[test]
    fn the_file_ledger_writes_only_when_its_condition_holds() {
        let dir = std::env::temp_dir().join(format!("muster-ledger-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let ledger = FileLedger::new(dir.join("tickets/ledger.json"));
        assert_eq!(ledger.get("a").unwrap(), None);
        assert!(ledger.put_new(&entry("a", 1)).unwrap());
        assert!(
            !ledger.put_new(&entry("a", 1)).unwrap(),
            "a second claim loses"
        );
        assert!(
            !ledger.replace(&entry("a", 3), 2).unwrap(),
            "a stale version loses"
        );
        assert!(ledger.replace(&entry("a", 2), 1).unwrap());
        assert_eq!(ledger.get("a").unwrap().map(|e| e.version), Some(2));
        // Threads racing for one finding: exactly one claim wins.
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        usize::from(
                            FileLedger::new(dir.join("tickets/ledger.json"))
                                .put_new(&entry("b", 1))
                                .unwrap(),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        assert!(
            !dir.join("tickets/ledger.json.lock").exists(),
            "the lock is released"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn secret_names_map_to_variables() {
        let cases = [
            ("jira", "MUSTER_SECRET_JIRA"),
            (
                "muster/slack-bot-token",
                "MUSTER_SECRET_MUSTER_SLACK_BOT_TOKEN",
            ),
            ("pd.key2", "MUSTER_SECRET_PD_KEY2"),
        ];
        for (name, want) in cases {
            assert_eq!(secret_variable(name), want);
        }
    }
}
