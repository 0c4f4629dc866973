//! The ticket forwarder end to end against moto server: a custom finding goes through
//! the importer's handler into Security Hub (BatchImportFindings), comes back from
//! GetFindings, and is delivered to the forwarder's handler as the "Security Hub
//! Findings - Imported" event EventBridge would send. The forwarder runs on its real
//! adapters: the ledger in a DynamoDB table, the backend credentials in Secrets Manager,
//! the routes in S3 (all in moto), the ticket system a stub GitHub Issues server.
//!
//! moto 5.2.5 has no BatchUpdateFindings, so the write-back's Security Hub endpoint is a
//! local stub that checks every request against botocore's Security Hub model (the
//! `BatchUpdateFindingsRequest` shape: members, required, enums, patterns, ranges) and
//! records it. The write-back's own Imported event (the echo) is then built from the
//! finding with the recorded update applied, as Security Hub would send it.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_securityhub::types::AwsSecurityFinding;
use muster_aws::retry::Backoff;
use muster_aws::{
    dynamodb, secrets, securityhub, DynamoLedger, S3ObjectSource, SecretsManagerSecrets,
    SecurityHubSink, SecurityHubWriteBack,
};
use muster_core::ports::{FindingsWriteBack, Ledger, Secrets};
use muster_core::tickets::{LedgerEntry, TicketState, WriteBack};
use muster_e2e::{repo_root, MotoServer};
use muster_tickets::stub::{Recorded, StubResponse, StubServer};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;

const ACCOUNT: &str = "111122223333";
const TABLE: &str = "muster-ticket-ledger";
const CONFIG_BUCKET: &str = "muster-config";
const TOKEN: &str = "ghp_e2etoken0123456789";
const BATCH_UPDATE: &str = "/findings/batchupdate";

fn sdk(moto: &MotoServer) -> aws_config::SdkConfig {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "muster-e2e",
        )))
        .endpoint_url(&moto.endpoint)
        .build()
}

/// botocore's Security Hub model from the project venv (as tests/asff_model.rs reads it).
fn securityhub_model() -> Value {
    let lib = repo_root().join(".venv/lib");
    let mut found = Vec::new();
    for python in std::fs::read_dir(&lib).into_iter().flatten().flatten() {
        let dir = python
            .path()
            .join("site-packages/botocore/data/securityhub");
        for version in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            for name in ["service-2.json", "service-2.json.gz"] {
                let p = version.path().join(name);
                if p.is_file() {
                    found.push(p);
                }
            }
        }
    }
    found.sort();
    let path = found.pop().unwrap_or_else(|| {
        panic!(
            "botocore's securityhub model is not under {}: run scripts/python-env first",
            lib.display()
        )
    });
    let bytes = std::fs::read(&path).unwrap();
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
    } else {
        text = String::from_utf8(bytes).unwrap();
    }
    serde_json::from_str(&text).unwrap()
}

/// Checks `value` against the model's shape `name`; each problem is named by its path.
fn check(model: &Value, name: &str, value: &Value, path: &str, problems: &mut Vec<String>) {
    let shape = &model["shapes"][name];
    let mut problem = |what: String| problems.push(format!("{path}: {what}"));
    let range = |n: f64| {
        let below = shape["min"].as_f64().is_some_and(|min| n < min);
        let above = shape["max"].as_f64().is_some_and(|max| n > max);
        !(below || above)
    };
    match shape["type"].as_str().unwrap_or("") {
        "structure" => {
            let Some(obj) = value.as_object() else {
                return problem(format!("{name} must be an object"));
            };
            let members = shape["members"].as_object().cloned().unwrap_or_default();
            for required in shape["required"].as_array().into_iter().flatten() {
                let r = required.as_str().unwrap_or("");
                if !obj.contains_key(r) {
                    problem(format!("required member {r} of {name} is missing"));
                }
            }
            for (k, v) in obj {
                match members.get(k) {
                    Some(m) => {
                        let shape = m["shape"].as_str().unwrap_or("");
                        check(model, shape, v, &format!("{path}.{k}"), problems);
                    }
                    None => problems.push(format!("{path}: {name} has no member {k}")),
                }
            }
        }
        "list" => {
            let Some(items) = value.as_array() else {
                return problem(format!("{name} must be a list"));
            };
            if !range(items.len() as f64) {
                problem(format!("{name}: {} items is out of range", items.len()));
            }
            let member = shape["member"]["shape"].as_str().unwrap_or("");
            for (i, v) in items.iter().enumerate() {
                check(model, member, v, &format!("{path}[{i}]"), problems);
            }
        }
        "map" => {
            let Some(obj) = value.as_object() else {
                return problem(format!("{name} must be a map"));
            };
            let (key, val) = (
                shape["key"]["shape"].as_str().unwrap_or(""),
                shape["value"]["shape"].as_str().unwrap_or(""),
            );
            for (k, v) in obj {
                check(
                    model,
                    key,
                    &json!(k),
                    &format!("{path} key {k:?}"),
                    problems,
                );
                check(model, val, v, &format!("{path}.{k}"), problems);
            }
        }
        "string" => {
            let Some(s) = value.as_str() else {
                return problem(format!("{name} must be a string"));
            };
            if let Some(allowed) = shape["enum"].as_array() {
                if !allowed.iter().any(|a| a == value) {
                    problem(format!("{s:?} is not one of {allowed:?}"));
                }
            }
            if let Some(p) = shape["pattern"].as_str() {
                let re = regex_lite::Regex::new(&format!("^(?s:{p})$")).unwrap();
                if !re.is_match(s) {
                    problem(format!("{s:?} does not match {p}"));
                }
            }
            if !range(s.chars().count() as f64) {
                problem(format!("length {} is out of range", s.chars().count()));
            }
        }
        "integer" | "long" => match value.as_i64() {
            Some(n) if range(n as f64) => {}
            _ => problem(format!("{value} is not an integer in range for {name}")),
        },
        "double" | "float" => {
            if !value.is_number() {
                problem(format!("{value} is not a number"));
            }
        }
        "boolean" => {
            if !value.is_boolean() {
                problem(format!("{value} is not a boolean"));
            }
        }
        other => problem(format!(
            "shape {name} of type {other:?} is not checked here"
        )),
    }
}

/// What the model says about one BatchUpdateFindings request (its HTTP binding included).
fn batch_update_problems(model: &Value, req: &Recorded) -> Vec<String> {
    let op = &model["operations"]["BatchUpdateFindings"];
    let mut problems = Vec::new();
    if op["http"]["method"] != json!(req.method) || op["http"]["requestUri"] != json!(req.path) {
        problems.push(format!("{} {} is not {}", req.method, req.path, op["http"]));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(body) => check(
            model,
            op["input"]["shape"].as_str().unwrap_or(""),
            &body,
            "request",
            &mut problems,
        ),
        Err(e) => problems.push(format!("body is not JSON: {e}")),
    }
    problems
}

/// Security Hub's BatchUpdateFindings, as far as the write-back uses it: a request the
/// model refuses gets InvalidInputException, a valid one processes every finding.
fn security_hub_stub(model: Arc<Value>) -> StubServer {
    let stub = StubServer::start().unwrap();
    stub.on_fn("PATCH", BATCH_UPDATE, move |req| {
        let problems = batch_update_problems(&model, req);
        if !problems.is_empty() {
            return StubResponse::json(
                400,
                json!({"Code": "InvalidInputException", "Message": problems.join("; ")}),
            )
            .header("x-amzn-errortype", "InvalidInputException");
        }
        let body = req.json();
        StubResponse::json(
            200,
            json!({"ProcessedFindings": body["FindingIdentifiers"], "UnprocessedFindings": []}),
        )
    });
    stub
}

/// GitHub Issues: issues numbered 1, 2, … as they are created.
fn github_stub() -> StubServer {
    let stub = StubServer::start().unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let url = stub.url();
    stub.on_fn("POST", "/repos/acme/security/issues", move |_| {
        let n = next.fetch_add(1, Ordering::SeqCst) + 1;
        StubResponse::json(
            201,
            json!({"number": n, "html_url": format!("{url}/acme/security/issues/{n}")}),
        )
    });
    stub.on(
        "POST",
        "/repos/acme/security/issues/{}/comments",
        [StubResponse::json(201, json!({"id": 1}))],
    );
    stub
}

async fn create_ledger_table(sdk: &aws_config::SdkConfig) {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    ddb.create_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(dynamodb::KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(dynamodb::KEY)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    ddb.update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(dynamodb::TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UpdateTimeToLive");
}

/// The finding as ASFF JSON, the fields the SDK returned (the Imported event carries
/// the finding as Security Hub stores it).
fn asff_json(f: &AwsSecurityFinding) -> Value {
    let mut o = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    };
    put("SchemaVersion", f.schema_version());
    put("Id", f.id());
    put("ProductArn", f.product_arn());
    put("ProductName", f.product_name());
    put("CompanyName", f.company_name());
    put("Region", f.region());
    put("GeneratorId", f.generator_id());
    put("AwsAccountId", f.aws_account_id());
    put("CreatedAt", f.created_at());
    put("UpdatedAt", f.updated_at());
    put("FirstObservedAt", f.first_observed_at());
    put("LastObservedAt", f.last_observed_at());
    put("Title", f.title());
    put("Description", f.description());
    put("SourceUrl", f.source_url());
    o.insert("Types".into(), json!(f.types()));
    if let Some(s) = f.severity() {
        o.insert(
            "Severity".into(),
            json!({"Label": s.label().map(|l| l.as_str()), "Normalized": s.normalized()}),
        );
    }
    o.insert(
        "Resources".into(),
        f.resources()
            .iter()
            .map(|r| {
                json!({"Type": r.r#type(), "Id": r.id(), "Partition": r.partition().map(|p| p.as_str()), "Region": r.region()})
            })
            .collect(),
    );
    if let Some(fields) = f.product_fields() {
        o.insert("ProductFields".into(), json!(fields));
    }
    o.insert(
        "RecordState".into(),
        json!(f.record_state().map(|s| s.as_str()).unwrap_or("ACTIVE")),
    );
    o.insert(
        "Workflow".into(),
        json!({"Status": f.workflow().and_then(|w| w.status()).map(|s| s.as_str()).unwrap_or("NEW")}),
    );
    Value::Object(o)
}

fn imported_event(findings: Vec<Value>) -> Value {
    json!({
        "version": "0",
        "id": "5c3d1a8e-0f6e-4b2a-9d7c-3e2f1a0b9c8d",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": "2024-05-14T10:00:00Z",
        "region": "us-east-1",
        "resources": findings.iter().map(|f| f["ProductArn"].clone()).collect::<Vec<_>>(),
        "detail": {"findings": findings}
    })
}

fn deadline() -> Option<SystemTime> {
    Some(SystemTime::now() + Duration::from_secs(60))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_finding_becomes_one_ticket_and_a_note_on_the_finding() {
    let moto = MotoServer::start();
    let sdk = sdk(&moto);
    let s3 = moto.s3_client();
    let model = Arc::new(securityhub_model());
    let hub_stub = security_hub_stub(model.clone());
    let github = github_stub();

    // The forwarder's AWS resources, as the template creates them.
    create_ledger_table(&sdk).await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("muster/github")
        .secret_string(json!({"token": TOKEN}).to_string())
        .send()
        .await
        .expect("CreateSecret");
    s3.create_bucket()
        .bucket(CONFIG_BUCKET)
        .send()
        .await
        .expect("CreateBucket");
    let routes = json!({
        "backends": {"gh": {"type": "github", "base_url": github.url(), "secret": "github",
                            "project": "acme/security", "labels": ["security-hub"]}},
        "routes": [
            {"name": "quiet", "match": {"severity": ["INFORMATIONAL"]}, "drop": true},
            {"name": "everything", "default": true, "backend": "gh"}
        ]
    });
    s3.put_object()
        .bucket(CONFIG_BUCKET)
        .key("forwarder/routes.json")
        .body(routes.to_string().into_bytes().into())
        .send()
        .await
        .expect("PutObject");

    // 1. A custom finding into Security Hub through the importer, and back out of it.
    let hub = aws_sdk_securityhub::Client::new(&sdk);
    hub.enable_security_hub()
        .send()
        .await
        .expect("EnableSecurityHub");
    let importer = findings_importer::Handler::new(
        findings_importer::Config::from_lookup(|name| match name {
            "AWS_ACCOUNT_ID" => Some(ACCOUNT.into()),
            "AWS_REGION" => Some("us-east-1".into()),
            _ => None,
        })
        .unwrap(),
        findings_importer::Ports {
            source: Arc::new(S3ObjectSource::new(s3.clone(), Handle::current())),
            sink: Arc::new(
                SecurityHubSink::new(securityhub::client(&sdk, None), Handle::current())
                    .with_backoff(Backoff::new(
                        3,
                        Duration::from_millis(50),
                        Duration::from_millis(200),
                    )),
            ),
        },
    );
    let mut custom: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/findings/custom-findings.json")).unwrap(),
    )
    .unwrap();
    custom["findings"].as_array_mut().unwrap().truncate(1);
    let r = importer.handle(custom).await.expect("import");
    assert_eq!(r["imported"], 1, "{r:#}");
    let found = hub.get_findings().send().await.expect("GetFindings");
    assert_eq!(found.findings().len(), 1);
    let finding = asff_json(&found.findings()[0]);
    let id = finding["Id"].as_str().unwrap().to_owned();
    let event = imported_event(vec![finding.clone()]);

    // 2. The forwarder, wired as main.rs wires it, but with the write-back sent to the stub.
    let config = ticket_forwarder::Config::from_lookup(|name| match name {
        "LEDGER_TABLE" => Some(TABLE.into()),
        "ROUTES_URI" => Some(format!("s3://{CONFIG_BUCKET}/forwarder/routes.json")),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.secrets_prefix, "muster/");
    let aws = muster_aws::AwsConfig::from_lookup(|name| {
        (name == "MUSTER_S3_ENDPOINT").then(|| moto.endpoint.clone())
    })
    .unwrap();
    let forwarder = ticket_forwarder::on_aws(config, &sdk, &aws, Some(&hub_stub.url()))
        .await
        .expect("forwarder wiring");

    let r = forwarder
        .handle(event.clone(), deadline())
        .await
        .expect("forward");
    assert_eq!(
        (
            r["findings"].as_u64(),
            r["created"].as_u64(),
            r["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{r:#}"
    );

    // Exactly one issue, with the credentials from Secrets Manager.
    let issues = github.requests_to("POST", "/repos/acme/security/issues");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].bearer(), Some(TOKEN));
    let issue = issues[0].json();
    assert!(
        issue["title"]
            .as_str()
            .unwrap()
            .contains("S3 bucket acme-data allows public read"),
        "{issue}"
    );
    assert!(
        issue["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("security-hub")),
        "{issue}"
    );

    // The note, NOTIFIED and the ticket key written back, in a request Security Hub's
    // model accepts.
    let updates = hub_stub.requests_to("PATCH", BATCH_UPDATE);
    assert_eq!(updates.len(), 1);
    assert_eq!(
        batch_update_problems(&model, &updates[0]),
        Vec::<String>::new()
    );
    let update = updates[0].json();
    assert_eq!(
        update["FindingIdentifiers"],
        json!([{"Id": id, "ProductArn": finding["ProductArn"]}])
    );
    assert_eq!(update["Workflow"], json!({"Status": "NOTIFIED"}));
    assert_eq!(update["Note"]["UpdatedBy"], "muster");
    let issue_url = format!("{}/acme/security/issues/1", github.url());
    assert!(
        update["Note"]["Text"]
            .as_str()
            .unwrap()
            .contains(&issue_url),
        "{update}"
    );
    assert!(
        update["UserDefinedFields"]
            .as_object()
            .unwrap()
            .values()
            .any(|v| v == "1"),
        "{update}"
    );

    // The ledger item in DynamoDB: open, with the ticket, and an expiry for TTL.
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(TABLE)
        .key(dynamodb::KEY, AttributeValue::S(id.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("a ledger item");
    let entry = dynamodb::from_item(&item).unwrap();
    assert_eq!(entry.state, TicketState::Open);
    assert_eq!(entry.ticket.as_ref().map(|t| t.key.as_str()), Some("1"));
    assert!(
        matches!(
            item.get(dynamodb::TTL_ATTRIBUTE),
            Some(AttributeValue::N(_))
        ),
        "{item:?}"
    );

    // 3. The same event again: still one ticket, nothing written back.
    let r = forwarder.handle(event, deadline()).await.expect("again");
    assert_eq!(
        (r["created"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(1)),
        "{r:#}"
    );
    assert_eq!(github.requests().len(), 1);
    assert_eq!(hub_stub.requests().len(), 1);

    // 4. The Imported event our write-back causes: the finding with the update applied.
    let mut echoed = finding.clone();
    echoed["Workflow"] = update["Workflow"].clone();
    echoed["Note"] = json!({
        "Text": update["Note"]["Text"],
        "UpdatedBy": update["Note"]["UpdatedBy"],
        "UpdatedAt": "2030-01-01T00:00:00.000Z"
    });
    echoed["UserDefinedFields"] = update["UserDefinedFields"].clone();
    echoed["UpdatedAt"] = json!("2030-01-01T00:00:00.000Z");
    let r = forwarder
        .handle(imported_event(vec![echoed]), deadline())
        .await
        .expect("echo");
    assert_eq!(
        (r["unchanged"].as_u64(), r["updated"].as_u64()),
        (Some(1), Some(0)),
        "{r:#}"
    );
    assert!(github
        .requests_to("POST", "/repos/acme/security/issues/{}/comments")
        .is_empty());
    assert_eq!(github.requests().len(), 1);
    assert_eq!(hub_stub.requests().len(), 1);
}

fn entry(id: &str, version: u64) -> LedgerEntry {
    LedgerEntry {
        finding_id: id.into(),
        state: TicketState::Creating,
        ticket: None,
        route: "everything".into(),
        state_hash: "h1".into(),
        write_back_hash: None,
        lease_until: 1_700_000_900,
        expires_at: Some(1_734_560_000),
        updated_at: "2024-05-14T10:00:00.000Z".into(),
        version,
    }
}

/// The adapters alone against moto: the ledger's conditional writes (one winner among
/// concurrent claims), the secrets' prefix, cache and errors, the write-back's refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_keep_their_promises_against_moto() {
    let moto = MotoServer::start();
    let sdk = sdk(&moto);
    create_ledger_table(&sdk).await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    sm.create_secret()
        .name("team-a/slack")
        .secret_string("xoxb-first")
        .send()
        .await
        .expect("CreateSecret");
    let handle = Handle::current();
    let ledger = DynamoLedger::new(dynamodb::client(&sdk, None), handle.clone(), TABLE);
    let secrets =
        SecretsManagerSecrets::new(secrets::client(&sdk, None), handle.clone(), "team-a/");
    let sm2 = sm.clone();
    tokio::task::spawn_blocking(move || {
        let id = "arn:aws:securityhub:us-east-1:111122223333:finding/one";
        assert_eq!(ledger.get(id).unwrap(), None);
        assert!(ledger.put_new(&entry(id, 1)).unwrap());
        assert!(
            !ledger.put_new(&entry(id, 1)).unwrap(),
            "a second claim loses"
        );
        assert_eq!(ledger.get(id).unwrap(), Some(entry(id, 1)));
        assert!(
            !ledger.replace(&entry(id, 3), 2).unwrap(),
            "a stale version loses"
        );
        let mut open = entry(id, 2);
        open.state = TicketState::Open;
        assert!(ledger.replace(&open, 1).unwrap());
        assert_eq!(ledger.get(id).unwrap(), Some(open));
        // Eight deliveries claim one finding at once: one wins.
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| usize::from(ledger.put_new(&entry("race", 1)).unwrap())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);

        assert_eq!(secrets.get("slack").unwrap(), "xoxb-first");
        // Rotated in Secrets Manager: the cached value is used until the TTL passes.
        Handle::current()
            .block_on(
                sm2.put_secret_value()
                    .secret_id("team-a/slack")
                    .secret_string("xoxb-second")
                    .send(),
            )
            .expect("PutSecretValue");
        assert_eq!(secrets.get("slack").unwrap(), "xoxb-first");
        let missing = secrets.get("jira").unwrap_err();
        assert!(!missing.is_retryable(), "{missing}");
        assert!(missing.to_string().contains("team-a/jira"), "{missing}");
        assert!(!missing.to_string().contains("xoxb"), "{missing}");
    })
    .await
    .unwrap();

    // BatchUpdateFindings through the SDK: a finding Security Hub does not process comes
    // back as failed, for good.
    let hub = StubServer::start().unwrap();
    hub.on_fn("PATCH", BATCH_UPDATE, |req| {
        let ids = req.json()["FindingIdentifiers"].clone();
        StubResponse::json(
            200,
            json!({"ProcessedFindings": [ids[0]], "UnprocessedFindings": [
                {"FindingIdentifier": ids[1], "ErrorCode": "FindingNotFound", "ErrorMessage": "no such finding"}
            ]}),
        )
    });
    let write_back =
        SecurityHubWriteBack::new(securityhub::client(&sdk, Some(&hub.url())), handle.clone());
    let arn = format!("arn:aws:securityhub:us-east-1:{ACCOUNT}:product/{ACCOUNT}/default");
    let updates: Vec<WriteBack> = ["kept", "gone"]
        .iter()
        .map(|id| WriteBack {
            finding_id: id.to_string(),
            product_arn: arn.clone(),
            note: "Routed to #secops".into(),
            set_notified: true,
            user_defined_fields: [("muster_route".to_string(), "chat".to_string())].into(),
        })
        .collect();
    let failed = tokio::task::spawn_blocking(move || write_back.write_back(&updates).unwrap())
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (
            failed[0].id.as_str(),
            failed[0].error_code.as_str(),
            failed[0].retryable
        ),
        ("gone", "FindingNotFound", false)
    );
    let sent = hub.requests();
    assert_eq!(sent.len(), 1, "identical updates share one call");
    let model = securityhub_model();
    assert_eq!(
        batch_update_problems(&model, &sent[0]),
        Vec::<String>::new()
    );

    let fresh = SecretsManagerSecrets::new(secrets::client(&sdk, None), handle.clone(), "team-a/")
        .with_ttl(Duration::ZERO);
    let value = tokio::task::spawn_blocking(move || fresh.get("slack").unwrap())
        .await
        .unwrap();
    assert_eq!(value, "xoxb-second");
}

/// The stub's check is only worth its "valid" if it refuses what Security Hub refuses.
#[test]
fn the_stub_checks_requests_against_the_model() {
    let model = securityhub_model();
    let ids = json!([{"Id": "f-1", "ProductArn": "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"}]);
    let cases: [(Value, &str, &str); 6] = [
        (
            json!({"FindingIdentifiers": ids, "Workflow": {"Status": "NOTIFIED"}}),
            "PATCH",
            "",
        ),
        (
            json!({"FindingIdentifiers": ids, "Workflow": {"Status": "DONE"}}),
            "PATCH",
            "\"DONE\" is not one of",
        ),
        (
            json!({"FindingIdentifiers": ids, "Note": {"Text": "t"}}),
            "PATCH",
            "required member UpdatedBy",
        ),
        (
            json!({"FindingIdentifiers": ids, "Note": {"Text": " ", "UpdatedBy": "muster"}}),
            "PATCH",
            "does not match",
        ),
        (
            json!({"FindingIdentifiers": ids, "Ticket": "SEC-1"}),
            "PATCH",
            "has no member Ticket",
        ),
        (json!({"FindingIdentifiers": ids}), "POST", "is not"),
    ];
    for (body, method, want) in cases {
        let req = Recorded {
            method: method.into(),
            path: BATCH_UPDATE.into(),
            query: String::new(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            at: std::time::Instant::now(),
        };
        let problems = batch_update_problems(&model, &req);
        if want.is_empty() {
            assert!(problems.is_empty(), "{body}: {problems:?}");
        } else {
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{body}: {problems:?}"
            );
        }
    }
}
