//! Detection rules evaluated over each OCSF event as the normaliser streams it.
//!
//! Rules are data: `rules.json` is compiled in, and a file of the same shape can
//! replace or extend it without recompiling. A rule matches on a small set of named
//! event fields (see [`field`]) read straight from the typed event, so evaluating
//! every rule over every event costs string compares, not JSON trees.

use crate::ocsf::Event;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The built-in rule set: the CIS AWS Foundations monitoring controls (Security Hub
/// CloudWatch.1–14), AWS Organizations changes and repeated failed sign-ins.
pub const BUILTIN_RULES: &str = include_str!("rules.json");

/// ASFF severity labels, which is what the detections turn into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeverityLabel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLabel {
    /// Security Hub's `Severity.Normalized` for the label (the middle of its range).
    pub fn normalized(self) -> u8 {
        match self {
            SeverityLabel::Informational => 0,
            SeverityLabel::Low => 20,
            SeverityLabel::Medium => 50,
            SeverityLabel::High => 80,
            SeverityLabel::Critical => 95,
        }
    }
}

/// What a rule's finding points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResourceHint {
    /// The principal that acted.
    #[default]
    Actor,
    /// The first resource the event names, else the API operation's target account.
    Target,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: SeverityLabel,
    pub types: Vec<String>,
    pub remediation: String,
    #[serde(default)]
    pub resource: ResourceHint,
    pub when: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
}

/// Fires once `count` matching events share a `group_by` value within `window_seconds`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub count: usize,
    pub window_seconds: u64,
    pub group_by: String,
}

/// A boolean condition over event fields.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Condition {
    All { all: Vec<Condition> },
    Any { any: Vec<Condition> },
    Not { not: Box<Condition> },
    Field(FieldTest),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTest {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
}

/// The event fields rules can test. Unknown names are refused when rules load.
pub const FIELDS: &[&str] = &[
    "class_uid",
    "activity_id",
    "status_id",
    "severity_id",
    "is_mfa",
    "api.operation",
    "api.service.name",
    "api.response.error",
    "api.response.error_message",
    "actor.user.type",
    "actor.user.type_id",
    "actor.user.name",
    "actor.user.uid",
    "actor.user.uid_alt",
    "actor.invoked_by",
    "user.type",
    "user.name",
    "user.uid_alt",
    "src_endpoint.ip",
    "dst_endpoint.ip",
    "dst_endpoint.port",
    "cloud.account.uid",
    "cloud.region",
    "metadata.event_code",
    "metadata.log_name",
    "disposition_id",
];

/// Reads a named field of an event as text, or `None` when the event lacks it.
///
/// Borrowed where the event holds text: this runs for every rule condition of every
/// event, and allocating here was most of the cost of detection.
pub fn field<'e>(e: &'e Event<'_>, name: &str) -> Option<Cow<'e, str>> {
    let s = |v: Option<&'e Cow<'_, str>>| v.map(|c| Cow::Borrowed(c.as_ref()));
    let actor_user = e.actor.as_ref().and_then(|a| a.user.as_ref());
    match name {
        "class_uid" => Some(number(e.class_uid)),
        "activity_id" => Some(number(e.activity_id)),
        "status_id" => e.status_id.map(number),
        "severity_id" => Some(number(e.severity_id)),
        "is_mfa" => e
            .is_mfa
            .or_else(|| e.actor.as_ref()?.session.as_ref()?.is_mfa)
            .map(|v| Cow::Borrowed(if v { "true" } else { "false" })),
        "api.operation" => s(e.api.as_ref().map(|a| &a.operation)),
        "api.service.name" => s(e
            .api
            .as_ref()
            .and_then(|a| a.service.as_ref())
            .map(|v| &v.name)),
        "api.response.error" => s(e
            .api
            .as_ref()
            .and_then(|a| a.response.as_ref())
            .and_then(|r| r.error.as_ref())),
        "api.response.error_message" => s(e
            .api
            .as_ref()
            .and_then(|a| a.response.as_ref())
            .and_then(|r| r.error_message.as_ref())),
        "actor.user.type" => s(actor_user.and_then(|u| u.type_.as_ref())),
        "actor.user.type_id" => actor_user.and_then(|u| u.type_id).map(number),
        "actor.user.name" => s(actor_user.and_then(|u| u.name.as_ref())),
        "actor.user.uid" => s(actor_user.and_then(|u| u.uid.as_ref())),
        "actor.user.uid_alt" => s(actor_user.and_then(|u| u.uid_alt.as_ref())),
        "actor.invoked_by" => s(e.actor.as_ref().and_then(|a| a.invoked_by.as_ref())),
        "user.type" => s(e.user.as_ref().and_then(|u| u.type_.as_ref())),
        "user.name" => s(e.user.as_ref().and_then(|u| u.name.as_ref())),
        "user.uid_alt" => s(e.user.as_ref().and_then(|u| u.uid_alt.as_ref())),
        "src_endpoint.ip" => s(e.src_endpoint.as_ref().and_then(|p| p.ip.as_ref())),
        "dst_endpoint.ip" => s(e.dst_endpoint.as_ref().and_then(|p| p.ip.as_ref())),
        "dst_endpoint.port" => e
            .dst_endpoint
            .as_ref()
            .and_then(|p| p.port)
            .map(|v| number(v.into())),
        "cloud.account.uid" => e.account_uid().map(Cow::Borrowed),
        "cloud.region" => e.region().map(Cow::Borrowed),
        "metadata.event_code" => s(e.metadata.event_code.as_ref()),
        "metadata.log_name" => s(e.metadata.log_name.as_ref()),
        "disposition_id" => e.disposition_id.map(number),
        _ => None,
    }
}

/// Small ids as text without allocating: the common ones are static.
fn number(v: u32) -> Cow<'static, str> {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match v {
        0..=9 => Cow::Borrowed(SMALL[v as usize]),
        99 => Cow::Borrowed("99"),
        _ => Cow::Owned(v.to_string()),
    }
}

impl Condition {
    pub fn matches(&self, e: &Event<'_>) -> bool {
        match self {
            Condition::All { all } => all.iter().all(|c| c.matches(e)),
            Condition::Any { any } => any.iter().any(|c| c.matches(e)),
            Condition::Not { not } => !not.matches(e),
            Condition::Field(t) => t.matches(field(e, &t.field).as_deref()),
        }
    }

    fn check(&self, rule: &str) -> Result<(), String> {
        match self {
            Condition::All { all: list } | Condition::Any { any: list } => {
                if list.is_empty() {
                    return Err(format!("rule {rule}: an empty all/any list"));
                }
                list.iter().try_for_each(|c| c.check(rule))
            }
            Condition::Not { not } => not.check(rule),
            Condition::Field(t) => {
                if !FIELDS.contains(&t.field.as_str()) {
                    return Err(format!(
                        "rule {rule}: unknown field '{}' (known: {})",
                        t.field,
                        FIELDS.join(", ")
                    ));
                }
                let tests = [
                    t.equals.is_some(),
                    t.not_equals.is_some(),
                    t.one_of.is_some(),
                    t.starts_with.is_some(),
                    t.ends_with.is_some(),
                    t.contains.is_some(),
                    t.present.is_some(),
                ];
                if !tests.iter().any(|b| *b) {
                    return Err(format!("rule {rule}: field '{}' has no test (equals, not_equals, in, starts_with, ends_with, contains, present)", t.field));
                }
                Ok(())
            }
        }
    }
}

impl FieldTest {
    /// Every test given must hold. A missing field fails every test except
    /// `not_equals` and `present: false`, as CloudWatch metric filters treat it.
    fn matches(&self, value: Option<&str>) -> bool {
        if let Some(want) = self.present {
            if value.is_some() != want {
                return false;
            }
        }
        if let Some(v) = &self.not_equals {
            if value == Some(v.as_str()) {
                return false;
            }
        }
        let needs_value = self.equals.is_some()
            || self.one_of.is_some()
            || self.starts_with.is_some()
            || self.ends_with.is_some()
            || self.contains.is_some();
        let Some(value) = value else {
            return !needs_value;
        };
        self.equals.as_deref().is_none_or(|w| value == w)
            && self
                .one_of
                .as_ref()
                .is_none_or(|set| set.iter().any(|w| w == value))
            && self
                .starts_with
                .as_deref()
                .is_none_or(|w| value.starts_with(w))
            && self.ends_with.as_deref().is_none_or(|w| value.ends_with(w))
            && self.contains.as_deref().is_none_or(|w| value.contains(w))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    pub fn builtin() -> Self {
        Self::from_json(BUILTIN_RULES).expect("the built-in rules are checked by a test")
    }

    /// Parses and checks a rules file: unknown fields, unknown event fields, duplicate
    /// ids and empty conditions are errors that name the rule.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let set: RuleSet = serde_json::from_str(text).map_err(|e| format!("rules: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        for r in &set.rules {
            if !seen.insert(r.id.as_str()) {
                return Err(format!("rules: duplicate rule id '{}'", r.id));
            }
            if r.id.trim().is_empty() || r.title.trim().is_empty() {
                return Err("rules: every rule needs an id and a title".into());
            }
            r.when.check(&r.id)?;
            if let Some(t) = &r.threshold {
                if t.count < 2 || t.window_seconds == 0 {
                    return Err(format!(
                        "rules: rule {}: threshold needs count >= 2 and window_seconds > 0",
                        r.id
                    ));
                }
                if !FIELDS.contains(&t.group_by.as_str()) {
                    return Err(format!(
                        "rules: rule {}: unknown group_by field '{}'",
                        r.id, t.group_by
                    ));
                }
            }
        }
        Ok(set)
    }

    /// The built-in rules with `other`'s rules added; a rule of `other` with the id of
    /// a built-in one replaces it.
    pub fn merged_with(mut self, other: RuleSet) -> Self {
        for rule in other.rules {
            match self.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(existing) => *existing = rule,
                None => self.rules.push(rule),
            }
        }
        self
    }
}

/// A rule hit: the documented `detail` of the `muster.detection` EventBridge event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub rule_id: String,
    pub title: String,
    pub description: String,
    pub severity: SeverityLabel,
    pub types: Vec<String>,
    pub remediation: String,
    /// `metadata.uid` of every event that matched (all of them for a threshold rule).
    pub event_uids: Vec<String>,
    pub account: String,
    pub region: String,
    /// Time of the (last) matching event, RFC 3339 UTC.
    pub time: String,
    /// Time of the first matching event, RFC 3339 UTC.
    pub first_seen: String,
    pub actor: Option<String>,
    pub src_ip: Option<String>,
    pub operation: Option<String>,
    /// What the finding points at: an ARN or id, and its ASFF resource type.
    pub resource: DetectionResource,
    /// The OCSF class of the matched events.
    pub class_uid: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionResource {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// Most uids one detection carries; a larger group is reported as several detections,
/// so memory and EventBridge entries stay bounded however many events match.
pub const MAX_UIDS_PER_DETECTION: usize = 100;

/// Evaluates rules over a stream of events. Simple rules' hits are grouped per rule,
/// actor and resource for the object (one "Unauthorized API call by X" with every
/// matching event, not one per call); threshold rules keep sliding windows per group.
/// One per object: call `observe` for each event, then `finish`.
pub struct Detector {
    rules: Arc<RuleSet>,
    windows: HashMap<(usize, String), VecDeque<(i64, String)>>,
    groups: Vec<Group>,
    group_index: HashMap<(usize, Option<String>, String), usize>,
}

struct Group {
    detection: Detection,
    first_ms: i64,
}

impl Detector {
    pub fn new(rules: impl Into<Arc<RuleSet>>) -> Self {
        Detector {
            rules: rules.into(),
            windows: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Detections completed by `e`: threshold rules that fire, and groups that are full.
    pub fn observe(&mut self, e: &Event<'_>) -> Vec<Detection> {
        let mut done = Vec::new();
        for (i, rule) in self.rules.rules.iter().enumerate() {
            if !rule.when.matches(e) {
                continue;
            }
            let uid = e.metadata.uid.as_deref().unwrap_or("").to_string();
            match &rule.threshold {
                None => {
                    let d = detection(rule, e, vec![uid.clone()], e.time);
                    let key = (i, d.actor.clone(), d.resource.id.clone());
                    match self.group_index.get(&key) {
                        Some(&g) => {
                            let group = &mut self.groups[g];
                            group.detection.event_uids.push(uid);
                            if e.time > group.first_ms {
                                group.detection.time = d.time;
                            } else {
                                group.first_ms = e.time;
                                group.detection.first_seen = d.first_seen;
                            }
                            if group.detection.event_uids.len() >= MAX_UIDS_PER_DETECTION {
                                self.group_index.remove(&key);
                                done.push(group.detection.clone());
                                group.detection.event_uids.clear();
                            }
                        }
                        None => {
                            self.group_index.insert(key, self.groups.len());
                            self.groups.push(Group {
                                detection: d,
                                first_ms: e.time,
                            });
                        }
                    }
                }
                Some(t) => {
                    let Some(group) = field(e, &t.group_by).map(Cow::into_owned) else {
                        continue;
                    };
                    let window = self.windows.entry((i, group)).or_default();
                    let horizon = e.time - (t.window_seconds as i64) * 1000;
                    while window.front().is_some_and(|(at, _)| *at < horizon) {
                        window.pop_front();
                    }
                    window.push_back((e.time, uid));
                    if window.len() >= t.count {
                        let first = window.front().map_or(e.time, |(at, _)| *at);
                        let uids = window.drain(..).map(|(_, u)| u).collect();
                        done.push(detection(rule, e, uids, first));
                    }
                }
            }
        }
        done
    }

    /// The grouped detections still open, in the order their first event came.
    pub fn finish(&mut self) -> Vec<Detection> {
        self.group_index.clear();
        self.groups
            .drain(..)
            .map(|g| g.detection)
            .filter(|d| !d.event_uids.is_empty())
            .collect()
    }
}

/// EventBridge `source` and `detail-type` of detection events.
pub const EVENT_SOURCE: &str = "muster";
pub const DETAIL_TYPE: &str = "muster.detection";

impl Detection {
    /// A stable id for the detection: its rule and the events it covers.
    pub fn uid(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in std::iter::once(&self.rule_id)
            .chain(std::iter::once(&self.account))
            .chain(self.event_uids.iter())
        {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The detection as the EventBridge event consumers receive (and the CLI writes):
    /// `source` "muster", `detail-type` "muster.detection", the detection as `detail`.
    pub fn to_eventbridge_event(&self) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": self.uid(),
            "detail-type": DETAIL_TYPE,
            "source": EVENT_SOURCE,
            "account": self.account,
            "time": self.time,
            "region": self.region,
            "resources": [self.resource.id],
            "detail": self,
        })
    }
}

fn detection(rule: &Rule, e: &Event<'_>, event_uids: Vec<String>, first_seen: i64) -> Detection {
    let actor = field(e, "actor.user.uid_alt")
        .or_else(|| field(e, "user.uid_alt"))
        .or_else(|| field(e, "actor.user.name"))
        .or_else(|| field(e, "user.name"))
        .map(Cow::into_owned);
    let account = e.account_uid().unwrap_or("unknown").to_string();
    let region = e.region().unwrap_or("unknown").to_string();
    let resource = match rule.resource {
        ResourceHint::Target => e.resources.as_ref().and_then(|r| r.first()).and_then(|r| {
            r.uid
                .as_ref()
                .or(r.name.as_ref())
                .map(|id| DetectionResource {
                    id: id.to_string(),
                    type_: asff_resource_type(r.type_.as_deref(), id),
                })
        }),
        ResourceHint::Actor => None,
    }
    .or_else(|| {
        actor
            .as_ref()
            .filter(|a| a.starts_with("arn:"))
            .map(|a| DetectionResource {
                id: a.clone(),
                type_: asff_resource_type(None, a),
            })
    })
    .unwrap_or_else(|| DetectionResource {
        id: format!("AWS::::Account:{account}"),
        type_: "AwsAccount".into(),
    });
    Detection {
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        description: rule.description.clone(),
        severity: rule.severity,
        types: rule.types.clone(),
        remediation: rule.remediation.clone(),
        event_uids,
        account,
        region,
        time: crate::time::format_rfc3339_ms(e.time),
        first_seen: crate::time::format_rfc3339_ms(first_seen),
        actor,
        src_ip: field(e, "src_endpoint.ip").map(Cow::into_owned),
        operation: field(e, "api.operation").map(Cow::into_owned),
        resource,
        class_uid: e.class_uid,
    }
}

/// The ASFF resource type for a resource, from its CloudFormation-style type or its ARN.
pub fn asff_resource_type(cfn_type: Option<&str>, id: &str) -> String {
    let from_cfn = cfn_type.map(|t| t.split("::").filter(|p| !p.is_empty()).collect::<String>());
    if let Some(t) = from_cfn.filter(|t| t.starts_with("AWS")) {
        return format!("Aws{}", &t[3..]);
    }
    let service = id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(1));
    match service {
        Some("iam") if id.contains(":user/") => "AwsIamUser".into(),
        Some("iam") if id.contains(":role/") => "AwsIamRole".into(),
        Some("iam") if id.contains(":policy/") => "AwsIamPolicy".into(),
        Some("sts") if id.contains(":assumed-role/") => "AwsIamRole".into(),
        Some("s3") => "AwsS3Bucket".into(),
        Some("kms") => "AwsKmsKey".into(),
        Some("cloudtrail") => "AwsCloudTrailTrail".into(),
        Some("ec2") if id.contains(":security-group/") => "AwsEc2SecurityGroup".into(),
        Some("ec2") if id.contains(":vpc/") => "AwsEc2Vpc".into(),
        Some("ec2") if id.contains(":network-acl/") => "AwsEc2NetworkAcl".into(),
        _ => "Other".into(),
    }
}

#[cfg(test)]
mod tests;
