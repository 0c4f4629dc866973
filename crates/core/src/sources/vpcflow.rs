//! VPC Flow Logs (and Transit Gateway flow logs) delivered to S3 as text, mapped to
//! OCSF 4001 Network Activity.
//!
//! A file is a header line of field names, then one space-separated record a line in
//! that order: the default version 2 format, or a custom format with any of the v3–v8
//! fields in any order (`-` where a field does not apply). The header is read once
//! into a column table; each row is then split in place and its values borrowed from
//! the line, so a row costs no allocation until the event is built.
//!
//! Mapping decisions worth knowing:
//! - ACCEPT → activity 6 Traffic, action Allowed, disposition Allowed; REJECT →
//!   activity 5 Refuse, action Denied, disposition Blocked. Rows without an action
//!   (Transit Gateway logs have none) are Traffic without action/disposition, and so
//!   without the `security_control` profile, which would require an `action_id`.
//! - The flow log describes traffic seen at one network interface. Its ids
//!   (interface, VPC, subnet, instance) go on the endpoint that *is* that interface:
//!   the destination for `flow-direction` ingress, the source for egress and, by
//!   choice, when a row does not say (v2 has no direction).
//! - `pkt-srcaddr`/`pkt-dstaddr` go to the endpoint's `intermediate_ips` when they
//!   differ from `srcaddr`/`dstaddr` (NAT, load balancers); equal ones add nothing.
//! - `pkt-*-aws-service` → the endpoint's `svc_name`; `traffic-path` → `boundary_id`
//!   (OCSF's boundary enum is AWS's traffic-path list shifted by 3); `type` →
//!   `protocol_ver_id` (or, without that column, the address family of the row).
//! - `raw_data` is not written: it would double the size of the lake for text that the
//!   source object keeps anyway.
//! - Everything without an OCSF home (`sublocation-*`, `ecs-*`, `tgw-id`, packet-loss
//!   counters, fields AWS adds later, ...) is kept in `unmapped` under its own name.
//! - NODATA and SKIPDATA rows describe the logging, not traffic: they are counted as
//!   skipped, not written.

use super::{Context, Emit, Rejected};
use crate::error::{Error, Location, Result};
use crate::framing::LineReader;
use crate::ocsf::{
    Class, Cloud, ConnectionInfo, Endpoint, Event, Feature, Metadata, Product, Str, Traffic,
};
use std::borrow::Cow;
use std::io::BufRead;

/// Longest line when the context leaves it unset: a row with every field AWS offers is
/// well under 2 KB.
const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// OCSF's timestamp range, in epoch seconds: [2000-01-01, 2100-01-01). A value outside
/// it is not a flow log time but a corrupt field.
const MIN_EPOCH_SECS: u64 = 946_684_800;
const MAX_EPOCH_SECS: u64 = 4_102_444_800;

/// Fields that have an OCSF home. Their values are collected per row into a fixed
/// array indexed by this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Version,
    AccountId,
    InterfaceId,
    SrcAddr,
    DstAddr,
    SrcPort,
    DstPort,
    Protocol,
    Packets,
    Bytes,
    Start,
    End,
    Action,
    LogStatus,
    VpcId,
    SubnetId,
    InstanceId,
    TcpFlags,
    Type,
    PktSrcAddr,
    PktDstAddr,
    Region,
    AzId,
    PktSrcAwsService,
    PktDstAwsService,
    FlowDirection,
    TrafficPath,
    TgwSrcVpcId,
    TgwDstVpcId,
    TgwSrcSubnetId,
    TgwDstSubnetId,
    TgwSrcEni,
    TgwDstEni,
    TgwSrcAzId,
    TgwDstAzId,
}

const SLOTS: usize = Slot::TgwDstAzId as usize + 1;

const SLOT_NAMES: [(&str, Slot); SLOTS] = [
    ("version", Slot::Version),
    ("account-id", Slot::AccountId),
    ("interface-id", Slot::InterfaceId),
    ("srcaddr", Slot::SrcAddr),
    ("dstaddr", Slot::DstAddr),
    ("srcport", Slot::SrcPort),
    ("dstport", Slot::DstPort),
    ("protocol", Slot::Protocol),
    ("packets", Slot::Packets),
    ("bytes", Slot::Bytes),
    ("start", Slot::Start),
    ("end", Slot::End),
    ("action", Slot::Action),
    ("log-status", Slot::LogStatus),
    ("vpc-id", Slot::VpcId),
    ("subnet-id", Slot::SubnetId),
    ("instance-id", Slot::InstanceId),
    ("tcp-flags", Slot::TcpFlags),
    ("type", Slot::Type),
    ("pkt-srcaddr", Slot::PktSrcAddr),
    ("pkt-dstaddr", Slot::PktDstAddr),
    ("region", Slot::Region),
    ("az-id", Slot::AzId),
    ("pkt-src-aws-service", Slot::PktSrcAwsService),
    ("pkt-dst-aws-service", Slot::PktDstAwsService),
    ("flow-direction", Slot::FlowDirection),
    ("traffic-path", Slot::TrafficPath),
    ("tgw-src-vpc-id", Slot::TgwSrcVpcId),
    ("tgw-dst-vpc-id", Slot::TgwDstVpcId),
    ("tgw-src-subnet-id", Slot::TgwSrcSubnetId),
    ("tgw-dst-subnet-id", Slot::TgwDstSubnetId),
    ("tgw-src-eni", Slot::TgwSrcEni),
    ("tgw-dst-eni", Slot::TgwDstEni),
    ("tgw-src-az-id", Slot::TgwSrcAzId),
    ("tgw-dst-az-id", Slot::TgwDstAzId),
];

impl Slot {
    const fn name(self) -> &'static str {
        SLOT_NAMES[self as usize].0
    }
}

/// Documented fields with no OCSF home: kept in `unmapped`. Names not listed anywhere
/// (fields AWS adds later) are kept the same way, as text.
const TEXT_FIELDS: [&str; 19] = [
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "sublocation-type",
    "sublocation-id",
    "reject-reason",
    "resource-type",
    "tgw-id",
    "tgw-attachment-id",
    "tgw-pair-attachment-id",
    "tgw-src-vpc-account-id",
    "tgw-dst-vpc-account-id",
];

/// Documented counters with no OCSF home: kept in `unmapped` as integers.
const COUNT_FIELDS: [&str; 4] = [
    "packets-lost-no-route",
    "packets-lost-blackhole",
    "packets-lost-mtu-exceeded",
    "packets-lost-ttl-expired",
];

/// The default (version 2) format, for files that arrive without a header line.
const DEFAULT_V2: &str =
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Slot(Slot),
    /// Kept in `unmapped` as text.
    Text,
    /// Kept in `unmapped` as an integer.
    Count,
}

/// What a header name is; `None` for a name AWS does not document (kept as text).
fn classify(name: &str) -> Option<Kind> {
    if let Some((_, slot)) = SLOT_NAMES.iter().find(|(n, _)| *n == name) {
        return Some(Kind::Slot(*slot));
    }
    if COUNT_FIELDS.contains(&name) {
        return Some(Kind::Count);
    }
    if TEXT_FIELDS.contains(&name) {
        return Some(Kind::Text);
    }
    None
}

/// Field names are lowercase words joined by hyphens; no value AWS writes in a row of
/// a format whose fields are all documented names looks like a line of them.
fn is_name_shaped(token: &str) -> bool {
    let b = token.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The values of a line, split on spaces. Runs of spaces count as one separator, so a
/// stray double space does not shift every later column.
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    field_spans(line).filter_map(|(start, end)| line.get(start..end))
}

/// The byte ranges of the values of a line.
fn field_spans(line: &str) -> Spans<'_> {
    Spans {
        line: line.as_bytes(),
        next_word: 0,
        base: 0,
        mask: 0,
        start: 0,
        finished: false,
    }
}

/// Finds the spaces of a line eight bytes at a time (SWAR): splitting is the largest
/// cost of reading a flow log, a byte-at-a-time loop mispredicts once a token, and a
/// vectorised search costs more to set up than a token is long. Splitting on an ASCII
/// space always leaves UTF-8 boundaries intact.
struct Spans<'a> {
    line: &'a [u8],
    /// Offset of the next word to load.
    next_word: usize,
    /// Offset of the word whose spaces are in `mask`.
    base: usize,
    /// The high bit of each space byte of that word not yet consumed.
    mask: u64,
    /// Where the current token starts.
    start: usize,
    finished: bool,
}

impl Spans<'_> {
    /// The high bit of every byte of `word` that is a space, and of no other byte.
    #[inline]
    fn spaces(word: u64) -> u64 {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        let x = word ^ 0x2020_2020_2020_2020;
        !((x & LOW7).wrapping_add(LOW7) | x | LOW7)
    }

    /// The offset of the next space.
    #[inline]
    fn next_space(&mut self) -> Option<usize> {
        loop {
            if self.mask != 0 {
                let at = self.base + (self.mask.trailing_zeros() / 8) as usize;
                self.mask &= self.mask - 1;
                return Some(at);
            }
            let at = self.next_word;
            let word = match self.line.get(at..at + 8) {
                Some(full) => <[u8; 8]>::try_from(full).ok()?,
                None => {
                    let tail = self.line.get(at..)?;
                    if tail.is_empty() {
                        return None;
                    }
                    let mut word = [0u8; 8];
                    word[..tail.len()].copy_from_slice(tail);
                    word
                }
            };
            self.base = at;
            self.next_word = at + 8;
            self.mask = Self::spaces(u64::from_le_bytes(word));
        }
    }
}

impl Iterator for Spans<'_> {
    type Item = (usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        while !self.finished {
            let end = match self.next_space() {
                Some(at) => at,
                None => {
                    self.finished = true;
                    self.line.len()
                }
            };
            let start = std::mem::replace(&mut self.start, end + 1);
            if end > start {
                return Some((start, end));
            }
        }
        None
    }
}

/// Whether `line` is a flow log header: field names only, and (for more than one)
/// at least two that AWS documents. Used by the content sniffer and to notice a new
/// header inside concatenated files.
pub fn looks_like_header(line: &str) -> bool {
    let line = line
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n']);
    let (mut names, mut known) = (0usize, 0usize);
    for token in tokens(line) {
        if !is_name_shaped(token) {
            return false;
        }
        names += 1;
        if classify(token).is_some() {
            known += 1;
        }
    }
    names > 0 && known >= names.min(2)
}

/// A default-format row without a header: version 2 and the 14 fields of that format.
fn looks_like_v2_row(line: &str) -> bool {
    line.starts_with("2 ") && tokens(line).count() == 14
}

struct Column {
    name: Box<str>,
    kind: Kind,
}

/// The column table built once from a header line.
struct Format {
    columns: Vec<Column>,
    /// The columns kept in `unmapped`, in header order.
    unmapped: Vec<usize>,
}

impl Format {
    fn parse(header: &str) -> std::result::Result<Format, String> {
        let mut columns: Vec<Column> = Vec::new();
        for name in tokens(header) {
            if columns.iter().any(|c| &*c.name == name) {
                return Err(format!("the header names field `{name}` twice"));
            }
            columns.push(Column {
                name: name.into(),
                kind: classify(name).unwrap_or(Kind::Text),
            });
        }
        if columns.is_empty() {
            return Err("the header names no fields".into());
        }
        let unmapped = (0..columns.len())
            .filter(|&i| !matches!(columns[i].kind, Kind::Slot(_)))
            .collect();
        Ok(Format { columns, unmapped })
    }
}

/// Why a row could not be mapped.
struct Bad<'h> {
    field: Option<&'h str>,
    reason: String,
}

impl<'h> Bad<'h> {
    fn new(field: &'h str, reason: impl Into<String>) -> Self {
        Bad {
            field: Some(field),
            reason: reason.into(),
        }
    }
}

/// Why a row produced no event: it could not be mapped, or the sink failed.
enum RowError<'h> {
    Bad(Bad<'h>),
    Sink(Error),
}

impl<'h> From<Bad<'h>> for RowError<'h> {
    fn from(bad: Bad<'h>) -> Self {
        RowError::Bad(bad)
    }
}

/// A value as it appears in a reason: quoted, and cut short if it is long.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    if value.len() <= MAX {
        return format!("{value:?}");
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &value[..end])
}

fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    // Up to 19 digits cannot overflow, which spares the hot path the checks.
    if b.len() <= 19 {
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + u64::from(d);
        }
        return Some(v);
    }
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

fn number<'h>(slot: Slot, value: &str, max: u64) -> std::result::Result<u64, Bad<'h>> {
    match parse_u64(value) {
        Some(v) if v <= max => Ok(v),
        Some(v) => Err(Bad::new(
            slot.name(),
            format!("{v} is out of range (at most {max})"),
        )),
        None => Err(Bad::new(
            slot.name(),
            format!("not a non-negative integer: {}", shown(value)),
        )),
    }
}

fn epoch_ms<'h>(slot: Slot, value: &str) -> std::result::Result<i64, Bad<'h>> {
    match parse_u64(value) {
        Some(s) if (MIN_EPOCH_SECS..MAX_EPOCH_SECS).contains(&s) => Ok(s as i64 * 1000),
        Some(s) => Err(Bad::new(
            slot.name(),
            format!("{s} is not a time in epoch seconds between 2000 and 2100"),
        )),
        None => Err(Bad::new(
            slot.name(),
            format!("not a time in epoch seconds: {}", shown(value)),
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// Dotted-quad IPv4 as `std::net::Ipv4Addr` accepts it (four decimal parts of 0–255,
/// no leading zeros), checked without building an address: the text is what goes out.
fn is_ipv4(b: &[u8]) -> bool {
    let mut i = 0;
    for part in 0..4 {
        if part > 0 {
            if b.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9) {
            if i - start == 3 {
                return false;
            }
            v = v * 10 + u32::from(d);
            i += 1;
        }
        let n = i - start;
        if n == 0 || v > 255 || (n > 1 && b[start] == b'0') {
            return false;
        }
    }
    i == b.len()
}

fn ip<'h>(slot: Slot, value: &str) -> std::result::Result<Family, Bad<'h>> {
    if is_ipv4(value.as_bytes()) {
        return Ok(Family::V4);
    }
    match value.parse::<std::net::Ipv6Addr>() {
        Ok(_) => Ok(Family::V6),
        Err(_) => Err(Bad::new(
            slot.name(),
            format!("not an IP address: {}", shown(value)),
        )),
    }
}

/// IANA protocol keywords (lowercase), for the numbers that have one.
fn protocol_name(n: u8) -> Option<&'static str> {
    Some(match n {
        0 => "hopopt",
        1 => "icmp",
        2 => "igmp",
        3 => "ggp",
        4 => "ipv4",
        5 => "st",
        6 => "tcp",
        7 => "cbt",
        8 => "egp",
        9 => "igp",
        10 => "bbn-rcc-mon",
        11 => "nvp-ii",
        12 => "pup",
        14 => "emcon",
        15 => "xnet",
        16 => "chaos",
        17 => "udp",
        18 => "mux",
        19 => "dcn-meas",
        20 => "hmp",
        21 => "prm",
        22 => "xns-idp",
        23 => "trunk-1",
        24 => "trunk-2",
        25 => "leaf-1",
        26 => "leaf-2",
        27 => "rdp",
        28 => "irtp",
        29 => "iso-tp4",
        30 => "netblt",
        31 => "mfe-nsp",
        32 => "merit-inp",
        33 => "dccp",
        34 => "3pc",
        35 => "idpr",
        36 => "xtp",
        37 => "ddp",
        38 => "idpr-cmtp",
        39 => "tp++",
        40 => "il",
        41 => "ipv6",
        42 => "sdrp",
        43 => "ipv6-route",
        44 => "ipv6-frag",
        45 => "idrp",
        46 => "rsvp",
        47 => "gre",
        48 => "dsr",
        49 => "bna",
        50 => "esp",
        51 => "ah",
        52 => "i-nlsp",
        54 => "narp",
        56 => "tlsp",
        57 => "skip",
        58 => "ipv6-icmp",
        59 => "ipv6-nonxt",
        60 => "ipv6-opts",
        62 => "cftp",
        64 => "sat-expak",
        65 => "kryptolan",
        66 => "rvd",
        67 => "ippc",
        69 => "sat-mon",
        70 => "visa",
        71 => "ipcv",
        72 => "cpnx",
        73 => "cphb",
        74 => "wsn",
        75 => "pvp",
        76 => "br-sat-mon",
        77 => "sun-nd",
        78 => "wb-mon",
        79 => "wb-expak",
        80 => "iso-ip",
        81 => "vmtp",
        82 => "secure-vmtp",
        83 => "vines",
        85 => "nsfnet-igp",
        86 => "dgp",
        87 => "tcf",
        88 => "eigrp",
        89 => "ospfigp",
        90 => "sprite-rpc",
        91 => "larp",
        92 => "mtp",
        93 => "ax.25",
        94 => "ipip",
        96 => "scc-sp",
        97 => "etherip",
        98 => "encap",
        100 => "gmtp",
        101 => "ifmp",
        102 => "pnni",
        103 => "pim",
        104 => "aris",
        105 => "scps",
        106 => "qnx",
        107 => "a/n",
        108 => "ipcomp",
        109 => "snp",
        110 => "compaq-peer",
        111 => "ipx-in-ip",
        112 => "vrrp",
        113 => "pgm",
        115 => "l2tp",
        116 => "ddx",
        117 => "iatp",
        118 => "stp",
        119 => "srp",
        120 => "uti",
        121 => "smp",
        123 => "ptp",
        125 => "fire",
        126 => "crtp",
        127 => "crudp",
        128 => "sscopmce",
        129 => "iplt",
        130 => "sps",
        131 => "pipe",
        132 => "sctp",
        133 => "fc",
        134 => "rsvp-e2e-ignore",
        136 => "udplite",
        137 => "mpls-in-ip",
        138 => "manet",
        139 => "hip",
        140 => "shim6",
        141 => "wesp",
        142 => "rohc",
        143 => "ethernet",
        _ => return None,
    })
}

/// OCSF `boundary_id` and caption for an AWS `traffic-path` value: OCSF 1.1.0 lists
/// AWS's eight paths as ids 4 to 11, in AWS's order.
fn boundary(path: u64) -> (u32, &'static str) {
    match path {
        1 => (4, "Same VPC"),
        2 => (5, "Internet/VPC Gateway"),
        3 => (6, "Virtual Private Gateway"),
        4 => (7, "Intra-region VPC"),
        5 => (8, "Inter-region VPC"),
        6 => (9, "Local Gateway"),
        7 => (10, "Gateway VPC"),
        8 => (11, "Internet Gateway"),
        _ => (99, "Other"),
    }
}

fn endpoint_is_empty(e: &Endpoint<'_>) -> bool {
    e.ip.is_none()
        && e.uid.is_none()
        && e.hostname.is_none()
        && e.svc_name.is_none()
        && e.instance_uid.is_none()
        && e.interface_uid.is_none()
}

fn set<'a>(target: &mut Option<Str<'a>>, value: Option<&'a str>) {
    if target.is_none() {
        *target = value.map(Cow::Borrowed);
    }
}

/// The values of a row by slot (`None` for `-` and for fields the format lacks).
type Values<'a> = [Option<&'a str>; SLOTS];

/// Splits a row into its slots, and the byte range of every field into `spans` (for
/// the columns kept in `unmapped`), checking only that it has the header's field count.
fn split_row<'a>(
    format: &Format,
    line: &'a str,
    spans: &mut Vec<(usize, usize)>,
) -> std::result::Result<Values<'a>, Bad<'a>> {
    let mut v: Values<'a> = [None; SLOTS];
    spans.clear();
    for (start, end) in field_spans(line) {
        if let Some(Column {
            kind: Kind::Slot(slot),
            ..
        }) = format.columns.get(spans.len())
        {
            let token = line.get(start..end).filter(|t| *t != "-");
            v[*slot as usize] = token;
        }
        spans.push((start, end));
    }
    let count = spans.len();
    if count != format.columns.len() {
        return Err(Bad {
            field: None,
            reason: format!(
                "{count} fields where the header names {}",
                format.columns.len()
            ),
        });
    }
    Ok(v)
}

/// Rows that report on the logging rather than on traffic.
fn skip_reason(v: &Values<'_>) -> Option<&'static str> {
    match v[Slot::LogStatus as usize] {
        Some("NODATA") => Some("nodata"),
        Some("SKIPDATA") => Some("skipdata"),
        _ => None,
    }
}

/// Maps the values of one row to an event and sends it to `out`. The event is built
/// where it is sent from rather than returned: it is a few KB, and every move of it
/// is a copy that costs as much as reading a short row.
fn map_row<'a>(
    format: &'a Format,
    line: &'a str,
    v: &Values<'a>,
    spans: &[(usize, usize)],
    ctx: &'a Context,
    out: &mut dyn Emit,
) -> std::result::Result<(), RowError<'a>> {
    let get = |slot: Slot| v[slot as usize];

    let allowed = match get(Slot::Action) {
        Some("ACCEPT") => Some(true),
        Some("REJECT") => Some(false),
        None => None,
        Some(other) => {
            return Err(Bad::new(
                Slot::Action.name(),
                format!("expected ACCEPT or REJECT, found {}", shown(other)),
            )
            .into())
        }
    };

    let start = get(Slot::Start)
        .map(|s| epoch_ms(Slot::Start, s))
        .transpose()?;
    let end = get(Slot::End).map(|s| epoch_ms(Slot::End, s)).transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            return Err(Bad::new(
                Slot::End.name(),
                format!("end {} is before start {}", e / 1000, s / 1000),
            )
            .into());
        }
    }
    let Some(time) = end.or(start) else {
        return Err(Bad::new(
            Slot::End.name(),
            "the row has neither an end nor a start time",
        )
        .into());
    };

    if let Some(version) = get(Slot::Version) {
        number(Slot::Version, version, u64::from(u32::MAX))?;
    }
    let src_port = get(Slot::SrcPort)
        .map(|p| number(Slot::SrcPort, p, 65_535))
        .transpose()?;
    let dst_port = get(Slot::DstPort)
        .map(|p| number(Slot::DstPort, p, 65_535))
        .transpose()?;
    let protocol = get(Slot::Protocol)
        .map(|p| number(Slot::Protocol, p, 255))
        .transpose()?;
    let tcp_flags = get(Slot::TcpFlags)
        .map(|f| number(Slot::TcpFlags, f, u64::from(u32::MAX)))
        .transpose()?;
    let packets = get(Slot::Packets)
        .map(|n| number(Slot::Packets, n, i64::MAX as u64))
        .transpose()?;
    let bytes = get(Slot::Bytes)
        .map(|n| number(Slot::Bytes, n, i64::MAX as u64))
        .transpose()?;
    let traffic_path = get(Slot::TrafficPath)
        .map(|n| number(Slot::TrafficPath, n, u64::from(u32::MAX)))
        .transpose()?;
    let src_ip = get(Slot::SrcAddr)
        .map(|a| ip(Slot::SrcAddr, a))
        .transpose()?;
    let dst_ip = get(Slot::DstAddr)
        .map(|a| ip(Slot::DstAddr, a))
        .transpose()?;
    // The packet-level addresses usually repeat the flow's: checked once is enough.
    for (pkt, flow) in [
        (Slot::PktSrcAddr, Slot::SrcAddr),
        (Slot::PktDstAddr, Slot::DstAddr),
    ] {
        if let Some(a) = get(pkt).filter(|a| Some(*a) != get(flow)) {
            ip(pkt, a)?;
        }
    }

    let mut src = Endpoint {
        ip: get(Slot::SrcAddr)
            .or(get(Slot::PktSrcAddr))
            .map(Cow::Borrowed),
        port: src_port.map(|p| p as u16),
        svc_name: get(Slot::PktSrcAwsService).map(Cow::Borrowed),
        interface_uid: get(Slot::TgwSrcEni).map(Cow::Borrowed),
        vpc_uid: get(Slot::TgwSrcVpcId).map(Cow::Borrowed),
        subnet_uid: get(Slot::TgwSrcSubnetId).map(Cow::Borrowed),
        zone: get(Slot::TgwSrcAzId).map(Cow::Borrowed),
        ..Endpoint::default()
    };
    let mut dst = Endpoint {
        ip: get(Slot::DstAddr)
            .or(get(Slot::PktDstAddr))
            .map(Cow::Borrowed),
        port: dst_port.map(|p| p as u16),
        svc_name: get(Slot::PktDstAwsService).map(Cow::Borrowed),
        interface_uid: get(Slot::TgwDstEni).map(Cow::Borrowed),
        vpc_uid: get(Slot::TgwDstVpcId).map(Cow::Borrowed),
        subnet_uid: get(Slot::TgwDstSubnetId).map(Cow::Borrowed),
        zone: get(Slot::TgwDstAzId).map(Cow::Borrowed),
        ..Endpoint::default()
    };
    if let (Some(pkt), Some(addr)) = (get(Slot::PktSrcAddr), get(Slot::SrcAddr)) {
        if pkt != addr {
            src.intermediate_ips = Some(vec![Cow::Borrowed(pkt)]);
        }
    }
    if let (Some(pkt), Some(addr)) = (get(Slot::PktDstAddr), get(Slot::DstAddr)) {
        if pkt != addr {
            dst.intermediate_ips = Some(vec![Cow::Borrowed(pkt)]);
        }
    }
    let direction = get(Slot::FlowDirection);
    let interface = if direction == Some("ingress") {
        &mut dst
    } else {
        &mut src
    };
    set(&mut interface.interface_uid, get(Slot::InterfaceId));
    set(&mut interface.vpc_uid, get(Slot::VpcId));
    set(&mut interface.subnet_uid, get(Slot::SubnetId));
    set(&mut interface.instance_uid, get(Slot::InstanceId));
    // Network Activity requires both endpoints and each needs something to name it:
    // a row that names neither side cannot be an event.
    for (endpoint, field, side) in [
        (&src, Slot::SrcAddr, "source"),
        (&dst, Slot::DstAddr, "destination"),
    ] {
        if endpoint_is_empty(endpoint) {
            let reason = format!("no {side} address or interface: OCSF requires the endpoint");
            return Err(Bad::new(field.name(), reason).into());
        }
    }

    let mut product = Product::aws("Amazon VPC");
    product.feature = Some(Feature {
        name: Cow::Borrowed("Flowlogs"),
    });
    let mut metadata = Metadata::new(product);
    metadata.log_version = get(Slot::Version).map(Cow::Borrowed);
    metadata.profiles = if allowed.is_some() {
        &["cloud", "security_control"]
    } else {
        &["cloud"]
    };

    let (activity_id, activity_name) = match allowed {
        Some(false) => (5, "Refuse"),
        _ => (6, "Traffic"),
    };
    let mut event = Event::new(
        Class::NetworkActivity,
        activity_id,
        activity_name,
        time,
        metadata,
    );
    match allowed {
        Some(true) => {
            event.action_id = Some(1);
            event.action = Some("Allowed");
            event.disposition_id = Some(1);
            event.disposition = Some("Allowed");
        }
        Some(false) => {
            event.action_id = Some(2);
            event.action = Some("Denied");
            event.disposition_id = Some(2);
            event.disposition = Some("Blocked");
        }
        None => {}
    }
    event.start_time = start;
    event.end_time = end;
    if let (Some(s), Some(e)) = (start, end) {
        event.duration = Some(e - s);
    }
    event.status_code = get(Slot::LogStatus).map(Cow::Borrowed);

    // "unknown" is what AWS writes for interfaces that AWS services own.
    let account = get(Slot::AccountId)
        .filter(|a| *a != "unknown")
        .or(ctx.key.account.as_deref());
    let region = get(Slot::Region).or(ctx.key.region.as_deref());
    let mut cloud = Cloud::aws(region.map(Cow::Borrowed), account.map(Cow::Borrowed));
    cloud.zone = get(Slot::AzId).map(Cow::Borrowed);
    event.cloud = Some(cloud);

    let mut unknown_type = None;
    let (protocol_ver_id, protocol_ver) = match get(Slot::Type) {
        Some("IPv4") => (Some(4), Some("Internet Protocol version 4 (IPv4)")),
        Some("IPv6") => (Some(6), Some("Internet Protocol version 6 (IPv6)")),
        // Elastic Fabric Adapter traffic is not IP at all.
        Some("EFA") => (Some(99), Some("EFA")),
        Some(other) => {
            unknown_type = Some(other);
            (None, None)
        }
        None => match src_ip.or(dst_ip) {
            Some(Family::V4) => (Some(4), Some("Internet Protocol version 4 (IPv4)")),
            Some(Family::V6) => (Some(6), Some("Internet Protocol version 6 (IPv6)")),
            None => (None, None),
        },
    };
    let mut unknown_direction = None;
    let (direction_id, direction_name) = match direction {
        Some("ingress") => (1, "Inbound"),
        Some("egress") => (2, "Outbound"),
        None => (0, "Unknown"),
        Some(other) => {
            unknown_direction = Some(other);
            (99, "Other")
        }
    };
    let (boundary_id, boundary_name) = match traffic_path.map(boundary) {
        Some((id, name)) => (Some(id), Some(name)),
        None => (None, None),
    };
    if protocol.is_some()
        || tcp_flags.is_some()
        || protocol_ver_id.is_some()
        || direction.is_some()
        || boundary_id.is_some()
    {
        event.connection_info = Some(ConnectionInfo {
            protocol_num: protocol.map(|p| p as u32),
            protocol_name: protocol.and_then(|p| protocol_name(p as u8)),
            protocol_ver_id,
            protocol_ver,
            tcp_flags: tcp_flags.map(|f| f as u32),
            direction_id: Some(direction_id),
            direction: Some(direction_name),
            boundary_id,
            boundary: boundary_name,
        });
    }
    if packets.is_some() || bytes.is_some() {
        event.traffic = Some(Traffic {
            bytes,
            packets,
            ..Traffic::default()
        });
    }
    event.src_endpoint = Some(src);
    event.dst_endpoint = Some(dst);

    // Values the mapped fields above could not carry whole stay verbatim.
    if let Some(t) = unknown_type {
        event.unmapped.str(Slot::Type.name(), t);
    }
    if let Some(d) = unknown_direction {
        event.unmapped.str(Slot::FlowDirection.name(), d);
    }
    if boundary_id == Some(99) {
        if let Some(p) = get(Slot::TrafficPath) {
            event.unmapped.str(Slot::TrafficPath.name(), p);
        }
    }
    for &i in &format.unmapped {
        let (Some(column), Some(&(start, end))) = (format.columns.get(i), spans.get(i)) else {
            continue;
        };
        let token = line.get(start..end).unwrap_or("-");
        if token == "-" {
            continue;
        }
        match column.kind {
            Kind::Slot(_) => {}
            Kind::Text => event.unmapped.str(&*column.name, token),
            Kind::Count => match parse_u64(token).and_then(|n| i64::try_from(n).ok()) {
                Some(n) => event.unmapped.int(&*column.name, n),
                None => {
                    return Err(Bad::new(
                        &column.name,
                        format!("not a non-negative integer: {}", shown(token)),
                    )
                    .into())
                }
            },
        }
    }
    out.event(&event).map_err(RowError::Sink)
}

/// Which column a byte offset of a row falls in, to name the field of an encoding error.
fn column_at<'h>(format: Option<&'h Format>, line: &[u8], offset: usize) -> Option<&'h str> {
    let format = format?;
    let before = &line[..offset.min(line.len())];
    let mut index = 0usize;
    let mut in_token = false;
    for &b in before {
        if b == b' ' {
            in_token = false;
        } else if !in_token {
            in_token = true;
            index += 1;
        }
    }
    // The invalid byte itself starts a token when it follows a space.
    if !in_token {
        index += 1;
    }
    format.columns.get(index - 1).map(|c| &*c.name)
}

fn reject(out: &mut dyn Emit, line: u64, raw: &[u8], bad: Bad<'_>) -> Result<()> {
    out.reject(Rejected {
        line: Some(line),
        record: None,
        field: bad.field,
        reason: bad.reason,
        raw,
    })
}

fn format_error(ctx: &Context, line: u64, reason: String) -> Error {
    Error::Format {
        at: Location {
            object: ctx.object.clone(),
            line: Some(line),
            record: None,
        },
        reason,
    }
}

/// Rows of the default (version 2) format that come without a header, one at a
/// time: CloudWatch Logs subscriptions deliver a flow log one row a log event.
pub(crate) struct DefaultRows {
    format: Format,
    spans: Vec<(usize, usize)>,
}

impl DefaultRows {
    pub(crate) fn new() -> Self {
        DefaultRows {
            // A constant of this module, checked by its tests; not input data.
            format: Format::parse(DEFAULT_V2).expect("the default format parses"),
            spans: Vec::with_capacity(16),
        }
    }

    /// Whether `line` has the shape of a default-format row (version 2, 14 fields).
    pub(crate) fn is_row(line: &str) -> bool {
        looks_like_v2_row(line)
    }

    /// Maps one row as a row of a default-format file is mapped: an event, a skip
    /// (NODATA/SKIPDATA), or a reject at `line` naming the field.
    pub(crate) fn map_line(
        &mut self,
        text: &str,
        line: u64,
        ctx: &Context,
        out: &mut dyn Emit,
    ) -> Result<()> {
        let DefaultRows { format, spans } = self;
        let values = match split_row(format, text, spans) {
            Ok(values) => values,
            Err(bad) => return reject(out, line, text.as_bytes(), bad),
        };
        if let Some(reason) = skip_reason(&values) {
            out.skip(reason);
            return Ok(());
        }
        match map_row(format, text, &values, spans, ctx, out) {
            Ok(()) => Ok(()),
            Err(RowError::Bad(bad)) => reject(out, line, text.as_bytes(), bad),
            Err(RowError::Sink(e)) => Err(e),
        }
    }
}

/// Reads a flow log file: a header line, then one record a line.
pub fn normalize(input: &mut dyn BufRead, ctx: &Context, out: &mut dyn Emit) -> Result<()> {
    let max_line = match ctx.max_record_bytes {
        0 => DEFAULT_MAX_LINE,
        n => n,
    };
    let mut reader = LineReader::new(input, max_line);
    let mut format: Option<Format> = None;
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(64);
    loop {
        let reading = reader.line_number() + 1;
        let Some(line) = reader.next_line() else {
            break;
        };
        let line = line.map_err(|source| Error::Read {
            at: Location {
                object: ctx.object.clone(),
                line: Some(reading),
                record: None,
            },
            source,
        })?;
        let number = line.number;
        let bytes = line.bytes;
        if bytes.iter().all(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        if line.truncated {
            if format.is_none() {
                return Err(format_error(
                    ctx,
                    number,
                    format!(
                        "line {number} is longer than {max_line} bytes: not a VPC flow log header"
                    ),
                ));
            }
            out.reject(Rejected {
                line: Some(number),
                record: None,
                field: None,
                reason: format!("line is longer than {max_line} bytes"),
                raw: bytes,
            })?;
            continue;
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                if format.is_none() {
                    return Err(format_error(
                        ctx,
                        number,
                        format!("line {number} is not UTF-8 text: not a VPC flow log header"),
                    ));
                }
                out.reject(Rejected {
                    line: Some(number),
                    record: None,
                    field: column_at(format.as_ref(), bytes, e.valid_up_to()),
                    reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
                    raw: bytes,
                })?;
                continue;
            }
        };
        let text = if format.is_none() {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };

        // A header starts the file, and starts it again where files were concatenated.
        // Rows begin with a version number or an id, so the cheap first-token test
        // keeps this off the hot path.
        let header = match &format {
            None => looks_like_header(text),
            Some(_) => {
                let first = tokens(text).next().unwrap_or("");
                first.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                    && classify(first).is_some()
                    && looks_like_header(text)
            }
        };
        if header {
            format = Some(Format::parse(text).map_err(|r| format_error(ctx, number, r))?);
            continue;
        }
        let current = match format {
            Some(ref f) => f,
            None => {
                if !looks_like_v2_row(text) {
                    return Err(format_error(
                        ctx,
                        number,
                        format!(
                            "line {number} is neither a VPC flow log header (field names such as \
                             `version account-id interface-id srcaddr ...`) nor a default-format \
                             (version 2) record"
                        ),
                    ));
                }
                format.insert(Format::parse(DEFAULT_V2).map_err(|r| format_error(ctx, number, r))?)
            }
        };
        let values = match split_row(current, text, &mut spans) {
            Ok(values) => values,
            Err(bad) => {
                reject(out, number, bytes, bad)?;
                continue;
            }
        };
        if let Some(reason) = skip_reason(&values) {
            out.skip(reason);
            continue;
        }
        match map_row(current, text, &values, &spans, ctx, out) {
            Ok(()) => {}
            Err(RowError::Bad(bad)) => reject(out, number, bytes, bad)?,
            Err(RowError::Sink(e)) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{KeyInfo, SourceKind};
    use serde_json::{json, Value};
    use std::path::{Path, PathBuf};

    /// Everything a source module sent, in a shape tests can compare.
    #[derive(Default)]
    struct Collect {
        events: Vec<Value>,
        /// (line, field, reason)
        rejects: Vec<(Option<u64>, Option<String>, String)>,
        skips: Vec<&'static str>,
    }

    impl Emit for Collect {
        fn event(&mut self, event: &Event<'_>) -> Result<()> {
            self.events
                .push(serde_json::to_value(event).expect("an event serialises"));
            Ok(())
        }
        fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
            self.rejects
                .push((r.line, r.field.map(str::to_owned), r.reason));
            Ok(())
        }
        fn skip(&mut self, reason: &'static str) {
            self.skips.push(reason);
        }
    }

    fn ctx() -> Context {
        Context {
            object: "bucket/test.log".into(),
            key: KeyInfo {
                source: Some(SourceKind::VpcFlow),
                account: Some("111122223333".into()),
                region: Some("us-east-1".into()),
            },
            max_record_bytes: 4096,
        }
    }

    fn run_with(input: &[u8], ctx: &Context) -> (Collect, Result<()>) {
        let mut out = Collect::default();
        let mut reader = input;
        let result = normalize(&mut reader, ctx, &mut out);
        for event in &out.events {
            check_invariants(event);
        }
        (out, result)
    }

    fn run(input: &[u8]) -> (Collect, Result<()>) {
        run_with(input, &ctx())
    }

    fn no_nulls(path: &str, v: &Value) {
        match v {
            Value::Null => panic!("null at {path}"),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| no_nulls(&format!("{path}/{i}"), v)),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, v)| no_nulls(&format!("{path}/{k}"), v)),
            _ => {}
        }
    }

    /// What every event must satisfy, whatever the row.
    fn check_invariants(e: &Value) {
        no_nulls("", e);
        let class = e["class_uid"].as_u64().expect("class_uid");
        let activity = e["activity_id"].as_u64().expect("activity_id");
        assert_eq!(class, 4001);
        assert_eq!(e["type_uid"].as_u64(), Some(class * 100 + activity), "{e}");
        assert!(e["time"].is_i64(), "{e}");
        let profiles: Vec<&str> = e["metadata"]["profiles"]
            .as_array()
            .expect("profiles")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(profiles.contains(&"cloud"), "{e}");
        assert_eq!(
            profiles.contains(&"security_control"),
            e.get("action_id").is_some(),
            "{e}"
        );
        assert!(e.get("raw_data").is_none());
        for side in ["src_endpoint", "dst_endpoint"] {
            assert!(e[side].is_object(), "{side} missing: {e}");
        }
    }

    const V2: &str = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n";
    const V5_REORDERED: &str = "srcaddr dstaddr srcport dstport flow-direction traffic-path action log-status account-id interface-id vpc-id subnet-id instance-id az-id region start end bytes packets protocol tcp-flags type pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service sublocation-type sublocation-id version\n";
    const TGW: &str = "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service\n";
    const GOOD: &str = "2 111122223333 eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 49152 443 6 10 8400 1715644800 1715644860 ACCEPT OK\n";

    #[derive(Default)]
    struct Case {
        name: &'static str,
        input: Vec<u8>,
        events: usize,
        skips: &'static [&'static str],
        /// (line, field, part of the reason)
        rejects: &'static [(u64, Option<&'static str>, &'static str)],
        /// (event, JSON pointer, value); `Value::Null` means "absent".
        checks: Vec<(usize, &'static str, Value)>,
        /// Part of the message of the error that ends the file.
        error: Option<&'static str>,
    }

    fn text(parts: &[&str]) -> Vec<u8> {
        parts.concat().into_bytes()
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "default v2, ACCEPT and REJECT",
                input: text(&[
                    V2,
                    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n",
                    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK",
                ]),
                events: 2,
                checks: vec![
                    (0, "/activity_id", json!(6)),
                    (0, "/activity_name", json!("Traffic")),
                    (0, "/type_uid", json!(400106)),
                    (0, "/action_id", json!(1)),
                    (0, "/action", json!("Allowed")),
                    (0, "/disposition_id", json!(1)),
                    (0, "/disposition", json!("Allowed")),
                    (0, "/time", json!(1_418_530_070_000_i64)),
                    (0, "/start_time", json!(1_418_530_010_000_i64)),
                    (0, "/end_time", json!(1_418_530_070_000_i64)),
                    (0, "/duration", json!(60_000)),
                    (0, "/status_code", json!("OK")),
                    (0, "/src_endpoint/ip", json!("172.31.16.139")),
                    (0, "/src_endpoint/port", json!(20641)),
                    (0, "/src_endpoint/interface_uid", json!("eni-1235b8ca123456789")),
                    (0, "/dst_endpoint/ip", json!("172.31.16.21")),
                    (0, "/dst_endpoint/port", json!(22)),
                    (0, "/dst_endpoint/interface_uid", Value::Null),
                    (0, "/connection_info/protocol_num", json!(6)),
                    (0, "/connection_info/protocol_name", json!("tcp")),
                    (0, "/connection_info/protocol_ver_id", json!(4)),
                    (0, "/connection_info/direction_id", json!(0)),
                    (0, "/connection_info/direction", json!("Unknown")),
                    (0, "/traffic/bytes", json!(4249)),
                    (0, "/traffic/packets", json!(20)),
                    (0, "/cloud/provider", json!("AWS")),
                    (0, "/cloud/account/uid", json!("123456789010")),
                    (0, "/cloud/region", json!("us-east-1")),
                    (0, "/metadata/version", json!("1.1.0")),
                    (0, "/metadata/log_version", json!("2")),
                    (0, "/metadata/product/name", json!("Amazon VPC")),
                    (0, "/metadata/product/vendor_name", json!("AWS")),
                    (0, "/metadata/product/feature/name", json!("Flowlogs")),
                    (0, "/metadata/profiles", json!(["cloud", "security_control"])),
                    (0, "/unmapped", Value::Null),
                    (1, "/activity_id", json!(5)),
                    (1, "/activity_name", json!("Refuse")),
                    (1, "/type_uid", json!(400105)),
                    (1, "/action_id", json!(2)),
                    (1, "/action", json!("Denied")),
                    (1, "/disposition_id", json!(2)),
                    (1, "/disposition", json!("Blocked")),
                    (1, "/dst_endpoint/port", json!(3389)),
                ],
                ..Case::default()
            },
            Case {
                name: "custom v5, fields reordered",
                input: text(&[
                    V5_REORDERED,
                    // Inbound through a load balancer: the packet's destination differs.
                    "198.51.100.7 10.0.1.25 51234 443 ingress - ACCEPT OK 111122223333 eni-0a1b2c3d4e5f67890 vpc-0abc12345def67890 subnet-0def12345abc67890 i-0123456789abcdef0 euw1-az1 eu-west-1 1715644800 1715644860 5120 8 6 19 IPv4 198.51.100.7 10.0.1.99 S3 - - - 5\n",
                    // Outbound through an internet gateway, from an Outpost.
                    "10.0.1.25 52.94.133.131 40000 443 egress 8 REJECT OK 111122223333 eni-0a1b2c3d4e5f67890 vpc-0abc12345def67890 subnet-0def12345abc67890 i-0123456789abcdef0 euw1-az1 eu-west-1 1715644800 1715644860 120 2 6 2 IPv4 10.0.1.25 52.94.133.131 - S3 outpost op-0123456789abcdef0 5\n",
                ]),
                events: 2,
                checks: vec![
                    (0, "/activity_id", json!(6)),
                    (0, "/src_endpoint/ip", json!("198.51.100.7")),
                    (0, "/src_endpoint/port", json!(51234)),
                    (0, "/src_endpoint/svc_name", json!("S3")),
                    (0, "/src_endpoint/intermediate_ips", Value::Null),
                    (0, "/src_endpoint/interface_uid", Value::Null),
                    (0, "/dst_endpoint/ip", json!("10.0.1.25")),
                    (0, "/dst_endpoint/intermediate_ips", json!(["10.0.1.99"])),
                    (0, "/dst_endpoint/interface_uid", json!("eni-0a1b2c3d4e5f67890")),
                    (0, "/dst_endpoint/vpc_uid", json!("vpc-0abc12345def67890")),
                    (0, "/dst_endpoint/subnet_uid", json!("subnet-0def12345abc67890")),
                    (0, "/dst_endpoint/instance_uid", json!("i-0123456789abcdef0")),
                    (0, "/connection_info/direction_id", json!(1)),
                    (0, "/connection_info/direction", json!("Inbound")),
                    (0, "/connection_info/tcp_flags", json!(19)),
                    (0, "/connection_info/protocol_ver_id", json!(4)),
                    (0, "/connection_info/protocol_ver", json!("Internet Protocol version 4 (IPv4)")),
                    (0, "/connection_info/boundary_id", Value::Null),
                    (0, "/cloud/region", json!("eu-west-1")),
                    (0, "/cloud/zone", json!("euw1-az1")),
                    (0, "/cloud/account/uid", json!("111122223333")),
                    (0, "/traffic/bytes", json!(5120)),
                    (0, "/traffic/packets", json!(8)),
                    (0, "/metadata/log_version", json!("5")),
                    (0, "/unmapped", Value::Null),
                    (1, "/activity_id", json!(5)),
                    (1, "/action", json!("Denied")),
                    (1, "/connection_info/direction_id", json!(2)),
                    (1, "/connection_info/direction", json!("Outbound")),
                    (1, "/connection_info/boundary_id", json!(11)),
                    (1, "/connection_info/boundary", json!("Internet Gateway")),
                    (1, "/src_endpoint/interface_uid", json!("eni-0a1b2c3d4e5f67890")),
                    (1, "/src_endpoint/instance_uid", json!("i-0123456789abcdef0")),
                    (1, "/dst_endpoint/interface_uid", Value::Null),
                    (1, "/dst_endpoint/svc_name", json!("S3")),
                    (1, "/unmapped/sublocation-type", json!("outpost")),
                    (1, "/unmapped/sublocation-id", json!("op-0123456789abcdef0")),
                ],
                ..Case::default()
            },
            Case {
                name: "NODATA",
                input: text(&[V2, "2 111122223333 eni-0a1b2c3d4e5f67890 - - - - - - - 1715644800 1715644860 - NODATA\n"]),
                skips: &["nodata"],
                ..Case::default()
            },
            Case {
                name: "SKIPDATA",
                input: text(&[V2, "2 111122223333 eni-0a1b2c3d4e5f67890 - - - - - - - 1715644800 1715644860 - SKIPDATA\n", GOOD]),
                events: 1,
                skips: &["skipdata"],
                ..Case::default()
            },
            Case {
                name: "IPv6",
                input: text(&[V2, "2 111122223333 eni-0a1b2c3d4e5f67890 2001:db8::1 2600:1f18:abcd:ef01::25 0 0 58 3 252 1715644800 1715644860 ACCEPT OK\n"]),
                events: 1,
                checks: vec![
                    (0, "/src_endpoint/ip", json!("2001:db8::1")),
                    (0, "/dst_endpoint/ip", json!("2600:1f18:abcd:ef01::25")),
                    (0, "/src_endpoint/port", json!(0)),
                    (0, "/connection_info/protocol_name", json!("ipv6-icmp")),
                    (0, "/connection_info/protocol_ver_id", json!(6)),
                    (0, "/connection_info/protocol_ver", json!("Internet Protocol version 6 (IPv6)")),
                ],
                ..Case::default()
            },
            Case {
                name: "dash values are absent, account falls back to the key's",
                input: text(&[V2, "2 - eni-0a1b2c3d4e5f67890 10.0.0.1 10.0.0.2 - - 1 - - 1715644800 1715644860 ACCEPT OK\n",
                    "2 unknown eni-0a1b2c3d4e5f67890 10.0.0.1 10.0.0.2 1 2 17 1 1 1715644800 1715644860 ACCEPT OK\n"]),
                events: 2,
                checks: vec![
                    (0, "/cloud/account/uid", json!("111122223333")),
                    (0, "/src_endpoint/port", Value::Null),
                    (0, "/dst_endpoint/port", Value::Null),
                    (0, "/traffic", Value::Null),
                    (0, "/connection_info/protocol_name", json!("icmp")),
                    (1, "/cloud/account/uid", json!("111122223333")),
                    (1, "/connection_info/protocol_name", json!("udp")),
                ],
                ..Case::default()
            },
            Case {
                name: "wrong field count",
                input: text(&[V2,
                    "2 111122223333 eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 49152 443 6 10 8400 1715644800 1715644860 ACCEPT\n",
                    "2 111122223333 eni-0a1b2c3d4e5f67890 10.0.1.5 10.0.2.9 49152 443 6 10 8400 1715644800 1715644860 ACCEPT OK extra\n",
                    GOOD]),
                events: 1,
                rejects: &[
                    (2, None, "13 fields where the header names 14"),
                    (3, None, "15 fields where the header names 14"),
                ],
                ..Case::default()
            },
            Case {
                name: "bad numbers",
                input: text(&[V2,
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 http 443 6 10 8400 1715644800 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 70000 6 10 8400 1715644800 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 300 10 8400 1715644800 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 -5 8400 1715644800 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 99999999999999999999999 1715644800 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 soon 1715644860 ACCEPT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 5 ACCEPT OK\n",
                    "v2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 1715644860 ACCEPT OK\n",
                    GOOD]),
                events: 1,
                rejects: &[
                    (2, Some("srcport"), "not a non-negative integer: \"http\""),
                    (3, Some("dstport"), "70000 is out of range"),
                    (4, Some("protocol"), "300 is out of range"),
                    (5, Some("packets"), "not a non-negative integer: \"-5\""),
                    (6, Some("bytes"), "not a non-negative integer"),
                    (7, Some("start"), "not a time in epoch seconds: \"soon\""),
                    (8, Some("end"), "5 is not a time in epoch seconds between 2000 and 2100"),
                    (9, Some("version"), "not a non-negative integer: \"v2\""),
                ],
                ..Case::default()
            },
            Case {
                name: "bad IP addresses",
                input: text(&[V5_REORDERED,
                    "10.0.0.300 10.0.1.25 1 2 egress 1 ACCEPT OK 111122223333 eni-0a vpc-0a subnet-0a i-0a euw1-az1 eu-west-1 1715644800 1715644860 1 1 6 2 IPv4 10.0.0.3 10.0.1.25 - - - - 5\n",
                    "10.0.0.3 10.0.1.25 1 2 egress 1 ACCEPT OK 111122223333 eni-0a vpc-0a subnet-0a i-0a euw1-az1 eu-west-1 1715644800 1715644860 1 1 6 2 IPv4 10.0.0.3 fe80::zz - - - - 5\n",
                    "host.example 10.0.1.25 1 2 egress 1 ACCEPT OK 111122223333 eni-0a vpc-0a subnet-0a i-0a euw1-az1 eu-west-1 1715644800 1715644860 1 1 6 2 IPv4 10.0.0.3 10.0.1.25 - - - - 5\n"]),
                rejects: &[
                    (2, Some("srcaddr"), "not an IP address: \"10.0.0.300\""),
                    (3, Some("pkt-dstaddr"), "not an IP address: \"fe80::zz\""),
                    (4, Some("srcaddr"), "not an IP address"),
                ],
                ..Case::default()
            },
            Case {
                name: "REJECT with unknown action value and time order",
                input: text(&[V2,
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 1715644860 DROP OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644860 1715644800 REJECT OK\n",
                    "2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 1715644860 REJECT OK\n"]),
                events: 1,
                rejects: &[
                    (2, Some("action"), "expected ACCEPT or REJECT, found \"DROP\""),
                    (3, Some("end"), "end 1715644800 is before start 1715644860"),
                ],
                checks: vec![(0, "/activity_id", json!(5)), (0, "/disposition", json!("Blocked"))],
                ..Case::default()
            },
            Case {
                name: "missing header",
                input: text(&["hello world\n", GOOD]),
                error: Some("bucket/test.log:1: line 1 is neither a VPC flow log header"),
                ..Case::default()
            },
            Case {
                name: "missing header after blank lines names the right line",
                input: text(&["\n  \n3 111122223333 eni-0a 10.0.1.5\n"]),
                error: Some("bucket/test.log:3: line 3 is neither"),
                ..Case::default()
            },
            Case {
                name: "no header, default v2 rows",
                input: text(&[GOOD, "2 111122223333 eni-0a1b2c3d4e5f67890 - - - - - - - 1715644800 1715644860 - NODATA\n", GOOD]),
                events: 2,
                skips: &["nodata"],
                checks: vec![(0, "/src_endpoint/ip", json!("10.0.1.5"))],
                ..Case::default()
            },
            Case {
                name: "invalid UTF-8 in a row",
                input: [
                    V2.as_bytes(),
                    b"2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 1715644860 ACC\xffEPT OK\n",
                    b"2 111122223333 eni-0a 10.0.1.5 10.0.2.9 1 2 6 1 1 1715644800 1715644860 ACCEPT \xfe\n",
                    GOOD.as_bytes(),
                ]
                .concat(),
                events: 1,
                rejects: &[
                    (2, Some("action"), "invalid UTF-8 at byte 75"),
                    (3, Some("log-status"), "invalid UTF-8 at byte 79"),
                ],
                ..Case::default()
            },
            Case {
                name: "invalid UTF-8 before any header ends the file",
                input: b"\xff\xfe garbage\n".to_vec(),
                error: Some(":1: line 1 is not UTF-8"),
                ..Case::default()
            },
            Case {
                name: "blank lines, CRLF and a byte-order mark",
                input: text(&["\u{feff}", &V2.replace('\n', "\r\n"), "\r\n", "   \n", &GOOD.replace('\n', "\r\n"), "\n"]),
                events: 1,
                checks: vec![(0, "/status_code", json!("OK"))],
                ..Case::default()
            },
            Case {
                name: "Transit Gateway flow log",
                input: text(&[TGW,
                    "6 TransitGateway 123456789012 tgw-0abc12345def67890 tgw-attach-0abc12345def67890 123456789012 210987654321 vpc-0abc12345def67890 vpc-0def12345abc67890 subnet-0abc12345def67890 subnet-0def12345abc67890 eni-0abc12345def67890 eni-0def12345abc67890 use1-az1 use1-az2 tgw-attach-0def12345abc67890 10.0.0.1 10.0.1.1 12345 443 6 10 1000 1715644800 1715644860 OK IPv4 1 2 0 0 2 us-east-1 ingress - -\n",
                    "6 TransitGateway - tgw-0abc12345def67890 tgw-attach-0abc12345def67890 - - - - - - - - - - - 10.0.0.1 10.0.1.1 - - 1 1 84 1715644800 1715644860 OK IPv4 - - - - - eu-west-1 egress - -\n"]),
                events: 2,
                checks: vec![
                    (0, "/activity_id", json!(6)),
                    (0, "/action_id", Value::Null),
                    (0, "/disposition_id", Value::Null),
                    (0, "/metadata/profiles", json!(["cloud"])),
                    (0, "/metadata/log_version", json!("6")),
                    (0, "/src_endpoint/vpc_uid", json!("vpc-0abc12345def67890")),
                    (0, "/src_endpoint/subnet_uid", json!("subnet-0abc12345def67890")),
                    (0, "/src_endpoint/interface_uid", json!("eni-0abc12345def67890")),
                    (0, "/src_endpoint/zone", json!("use1-az1")),
                    (0, "/dst_endpoint/vpc_uid", json!("vpc-0def12345abc67890")),
                    (0, "/dst_endpoint/zone", json!("use1-az2")),
                    (0, "/cloud/account/uid", json!("123456789012")),
                    (0, "/connection_info/direction_id", json!(1)),
                    (0, "/unmapped/resource-type", json!("TransitGateway")),
                    (0, "/unmapped/tgw-id", json!("tgw-0abc12345def67890")),
                    (0, "/unmapped/tgw-dst-vpc-account-id", json!("210987654321")),
                    (0, "/unmapped/tgw-pair-attachment-id", json!("tgw-attach-0def12345abc67890")),
                    (0, "/unmapped/packets-lost-no-route", json!(1)),
                    (0, "/unmapped/packets-lost-blackhole", json!(2)),
                    (0, "/unmapped/packets-lost-mtu-exceeded", json!(0)),
                    (1, "/cloud/account/uid", json!("111122223333")),
                    (1, "/cloud/region", json!("eu-west-1")),
                    (1, "/unmapped/packets-lost-no-route", Value::Null),
                ],
                ..Case::default()
            },
            Case {
                name: "a bad counter in an unmapped column",
                input: text(&["version srcaddr dstaddr start end packets-lost-blackhole\n",
                    "6 10.0.0.1 10.0.0.2 1715644800 1715644860 many\n"]),
                rejects: &[(2, Some("packets-lost-blackhole"), "not a non-negative integer: \"many\"")],
                ..Case::default()
            },
            Case {
                name: "unknown, ECS and v8 fields go to unmapped",
                input: text(&["version srcaddr dstaddr start end action reject-reason ecs-cluster-name future-field\n",
                    "8 10.0.0.1 10.0.0.2 1715644800 1715644860 REJECT BPA my-cluster some-value\n"]),
                events: 1,
                checks: vec![
                    (0, "/unmapped/reject-reason", json!("BPA")),
                    (0, "/unmapped/ecs-cluster-name", json!("my-cluster")),
                    (0, "/unmapped/future-field", json!("some-value")),
                    (0, "/connection_info/protocol_ver_id", json!(4)),
                    (0, "/connection_info/direction_id", json!(0)),
                ],
                ..Case::default()
            },
            Case {
                name: "values without a caption are kept verbatim",
                input: text(&["version srcaddr dstaddr start end type flow-direction traffic-path\n",
                    "5 10.0.0.1 10.0.0.2 1715644800 1715644860 EFA sideways 12\n",
                    "5 10.0.0.1 10.0.0.2 1715644800 1715644860 IPv5 - -\n"]),
                events: 2,
                checks: vec![
                    (0, "/connection_info/protocol_ver_id", json!(99)),
                    (0, "/connection_info/protocol_ver", json!("EFA")),
                    (0, "/connection_info/direction_id", json!(99)),
                    (0, "/connection_info/direction", json!("Other")),
                    (0, "/connection_info/boundary_id", json!(99)),
                    (0, "/connection_info/boundary", json!("Other")),
                    (0, "/unmapped/flow-direction", json!("sideways")),
                    (0, "/unmapped/traffic-path", json!("12")),
                    (1, "/connection_info/protocol_ver_id", Value::Null),
                    (1, "/unmapped/type", json!("IPv5")),
                ],
                ..Case::default()
            },
            Case {
                name: "a row that cannot name both endpoints",
                input: text(&["interface-id action log-status start end\n",
                    "eni-0a1b2c3d4e5f67890 ACCEPT OK 1715644800 1715644860\n"]),
                rejects: &[(2, Some("dstaddr"), "no destination address or interface")],
                ..Case::default()
            },
            Case {
                name: "a row without a time",
                input: text(&["srcaddr dstaddr action\n", "10.0.0.1 10.0.0.2 ACCEPT\n"]),
                rejects: &[(2, Some("end"), "neither an end nor a start time")],
                ..Case::default()
            },
            Case {
                name: "concatenated files start a new header",
                input: text(&[V2, GOOD, "srcaddr dstaddr start end action log-status version\n",
                    "10.9.9.9 10.0.0.2 1715644800 1715644860 ACCEPT OK 3\n"]),
                events: 2,
                checks: vec![(1, "/src_endpoint/ip", json!("10.9.9.9")), (1, "/metadata/log_version", json!("3"))],
                ..Case::default()
            },
            Case {
                name: "rows of names are rows, not headers",
                input: text(&["flow-direction region ecs-cluster-name ecs-service-name start end\n",
                    "ingress us-east-1 ecs-a ecs-b 1715644800 1715644860\n"]),
                rejects: &[(2, Some("srcaddr"), "no source address or interface")],
                ..Case::default()
            },
            Case {
                name: "a header naming a field twice",
                input: text(&["version srcaddr srcaddr\n"]),
                error: Some(":1: the header names field `srcaddr` twice"),
                ..Case::default()
            },
            Case {
                name: "a line over the limit",
                input: text(&[V2, &format!("2 {}\n", "x".repeat(5000)), GOOD]),
                events: 1,
                rejects: &[(2, None, "line is longer than 4096 bytes")],
                ..Case::default()
            },
            Case {
                name: "header only and empty input",
                input: text(&[V2]),
                ..Case::default()
            },
            Case {
                name: "empty input",
                input: Vec::new(),
                ..Case::default()
            },
        ]
    }

    #[test]
    fn rows_map_reject_or_skip_as_the_table_says() {
        for case in cases() {
            let (out, result) = run(&case.input);
            let name = case.name;
            match (case.error, &result) {
                (None, Ok(())) => {}
                (Some(want), Err(e)) => {
                    assert!(matches!(e, Error::Format { .. }), "{name}: {e}");
                    assert!(e.to_string().contains(want), "{name}: {e}");
                }
                (want, got) => panic!("{name}: wanted error {want:?}, got {got:?}"),
            }
            assert_eq!(out.events.len(), case.events, "{name}: {:?}", out.rejects);
            assert_eq!(out.skips, case.skips, "{name}");
            let rejects: Vec<_> = out
                .rejects
                .iter()
                .map(|(line, field, reason)| (*line, field.clone(), reason.clone()))
                .collect();
            assert_eq!(rejects.len(), case.rejects.len(), "{name}: {rejects:?}");
            for ((line, field, reason), (want_line, want_field, want_reason)) in
                rejects.iter().zip(case.rejects)
            {
                assert_eq!(*line, Some(*want_line), "{name}: {reason}");
                assert_eq!(field.as_deref(), *want_field, "{name}: {reason}");
                assert!(
                    reason.contains(want_reason),
                    "{name}: {reason:?} lacks {want_reason:?}"
                );
            }
            for (i, pointer, want) in &case.checks {
                let got = out.events[*i].pointer(pointer);
                match want {
                    Value::Null => assert!(got.is_none(), "{name}: event {i} {pointer}: {got:?}"),
                    want => assert_eq!(got, Some(want), "{name}: event {i} {pointer}"),
                }
            }
        }
    }

    #[test]
    fn a_failing_stream_stops_the_file_where_it_broke() {
        /// Gives `data`, then fails.
        struct Failing<'a>(&'a [u8]);
        impl std::io::Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let data = text(&[V2, GOOD, GOOD]);
        let mut input = std::io::BufReader::new(Failing(&data));
        let mut out = Collect::default();
        let err = normalize(&mut input, &ctx(), &mut out).expect_err("the stream fails");
        assert!(
            matches!(&err, Error::Read { at, .. } if at.line == Some(4)),
            "{err}"
        );
        assert_eq!(out.events.len(), 2);
    }

    /// Rows mangled at random never panic, and each ends as exactly one event, reject
    /// or skip.
    #[test]
    fn mangled_rows_are_each_accounted_for() {
        let rows = [
            GOOD.trim_end(),
            "2 111122223333 eni-0a1b2c3d4e5f67890 2001:db8::1 2600:1f18:abcd:ef01::25 0 0 58 3 252 1715644800 1715644860 REJECT OK",
            "2 111122223333 eni-0a1b2c3d4e5f67890 - - - - - - - 1715644800 1715644860 - NODATA",
        ];
        let alphabet = b" -.:0123456789abcdefACEPTROKNDx\xff\xc3\t";
        let mut seed: u64 = 7;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let mut input = V2.as_bytes().to_vec();
        let mut expected = 0usize;
        for _ in 0..3000 {
            let mut row = rows[next(rows.len())].as_bytes().to_vec();
            for _ in 0..1 + next(4) {
                let at = next(row.len() + 1);
                match next(3) {
                    0 if at < row.len() => {
                        row.remove(at);
                    }
                    1 if at < row.len() => row[at] = alphabet[next(alphabet.len())],
                    _ => row.insert(at, alphabet[next(alphabet.len())]),
                }
            }
            if !row.iter().all(|b| *b == b' ' || *b == b'\t') {
                expected += 1;
            }
            input.extend_from_slice(&row);
            input.push(b'\n');
        }
        let (out, result) = run(&input);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            out.events.len() + out.rejects.len() + out.skips.len(),
            expected
        );
        assert!(!out.events.is_empty() && !out.rejects.is_empty());
        for (line, _, reason) in &out.rejects {
            assert!(line.is_some() && !reason.is_empty());
        }
    }

    #[test]
    fn header_recognition() {
        let cases = [
            (V2.trim_end(), true),
            (V5_REORDERED.trim_end(), true),
            (TGW.trim_end(), true),
            ("srcaddr dstaddr", true),
            ("ecs-cluster-arn srcaddr", true),
            ("version", true),
            ("\u{feff}version srcaddr\r\n", true),
            ("version srcaddr some-future-field", true),
            ("version some-future-field", false),
            ("hello world", false),
            ("eni-0abc vpc-0def", false),
            ("us-east-1 use1-az1 ingress", false),
            ("ACCEPT OK", false),
            (GOOD.trim_end(), false),
            ("{\"Records\":[]}", false),
            ("", false),
        ];
        for (line, want) in cases {
            assert_eq!(looks_like_header(line), want, "{line:?}");
        }
    }

    #[test]
    fn ipv4_check_agrees_with_std() {
        let cases = [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..3.4",
            ".1.2.3",
            "1.2.3.4.",
            "1.2.3.4 ",
            "1234.1.1.1",
            "a.b.c.d",
            "",
            "1.2.3.-4",
            "+1.2.3.4",
            "::1",
            "1.2.3.4:80",
            "999.1.1.1",
        ];
        for case in cases {
            assert_eq!(
                is_ipv4(case.as_bytes()),
                case.parse::<std::net::Ipv4Addr>().is_ok(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn protocol_names_follow_iana() {
        let cases = [
            (1, Some("icmp")),
            (6, Some("tcp")),
            (17, Some("udp")),
            (47, Some("gre")),
            (50, Some("esp")),
            (51, Some("ah")),
            (58, Some("ipv6-icmp")),
            (132, Some("sctp")),
            (253, None),
        ];
        for (n, want) in cases {
            assert_eq!(protocol_name(n), want, "{n}");
        }
    }

    /// The files under a directory, recursively, sorted.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    fn run_file(path: &Path) -> (Collect, Result<()>) {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.display().to_string();
        let mut decoded = crate::framing::decode(file, None, None, &name).expect("decodes");
        let mut ctx = ctx();
        ctx.object = name;
        ctx.key = crate::sources::detect_from_key(&ctx.object);
        let mut out = Collect::default();
        let result = normalize(decoded.reader.as_mut(), &ctx, &mut out);
        for event in &out.events {
            check_invariants(event);
        }
        (out, result)
    }

    /// Our own samples in events/vpcflow: (file name, events, skipped).
    #[test]
    fn our_samples_map_whole() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/vpcflow");
        let want = [
            ("111122223333_vpcflowlogs_us-east-1_fl-0123456789abcdef0_20240514T0000Z_muster01.log.gz", 9, 2),
            ("444455556666_vpcflowlogs_eu-west-1_fl-0fedcba9876543210_20240514T0005Z_muster02.log.gz", 8, 1),
            ("444455556666_vpcflowlogs_eu-west-1_fl-0fedcba9876543210_20240514T0010Z_muster03.log", 3, 0),
        ];
        let files = files_under(&dir);
        assert_eq!(files.len(), want.len(), "{files:?}");
        for (name, events, skipped) in want {
            let path = files
                .iter()
                .find(|p| p.file_name().is_some_and(|f| f == name))
                .unwrap_or_else(|| panic!("{name} missing under {}", dir.display()));
            let (out, result) = run_file(path);
            assert!(result.is_ok(), "{name}: {result:?}");
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            assert_eq!(out.events.len(), events, "{name}");
            assert_eq!(out.skips.len(), skipped, "{name}");
            // The key names the account and region of rows that lack them.
            let key = crate::sources::detect_from_key(&path.display().to_string());
            assert_eq!(key.source, Some(SourceKind::VpcFlow), "{name}");
        }
    }

    /// The third-party samples under $MUSTER_CORPUS/vpcflow: (file, events, skipped).
    #[test]
    fn corpus_samples() {
        let Some(corpus) = std::env::var_os("MUSTER_CORPUS") else {
            eprintln!("MUSTER_CORPUS is not set: skipping the VPC flow corpus test");
            return;
        };
        let dir = Path::new(&corpus).join("vpcflow");
        let known = [
            ("otel_valid_vpc_flow_log.log", 0, 1),
            ("otel_valid_vpc_flow_log_multi.log", 2, 0),
            ("otel_valid_vpc_flow_log_ecs.log", 1, 0),
            ("otel_valid_tgw_flow_log.log", 1, 0),
        ];
        for path in files_under(&dir) {
            let (out, result) = run_file(&path);
            let name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            assert!(result.is_ok(), "{name}: {result:?}");
            assert!(out.rejects.is_empty(), "{name}: {:?}", out.rejects);
            if let Some((_, events, skipped)) = known.iter().find(|(n, _, _)| *n == name) {
                assert_eq!(out.events.len(), *events, "{name}");
                assert_eq!(out.skips.len(), *skipped, "{name}");
            }
        }
    }

    /// Parse+map throughput over synthetic v5 and v2 rows, then with serialisation.
    /// A measurement, not a check: run it in release,
    /// `cargo test -p muster-core --release --lib -- --ignored vpcflow_throughput --nocapture`.
    #[test]
    #[ignore]
    fn vpcflow_throughput() {
        struct Count(u64);
        impl Emit for Count {
            fn event(&mut self, e: &Event<'_>) -> Result<()> {
                self.0 += std::hint::black_box(e).time as u64 & 1;
                Ok(())
            }
            fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
                panic!("the synthetic rows are valid: {}", r.reason)
            }
            fn skip(&mut self, _: &'static str) {}
        }
        struct Serialise(Vec<u8>, u64);
        impl Emit for Serialise {
            fn event(&mut self, e: &Event<'_>) -> Result<()> {
                self.0.clear();
                serde_json::to_writer(&mut self.0, e).expect("serialises");
                self.1 += self.0.len() as u64;
                Ok(())
            }
            fn reject(&mut self, r: Rejected<'_>) -> Result<()> {
                panic!("the synthetic rows are valid: {}", r.reason)
            }
            fn skip(&mut self, _: &'static str) {}
        }
        // CPU time of this thread where Linux reports it: the machine is shared, and
        // wall-clock time would measure the neighbours.
        fn cpu_secs() -> Option<f64> {
            let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
            let ns: f64 = stat.split(' ').next()?.parse().ok()?;
            Some(ns / 1e9)
        }
        fn timed(f: impl FnOnce()) -> f64 {
            let (cpu, wall) = (cpu_secs(), std::time::Instant::now());
            f();
            match (cpu, cpu_secs()) {
                (Some(a), Some(b)) => b - a,
                _ => wall.elapsed().as_secs_f64(),
            }
        }

        let mut seed: u64 = 1;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut v5 = V5_REORDERED.as_bytes().to_vec();
        let mut v2 = V2.as_bytes().to_vec();
        // VPCFLOW_BENCH_MB sizes the v5 input (v2 comes out about half as large).
        let megabytes: usize = std::env::var("VPCFLOW_BENCH_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        while v5.len() < megabytes * 1_000_000 {
            let start = 1_715_644_800 + next(300);
            let (local, peer) = (
                format!("10.0.{}.{}", next(256), next(256)),
                format!("52.94.{}.{}", next(256), next(256)),
            );
            let ingress = next(2) == 0;
            let (src, dst) = if ingress {
                (&peer, &local)
            } else {
                (&local, &peer)
            };
            let pkt_src = if next(20) == 0 {
                "10.0.1.25"
            } else {
                src.as_str()
            };
            let (sport, action, packets, bytes, eni) = (
                1024 + next(60000),
                if next(8) == 0 { "REJECT" } else { "ACCEPT" },
                next(10000),
                next(1_000_000),
                next(10000),
            );
            let v5_line = format!(
                "{src} {dst} {sport} 443 {} {} {action} OK 111122223333 eni-0a1b2c3d4e5f6{eni:04} vpc-0abc12345def67890 subnet-0def12345abc67890 i-0123456789abc{:04} use1-az{} us-east-1 {start} {} {bytes} {packets} 6 {} IPv4 {pkt_src} {dst} {} - - - 5\n",
                if ingress { "ingress" } else { "egress" },
                if ingress { "-" } else { "8" },
                next(1000), next(4) + 1, start + next(60), [2, 3, 18, 19][next(4) as usize],
                if next(4) == 0 { "S3" } else { "-" },
            );
            v5.extend_from_slice(v5_line.as_bytes());
            let v2_line = format!(
                "2 111122223333 eni-0a1b2c3d4e5f6{eni:04} {src} {dst} {sport} 443 6 {packets} {bytes} {start} {} {action} OK\n",
                start + next(60),
            );
            v2.extend_from_slice(v2_line.as_bytes());
        }
        let ctx = ctx();
        for (name, data) in [("v5", &v5), ("v2", &v2)] {
            let mb = data.len() as f64 / 1e6;
            let mut best = f64::MAX;
            for _ in 0..3 {
                let mut count = Count(0);
                let secs =
                    timed(|| normalize(&mut data.as_slice(), &ctx, &mut count).expect("parses"));
                best = best.min(secs);
            }
            eprintln!(
                "{name} parse+map:           {:.0} MB/s, best of 3 ({mb:.0} MB, {} rows)",
                mb / best,
                data.iter().filter(|b| **b == b'\n').count() - 1
            );
            let mut ser = Serialise(Vec::new(), 0);
            let secs = timed(|| normalize(&mut data.as_slice(), &ctx, &mut ser).expect("parses"));
            eprintln!(
                "{name} parse+map+serialise: {:.0} MB/s ({:.0} MB of JSON)",
                mb / secs,
                ser.1 as f64 / 1e6
            );
        }
    }
}
