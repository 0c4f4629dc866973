//! S3 notification rules: which records of a Lambda trigger to take, and key decoding.
//!
//! S3 reaches the normaliser three ways, and all three end up here as a [`Trigger`]:
//! - a direct S3 event notification (`{"Records":[{"eventSource":"aws:s3",…}]}`);
//! - an SQS event whose message bodies are S3 notifications (or S3 EventBridge events,
//!   SNS envelopes around either, or `s3:TestEvent`s). Each message keeps its
//!   `messageId`, so the handler can report exactly the failed ones in
//!   `batchItemFailures`, and a message that cannot be understood fails alone;
//! - an EventBridge "Object Created" event (`source` `aws.s3`).
//!
//! `s3:TestEvent`s, records that are not ObjectCreated and zero-byte objects are
//! skipped and counted: there is nothing to read in them, and they are not failures.

use crate::error::{Error, Result};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Entity;
use aws_lambda_events::event::sqs::SqsMessage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the function was invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerKind {
    /// A direct S3 event notification (or a bare `s3:TestEvent`).
    S3,
    /// SQS messages wrapping notifications: partial failure is reported per message.
    Sqs,
    /// An EventBridge event from S3.
    EventBridge,
}

/// One object to normalise, as the notification names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub bucket: String,
    /// The key as stored in S3: already URL-decoded.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl ObjectRef {
    /// `s3://bucket/key`: how logs and errors name the object.
    pub fn display(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// One unit of delivery: an SQS message, or the whole event of a direct or
/// EventBridge invocation. It succeeds or fails as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The SQS `messageId`; `None` for direct and EventBridge triggers.
    pub id: Option<String>,
    pub objects: Vec<ObjectRef>,
    /// What in the message could not be understood. Any entry makes the message
    /// fail, so that SQS redelivers it and, after its retries, moves it to the DLQ.
    pub errors: Vec<String>,
}

/// Records skipped on purpose, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// `s3:TestEvent`s, sent once when a notification configuration is saved.
    pub test_events: u64,
    /// Records of other event types (ObjectRemoved, ObjectRestore, …).
    pub not_object_created: u64,
    /// Zero-byte objects (folder markers, empty uploads): they hold no records.
    pub empty_objects: u64,
}

impl Skipped {
    pub fn total(&self) -> u64 {
        self.test_events + self.not_object_created + self.empty_objects
    }
}

/// A parsed trigger: what to read, grouped by the unit that succeeds or fails together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub messages: Vec<Message>,
    pub skipped: Skipped,
}

impl Trigger {
    /// Every object of every message, in order.
    pub fn objects(&self) -> impl Iterator<Item = &ObjectRef> {
        self.messages.iter().flat_map(|m| m.objects.iter())
    }
}

/// Parses a trigger from its JSON bytes.
pub fn parse_trigger_slice(bytes: &[u8]) -> Result<Trigger> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::Trigger(format!("not a JSON document: {e}")))?;
    parse_trigger(&value)
}

/// Parses a trigger event as Lambda delivers it. Only a document that is none of the
/// accepted shapes is an error; a bad record or message is reported on its [`Message`].
pub fn parse_trigger(event: &Value) -> Result<Trigger> {
    let mut skipped = Skipped::default();
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        let all_from = |source: &str| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some(source))
        };
        if all_from("aws:sqs") {
            let messages = records
                .iter()
                .enumerate()
                .map(|(i, record)| sqs_message(i, record, &mut skipped))
                .collect();
            return Ok(Trigger {
                kind: TriggerKind::Sqs,
                messages,
                skipped,
            });
        }
        if records
            .iter()
            .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        {
            return Err(Error::Trigger(
                "a Records array mixing SQS messages with other records".into(),
            ));
        }
        let mut message = Message::default();
        s3_records(records, &mut message, &mut skipped);
        return Ok(Trigger {
            kind: TriggerKind::S3,
            messages: vec![message],
            skipped,
        });
    }
    if is_test_event(event) {
        skipped.test_events += 1;
        return Ok(Trigger {
            kind: TriggerKind::S3,
            messages: Vec::new(),
            skipped,
        });
    }
    if is_eventbridge(event) {
        let mut message = Message::default();
        eventbridge(event, &mut message, &mut skipped);
        return Ok(Trigger {
            kind: TriggerKind::EventBridge,
            messages: vec![message],
            skipped,
        });
    }
    Err(Error::Trigger(
        "expected an S3 event notification, an SQS event or an EventBridge S3 event".into(),
    ))
}

/// Decodes a key from an S3 notification. S3 writes keys form-URL-encoded: `+` is a
/// space and everything else outside the unreserved set is `%XX` (so a literal `+`
/// arrives as `%2B` and a literal `%` as `%25`, which is what makes this unambiguous).
pub fn decode_key(raw: &str) -> std::result::Result<String, String> {
    let plus_as_space = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("key {raw:?} does not decode to UTF-8"))
}

fn is_test_event(v: &Value) -> bool {
    v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

fn is_eventbridge(v: &Value) -> bool {
    v.get("detail-type").is_some() && v.get("source").is_some()
}

/// The envelope SNS puts around a message when S3 notifies a topic that feeds the queue.
fn sns_message(v: &Value) -> Option<&str> {
    if v.get("Type").and_then(Value::as_str) == Some("Notification") {
        v.get("Message").and_then(Value::as_str)
    } else {
        None
    }
}

fn sqs_message(index: usize, record: &Value, skipped: &mut Skipped) -> Message {
    let mut message = Message::default();
    let sqs: SqsMessage = match serde_json::from_value(record.clone()) {
        Ok(m) => m,
        Err(e) => {
            message.id = record
                .get("messageId")
                .and_then(Value::as_str)
                .map(str::to_owned);
            message
                .errors
                .push(format!("SQS record {index} is malformed: {e}"));
            return message;
        }
    };
    message.id = sqs.message_id;
    let Some(body) = sqs.body else {
        message
            .errors
            .push(format!("SQS record {index} has no body"));
        return message;
    };
    notification_body(&body, 0, &mut message, skipped);
    message
}

/// One SQS message body: an S3 notification, a test event, an EventBridge event, or
/// an SNS envelope around one of those (unwrapped once).
fn notification_body(body: &str, depth: u8, message: &mut Message, skipped: &mut Skipped) {
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            message
                .errors
                .push(format!("message body is not JSON: {e}"));
            return;
        }
    };
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        s3_records(records, message, skipped);
    } else if is_test_event(&value) {
        skipped.test_events += 1;
    } else if is_eventbridge(&value) {
        eventbridge(&value, message, skipped);
    } else if let (Some(inner), 0) = (sns_message(&value), depth) {
        notification_body(inner, depth + 1, message, skipped);
    } else {
        message.errors.push(
            "message body is not an S3 notification, an S3 EventBridge event or an SNS envelope of one"
                .into(),
        );
    }
}

/// The record fields we read. aws_lambda_events' `S3EventRecord` also requires
/// `eventTime`, `userIdentity` and `requestParameters`, which we do not use: a record
/// lacking them (hand-made, or from an emulator) must not fail its message for that.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Record {
    #[serde(default)]
    event_source: Option<String>,
    #[serde(default)]
    event_name: Option<String>,
    s3: S3Entity,
}

fn s3_records(records: &[Value], message: &mut Message, skipped: &mut Skipped) {
    for (i, raw) in records.iter().enumerate() {
        let record: S3Record = match serde_json::from_value(raw.clone()) {
            Ok(r) => r,
            Err(e) => {
                message
                    .errors
                    .push(format!("S3 record {i} is malformed: {e}"));
                continue;
            }
        };
        if let Some(source) = record.event_source.as_deref() {
            if source != "aws:s3" {
                message
                    .errors
                    .push(format!("record {i} comes from {source:?}, not aws:s3"));
                continue;
            }
        }
        let name = record.event_name.as_deref().unwrap_or("");
        if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
            skipped.not_object_created += 1;
            continue;
        }
        let bucket = record.s3.bucket.name.filter(|b| !b.is_empty());
        let object = record.s3.object;
        let (Some(bucket), Some(raw_key)) = (bucket, object.key.filter(|k| !k.is_empty())) else {
            message.errors.push(format!(
                "S3 record {i} lacks the bucket name or the object key"
            ));
            continue;
        };
        let size = match object.size.map(u64::try_from).transpose() {
            Ok(size) => size,
            Err(_) => {
                message
                    .errors
                    .push(format!("S3 record {i} has a negative object size"));
                continue;
            }
        };
        push_object(
            message,
            skipped,
            bucket,
            &raw_key,
            object.version_id,
            object.e_tag,
            size,
        );
    }
}

#[derive(Deserialize)]
struct EventBridgeDetail {
    bucket: EventBridgeBucket,
    object: EventBridgeObject,
}

#[derive(Deserialize)]
struct EventBridgeBucket {
    name: String,
}

#[derive(Deserialize)]
struct EventBridgeObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
}

/// An S3 event delivered by EventBridge. AWS's documentation of this shape does not
/// say whether `detail.object.key` is encoded, but S3 sends it form-URL-encoded just as
/// in notifications (spaces as `+`; AWS Lambda Powertools decodes it with
/// `unquote_plus` too), so it is decoded the same way.
fn eventbridge(event: &Value, message: &mut Message, skipped: &mut Skipped) {
    let event: EventBridgeEvent<Value> = match serde_json::from_value(event.clone()) {
        Ok(e) => e,
        Err(e) => {
            message
                .errors
                .push(format!("malformed EventBridge event: {e}"));
            return;
        }
    };
    if event.source != "aws.s3" {
        message.errors.push(format!(
            "EventBridge event from {:?}, not aws.s3",
            event.source
        ));
        return;
    }
    if event.detail_type != "Object Created" {
        skipped.not_object_created += 1;
        return;
    }
    let detail: EventBridgeDetail = match serde_json::from_value(event.detail) {
        Ok(d) => d,
        Err(e) => {
            message
                .errors
                .push(format!("malformed Object Created detail: {e}"));
            return;
        }
    };
    if detail.bucket.name.is_empty() || detail.object.key.is_empty() {
        message
            .errors
            .push("Object Created event lacks the bucket name or the object key".into());
        return;
    }
    push_object(
        message,
        skipped,
        detail.bucket.name,
        &detail.object.key,
        detail.object.version_id,
        detail.object.etag,
        detail.object.size,
    );
}

fn push_object(
    message: &mut Message,
    skipped: &mut Skipped,
    bucket: String,
    raw_key: &str,
    version_id: Option<String>,
    etag: Option<String>,
    size: Option<u64>,
) {
    if size == Some(0) {
        skipped.empty_objects += 1;
        return;
    }
    match decode_key(raw_key) {
        Ok(key) => message.objects.push(ObjectRef {
            bucket,
            key,
            // Unversioned buckets send "null" or nothing; GetObject wants no version then.
            version_id: version_id.filter(|v| !v.is_empty() && v != "null"),
            etag: etag.filter(|e| !e.is_empty()),
            size,
        }),
        Err(e) => message.errors.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_record(event_name: &str, key: &str, size: i64) -> Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-05-14T12:00:00.000Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE"},
            "requestParameters": {"sourceIPAddress": "203.0.113.10"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "logs",
                "bucket": {"name": "central-logs", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::central-logs"},
                "object": {"key": key, "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
            }
        })
    }

    fn s3_event(records: Vec<Value>) -> Value {
        json!({ "Records": records })
    }

    fn sqs(messages: Vec<(&str, String)>) -> Value {
        let records: Vec<Value> = messages
            .into_iter()
            .map(|(id, body)| {
                json!({
                    "messageId": id,
                    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1715688000000", "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1715688000001"},
                    "messageAttributes": {},
                    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:log-notifications",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    }

    fn eventbridge_event(detail_type: &str, key: &str, size: Option<u64>) -> Value {
        let mut object = json!({"key": key, "etag": "b1946ac92492d2347c6235b4d2611184", "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"});
        if let Some(size) = size {
            object["size"] = json!(size);
        }
        json!({
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2024-05-14T12:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:s3:::central-logs"],
            "detail": {
                "version": "0",
                "bucket": {"name": "central-logs"},
                "object": object,
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "111122223333",
                "source-ip-address": "203.0.113.10",
                "reason": "PutObject"
            }
        })
    }

    fn test_event() -> Value {
        json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2024-05-14T12:00:00.000Z",
            "Bucket": "central-logs",
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"
        })
    }

    /// (message id, decoded keys, number of errors) for each message.
    type Shape = Vec<(Option<&'static str>, Vec<&'static str>, usize)>;

    fn shape(t: &Trigger) -> Vec<(Option<String>, Vec<String>, usize)> {
        t.messages
            .iter()
            .map(|m| {
                (
                    m.id.clone(),
                    m.objects.iter().map(|o| o.key.clone()).collect(),
                    m.errors.len(),
                )
            })
            .collect()
    }

    #[test]
    fn triggers_become_messages_of_objects() {
        let put = |key: &str| s3_record("ObjectCreated:Put", key, 1024);
        let cases: Vec<(&str, Value, TriggerKind, Shape, Skipped)> = vec![
            (
                "direct notification, keys decoded",
                s3_event(vec![put("Happy%20Face.jpg"), put("a+b%2Bc"), put("caf%C3%A9/x.gz")]),
                TriggerKind::S3,
                vec![(None, vec!["Happy Face.jpg", "a b+c", "café/x.gz"], 0)],
                Skipped::default(),
            ),
            (
                "every ObjectCreated verb is taken, others skipped",
                s3_event(vec![
                    s3_record("ObjectCreated:CompleteMultipartUpload", "big.gz", 9),
                    s3_record("ObjectCreated:Copy", "copy.gz", 9),
                    s3_record("ObjectRemoved:Delete", "gone.gz", 9),
                    s3_record("ObjectRestore:Completed", "cold.gz", 9),
                ]),
                TriggerKind::S3,
                vec![(None, vec!["big.gz", "copy.gz"], 0)],
                Skipped { not_object_created: 2, ..Skipped::default() },
            ),
            (
                "zero-byte objects are skipped",
                s3_event(vec![put("x.gz"), s3_record("ObjectCreated:Put", "folder/", 0)]),
                TriggerKind::S3,
                vec![(None, vec!["x.gz"], 0)],
                Skipped { empty_objects: 1, ..Skipped::default() },
            ),
            (
                "invalid UTF-8 after decoding fails that record only",
                s3_event(vec![put("ok.gz"), put("bad%FF.gz")]),
                TriggerKind::S3,
                vec![(None, vec!["ok.gz"], 1)],
                Skipped::default(),
            ),
            (
                "a bare test event",
                test_event(),
                TriggerKind::S3,
                vec![],
                Skipped { test_events: 1, ..Skipped::default() },
            ),
            (
                "SQS: notifications, a test event and a malformed body",
                sqs(vec![
                    ("m-1", s3_event(vec![put("one.gz")]).to_string()),
                    ("m-2", test_event().to_string()),
                    ("m-3", "{\"Records\": [ not json".into()),
                    ("m-4", s3_event(vec![put("four+a.gz"), put("four+b.gz")]).to_string()),
                ]),
                TriggerKind::Sqs,
                vec![
                    (Some("m-1"), vec!["one.gz"], 0),
                    (Some("m-2"), vec![], 0),
                    (Some("m-3"), vec![], 1),
                    (Some("m-4"), vec!["four a.gz", "four b.gz"], 0),
                ],
                Skipped { test_events: 1, ..Skipped::default() },
            ),
            (
                "SQS: an EventBridge event and an SNS envelope as bodies",
                sqs(vec![
                    ("m-1", eventbridge_event("Object Created", "eb+key.gz", Some(5)).to_string()),
                    ("m-2", json!({"Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:111122223333:logs", "Message": s3_event(vec![put("via%2Fsns.gz")]).to_string()}).to_string()),
                    ("m-3", json!({"hello": "world"}).to_string()),
                ]),
                TriggerKind::Sqs,
                vec![
                    (Some("m-1"), vec!["eb key.gz"], 0),
                    (Some("m-2"), vec!["via/sns.gz"], 0),
                    (Some("m-3"), vec![], 1),
                ],
                Skipped::default(),
            ),
            (
                "EventBridge Object Created, key decoded",
                eventbridge_event("Object Created", "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/a%3Ab+c.json.gz", Some(5)),
                TriggerKind::EventBridge,
                vec![(None, vec!["AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/a:b c.json.gz"], 0)],
                Skipped::default(),
            ),
            (
                "EventBridge Object Deleted is skipped",
                eventbridge_event("Object Deleted", "gone.gz", None),
                TriggerKind::EventBridge,
                vec![(None, vec![], 0)],
                Skipped { not_object_created: 1, ..Skipped::default() },
            ),
            (
                "EventBridge zero-byte object is skipped",
                eventbridge_event("Object Created", "empty.gz", Some(0)),
                TriggerKind::EventBridge,
                vec![(None, vec![], 0)],
                Skipped { empty_objects: 1, ..Skipped::default() },
            ),
        ];
        for (name, event, kind, want, want_skipped) in cases {
            let t = parse_trigger(&event).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(t.kind, kind, "{name}");
            let want: Vec<(Option<String>, Vec<String>, usize)> = want
                .into_iter()
                .map(|(id, keys, errors)| {
                    (
                        id.map(str::to_owned),
                        keys.into_iter().map(str::to_owned).collect(),
                        errors,
                    )
                })
                .collect();
            assert_eq!(shape(&t), want, "{name}");
            assert_eq!(t.skipped, want_skipped, "{name}");
        }
    }

    #[test]
    fn object_refs_keep_version_etag_and_size() {
        let mut record = s3_record("ObjectCreated:Put", "k.gz", 77);
        record["s3"]["object"]["versionId"] = json!("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd");
        let t = parse_trigger(&s3_event(vec![record])).unwrap();
        assert_eq!(
            t.objects().cloned().collect::<Vec<_>>(),
            vec![ObjectRef {
                bucket: "central-logs".into(),
                key: "k.gz".into(),
                version_id: Some("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd".into()),
                etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
                size: Some(77),
            }]
        );

        let t = parse_trigger(&eventbridge_event("Object Created", "k.gz", Some(5))).unwrap();
        let o = t.objects().next().unwrap();
        assert_eq!(
            o.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(o.etag.as_deref(), Some("b1946ac92492d2347c6235b4d2611184"));
        assert_eq!(o.size, Some(5));
        assert_eq!(o.display(), "s3://central-logs/k.gz");

        let mut record = s3_record("ObjectCreated:Put", "k.gz", 5);
        record["s3"]["object"]["versionId"] = json!("null");
        let t = parse_trigger(&s3_event(vec![record])).unwrap();
        assert_eq!(t.objects().next().unwrap().version_id, None);
    }

    #[test]
    fn keys_decode_like_form_urlencoding() {
        let cases = [
            ("Happy%20Face.jpg", Ok("Happy Face.jpg")),
            ("a+b%2Bc", Ok("a b+c")),
            ("100%25.log", Ok("100%.log")),
            ("plain/key.json.gz", Ok("plain/key.json.gz")),
            ("dt%3D2024-05-14/part", Ok("dt=2024-05-14/part")),
            ("%E2%9C%93", Ok("✓")),
            ("bad%C3", Err(())),
        ];
        for (raw, want) in cases {
            assert_eq!(
                decode_key(raw).map_err(|_| ()),
                want.map(str::to_owned),
                "{raw}"
            );
        }
    }

    #[test]
    fn unknown_shapes_are_trigger_errors() {
        let cases = [
            json!({"hello": "world"}),
            json!([1, 2, 3]),
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}, {"eventSource": "aws:s3"}]}),
        ];
        for event in cases {
            assert!(
                matches!(parse_trigger(&event), Err(Error::Trigger(_))),
                "{event}"
            );
        }
        assert!(matches!(
            parse_trigger_slice(b"not json"),
            Err(Error::Trigger(_))
        ));
    }

    #[test]
    fn eventbridge_from_another_service_is_a_message_error() {
        let mut event = eventbridge_event("Object Created", "k", Some(1));
        event["source"] = json!("aws.ec2");
        let t = parse_trigger(&event).unwrap();
        assert_eq!(t.kind, TriggerKind::EventBridge);
        assert_eq!(t.messages[0].errors.len(), 1);
        assert!(t.messages[0].objects.is_empty());
    }

    #[test]
    fn sqs_message_ids_survive_bad_records() {
        let event = json!({"Records": [
            {"messageId": "m-1", "eventSource": "aws:sqs"},
            {"messageId": "m-2", "eventSource": "aws:sqs", "body": 42},
        ]});
        let t = parse_trigger(&event).unwrap();
        assert_eq!(t.kind, TriggerKind::Sqs);
        let ids: Vec<_> = t.messages.iter().map(|m| m.id.as_deref()).collect();
        assert_eq!(ids, vec![Some("m-1"), Some("m-2")]);
        assert!(t.messages.iter().all(|m| m.errors.len() == 1));
    }
}
