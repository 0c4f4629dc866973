//! EventBridge behind the normaliser's `DetectionBus`: every detection becomes one
//! `muster.detection` event on the configured bus.
//!
//! PutEvents takes at most 10 entries and 256 KB a call, and answers a call that
//! succeeded with per-entry failures (`FailedEntryCount`, an `ErrorCode` per entry):
//! the SDK's retries never see those, so the failed entries are sent again here, with
//! backoff and jitter, a bounded number of times.

use crate::error::Error;
use crate::retry::{call_error, transient_code, Backoff};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use muster_core::detect::{Detection, DETAIL_TYPE, EVENT_SOURCE};
use muster_core::ports::DetectionBus;
use std::collections::BTreeMap;
use tokio::runtime::Handle;

/// Most entries in one PutEvents call.
pub const MAX_ENTRIES: usize = 10;
/// Most bytes of entries in one PutEvents call, as EventBridge counts them.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// One event to put, before it becomes an SDK entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The detection's rule, to name the entry in errors.
    pub rule_id: String,
    pub detail: String,
    pub resources: Vec<String>,
    /// Epoch milliseconds of the detection's (last) event.
    pub time_ms: Option<i64>,
}

impl Entry {
    pub fn from_detection(d: &Detection) -> Result<Entry, Error> {
        let detail = serde_json::to_string(d).map_err(|e| Error::Service {
            service: "EventBridge",
            operation: "PutEvents",
            code: None,
            message: format!("detection of rule {}: cannot serialise: {e}", d.rule_id),
            retryable: false,
        })?;
        Ok(Entry {
            rule_id: d.rule_id.clone(),
            detail,
            resources: vec![d.resource.id.clone()],
            time_ms: muster_core::time::parse_rfc3339_ms(&d.time),
        })
    }

    /// The entry's size as EventBridge counts it against the 256 KB limit: 14 bytes for
    /// a Time, and the UTF-8 bytes of Source, DetailType, Detail and every resource.
    pub fn size(&self) -> usize {
        self.time_ms.map_or(0, |_| 14)
            + EVENT_SOURCE.len()
            + DETAIL_TYPE.len()
            + self.detail.len()
            + self.resources.iter().map(String::len).sum::<usize>()
    }
}

/// Splits entries into PutEvents calls of at most [`MAX_ENTRIES`] entries and
/// [`MAX_REQUEST_BYTES`] bytes, in order. An entry too large for any call is an error
/// naming its rule: retrying cannot make it fit.
pub fn batches(entries: &[Entry]) -> Result<Vec<&[Entry]>, Error> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in entries.iter().enumerate() {
        let size = e.size();
        if size > MAX_REQUEST_BYTES {
            return Err(Error::Service {
                service: "EventBridge",
                operation: "PutEvents",
                code: None,
                message: format!(
                    "the detection of rule {} is {size} bytes as an event, over EventBridge's {MAX_REQUEST_BYTES}",
                    e.rule_id
                ),
                retryable: false,
            });
        }
        if i > start && (i - start == MAX_ENTRIES || bytes + size > MAX_REQUEST_BYTES) {
            out.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    Ok(out)
}

/// Why one entry of a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub code: String,
    pub message: String,
}

/// Sends one batch through `call`, which answers with a failure or `None` for each
/// entry it was given, in order. Entries that fail with a transient code (and calls
/// that fail retryably as a whole) are sent again after a backoff, up to
/// `backoff.attempts` calls; what still fails then is an error naming how many
/// entries failed and why, retryable unless one failed for good.
pub fn send_batch<F>(
    bus: &str,
    batch: &[Entry],
    backoff: &Backoff,
    mut call: F,
) -> Result<(), Error>
where
    F: FnMut(&[&Entry]) -> Result<Vec<Option<EntryFailure>>, Error>,
{
    let mut pending: Vec<&Entry> = batch.iter().collect();
    let mut permanent: Vec<(&Entry, EntryFailure)> = Vec::new();
    let mut transient: Vec<(&Entry, EntryFailure)> = Vec::new();
    for attempt in 0..backoff.attempts {
        if attempt > 0 {
            backoff.wait(attempt - 1);
        }
        let answers = match call(&pending) {
            Ok(answers) => answers,
            Err(e) if e.is_retryable() => {
                let code = match &e {
                    Error::Service { code: Some(c), .. } => c.clone(),
                    _ => "CallFailed".into(),
                };
                let failure = EntryFailure {
                    code,
                    message: e.to_string(),
                };
                transient = pending.iter().map(|e| (*e, failure.clone())).collect();
                continue;
            }
            Err(e) => return Err(e),
        };
        transient.clear();
        for (i, entry) in pending.iter().enumerate() {
            // A response with fewer result entries than we sent leaves the rest unknown:
            // sending them again is safe (consumers dedupe by detection), dropping is not.
            let failure = match answers.get(i) {
                Some(a) => a.clone(),
                None => Some(EntryFailure {
                    code: "MissingResultEntry".into(),
                    message: "the response has no result for this entry".into(),
                }),
            };
            match failure {
                None => {}
                Some(f) if transient_code(&f.code) || f.code == "MissingResultEntry" => {
                    transient.push((entry, f))
                }
                Some(f) => permanent.push((entry, f)),
            }
        }
        pending = transient.iter().map(|(e, _)| *e).collect();
        if pending.is_empty() {
            break;
        }
    }
    if transient.is_empty() && permanent.is_empty() {
        return Ok(());
    }
    let failed = transient.len() + permanent.len();
    let mut by_code: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, f) in transient.iter().chain(&permanent) {
        *by_code.entry(f.code.as_str()).or_default() += 1;
    }
    let codes: Vec<String> = by_code.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
    let (first_entry, first) = permanent.first().or(transient.first()).expect("failed > 0");
    Err(Error::Service {
        service: "EventBridge",
        operation: "PutEvents",
        code: Some(first.code.clone()),
        message: format!(
            "bus {bus}: {failed} of {} entries failed ({}) after {} attempt(s); first: rule {}: {}: {}",
            batch.len(),
            codes.join(", "),
            backoff.attempts,
            first_entry.rule_id,
            first.code,
            first.message
        ),
        retryable: permanent.is_empty(),
    })
}

/// Builds an EventBridge client for the bus. The SDK's own retries are turned off: the
/// bus retries whole calls and failed entries itself, and two layers of retries would
/// multiply. `endpoint` overrides where it is sent (moto server in tests); without it
/// the SDK's configuration applies (`AWS_ENDPOINT_URL_EVENTBRIDGE` included).
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_eventbridge::config::Builder::from(sdk)
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// Publishes detections as `muster.detection` events on one bus.
#[derive(Clone)]
pub struct EventBridgeBus {
    client: Client,
    handle: Handle,
    bus_name: String,
    backoff: Backoff,
}

impl EventBridgeBus {
    /// `handle` is the runtime the SDK's connections live on; `publish` must then be
    /// called off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle, bus_name: impl Into<String>) -> Self {
        EventBridgeBus {
            client,
            handle,
            bus_name: bus_name.into(),
            backoff: Backoff::default(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    fn put(&self, entries: &[&Entry]) -> Result<Vec<Option<EntryFailure>>, Error> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(EVENT_SOURCE)
                    .detail_type(DETAIL_TYPE)
                    .detail(&e.detail)
                    .set_resources(Some(e.resources.clone()))
                    .set_time(e.time_ms.map(aws_smithy_types::DateTime::from_millis))
                    .build()
            })
            .collect();
        let out = self
            .handle
            .block_on(self.client.put_events().set_entries(Some(request)).send())
            .map_err(|e| call_error("EventBridge", "PutEvents", e))?;
        Ok(out
            .entries()
            .iter()
            .map(|r| {
                r.error_code().map(|code| EntryFailure {
                    code: code.to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                })
            })
            .collect())
    }
}

impl DetectionBus for EventBridgeBus {
    fn publish(&self, detections: &[Detection]) -> muster_core::Result<()> {
        let entries = detections
            .iter()
            .map(Entry::from_detection)
            .collect::<Result<Vec<_>, _>>()?;
        for batch in batches(&entries)? {
            send_batch(&self.bus_name, batch, &self.backoff, |b| self.put(b))?;
        }
        tracing::debug!(bus = %self.bus_name, detections = detections.len(), "detections published");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn entry(rule: &str, detail_bytes: usize) -> Entry {
        Entry {
            rule_id: rule.into(),
            detail: "x".repeat(detail_bytes),
            resources: vec!["arn:aws:iam::111122223333:root".into()],
            time_ms: Some(0),
        }
    }

    /// A backoff that records its waits instead of sleeping.
    fn counting_backoff(attempts: u32) -> (Backoff, Arc<Mutex<Vec<Duration>>>) {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let w = waits.clone();
        let b = Backoff::new(attempts, Duration::from_millis(100), Duration::from_secs(1))
            .with_sleep(Arc::new(move |d| w.lock().unwrap().push(d)));
        (b, waits)
    }

    #[test]
    fn entries_are_counted_as_eventbridge_counts_them() {
        let e = entry("r", 100);
        let resource = "arn:aws:iam::111122223333:root".len();
        assert_eq!(
            e.size(),
            14 + "muster".len() + "muster.detection".len() + 100 + resource
        );
        let untimed = Entry {
            time_ms: None,
            ..e.clone()
        };
        assert_eq!(untimed.size(), e.size() - 14);
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kb() {
        let overhead = entry("r", 0).size();
        let cases: Vec<(Vec<Entry>, Vec<usize>)> = vec![
            (vec![], vec![]),
            ((0..10).map(|_| entry("r", 10)).collect(), vec![10]),
            ((0..25).map(|_| entry("r", 10)).collect(), vec![10, 10, 5]),
            // Four entries of a quarter of the limit each: the fourth fits exactly.
            (
                (0..5)
                    .map(|_| entry("r", MAX_REQUEST_BYTES / 4 - overhead))
                    .collect(),
                vec![4, 1],
            ),
            // One byte more and only three fit.
            (
                (0..5)
                    .map(|_| entry("r", MAX_REQUEST_BYTES / 4 - overhead + 1))
                    .collect(),
                vec![3, 2],
            ),
        ];
        for (entries, want) in cases {
            let got: Vec<usize> = batches(&entries).unwrap().iter().map(|b| b.len()).collect();
            assert_eq!(got, want);
        }
        let too_big = vec![entry("ok", 10), entry("huge", MAX_REQUEST_BYTES)];
        let err = batches(&too_big).unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("rule huge"), "{err}");
    }

    /// Per call: the code of each entry's failure (`None`: put), or the call failing as
    /// a whole (`Err(retryable)`).
    type Script = Vec<Result<Vec<Option<&'static str>>, bool>>;
    type Calls = Arc<Mutex<Vec<Vec<String>>>>;
    type Answer = Result<Vec<Option<EntryFailure>>, Error>;
    /// What a case wants: `Ok`, or an error's retryability and a text it contains.
    type Want = Result<(), (bool, &'static str)>;

    /// A fake PutEvents: answers each call from a script of per-entry codes.
    fn scripted(script: Script) -> (impl FnMut(&[&Entry]) -> Answer, Calls) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let mut script = script.into_iter();
        let call = move |entries: &[&Entry]| {
            seen.lock()
                .unwrap()
                .push(entries.iter().map(|e| e.rule_id.clone()).collect());
            match script.next().expect("more calls than scripted") {
                Ok(codes) => Ok(codes
                    .into_iter()
                    .map(|c| {
                        c.map(|code| EntryFailure {
                            code: code.into(),
                            message: format!("{code} happened"),
                        })
                    })
                    .collect()),
                Err(retryable) => Err(Error::Service {
                    service: "EventBridge",
                    operation: "PutEvents",
                    code: Some("X".into()),
                    message: "call failed".into(),
                    retryable,
                }),
            }
        };
        (call, calls)
    }

    #[test]
    fn failed_entries_are_retried_with_backoff_then_reported() {
        let batch: Vec<Entry> = ["a", "b", "c"].iter().map(|r| entry(r, 10)).collect();
        // (attempts, script, calls made, outcome)
        let cases: Vec<(u32, Script, Vec<&str>, Want)> = vec![
            (3, vec![Ok(vec![None, None, None])], vec!["a,b,c"], Ok(())),
            (
                3,
                vec![
                    Ok(vec![None, Some("ThrottlingException"), Some("InternalFailure")]),
                    Ok(vec![None, Some("InternalFailure")]),
                    Ok(vec![None]),
                ],
                vec!["a,b,c", "b,c", "c"],
                Ok(()),
            ),
            (
                2,
                vec![
                    Ok(vec![Some("ThrottlingException"), None, None]),
                    Ok(vec![Some("ThrottlingException")]),
                ],
                vec!["a,b,c", "a"],
                Err((true, "1 of 3 entries failed (ThrottlingException ×1) after 2 attempt(s); first: rule a")),
            ),
            // A permanent code is not retried and makes the error permanent.
            (
                3,
                vec![
                    Ok(vec![Some("MalformedDetail"), Some("InternalFailure"), None]),
                    Ok(vec![None]),
                ],
                vec!["a,b,c", "b"],
                Err((false, "1 of 3 entries failed (MalformedDetail ×1)")),
            ),
            // A short response: the unanswered entries are sent again.
            (
                3,
                vec![Ok(vec![None]), Ok(vec![None, None])],
                vec!["a,b,c", "b,c"],
                Ok(()),
            ),
            // A retryable call failure is retried like a failed entry.
            (
                3,
                vec![Err(true), Ok(vec![None, None, None])],
                vec!["a,b,c", "a,b,c"],
                Ok(()),
            ),
            (2, vec![Err(true), Err(true)], vec!["a,b,c", "a,b,c"], Err((true, "call failed"))),
            (3, vec![Err(false)], vec!["a,b,c"], Err((false, "call failed"))),
        ];
        for (attempts, script, want_calls, want) in cases {
            let (backoff, waits) = counting_backoff(attempts);
            let (call, calls) = scripted(script);
            let got = send_batch("muster", &batch, &backoff, call);
            let calls: Vec<String> = calls.lock().unwrap().iter().map(|c| c.join(",")).collect();
            assert_eq!(calls, want_calls);
            assert_eq!(
                waits.lock().unwrap().len(),
                calls.len() - 1,
                "one wait between calls"
            );
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err((retryable, text))) => {
                    assert_eq!(e.is_retryable(), retryable, "{e}");
                    assert!(e.to_string().contains(text), "{e}");
                }
                (got, want) => panic!("{want_calls:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_detection_becomes_an_entry_with_its_detail_time_and_resource() {
        let d: Detection = serde_json::from_value(serde_json::json!({
            "rule_id":"root-account-use","title":"t","description":"d","severity":"HIGH",
            "types":["TTPs/Privilege Escalation"],"remediation":"https://x",
            "event_uids":["e1","e2"],"account":"111122223333","region":"us-east-1",
            "time":"2024-05-14T12:00:01.500Z","first_seen":"2024-05-14T12:00:00.000Z",
            "actor":"arn:aws:iam::111122223333:root","src_ip":"203.0.113.5","operation":"ConsoleLogin",
            "resource":{"id":"arn:aws:iam::111122223333:root","type":"Other"},"class_uid":3002
        }))
        .unwrap();
        let e = Entry::from_detection(&d).unwrap();
        assert_eq!(e.time_ms, Some(1_715_688_001_500));
        assert_eq!(e.resources, vec!["arn:aws:iam::111122223333:root"]);
        let back: Detection = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(back, d);
    }
}
