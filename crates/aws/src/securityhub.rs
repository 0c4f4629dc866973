//! Security Hub behind the importer's `FindingsSink`: ASFF findings sent with
//! BatchImportFindings.
//!
//! Calls carry at most 100 findings and 6 MB (`asff::batches`). Security Hub allows
//! 10 calls a second with a burst of 30: a token bucket shared by every call of the
//! process keeps under that, and throttled or failed calls back off with jitter. A call
//! that succeeds can still refuse single findings (`FailedFindings`): those whose error
//! can pass are sent again, the others are returned for the caller to report.

use crate::error::Error;
use crate::retry::{call_error, send_findings_batch, Backoff, TokenBucket};
use aws_sdk_securityhub::types::{
    AwsSecurityFinding, Recommendation as SdkRecommendation, RecordState,
    Remediation as SdkRemediation, Resource as SdkResource, Severity as SdkSeverity,
    SeverityLabel as SdkSeverityLabel,
};
use aws_sdk_securityhub::Client;
use muster_core::asff::{self, Finding};
use muster_core::detect::SeverityLabel;
use muster_core::ports::{FailedFinding, FindingsSink};
use std::sync::Arc;
use tokio::runtime::Handle;

/// Security Hub's BatchImportFindings rate: 10 calls a second, bursts of 30.
pub const CALLS_PER_SECOND: f64 = 10.0;
pub const BURST: u32 = 30;

fn severity_label(label: SeverityLabel) -> SdkSeverityLabel {
    match label {
        SeverityLabel::Informational => SdkSeverityLabel::Informational,
        SeverityLabel::Low => SdkSeverityLabel::Low,
        SeverityLabel::Medium => SdkSeverityLabel::Medium,
        SeverityLabel::High => SdkSeverityLabel::High,
        SeverityLabel::Critical => SdkSeverityLabel::Critical,
    }
}

/// Our finding as the SDK's: every field muster sets, nothing more.
pub fn to_sdk(f: &Finding) -> AwsSecurityFinding {
    let remediation = f.remediation.as_ref().map(|r| {
        SdkRemediation::builder()
            .recommendation(
                SdkRecommendation::builder()
                    .text(&r.recommendation.text)
                    .set_url(r.recommendation.url.clone())
                    .build(),
            )
            .build()
    });
    let resources = f
        .resources
        .iter()
        .map(|r| {
            SdkResource::builder()
                .r#type(&r.type_)
                .id(&r.id)
                .set_partition(r.partition.as_deref().map(Into::into))
                .set_region(r.region.clone())
                .build()
        })
        .collect();
    AwsSecurityFinding::builder()
        .schema_version(&f.schema_version)
        .id(&f.id)
        .product_arn(&f.product_arn)
        .generator_id(&f.generator_id)
        .aws_account_id(&f.aws_account_id)
        .set_types(Some(f.types.clone()))
        .created_at(&f.created_at)
        .updated_at(&f.updated_at)
        .set_first_observed_at(f.first_observed_at.clone())
        .set_last_observed_at(f.last_observed_at.clone())
        .severity(
            SdkSeverity::builder()
                .label(severity_label(f.severity.label))
                .normalized(i32::from(f.severity.normalized))
                .build(),
        )
        .title(&f.title)
        .description(&f.description)
        .set_remediation(remediation)
        .set_source_url(f.source_url.clone())
        .set_product_fields((!f.product_fields.is_empty()).then(|| {
            f.product_fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
        .set_resources(Some(resources))
        .set_record_state(f.record_state.as_deref().map(RecordState::from))
        .set_product_name(f.product_name.clone())
        .set_company_name(f.company_name.clone())
        .build()
}

/// Imports `findings` in BatchImportFindings-sized calls (≤ 100 findings, < 6 MB)
/// through `call`, each batch paced and retried by [`send_findings_batch`]; a batch
/// that fails as a whole stops the calls after it.
pub fn import_with<F>(
    findings: &[Finding],
    backoff: &Backoff,
    limiter: &TokenBucket,
    mut call: F,
) -> Result<Vec<FailedFinding>, Error>
where
    F: FnMut(&[&Finding]) -> Result<Vec<FailedFinding>, Error>,
{
    let mut failed = Vec::new();
    for batch in asff::batches(findings.to_vec()) {
        let pending: Vec<&Finding> = batch.iter().collect();
        failed.extend(send_findings_batch(
            pending,
            |f| f.id.as_str(),
            backoff,
            limiter,
            &mut call,
        )?);
    }
    Ok(failed)
}

/// Builds a Security Hub client. The SDK's own retries are turned off: the sink paces
/// and retries calls itself, and two layers of retries would multiply past the rate
/// limit. `endpoint` overrides where it is sent (moto server in tests); without it the
/// SDK's configuration applies (`AWS_ENDPOINT_URL_SECURITYHUB` included).
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_securityhub::config::Builder::from(sdk)
        .retry_config(aws_sdk_securityhub::config::retry::RetryConfig::disabled());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// Imports findings into the Security Hub of the client's account and region.
#[derive(Clone)]
pub struct SecurityHubSink {
    client: Client,
    handle: Handle,
    backoff: Backoff,
    limiter: Arc<TokenBucket>,
}

impl SecurityHubSink {
    /// `handle` is the runtime the SDK's connections live on; `import` must then be
    /// called off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle) -> Self {
        SecurityHubSink {
            client,
            handle,
            backoff: Backoff::default(),
            limiter: Arc::new(TokenBucket::new(CALLS_PER_SECOND, BURST)),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Shares a limiter with other sinks of the same account and region.
    pub fn with_limiter(mut self, limiter: Arc<TokenBucket>) -> Self {
        self.limiter = limiter;
        self
    }

    fn batch_import(&self, findings: &[&Finding]) -> Result<Vec<FailedFinding>, Error> {
        let request = self
            .client
            .batch_import_findings()
            .set_findings(Some(findings.iter().map(|f| to_sdk(f)).collect()));
        let out = self
            .handle
            .block_on(request.send())
            .map_err(|e| call_error("SecurityHub", "BatchImportFindings", e))?;
        Ok(out
            .failed_findings()
            .iter()
            .map(|e| FailedFinding {
                id: e.id().unwrap_or_default().to_owned(),
                error_code: e.error_code().unwrap_or("Unknown").to_owned(),
                error_message: e.error_message().unwrap_or_default().to_owned(),
                retryable: false,
            })
            .collect())
    }
}

impl FindingsSink for SecurityHubSink {
    fn import(&self, findings: &[Finding]) -> muster_core::Result<Vec<FailedFinding>> {
        let failed = import_with(findings, &self.backoff, &self.limiter, |batch| {
            self.batch_import(batch)
        })?;
        tracing::debug!(
            findings = findings.len(),
            failed = failed.len(),
            "findings imported"
        );
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster_core::asff::{ImportTarget, Recommendation, Remediation, Resource, Severity};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    fn finding(id: &str, description_bytes: usize) -> Finding {
        let mut product_fields = BTreeMap::new();
        product_fields.insert("muster/rule_id".to_string(), "root-account-use".to_string());
        product_fields.insert("muster/event_uids".to_string(), "e1,e2".to_string());
        Finding {
            schema_version: asff::SCHEMA_VERSION.into(),
            id: id.into(),
            product_arn: ImportTarget {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                partition: "aws".into(),
            }
            .product_arn(),
            generator_id: "root-account-use".into(),
            aws_account_id: "111122223333".into(),
            types: vec!["TTPs/Privilege Escalation".into()],
            created_at: "2024-05-14T12:00:00.000Z".into(),
            updated_at: "2024-05-14T13:00:00.000Z".into(),
            first_observed_at: Some("2024-05-14T12:00:00.000Z".into()),
            last_observed_at: Some("2024-05-14T12:05:00.000Z".into()),
            severity: Severity {
                label: SeverityLabel::High,
                normalized: 80,
            },
            title: "Root account used".into(),
            description: "d".repeat(description_bytes.max(1)),
            remediation: Some(Remediation {
                recommendation: Recommendation {
                    text: "See the remediation.".into(),
                    url: Some("https://docs.aws.amazon.com/securityhub/".into()),
                },
            }),
            source_url: Some("https://example.com/f".into()),
            product_fields,
            resources: vec![Resource {
                type_: "AwsAccount".into(),
                id: "AWS::::Account:111122223333".into(),
                partition: Some("aws".into()),
                region: Some("us-east-1".into()),
            }],
            record_state: Some("ACTIVE".into()),
            product_name: Some("muster".into()),
            company_name: Some("muster".into()),
        }
    }

    #[test]
    fn every_field_we_set_reaches_the_sdk_finding() {
        let f = finding("muster/root-account-use/abc", 10);
        let s = to_sdk(&f);
        let text = |v: Option<&str>| v.map(str::to_owned);
        assert_eq!(text(s.schema_version()), Some(f.schema_version.clone()));
        assert_eq!(text(s.id()), Some(f.id.clone()));
        assert_eq!(text(s.product_arn()), Some(f.product_arn.clone()));
        assert_eq!(text(s.generator_id()), Some("root-account-use".into()));
        assert_eq!(text(s.aws_account_id()), Some("111122223333".into()));
        assert_eq!(s.types(), f.types.as_slice());
        assert_eq!(text(s.created_at()), Some(f.created_at.clone()));
        assert_eq!(text(s.updated_at()), Some(f.updated_at.clone()));
        assert_eq!(text(s.first_observed_at()), f.first_observed_at.clone());
        assert_eq!(text(s.last_observed_at()), f.last_observed_at.clone());
        let sev = s.severity().unwrap();
        assert_eq!(sev.label(), Some(&SdkSeverityLabel::High));
        assert_eq!(sev.normalized(), Some(80));
        assert_eq!(text(s.title()), Some(f.title.clone()));
        assert_eq!(text(s.description()), Some(f.description.clone()));
        let rec = s.remediation().and_then(|r| r.recommendation()).unwrap();
        assert_eq!(rec.text(), Some("See the remediation."));
        assert_eq!(rec.url(), Some("https://docs.aws.amazon.com/securityhub/"));
        assert_eq!(text(s.source_url()), f.source_url.clone());
        let fields = s.product_fields().unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields["muster/event_uids"], "e1,e2");
        let r = &s.resources()[0];
        assert_eq!(
            (
                r.r#type(),
                r.id(),
                r.partition().map(|p| p.as_str()),
                r.region()
            ),
            (
                Some("AwsAccount"),
                Some("AWS::::Account:111122223333"),
                Some("aws"),
                Some("us-east-1")
            )
        );
        assert_eq!(s.record_state(), Some(&RecordState::Active));
        assert_eq!(text(s.product_name()), Some("muster".into()));
        assert_eq!(text(s.company_name()), Some("muster".into()));
        // Labels map one to one.
        for (ours, theirs) in [
            (SeverityLabel::Informational, "INFORMATIONAL"),
            (SeverityLabel::Low, "LOW"),
            (SeverityLabel::Medium, "MEDIUM"),
            (SeverityLabel::High, "HIGH"),
            (SeverityLabel::Critical, "CRITICAL"),
        ] {
            assert_eq!(severity_label(ours).as_str(), theirs);
        }
    }

    type Calls = Arc<Mutex<Vec<Vec<String>>>>;
    /// Per call: the (id, code) pairs refused, or the call failing as a whole with a
    /// code and whether it may pass.
    type Script = Vec<Result<Vec<(&'static str, &'static str)>, (&'static str, bool)>>;

    /// A fake BatchImportFindings: refuses ids with the code the script gives for that
    /// call, or fails the call as a whole.
    fn scripted(
        script: Script,
    ) -> (
        impl FnMut(&[&Finding]) -> Result<Vec<FailedFinding>, Error>,
        Calls,
    ) {
        let calls: Calls = Arc::default();
        let seen = calls.clone();
        let mut script = script.into_iter();
        let call = move |batch: &[&Finding]| {
            seen.lock()
                .unwrap()
                .push(batch.iter().map(|f| f.id.clone()).collect());
            match script.next().unwrap_or(Ok(vec![])) {
                Ok(refused) => Ok(refused
                    .into_iter()
                    .filter(|(id, _)| batch.iter().any(|f| f.id == *id))
                    .map(|(id, code)| FailedFinding {
                        id: id.into(),
                        error_code: code.into(),
                        error_message: format!("{code} for {id}"),
                        retryable: false,
                    })
                    .collect()),
                Err((code, retryable)) => Err(Error::Service {
                    service: "SecurityHub",
                    operation: "BatchImportFindings",
                    code: Some(code.into()),
                    message: format!("{code}: the call failed"),
                    retryable,
                }),
            }
        };
        (call, calls)
    }

    fn recorded() -> (Backoff, TokenBucket, Arc<Mutex<Vec<Duration>>>) {
        let waits: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let (w1, w2) = (waits.clone(), waits.clone());
        let backoff = Backoff::new(2, Duration::from_millis(100), Duration::from_secs(1))
            .with_sleep(Arc::new(move |d| w1.lock().unwrap().push(d)));
        let limiter = TokenBucket::new(CALLS_PER_SECOND, BURST)
            .with_sleep(Arc::new(move |d| w2.lock().unwrap().push(d)));
        (backoff, limiter, waits)
    }

    #[test]
    fn findings_go_out_in_calls_of_at_most_100() {
        let findings: Vec<Finding> = (0..250).map(|i| finding(&format!("f{i}"), 10)).collect();
        let (backoff, limiter, waits) = recorded();
        let (call, calls) = scripted(vec![]);
        let failed = import_with(&findings, &backoff, &limiter, call).unwrap();
        assert!(failed.is_empty());
        let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(
            waits.lock().unwrap().is_empty(),
            "3 calls are within the burst"
        );
    }

    #[test]
    fn a_batch_stops_short_of_6_mb() {
        // Findings of about 243 KB: 25 make 5.9 MiB, a 26th would pass 6 MiB.
        let findings: Vec<Finding> = (0..26)
            .map(|i| finding(&format!("big{i}"), 242 * 1024))
            .collect();
        let one = serde_json::to_vec(&findings[0]).unwrap().len();
        assert!(25 * (one + 1) <= asff::MAX_BATCH_BYTES && 26 * (one + 1) > asff::MAX_BATCH_BYTES);
        let (backoff, limiter, _) = recorded();
        let (call, calls) = scripted(vec![]);
        import_with(&findings, &backoff, &limiter, call).unwrap();
        let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![25, 1]);
    }

    #[test]
    fn refused_findings_are_retried_when_they_can_be_then_reported() {
        let findings: Vec<Finding> = ["a", "b", "c"].iter().map(|id| finding(id, 10)).collect();
        // (script, calls made, failed (id, code, retryable), or the error's text and retryability)
        type Want = Result<Vec<(&'static str, &'static str, bool)>, (&'static str, bool)>;
        let cases: Vec<(Script, Vec<&str>, Want)> = vec![
            (vec![Ok(vec![])], vec!["a,b,c"], Ok(vec![])),
            // A FailedFindings response is retried once, then reported.
            (
                vec![
                    Ok(vec![("b", "InternalFailure")]),
                    Ok(vec![("b", "InternalFailure")]),
                ],
                vec!["a,b,c", "b"],
                Ok(vec![("b", "InternalFailure", true)]),
            ),
            (
                vec![
                    Ok(vec![("a", "ThrottlingException"), ("c", "InternalFailure")]),
                    Ok(vec![]),
                ],
                vec!["a,b,c", "a,c"],
                Ok(vec![]),
            ),
            // A code that cannot pass is reported at once, the rest retried.
            (
                vec![
                    Ok(vec![("a", "InvalidInput"), ("b", "ConcurrentUpdateError")]),
                    Ok(vec![]),
                ],
                vec!["a,b,c", "b"],
                Ok(vec![("a", "InvalidInput", false)]),
            ),
            // A throttled call is retried; still throttled, it is the error.
            (
                vec![Err(("TooManyRequestsException", true)), Ok(vec![])],
                vec!["a,b,c", "a,b,c"],
                Ok(vec![]),
            ),
            (
                vec![
                    Err(("ThrottlingException", true)),
                    Err(("ThrottlingException", true)),
                ],
                vec!["a,b,c", "a,b,c"],
                Err(("ThrottlingException", true)),
            ),
            // The whole call refused as invalid: its findings fail, nothing else.
            (
                vec![Err(("InvalidInputException", false))],
                vec!["a,b,c"],
                Ok(vec![
                    ("a", "InvalidInputException", false),
                    ("b", "InvalidInputException", false),
                    ("c", "InvalidInputException", false),
                ]),
            ),
            (
                vec![Err(("InvalidAccessException", false))],
                vec!["a,b,c"],
                Err(("InvalidAccessException", false)),
            ),
        ];
        for (script, want_calls, want) in cases {
            let (backoff, limiter, _) = recorded();
            let (call, calls) = scripted(script);
            let got = import_with(&findings, &backoff, &limiter, call);
            let calls: Vec<String> = calls.lock().unwrap().iter().map(|c| c.join(",")).collect();
            assert_eq!(calls, want_calls);
            match (got, want) {
                (Ok(failed), Ok(want)) => {
                    let got: Vec<(&str, &str, bool)> = failed
                        .iter()
                        .map(|f| (f.id.as_str(), f.error_code.as_str(), f.retryable))
                        .collect();
                    assert_eq!(got, want, "{want_calls:?}");
                }
                (Err(e), Err((text, retryable))) => {
                    assert!(e.to_string().contains(text), "{e}");
                    assert_eq!(e.is_retryable(), retryable);
                }
                (got, want) => panic!("{want_calls:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn calls_past_the_burst_wait_for_tokens() {
        // 35 calls of one finding each: the first 30 go at once, then they are paced.
        let findings: Vec<Finding> = (0..35).map(|i| finding(&format!("f{i}"), 10)).collect();
        let (backoff, limiter, waits) = recorded();
        for f in &findings {
            let (call, _) = scripted(vec![]);
            import_with(std::slice::from_ref(f), &backoff, &limiter, call).unwrap();
        }
        // Five calls past the burst wait, fewer only if the machine took long enough
        // between calls for tokens to come back.
        let waits = waits.lock().unwrap();
        assert!((1..=5).contains(&waits.len()), "{waits:?}");
        assert!(waits
            .iter()
            .all(|w| *w > Duration::ZERO && *w <= Duration::from_millis(500)));
    }
}
