#!/usr/bin/env python3
"""Writes the CloudFront standard log samples after AWS's documented format
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html):
#Version/#Fields headers, 33 tab-separated fields, URL-encoded user agents, `-` for
absent values; delivered as <prefix>/<distribution-id>.YYYY-MM-DD-HH.<hash>.gz."""
import gzip, os

FIELDS = ("date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
          "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
          "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version "
          "fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type "
          "sc-content-len sc-range-start sc-range-end").split()
DIST = "d111111abcdef8.cloudfront.net"
UA = "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/124.0.0.0%20Safari/537.36"


def row(time, ip, method, uri, status, **kw):
    v = {f: "-" for f in FIELDS}
    v.update({"date": "2024-05-14", "time": time, "x-edge-location": "SEA19-C1", "sc-bytes": "2302", "c-ip": ip,
              "cs-method": method, "cs(Host)": DIST, "cs-uri-stem": uri, "sc-status": status,
              "cs(User-Agent)": UA, "x-edge-result-type": "Hit", "x-edge-request-id": f"EXAMPLE{time.replace(':', '')}reqid==",
              "x-host-header": "www.example.com", "cs-protocol": "https", "cs-bytes": "158", "time-taken": "0.012",
              "ssl-protocol": "TLSv1.3", "ssl-cipher": "TLS_AES_128_GCM_SHA256", "x-edge-response-result-type": "Hit",
              "cs-protocol-version": "HTTP/2.0", "c-port": "54321", "time-to-first-byte": "0.011",
              "x-edge-detailed-result-type": "Hit", "sc-content-type": "text/html", "sc-content-len": "2100"})
    v.update({k.replace("_", "-").replace("cs-User-Agent", "cs(User-Agent)"): x for k, x in kw.items()})
    return "\t".join(v[f] for f in FIELDS)


rows = [
    row("10:00:00", "192.0.2.100", "GET", "/index.html", "200"),
    # Query string, referer, HTTP/1.1, cache miss.
    row("10:00:01", "198.51.100.23", "GET", "/search", "200", **{"cs-uri-query": "q=muster%20ocsf&page=2",
        "cs(Referer)": "https://www.example.com/", "cs-protocol-version": "HTTP/1.1", "x-edge-result-type": "Miss"}),
    # IPv6 viewer, POST refused by a WAF rule on the distribution.
    row("10:00:02", "2001:db8:4006:812::200e", "POST", "/api/login", "403", **{"x-edge-result-type": "Error",
        "x-edge-detailed-result-type": "Error", "sc-bytes": "915"}),
    # User agent URL-encoded twice (%2520), as some pipelines re-encode it.
    row("10:00:03", "203.0.113.77", "GET", "/robots.txt", "200", **{"cs(User-Agent)":
        "Mozilla/5.0%2520(compatible;%2520bingbot/2.0;%2520+http://www.bing.com/bingbot.htm)"}),
    # Viewer gave up before the response: status 000, plain HTTP, no TLS.
    row("10:00:04", "192.0.2.101", "GET", "/large.bin", "000", **{"cs-protocol": "http", "ssl-protocol": "-",
        "ssl-cipher": "-", "x-edge-result-type": "Error", "sc-bytes": "0"}),
    # WebSocket upgrade.
    row("10:00:05", "192.0.2.102", "GET", "/socket", "101", **{"cs-protocol": "wss", "cs-protocol-version": "HTTP/1.1"}),
    # PATCH (activity Other) with a forwarded-for chain.
    row("10:00:06", "198.51.100.24", "PATCH", "/api/items/7", "204", **{"x-forwarded-for": "10.1.2.3,%20192.0.2.9"}),
]

d = "cloudfront-logs/www"
os.makedirs(d, exist_ok=True)
with gzip.open(f"{d}/E2EXAMPLE12345.2024-05-14-10.a1b2c3d4.gz", "wt") as f:
    f.write("#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n")
    for r in rows:
        f.write(r + "\n")
