#!/usr/bin/env python3
"""Writes the WAF samples: WAFv2 log records after AWS's documented format
(https://docs.aws.amazon.com/waf/latest/developerguide/logging-fields.html and the
examples on logging-examples.html), laid out by their S3 delivery keys."""
import json, os

ACCT = "111122223333"
ACL = f"arn:aws:wafv2:us-east-1:{ACCT}:regional/webacl/muster-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
GLOBAL_ACL = f"arn:aws:wafv2:us-east-1:{ACCT}:global/webacl/muster-cf-acl/a1b2c3d4-5678-90ab-cdef-EXAMPLE22222"


def rec(ts, action, rule="Default_Action", rtype="REGULAR", acl=ACL, src=("ALB", f"{ACCT}-app/muster-alb/0123456789abcdef"),
        ip="198.51.100.7", country="US", method="GET", uri="/", args="", version="HTTP/1.1",
        host="www.example.com", extra_headers=(), **more):
    r = {
        "timestamp": ts, "formatVersion": 1, "webaclId": acl,
        "terminatingRuleId": rule, "terminatingRuleType": rtype, "action": action,
        "terminatingRuleMatchDetails": [], "httpSourceName": src[0], "httpSourceId": src[1],
        "ruleGroupList": [], "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
        "requestHeadersInserted": None, "responseCodeSent": None,
        "httpRequest": {
            "clientIp": ip, "country": country,
            "headers": [{"name": "Host", "value": host}, {"name": "User-Agent", "value": "Mozilla/5.0 (X11; Linux x86_64)"}, *extra_headers],
            "uri": uri, "args": args, "httpVersion": version, "httpMethod": method,
            "requestId": f"1-66433c00-{ts:024x}"[:35],
        },
    }
    r.update(more)
    return r


records = [
    # Allowed by the default action; a managed rule group evaluated without a match.
    rec(1715680800000, "ALLOW", ruleGroupList=[{"ruleGroupId": "AWS#AWSManagedRulesCommonRuleSet", "terminatingRule": None,
        "nonTerminatingMatchingRules": [], "excludedRules": None, "customerConfig": None}]),
    # Blocked by a managed rule (SQL injection in the query string), with labels.
    rec(1715680801000, "BLOCK", rule="AWS-AWSManagedRulesSQLiRuleSet", rtype="MANAGED_RULE_GROUP",
        method="GET", uri="/products", args="id=1%27%20OR%20%271%27=%271",
        terminatingRuleMatchDetails=[{"conditionType": "SQL_INJECTION", "sensitivityLevel": "LOW", "location": "QUERY_STRING",
                                      "matchedData": ["1", "'", "OR", "'1'"]}],
        ruleGroupList=[{"ruleGroupId": "AWS#AWSManagedRulesSQLiRuleSet", "terminatingRule": {"ruleId": "SQLi_QUERYARGUMENTS", "action": "BLOCK", "ruleMatchDetails": None},
                        "nonTerminatingMatchingRules": [], "excludedRules": None, "customerConfig": None}],
        labels=[{"name": "awswaf:managed:aws:sql-database:SQLi_QueryArguments"}]),
    # Blocked by a rate-based rule with a custom response code, IPv6 client, HTTP/2 POST.
    rec(1715680802000, "BLOCK", rule="muster-rate-limit", rtype="RATE_BASED", ip="2001:db8:85a3::8a2e:370:7334", country="DE",
        method="POST", uri="/login", version="HTTP/2.0",
        rateBasedRuleList=[{"rateBasedRuleId": "a1b2c3d4-rate", "rateBasedRuleName": "muster-rate-limit", "limitKey": "IP", "maxRateAllowed": 100,
                            "evaluationWindowSec": "300", "customValues": []}],
        responseCodeSent=429),
    # COUNT: a rule in count mode matched; the request went on and was allowed.
    rec(1715680803000, "ALLOW", method="PUT", uri="/api/items/7",
        nonTerminatingMatchingRules=[{"ruleId": "muster-geo-count", "action": "COUNT", "ruleMatchDetails": []}],
        labels=[{"name": "awswaf:clientip:geo:country:US"}, {"name": "awswaf:clientip:geo:region:US-WA"}]),
    # CAPTCHA on a CloudFront (global) web ACL: no token, the puzzle was served.
    rec(1715680804000, "CAPTCHA", rule="muster-captcha-login", acl=GLOBAL_ACL, src=("CF", "E2EXAMPLE12345"),
        country="FR", uri="/checkout", host="d111111abcdef8.cloudfront.net:443",
        captchaResponse={"responseCode": 405, "solveTimestamp": 0, "failureReason": "TOKEN_MISSING"}),
    # CHALLENGE with an expired token; a PATCH request (activity Other).
    rec(1715680805000, "CHALLENGE", rule="muster-challenge-api", method="PATCH", uri="/api/items/7",
        challengeResponse={"responseCode": 202, "solveTimestamp": 1715680000, "failureReason": "TOKEN_EXPIRED"},
        requestHeadersInserted=[{"name": "x-amzn-waf-muster", "value": "challenged"}]),
    # COUNT as the terminating action (a rule whose action is Count and nothing else matched).
    rec(1715680806000, "COUNT", rule="muster-count-all", extra_headers=[{"name": "Referer", "value": "https://www.example.com/"}],
        ja3Fingerprint="2cc1ba5ad03e51da0c7f0d4e0fa4b6c0"),
]

d = f"AWSLogs/{ACCT}/WAFLogs/us-east-1/muster-acl/2024/05/14/10/05"
os.makedirs(d, exist_ok=True)
with open(f"{d}/aws-waf-logs-muster_{ACCT}_muster-acl_20240514T1005Z_muster01.log", "w") as f:
    for r in records:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
