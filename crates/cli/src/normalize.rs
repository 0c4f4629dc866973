//! `muster normalize`: files and directories in, the lake layout out.

use crate::local::{self, LocalDetections, LocalMetrics, LocalStore};
use indicatif::{ProgressBar, ProgressStyle};
use muster_core::detect::RuleSet;
use muster_core::metrics;
use muster_core::normalize::{self, Settings, Summary};
use muster_core::sources::SourceKind;
use muster_core::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// Lake directory (mirrors the S3 layout: ocsf/, quarantine/, metrics/).
    #[arg(long, default_value = "muster-lake")]
    out: PathBuf,
    /// Log source: auto detects it from the key, then the content.
    #[arg(long, default_value = "auto", value_parser = parse_source)]
    source: SourceChoice,
    /// Print one JSON summary object instead of the table.
    #[arg(long)]
    json: bool,
    /// gzip level of the lake files (1 fastest .. 9 smallest).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Files processed at once (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// CloudWatch namespace written in the EMF metric documents.
    #[arg(long, default_value = "Muster")]
    metrics_namespace: String,
    /// A rules file (same shape as the built-in rules) whose rules are added to the
    /// built-in ones; a rule with a built-in rule's id replaces it.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Do not run detection rules.
    #[arg(long)]
    no_detect: bool,
    /// Files or directories (searched recursively; .gz or plain).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(Clone, Copy)]
struct SourceChoice(Option<SourceKind>);

fn parse_source(s: &str) -> Result<SourceChoice, String> {
    match s {
        "auto" => Ok(SourceChoice(None)),
        "cloudtrail" => Ok(SourceChoice(Some(SourceKind::CloudTrail))),
        "vpcflow" => Ok(SourceChoice(Some(SourceKind::VpcFlow))),
        "elb" => Ok(SourceChoice(Some(SourceKind::Elb))),
        "s3access" => Ok(SourceChoice(Some(SourceKind::S3Access))),
        "waf" => Ok(SourceChoice(Some(SourceKind::Waf))),
        "route53" => Ok(SourceChoice(Some(SourceKind::Route53Resolver))),
        "cloudfront" => Ok(SourceChoice(Some(SourceKind::CloudFront))),
        "cwlogs" => Ok(SourceChoice(Some(SourceKind::CloudWatchLogs))),
        "guardduty" => Ok(SourceChoice(Some(SourceKind::GuardDuty))),
        "securityhub" => Ok(SourceChoice(Some(SourceKind::SecurityHub))),
        other => Err(format!(
            "unknown source '{other}': expected auto, cloudtrail, vpcflow, elb, s3access, waf, route53, cloudfront, cwlogs, guardduty or securityhub"
        )),
    }
}

/// One input file and whether it was named on the command line (then an unknown
/// source is an error) or found in a directory (then it is listed and passed over).
struct Input {
    path: PathBuf,
    named: bool,
}

#[derive(Default, Serialize)]
struct SourceTotals {
    objects: u64,
    records_in: u64,
    records_out: u64,
    quarantined: u64,
    skipped: u64,
}

#[derive(Default, Serialize)]
struct RunSummary {
    objects: u64,
    records_in: u64,
    records_out: u64,
    quarantined: u64,
    skipped: u64,
    detections: u64,
    auth_success: u64,
    auth_failure: u64,
    data_access: BTreeMap<String, u64>,
    digests: u64,
    empty: u64,
    by_source: BTreeMap<String, SourceTotals>,
    by_class: BTreeMap<u32, u64>,
    /// Files found in directories whose source could not be told: passed over.
    unrecognised: Vec<String>,
    /// Files that could not be read at all, or stopped early: path and reason.
    failed: Vec<Failure>,
    lake: String,
    seconds: f64,
}

#[derive(Serialize, Clone)]
struct Failure {
    path: String,
    error: String,
}

impl RunSummary {
    fn add(&mut self, s: &Summary) {
        self.objects += 1;
        if s.digest {
            self.digests += 1;
        }
        if s.empty {
            self.empty += 1;
        }
        self.records_in += s.records_in;
        self.records_out += s.records_out;
        self.quarantined += s.quarantined;
        self.skipped += s.skipped;
        self.detections += s.detections;
        self.auth_success += s.auth_success;
        self.auth_failure += s.auth_failure;
        for (k, n) in &s.data_access {
            *self.data_access.entry(k.clone()).or_default() += n;
        }
        if let Some(source) = s.source {
            let t = self.by_source.entry(source.to_string()).or_default();
            t.objects += 1;
            t.records_in += s.records_in;
            t.records_out += s.records_out;
            t.quarantined += s.quarantined;
            t.skipped += s.skipped;
        }
        for (class, n) in &s.by_class {
            *self.by_class.entry(*class).or_default() += n;
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let started = Instant::now();
    let mut inputs = Vec::new();
    let mut failed = Vec::new();
    for path in &args.paths {
        collect(path, true, &mut inputs, &mut failed);
    }
    let store = LocalStore::new(&args.out);
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let metrics = match LocalMetrics::create(
        &args
            .out
            .join("metrics")
            .join(format!("normalize-{run_id}.jsonl")),
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("muster: cannot write to {}: {e}", args.out.display());
            return ExitCode::from(2);
        }
    };
    let rules = if args.no_detect {
        None
    } else {
        match load_rules(args.rules.as_deref()) {
            Ok(r) => Some(std::sync::Arc::new(r)),
            Err(e) => {
                eprintln!("muster: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let detections = match LocalDetections::create(
        &args
            .out
            .join("detections")
            .join(format!("normalize-{run_id}.jsonl")),
    ) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("muster: cannot write to {}: {e}", args.out.display());
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        source: args.source.0,
        gzip_level: args.gzip_level,
        rules,
        ..Settings::default()
    };
    let outputs = Outputs {
        store: &store,
        metrics: &metrics,
        detections: &detections,
        namespace: &args.metrics_namespace,
    };
    let total = Mutex::new(RunSummary {
        lake: args.out.display().to_string(),
        ..RunSummary::default()
    });
    let failures = Mutex::new(failed);
    let progress = progress_bar(inputs.len() as u64, args.json);
    let jobs = args
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1);
    let next = AtomicUsize::new(0);

    std::thread::scope(|scope| {
        for _ in 0..jobs.min(inputs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(input) = inputs.get(i) else { break };
                let result = process(input, &settings, &outputs);
                match result {
                    Processed::Done(summary) => {
                        if let Some(error) = &summary.error {
                            lock(&failures).push(Failure {
                                path: input.path.display().to_string(),
                                error: error.clone(),
                            });
                        }
                        lock(&total).add(&summary);
                    }
                    Processed::Unrecognised => lock(&total)
                        .unrecognised
                        .push(input.path.display().to_string()),
                    Processed::Failed(error) => lock(&failures).push(Failure {
                        path: input.path.display().to_string(),
                        error,
                    }),
                }
                progress.inc(1);
            });
        }
    });
    progress.finish_and_clear();

    let mut total = total.into_inner().unwrap_or_else(|e| e.into_inner());
    total.failed = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    total.failed.sort_by(|a, b| a.path.cmp(&b.path));
    total.unrecognised.sort();
    total.seconds = started.elapsed().as_secs_f64();
    if args.json {
        match serde_json::to_string_pretty(&total) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("muster: {e}"),
        }
    } else {
        print_table(&total);
    }
    for f in &total.failed {
        eprintln!("muster: {}: {}", f.path, f.error);
    }
    if total.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn load_rules(path: Option<&Path>) -> Result<RuleSet, String> {
    let builtin = RuleSet::builtin();
    let Some(path) = path else { return Ok(builtin) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read rules: {e}", path.display()))?;
    let mine = RuleSet::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(builtin.merged_with(mine))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Processed {
    Done(Summary),
    Unrecognised,
    Failed(String),
}

/// Where one run's output goes.
struct Outputs<'a> {
    store: &'a LocalStore,
    metrics: &'a LocalMetrics,
    detections: &'a LocalDetections,
    namespace: &'a str,
}

fn process(input: &Input, settings: &Settings, out: &Outputs<'_>) -> Processed {
    let object = match local::open_file(&input.path) {
        Ok(o) => o,
        Err(e) => return Processed::Failed(format!("cannot read: {e}")),
    };
    let outcome = normalize::normalize_object_with(
        object,
        settings,
        out.store,
        out.store,
        Some(out.detections),
    );
    if let Some(Error::UnknownSource { .. }) = &outcome.error {
        if !input.named {
            return Processed::Unrecognised;
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    for doc in metrics::all_metrics(out.namespace, &outcome.summary, now) {
        if let Err(e) = muster_core::ports::MetricsSink::publish(out.metrics, &doc) {
            return Processed::Failed(e.to_string());
        }
    }
    Processed::Done(outcome.summary)
}

fn collect(path: &Path, named: bool, inputs: &mut Vec<Input>, failed: &mut Vec<Failure>) {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            failed.push(Failure {
                path: path.display().to_string(),
                error: format!("cannot read: {e}"),
            });
            return;
        }
    };
    if meta.is_file() {
        inputs.push(Input {
            path: path.to_path_buf(),
            named,
        });
        return;
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            failed.push(Failure {
                path: path.display().to_string(),
                error: format!("cannot list: {e}"),
            });
            return;
        }
    };
    entries.sort();
    for entry in entries {
        // Hidden files and folders (.git, editor droppings) are not logs.
        if entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        collect(&entry, false, inputs, failed);
    }
}

fn progress_bar(len: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn print_table(t: &RunSummary) {
    println!(
        "{:<18} {:>8} {:>12} {:>12} {:>12} {:>10}",
        "source", "objects", "records_in", "records_out", "quarantined", "skipped"
    );
    for (source, s) in &t.by_source {
        println!(
            "{:<18} {:>8} {:>12} {:>12} {:>12} {:>10}",
            source, s.objects, s.records_in, s.records_out, s.quarantined, s.skipped
        );
    }
    println!(
        "{:<18} {:>8} {:>12} {:>12} {:>12} {:>10}",
        "total", t.objects, t.records_in, t.records_out, t.quarantined, t.skipped
    );
    if !t.by_class.is_empty() {
        let classes: Vec<String> = t
            .by_class
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        println!("by OCSF class: {}", classes.join(", "));
    }
    if t.auth_success + t.auth_failure > 0 {
        println!(
            "authentication attempts: {} succeeded, {} failed",
            t.auth_success, t.auth_failure
        );
    }
    if !t.data_access.is_empty() {
        let access: Vec<String> = t
            .data_access
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        println!("data access: {}", access.join(", "));
    }
    println!(
        "detections: {} (EventBridge events under {}/detections/)",
        t.detections, t.lake
    );
    if t.digests > 0 {
        println!(
            "CloudTrail digest files counted (not parsed): {}",
            t.digests
        );
    }
    if t.empty > 0 {
        println!("empty objects: {}", t.empty);
    }
    if !t.unrecognised.is_empty() {
        println!(
            "passed over (source not recognised): {}",
            t.unrecognised.len()
        );
    }
    println!("lake: {}  ({:.2} s)", t.lake, t.seconds);
}
