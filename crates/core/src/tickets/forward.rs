//! The forwarding loop: for each finding of an event, read the ledger, decide (see
//! [`lifecycle`]), and carry the decision out so that each finding gets
//! exactly one ticket however often, and however concurrently, its events arrive.
//!
//! Exactly once rests on the ledger's conditional writes:
//! - create: a `Creating` claim is put (only if absent) *before* the backend is called; the
//!   loser of that put re-reads and acts on what it finds, never creating a second ticket.
//!   A failed create releases the claim (lease 0) so the retried delivery takes it over;
//!   a delivery that crashed mid-create leaves a claim whose lease expires.
//! - comment / close / reopen: the new state is written (conditional on the version read)
//!   *before* the backend is called, so two deliveries of one update post one comment; if
//!   the backend fails, the old state is written back and the failure reported for retry.

use super::event::{EventKind, FindingView, SecurityHubEvent};
use super::lifecycle::{self, Action, FieldChange};
use super::routes::Routes;
use super::{LedgerEntry, Target, TicketChange, TicketContent, TicketRef, TicketState, WriteBack};
use crate::error::Error;
use crate::ports::{Budget, FindingsWriteBack, Ledger, TicketSink};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// BatchUpdateFindings takes at most 100 finding identifiers per call.
const WRITE_BACK_BATCH: usize = 100;
/// Conditional-write conflicts on one finding before giving up (and asking for a retry).
const MAX_ROUNDS: usize = 5;
/// Security Hub limits: Note.Text ≤ 512, UserDefinedFields values ≤ 1024.
const NOTE_MAX: usize = 512;
const UDF_VALUE_MAX: usize = 1024;
const TITLE_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 8000;

pub struct Forwarder<'a> {
    pub routes: &'a Routes,
    pub ledger: &'a dyn Ledger,
    pub tickets: &'a dyn TicketSink,
    /// `None`: no write-back (the CLI replaying files).
    pub write_back: Option<&'a dyn FindingsWriteBack>,
    /// Ledger items expire this many days after their last write (DynamoDB TTL).
    pub ttl_days: Option<u32>,
    /// Findings of one event handled in parallel (scoped threads); 0 counts as 1.
    pub concurrency: usize,
    /// How long a `Creating` claim is ours. Longer than the slowest create (with its
    /// retries) and the Lambda timeout, or a slow create and a takeover can both create.
    pub lease_seconds: i64,
}

/// One finding that could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardFailure {
    pub finding_id: String,
    pub error: String,
    /// Delivering the event again may succeed (throttling, 5xx, ledger contention).
    pub retryable: bool,
}

/// What one or more events did. Every finding lands in exactly one of `created`, `updated`
/// (commented), `closed`, `reopened`, `unchanged`, `unrouted`, `failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForwardSummary {
    pub findings: usize,
    pub created: usize,
    pub updated: usize,
    pub closed: usize,
    pub reopened: usize,
    pub unchanged: usize,
    pub unrouted: usize,
    pub failed: usize,
    /// Write-backs Security Hub did not take (the ticket exists; the finding lacks its
    /// note). Listed in `failures` as not retryable: delivering the event again would find
    /// the ticket and do nothing.
    pub write_back_failed: usize,
    pub failures: Vec<ForwardFailure>,
}

impl ForwardSummary {
    pub fn merge(&mut self, other: ForwardSummary) {
        self.findings += other.findings;
        self.created += other.created;
        self.updated += other.updated;
        self.closed += other.closed;
        self.reopened += other.reopened;
        self.unchanged += other.unchanged;
        self.unrouted += other.unrouted;
        self.failed += other.failed;
        self.write_back_failed += other.write_back_failed;
        self.failures.extend(other.failures);
    }

    /// Whether the event should be delivered again (the Lambda then returns an error so
    /// EventBridge retries, and finally the DLQ receives it).
    pub fn has_retryable_failures(&self) -> bool {
        self.failures.iter().any(|f| f.retryable)
    }
}

enum Outcome {
    Created(Option<WriteBack>),
    Updated,
    Closed,
    Reopened(Option<WriteBack>),
    Unchanged,
    Unrouted,
    Failed(ForwardFailure),
}

fn failure(f: &FindingView, error: impl std::fmt::Display, retryable: bool) -> Outcome {
    Outcome::Failed(ForwardFailure {
        finding_id: f.id.clone(),
        error: error.to_string(),
        retryable,
    })
}

fn from_error(f: &FindingView, e: &Error) -> Outcome {
    failure(f, e, e.is_retryable())
}

impl Forwarder<'_> {
    /// Handles every finding of one event. Never fails as a whole: what went wrong is in
    /// the summary's `failures`, each saying whether a retry can help.
    pub fn forward(
        &self,
        event: &SecurityHubEvent,
        now_epoch_s: i64,
        budget: Budget,
    ) -> ForwardSummary {
        let n = event.findings.len();
        let workers = self.concurrency.clamp(1, n.max(1));
        let outcomes: Vec<Outcome> = if workers == 1 {
            event
                .findings
                .iter()
                .map(|f| self.one(&event.kind, f, now_epoch_s, budget))
                .collect()
        } else {
            let next = AtomicUsize::new(0);
            let slots: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..n).map(|_| None).collect());
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = event.findings.get(i) else {
                            break;
                        };
                        let outcome = self.one(&event.kind, f, now_epoch_s, budget);
                        if let Some(slot) =
                            slots.lock().unwrap_or_else(|e| e.into_inner()).get_mut(i)
                        {
                            *slot = Some(outcome);
                        }
                    });
                }
            });
            slots
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .into_iter()
                .zip(&event.findings)
                .map(|(o, f)| o.unwrap_or_else(|| failure(f, "finding was not handled", true)))
                .collect()
        };

        let mut summary = ForwardSummary {
            findings: n,
            ..Default::default()
        };
        let mut write_backs = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Created(wb) => {
                    summary.created += 1;
                    write_backs.extend(wb);
                }
                Outcome::Updated => summary.updated += 1,
                Outcome::Closed => summary.closed += 1,
                Outcome::Reopened(wb) => {
                    summary.reopened += 1;
                    write_backs.extend(wb);
                }
                Outcome::Unchanged => summary.unchanged += 1,
                Outcome::Unrouted => summary.unrouted += 1,
                Outcome::Failed(f) => {
                    summary.failed += 1;
                    summary.failures.push(f);
                }
            }
        }
        if let Some(sink) = self.write_back {
            for batch in write_backs.chunks(WRITE_BACK_BATCH) {
                match sink.write_back(batch) {
                    Ok(failed) => {
                        for ff in failed {
                            summary.write_back_failed += 1;
                            summary.failures.push(ForwardFailure {
                                finding_id: ff.id,
                                error: format!(
                                    "write-back: {}: {}",
                                    ff.error_code, ff.error_message
                                ),
                                retryable: false,
                            });
                        }
                    }
                    Err(e) => {
                        for wb in batch {
                            summary.write_back_failed += 1;
                            summary.failures.push(ForwardFailure {
                                finding_id: wb.finding_id.clone(),
                                error: format!("write-back: {e}"),
                                retryable: false,
                            });
                        }
                    }
                }
            }
        }
        summary
    }

    fn one(&self, kind: &EventKind, f: &FindingView, now: i64, budget: Budget) -> Outcome {
        for _ in 0..MAX_ROUNDS {
            let entry = match self.ledger.get(&f.id) {
                Ok(e) => e,
                Err(e) => return from_error(f, &e),
            };
            let action = lifecycle::decide(entry.as_ref(), f, now);
            let step = match (action, entry) {
                (Action::Nothing { .. }, _) => Some(Outcome::Unchanged),
                (Action::Defer { why }, _) => Some(failure(f, why, true)),
                (Action::Create, _) => {
                    let Some(target) = self.routes.route_event(kind, f) else {
                        return Outcome::Unrouted;
                    };
                    let claim = self.claim(f, &target, now, 1);
                    match self.ledger.put_new(&claim) {
                        Ok(true) => Some(self.create(claim, &target, f, now, budget)),
                        Ok(false) => None,
                        Err(e) => Some(from_error(f, &e)),
                    }
                }
                (Action::TakeOver, Some(stale)) => {
                    let Some(target) = self.routes.route_event(kind, f) else {
                        return Outcome::Unrouted;
                    };
                    let claim = self.claim(f, &target, now, stale.version + 1);
                    match self.ledger.replace(&claim, stale.version) {
                        Ok(true) => Some(self.create(claim, &target, f, now, budget)),
                        Ok(false) => None,
                        Err(e) => Some(from_error(f, &e)),
                    }
                }
                (Action::Comment { changes }, Some(entry)) => {
                    self.transition(Op::Comment, entry, changes, kind, f, now, budget)
                }
                (Action::Close { changes }, Some(entry)) => {
                    self.transition(Op::Close, entry, changes, kind, f, now, budget)
                }
                (Action::Reopen { changes }, Some(entry)) => {
                    self.transition(Op::Reopen, entry, changes, kind, f, now, budget)
                }
                // decide() only asks for these with an entry in hand.
                (_, None) => Some(failure(f, "ledger entry vanished", true)),
            };
            if let Some(outcome) = step {
                return outcome;
            }
            // Lost a conditional write: someone else moved the entry; look again.
        }
        failure(
            f,
            "ledger contention: the entry kept changing under us",
            true,
        )
    }

    fn expires_at(&self, now: i64) -> Option<i64> {
        self.ttl_days.map(|d| now + i64::from(d) * 86_400)
    }

    fn claim(&self, f: &FindingView, target: &Target, now: i64, version: u64) -> LedgerEntry {
        LedgerEntry {
            finding_id: f.id.clone(),
            state: TicketState::Creating,
            ticket: None,
            route: target.route.clone(),
            state_hash: lifecycle::state_hash(f),
            write_back_hash: None,
            lease_until: now + self.lease_seconds.max(1),
            expires_at: self.expires_at(now),
            updated_at: rfc3339(now),
            version,
        }
    }

    fn create(
        &self,
        claim: LedgerEntry,
        target: &Target,
        f: &FindingView,
        now: i64,
        budget: Budget,
    ) -> Outcome {
        let content = ticket_content(f, target);
        let ticket = match self.tickets.create(target, &content, budget) {
            Ok(t) => t,
            Err(e) => {
                // Release the claim so the retried delivery takes over at once; if this
                // write fails too, the lease runs out instead.
                let released = LedgerEntry {
                    lease_until: 0,
                    updated_at: rfc3339(now),
                    version: claim.version + 1,
                    ..claim.clone()
                };
                let _ = self.ledger.replace(&released, claim.version);
                return from_error(f, &e);
            }
        };
        let wb = self
            .write_back
            .map(|_| write_back_for(f, &ticket, WriteBackReason::Created));
        let open = LedgerEntry {
            state: TicketState::Open,
            ticket: Some(ticket.clone()),
            write_back_hash: wb
                .as_ref()
                .map(|w| lifecycle::state_hash_after_notified(f, w.set_notified)),
            lease_until: 0,
            updated_at: rfc3339(now),
            version: claim.version + 1,
            ..claim.clone()
        };
        // The ticket exists now: recording it is worth a few tries, since an unrecorded
        // ticket is a duplicate once the lease expires.
        let mut last_err = None;
        for _ in 0..3 {
            match self.ledger.replace(&open, claim.version) {
                Ok(true) => return Outcome::Created(wb),
                Ok(false) => {
                    return failure(
                        f,
                        format!(
                            "ticket {} created, but the claim was taken over before it was recorded (lease too short?); check for a duplicate ticket",
                            ticket.key
                        ),
                        false,
                    )
                }
                Err(e) => last_err = Some(e),
            }
        }
        failure(
            f,
            format!(
                "ticket {} created, but recording it in the ledger failed: {}",
                ticket.key,
                last_err.map(|e| e.to_string()).unwrap_or_default()
            ),
            false,
        )
    }

    /// The rule that made the ticket, if it still sends to the ticket's backend; else the
    /// rule that matches now, if it does.
    fn target_for(
        &self,
        entry: &LedgerEntry,
        ticket: &TicketRef,
        kind: &EventKind,
        f: &FindingView,
    ) -> Option<Target> {
        self.routes
            .target_by_name(&entry.route)
            .filter(|t| t.backend == ticket.backend)
            .or_else(|| {
                self.routes
                    .route_event(kind, f)
                    .filter(|t| t.backend == ticket.backend)
            })
    }

    /// `None`: lost the conditional write; the caller re-reads.
    #[allow(clippy::too_many_arguments)]
    fn transition(
        &self,
        op: Op,
        entry: LedgerEntry,
        changes: Vec<FieldChange>,
        kind: &EventKind,
        f: &FindingView,
        now: i64,
        budget: Budget,
    ) -> Option<Outcome> {
        let Some(ticket) = entry.ticket.clone() else {
            return Some(failure(f, "ledger entry has no ticket", false));
        };
        let Some(target) = self.target_for(&entry, &ticket, kind, f) else {
            return Some(failure(
                f,
                format!(
                    "route {:?} is gone and no rule sends this finding to {} any more; ticket {} left as is",
                    entry.route,
                    ticket.backend.name(),
                    ticket.key
                ),
                false,
            ));
        };
        let wb = match op {
            Op::Reopen => self
                .write_back
                .map(|_| write_back_for(f, &ticket, WriteBackReason::Reopened)),
            _ => None,
        };
        let updated = LedgerEntry {
            state: match op {
                Op::Close => TicketState::Closed,
                Op::Comment | Op::Reopen => TicketState::Open,
            },
            state_hash: lifecycle::state_hash(f),
            write_back_hash: wb
                .as_ref()
                .map(|w| lifecycle::state_hash_after_notified(f, w.set_notified)),
            lease_until: 0,
            expires_at: self.expires_at(now),
            updated_at: rfc3339(now),
            version: entry.version + 1,
            ..entry.clone()
        };
        match self.ledger.replace(&updated, entry.version) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(from_error(f, &e)),
        }
        let change = TicketChange {
            finding_id: f.id.clone(),
            text: change_text(op, f, &changes),
            severity: f.severity_label.clone(),
        };
        let result = match op {
            Op::Comment => self.tickets.comment(&target, &ticket, &change, budget),
            Op::Close => self.tickets.close(&target, &ticket, &change, budget),
            Op::Reopen => self.tickets.reopen(&target, &ticket, &change, budget),
        };
        Some(match result {
            Ok(()) => match op {
                Op::Comment => Outcome::Updated,
                Op::Close => Outcome::Closed,
                Op::Reopen => Outcome::Reopened(wb),
            },
            Err(e) => {
                // Put the old state back so the retried delivery sees the change again.
                let restored = LedgerEntry {
                    updated_at: rfc3339(now),
                    version: updated.version + 1,
                    ..entry
                };
                let _ = self.ledger.replace(&restored, updated.version);
                from_error(f, &e)
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Comment,
    Close,
    Reopen,
}

fn rfc3339(epoch_s: i64) -> String {
    crate::time::format_rfc3339_ms(epoch_s.saturating_mul(1000))
}

fn change_text(op: Op, f: &FindingView, changes: &[FieldChange]) -> String {
    let what = lifecycle::describe_changes(changes);
    let head = match op {
        Op::Comment => format!("Security Hub finding changed: {what}."),
        Op::Close => format!(
            "Security Hub finding closed ({}). {what}.",
            lifecycle::closed_reason(f)
        ),
        Op::Reopen => format!("Security Hub finding is active again: {what}."),
    };
    format!("{head}\nFinding: {}\n{}", f.id, console_url(f))
}

/// Truncates to at most `max` characters, marking the cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Characters left alone by encodeURIComponent.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The finding in the Security Hub console. The console's search parameter is itself
/// URL-encoded inside the fragment, hence the id encoded twice.
pub fn console_url(f: &FindingView) -> String {
    let once = utf8_percent_encode(&f.id, COMPONENT).to_string();
    let twice = utf8_percent_encode(&once, COMPONENT).to_string();
    let region = if f.region.is_empty() {
        "us-east-1"
    } else {
        &f.region
    };
    format!(
        "https://console.aws.amazon.com/securityhub/home?region={region}#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A{twice}"
    )
}

/// What a new ticket for the finding says.
pub fn ticket_content(f: &FindingView, target: &Target) -> TicketContent {
    let severity = if f.severity_label.is_empty() {
        "UNKNOWN"
    } else {
        &f.severity_label
    };
    let title = if f.title.is_empty() {
        "(untitled Security Hub finding)"
    } else {
        &f.title
    };
    let mut body = String::new();
    if !f.description.is_empty() {
        body.push_str(&clip(&f.description, DESCRIPTION_MAX));
        body.push_str("\n\n");
    }
    let mut line = |k: &str, v: &str| {
        if !v.is_empty() {
            body.push_str(k);
            body.push_str(": ");
            body.push_str(v);
            body.push('\n');
        }
    };
    line("Severity", severity);
    line("Account", &f.aws_account_id);
    line("Region", &f.region);
    line("Product", &f.product_name);
    line("Generator", &f.generator_id);
    line("Workflow", &f.workflow_status);
    line("Compliance", f.compliance_status.as_deref().unwrap_or(""));
    line("Finding ID", &f.id);
    if let Some(src) = &f.source_url {
        line("Source", src);
    }
    line("Security Hub", &console_url(f));
    if !f.resource_ids.is_empty() {
        body.push_str("Resources:\n");
        for (i, id) in f.resource_ids.iter().enumerate().take(50) {
            let ty = f.resource_types.get(i).map(String::as_str).unwrap_or("");
            body.push_str(&format!("- {ty} {id}\n"));
        }
        if f.resource_ids.len() > 50 {
            body.push_str(&format!("- … and {} more\n", f.resource_ids.len() - 50));
        }
    }
    TicketContent {
        finding_id: f.id.clone(),
        title: clip(&format!("[{severity}] {title}"), TITLE_MAX),
        body,
        severity: f.severity_label.clone(),
        priority: target.settings.priority.get(&f.severity_label).cloned(),
        labels: target.settings.labels.clone(),
        account: f.aws_account_id.clone(),
        region: f.region.clone(),
    }
}

#[derive(Clone, Copy)]
enum WriteBackReason {
    Created,
    Reopened,
}

fn write_back_for(f: &FindingView, ticket: &TicketRef, why: WriteBackReason) -> WriteBack {
    let verb = match why {
        WriteBackReason::Created => "",
        WriteBackReason::Reopened => " reopened",
    };
    let note = if ticket.url.is_empty() {
        format!("Ticket {}{verb} ({})", ticket.key, ticket.backend.name())
    } else {
        format!("Ticket {}{verb}: {}", ticket.key, ticket.url)
    };
    let mut udf = BTreeMap::new();
    udf.insert(
        "muster_ticket".to_string(),
        clip(&ticket.key, UDF_VALUE_MAX),
    );
    if !ticket.url.is_empty() && ticket.url.chars().count() <= UDF_VALUE_MAX {
        udf.insert("muster_ticket_url".to_string(), ticket.url.clone());
    }
    WriteBack {
        finding_id: f.id.clone(),
        product_arn: f.product_arn.clone(),
        note: clip(&note, NOTE_MAX),
        // Never undo a person's RESOLVED/SUPPRESSED, nor touch NOTIFIED.
        set_notified: f.workflow_status == "NEW",
        user_defined_fields: udf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tickets::{BackendKind, BackendSettings};

    #[test]
    fn content_and_links() {
        let f = FindingView {
            id: "arn:aws:securityhub:us-east-1:111111111111:subscription/x/finding/ab-1".into(),
            title: "t".repeat(300),
            severity_label: "HIGH".into(),
            region: "eu-west-1".into(),
            resource_ids: vec!["arn:aws:s3:::b".into()],
            resource_types: vec!["AwsS3Bucket".into()],
            ..Default::default()
        };
        let target = Target {
            route: "r".into(),
            backend: BackendKind::Jira,
            settings: BackendSettings {
                priority: [("HIGH".to_string(), "High".to_string())].into(),
                ..Default::default()
            },
        };
        let c = ticket_content(&f, &target);
        assert!(c.title.starts_with("[HIGH] ttt"));
        assert_eq!(c.title.chars().count(), 255);
        assert_eq!(c.priority.as_deref(), Some("High"));
        assert!(c.body.contains("- AwsS3Bucket arn:aws:s3:::b"));
        let url = console_url(&f);
        assert!(url.starts_with("https://console.aws.amazon.com/securityhub/home?region=eu-west-1#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253Aarn%253Aaws%253Asecurityhub"), "{url}");
        assert!(url.ends_with("finding%252Fab-1"), "{url}");
    }

    #[test]
    fn write_back_sets_notified_only_from_new() {
        let ticket = TicketRef {
            backend: BackendKind::GitHub,
            key: "42".into(),
            url: "https://github.com/o/r/issues/42".into(),
            extra: BTreeMap::new(),
        };
        for (wf, want) in [
            ("NEW", true),
            ("NOTIFIED", false),
            ("RESOLVED", false),
            ("SUPPRESSED", false),
        ] {
            let f = FindingView {
                workflow_status: wf.into(),
                ..Default::default()
            };
            let wb = write_back_for(&f, &ticket, WriteBackReason::Created);
            assert_eq!(wb.set_notified, want, "{wf}");
            assert_eq!(wb.note, "Ticket 42: https://github.com/o/r/issues/42");
            assert_eq!(wb.user_defined_fields["muster_ticket"], "42");
        }
    }
}
