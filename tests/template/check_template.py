#!/usr/bin/env python3
"""Security properties of template.yaml, read from the template itself.

Run by scripts/check-template with a venv that has cfn-lint (its decoder loads the
short-form tags !Ref, !Sub, !GetAtt ... as the long forms). Checks:

  * every bucket is encrypted (every branch of an !If), has all four Block Public Access
    settings on, and a bucket policy that denies requests without TLS
    (Deny, aws:SecureTransport "false");
  * every queue and topic is encrypted with KMS;
  * no Allow statement has a `*` in an action or uses NotAction; Resource "*" appears
    only for actions that have no resource type (RESOURCE_STAR_ALLOWED, cross-checked
    against cfn-lint's IAM data) or in a key policy (where it means "this key");
    Principal "*" only with an aws:PrincipalOrgID condition;
  * each function has its own role, and the role grants exactly the IAM actions its code
    needs: the AWS SDK operations the function's crate and the muster-aws adapters it
    wires up call (found by scanning the Rust sources), mapped to IAM actions, plus what
    Lambda itself does with the role (logs, the SQS poller, the async DLQ) and the KMS
    calls implied by encrypted buckets and queues. A granted action no code needs fails,
    and so does a call the role does not grant;
  * every checkov skip in the template carries its reason, and so does every cfn-lint
    rule the template ignores.

Before checking the real template it checks itself: a set of mutated templates (a `*`
action, an unencrypted bucket, an extra or a missing action, ...) must each be rejected.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# --------------------------------------------------------------------------- tables

# AWS SDK for Rust operation (snake_case, as called) -> IAM actions it needs, and why when
# it is not the obvious one. A call found in the code that is not here fails the check:
# map it deliberately rather than guess.
OPERATION_ACTIONS: dict[tuple[str, str], tuple[list[str], str]] = {
    ("s3", "get_object"): (["s3:GetObject"], ""),
    ("s3", "head_object"): (["s3:GetObject"], "HeadObject is authorised as s3:GetObject"),
    ("s3", "put_object"): (["s3:PutObject"], ""),
    ("s3", "create_multipart_upload"): (["s3:PutObject"], "multipart uploads are authorised as s3:PutObject"),
    ("s3", "upload_part"): (["s3:PutObject"], "multipart uploads are authorised as s3:PutObject"),
    ("s3", "complete_multipart_upload"): (["s3:PutObject"], "multipart uploads are authorised as s3:PutObject"),
    ("s3", "abort_multipart_upload"): (["s3:AbortMultipartUpload"], ""),
    ("s3", "list_objects_v2"): (["s3:ListBucket"], "ListObjectsV2 is authorised as s3:ListBucket"),
    ("s3", "delete_object"): (["s3:DeleteObject"], ""),
    ("eventbridge", "put_events"): (["events:PutEvents"], ""),
    ("securityhub", "batch_import_findings"): (["securityhub:BatchImportFindings"], ""),
    ("securityhub", "batch_update_findings"): (["securityhub:BatchUpdateFindings"], ""),
    ("securityhub", "get_findings"): (["securityhub:GetFindings"], ""),
    ("dynamodb", "get_item"): (["dynamodb:GetItem"], ""),
    ("dynamodb", "put_item"): (["dynamodb:PutItem"], ""),
    ("dynamodb", "update_item"): (["dynamodb:UpdateItem"], ""),
    ("dynamodb", "delete_item"): (["dynamodb:DeleteItem"], ""),
    ("dynamodb", "query"): (["dynamodb:Query"], ""),
    ("secretsmanager", "get_secret_value"): (["secretsmanager:GetSecretValue"], ""),
    ("cloudtrail", "list_public_keys"): (["cloudtrail:ListPublicKeys"], ""),
    ("sqs", "send_message"): (["sqs:SendMessage"], ""),
    ("sqs", "delete_message"): (["sqs:DeleteMessage"], ""),
    ("sts", "get_caller_identity"): ([], "GetCallerIdentity needs no permission"),
}

# A GetObject/HeadObject that names a version (S3ObjectSource passes the notification's
# versionId, and our buckets are versioned) is authorised as s3:GetObjectVersion too.
VERSIONED_READ = {("s3", "get_object"), ("s3", "head_object")}

# Actions allowed with Resource "*" in an identity policy, and why. Each must have no
# resource type in cfn-lint's IAM data, or the check fails: scope it instead.
RESOURCE_STAR_ALLOWED = {
    "cloudtrail:ListPublicKeys": "digest verification (issue 9): the action has no resource type",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions for writing traces",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions for writing traces",
}

# Allow statements in resource policies whose `*` action is deliberate: (resource, Sid).
WILDCARD_ACTION_ALLOWED = {
    ("Key", "AccountAdministersKeyThroughIam"): (
        "the key policy's account statement (AWS's default key policy): it makes the key "
        "manageable and delegates every use to IAM policies, where no wildcard is allowed"
    ),
}

# Functions whose crate does not exist yet are checked against the contract their
# authors published, until the code lands (then the code is the truth).
CONTRACTS = {
    "ticket-forwarder": {
        ("dynamodb", "get_item"), ("dynamodb", "put_item"), ("dynamodb", "update_item"),
        ("dynamodb", "delete_item"), ("secretsmanager", "get_secret_value"),
        ("securityhub", "batch_update_findings"), ("s3", "get_object"),
    },
}

SDK_CRATE = re.compile(r"\baws_sdk_([a-z0-9]+)\b")
LAMBDA_LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}
SQS_POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


class Failures(list):
    def add(self, where: str, what: str) -> None:
        self.append(f"{where}: {what}")


def as_list(v):
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def resources(tpl, type_):
    for name, res in (tpl.get("Resources") or {}).items():
        if isinstance(res, dict) and res.get("Type") == type_:
            yield name, res.get("Properties") or {}


def refers_to(value, name: str) -> bool:
    """Whether an intrinsic (Ref, GetAtt, Sub) names the resource `name`."""
    if isinstance(value, dict):
        if value.get("Ref") == name:
            return True
        ga = value.get("Fn::GetAtt")
        if ga is not None:
            target = ga[0] if isinstance(ga, list) else str(ga).split(".")[0]
            if target == name:
                return True
        sub = value.get("Fn::Sub")
        if sub is not None:
            text = sub[0] if isinstance(sub, list) else sub
            if re.search(r"\$\{" + re.escape(name) + r"(\.[A-Za-z]+)?\}", str(text)):
                return True
        return any(refers_to(v, name) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, name) for v in value)
    return False


def branches(value):
    """Both outcomes of an Fn::If, recursively; a plain value is its own only branch."""
    if isinstance(value, dict) and "Fn::If" in value:
        _, a, b = value["Fn::If"]
        return branches(a) + branches(b)
    return [value]


# --------------------------------------------------------------------------- storage


def check_buckets(tpl, f: Failures) -> None:
    policies = list(resources(tpl, "AWS::S3::BucketPolicy"))
    for name, p in resources(tpl, "AWS::S3::Bucket"):
        rules = ((p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")) or []
        if not rules:
            f.add(name, "bucket has no default encryption")
        for rule in rules:
            for sse in branches(rule.get("ServerSideEncryptionByDefault")):
                alg = (sse or {}).get("SSEAlgorithm") if isinstance(sse, dict) else None
                if alg not in ("aws:kms", "aws:kms:dsse", "AES256"):
                    f.add(name, f"bucket encryption algorithm {alg!r} is not SSE-KMS or SSE-S3")
        bpa = p.get("PublicAccessBlockConfiguration") or {}
        for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if bpa.get(key) is not True:
                f.add(name, f"Block Public Access {key} is not true")
        mine = [pp for _, pp in policies if refers_to(pp.get("Bucket"), name)]
        if not mine:
            f.add(name, "bucket has no bucket policy (TLS-only is required)")
            continue
        if not any(denies_insecure_transport(pp.get("PolicyDocument") or {}, "s3:*") for pp in mine):
            f.add(name, "bucket policy has no Deny of s3:* when aws:SecureTransport is false")


def denies_insecure_transport(doc, action: str) -> bool:
    for st in as_list(doc.get("Statement")):
        if st.get("Effect") != "Deny" or st.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        if action not in as_list(st.get("Action")):
            continue
        cond = (st.get("Condition") or {}).get("Bool") or {}
        if str(cond.get("aws:SecureTransport")).lower() == "false":
            return True
    return False


def check_queues_and_topics(tpl, f: Failures) -> None:
    for name, p in resources(tpl, "AWS::SQS::Queue"):
        if not p.get("KmsMasterKeyId") and p.get("SqsManagedSseEnabled") is not True:
            f.add(name, "queue is not encrypted (KmsMasterKeyId)")
    for name, p in resources(tpl, "AWS::SNS::Topic"):
        if not p.get("KmsMasterKeyId"):
            f.add(name, "topic is not encrypted (KmsMasterKeyId)")


# --------------------------------------------------------------------------- policies


def policy_documents(tpl):
    """(resource, kind, document) for every policy in the template."""
    for name, p in resources(tpl, "AWS::IAM::Role"):
        for pol in as_list(p.get("Policies")):
            yield name, "identity", pol.get("PolicyDocument") or {}
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, p in resources(tpl, type_):
            yield name, "identity", p.get("PolicyDocument") or {}
    for type_ in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
        for name, p in resources(tpl, type_):
            yield name, "resource", p.get("PolicyDocument") or {}
    for name, p in resources(tpl, "AWS::KMS::Key"):
        yield name, "key", p.get("KeyPolicy") or {}


def load_iam_data():
    import cfnlint

    path = Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
    return json.loads(path.read_text())


def action_resource_types(iam, action: str):
    """Resource types of an IAM action ([] if none), None if cfn-lint does not know it."""
    svc, _, act = action.partition(":")
    entry = iam.get(svc)
    if not isinstance(entry, dict):
        return None
    spec = entry.get("Actions", {}).get(act.lower())
    return None if spec is None else (spec.get("Resources") or [])


def check_policies(tpl, f: Failures, iam) -> None:
    for name, kind, doc in policy_documents(tpl):
        for st in as_list(doc.get("Statement")):
            sid = st.get("Sid", "(no Sid)")
            where = f"{name}/{sid}"
            if st.get("Effect") != "Allow":
                continue
            if "NotAction" in st or "NotResource" in st:
                f.add(where, "Allow with NotAction/NotResource")
            actions = [str(a) for a in as_list(st.get("Action"))]
            for a in actions:
                if "*" in a and (name, sid) not in WILDCARD_ACTION_ALLOWED:
                    f.add(where, f"action {a!r} has a wildcard")
            res = as_list(st.get("Resource"))
            if kind == "identity":
                for r in res:
                    if r == "*":
                        for a in actions:
                            if a not in RESOURCE_STAR_ALLOWED:
                                f.add(where, f"{a} on Resource '*' (scope it, or justify it in RESOURCE_STAR_ALLOWED)")
                            elif action_resource_types(iam, a):
                                f.add(where, f"{a} has resource types {action_resource_types(iam, a)}: scope it instead of '*'")
                    elif isinstance(r, str) and re.fullmatch(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:\*|arn:[^:]*:s3:::\*", r):
                        f.add(where, f"resource {r!r} is every resource of the service")
            principal = st.get("Principal")
            if principal in ("*", {"AWS": "*"}):
                cond = st.get("Condition") or {}
                keys = {k for c in cond.values() if isinstance(c, dict) for k in c}
                if "aws:PrincipalOrgID" not in keys:
                    f.add(where, "Principal '*' without an aws:PrincipalOrgID condition (public)")


# --------------------------------------------------------------------------- code scan


def strip_rust(text: str) -> str:
    """Rust source without comments and string literals, lengths kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or (c == "r" and re.match(r'r#*"', text[i:])) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            if m:
                end = '"' + m.group(1)
                j = text.find(end, i + len(m.group(0)))
                j = n if j < 0 else j + len(end)
            else:
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                j += 1
            out.append('"' + re.sub(r"[^\n]", " ", text[i + 1 : j - 1]) + '"' if j - i >= 2 else text[i:j])
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '" + " " * (len(m.group(0)) - 3))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sdk_operations(service: str) -> set[str]:
    """Operation names of aws-sdk-<service> at the version in Cargo.lock."""
    lock = (ROOT / "Cargo.lock").read_text()
    m = re.search(r'name = "aws-sdk-' + re.escape(service) + r'"\nversion = "([^"]+)"', lock)
    if not m:
        raise SystemExit(f"check_template: aws-sdk-{service} is used but not in Cargo.lock")
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    dirs = list(home.glob(f"registry/src/*/aws-sdk-{service}-{m.group(1)}/src/operation"))
    if not dirs:
        raise SystemExit(
            f"check_template: sources of aws-sdk-{service} {m.group(1)} not found under {home}/registry/src; "
            "run `cargo fetch` (scripts/test builds first)"
        )
    return {p.name for p in dirs[0].iterdir() if p.is_dir()}


_OPS_CACHE: dict[str, set[str]] = {}


def calls_in(text: str, origin: str, calls: dict) -> None:
    """Record every SDK operation called in `text` (comments and strings stripped)."""
    code = strip_rust(text)
    for service in sorted(set(SDK_CRATE.findall(code))):
        ops = _OPS_CACHE.setdefault(service, sdk_operations(service))
        for m in re.finditer(r"\.([a-z][a-z0-9_]*)\(\)", code):
            op = m.group(1)
            if op not in ops:
                continue
            chain = code[m.end() : m.end() + 600]
            end = min([x for x in (chain.find(".send()"), chain.find(";")) if x >= 0] or [len(chain)])
            versioned = "version_id(" in chain[:end]
            calls.setdefault((service, op), set()).add((origin, versioned))


def item_blocks(text: str):
    """Top-level `impl` blocks and `fn`s of a Rust file: (kind, name, body)."""
    code = strip_rust(text)
    for m in re.finditer(r"^(?:pub(?:\([a-z]+\))? )?(impl|fn|async fn)\b([^{;]*)\{", code, re.M):
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        head = m.group(2)
        if m.group(1) == "impl":
            target = head.split(" for ")[-1] if " for " in head else head
            name = re.sub(r"<.*", "", re.sub(r"^\s*(<[^>]*>)?\s*", "", target)).strip().split("::")[-1]
            yield "impl", name, text[m.start() : i]
        else:
            yield "fn", head.strip().split("(")[0].split("<")[0].strip(), text[m.start() : i]


def adapter_calls(entry_names: set[str], calls: dict) -> None:
    """SDK calls of the muster-aws items reachable from `entry_names` (types and fns)."""
    src = ROOT / "crates" / "aws" / "src"
    items: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(src.rglob("*.rs")):
        text = path.read_text()
        header = "\n".join(sorted({f"aws_sdk_{s}" for s in SDK_CRATE.findall(strip_rust(text))}))
        for kind, name, body in item_blocks(text):
            entry = (str(path.relative_to(ROOT)), header + "\n" + body)
            items.setdefault(name, []).append(entry)
            if kind == "fn":
                # `eventbridge::client(..)` in a function crate names this file's fn only.
                items.setdefault(f"{path.stem}::{name}", []).append(entry)
    seen, todo = set(), [n for n in entry_names if n in items]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for origin, body in items[name]:
            calls_in(body, f"{origin} ({name})", calls)
            for ident in set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", strip_rust(body))):
                if ident in items and ident not in seen:
                    todo.append(ident)


_CALLS_CACHE: dict[str, tuple[dict, str]] = {}


def function_calls(binary: str, failures: Failures) -> tuple[dict, str]:
    """SDK operations the function `binary` calls -> {(service, op): {(origin, versioned)}}.

    The sources do not change between the mutated templates: scan them once."""
    if binary not in _CALLS_CACHE:
        _CALLS_CACHE[binary] = _function_calls(binary)
    calls, basis = _CALLS_CACHE[binary]
    if basis == "missing":
        failures.add(binary, "no crate under functions/ builds this binary")
    return calls, basis


def _function_calls(binary: str) -> tuple[dict, str]:
    crate = None
    for manifest in sorted((ROOT / "functions").glob("*/Cargo.toml")):
        text = manifest.read_text()
        if re.search(r'name = "' + re.escape(binary) + r'"', text):
            crate = manifest.parent
            break
    calls: dict = {}
    if crate is None:
        if binary in CONTRACTS:
            for key in CONTRACTS[binary]:
                calls.setdefault(key, set()).add((f"contract of {binary} (crate not written yet)", False))
            return calls, "contract"
        return calls, "missing"
    entry = set()
    for path in sorted((crate / "src").rglob("*.rs")):
        text = path.read_text()
        calls_in(text, str(path.relative_to(ROOT)), calls)
        code = strip_rust(text)
        for block in re.findall(r"muster_aws::\{([^}]*)\}", code):
            entry |= set(re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", block))
        entry |= set(re.findall(r"muster_aws::(?:[a-z_]+::)*([A-Za-z_][A-Za-z0-9_]*)", code))
        # module functions used as `eventbridge::client(...)`
        entry |= {f"{m}::{n}" for m, n in re.findall(r"\b([a-z_]+)::([a-z_][a-z0-9_]*)\(", code)}
    adapter_calls(entry, calls)
    return calls, "code"


# --------------------------------------------------------------------------- roles


def template_functions(tpl):
    for name, p in resources(tpl, "AWS::Serverless::Function"):
        meta = (tpl["Resources"][name].get("Metadata") or {})
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        yield name, p, binary


def role_actions(tpl, role: str, f: Failures) -> set[str]:
    res = tpl["Resources"].get(role)
    if not res or res.get("Type") != "AWS::IAM::Role":
        f.add(role, "is not an AWS::IAM::Role of this template")
        return set()
    p = res.get("Properties") or {}
    if p.get("ManagedPolicyArns"):
        f.add(role, "managed policies cannot be checked against the code: use inline statements")
    actions = set()
    for pol in as_list(p.get("Policies")):
        for st in as_list((pol.get("PolicyDocument") or {}).get("Statement")):
            if st.get("Effect") == "Allow":
                actions |= {str(a) for a in as_list(st.get("Action"))}
    for name, pp in resources(tpl, "AWS::IAM::Policy"):
        if any(refers_to(r, role) for r in as_list(pp.get("Roles"))):
            for st in as_list((pp.get("PolicyDocument") or {}).get("Statement")):
                if st.get("Effect") == "Allow":
                    actions |= {str(a) for a in as_list(st.get("Action"))}
    return actions


def check_roles(tpl, f: Failures, report: list[str]) -> None:
    roles_seen: dict[str, str] = {}
    for name, p, binary in template_functions(tpl):
        role = p.get("Role")
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            f.add(name, "needs its own role (Role: !GetAtt <Role>.Arn); SAM's generated role is not checked")
            continue
        if p.get("Policies"):
            f.add(name, "Policies on the function are ignored with an explicit Role: put them in the role")
        role_name = role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]
        if role_name in roles_seen:
            f.add(name, f"shares role {role_name} with {roles_seen[role_name]}")
        roles_seen[role_name] = name
        if not binary:
            f.add(name, "has no Metadata.BuildProperties.Binary: cannot tell which code it runs")
            continue
        calls, basis = function_calls(binary, f)
        need: dict[str, str] = {}
        for (service, op), sites in sorted(calls.items()):
            mapped = OPERATION_ACTIONS.get((service, op))
            origins = ", ".join(sorted({o for o, _ in sites}))
            if mapped is None:
                f.add(name, f"code calls {service}::{op} ({origins}), which OPERATION_ACTIONS does not map to IAM")
                continue
            for a in mapped[0]:
                need.setdefault(a, f"{service}::{op} in {origins}")
            if (service, op) in VERSIONED_READ and any(v for _, v in sites):
                need.setdefault("s3:GetObjectVersion", f"{service}::{op} with a version id in {origins}")
        # What Lambda does with the role, and what encryption at rest implies.
        for a in LAMBDA_LOG_ACTIONS:
            need.setdefault(a, "Lambda writes the function's logs with its role")
        events = p.get("Events") or {}
        if any((e or {}).get("Type") == "SQS" for e in events.values()):
            for a in SQS_POLLER_ACTIONS:
                need.setdefault(a, "the SQS event source mapping polls with the function's role")
            need.setdefault("kms:Decrypt", "the SQS poller reads KMS-encrypted messages")
        if (p.get("DeadLetterQueue") or {}).get("Type") == "SQS":
            need.setdefault("sqs:SendMessage", "Lambda sends failed async events to the function's DLQ with its role")
            need.setdefault("kms:GenerateDataKey", "the DLQ is KMS-encrypted")
        if "s3:GetObject" in need:
            need.setdefault("kms:Decrypt", "objects are SSE-KMS encrypted")
        if "s3:PutObject" in need:
            need.setdefault("kms:GenerateDataKey", "objects are written SSE-KMS encrypted")
            if any(op in ("create_multipart_upload", "upload_part") for _, op in calls):
                need.setdefault("kms:Decrypt", "multipart uploads to SSE-KMS buckets decrypt the data key")
        granted = role_actions(tpl, role_name, f)
        for a in sorted(granted - set(need)):
            f.add(role_name, f"grants {a}, which {binary}'s code does not call (least privilege)")
        for a in sorted(set(need) - granted):
            f.add(role_name, f"lacks {a}, needed by {need[a]}")
        report.append(f"{name} ({binary}, from {basis}): " + ", ".join(sorted(need)))


# --------------------------------------------------------------------------- justifications


def check_justifications(tpl, f: Failures) -> None:
    for name, res in (tpl.get("Resources") or {}).items():
        skips = ((res.get("Metadata") or {}).get("checkov") or {}).get("skip") or []
        for s in as_list(skips):
            if not isinstance(s, dict) or not s.get("id") or len(str(s.get("comment") or "").strip()) < 20:
                f.add(name, f"checkov skip {s!r} has no reason (comment)")
    cfg = ((tpl.get("Metadata") or {}).get("cfn-lint") or {})
    ignored = as_list((cfg.get("config") or {}).get("ignore_checks"))
    reasons = cfg.get("reasons") or {}
    for rule in ignored:
        if len(str(reasons.get(rule) or "").strip()) < 20:
            f.add("Metadata.cfn-lint", f"ignored rule {rule} has no reason under Metadata.cfn-lint.reasons")


def check_samconfig(tpl, f: Failures) -> None:
    """Every parameter samconfig.toml overrides exists and takes the value it is given."""
    import shlex
    import tomllib

    path = ROOT / "samconfig.toml"
    if not path.exists():
        f.add("samconfig.toml", "missing")
        return
    cfg = tomllib.loads(path.read_text())
    params = tpl.get("Parameters") or {}
    for env, sections in cfg.items():
        if not isinstance(sections, dict):
            continue
        overrides = ((sections.get("deploy") or {}).get("parameters") or {}).get("parameter_overrides", "")
        for item in shlex.split(overrides):
            key, _, value = item.partition("=")
            spec = params.get(key)
            if spec is None:
                f.add(f"samconfig.toml [{env}]", f"{key} is not a parameter of the template")
                continue
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                f.add(f"samconfig.toml [{env}]", f"{key}={value} is not one of {allowed}")
            pattern = spec.get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, value):
                f.add(f"samconfig.toml [{env}]", f"{key}={value} does not match {pattern}")


# --------------------------------------------------------------------------- driver


def check(tpl, iam, report=None) -> Failures:
    f = Failures()
    report = [] if report is None else report
    check_buckets(tpl, f)
    check_queues_and_topics(tpl, f)
    check_policies(tpl, f, iam)
    check_roles(tpl, f, report)
    check_justifications(tpl, f)
    check_samconfig(tpl, f)
    return f


def statement(tpl, role: str, sid: str):
    for pol in tpl["Resources"][role]["Properties"]["Policies"]:
        for st in pol["PolicyDocument"]["Statement"]:
            if st.get("Sid") == sid:
                return st
    raise KeyError(f"{role}/{sid}")


def first(tpl, type_):
    return next(n for n, _ in resources(tpl, type_))


def mutations(tpl):
    """(description, mutate(template), text the failures must contain)."""
    bucket = first(tpl, "AWS::S3::Bucket")
    queue = first(tpl, "AWS::SQS::Queue")
    topic = first(tpl, "AWS::SNS::Topic")
    role = "LogNormalizerRole"

    def star_action(t):
        statement(t, role, "PublishDetections")["Action"] = "events:*"

    def star_resource(t):
        statement(t, role, "PublishDetections")["Resource"] = "*"

    def extra_action(t):
        statement(t, role, "ReadLogs")["Action"] = ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject"]

    def missing_action(t):
        st = statement(t, role, "WriteLakeAndQuarantine")
        st["Action"] = ["s3:PutObject"]

    def no_encryption(t):
        del t["Resources"][bucket]["Properties"]["BucketEncryption"]

    def bpa_off(t):
        t["Resources"][bucket]["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] = False

    def no_tls_policy(t):
        for _, p in resources(t, "AWS::S3::BucketPolicy"):
            p["PolicyDocument"]["Statement"] = [
                s for s in p["PolicyDocument"]["Statement"] if s.get("Sid") != "DenyInsecureTransport"
            ]

    def plain_queue(t):
        del t["Resources"][queue]["Properties"]["KmsMasterKeyId"]

    def plain_topic(t):
        del t["Resources"][topic]["Properties"]["KmsMasterKeyId"]

    def public_principal(t):
        for _, p in resources(t, "AWS::S3::BucketPolicy"):
            for s in p["PolicyDocument"]["Statement"]:
                if s.get("Sid") == "OrgAccountsWriteLogs":
                    s["Condition"] = {}

    def unjustified_skip(t):
        t["Resources"]["Ledger"]["Metadata"]["checkov"]["skip"][0]["comment"] = ""

    def shared_role(t):
        t["Resources"]["FindingsImporter"]["Properties"]["Role"] = {"Fn::GetAtt": [role, "Arn"]}

    return [
        ("a '*' action", star_action, "has a wildcard"),
        ("Resource '*' on a scoped action", star_resource, "on Resource '*'"),
        ("an action the code does not call", extra_action, "grants s3:DeleteObject"),
        ("a call the role lacks", missing_action, "lacks s3:AbortMultipartUpload"),
        ("an unencrypted bucket", no_encryption, "no default encryption"),
        ("Block Public Access off", bpa_off, "RestrictPublicBuckets is not true"),
        ("no TLS-only statement", no_tls_policy, "aws:SecureTransport"),
        ("an unencrypted queue", plain_queue, "queue is not encrypted"),
        ("an unencrypted topic", plain_topic, "topic is not encrypted"),
        ("Principal '*' without an org condition", public_principal, "(public)"),
        ("a checkov skip without reason", unjustified_skip, "has no reason"),
        ("two functions on one role", shared_role, "shares role"),
    ]


def self_check(tpl, iam) -> list[str]:
    problems = []
    sample = 'use aws_sdk_s3::Client; // c.delete_object()\nfn f(c: &Client) { c.get_object().bucket("x.put_object()").set_version_id(v).send(); }'
    calls: dict = {}
    calls_in(sample, "sample", calls)
    if set(calls) != {("s3", "get_object")} or not any(v for _, v in calls[("s3", "get_object")]):
        problems.append(f"scanner: expected one versioned s3::get_object in the sample, found {calls}")
    for action, why in RESOURCE_STAR_ALLOWED.items():
        types = action_resource_types(iam, action)
        if types is None or types:
            problems.append(f"RESOURCE_STAR_ALLOWED lists {action} ({why}), but cfn-lint's IAM data gives it resource types {types}")
    for what, mutate, expect in mutations(tpl):
        t = copy.deepcopy(tpl)
        mutate(t)
        got = check(t, iam)
        if not any(expect in g for g in got):
            problems.append(f"a template with {what} was not rejected (expected a failure containing {expect!r})")
    return problems


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else TEMPLATE
    tpl, errors = decode(str(path))
    if errors or tpl is None:
        for e in errors or []:
            print(f"{path}: {e}", file=sys.stderr)
        return 1
    tpl = json.loads(json.dumps(tpl))  # plain dicts: deepcopy-able, no node types
    iam = load_iam_data()
    problems = self_check(tpl, iam)
    if problems:
        print("check_template: the checks themselves are broken:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    report: list[str] = []
    failures = check(tpl, iam, report)
    for line in report:
        print(f"  role needs: {line}")
    if failures:
        print(f"check_template: {len(failures)} security propert(ies) violated:", file=sys.stderr)
        for line in failures:
            print(f"  - {line}", file=sys.stderr)
        return 1
    print(f"check_template: {path.name} holds every security property ({len(mutations(tpl))} mutated templates rejected)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
