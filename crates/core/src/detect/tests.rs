use super::*;
use crate::ocsf::{
    Actor, Api, ApiResponse, Class, Cloud, Endpoint, Event, Metadata, Product, Service, Status,
    User,
};
use std::borrow::Cow;

struct Call<'a> {
    service: &'a str,
    operation: &'a str,
    user_type: &'a str,
    error: Option<&'a str>,
    invoked_by: Option<&'a str>,
}

fn api_event(c: &Call<'_>) -> Event<'static> {
    let mut md = Metadata::new(Product::aws("CloudTrail"));
    md.uid = Some(Cow::Owned(format!("uid-{}", c.operation)));
    md.event_code = Some(Cow::Borrowed("AwsApiCall"));
    let mut e = Event::new(Class::ApiActivity, 3, "Update", 1_715_644_800_000, md);
    e.cloud = Some(Cloud::aws(
        Some("us-east-1".into()),
        Some("111122223333".into()),
    ));
    e.actor = Some(Actor {
        user: Some(User {
            type_: Some(Cow::Owned(c.user_type.to_string())),
            uid_alt: Some("arn:aws:iam::111122223333:user/alice".into()),
            ..User::default()
        }),
        invoked_by: c.invoked_by.map(|s| Cow::Owned(s.to_string())),
        ..Actor::default()
    });
    e.api = Some(Api {
        operation: Cow::Owned(c.operation.to_string()),
        service: Some(Service {
            name: Cow::Owned(c.service.to_string()),
        }),
        response: c.error.map(|err| ApiResponse {
            error: Some(Cow::Owned(err.to_string())),
            error_message: None,
        }),
        ..Api::default()
    });
    e.set_status(if c.error.is_some() {
        Status::Failure
    } else {
        Status::Success
    });
    e.src_endpoint = Some(Endpoint {
        ip: Some("198.51.100.7".into()),
        ..Endpoint::default()
    });
    e
}

fn login(ok: bool, mfa: bool, ip: &str, at: i64) -> Event<'static> {
    let mut md = Metadata::new(Product::aws("CloudTrail"));
    md.uid = Some(Cow::Owned(format!("login-{at}")));
    let mut e = Event::new(Class::Authentication, 1, "Logon", at, md);
    e.cloud = Some(Cloud::aws(
        Some("us-east-1".into()),
        Some("111122223333".into()),
    ));
    e.user = Some(User {
        type_: Some("User".into()),
        type_id: Some(1),
        name: Some("alice".into()),
        ..User::default()
    });
    e.is_mfa = Some(mfa);
    e.api = Some(Api {
        operation: "ConsoleLogin".into(),
        service: Some(Service {
            name: "signin.amazonaws.com".into(),
        }),
        ..Api::default()
    });
    e.set_status(if ok { Status::Success } else { Status::Failure });
    e.src_endpoint = Some(Endpoint {
        ip: Some(Cow::Owned(ip.to_string())),
        ..Endpoint::default()
    });
    e
}

fn hits(e: &Event<'_>) -> Vec<String> {
    let mut d = Detector::new(RuleSet::builtin());
    let mut out: Vec<String> = d.observe(e).into_iter().map(|d| d.rule_id).collect();
    out.extend(d.finish().into_iter().map(|d| d.rule_id));
    out
}

#[test]
fn builtin_rules_load_and_cover_the_cis_monitoring_set() {
    let set = RuleSet::builtin();
    for n in 1..=14 {
        assert!(
            set.rules
                .iter()
                .any(|r| r.id == format!("muster.cis.cloudwatch.{n}")),
            "CloudWatch.{n} missing"
        );
    }
    assert!(set.rules.iter().any(|r| r.threshold.is_some()));
}

#[test]
fn each_cis_rule_fires_on_its_event_and_only_there() {
    let call = |service, operation| Call {
        service,
        operation,
        user_type: "IAMUser",
        error: None,
        invoked_by: None,
    };
    let cases: Vec<(Call, Vec<&str>)> = vec![
        (
            Call {
                user_type: "Root",
                ..call("ec2.amazonaws.com", "DescribeInstances")
            },
            vec!["muster.cis.cloudwatch.1"],
        ),
        (
            Call {
                user_type: "Root",
                invoked_by: Some("config.amazonaws.com"),
                ..call("ec2.amazonaws.com", "DescribeInstances")
            },
            vec![],
        ),
        (
            Call {
                error: Some("AccessDenied"),
                ..call("s3.amazonaws.com", "GetObject")
            },
            vec!["muster.cis.cloudwatch.2"],
        ),
        (
            Call {
                error: Some("Client.UnauthorizedOperation"),
                ..call("ec2.amazonaws.com", "RunInstances")
            },
            vec!["muster.cis.cloudwatch.2"],
        ),
        (
            call("iam.amazonaws.com", "AttachRolePolicy"),
            vec!["muster.cis.cloudwatch.4"],
        ),
        (
            call("cloudtrail.amazonaws.com", "StopLogging"),
            vec!["muster.cis.cloudwatch.5"],
        ),
        (
            call("kms.amazonaws.com", "ScheduleKeyDeletion"),
            vec!["muster.cis.cloudwatch.7"],
        ),
        (
            call("s3.amazonaws.com", "PutBucketPolicy"),
            vec!["muster.cis.cloudwatch.8"],
        ),
        (
            call("config.amazonaws.com", "StopConfigurationRecorder"),
            vec!["muster.cis.cloudwatch.9"],
        ),
        (
            call("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            vec!["muster.cis.cloudwatch.10"],
        ),
        (
            call("ec2.amazonaws.com", "ReplaceNetworkAclEntry"),
            vec!["muster.cis.cloudwatch.11"],
        ),
        (
            call("ec2.amazonaws.com", "AttachInternetGateway"),
            vec!["muster.cis.cloudwatch.12"],
        ),
        (
            call("ec2.amazonaws.com", "CreateRoute"),
            vec!["muster.cis.cloudwatch.13"],
        ),
        (
            call("ec2.amazonaws.com", "CreateVpcPeeringConnection"),
            vec!["muster.cis.cloudwatch.14"],
        ),
        (
            call("organizations.amazonaws.com", "LeaveOrganization"),
            vec!["muster.cis.organizations"],
        ),
        (call("ec2.amazonaws.com", "DescribeInstances"), vec![]),
        // A refused change is an unauthorised call, not a change.
        (
            Call {
                error: Some("AccessDenied"),
                ..call("kms.amazonaws.com", "DisableKey")
            },
            vec!["muster.cis.cloudwatch.2"],
        ),
    ];
    for (c, want) in cases {
        assert_eq!(
            hits(&api_event(&c)),
            want,
            "{} {} {:?}",
            c.service,
            c.operation,
            c.error
        );
    }
    assert_eq!(
        hits(&login(true, false, "198.51.100.7", 0)),
        vec!["muster.cis.cloudwatch.3"]
    );
    assert!(hits(&login(true, true, "198.51.100.7", 0)).is_empty());
    assert_eq!(
        hits(&login(false, false, "198.51.100.7", 0)),
        vec!["muster.cis.cloudwatch.6"]
    );
}

#[test]
fn repeated_failures_fire_once_per_burst_with_every_event_uid() {
    let mut d = Detector::new(RuleSet::builtin());
    let base = 1_715_644_800_000;
    let mut fired = Vec::new();
    for i in 0..4 {
        fired.extend(d.observe(&login(false, false, "203.0.113.9", base + i * 10_000)));
        // Another source's failures do not add up with these.
        fired.extend(d.observe(&login(false, false, "203.0.113.10", base + i * 10_000)));
    }
    assert!(
        fired
            .iter()
            .all(|h| h.rule_id != "muster.auth.repeated-failures"),
        "four is below the threshold"
    );
    let hit: Vec<_> = d
        .observe(&login(false, false, "203.0.113.9", base + 50_000))
        .into_iter()
        .filter(|h| h.rule_id == "muster.auth.repeated-failures")
        .collect();
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].event_uids.len(), 5);
    assert_eq!(hit[0].src_ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(hit[0].first_seen, "2024-05-14T00:00:00.000Z");

    // Failures spread wider than the window never add up to five.
    let mut d = Detector::new(RuleSet::builtin());
    let spread: usize = (0..10)
        .map(|i| {
            d.observe(&login(false, false, "203.0.113.11", base + i * 100_000))
                .into_iter()
                .filter(|h| h.rule_id == "muster.auth.repeated-failures")
                .count()
        })
        .sum();
    assert_eq!(spread, 0);
}

#[test]
fn bad_rules_files_are_refused_with_the_rule_named() {
    let cases = [
        (
            r#"{"rules":[{"id":"x","title":"t","description":"d","severity":"HIGH","types":[],"remediation":"r","when":{"field":"api.nope","equals":"a"}}]}"#,
            "unknown field 'api.nope'",
        ),
        (
            r#"{"rules":[{"id":"x","title":"t","description":"d","severity":"SEVERE","types":[],"remediation":"r","when":{"field":"api.operation","equals":"a"}}]}"#,
            "unknown variant",
        ),
        (
            r#"{"rules":[{"id":"x","title":"t","description":"d","severity":"LOW","types":[],"remediation":"r","when":{"field":"api.operation"}}]}"#,
            "has no test",
        ),
        (
            r#"{"rules":[{"id":"x","title":"t","description":"d","severity":"LOW","types":[],"remediation":"r","when":{"all":[]}}]}"#,
            "empty all/any",
        ),
    ];
    for (text, want) in cases {
        let err = RuleSet::from_json(text).unwrap_err();
        assert!(err.contains(want), "{err} should mention {want}");
    }
    let dup = format!(
        r#"{{"rules":[{r},{r}]}}"#,
        r = r#"{"id":"x","title":"t","description":"d","severity":"LOW","types":[],"remediation":"r","when":{"field":"api.operation","equals":"a"}}"#
    );
    assert!(RuleSet::from_json(&dup).unwrap_err().contains("duplicate"));
}

#[test]
fn user_rules_extend_and_override_the_builtin_ones() {
    let mine = RuleSet::from_json(
        r#"{"rules":[
            {"id":"muster.cis.cloudwatch.1","title":"Root!","description":"d","severity":"CRITICAL","types":["x"],"remediation":"r","when":{"field":"actor.user.type","equals":"Root"}},
            {"id":"acme.get-secret","title":"Secret read","description":"d","severity":"LOW","types":["x"],"remediation":"r","when":{"field":"api.operation","equals":"GetSecretValue"}}
        ]}"#,
    )
    .unwrap();
    let set = RuleSet::builtin().merged_with(mine);
    let root = set
        .rules
        .iter()
        .find(|r| r.id == "muster.cis.cloudwatch.1")
        .unwrap();
    assert_eq!(root.severity, SeverityLabel::Critical);
    let mut d = Detector::new(set);
    let e = api_event(&Call {
        service: "secretsmanager.amazonaws.com",
        operation: "GetSecretValue",
        user_type: "IAMUser",
        error: None,
        invoked_by: None,
    });
    assert!(d.observe(&e).is_empty());
    assert_eq!(
        d.finish()
            .iter()
            .map(|h| h.rule_id.as_str())
            .collect::<Vec<_>>(),
        vec!["acme.get-secret"]
    );
}

#[test]
fn resources_get_asff_types() {
    assert_eq!(
        asff_resource_type(Some("AWS::S3::Bucket"), "arn:aws:s3:::b"),
        "AwsS3Bucket"
    );
    assert_eq!(
        asff_resource_type(None, "arn:aws:iam::1:role/Admin"),
        "AwsIamRole"
    );
    assert_eq!(
        asff_resource_type(None, "arn:aws:kms:us-east-1:1:key/abc"),
        "AwsKmsKey"
    );
    assert_eq!(asff_resource_type(None, "i-123"), "Other");
}

#[test]
fn simple_hits_group_per_actor_and_resource_with_bounded_uids() {
    let mut d = Detector::new(RuleSet::builtin());
    let denied = |n: usize| {
        let mut e = api_event(&Call {
            service: "s3.amazonaws.com",
            operation: "GetObject",
            user_type: "IAMUser",
            error: Some("AccessDenied"),
            invoked_by: None,
        });
        e.metadata.uid = Some(Cow::Owned(format!("denied-{n}")));
        e.time += n as i64;
        e
    };
    let mut done = Vec::new();
    for n in 0..(MAX_UIDS_PER_DETECTION + 5) {
        done.extend(d.observe(&denied(n)));
    }
    assert_eq!(done.len(), 1, "a full group is reported at once");
    assert_eq!(done[0].event_uids.len(), MAX_UIDS_PER_DETECTION);
    let rest = d.finish();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].event_uids,
        (MAX_UIDS_PER_DETECTION..MAX_UIDS_PER_DETECTION + 5)
            .map(|n| format!("denied-{n}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(done[0].first_seen, "2024-05-14T00:00:00.000Z");
    assert_eq!(done[0].time, "2024-05-14T00:00:00.099Z");
}

/// The rules over the CloudTrail sample in events/ as the mapper really shapes it: the
/// synthetic events above only shape the fields the rules read, and the mapper names a
/// root identity's type "Admin" (OCSF's), which is why CloudWatch.1 also looks at ARNs.
#[test]
fn rules_fire_on_the_cloudtrail_sample_as_mapped() {
    use crate::normalize::{normalize_object_with, Settings};
    use crate::ports::{memory::MemoryStore, DetectionBus, ObjectMeta, OpenedObject};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Collect(Mutex<Vec<Detection>>);
    impl DetectionBus for Collect {
        fn publish(&self, detections: &[Detection]) -> crate::Result<()> {
            self.0.lock().unwrap().extend_from_slice(detections);
            Ok(())
        }
    }
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz";
    let path = format!(
        "{}/../../events/cloudtrail/{key}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let store = MemoryStore::new();
    let settings = Settings {
        rules: Some(Arc::new(RuleSet::builtin())),
        ..Settings::default()
    };
    let bus = Collect(Mutex::new(Vec::new()));
    let object = OpenedObject {
        meta: ObjectMeta {
            key: key.into(),
            ..ObjectMeta::default()
        },
        body: Box::new(std::io::Cursor::new(bytes)),
    };
    let outcome = normalize_object_with(object, &settings, &store, &store, Some(&bus));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let mut fired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in bus.0.into_inner().unwrap() {
        fired.entry(d.rule_id).or_default().extend(d.event_uids);
    }
    let uid = |n: u32| format!("3b0e1d6a-6a4e-4a5c-9a1e-{n:012}");
    let cases = [
        ("muster.cis.cloudwatch.1", vec![uid(3)]), // the root sign-in
        ("muster.cis.cloudwatch.2", vec![uid(10)]), // ListUsers: AccessDenied
        ("muster.cis.cloudwatch.3", vec![uid(4)]), // a sign-in without MFA
        ("muster.cis.cloudwatch.4", vec![uid(7)]), // AttachRolePolicy
        ("muster.cis.cloudwatch.6", vec![uid(2)]), // the failed sign-in
    ];
    for (rule, uids) in &cases {
        assert_eq!(fired.get(*rule), Some(uids), "{rule}: {fired:#?}");
    }
    assert_eq!(fired.len(), cases.len(), "{fired:#?}");
}
