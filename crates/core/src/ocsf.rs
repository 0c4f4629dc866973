//! The OCSF 1.1.0 event model that the source mappers fill.
//!
//! One struct covers every class muster writes: each mapper sets only the attributes
//! its class defines, and every `Option` left `None` is omitted (the strict validator
//! treats `null` as an error). Strings borrow from the input record where they can.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

pub type Str<'a> = Cow<'a, str>;

pub const OCSF_VERSION: &str = "1.1.0";

/// Classes muster writes, with their captions. `category_uid = class_uid / 1000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    SecurityFinding,
    ComplianceFinding,
    DetectionFinding,
    AccountChange,
    Authentication,
    NetworkActivity,
    HttpActivity,
    DnsActivity,
    ApiActivity,
}

impl Class {
    pub const fn uid(self) -> u32 {
        match self {
            Class::SecurityFinding => 2001,
            Class::ComplianceFinding => 2003,
            Class::DetectionFinding => 2004,
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::NetworkActivity => 4001,
            Class::HttpActivity => 4002,
            Class::DnsActivity => 4003,
            Class::ApiActivity => 6003,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Class::SecurityFinding => "Security Finding",
            Class::ComplianceFinding => "Compliance Finding",
            Class::DetectionFinding => "Detection Finding",
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::NetworkActivity => "Network Activity",
            Class::HttpActivity => "HTTP Activity",
            Class::DnsActivity => "DNS Activity",
            Class::ApiActivity => "API Activity",
        }
    }

    pub const fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    pub const fn category_name(self) -> &'static str {
        match self.category_uid() {
            2 => "Findings",
            3 => "Identity & Access Management",
            4 => "Network Activity",
            6 => "Application Activity",
            _ => "Other",
        }
    }
}

/// severity_id values of OCSF 1.1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Unknown = 0,
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
    Critical = 5,
    Fatal = 6,
    Other = 99,
}

impl Severity {
    pub const fn caption(self) -> &'static str {
        match self {
            Severity::Unknown => "Unknown",
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
            Severity::Fatal => "Fatal",
            Severity::Other => "Other",
        }
    }
}

/// status_id of the base event: 0 Unknown, 1 Success, 2 Failure, 99 Other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unknown = 0,
    Success = 1,
    Failure = 2,
}

impl Status {
    pub const fn caption(self) -> &'static str {
        match self {
            Status::Unknown => "Unknown",
            Status::Success => "Success",
            Status::Failure => "Failure",
        }
    }
}

/// One OCSF event. Field order follows the schema's reading order, which keeps the
/// lake files pleasant to read.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub activity_id: u32,
    pub activity_name: Str<'a>,
    pub category_uid: u32,
    pub category_name: &'static str,
    pub class_uid: u32,
    pub class_name: &'static str,
    pub type_uid: u64,
    pub type_name: TypeName<'a>,
    pub severity_id: u32,
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Str<'a>>,
    /// An analyst's note on a finding (finding classes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<Str<'a>>,
    /// How many times a finding's activity was seen (finding classes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// 0-100, finding classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_score: Option<u32>,
    /// Epoch milliseconds, UTC.
    pub time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    pub metadata: Metadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<Cloud<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor<'a>>,
    /// The user an Authentication or Account Change event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mfa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_protocol_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logon_type_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logon_type: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<ConnectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_response: Option<HttpResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls<'a>>,
    /// Needs the `load_balancer` profile in `metadata.profiles`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer<'a>>,
    /// The rule that decided a request (`security_control` profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_rule: Option<FirewallRule<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<DnsQuery<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<DnsAnswer<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<Str<'a>>,
    /// What a finding (2003/2004) is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding_info: Option<FindingInfo<'a>>,
    /// The control check of a Compliance Finding (2003).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compliance: Option<Compliance<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation<'a>>,
    /// Compliance Finding (2003) names one `resource`; the other classes a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Resource<'a>>>,
    /// The policy attached or detached in an Account Change event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_data: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Unmapped::is_empty")]
    pub unmapped: Unmapped<'a>,
}

impl<'a> Event<'a> {
    /// A new event of `class` with `activity_id`/`activity_name`, the derived uids and
    /// captions filled in, and severity Informational.
    pub fn new(
        class: Class,
        activity_id: u32,
        activity_name: impl Into<Str<'a>>,
        time: i64,
        metadata: Metadata<'a>,
    ) -> Self {
        let activity_name = activity_name.into();
        let type_activity = activity_name.clone();
        let type_uid = class.uid() as u64 * 100 + activity_id as u64;
        Event {
            activity_id,
            activity_name,
            category_uid: class.category_uid(),
            category_name: class.category_name(),
            class_uid: class.uid(),
            class_name: class.name(),
            type_uid,
            type_name: TypeName {
                class: class.name(),
                activity: type_activity,
            },
            severity_id: Severity::Informational as u32,
            severity: Severity::Informational.caption(),
            status_id: None,
            status: None,
            status_code: None,
            status_detail: None,
            action_id: None,
            action: None,
            disposition_id: None,
            disposition: None,
            message: None,
            comment: None,
            count: None,
            confidence_score: None,
            time,
            start_time: None,
            end_time: None,
            duration: None,
            metadata,
            cloud: None,
            actor: None,
            user: None,
            is_mfa: None,
            auth_protocol_id: None,
            auth_protocol: None,
            logon_type_id: None,
            logon_type: None,
            service: None,
            api: None,
            src_endpoint: None,
            dst_endpoint: None,
            connection_info: None,
            traffic: None,
            http_request: None,
            http_response: None,
            tls: None,
            load_balancer: None,
            firewall_rule: None,
            query: None,
            answers: None,
            rcode_id: None,
            rcode: None,
            finding_info: None,
            compliance: None,
            remediation: None,
            resource: None,
            resources: None,
            policy: None,
            raw_data: None,
            unmapped: Unmapped::default(),
        }
    }

    pub fn set_severity(&mut self, severity: Severity) {
        self.severity_id = severity as u32;
        self.severity = severity.caption();
    }

    pub fn set_status(&mut self, status: Status) {
        self.status_id = Some(status as u32);
        self.status = Some(Cow::Borrowed(status.caption()));
    }

    /// The account the event belongs to, for partitioning.
    pub fn account_uid(&self) -> Option<&str> {
        self.cloud
            .as_ref()?
            .account
            .as_ref()
            .map(|a| a.uid.as_ref())
    }

    /// The region the event belongs to, for partitioning.
    pub fn region(&self) -> Option<&str> {
        self.cloud.as_ref()?.region.as_deref()
    }
}

/// `type_name`, `<class_name>: <activity_name>`, put together only when written: a
/// `String` built per event was one of the two allocations left on the hot path.
#[derive(Debug, Clone)]
pub struct TypeName<'a> {
    pub class: &'static str,
    pub activity: Str<'a>,
}

impl Serialize for TypeName<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}: {}", self.class, self.activity))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata<'a> {
    pub version: &'static str,
    pub product: Product<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_code: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_name: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_provider: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_version: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_time: Option<Str<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub profiles: &'static [&'static str],
}

impl<'a> Metadata<'a> {
    pub fn new(product: Product<'a>) -> Self {
        Metadata {
            version: OCSF_VERSION,
            product,
            uid: None,
            correlation_uid: None,
            event_code: None,
            log_name: None,
            log_provider: None,
            log_version: None,
            original_time: None,
            profiles: &[],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Product<'a> {
    pub name: Str<'a>,
    /// "AWS" but for findings that Security Hub took from other companies' products.
    pub vendor_name: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<Feature<'a>>,
}

impl<'a> Product<'a> {
    pub fn aws(name: impl Into<Str<'a>>) -> Self {
        Product {
            name: name.into(),
            vendor_name: Cow::Borrowed("AWS"),
            uid: None,
            version: None,
            feature: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Feature<'a> {
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cloud<'a> {
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<Str<'a>>,
}

impl<'a> Cloud<'a> {
    pub fn aws(region: Option<Str<'a>>, account: Option<Str<'a>>) -> Self {
        Cloud {
            provider: "AWS",
            region,
            account: account.map(Account::aws),
            zone: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account<'a> {
    pub uid: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    pub type_id: u32,
    #[serde(rename = "type")]
    pub type_: &'static str,
}

impl<'a> Account<'a> {
    pub fn aws(uid: Str<'a>) -> Self {
        Account {
            uid,
            name: None,
            type_id: 10,
            type_: "AWS Account",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Actor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<Session<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp: Option<Idp<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Idp<'a> {
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid_alt: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_id: Option<u32>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account<'a>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Session<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mfa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_uid: Option<Str<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service<'a> {
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Api<'a> {
    pub operation: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<ApiRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<ApiResponse<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiRequest<'a> {
    pub uid: Str<'a>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Endpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svc_name: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intermediate_ips: Option<Vec<Str<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location<'a>>,
}

/// OCSF `location`; the sources only ever tell the country.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Location<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_num: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_ver_id: Option<u32>,
    /// Caption of `protocol_ver_id`, or the source's label when that is 99 Other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_ver: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<&'static str>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_headers: Option<Vec<HttpHeader<'a>>>,
}

/// OCSF `http_header` (both required).
#[derive(Debug, Clone, Serialize)]
pub struct HttpHeader<'a> {
    pub name: Str<'a>,
    pub value: Str<'a>,
}

/// OCSF `firewall_rule`: at least one of `name`, `uid`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirewallRule<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<Str<'a>>,
}

/// OCSF `dns_query` (`hostname` is required).
#[derive(Debug, Clone, Serialize)]
pub struct DnsQuery<'a> {
    pub hostname: Str<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<Str<'a>>,
}

/// OCSF `dns_answer` (`rdata` is required).
#[derive(Debug, Clone, Serialize)]
pub struct DnsAnswer<'a> {
    pub rdata: Str<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<Str<'a>>,
}

/// OCSF `url`: the whole string and whichever parts could be read from it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Url<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_string: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_string: Option<Str<'a>>,
}

/// OCSF `http_response` (`code` is required).
#[derive(Debug, Clone, Serialize)]
pub struct HttpResponse<'a> {
    pub code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Str<'a>>,
}

/// OCSF `tls` (`version` is required).
#[derive(Debug, Clone, Serialize)]
pub struct Tls<'a> {
    pub version: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<Str<'a>>,
}

/// OCSF `load_balancer` (profile `load_balancer`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadBalancer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_endpoint: Option<Endpoint<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<Str<'a>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Resource<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<ResourceOwner<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Str<'a>>,
    /// `aws`, `aws-cn`, `aws-us-gov` (`cloud` profile, like `region`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_partition: Option<Str<'a>>,
    /// The source's own description of the resource, verbatim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value<'a>>,
}

/// OCSF `finding_info` (`uid` and `title` are required).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FindingInfo<'a> {
    pub uid: Str<'a>,
    pub title: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<Str<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytic: Option<Analytic<'a>>,
}

/// OCSF `analytic`: what produced a finding (at least one of `name`, `uid`).
#[derive(Debug, Clone, Serialize)]
pub struct Analytic<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
    /// 0 Unknown, 1 Rule, 2 Behavioral, 3 Statistical, 4 Learning (ML/DL), 99 Other.
    pub type_id: u32,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<&'static str>,
}

/// OCSF `compliance` (`standards` is required).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Compliance<'a> {
    pub standards: Vec<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Vec<Str<'a>>>,
    /// 0 Unknown, 1 Pass, 2 Warning, 3 Fail, 99 Other.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<Str<'a>>,
}

/// OCSF `remediation` (`desc` is required).
#[derive(Debug, Clone, Serialize)]
pub struct Remediation<'a> {
    pub desc: Str<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<Str<'a>>>,
}

/// An IAM policy (OCSF `policy`: at least one of `name`, `uid`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Policy<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Str<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Str<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceOwner<'a> {
    pub account: Account<'a>,
}

/// A value kept verbatim in `unmapped`.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    /// JSON copied byte for byte from the input record.
    Raw(&'a RawValue),
    Str(Str<'a>),
    Int(i64),
    Bool(bool),
    /// A nested object of values, for the leftovers of a source object whose other
    /// fields were mapped.
    Map(Unmapped<'a>),
    /// A source value rebuilt rather than copied (WAF's nested `null`s removed).
    Json(serde_json::Value),
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // A pretty-printed source keeps its line breaks inside raw values, and one
            // line break inside an event splits its JSON Lines record in two. Only
            // whitespace can hold a literal newline in JSON, so dropping the
            // whitespace outside strings keeps the value and mends the line.
            Value::Raw(raw) if memchr::memchr2(b'\n', b'\r', raw.get().as_bytes()).is_some() => {
                match RawValue::from_string(minify_json(raw.get())) {
                    Ok(compact) => compact.serialize(s),
                    Err(_) => raw.serialize(s),
                }
            }
            Value::Raw(raw) => raw.serialize(s),
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Map(v) => v.serialize(s),
            Value::Json(v) => v.serialize(s),
        }
    }
}

/// `json` (valid JSON) without the whitespace between its tokens.
fn minify_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// Source fields with no OCSF home, kept in the order they were met. A map of
/// borrowed pairs rather than a `serde_json::Value` tree: building trees per record
/// is where a normaliser's time goes.
#[derive(Debug, Clone, Default)]
pub struct Unmapped<'a>(pub Vec<(Str<'a>, Value<'a>)>);

impl<'a> Unmapped<'a> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps `raw` under `key`, unless it is JSON `null` (which says nothing and the
    /// strict validators reject).
    pub fn raw(&mut self, key: impl Into<Str<'a>>, raw: &'a RawValue) {
        if raw.get() != "null" {
            self.0.push((key.into(), Value::Raw(raw)));
        }
    }

    pub fn str(&mut self, key: impl Into<Str<'a>>, value: impl Into<Str<'a>>) {
        self.0.push((key.into(), Value::Str(value.into())));
    }

    pub fn int(&mut self, key: impl Into<Str<'a>>, value: i64) {
        self.0.push((key.into(), Value::Int(value)));
    }

    pub fn bool(&mut self, key: impl Into<Str<'a>>, value: bool) {
        self.0.push((key.into(), Value::Bool(value)));
    }
}

impl Serialize for Unmapped<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// OCSF HTTP Activity (4002) activity for a request method: (activity_id, caption).
/// `None` (no request line) is 0 Unknown; a method OCSF does not list is 99 Other,
/// and callers may name the activity after the method itself.
pub fn http_activity(method: Option<&str>) -> (u32, &'static str) {
    let Some(method) = method else {
        return (0, "Unknown");
    };
    const METHODS: [(&str, u32, &str); 8] = [
        ("CONNECT", 1, "Connect"),
        ("DELETE", 2, "Delete"),
        ("GET", 3, "Get"),
        ("HEAD", 4, "Head"),
        ("OPTIONS", 5, "Options"),
        ("POST", 6, "Post"),
        ("PUT", 7, "Put"),
        ("TRACE", 8, "Trace"),
    ];
    METHODS
        .iter()
        .find(|(m, _, _)| m.eq_ignore_ascii_case(method))
        .map_or((99, "Other"), |&(_, id, name)| (id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uids_follow_the_schema_rules() {
        for class in [
            Class::AccountChange,
            Class::Authentication,
            Class::NetworkActivity,
            Class::ApiActivity,
        ] {
            let e = Event::new(class, 2, "Read", 1, Metadata::new(Product::aws("x")));
            assert_eq!(e.type_uid, class.uid() as u64 * 100 + 2);
            assert_eq!(e.category_uid, class.uid() / 1000);
        }
    }

    #[test]
    fn raw_values_from_pretty_printed_sources_stay_on_one_line() {
        let cases = [
            (
                "{\n  \"a\": [1,\r\n 2],\n  \"b\": \"x y\\n\\\" }\"\n}",
                "{\"a\":[1,2],\"b\":\"x y\\n\\\" }\"}",
            ),
            ("[\n\t\"  spaced  \"\n]", "[\"  spaced  \"]"),
            ("{\"compact\": true}", "{\"compact\": true}"),
        ];
        for (raw, want) in cases {
            let raw: Box<RawValue> = RawValue::from_string(raw.into()).unwrap();
            let mut e = Event::new(
                Class::ApiActivity,
                99,
                "Other",
                5,
                Metadata::new(Product::aws("CloudTrail")),
            );
            e.unmapped.raw("kept", &raw);
            let json = serde_json::to_string(&e).unwrap();
            assert!(!json.contains('\n') && !json.contains('\r'), "{json}");
            assert!(json.contains(&format!("\"kept\":{want}")), "{json}");
            let back: serde_json::Value = serde_json::from_str(&json).unwrap();
            let original: serde_json::Value = serde_json::from_str(raw.get()).unwrap();
            assert_eq!(back["unmapped"]["kept"], original);
        }
    }

    #[test]
    fn none_and_null_are_omitted() {
        let mut e = Event::new(
            Class::ApiActivity,
            99,
            "Other",
            5,
            Metadata::new(Product::aws("CloudTrail")),
        );
        let null: Box<RawValue> = RawValue::from_string("null".into()).unwrap();
        e.unmapped.raw("gone", &null);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("null"), "{json}");
        assert!(!json.contains("unmapped"), "{json}");
    }
}
