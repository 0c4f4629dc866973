use super::*;
use crate::detect::{Detection, DetectionResource};

/// A change that breaks one field of a valid value.
type Breaker<T> = Box<dyn Fn(&mut T)>;

fn target() -> ImportTarget {
    ImportTarget {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        partition: "aws".into(),
    }
}

fn detection(uids: &[&str]) -> Detection {
    Detection {
        rule_id: "muster.cis.cloudwatch.1".into(),
        title: "Root account used".into(),
        description: "d".into(),
        severity: SeverityLabel::High,
        types: vec!["TTPs/Privilege Escalation".into()],
        remediation: "https://example.com/r".into(),
        event_uids: uids.iter().map(|s| s.to_string()).collect(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        time: "2024-05-14T00:00:05.000Z".into(),
        first_seen: "2024-05-14T00:00:00.000Z".into(),
        actor: Some("arn:aws:iam::111122223333:root".into()),
        src_ip: Some("198.51.100.7".into()),
        operation: Some("DescribeInstances".into()),
        resource: DetectionResource {
            id: "arn:aws:iam::111122223333:root".into(),
            type_: "Other".into(),
        },
        class_uid: 6003,
    }
}

fn custom() -> CustomFinding {
    CustomFinding {
        correlation_id: "scan-42".into(),
        severity: "high".into(),
        title: "Open bucket".into(),
        description: "Bucket is world readable".into(),
        resource_id: "arn:aws:s3:::acme-data".into(),
        resource_type: "AwsS3Bucket".into(),
        source_url: Some("https://scanner.example.com/42".into()),
        account: "111122223333".into(),
        region: Some("eu-west-1".into()),
        types: vec!["Software and Configuration Checks/Vulnerabilities".into()],
        created_at: "2024-05-14T00:00:00Z".into(),
        generator: Some("acme-scanner".into()),
        remediation_url: None,
        product_fields: BTreeMap::new(),
    }
}

#[test]
fn detections_become_valid_findings_with_stable_ids() {
    let now = "2024-05-14T01:00:00.000Z";
    let mut f = from_detection(&detection(&["b", "a"]), &target(), now);
    assert_eq!(validate(&mut f), Ok(vec![]));
    assert_eq!(
        f.product_arn,
        "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default"
    );
    assert_eq!(f.generator_id, "muster.cis.cloudwatch.1");
    assert_eq!(f.product_fields["muster/event_uids"], "b,a");
    assert_eq!(
        f.severity,
        Severity {
            label: SeverityLabel::High,
            normalized: 80
        }
    );
    // Same events in another order, later: same Id, UpdatedAt moves, CreatedAt stays.
    let g = from_detection(
        &detection(&["a", "b"]),
        &target(),
        "2024-05-14T02:00:00.000Z",
    );
    assert_eq!(f.id, g.id);
    assert_eq!(f.created_at, g.created_at);
    assert!(g.updated_at > f.updated_at);
    assert_ne!(f.id, from_detection(&detection(&["c"]), &target(), now).id);
}

#[test]
fn custom_findings_map_and_reject_by_field() {
    let now = "2024-05-14T01:00:00.000Z";
    let mut f = from_custom(&custom(), &target(), now).unwrap();
    assert_eq!(validate(&mut f), Ok(vec![]));
    assert_eq!(f.generator_id, "acme-scanner");
    assert_eq!(
        f.id,
        from_custom(&custom(), &target(), "2025-01-01T00:00:00Z")
            .unwrap()
            .id,
        "same correlation id, same Id"
    );
    assert_eq!(f.product_fields["muster/correlation_id"], "scan-42");

    let cases: Vec<(Breaker<CustomFinding>, &str)> = vec![
        (Box::new(|c| c.severity = "SEVERE".into()), "severity"),
        (
            Box::new(|c| c.created_at = "yesterday".into()),
            "created_at",
        ),
        (
            Box::new(|c| c.correlation_id = " ".into()),
            "correlation_id",
        ),
    ];
    for (break_it, field) in cases {
        let mut c = custom();
        break_it(&mut c);
        assert_eq!(from_custom(&c, &target(), now).unwrap_err().field, field);
    }
    let cases: Vec<(Breaker<Finding>, &str)> = vec![
        (
            Box::new(|f| f.aws_account_id = "12345".into()),
            "AwsAccountId",
        ),
        (
            Box::new(|f| f.types = vec!["Made Up/Thing".into()]),
            "Types",
        ),
        (Box::new(|f| f.resources.clear()), "Resources"),
        (
            Box::new(|f| f.resources = vec![f.resources[0].clone(); 33]),
            "Resources",
        ),
        (Box::new(|f| f.title = String::new()), "Title"),
        (
            Box::new(|f| f.updated_at = "2024-13-01T00:00:00Z".into()),
            "UpdatedAt",
        ),
        (
            Box::new(|f| f.description = "x".repeat(300 * 1024)),
            "Resources",
        ),
    ];
    for (break_it, field) in cases {
        let mut f = from_custom(&custom(), &target(), now).unwrap();
        break_it(&mut f);
        if f.description.len() > MAX_FINDING_BYTES {
            // Description is truncated first, so make something else huge.
            f.product_fields = (0..50)
                .map(|i| (format!("k{i}"), "v".repeat(2000)))
                .collect();
            f.resources = (0..32)
                .map(|i| Resource {
                    type_: "Other".into(),
                    id: format!("{i}{}", "r".repeat(8000)),
                    partition: None,
                    region: None,
                })
                .collect();
        }
        assert_eq!(validate(&mut f).unwrap_err().field, field);
    }
}

#[test]
fn long_text_is_truncated_with_a_marker_not_rejected() {
    let mut f = from_custom(&custom(), &target(), "2024-05-14T01:00:00Z").unwrap();
    f.title = "t".repeat(300);
    f.description = "é".repeat(2000);
    let adjusted = validate(&mut f).unwrap();
    assert_eq!(adjusted.len(), 2);
    assert_eq!(f.title.chars().count(), MAX_TITLE_CHARS);
    assert_eq!(f.description.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(f.description.ends_with("[truncated]"));
}

#[test]
fn batches_respect_count_and_size() {
    let f = from_custom(&custom(), &target(), "2024-05-14T01:00:00Z").unwrap();
    let many: Vec<Finding> = (0..250)
        .map(|i| Finding {
            id: format!("id-{i}"),
            ..f.clone()
        })
        .collect();
    let b = batches(many);
    assert_eq!(
        b.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![100, 100, 50]
    );
    let big = Finding {
        description: "x".repeat(200 * 1024),
        ..f.clone()
    };
    let b = batches(vec![big; 70]);
    assert!(b.len() >= 3, "70 × 200 KB must split under 6 MB");
    for batch in &b {
        let bytes: usize = batch
            .iter()
            .map(|f| serde_json::to_vec(f).unwrap().len())
            .sum();
        assert!(bytes <= MAX_BATCH_BYTES && batch.len() <= MAX_BATCH_FINDINGS);
    }
}

/// A finding with a 300 KB Description alone is fitted (the Description is cut to
/// 1024 characters); one that is 300 KB for another reason is refused, and the error
/// names the member that makes it big and both sizes.
#[test]
fn a_300_kb_finding_is_truncated_or_refused_by_what_makes_it_big() {
    let now = "2024-05-14T01:00:00Z";
    let mut f = from_custom(&custom(), &target(), now).unwrap();
    f.description = "d".repeat(300 * 1024);
    assert!(serde_json::to_vec(&f).unwrap().len() > 300 * 1024);
    assert_eq!(
        validate(&mut f),
        Ok(vec![format!(
            "Description truncated to {MAX_DESCRIPTION_CHARS} characters"
        )])
    );
    assert!(serde_json::to_vec(&f).unwrap().len() < MAX_FINDING_BYTES);

    // 300 KB of resources: nothing to truncate, so the finding is refused.
    let mut f = from_custom(&custom(), &target(), now).unwrap();
    f.resources = (0..30)
        .map(|i| Resource {
            type_: "Other".into(),
            id: format!("resource-{i}-{}", "r".repeat(10 * 1024)),
            partition: None,
            region: None,
        })
        .collect();
    let size = serde_json::to_vec(&f).unwrap().len();
    assert!(size > 300 * 1024, "{size}");
    let err = validate(&mut f).unwrap_err();
    assert_eq!(err.field, "Resources");
    assert!(
        err.reason.contains(&format!("the finding is {size} bytes"))
            && err.reason.contains(&MAX_FINDING_BYTES.to_string())
            && err.reason.contains("Resources is "),
        "{err}"
    );
    assert!(err.to_string().starts_with(&f.id), "{err}");
}

/// The 6 MB limit splits exactly where it is crossed: findings sized so that 24 fit in
/// 5.9 MB and the 25th would pass 6 MB start a new batch with the 25th.
#[test]
fn a_batch_splits_exactly_where_6_mb_would_be_crossed() {
    let base = from_custom(&custom(), &target(), "2024-05-14T01:00:00Z").unwrap();
    let bare = serde_json::to_vec(&base).unwrap().len();
    // Each finding (plus the separator batches() counts) is exactly 1/24 of 5.9 MB.
    let per = (59 * MAX_BATCH_BYTES / 60) / 24;
    let finding = |i: usize| {
        let mut f = base.clone();
        f.id = format!("id-{i:04}");
        let pad = per - 1 - serde_json::to_vec(&f).unwrap().len();
        f.product_fields
            .insert("pad".into(), "p".repeat(pad - r#","pad":"""#.len()));
        f
    };
    let one = serde_json::to_vec(&finding(0)).unwrap().len() + 1;
    assert_eq!(one, per, "sizing (bare finding {bare} bytes)");
    assert!(24 * one <= MAX_BATCH_BYTES && 25 * one > MAX_BATCH_BYTES);
    let b = batches((0..60).map(finding).collect());
    assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![24, 24, 12]);
    assert_eq!(
        b[1][0].id, "id-0024",
        "the 25th finding opens the second batch"
    );
    // One byte less each and 25 fit; the split moves by one.
    let smaller = |i: usize| {
        let mut f = finding(i);
        let want = MAX_BATCH_BYTES / 25 - 1;
        let now = serde_json::to_vec(&f).unwrap().len();
        let pad = f.product_fields.get_mut("pad").unwrap();
        pad.truncate(pad.len() - (now - want));
        f
    };
    let b = batches((0..50).map(smaller).collect());
    assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![25, 25]);
}
