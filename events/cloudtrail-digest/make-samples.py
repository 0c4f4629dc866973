#!/usr/bin/env python3
"""Writes the CloudTrail digest samples in this folder (deterministic: gzip mtime 0).

Digests follow AWS's documented digest file structure and signing
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-custom-validation.html)
and hash the log files in ../cloudtrail, so re-run this script after changing those.

Signing uses throwaway-test-key.pem, an RSA key made for these samples only (created on the
first run, then reused so that re-running gives the same bytes). CloudTrail signs with its
own regional keys; the matching public key is in public-keys.json, in the shape that
`aws cloudtrail list-public-keys` prints.

Run with the project's venv (it has `cryptography`): .venv/bin/python events/cloudtrail-digest/make-samples.py
"""
import base64, gzip, hashlib, io, json, os
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

here = os.path.dirname(os.path.abspath(__file__))
logs_root = os.path.join(here, "..", "cloudtrail")
BUCKET = "amzn-s3-demo-bucket"
ACCOUNT = "111122223333"
REGION = "us-east-1"
TRAIL = "management-events"

key_path = os.path.join(here, "throwaway-test-key.pem")
if not os.path.exists(key_path):
    fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(key_path, "wb") as f:
        f.write(fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
with open(key_path, "rb") as f:
    signer = serialization.load_pem_private_key(f.read(), password=None)

# CloudTrail hands out the key as DER PKCS#1 RSAPublicKey (what the AWS CLI's validator loads).
public_der = signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
# How CloudTrail derives its fingerprint is not documented; validators only match it
# against the Fingerprint that ListPublicKeys returns, so any stable value does.
fingerprint = hashlib.md5(public_der).hexdigest()

with open(os.path.join(here, "public-keys.json"), "w") as f:
    json.dump({"PublicKeyList": [{
        "Value": base64.b64encode(public_der).decode(),
        "ValidityStartTime": "2024-05-01T00:00:00+00:00",
        "ValidityEndTime": "2024-06-01T00:00:00+00:00",
        "Fingerprint": fingerprint,
    }]}, f, indent=4)
    f.write("\n")


def log_entry(key):
    raw = gzip.decompress(open(os.path.join(logs_root, key), "rb").read())
    times = sorted(r["eventTime"] for r in json.loads(raw)["Records"])
    return {"s3Bucket": BUCKET, "s3Object": key, "hashValue": hashlib.sha256(raw).hexdigest(),
            "hashAlgorithm": "SHA-256", "newestEventTime": times[-1], "oldestEventTime": times[0]}


def digest_key(end):
    compact = end.replace("-", "").replace(":", "")
    return (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{end[0:4]}/{end[5:7]}/{end[8:10]}/"
            f"{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_{compact}.json.gz")


chain = [
    ("2024-05-14T08:00:00Z", "2024-05-14T09:00:00Z",
     ["AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/14/111122223333_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz"]),
    # An hour with no deliveries still gets a digest, with an empty logFiles.
    ("2024-05-14T09:00:00Z", "2024-05-14T10:00:00Z", []),
    # A real chain has a digest every hour; the samples skip from here to rules01's hour.
    ("2024-05-15T12:00:00Z", "2024-05-15T13:00:00Z",
     ["AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/15/111122223333_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz"]),
]

previous = None  # (key, uncompressed bytes, hex signature)
for start, end, logs in chain:
    key = digest_key(end)
    files = [log_entry(k) for k in logs]
    d = {"awsAccountId": ACCOUNT, "digestStartTime": start, "digestEndTime": end,
         "digestS3Bucket": BUCKET, "digestS3Object": key,
         "digestPublicKeyFingerprint": fingerprint, "digestSignatureAlgorithm": "SHA256withRSA",
         "newestEventTime": max((f["newestEventTime"] for f in files), default=None),
         "oldestEventTime": min((f["oldestEventTime"] for f in files), default=None),
         "previousDigestS3Bucket": BUCKET if previous else None,
         "previousDigestS3Object": previous[0] if previous else None,
         "previousDigestHashValue": hashlib.sha256(previous[1]).hexdigest() if previous else None,
         "previousDigestHashAlgorithm": "SHA-256" if previous else None,
         "previousDigestSignature": previous[2] if previous else None,
         "logFiles": files}
    raw = json.dumps(d, separators=(",", ":")).encode()
    # The documented data-signing string; the first digest of a chain signs the word null.
    to_sign = "\n".join([end, f"{BUCKET}/{key}", hashlib.sha256(raw).hexdigest(),
                         previous[2] if previous else "null"]).encode()
    signature = signer.sign(to_sign, padding.PKCS1v15(), hashes.SHA256()).hex()
    path = os.path.join(here, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(raw)
    open(path, "wb").write(buf.getvalue())
    # S3 keeps the signature in x-amz-meta-signature; a local mirror keeps it beside the file.
    open(path + ".sig", "w").write(signature + "\n")
    previous = (key, raw, signature)
