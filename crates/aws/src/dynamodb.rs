//! DynamoDB behind the forwarder's `Ledger`: one item per finding Id, every write
//! conditional, so that of two deliveries of the same finding exactly one creates the
//! ticket.
//!
//! The table's partition key is the string `finding_id`; `expires_at` (epoch seconds) is
//! the attribute to enable TTL on. Reads are strongly consistent: a delivery that lost
//! the race to claim a finding must see the winner's claim, not an older copy.

use crate::error::Error;
use crate::retry::call_error;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use muster_core::ports::Ledger;
use muster_core::tickets::{BackendKind, LedgerEntry, TicketRef, TicketState};
use std::collections::{BTreeMap, HashMap};
use tokio::runtime::Handle;

/// The table's partition key.
pub const KEY: &str = "finding_id";
/// The attribute DynamoDB's TTL reads (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

type Item = HashMap<String, AttributeValue>;

/// Builds a DynamoDB client. The SDK's standard retries stay on: ledger calls are
/// single items, and throttled ones are worth the SDK's own backoff. `endpoint`
/// overrides where it is sent (moto server in tests); without it the SDK's
/// configuration applies (`AWS_ENDPOINT_URL_DYNAMODB` included).
pub fn client(sdk: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut builder = aws_sdk_dynamodb::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// The ticket ledger in a DynamoDB table.
#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    handle: Handle,
    table: String,
}

impl DynamoLedger {
    /// `handle` is the runtime the SDK's connections live on; the ledger must then be
    /// used off it (from `spawn_blocking` or another thread), as it blocks.
    pub fn new(client: Client, handle: Handle, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            handle,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes `entry` under `condition`; `Ok(false)` when the condition did not hold.
    fn put(
        &self,
        entry: &LedgerEntry,
        condition: &str,
        values: Option<HashMap<String, AttributeValue>>,
        names: Option<HashMap<String, String>>,
    ) -> Result<bool, Error> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(entry)))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .set_expression_attribute_names(names);
        match self.handle.block_on(request.send()) {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.located(call_error("DynamoDB", "PutItem", e), &entry.finding_id)),
        }
    }

    /// Names the table and the finding in a failed call's message.
    fn located(&self, e: Error, finding_id: &str) -> Error {
        match e {
            Error::Service {
                service,
                operation,
                code,
                message,
                retryable,
            } => Error::Service {
                service,
                operation,
                code,
                message: format!("table {} finding {finding_id}: {message}", self.table),
                retryable,
            },
            other => other,
        }
    }
}

impl Ledger for DynamoLedger {
    fn get(&self, finding_id: &str) -> muster_core::Result<Option<LedgerEntry>> {
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(finding_id.to_owned()))
            .consistent_read(true);
        let out = self
            .handle
            .block_on(request.send())
            .map_err(|e| self.located(call_error("DynamoDB", "GetItem", e), finding_id))?;
        match out.item {
            None => Ok(None),
            Some(item) => from_item(&item).map(Some).map_err(|reason| {
                muster_core::Error::sink(
                    format!("DynamoDB table {} finding {finding_id}", self.table),
                    format!("the ledger item is not one muster wrote: {reason}"),
                    false,
                )
            }),
        }
    }

    fn put_new(&self, entry: &LedgerEntry) -> muster_core::Result<bool> {
        let won = self.put(entry, "attribute_not_exists(finding_id)", None, None)?;
        tracing::debug!(finding = %entry.finding_id, won, "ledger claim");
        Ok(won)
    }

    fn replace(&self, entry: &LedgerEntry, expected_version: u64) -> muster_core::Result<bool> {
        // `#v`: a placeholder keeps the expression clear of DynamoDB's reserved words.
        let names = HashMap::from([("#v".to_owned(), "version".to_owned())]);
        let values = HashMap::from([(
            ":expected".to_owned(),
            AttributeValue::N(expected_version.to_string()),
        )]);
        let won = self.put(entry, "#v = :expected", Some(values), Some(names))?;
        tracing::debug!(finding = %entry.finding_id, expected_version, won, "ledger update");
        Ok(won)
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// States as the JSON ledger spells them (`OPEN`), so both ledgers read alike.
fn state_text(state: TicketState) -> &'static str {
    match state {
        TicketState::Creating => "CREATING",
        TicketState::Open => "OPEN",
        TicketState::Closed => "CLOSED",
    }
}

fn state_from(text: &str) -> Option<TicketState> {
    [
        TicketState::Creating,
        TicketState::Open,
        TicketState::Closed,
    ]
    .into_iter()
    .find(|s| state_text(*s) == text)
}

fn backend_from(text: &str) -> Option<BackendKind> {
    [
        BackendKind::Jira,
        BackendKind::ServiceNow,
        BackendKind::GitHub,
        BackendKind::Slack,
        BackendKind::PagerDuty,
        BackendKind::Webhook,
    ]
    .into_iter()
    .find(|b| b.name() == text)
}

/// The entry as a DynamoDB item. The ticket is a map so the table stays readable in the
/// console and queryable by backend or key.
pub fn to_item(e: &LedgerEntry) -> Item {
    let mut item = Item::new();
    item.insert(KEY.into(), s(&e.finding_id));
    item.insert("state".into(), s(state_text(e.state)));
    if let Some(t) = &e.ticket {
        let mut m = Item::new();
        m.insert("backend".into(), s(t.backend.name()));
        m.insert("key".into(), s(&t.key));
        m.insert("url".into(), s(&t.url));
        if !t.extra.is_empty() {
            m.insert(
                "extra".into(),
                AttributeValue::M(t.extra.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
            );
        }
        item.insert("ticket".into(), AttributeValue::M(m));
    }
    item.insert("route".into(), s(&e.route));
    item.insert("state_hash".into(), s(&e.state_hash));
    if let Some(h) = &e.write_back_hash {
        item.insert("write_back_hash".into(), s(h));
    }
    item.insert("lease_until".into(), n(e.lease_until));
    if let Some(t) = e.expires_at {
        item.insert(TTL_ATTRIBUTE.into(), n(t));
    }
    item.insert("updated_at".into(), s(&e.updated_at));
    item.insert("version".into(), n(e.version));
    item
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn optional_text(item: &Item, name: &str) -> Result<Option<String>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => text(item, name).map(|v| Some(v.to_owned())),
    }
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, String> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} {v:?} is not an integer")),
        Some(_) => Err(format!("{name} is not a number")),
    }
}

/// The entry an item holds; `Err` names the attribute that is missing or malformed.
pub fn from_item(item: &Item) -> Result<LedgerEntry, String> {
    let state_name = text(item, "state")?;
    let state = state_from(state_name).ok_or_else(|| format!("state {state_name:?} is unknown"))?;
    let ticket = match item.get("ticket") {
        None | Some(AttributeValue::Null(_)) => None,
        Some(AttributeValue::M(m)) => {
            let backend_text = text(m, "backend").map_err(|e| format!("ticket.{e}"))?;
            let backend = backend_from(backend_text)
                .ok_or_else(|| format!("ticket.backend {backend_text:?} is unknown"))?;
            let extra = match m.get("extra") {
                None => BTreeMap::new(),
                Some(AttributeValue::M(x)) => x
                    .iter()
                    .map(|(k, v)| match v {
                        AttributeValue::S(v) => Ok((k.clone(), v.clone())),
                        _ => Err(format!("ticket.extra.{k} is not a string")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err("ticket.extra is not a map".into()),
            };
            Some(TicketRef {
                backend,
                key: text(m, "key")
                    .map_err(|e| format!("ticket.{e}"))?
                    .to_owned(),
                url: optional_text(m, "url")
                    .map_err(|e| format!("ticket.{e}"))?
                    .unwrap_or_default(),
                extra,
            })
        }
        Some(_) => return Err("ticket is not a map".into()),
    };
    Ok(LedgerEntry {
        finding_id: text(item, KEY)?.to_owned(),
        state,
        ticket,
        route: text(item, "route")?.to_owned(),
        state_hash: text(item, "state_hash")?.to_owned(),
        write_back_hash: optional_text(item, "write_back_hash")?,
        lease_until: number(item, "lease_until")?.unwrap_or_default(),
        expires_at: number(item, TTL_ATTRIBUTE)?,
        updated_at: optional_text(item, "updated_at")?.unwrap_or_default(),
        version: number(item, "version")?.ok_or("version is missing")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ticket: Option<TicketRef>) -> LedgerEntry {
        LedgerEntry {
            finding_id: "arn:aws:securityhub:us-east-1:111122223333:finding/abc".into(),
            state: TicketState::Open,
            ticket,
            route: "critical-to-jira".into(),
            state_hash: "h1".into(),
            write_back_hash: Some("h2".into()),
            lease_until: 1_700_000_060,
            expires_at: Some(1_734_560_000),
            updated_at: "2024-05-14T12:00:00.000Z".into(),
            version: 3,
        }
    }

    #[test]
    fn entries_survive_the_round_trip_through_an_item() {
        let slack = TicketRef {
            backend: BackendKind::Slack,
            key: "1715688000.000100".into(),
            url: String::new(),
            extra: BTreeMap::from([("channel".to_string(), "C012AB3CD".to_string())]),
        };
        let jira = TicketRef {
            backend: BackendKind::Jira,
            key: "SEC-12".into(),
            url: "https://acme.atlassian.net/browse/SEC-12".into(),
            extra: BTreeMap::new(),
        };
        let creating = LedgerEntry {
            state: TicketState::Creating,
            write_back_hash: None,
            expires_at: None,
            version: 1,
            ..entry(None)
        };
        for e in [entry(Some(slack)), entry(Some(jira)), creating] {
            let item = to_item(&e);
            assert_eq!(from_item(&item).as_ref(), Ok(&e));
            assert!(matches!(&item["state"], AttributeValue::S(_)));
            // TTL needs a number attribute, and only when the entry sets one.
            match e.expires_at {
                Some(t) => assert_eq!(item[TTL_ATTRIBUTE], AttributeValue::N(t.to_string())),
                None => assert!(!item.contains_key(TTL_ATTRIBUTE)),
            }
        }
        assert_eq!(
            to_item(&entry(None))["state"],
            AttributeValue::S("OPEN".into())
        );
    }

    #[test]
    fn malformed_items_are_refused_naming_the_attribute() {
        type Edit = fn(&mut Item);
        let cases: [(Edit, &str); 6] = [
            (|i| drop(i.remove("state")), "state is missing"),
            (
                |i| drop(i.insert("state".into(), s("LOST"))),
                "state \"LOST\" is unknown",
            ),
            (
                |i| drop(i.insert("version".into(), s("3"))),
                "version is not a number",
            ),
            (|i| drop(i.remove("version")), "version is missing"),
            (
                |i| drop(i.insert("ticket".into(), s("SEC-1"))),
                "ticket is not a map",
            ),
            (
                |i| {
                    i.insert(
                        "ticket".into(),
                        AttributeValue::M(Item::from([("backend".into(), s("trello"))])),
                    );
                },
                "ticket.backend \"trello\" is unknown",
            ),
        ];
        for (edit, want) in cases {
            let mut item = to_item(&entry(None));
            edit(&mut item);
            assert_eq!(from_item(&item), Err(want.to_string()));
        }
    }
}
