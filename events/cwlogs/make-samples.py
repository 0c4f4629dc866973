#!/usr/bin/env python3
"""Writes the CloudWatch Logs subscription samples in this folder (deterministic:
gzip mtime 0, fixed ids).

Payloads follow AWS's documented subscription format
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html):
{messageType, owner, logGroup, logStream, subscriptionFilters, logEvents:[{id,
timestamp, message}]}. CloudWatch Logs gzips each payload and Firehose writes the
records of a batch one after another, so a Firehose object is several gzip members
whose payloads follow each other with no separator; with Firehose's decompression on
it is the same payloads as plain concatenated JSON. Keys follow Firehose's default
S3 prefix (YYYY/MM/DD/HH/) and object name (<stream>-<version>-<time>-<uuid>).
The messages inside are VPC flow log rows (default format), Route 53 Resolver query
log records and CloudTrail records (borrowed from ../cloudtrail), as CloudWatch Logs
carries them one a log event, and application logs of no known source.
"""
import gzip, io, json, os, calendar, time

root = os.path.dirname(os.path.abspath(__file__))
A = "111122223333"; B = "444455556666"
BASE = calendar.timegm(time.strptime("2026-11-20T09:55:00Z", "%Y-%m-%dT%H:%M:%SZ"))
_seq = [0]

def event(ts_ms, message):
    _seq[0] += 1
    # CloudWatch Logs ids are 56-digit decimal strings.
    return {"id": f"{ts_ms:020d}{_seq[0]:036d}", "timestamp": ts_ms, "message": message}

def data(owner, group, stream, events, filt="muster-cwl", extra=None):
    p = {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group, "logStream": stream,
         "subscriptionFilters": [filt], "logEvents": events}
    if extra: p.update(extra)
    return p

def iso(s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))

control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
           "logStream": "", "subscriptionFilters": [],
           "logEvents": [{"id": "", "timestamp": BASE * 1000,
                          "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}

t = BASE
vpc_rows = [
    f"2 {A} eni-0a1b2c3d4e5f67890 10.0.1.25 52.94.133.131 49761 443 6 24 5210 {t} {t+60} ACCEPT OK",
    f"2 {A} eni-0a1b2c3d4e5f67890 203.0.113.45 10.0.1.25 58812 22 6 1 40 {t+2} {t+2} REJECT OK",
    f"2 {A} eni-0a1b2c3d4e5f67890 2001:db8::45 2001:db8:1::25 40123 443 6 12 3120 {t+5} {t+58} ACCEPT OK",
    f"2 {A} eni-0a1b2c3d4e5f67890 10.0.1.25 10.0.1.1 0 0 1 4 336 {t+7} {t+37} ACCEPT OK",
    f"2 {A} eni-0a1b2c3d4e5f67890 - - - - - - - {t} {t+60} - NODATA",
]
vpc = data(A, "/aws/vpc/flowlogs/prod", "eni-0a1b2c3d4e5f67890-all",
           [event((t + 60 + i) * 1000, r) for i, r in enumerate(vpc_rows)])

def r53(s, name, qtype, rcode, answers, src="10.0.1.23", port="53421", transport="UDP", ids=None, extra=None):
    r = {"version": "1.100000", "account_id": A, "region": "us-east-1", "vpc_id": "vpc-0a1b2c3d4e5f67890",
         "query_timestamp": iso(s), "query_name": name, "query_type": qtype, "query_class": "IN",
         "rcode": rcode, "answers": answers, "srcaddr": src, "srcport": port, "transport": transport,
         "srcids": ids or {"instance": "i-0abc1234def567890"}}
    if extra: r.update(extra)
    return json.dumps(r, separators=(",", ":"))

r53_records = [
    r53(t + 1, "www.example.com.", "A", "NOERROR",
        [{"Rdata": "www.example.com.cdn.example.net.", "Type": "CNAME", "Class": "IN"},
         {"Rdata": "203.0.113.10", "Type": "A", "Class": "IN"}]),
    r53(t + 2, "no-such-host.example.com.", "A", "NXDOMAIN", []),
    r53(t + 3, "ipv6.example.com.", "AAAA", "NOERROR", [{"Rdata": "2001:db8::10", "Type": "AAAA", "Class": "IN"}],
        transport="TCP"),
    r53(t + 4, "internal.corp.example.", "A", "NOERROR", [{"Rdata": "10.0.2.15", "Type": "A", "Class": "IN"}],
        src="192.168.10.5", port="49152",
        ids={"resolver_endpoint": "rslvr-in-0123456789abcdef0", "resolver_network_interface": "rni-0123456789abcdef0"}),
    r53(t + 5, "malware.example.net.", "A", "NOERROR", [], extra={
        "firewall_rule_group_id": "rslvr-frg-0123456789abcdef", "firewall_rule_action": "BLOCK",
        "firewall_domain_list_id": "rslvr-fdl-0123456789abcdef"}),
]
route53 = data(A, "/aws/route53resolver/query-logs", "vpc-0a1b2c3d4e5f67890",
               [event((t + 1 + i) * 1000 + 250, r) for i, r in enumerate(r53_records)])

ct_file = os.path.join(root, "..", "cloudtrail", "AWSLogs", A, "CloudTrail", "us-east-1", "2024", "05", "14",
                       f"{A}_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz")
with gzip.open(ct_file, "rt") as f:
    ct = json.load(f)["Records"]
ct_events = []
for i, n in enumerate([0, 1, 5, 8, 10]):
    r = dict(ct[n])
    r["eventTime"] = iso(t + 10 + i)
    ct_events.append(event((t + 10 + i) * 1000 + 500, json.dumps(r, separators=(",", ":"))))
cloudtrail = data(A, f"aws-cloudtrail-logs-{A}-muster", f"{A}_CloudTrail_us-east-1", ct_events)

app = data(B, "/ecs/checkout-service", "ecs/checkout/3f2a9c1e0b7d4e5fa6b7c8d9e0f1a2b3", [
    event((t + 20) * 1000, "2026-11-20 09:55:20,114 INFO  [main] c.e.checkout.Application - Started in 4.2 s"),
    event((t + 21) * 1000, json.dumps({"level": "error", "ts": iso(t + 21), "msg": "payment provider timed out",
                                        "order": "o-81723", "latency_ms": 30001}, separators=(",", ":"))),
    event((t + 22) * 1000, "java.lang.IllegalStateException: cart is empty\n\tat c.e.checkout.Cart.total(Cart.java:88)\n\tat c.e.checkout.Api.pay(Api.java:41)"),
    event((t + 23) * 1000, "Bestellung bestätigt: 3 × “Kaffee”, Summe 12,60 €"),
])

def gz(obj):
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
    return buf.getvalue()

def write(rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)

write("firehose/2026/11/20/10/muster-cwl-1-2026-11-20-10-00-00-6f1c2a4e-8b3d-4f5a-9c7e-0d1e2f3a4b5c.gz",
      b"".join(gz(p) for p in [control, vpc, route53, cloudtrail, app]))

# Firehose with decompression on: the same kind of payloads, plain and back to back.
t2 = BASE + 300
vpc_b = data(B, "vpc-flow-logs", "eni-0f9e8d7c6b5a43210-all", [
    event((t2 + 60) * 1000, f"2 {B} eni-0f9e8d7c6b5a43210 198.51.100.77 10.1.0.8 40123 3389 6 2 88 {t2} {t2+30} REJECT OK"),
    event((t2 + 61) * 1000, f"2 {B} eni-0f9e8d7c6b5a43210 10.1.0.8 192.0.2.80 51000 80 6 10 1500 {t2+1} {t2+59} ACCEPT OK"),
])
# A subscription filter with a space-delimited pattern adds extractedFields; an
# account-level subscription adds policyLevel.
web = data(B, "/var/log/nginx/access", "i-0123456789abcdef0", [
    event((t2 + 5) * 1000, "192.0.2.44 - - [20/Nov/2026:10:00:05 +0000] \"GET /health HTTP/1.1\" 200 2 \"-\" \"ELB-HealthChecker/2.0\""),
], filt="nginx-all", extra={"policyLevel": "ACCOUNT_LEVEL_POLICY"})
web["logEvents"][0]["extractedFields"] = {"ip": "192.0.2.44", "status": "200"}
write("firehose-plain/2026/11/20/10/muster-cwl-plain-1-2026-11-20-10-05-00-0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d",
      b"".join(json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode() for p in [vpc_b, control, web]))
