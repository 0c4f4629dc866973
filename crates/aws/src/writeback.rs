//! Security Hub behind the forwarder's `FindingsWriteBack`: the ticket link written back
//! onto the finding with BatchUpdateFindings (a Note, Workflow NOTIFIED, and the ticket
//! key in UserDefinedFields).
//!
//! BatchUpdateFindings applies one set of changes to up to 100 findings, so updates with
//! identical changes share a call and the others go one call each. The calls are paced
//! and retried like BatchImportFindings (10 calls a second, bursts of 30): a call that
//! succeeds can still refuse single findings (`UnprocessedFindings`), and those whose
//! error can pass are sent again.

use crate::error::Error;
use crate::retry::{call_error, send_findings_batch, Backoff, TokenBucket};
use crate::securityhub::{BURST, CALLS_PER_SECOND};
use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, WorkflowStatus, WorkflowUpdate,
};
use aws_sdk_securityhub::Client;
use muster_core::ports::{FailedFinding, FindingsWriteBack};
use muster_core::tickets::WriteBack;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::runtime::Handle;

/// Findings one BatchUpdateFindings call may name.
pub const MAX_FINDINGS_PER_CALL: usize = 100;
/// Security Hub's limits on a note and on UserDefinedFields.
pub const MAX_NOTE_CHARS: usize = 512;
pub const MAX_FIELDS: usize = 50;
pub const MAX_FIELD_NAME_CHARS: usize = 128;
pub const MAX_FIELD_VALUE_CHARS: usize = 1024;
/// Who the note says wrote it.
pub const UPDATED_BY: &str = "muster";

/// One BatchUpdateFindings call: the findings it names and the changes they all get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// (Id, ProductArn) of each finding.
    pub findings: Vec<(String, String)>,
    pub note: Option<String>,
    pub set_notified: bool,
    pub fields: BTreeMap<String, String>,
}

/// `text` cut to `max` characters (Security Hub counts characters, not bytes).
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// Security Hub refuses blank strings (`NonEmptyString` is `.*\S.*`).
fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// The calls that carry `updates`: updates with the same changes grouped, ≤ 100 findings
/// a call, texts cut to Security Hub's limits and blank ones left out. An update with
/// nothing left to change makes no call.
pub fn requests(updates: &[WriteBack]) -> Vec<Request> {
    // Updates that change the same things: (note, NOTIFIED, fields) -> (Id, ProductArn)s.
    type Changes = (Option<String>, bool, BTreeMap<String, String>);
    let mut groups: BTreeMap<Changes, Vec<(String, String)>> = BTreeMap::new();
    for u in updates {
        let note = (!blank(&u.note)).then(|| truncate(&u.note, MAX_NOTE_CHARS));
        let fields: BTreeMap<String, String> = u
            .user_defined_fields
            .iter()
            .filter(|(k, v)| !blank(k) && !blank(v))
            .take(MAX_FIELDS)
            .map(|(k, v)| {
                (
                    truncate(k, MAX_FIELD_NAME_CHARS),
                    truncate(v, MAX_FIELD_VALUE_CHARS),
                )
            })
            .collect();
        if note.is_none() && !u.set_notified && fields.is_empty() {
            continue;
        }
        let ids = groups.entry((note, u.set_notified, fields)).or_default();
        if !ids
            .iter()
            .any(|(id, arn)| *id == u.finding_id && *arn == u.product_arn)
        {
            ids.push((u.finding_id.clone(), u.product_arn.clone()));
        }
    }
    let mut out = Vec::new();
    for ((note, set_notified, fields), ids) in groups {
        for chunk in ids.chunks(MAX_FINDINGS_PER_CALL) {
            out.push(Request {
                findings: chunk.to_vec(),
                note: note.clone(),
                set_notified,
                fields: fields.clone(),
            });
        }
    }
    out
}

/// Sends `updates` through `call`, one [`Request`] per set of identical changes, each
/// paced and retried by [`send_findings_batch`] (BatchUpdateFindings reports refused
/// findings as `UnprocessedFindings`).
pub fn write_back_with<F>(
    updates: &[WriteBack],
    backoff: &Backoff,
    limiter: &TokenBucket,
    mut call: F,
) -> Result<Vec<FailedFinding>, Error>
where
    F: FnMut(&Request) -> Result<Vec<FailedFinding>, Error>,
{
    let mut failed = Vec::new();
    for mut request in requests(updates) {
        let findings = std::mem::take(&mut request.findings);
        failed.extend(send_findings_batch(
            findings,
            |(id, _)| id.as_str(),
            backoff,
            limiter,
            |pending: &[(String, String)]| {
                call(&Request {
                    findings: pending.to_vec(),
                    ..request.clone()
                })
            },
        )?);
    }
    Ok(failed)
}

/// Writes ticket links back onto findings in the Security Hub the client points at.
/// Build the client with [`crate::securityhub::client`] (SDK retries off: this paces
/// and retries itself).
#[derive(Clone)]
pub struct SecurityHubWriteBack {
    client: Client,
    handle: Handle,
    backoff: Backoff,
    limiter: Arc<TokenBucket>,
}

impl SecurityHubWriteBack {
    /// `handle` is the runtime the SDK's connections live on; `write_back` must then be
    /// called off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle) -> Self {
        SecurityHubWriteBack {
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

    pub fn with_limiter(mut self, limiter: Arc<TokenBucket>) -> Self {
        self.limiter = limiter;
        self
    }

    fn batch_update(&self, r: &Request) -> Result<Vec<FailedFinding>, Error> {
        let ids = r
            .findings
            .iter()
            .map(|(id, arn)| {
                AwsSecurityFindingIdentifier::builder()
                    .id(id)
                    .product_arn(arn)
                    .build()
            })
            .collect();
        let request = self
            .client
            .batch_update_findings()
            .set_finding_identifiers(Some(ids))
            .set_note(r.note.as_ref().map(|text| {
                NoteUpdate::builder()
                    .text(text)
                    .updated_by(UPDATED_BY)
                    .build()
            }))
            .set_workflow(r.set_notified.then(|| {
                WorkflowUpdate::builder()
                    .status(WorkflowStatus::Notified)
                    .build()
            }))
            .set_user_defined_fields(
                (!r.fields.is_empty()).then(|| r.fields.clone().into_iter().collect()),
            );
        let out = self
            .handle
            .block_on(request.send())
            .map_err(|e| call_error("SecurityHub", "BatchUpdateFindings", e))?;
        Ok(out
            .unprocessed_findings()
            .iter()
            .map(|u| FailedFinding {
                id: u
                    .finding_identifier()
                    .and_then(|f| f.id())
                    .unwrap_or_default()
                    .to_owned(),
                error_code: u.error_code().unwrap_or("Unknown").to_owned(),
                error_message: u.error_message().unwrap_or_default().to_owned(),
                retryable: false,
            })
            .collect())
    }
}

impl FindingsWriteBack for SecurityHubWriteBack {
    fn write_back(&self, updates: &[WriteBack]) -> muster_core::Result<Vec<FailedFinding>> {
        let failed = write_back_with(updates, &self.backoff, &self.limiter, |r| {
            self.batch_update(r)
        })?;
        tracing::debug!(
            updates = updates.len(),
            failed = failed.len(),
            "findings written back"
        );
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    const ARN: &str = "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default";

    fn update(id: &str, note: &str, set_notified: bool, fields: &[(&str, &str)]) -> WriteBack {
        WriteBack {
            finding_id: id.into(),
            product_arn: ARN.into(),
            note: note.into(),
            set_notified,
            user_defined_fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn updates_with_the_same_changes_share_a_call_of_at_most_100() {
        let mut updates: Vec<WriteBack> = (0..150)
            .map(|i| update(&format!("same{i}"), "Routed to #sec", true, &[]))
            .collect();
        updates.push(update(
            "a",
            "Ticket SEC-1",
            true,
            &[("muster_ticket", "SEC-1")],
        ));
        updates.push(update(
            "b",
            "Ticket SEC-2",
            false,
            &[("muster_ticket", "SEC-2")],
        ));
        // Nothing to change: no call.
        updates.push(update("c", "  ", false, &[("muster_ticket", " ")]));
        // Delivered twice in one event: named once.
        updates.push(update(
            "a",
            "Ticket SEC-1",
            true,
            &[("muster_ticket", "SEC-1")],
        ));
        let got: Vec<(usize, Option<String>, bool, usize)> = requests(&updates)
            .into_iter()
            .map(|r| (r.findings.len(), r.note, r.set_notified, r.fields.len()))
            .collect();
        let mut sizes: Vec<usize> = got.iter().map(|g| g.0).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1, 50, 100], "{got:?}");
        assert!(got
            .iter()
            .any(|g| *g == (1, Some("Ticket SEC-2".into()), false, 1)));
    }

    #[test]
    fn texts_are_cut_to_security_hub_limits_by_characters() {
        let long_note = "é".repeat(600);
        let long_name = "a".repeat(200);
        let long_value = "v".repeat(2000);
        let many: Vec<(String, String)> =
            (0..60).map(|i| (format!("f{i:02}"), "x".into())).collect();
        let mut u = update("a", &long_note, false, &[(&long_name, &long_value)]);
        u.user_defined_fields.extend(many);
        let r = &requests(&[u])[0];
        let note = r.note.as_deref().unwrap();
        assert_eq!(note.chars().count(), MAX_NOTE_CHARS);
        assert_eq!(r.fields.len(), MAX_FIELDS);
        let (name, value) = r.fields.iter().find(|(k, _)| k.starts_with('a')).unwrap();
        assert_eq!(name.len(), MAX_FIELD_NAME_CHARS);
        assert_eq!(value.len(), MAX_FIELD_VALUE_CHARS);
    }

    type Calls = Arc<Mutex<Vec<String>>>;
    type Script = Vec<Result<Vec<(&'static str, &'static str)>, (&'static str, bool)>>;

    fn scripted(
        script: Script,
    ) -> (
        impl FnMut(&Request) -> Result<Vec<FailedFinding>, Error>,
        Calls,
    ) {
        let calls: Calls = Arc::default();
        let seen = calls.clone();
        let mut script = script.into_iter();
        let call = move |r: &Request| {
            let ids: Vec<&str> = r.findings.iter().map(|(id, _)| id.as_str()).collect();
            seen.lock().unwrap().push(ids.join(","));
            match script.next().unwrap_or(Ok(vec![])) {
                Ok(refused) => Ok(refused
                    .into_iter()
                    .filter(|(id, _)| ids.contains(id))
                    .map(|(id, code)| FailedFinding {
                        id: id.into(),
                        error_code: code.into(),
                        error_message: format!("{code} for {id}"),
                        retryable: false,
                    })
                    .collect()),
                Err((code, retryable)) => Err(Error::Service {
                    service: "SecurityHub",
                    operation: "BatchUpdateFindings",
                    code: Some(code.into()),
                    message: format!("{code}: the call failed"),
                    retryable,
                }),
            }
        };
        (call, calls)
    }

    #[test]
    fn unprocessed_findings_are_retried_when_they_can_be_then_reported() {
        let updates: Vec<WriteBack> = ["a", "b", "c"]
            .iter()
            .map(|id| update(id, "Routed to #sec", true, &[]))
            .collect();
        type Want = Result<Vec<(&'static str, &'static str, bool)>, (&'static str, bool)>;
        let cases: Vec<(Script, Vec<&str>, Want)> = vec![
            (vec![Ok(vec![])], vec!["a,b,c"], Ok(vec![])),
            (
                vec![
                    Ok(vec![("b", "ConcurrentUpdateError")]),
                    Ok(vec![("b", "ConcurrentUpdateError")]),
                ],
                vec!["a,b,c", "b"],
                Ok(vec![("b", "ConcurrentUpdateError", true)]),
            ),
            (
                vec![
                    Ok(vec![("a", "FindingNotFound"), ("c", "InternalFailure")]),
                    Ok(vec![]),
                ],
                vec!["a,b,c", "c"],
                Ok(vec![("a", "FindingNotFound", false)]),
            ),
            (
                vec![Err(("TooManyRequestsException", true)), Ok(vec![])],
                vec!["a,b,c", "a,b,c"],
                Ok(vec![]),
            ),
            (
                vec![
                    Err(("LimitExceededException", true)),
                    Err(("LimitExceededException", true)),
                ],
                vec!["a,b,c", "a,b,c"],
                Err(("LimitExceededException", true)),
            ),
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
            let waits: Arc<Mutex<Vec<Duration>>> = Arc::default();
            let w = waits.clone();
            let backoff = Backoff::new(2, Duration::from_millis(100), Duration::from_secs(1))
                .with_sleep(Arc::new(move |d| w.lock().unwrap().push(d)));
            let limiter = TokenBucket::new(CALLS_PER_SECOND, BURST).with_sleep(Arc::new(|_| {}));
            let (call, calls) = scripted(script);
            let got = write_back_with(&updates, &backoff, &limiter, call);
            assert_eq!(*calls.lock().unwrap(), want_calls);
            assert_eq!(waits.lock().unwrap().len(), want_calls.len() - 1);
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
}
