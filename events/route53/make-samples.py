#!/usr/bin/env python3
"""Writes the Route 53 Resolver query log samples. No real file is published, so
these follow AWS's documented field list and example
(https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resolver-query-logs-format.html),
laid out by the S3 delivery key AWSLogs/<account>/vpcdnsquerylogs/<vpc-id>/YYYY/MM/DD/."""
import gzip, json, os

ACCT, VPC = "111122223333", "vpc-0a1b2c3d4e5f67890"


def rec(ts, name, qtype="A", rcode="NOERROR", answers=(), src="10.0.1.23", port="53421",
        transport="UDP", srcids=None, **more):
    r = {
        "version": "1.100000", "account_id": ACCT, "region": "us-east-1", "vpc_id": VPC,
        "query_timestamp": ts, "query_name": name, "query_type": qtype, "query_class": "IN",
        "rcode": rcode, "answers": list(answers), "srcaddr": src, "srcport": port,
        "transport": transport, "srcids": srcids or {"instance": "i-0abc1234def567890"},
    }
    r.update(more)
    return r


records = [
    rec("2024-05-14T10:00:00Z", "www.example.com.", answers=[
        {"Rdata": "www.example.com.cdn.example.net.", "Type": "CNAME", "Class": "IN"},
        {"Rdata": "203.0.113.10", "Type": "A", "Class": "IN"}]),
    # NXDOMAIN: no answers.
    rec("2024-05-14T10:00:01Z", "no-such-host.example.com.", rcode="NXDOMAIN"),
    # AAAA over TCP.
    rec("2024-05-14T10:00:02Z", "ipv6.example.com.", qtype="AAAA", transport="TCP",
        answers=[{"Rdata": "2001:db8::10", "Type": "AAAA", "Class": "IN"}]),
    # From on premises through an inbound Resolver endpoint.
    rec("2024-05-14T10:00:03Z", "internal.corp.example.", src="192.168.10.5", port="49152",
        srcids={"resolver_endpoint": "rslvr-in-0123456789abcdef0", "resolver_network_interface": "rni-0123456789abcdef0"},
        answers=[{"Rdata": "10.0.2.15", "Type": "A", "Class": "IN"}]),
    # DNS Firewall blocked a known-bad domain.
    rec("2024-05-14T10:00:04Z", "malware.example.org.", rcode="NXDOMAIN",
        firewall_rule_action="BLOCK", firewall_rule_group_id="rslvr-frg-0123456789abcdef",
        firewall_domain_list_id="rslvr-fdl-0123456789abcdef"),
    # DNS Firewall alert only; answered.
    rec("2024-05-14T10:00:05Z", "suspicious.example.net.", answers=[{"Rdata": "198.51.100.77", "Type": "A", "Class": "IN"}],
        firewall_rule_action="ALERT", firewall_rule_group_id="rslvr-frg-0123456789abcdef",
        firewall_domain_list_id="rslvr-fdl-fedcba9876543210"),
    # A service-record name with underscores (not an OCSF hostname): kept in unmapped.
    rec("2024-05-14T10:00:06Z", "_ldap._tcp.dc._msdcs.corp.example.", qtype="SRV",
        answers=[{"Rdata": "0 100 389 dc1.corp.example.", "Type": "SRV", "Class": "IN"}]),
    # SERVFAIL.
    rec("2024-05-14T10:00:07Z", "broken-dnssec.example.com.", rcode="SERVFAIL"),
]

d = f"AWSLogs/{ACCT}/vpcdnsquerylogs/{VPC}/2024/05/14"
os.makedirs(d, exist_ok=True)
with gzip.open(f"{d}/vpcdnsquerylogs.{ACCT}.{VPC}.20240514T1000Z.muster01.log.gz", "wt") as f:
    for r in records:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
