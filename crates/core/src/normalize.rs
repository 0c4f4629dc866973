//! The normaliser's pipeline for one object: decode, detect the source, parse and
//! map record by record, and write partitioned lake files and quarantine records.
//! Memory stays bounded: one record, the codec buffers and one output buffer per
//! open partition, whatever the object's size.

use crate::detect::{Detection, Detector, RuleSet};
use crate::error::{Error, Location, Result};
use crate::framing::{self, Compression};
use crate::ocsf::Event;
use crate::ports::{DetectionBus, LakeWriter, ObjectMeta, OpenedObject, OutputFile, Quarantine};
use crate::sources::{self, Context, Emit, KeyInfo, Rejected, SourceKind};
use crate::time;
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

/// How the normaliser behaves; read once at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Forces the source instead of detecting it from the key and content.
    pub source: Option<SourceKind>,
    /// gzip level of the lake files: 1 is about twice as fast as 6 for ~10% larger files.
    pub gzip_level: u32,
    /// Prefix of the lake, e.g. `ocsf/`.
    pub ocsf_prefix: String,
    /// Prefix of quarantine records, e.g. `quarantine/`.
    pub quarantine_prefix: String,
    /// Longest record kept; longer ones are quarantined (bounds memory).
    pub max_record_bytes: usize,
    /// Quarantine records per quarantine file before a new one is started.
    pub quarantine_records_per_file: u64,
    /// Detection rules run over every event; `None` turns detection off.
    pub rules: Option<Arc<RuleSet>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            source: None,
            gzip_level: 1,
            ocsf_prefix: "ocsf/".into(),
            quarantine_prefix: "quarantine/".into(),
            max_record_bytes: 8 * 1024 * 1024,
            quarantine_records_per_file: 10_000,
            rules: None,
        }
    }
}

/// What happened to one object. `records_in = records_out + quarantined` always;
/// `skipped` counts rows that carry no record by design (VPC NODATA/SKIPDATA).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub object: String,
    pub source: Option<&'static str>,
    pub compression: Option<Compression>,
    pub records_in: u64,
    pub records_out: u64,
    pub quarantined: u64,
    pub skipped: u64,
    /// OCSF class_uid → events written.
    pub by_class: BTreeMap<u32, u64>,
    /// Lake keys written.
    pub outputs: Vec<String>,
    /// Quarantine keys written.
    pub quarantine_files: Vec<String>,
    /// The object was a CloudTrail digest file: counted, not parsed.
    pub digest: bool,
    /// The object held no bytes once decoded: counted, not an error.
    pub empty: bool,
    /// Authentication events by outcome (3002 status_id 1 / 2).
    pub auth_success: u64,
    pub auth_failure: u64,
    /// Data events (CloudTrail data plane) by resource type, e.g. `AWS::S3::Object`.
    pub data_access: BTreeMap<String, u64>,
    /// Detections published for this object.
    pub detections: u64,
    /// Why the object could not be read to its end, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A summary, and the error that stopped the object early, if any. Whatever was
/// read before the error has been written: a retry overwrites it.
pub struct Outcome {
    pub summary: Summary,
    pub error: Option<Error>,
}

/// The deterministic id of an object's output: the same bucket, key and version
/// (or ETag) always give the same lake key, so a retry overwrites rather than duplicates.
pub fn object_id(meta: &ObjectMeta) -> String {
    let mut h = Sha256::new();
    h.update(meta.bucket.as_bytes());
    h.update([0]);
    h.update(meta.key.as_bytes());
    h.update([0]);
    h.update(
        meta.version_id
            .as_deref()
            .or(meta.etag.as_deref())
            .unwrap_or("")
            .as_bytes(),
    );
    hex::encode(&h.finalize()[..16])
}

/// Normalises one opened object, without detections.
pub fn normalize_object(
    object: OpenedObject,
    settings: &Settings,
    lake: &dyn LakeWriter,
    quarantine: &dyn Quarantine,
) -> Outcome {
    normalize_object_with(object, settings, lake, quarantine, None)
}

/// Normalises one opened object; with `settings.rules` and a bus, the rule hits over its
/// events are published as they complete (in batches) and at the end.
pub fn normalize_object_with(
    object: OpenedObject,
    settings: &Settings,
    lake: &dyn LakeWriter,
    quarantine: &dyn Quarantine,
    bus: Option<&dyn DetectionBus>,
) -> Outcome {
    let meta = object.meta;
    let display = meta.display();
    let mut summary = Summary {
        object: display.clone(),
        ..Summary::default()
    };
    let key_info = sources::detect_from_key(&meta.key);

    let mut decoded = match framing::decode(
        object.body,
        meta.content_encoding.as_deref(),
        meta.content_type.as_deref(),
        &display,
    ) {
        Ok(d) => d,
        Err(e) => return fail(summary, e),
    };
    summary.compression = Some(decoded.compression);

    let head = match framing::peek(decoded.reader.as_mut(), 4096) {
        Ok(head) => head,
        Err(e) => {
            let e = decoded.errors.classify(Location::object(display), e);
            return fail(summary, e);
        }
    };
    if head.is_empty() {
        // An empty object (or an empty gzip member) has no records: counted, nothing lost.
        summary.empty = true;
        return Outcome {
            summary,
            error: None,
        };
    }
    let source = match settings
        .source
        .or(key_info.source)
        .or_else(|| sources::sniff(head))
    {
        Some(s) => s,
        None => return fail(summary, Error::UnknownSource { object: display }),
    };
    summary.source = Some(source.name());
    if !source.is_log() {
        summary.digest = true;
        return Outcome {
            summary,
            error: None,
        };
    }

    let ctx = Context {
        object: display.clone(),
        key: key_info,
        max_record_bytes: settings.max_record_bytes,
    };
    let id = object_id(&meta);
    let mut out = PartitionedOutput::new(
        source,
        &ctx,
        &meta.key,
        id,
        settings,
        lake,
        quarantine,
        &mut summary,
    );
    if let (Some(rules), Some(bus)) = (&settings.rules, bus) {
        out.detection = Some(DetectionState {
            detector: Detector::new(Arc::clone(rules)),
            bus,
            pending: Vec::new(),
        });
    }
    let parsed =
        sources::run(source, decoded.reader.as_mut(), &ctx, &mut out).map_err(|e| match e {
            Error::Read { at, source } => decoded.errors.classify(at, source),
            other => other,
        });
    let mut error = None;
    if let Err(e) = parsed {
        // Leave a marker of where the stream broke beside the records it cost. If even
        // that cannot be written, the error below still reaches the caller.
        let _ = out.note_stream_error(&e);
        error = Some(e);
    }
    if let Err(e) = out.finish() {
        error.get_or_insert(e);
    }
    if let Some(e) = &error {
        summary.error = Some(e.to_string());
    }
    Outcome { summary, error }
}

fn fail(mut summary: Summary, e: Error) -> Outcome {
    summary.error = Some(e.to_string());
    Outcome {
        summary,
        error: Some(e),
    }
}

struct Partition<'s> {
    region: String,
    account: String,
    day: String,
    key: String,
    writer: GzEncoder<Box<dyn OutputFile + 's>>,
}

/// The `Emit` of the pipeline: routes each event to its lake partition and each
/// rejected record to the quarantine file.
struct PartitionedOutput<'s, 'a> {
    source: SourceKind,
    object: String,
    original_key: String,
    id: String,
    settings: &'a Settings,
    default_region: String,
    default_account: String,
    lake: &'s dyn LakeWriter,
    quarantine: &'s dyn Quarantine,
    partitions: Vec<Partition<'s>>,
    last: usize,
    quarantine_file: Option<Box<dyn OutputFile + 's>>,
    quarantine_in_file: u64,
    scratch: Vec<u8>,
    summary: &'a mut Summary,
    detection: Option<DetectionState<'s>>,
}

struct DetectionState<'s> {
    detector: Detector,
    bus: &'s dyn DetectionBus,
    pending: Vec<Detection>,
}

/// Detections are sent in EventBridge-sized groups as they complete, so a file full of
/// matches never piles them up in memory.
const DETECTION_BATCH: usize = 10;

impl<'s> DetectionState<'s> {
    fn flush(&mut self, summary: &mut Summary) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.bus.publish(&self.pending)?;
        summary.detections += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl<'s, 'a> PartitionedOutput<'s, 'a> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        source: SourceKind,
        ctx: &Context,
        original_key: &str,
        id: String,
        settings: &'a Settings,
        lake: &'s dyn LakeWriter,
        quarantine: &'s dyn Quarantine,
        summary: &'a mut Summary,
    ) -> Self {
        let KeyInfo {
            account, region, ..
        } = &ctx.key;
        PartitionedOutput {
            source,
            object: ctx.object.clone(),
            original_key: original_key.trim_start_matches('/').to_string(),
            id,
            settings,
            default_region: region.clone().unwrap_or_else(|| "unknown".into()),
            default_account: account.clone().unwrap_or_else(|| "unknown".into()),
            lake,
            quarantine,
            partitions: Vec::new(),
            last: 0,
            quarantine_file: None,
            quarantine_in_file: 0,
            scratch: Vec::with_capacity(8192),
            summary,
            detection: None,
        }
    }

    fn partition_for(
        &mut self,
        region: &str,
        account: &str,
        day: &str,
    ) -> Result<&mut Partition<'s>> {
        let hit = |p: &Partition| p.region == region && p.account == account && p.day == day;
        if self.partitions.get(self.last).is_some_and(hit) {
            return Ok(&mut self.partitions[self.last]);
        }
        if let Some(i) = self.partitions.iter().position(hit) {
            self.last = i;
            return Ok(&mut self.partitions[i]);
        }
        let key = format!(
            "{}{}/region={}/accountId={}/eventDay={}/{}.jsonl.gz",
            self.settings.ocsf_prefix,
            self.source.name(),
            safe_segment(region),
            safe_segment(account),
            day,
            self.id
        );
        let file = self.lake.create(&key)?;
        let writer = GzEncoder::new(
            file,
            flate2::Compression::new(self.settings.gzip_level.min(9)),
        );
        self.partitions.push(Partition {
            region: region.into(),
            account: account.into(),
            day: day.into(),
            key,
            writer,
        });
        self.last = self.partitions.len() - 1;
        Ok(&mut self.partitions[self.last])
    }

    fn write_quarantine_line(&mut self, line: &[u8]) -> Result<()> {
        if self.quarantine_in_file >= self.settings.quarantine_records_per_file {
            if let Some(file) = self.quarantine_file.take() {
                file.commit()?;
            }
            self.quarantine_in_file = 0;
        }
        if self.quarantine_file.is_none() {
            let key = format!(
                "{}{}/{}.{}.json",
                self.settings.quarantine_prefix,
                self.source.name(),
                self.original_key,
                self.summary.quarantine_files.len()
            );
            self.quarantine_file = Some(self.quarantine.create(&key)?);
            self.summary.quarantine_files.push(key);
        }
        let file = self.quarantine_file.as_mut().expect("created above");
        file.write_all(line)
            .map_err(|e| Error::sink("quarantine", e, true))?;
        self.quarantine_in_file += 1;
        Ok(())
    }

    /// A quarantine line for an error that ended the stream. It is not a record, so
    /// it is not counted as one.
    fn note_stream_error(&mut self, error: &Error) -> Result<()> {
        let reason = error.to_string();
        let record = QuarantineRecord {
            object: &self.object,
            source: self.source.name(),
            line: None,
            record: None,
            field: None,
            reason: &reason,
            raw: "".into(),
            raw_truncated: false,
        };
        let mut line = serde_json::to_vec(&record).map_err(|source| Error::Serialize {
            at: Location::object(self.object.clone()),
            source,
        })?;
        line.push(b'\n');
        self.write_quarantine_line(&line)
    }

    fn finish(mut self) -> Result<()> {
        let mut first_error = None;
        if let Some(mut d) = self.detection.take() {
            let rest = d.detector.finish();
            d.pending.extend(rest);
            for chunk in d.pending.chunks(DETECTION_BATCH) {
                match d.bus.publish(chunk) {
                    Ok(()) => self.summary.detections += chunk.len() as u64,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        for p in self.partitions.drain(..) {
            let done = p
                .writer
                .finish()
                .map_err(|e| Error::sink(p.key.clone(), e, true))
                .and_then(|file| file.commit());
            match done {
                Ok(()) => self.summary.outputs.push(p.key),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(file) = self.quarantine_file.take() {
            if let Err(e) = file.commit() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The counters behind the AuthenticationAttempts and DataAccess metrics.
fn count_for_metrics(summary: &mut Summary, event: &Event<'_>) {
    if event.class_uid == crate::ocsf::Class::Authentication.uid() {
        match event.status_id {
            Some(1) => summary.auth_success += 1,
            Some(2) => summary.auth_failure += 1,
            _ => {}
        }
    }
    if event.metadata.log_name.as_deref() == Some("Data") {
        let resource_type = event
            .resources
            .as_ref()
            .and_then(|r| r.iter().find_map(|r| r.type_.as_deref()))
            .or_else(|| {
                event
                    .api
                    .as_ref()
                    .and_then(|a| a.service.as_ref())
                    .map(|s| s.name.as_ref())
            })
            .unwrap_or("unknown");
        match summary.data_access.get_mut(resource_type) {
            Some(n) => *n += 1,
            None => {
                summary.data_access.insert(resource_type.to_string(), 1);
            }
        }
    }
}

/// Partition values come from the data; keep them from escaping their path segment.
fn safe_segment(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[derive(Serialize)]
struct QuarantineRecord<'a> {
    object: &'a str,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    reason: &'a str,
    raw: std::borrow::Cow<'a, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    raw_truncated: bool,
}

/// Quarantined text is capped: the record is evidence, not a copy of a 5 GB line.
const QUARANTINE_RAW_MAX: usize = 256 * 1024;

impl Emit for PartitionedOutput<'_, '_> {
    fn event(&mut self, event: &Event<'_>) -> Result<()> {
        let region = event.region().unwrap_or(&self.default_region).to_owned();
        let account = event
            .account_uid()
            .unwrap_or(&self.default_account)
            .to_owned();
        let day = time::event_day(event.time);
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, event).map_err(|source| Error::Serialize {
            at: Location::object(self.object.clone()),
            source,
        })?;
        self.scratch.push(b'\n');
        let mut scratch = std::mem::take(&mut self.scratch);
        let written = self.partition_for(&region, &account, &day).and_then(|p| {
            let key = &p.key;
            p.writer
                .write_all(&scratch)
                .map_err(|e| Error::sink(key.clone(), e, true))
        });
        scratch.clear();
        self.scratch = scratch;
        written?;
        self.summary.records_in += 1;
        self.summary.records_out += 1;
        *self.summary.by_class.entry(event.class_uid).or_default() += 1;
        count_for_metrics(self.summary, event);
        if let Some(d) = self.detection.as_mut() {
            let hits = d.detector.observe(event);
            d.pending.extend(hits);
            if d.pending.len() >= DETECTION_BATCH {
                d.flush(self.summary)?;
            }
        }
        Ok(())
    }

    fn reject(&mut self, rejected: Rejected<'_>) -> Result<()> {
        let truncated = rejected.raw.len() > QUARANTINE_RAW_MAX;
        let raw = &rejected.raw[..rejected.raw.len().min(QUARANTINE_RAW_MAX)];
        let record = QuarantineRecord {
            object: &self.object,
            source: self.source.name(),
            line: rejected.line,
            record: rejected.record,
            field: rejected.field,
            reason: &rejected.reason,
            raw: String::from_utf8_lossy(raw),
            raw_truncated: truncated,
        };
        let mut line = serde_json::to_vec(&record).map_err(|source| Error::Serialize {
            at: Location::object(self.object.clone()),
            source,
        })?;
        line.push(b'\n');
        self.write_quarantine_line(&line)?;
        self.summary.records_in += 1;
        self.summary.quarantined += 1;
        Ok(())
    }

    fn skip(&mut self, _reason: &'static str) {
        self.summary.skipped += 1;
    }
}
