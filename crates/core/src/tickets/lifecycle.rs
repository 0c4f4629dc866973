//! The ledger's state machine: given what the ledger holds for a finding and the finding
//! as it arrives now, what the forwarder does. Pure; the forwarder carries it out.
//!
//! Only four fields "matter": severity label, workflow status, record state and compliance
//! status. Title, description, UpdatedAt, notes and resources change on every re-import
//! and would turn tickets into noise.
//!
//! A finding is *closed* when RecordState is ARCHIVED, Compliance is PASSED, or Workflow is
//! RESOLVED or SUPPRESSED. SUPPRESSED closes too: someone decided in Security Hub that the
//! finding needs no action, and a ticket left open for it is exactly the "ticket that never
//! closes" users complain about. It reopens like any other when it becomes active again.

use super::{FindingView, LedgerEntry, TicketState};
use serde::Serialize;

/// The fields that matter, in a fixed order, with their display names.
const FIELDS: [&str; 4] = ["Severity", "Workflow", "RecordState", "Compliance"];

fn state_values(f: &FindingView) -> [&str; 4] {
    [
        f.severity_label.as_str(),
        f.workflow_status.as_str(),
        f.record_state.as_str(),
        f.compliance_status.as_deref().unwrap_or(""),
    ]
}

/// The finding's state fingerprint: the four fields that matter as a compact JSON array,
/// e.g. `["HIGH","NEW","ACTIVE","FAILED"]`. Readable on purpose: the ledger can then say
/// "Severity HIGH -> CRITICAL" in a comment without storing the finding itself, and an
/// operator can read it in the table. Equal fingerprints mean "nothing that matters changed".
pub fn state_hash(f: &FindingView) -> String {
    state_hash_of(state_values(f))
}

fn state_hash_of(values: [&str; 4]) -> String {
    serde_json::to_string(&values).unwrap_or_default()
}

/// The fingerprint the finding will have once our write-back set Workflow NOTIFIED.
pub fn state_hash_after_notified(f: &FindingView, set_notified: bool) -> String {
    let mut values = state_values(f);
    if set_notified {
        values[1] = "NOTIFIED";
    }
    state_hash_of(values)
}

fn parse_hash(hash: &str) -> Option<[String; 4]> {
    serde_json::from_str::<[String; 4]>(hash).ok()
}

/// Whether the finding no longer needs a ticket (see the module docs for the rule).
pub fn is_closed(f: &FindingView) -> bool {
    f.record_state.eq_ignore_ascii_case("ARCHIVED")
        || f.compliance_status
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("PASSED"))
        || f.workflow_status.eq_ignore_ascii_case("RESOLVED")
        || f.workflow_status.eq_ignore_ascii_case("SUPPRESSED")
}

/// Why a closed finding counts as closed, for the ticket comment.
pub fn closed_reason(f: &FindingView) -> String {
    let mut why = Vec::new();
    if f.record_state.eq_ignore_ascii_case("ARCHIVED") {
        why.push("RecordState ARCHIVED".to_string());
    }
    if f.compliance_status
        .as_deref()
        .is_some_and(|c| c.eq_ignore_ascii_case("PASSED"))
    {
        why.push("Compliance PASSED".to_string());
    }
    if f.workflow_status.eq_ignore_ascii_case("RESOLVED")
        || f.workflow_status.eq_ignore_ascii_case("SUPPRESSED")
    {
        why.push(format!("Workflow {}", f.workflow_status));
    }
    why.join(", ")
}

/// One field that matters, before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

/// What changed between a stored fingerprint and the finding. An unreadable old
/// fingerprint (another format) reports every non-empty field as new.
pub fn changes_since(old_hash: &str, f: &FindingView) -> Vec<FieldChange> {
    let new = state_values(f);
    let old = parse_hash(old_hash).unwrap_or_default();
    FIELDS
        .iter()
        .zip(old.iter().zip(new.iter()))
        .filter(|(_, (o, n))| o.as_str() != **n)
        .map(|(field, (o, n))| FieldChange {
            field,
            old: o.clone(),
            new: n.to_string(),
        })
        .collect()
}

/// `Severity: HIGH -> CRITICAL; Workflow: NOTIFIED -> NEW`.
pub fn describe_changes(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(|c| {
            let old = if c.old.is_empty() { "(none)" } else { &c.old };
            let new = if c.new.is_empty() { "(none)" } else { &c.new };
            format!("{}: {old} -> {new}", c.field)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the forwarder does for one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// No ledger entry and the finding is active: claim, then create a ticket.
    Create,
    /// A field that matters changed on an open ticket's finding.
    Comment { changes: Vec<FieldChange> },
    /// The finding closed (see [`is_closed`]): close its ticket.
    Close { changes: Vec<FieldChange> },
    /// The finding of a closed ticket is active again.
    Reopen { changes: Vec<FieldChange> },
    /// Nothing to do: unchanged, our own write-back's echo, already closed, never ticketed.
    Nothing { why: String },
    /// A `Creating` claim whose lease expired (its writer crashed or gave up): take it over
    /// with a conditional replace and create the ticket.
    TakeOver,
    /// Another delivery holds a live `Creating` claim and this event says something
    /// different: retry later (reported as a retryable failure), when the ticket exists.
    Defer { why: String },
}

/// The state machine. `now` is epoch seconds.
pub fn decide(entry: Option<&LedgerEntry>, f: &FindingView, now: i64) -> Action {
    let hash = state_hash(f);
    let closed = is_closed(f);
    let Some(entry) = entry else {
        return if closed {
            // A ticket opened only to be closed is noise.
            Action::Nothing {
                why: format!("closed ({}) and never ticketed", closed_reason(f)),
            }
        } else {
            Action::Create
        };
    };
    match entry.state {
        TicketState::Creating => {
            if entry.lease_until <= now {
                if closed {
                    Action::Nothing {
                        why: format!(
                            "closed ({}) while its ticket was never finished",
                            closed_reason(f)
                        ),
                    }
                } else {
                    Action::TakeOver
                }
            } else if entry.state_hash == hash {
                Action::Nothing {
                    why: "another delivery is creating its ticket".to_string(),
                }
            } else {
                Action::Defer {
                    why: "another delivery is creating its ticket; this update must wait"
                        .to_string(),
                }
            }
        }
        TicketState::Open => {
            if entry.write_back_hash.as_deref() == Some(hash.as_str()) {
                return Action::Nothing {
                    why: "our own write-back".to_string(),
                };
            }
            if entry.state_hash == hash {
                return Action::Nothing {
                    why: "no field that matters changed".to_string(),
                };
            }
            // Compare against what the finding looks like after our write-back, when one is
            // pending: "Workflow NEW -> NOTIFIED" is our doing, not news.
            let base = entry
                .write_back_hash
                .as_deref()
                .unwrap_or(entry.state_hash.as_str());
            let changes = changes_since(base, f);
            if closed {
                Action::Close { changes }
            } else if changes.is_empty() {
                Action::Nothing {
                    why: "no field that matters changed since our write-back".to_string(),
                }
            } else {
                Action::Comment { changes }
            }
        }
        TicketState::Closed => {
            if closed {
                Action::Nothing {
                    why: "ticket already closed".to_string(),
                }
            } else {
                Action::Reopen {
                    changes: changes_since(&entry.state_hash, f),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(sev: &str, wf: &str, rs: &str, cs: Option<&str>) -> FindingView {
        FindingView {
            id: "f-1".into(),
            severity_label: sev.into(),
            workflow_status: wf.into(),
            record_state: rs.into(),
            compliance_status: cs.map(str::to_string),
            title: "t".into(),
            ..Default::default()
        }
    }

    fn entry(state: TicketState, of: &FindingView, wb: Option<&FindingView>) -> LedgerEntry {
        LedgerEntry {
            finding_id: of.id.clone(),
            state,
            ticket: None,
            route: "r".into(),
            state_hash: state_hash(of),
            write_back_hash: wb.map(state_hash),
            lease_until: 0,
            expires_at: None,
            updated_at: String::new(),
            version: 1,
        }
    }

    #[test]
    fn hash_ignores_cosmetic_fields() {
        let a = finding("HIGH", "NEW", "ACTIVE", Some("FAILED"));
        let mut b = a.clone();
        b.title = "other".into();
        b.description = "d".into();
        b.updated_at = "2030-01-01T00:00:00Z".into();
        b.note_text = Some("n".into());
        assert_eq!(state_hash(&a), state_hash(&b));
        for changed in [
            finding("CRITICAL", "NEW", "ACTIVE", Some("FAILED")),
            finding("HIGH", "NOTIFIED", "ACTIVE", Some("FAILED")),
            finding("HIGH", "NEW", "ARCHIVED", Some("FAILED")),
            finding("HIGH", "NEW", "ACTIVE", None),
        ] {
            assert_ne!(state_hash(&a), state_hash(&changed), "{changed:?}");
        }
    }

    #[test]
    fn closed_rule() {
        let cases = [
            ("HIGH", "NEW", "ACTIVE", Some("FAILED"), false),
            ("HIGH", "NOTIFIED", "ACTIVE", None, false),
            ("HIGH", "NEW", "ARCHIVED", Some("FAILED"), true),
            ("HIGH", "NEW", "ACTIVE", Some("PASSED"), true),
            ("HIGH", "RESOLVED", "ACTIVE", None, true),
            ("HIGH", "SUPPRESSED", "ACTIVE", None, true),
            ("HIGH", "NEW", "ACTIVE", Some("WARNING"), false),
        ];
        for (sev, wf, rs, cs, want) in cases {
            assert_eq!(
                is_closed(&finding(sev, wf, rs, cs)),
                want,
                "{wf} {rs} {cs:?}"
            );
        }
    }

    #[test]
    fn decisions() {
        let active = finding("HIGH", "NEW", "ACTIVE", Some("FAILED"));
        let notified = finding("HIGH", "NOTIFIED", "ACTIVE", Some("FAILED"));
        let critical = finding("CRITICAL", "NOTIFIED", "ACTIVE", Some("FAILED"));
        let resolved = finding("HIGH", "RESOLVED", "ACTIVE", Some("FAILED"));
        let archived = finding("HIGH", "NEW", "ARCHIVED", Some("FAILED"));
        let open = entry(TicketState::Open, &active, Some(&notified));
        let closed = entry(TicketState::Closed, &resolved, None);
        let mut live_claim = entry(TicketState::Creating, &active, None);
        live_claim.lease_until = 200;
        let mut dead_claim = live_claim.clone();
        dead_claim.lease_until = 50;

        let kind = |a: &Action| match a {
            Action::Create => "create",
            Action::Comment { .. } => "comment",
            Action::Close { .. } => "close",
            Action::Reopen { .. } => "reopen",
            Action::Nothing { .. } => "nothing",
            Action::TakeOver => "takeover",
            Action::Defer { .. } => "defer",
        };
        let cases: Vec<(&str, Option<&LedgerEntry>, &FindingView, &str)> = vec![
            ("new finding", None, &active, "create"),
            ("closed, never ticketed", None, &resolved, "nothing"),
            ("archived, never ticketed", None, &archived, "nothing"),
            ("same state", Some(&open), &active, "nothing"),
            ("our echo", Some(&open), &notified, "nothing"),
            ("severity up", Some(&open), &critical, "comment"),
            ("resolved", Some(&open), &resolved, "close"),
            ("archived", Some(&open), &archived, "close"),
            ("closed again", Some(&closed), &archived, "nothing"),
            ("active again", Some(&closed), &active, "reopen"),
            ("live claim, same", Some(&live_claim), &active, "nothing"),
            ("live claim, other", Some(&live_claim), &critical, "defer"),
            ("dead claim", Some(&dead_claim), &active, "takeover"),
            (
                "dead claim, closed",
                Some(&dead_claim),
                &resolved,
                "nothing",
            ),
        ];
        for (name, e, f, want) in cases {
            assert_eq!(kind(&decide(e, f, 100)), want, "{name}");
        }
    }

    #[test]
    fn changes_are_described() {
        let notified = finding("HIGH", "NOTIFIED", "ACTIVE", Some("FAILED"));
        let critical = finding("CRITICAL", "NOTIFIED", "ACTIVE", None);
        let changes = changes_since(&state_hash(&notified), &critical);
        assert_eq!(
            describe_changes(&changes),
            "Severity: HIGH -> CRITICAL; Compliance: FAILED -> (none)"
        );
    }
}
