//! CloudWatch embedded metric format (EMF) documents. Printed to stdout in Lambda,
//! CloudWatch Logs turns them into metrics without any PutMetricData call.

use crate::normalize::Summary;
use serde_json::json;

/// The per-object normaliser metrics: RecordsIn, RecordsOut, Quarantined by Source.
pub fn object_metrics(namespace: &str, summary: &Summary, timestamp_ms: i64) -> Option<String> {
    let source = summary.source?;
    let doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Source"]],
                "Metrics": [
                    {"Name": "RecordsIn", "Unit": "Count"},
                    {"Name": "RecordsOut", "Unit": "Count"},
                    {"Name": "Quarantined", "Unit": "Count"},
                    {"Name": "Skipped", "Unit": "Count"}
                ]
            }]
        },
        "Source": source,
        "RecordsIn": summary.records_in,
        "RecordsOut": summary.records_out,
        "Quarantined": summary.quarantined,
        "Skipped": summary.skipped,
        "Object": summary.object,
    });
    Some(doc.to_string())
}

fn single_metric(
    namespace: &str,
    metric: &str,
    dimension: &str,
    value_of_dimension: &str,
    count: u64,
    timestamp_ms: i64,
) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[dimension]],
                "Metrics": [{"Name": metric, "Unit": "Count"}]
            }]
        },
        (dimension): value_of_dimension,
        (metric): count,
    })
    .to_string()
}

/// Every EMF document for one object: the record counts by Source, and, where the object
/// had any, `AuthenticationAttempts` by `Result` (Success | Failure) and `DataAccess` by
/// `ResourceType`. One document per dimension value, as EMF requires.
pub fn all_metrics(namespace: &str, summary: &Summary, timestamp_ms: i64) -> Vec<String> {
    let mut docs: Vec<String> = object_metrics(namespace, summary, timestamp_ms)
        .into_iter()
        .collect();
    for (result, n) in [
        ("Success", summary.auth_success),
        ("Failure", summary.auth_failure),
    ] {
        if n > 0 {
            docs.push(single_metric(
                namespace,
                "AuthenticationAttempts",
                "Result",
                result,
                n,
                timestamp_ms,
            ));
        }
    }
    for (resource_type, n) in &summary.data_access {
        docs.push(single_metric(
            namespace,
            "DataAccess",
            "ResourceType",
            resource_type,
            *n,
            timestamp_ms,
        ));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_names_metrics_and_dimension() {
        let s = Summary {
            source: Some("vpcflow"),
            records_in: 5,
            records_out: 4,
            quarantined: 1,
            ..Summary::default()
        };
        let doc: serde_json::Value =
            serde_json::from_str(&object_metrics("Muster", &s, 1000).unwrap()).unwrap();
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Muster");
        assert_eq!(doc["Source"], "vpcflow");
        assert_eq!(doc["RecordsIn"], 5);
        assert_eq!(doc["Quarantined"], 1);
        assert!(object_metrics("Muster", &Summary::default(), 0).is_none());
    }

    #[test]
    fn auth_and_data_access_get_one_document_per_dimension_value() {
        let mut s = Summary {
            source: Some("cloudtrail"),
            auth_success: 3,
            auth_failure: 2,
            ..Summary::default()
        };
        s.data_access.insert("AWS::S3::Object".into(), 7);
        let docs: Vec<serde_json::Value> = all_metrics("Muster", &s, 1000)
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[1]["Result"], "Success");
        assert_eq!(docs[1]["AuthenticationAttempts"], 3);
        assert_eq!(docs[2]["Result"], "Failure");
        assert_eq!(docs[2]["AuthenticationAttempts"], 2);
        assert_eq!(docs[3]["ResourceType"], "AWS::S3::Object");
        assert_eq!(docs[3]["DataAccess"], 7);
        assert_eq!(
            docs[3]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "ResourceType"
        );
    }
}
