//! In-memory ledger, ticket system and write-back: for the forwarder's tests and for
//! callers that want the effects in hand. The ledger has the same conditional semantics
//! as the DynamoDB one, so races in tests are real races.

use super::{LedgerEntry, Target, TicketChange, TicketContent, TicketRef, WriteBack};
use crate::error::{Error, Result};
use crate::ports::{Budget, FailedFinding, FindingsWriteBack, Ledger, TicketSink};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test thread that panicked must not hide the state from the assertions.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A ledger in a mutex: `put_new` and `replace` are atomic check-and-set.
#[derive(Default)]
pub struct MemoryLedger {
    entries: Mutex<BTreeMap<String, LedgerEntry>>,
    writes: Mutex<usize>,
    read_delay: Option<Duration>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each `get` answers, then sleeps: concurrent deliveries all read "no entry" before
    /// any of them writes, so only the conditional put can keep them apart.
    pub fn with_read_delay(delay: Duration) -> Self {
        Self {
            read_delay: Some(delay),
            ..Self::default()
        }
    }

    pub fn entries(&self) -> BTreeMap<String, LedgerEntry> {
        lock(&self.entries).clone()
    }

    /// Stores an entry as is (seeding a test, or a crash left it behind).
    pub fn insert(&self, entry: LedgerEntry) {
        lock(&self.entries).insert(entry.finding_id.clone(), entry);
    }

    /// Successful conditional writes so far.
    pub fn writes(&self) -> usize {
        *lock(&self.writes)
    }
}

impl Ledger for MemoryLedger {
    fn get(&self, finding_id: &str) -> Result<Option<LedgerEntry>> {
        let found = lock(&self.entries).get(finding_id).cloned();
        if let Some(d) = self.read_delay {
            std::thread::sleep(d);
        }
        Ok(found)
    }

    fn put_new(&self, entry: &LedgerEntry) -> Result<bool> {
        let mut entries = lock(&self.entries);
        if entries.contains_key(&entry.finding_id) {
            return Ok(false);
        }
        entries.insert(entry.finding_id.clone(), entry.clone());
        *lock(&self.writes) += 1;
        Ok(true)
    }

    fn replace(&self, entry: &LedgerEntry, expected_version: u64) -> Result<bool> {
        let mut entries = lock(&self.entries);
        match entries.get(&entry.finding_id) {
            Some(current) if current.version == expected_version => {
                entries.insert(entry.finding_id.clone(), entry.clone());
                *lock(&self.writes) += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// One call a [`RecordingTickets`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCall {
    /// "create", "comment", "close" or "reopen".
    pub op: &'static str,
    pub route: String,
    pub finding_id: String,
    /// The ticket's key (the new one for create).
    pub key: String,
    /// Title for create, change text otherwise.
    pub text: String,
    pub priority: Option<String>,
}

#[derive(Default)]
struct Failures {
    remaining: usize,
    retryable: bool,
}

/// A ticket system that records every call, numbers tickets `MEM-1`, `MEM-2`…, and can be
/// told to fail the next calls or to take its time (to widen race windows).
#[derive(Default)]
pub struct RecordingTickets {
    calls: Mutex<Vec<TicketCall>>,
    failures: Mutex<Failures>,
    delay: Option<Duration>,
}

impl RecordingTickets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each call sleeps this long before answering.
    pub fn with_delay(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::default()
        }
    }

    /// The next `n` calls fail, as a throttled/5xx (`retryable`) or a 4xx backend would.
    pub fn fail_next(&self, n: usize, retryable: bool) {
        *lock(&self.failures) = Failures {
            remaining: n,
            retryable,
        };
    }

    pub fn calls(&self) -> Vec<TicketCall> {
        lock(&self.calls).clone()
    }

    pub fn calls_of(&self, op: &str) -> Vec<TicketCall> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.op == op)
            .cloned()
            .collect()
    }

    fn call(
        &self,
        op: &'static str,
        target: &Target,
        finding_id: &str,
        key: Option<&str>,
        text: &str,
        priority: Option<String>,
    ) -> Result<String> {
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        {
            let mut f = lock(&self.failures);
            if f.remaining > 0 {
                f.remaining -= 1;
                let message = if f.retryable {
                    "HTTP 503 Service Unavailable (injected)"
                } else {
                    "HTTP 400 Bad Request (injected)"
                };
                return Err(Error::sink(
                    format!("{} {op}", target.backend.name()),
                    message,
                    f.retryable,
                ));
            }
        }
        let mut calls = lock(&self.calls);
        let key = match key {
            Some(k) => k.to_string(),
            None => format!(
                "MEM-{}",
                calls.iter().filter(|c| c.op == "create").count() + 1
            ),
        };
        calls.push(TicketCall {
            op,
            route: target.route.clone(),
            finding_id: finding_id.to_string(),
            key: key.clone(),
            text: text.to_string(),
            priority,
        });
        Ok(key)
    }
}

impl TicketSink for RecordingTickets {
    fn create(
        &self,
        target: &Target,
        content: &TicketContent,
        _budget: Budget,
    ) -> Result<TicketRef> {
        let key = self.call(
            "create",
            target,
            &content.finding_id,
            None,
            &content.title,
            content.priority.clone(),
        )?;
        Ok(TicketRef {
            backend: target.backend,
            url: format!("https://tickets.example/browse/{key}"),
            key,
            extra: BTreeMap::new(),
        })
    }

    fn comment(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        _budget: Budget,
    ) -> Result<()> {
        self.call(
            "comment",
            target,
            &change.finding_id,
            Some(&ticket.key),
            &change.text,
            None,
        )
        .map(drop)
    }

    fn close(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        _budget: Budget,
    ) -> Result<()> {
        self.call(
            "close",
            target,
            &change.finding_id,
            Some(&ticket.key),
            &change.text,
            None,
        )
        .map(drop)
    }

    fn reopen(
        &self,
        target: &Target,
        ticket: &TicketRef,
        change: &TicketChange,
        _budget: Budget,
    ) -> Result<()> {
        self.call(
            "reopen",
            target,
            &change.finding_id,
            Some(&ticket.key),
            &change.text,
            None,
        )
        .map(drop)
    }
}

/// Records write-backs; can be told to reject the next calls.
#[derive(Default)]
pub struct RecordingWriteBack {
    updates: Mutex<Vec<WriteBack>>,
    fail_calls: Mutex<usize>,
}

impl RecordingWriteBack {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn updates(&self) -> Vec<WriteBack> {
        lock(&self.updates).clone()
    }

    /// The next `n` calls fail as a throttled BatchUpdateFindings would.
    pub fn fail_next(&self, n: usize) {
        *lock(&self.fail_calls) = n;
    }
}

impl FindingsWriteBack for RecordingWriteBack {
    fn write_back(&self, updates: &[WriteBack]) -> Result<Vec<FailedFinding>> {
        {
            let mut fail = lock(&self.fail_calls);
            if *fail > 0 {
                *fail -= 1;
                return Err(Error::sink(
                    "BatchUpdateFindings",
                    "TooManyRequestsException (injected)",
                    true,
                ));
            }
        }
        lock(&self.updates).extend_from_slice(updates);
        Ok(Vec::new())
    }
}
