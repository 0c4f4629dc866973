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
}
