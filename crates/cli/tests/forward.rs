//! `muster forward` as a user runs it: event files replayed through the forwarder into
//! the stub ticket server (GitHub Issues API), with the ledger and write-back on disk.

use muster_tickets::stub::{StubResponse, StubServer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const TOKEN: &str = "ghp_stubtoken0123456789";

fn events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/securityhub-events")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("muster-forward-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A GitHub Issues stand-in: issues numbered 1, 2, … in order of creation.
fn github() -> StubServer {
    let stub = StubServer::start().unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let url = stub.url();
    stub.on_fn("POST", "/repos/acme/app/issues", move |_| {
        let n = next.fetch_add(1, Ordering::SeqCst) + 1;
        StubResponse::json(
            201,
            json!({"number": n, "html_url": format!("{url}/acme/app/issues/{n}"), "state": "open"}),
        )
    });
    stub.on(
        "POST",
        "/repos/acme/app/issues/{}/comments",
        [StubResponse::json(201, json!({"id": 1}))],
    );
    stub.on(
        "PATCH",
        "/repos/acme/app/issues/{}",
        [StubResponse::json(200, json!({"number": 1}))],
    );
    stub
}

fn routes(dir: &Path, stub: &StubServer) -> PathBuf {
    let path = dir.join("routes.json");
    let routes = json!({
        "backends": {"gh": {"type": "github", "base_url": stub.url(), "secret": "github/token", "project": "acme/app"}},
        "routes": [{"name": "all", "default": true, "backend": "gh"}]
    });
    std::fs::write(&path, routes.to_string()).unwrap();
    path
}

fn forward(dir: &Path, routes: &Path, extra: &[&str], inputs: &[PathBuf]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_muster"));
    c.current_dir(dir)
        .env_remove("MUSTER_SECRET_GITHUB_TOKEN")
        .args(["forward", "--json", "--routes"])
        .arg(routes)
        .args(extra)
        .args(inputs);
    c
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn counts(v: &Value) -> [u64; 8] {
    [
        "findings",
        "created",
        "updated",
        "closed",
        "reopened",
        "unchanged",
        "unrouted",
        "failed",
    ]
    .map(|k| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")))
}

#[test]
fn a_findings_life_becomes_one_issue_kept_in_sync() {
    let dir = temp_dir("life");
    let stub = github();
    let routes = routes(&dir, &stub);
    let out = forward(&dir, &routes, &[], &[events().join("lifecycle_s3_2.jsonl")])
        .env("MUSTER_SECRET_GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    // MEDIUM NEW -> HIGH (comment) -> re-worded title (nothing) -> RESOLVED (close) -> NEW again (reopen).
    assert_eq!(counts(&r), [5, 1, 1, 1, 1, 1, 0, 0], "{r}");
    let creates = stub.requests_to("POST", "/repos/acme/app/issues");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].bearer(), Some(TOKEN));
    let patches: Vec<String> = stub
        .requests_to("PATCH", "/repos/acme/app/issues/{}")
        .iter()
        .map(|p| p.json()["state"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(patches, ["closed", "open"]);
    // The default places: the ledger and the write-back under ./muster-lake/tickets/.
    let ledger: Value = serde_json::from_slice(
        &std::fs::read(dir.join("muster-lake/tickets/ledger.json")).unwrap(),
    )
    .unwrap();
    let entries = ledger.as_object().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries.values().next().unwrap();
    assert_eq!(
        (entry["state"].as_str(), entry["ticket"]["key"].as_str()),
        (Some("OPEN"), Some("1")),
        "{entry}"
    );
    let written =
        std::fs::read_to_string(dir.join("muster-lake/tickets/write-back.jsonl")).unwrap();
    let first: Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert!(
        first["note"]
            .as_str()
            .unwrap()
            .contains("/acme/app/issues/1"),
        "{first}"
    );
    // The token is nowhere in what the run printed.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(TOKEN));
}

#[test]
fn replays_and_concurrent_runs_over_one_ledger_make_one_issue_per_finding() {
    let dir = temp_dir("once");
    let stub = github();
    let routes = routes(&dir, &stub);
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"github/token": {"token": TOKEN}}).to_string(),
    )
    .unwrap();
    let ledger = dir.join("ledger.json");
    let args = [
        "--secrets",
        secrets.to_str().unwrap(),
        "--ledger",
        ledger.to_str().unwrap(),
    ];
    let input = [events().join("imported_multi_three_products.json")];
    // Twice at once, then once more.
    let spawn = || {
        forward(&dir, &routes, &args, &input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let c = forward(&dir, &routes, &args, &input).output().unwrap();
    let mut created = 0;
    for out in [&a, &b, &c] {
        let r = report(out);
        created += r["created"].as_u64().unwrap();
        // A run that met the other's claim mid-create reports it retryable, never a duplicate.
        for f in r["failures"].as_array().unwrap() {
            assert_eq!(f["retryable"], json!(true), "{r}");
        }
    }
    let creates = stub.requests_to("POST", "/repos/acme/app/issues");
    assert_eq!(creates.len(), 3, "three findings, three issues");
    assert_eq!(created, 3);
    let r = report(&c);
    assert_eq!(r["ledger"].as_str(), ledger.to_str());
    assert!(!ledger.with_extension("json.lock").exists());
}

#[test]
fn a_directory_of_samples_replays_and_the_echo_adds_nothing() {
    let dir = temp_dir("dir");
    let stub = github();
    let routes = routes(&dir, &stub);
    let run = |inputs: &[PathBuf]| {
        forward(&dir, &routes, &[], inputs)
            .env("MUSTER_SECRET_GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let first = report(&run(&[events().join("imported_guardduty_high.json")]));
    assert_eq!(first["created"], json!(1), "{first}");
    let echo = report(&run(&[events().join("imported_writeback_echo.json")]));
    assert_eq!(counts(&echo), [1, 0, 0, 0, 0, 1, 0, 0], "{echo}");
    assert!(stub
        .requests_to("POST", "/repos/acme/app/issues/{}/comments")
        .is_empty());
    // The whole folder (README and script skipped): every event parses, nothing fails.
    let out = run(&[events()]);
    let all = report(&out);
    assert_eq!(all["invalid_events"], json!(0), "{all}");
    assert_eq!(all["failed"], json!(0), "{all}");
    assert_eq!(all["files"], json!(7), "{all}");
    assert!(out.status.success());
}

#[test]
fn missing_secrets_and_bad_routes_are_reported_clearly() {
    let dir = temp_dir("bad");
    let stub = github();
    let routes = routes(&dir, &stub);
    let out = forward(
        &dir,
        &routes,
        &[],
        &[events().join("imported_guardduty_high.json")],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(r["failed"], json!(1), "{r}");
    let error = r["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("MUSTER_SECRET_GITHUB_TOKEN"), "{error}");
    assert!(stub.requests().is_empty());

    let bad = dir.join("bad-routes.json");
    std::fs::write(
        &bad,
        r#"{"backends": {"gh": {"type": "github", "base_url": "x"}}, "routes": []}"#,
    )
    .unwrap();
    let out = forward(&dir, &bad, &[], &[events()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad-routes.json") && stderr.contains("base_url"),
        "{stderr}"
    );
}
