#!/usr/bin/env python3
"""Writes the CloudTrail samples in this folder (deterministic: gzip mtime 0).

Records follow AWS's documented record contents
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
and its published examples, with documentation accounts, addresses and ids.
"""
import gzip, json, os, io, re
root = os.path.dirname(os.path.abspath(__file__))
A = "111122223333"; B = "444455556666"
UA_CONSOLE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
TLS_SIGNIN = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": "signin.aws.amazon.com"}

def iam_user(name, pid, acct=A, key=None):
    u = {"type": "IAMUser", "principalId": pid, "arn": f"arn:aws:iam::{acct}:user/{name}", "accountId": acct}
    if key is not None: u["accessKeyId"] = key
    u["userName"] = name
    return u

def assumed(role, session, acct=A, key="ASIAIOSFODNN7EXAMPLE", mfa="false", created="2024-05-14T07:58:12Z"):
    return {"type": "AssumedRole", "principalId": f"AROAIOSFODNN7ROLE01:{session}",
            "arn": f"arn:aws:sts::{acct}:assumed-role/{role}/{session}", "accountId": acct, "accessKeyId": key,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAIOSFODNN7ROLE01",
                               "arn": f"arn:aws:iam::{acct}:role/{role}", "accountId": acct, "userName": role},
                               "webIdFederationData": {},
                               "attributes": {"creationDate": created, "mfaAuthenticated": mfa}}}

def login(t, ident, ip, ok, mfa, eid, extra_ev=None, err=None):
    r = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": t, "eventSource": "signin.amazonaws.com",
         "eventName": "ConsoleLogin", "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": UA_CONSOLE}
    if err: r["errorMessage"] = err
    r["requestParameters"] = None
    r["responseElements"] = {"ConsoleLogin": "Success" if ok else "Failure"}
    ad = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_example", "MobileVersion": "No", "MFAUsed": mfa}
    if extra_ev: ad.update(extra_ev)
    r["additionalEventData"] = ad
    r.update({"eventID": eid, "readOnly": False, "eventType": "AwsConsoleSignIn", "managementEvent": True,
              "recipientAccountId": A, "eventCategory": "Management", "tlsDetails": TLS_SIGNIN})
    return r

def api(t, ident, source, name, ip, ua, req, resp, rid, eid, region="us-east-1", acct=A, read_only=False, extra=None, mgmt=True, err=None, resources=None, tls_host=None):
    r = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": t, "eventSource": source, "eventName": name,
         "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua}
    if err: r["errorCode"], r["errorMessage"] = err
    r["requestParameters"] = req
    r["responseElements"] = resp
    if extra and "additionalEventData" in extra: r["additionalEventData"] = extra.pop("additionalEventData")
    r["requestID"] = rid; r["eventID"] = eid; r["readOnly"] = read_only
    if resources: r["resources"] = resources
    r["eventType"] = "AwsApiCall"; r["managementEvent"] = mgmt; r["recipientAccountId"] = acct
    r["eventCategory"] = "Management" if mgmt else "Data"
    if tls_host: r["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": tls_host}
    if extra: r.update(extra)
    return r

CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.84-99.169.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/"
mgmt = [
    login("2024-05-14T08:01:12Z", iam_user("alice", "AIDAIOSFODNN7ALICE01", key=""), "198.51.100.23", True, "Yes",
          "3b0e1d6a-6a4e-4a5c-9a1e-000000000001", {"MFAIdentifier": f"arn:aws:iam::{A}:mfa/alice"}),
    login("2024-05-14T08:02:40Z", {"type": "IAMUser", "principalId": "AIDAIOSFODNN7MALLORY", "accountId": A, "accessKeyId": "", "userName": "mallory"},
          "203.0.113.77", False, "No", "3b0e1d6a-6a4e-4a5c-9a1e-000000000002", err="Failed authentication"),
    login("2024-05-14T08:03:05Z", {"type": "Root", "principalId": A, "arn": f"arn:aws:iam::{A}:root", "accountId": A, "accessKeyId": ""},
          "198.51.100.99", True, "Yes", "3b0e1d6a-6a4e-4a5c-9a1e-000000000003", {"MFAIdentifier": f"arn:aws:iam::{A}:mfa/root-account-mfa-device"}),
    login("2024-05-14T08:04:51Z", iam_user("bob", "AIDAIOSFODNN7BOB0001", key=""), "2001:db8:1234::15", True, "No",
          "3b0e1d6a-6a4e-4a5c-9a1e-000000000004"),
    api("2024-05-14T08:05:30Z", iam_user("alice", "AIDAIOSFODNN7ALICE01", key="AKIAIOSFODNN7EXAMPLE"), "sts.amazonaws.com", "AssumeRole",
        "198.51.100.23", CLI + "sts.assume-role",
        {"roleArn": f"arn:aws:iam::{A}:role/Admin", "roleSessionName": "alice-admin", "durationSeconds": 3600},
        {"credentials": {"accessKeyId": "ASIAIOSFODNN7EXAMPLE", "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": "May 14, 2024, 9:05:30 AM"},
         "assumedRoleUser": {"assumedRoleId": "AROAIOSFODNN7ROLE01:alice-admin", "arn": f"arn:aws:sts::{A}:assumed-role/Admin/alice-admin"}},
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a1", "3b0e1d6a-6a4e-4a5c-9a1e-000000000005", read_only=True,
        resources=[{"accountId": A, "type": "AWS::IAM::Role", "ARN": f"arn:aws:iam::{A}:role/Admin"}], tls_host="sts.us-east-1.amazonaws.com"),
    api("2024-05-14T08:06:02Z", assumed("Admin", "alice-admin", mfa="true", created="2024-05-14T08:05:30Z"), "iam.amazonaws.com", "CreateUser",
        "198.51.100.23", CLI + "iam.create-user", {"userName": "deploy-bot", "tags": [{"key": "team", "value": "platform"}]},
        {"user": {"path": "/", "userName": "deploy-bot", "userId": "AIDAIOSFODNN7DEPLOY1", "arn": f"arn:aws:iam::{A}:user/deploy-bot",
                  "createDate": "May 14, 2024, 8:06:02 AM", "tags": [{"key": "team", "value": "platform"}]}},
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a2", "3b0e1d6a-6a4e-4a5c-9a1e-000000000006", tls_host="iam.amazonaws.com"),
    api("2024-05-14T08:06:40Z", assumed("Admin", "alice-admin", mfa="true", created="2024-05-14T08:05:30Z"), "iam.amazonaws.com", "AttachRolePolicy",
        "198.51.100.23", CLI + "iam.attach-role-policy", {"roleName": "ci-runner", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, None,
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a3", "3b0e1d6a-6a4e-4a5c-9a1e-000000000007", tls_host="iam.amazonaws.com"),
    api("2024-05-14T08:07:15Z", assumed("Admin", "alice-admin", mfa="true", created="2024-05-14T08:05:30Z"), "iam.amazonaws.com", "CreateAccessKey",
        "198.51.100.23", CLI + "iam.create-access-key", {"userName": "deploy-bot"},
        {"accessKey": {"userName": "deploy-bot", "accessKeyId": "AKIAI44QH8DHBEXAMPLE", "status": "Active", "createDate": "May 14, 2024, 8:07:15 AM"}},
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a4", "3b0e1d6a-6a4e-4a5c-9a1e-000000000008", tls_host="iam.amazonaws.com"),
    api("2024-05-14T08:10:00Z", assumed("Admin", "alice-admin", mfa="true", created="2024-05-14T08:05:30Z"), "ec2.amazonaws.com", "DescribeInstances",
        "198.51.100.23", CLI + "ec2.describe-instances",
        {"instancesSet": {}, "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]}}, None,
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a5", "3b0e1d6a-6a4e-4a5c-9a1e-000000000009", read_only=True, tls_host="ec2.us-east-1.amazonaws.com"),
    api("2024-05-14T08:12:44Z", iam_user("bob", "AIDAIOSFODNN7BOB0001", key="AKIAIOSFODNN7BOBKEY1"), "iam.amazonaws.com", "ListUsers",
        "2001:db8:1234::15", CLI + "iam.list-users", None, None,
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a6", "3b0e1d6a-6a4e-4a5c-9a1e-000000000010", read_only=True,
        err=("AccessDenied", f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::{A}:user/ because no identity-based policy allows the iam:ListUsers action"),
        tls_host="iam.amazonaws.com"),
    api("2024-05-14T08:15:03Z", assumed("app-server", "i-0a1b2c3d4e5f67890", key="ASIAIOSFODNN7APPKEY1", created="2024-05-14T06:00:01Z"), "s3.amazonaws.com", "GetObject",
        "10.0.12.34", "[aws-sdk-java/1.12.620 Linux/6.1.84 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS java/17.0.11]",
        {"bucketName": "amzn-s3-demo-bucket", "Host": "amzn-s3-demo-bucket.s3.us-east-1.amazonaws.com", "key": "reports/2024/05/q2 summary.csv"}, None,
        "VB7Z4QYH1EXAMPLE", "3b0e1d6a-6a4e-4a5c-9a1e-000000000011", read_only=True, mgmt=False,
        extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0,
                                       "AuthenticationMethod": "AuthHeader", "x-amz-id-2": "Lr/EXAMPLEid2+Q9z0=", "bytesTransferredOut": 48213},
               "vpcEndpointId": "vpce-0example1234567", "vpcEndpointAccountId": A},
        resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::amzn-s3-demo-bucket/reports/2024/05/q2 summary.csv"},
                   {"accountId": A, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::amzn-s3-demo-bucket"}],
        tls_host="amzn-s3-demo-bucket.s3.us-east-1.amazonaws.com"),
    api("2024-05-14T08:15:09Z", assumed("app-server", "i-0a1b2c3d4e5f67890", key="ASIAIOSFODNN7APPKEY1", created="2024-05-14T06:00:01Z"), "s3.amazonaws.com", "PutObject",
        "10.0.12.34", "[aws-sdk-java/1.12.620 Linux/6.1.84 OpenJDK_64-Bit_Server_VM/17.0.11+9-LTS java/17.0.11]",
        {"bucketName": "amzn-s3-demo-bucket", "Host": "amzn-s3-demo-bucket.s3.us-east-1.amazonaws.com", "key": "uploads/\"quoted\" name.txt", "x-amz-server-side-encryption": "aws:kms"},
        {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
        "VB7Z4QYH2EXAMPLE", "3b0e1d6a-6a4e-4a5c-9a1e-000000000012", mgmt=False,
        extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 2048,
                                       "AuthenticationMethod": "AuthHeader", "x-amz-id-2": "Mq/EXAMPLEid2+R1a1=", "bytesTransferredOut": 0}},
        resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::amzn-s3-demo-bucket/uploads/\"quoted\" name.txt"},
                   {"accountId": A, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::amzn-s3-demo-bucket"}],
        tls_host="amzn-s3-demo-bucket.s3.us-east-1.amazonaws.com"),
    {"eventVersion": "1.09", "userIdentity": {"accountId": A, "invokedBy": "AWS Internal"}, "eventTime": "2024-05-14T08:20:00Z",
     "eventSource": "kms.amazonaws.com", "eventName": "RotateKey", "awsRegion": "us-east-1", "sourceIPAddress": "AWS Internal",
     "userAgent": "AWS Internal", "requestParameters": None, "responseElements": None, "eventID": "3b0e1d6a-6a4e-4a5c-9a1e-000000000013",
     "readOnly": False, "resources": [{"accountId": A, "type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],
     "eventType": "AwsServiceEvent", "managementEvent": True, "recipientAccountId": A,
     "serviceEventDetails": {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "rotationType": "AUTOMATIC"}, "eventCategory": "Management"},
    api("2024-05-14T08:21:30Z", {"type": "AWSService", "invokedBy": "ssm.amazonaws.com"}, "kms.amazonaws.com", "Decrypt",
        "ssm.amazonaws.com", "ssm.amazonaws.com",
        {"encryptionContext": {"PARAMETER_ARN": f"arn:aws:ssm:us-east-1:{A}:parameter/app/db-password"}, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, None,
        "5f1c0b7e-1111-4c1e-8a6e-0000000000a7", "3b0e1d6a-6a4e-4a5c-9a1e-000000000014", read_only=True,
        resources=[{"accountId": A, "type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:us-east-1:{A}:key/1234abcd-12ab-34cd-56ef-1234567890ab"}],
        extra={"sharedEventID": "9e1f5c3a-2b7d-4e8f-a1c2-d3e4f5a6b7c8"}),
]

def insight(state, t, stats, eid):
    return {"eventVersion": "1.08", "eventTime": t, "awsRegion": "us-east-1", "eventID": eid, "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": A, "sharedEventID": "6f2a1b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
            "insightDetails": {"state": state, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "insightType": "ApiCallRateInsight",
                               "insightContext": {"statistics": stats, "attributions": [
                                   {"attribute": "userIdentityArn", "insight": [{"value": f"arn:aws:sts::{A}:assumed-role/Admin/alice-admin", "average": 6}],
                                    "baseline": [{"value": f"arn:aws:sts::{A}:assumed-role/Admin/alice-admin", "average": 0.0000882145}]},
                                   {"attribute": "userAgent", "insight": [{"value": "ec2.amazonaws.com", "average": 6}], "baseline": [{"value": "ec2.amazonaws.com", "average": 0.0000882145}]},
                                   {"attribute": "errorCode", "insight": [{"value": "null", "average": 6}], "baseline": [{"value": "null", "average": 0.0000882145}]}]}},
            "eventCategory": "Insight"}
insights = [
    insight("Start", "2024-05-14T08:30:00Z", {"baseline": {"average": 0.0000882145}, "insight": {"average": 6}, "baselineDuration": 11336}, "7c1d2e3f-4a5b-4c6d-8e7f-000000000101"),
    insight("End", "2024-05-14T08:32:00Z", {"baseline": {"average": 0.0000882145}, "insight": {"average": 6}, "insightDuration": 1, "baselineDuration": 11336}, "7c1d2e3f-4a5b-4c6d-8e7f-000000000102"),
]

eu = [
    {"eventVersion": "1.09", "userIdentity": {"type": "IdentityCenterUser", "userId": "94482488-3041-7026-18f3-be45837cd0e4",
      "identityStoreArn": "arn:aws:identitystore::444455556666:identitystore/d-9067EXAMPLE", "accountId": B},
     "eventTime": "2024-05-14T12:01:00Z", "eventSource": "signin.amazonaws.com", "eventName": "CredentialVerification", "awsRegion": "eu-west-1",
     "sourceIPAddress": "192.0.2.45", "userAgent": UA_CONSOLE, "requestParameters": None, "responseElements": None,
     "additionalEventData": {"AuthWorkflowID": "9de74b32-8362-4a01-a524-de21df59fd83", "CredentialType": "PASSWORD"},
     "requestID": "5f1c0b7e-2222-4c1e-8a6e-0000000000b1", "eventID": "8a9b0c1d-2e3f-4a5b-8c6d-000000000201", "readOnly": False,
     "eventType": "AwsServiceEvent", "managementEvent": True, "recipientAccountId": B,
     "serviceEventDetails": {"CredentialVerification": "Success"}, "eventCategory": "Management"},
    {"eventVersion": "1.08", "userIdentity": iam_user("erin", "AIDAIOSFODNN7ERIN001", acct=B), "eventTime": "2024-05-14T12:02:00Z",
     "eventSource": "signin.amazonaws.com", "eventName": "CheckMfa", "awsRegion": "eu-west-1", "sourceIPAddress": "192.0.2.46",
     "userAgent": UA_CONSOLE, "requestParameters": None, "responseElements": {"CheckMfa": "Success"},
     "additionalEventData": {"MfaType": "Virtual MFA"}, "eventID": "8a9b0c1d-2e3f-4a5b-8c6d-000000000202", "readOnly": False,
     "eventType": "AwsConsoleSignIn", "managementEvent": True, "recipientAccountId": B, "eventCategory": "Management"},
    {"eventVersion": "1.08", "userIdentity": {"type": "SAMLUser", "principalId": "SampleUkh1i4+ExamplexL/jEvs=:SamlExample",
      "userName": "SamlExample", "identityProvider": "bdGOnTesti4+ExamplexL/jEvs="},
     "eventTime": "2024-05-14T12:03:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRoleWithSAML", "awsRegion": "eu-west-1",
     "sourceIPAddress": "192.0.2.101", "userAgent": "aws-cli/2.15.30",
     "requestParameters": {"sAMLAssertionID": "_c0046cEXAMPLEb9d4b8eEXAMPLE2619aEXAMPLE", "roleSessionName": "MyAssignedRoleSessionName",
                           "principalTags": {"CostCenter": "987654"}, "durationSeconds": 3600,
                           "roleArn": f"arn:aws:iam::{B}:role/SAMLTestRoleShibboleth", "principalArn": f"arn:aws:iam::{B}:saml-provider/Shibboleth"},
     "responseElements": {"subjectType": "transient", "issuer": "https://server.example.com/idp/shibboleth", "audience": "https://signin.aws.amazon.com/saml",
                          "nameQualifier": "SbdGOnUkh1i4+EXAMPLExL/jEvs=", "subject": "SamlExample"},
     "requestID": "6EXAMPLE-e595-11e5-b2c7-c974fEXAMPLE", "eventID": "dEXAMPLE-265a-41e0-9352-4401bEXAMPLE", "readOnly": True,
     "resources": [{"ARN": f"arn:aws:iam::{B}:role/SAMLTestRoleShibboleth", "accountId": B, "type": "AWS::IAM::Role"},
                   {"ARN": f"arn:aws:iam::{B}:saml-provider/test-saml-provider", "accountId": B, "type": "AWS::IAM::SAMLProvider"}],
     "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": B, "eventCategory": "Management"},
    api("2024-05-14T12:04:00Z", iam_user("erin", "AIDAIOSFODNN7ERIN001", acct=B, key="AKIAIOSFODNN7ERINKEY"), "ec2.amazonaws.com", "CreateSecurityGroup",
        "192.0.2.46", CLI + "ec2.create-security-group",
        {"groupName": "open-ssh", "groupDescription": "temporary", "vpcId": "vpc-0example1234567"}, None,
        "5f1c0b7e-2222-4c1e-8a6e-0000000000b4", "8a9b0c1d-2e3f-4a5b-8c6d-000000000204", region="eu-west-1", acct=B,
        err=("Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::444455556666:user/erin is not authorized to perform: ec2:CreateSecurityGroup"),
        tls_host="ec2.eu-west-1.amazonaws.com"),
]


# One record per built-in detection rule that must fire, and a near miss for each that
# must not (crates/core/tests/rules_from_samples.rs holds the table). 2024-05-15, us-east-1.
def uid(n): return f"5d2c7a10-3b4e-4f6a-9c8d-{n:012d}"
def rid(n): return f"9e4f2b61-7c3d-4a8e-b5f0-{n:012d}"
ADMIN = assumed("Admin", "alice-admin", mfa="true", created="2024-05-15T11:58:00Z")
ROOT = {"type": "Root", "principalId": A, "arn": f"arn:aws:iam::{A}:root", "accountId": A, "accessKeyId": "ASIAIOSFODNN7ROOTKEY"}
def call(n, t, source, name, req, resp=None, ident=ADMIN, err=None, resources=None, read_only=False, host=None, ip="198.51.100.23", **kw):
    svc = source.split(".")[0]
    return api(f"2024-05-15T{t}Z", ident, source, name, ip, CLI + f"{svc}." + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower(), req, resp, rid(n), uid(n),
               err=err, resources=resources, read_only=read_only, tls_host=host or f"{svc}.us-east-1.amazonaws.com", **kw)
def failed_login(n, t, user, ip):
    # A user name that does not exist is masked, and then there is no principal id.
    ident = {"type": "IAMUser", "accountId": A, "accessKeyId": "", "userName": user}
    if user != "HIDDEN_DUE_TO_SECURITY_REASONS":
        ident = {"type": "IAMUser", "principalId": f"AIDAIOSFODNN7{user.upper():0<7}", **ident}
    return login(f"2024-05-15T{t}Z", ident, ip, False, "No", uid(n), err="Failed authentication")
DENIED = lambda action, res: ("AccessDenied", f"User: arn:aws:iam::{A}:user/bob is not authorized to perform: {action} on resource: {res} because no identity-based policy allows the {action} action")
BOB = iam_user("bob", "AIDAIOSFODNN7BOB0001", key="AKIAIOSFODNN7BOBKEY1")
TRAIL = f"arn:aws:cloudtrail:us-east-1:{A}:trail/management-events"
KEY = f"arn:aws:kms:us-east-1:{A}:key/0987dcba-09fe-87dc-65ba-ab0987654321"
BUCKET = "amzn-s3-demo-bucket"
BUCKET_RES = [{"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{BUCKET}"}]
KEY_RES = [{"accountId": A, "type": "AWS::KMS::Key", "ARN": KEY}]
S3_HOST = f"{BUCKET}.s3.us-east-1.amazonaws.com"
rules = [
    # CloudWatch.1: root calls an API itself; the near miss is root's work done by a service.
    call(1, "12:00:05", "iam.amazonaws.com", "GetAccountSummary", None, ident=ROOT, read_only=True, host="iam.amazonaws.com"),
    call(2, "12:00:40", "cloudtrail.amazonaws.com", "LookupEvents", {"maxResults": 50}, read_only=True,
         ident=dict(ROOT, invokedBy="support.amazonaws.com", accessKeyId=""), ip="support.amazonaws.com"),
    # CloudWatch.2: refused calls (an IAM AccessDenied, an EC2 UnauthorizedOperation); the
    # near miss failed for another reason.
    call(3, "12:01:10", "cloudtrail.amazonaws.com", "StopLogging", {"name": TRAIL}, ident=BOB, ip="2001:db8:1234::15",
         err=DENIED("cloudtrail:StopLogging", TRAIL)),
    call(4, "12:01:30", "ec2.amazonaws.com", "RunInstances",
         {"instancesSet": {"items": [{"imageId": "ami-0abcdef1234567890", "minCount": 1, "maxCount": 1}]}, "instanceType": "t3.micro"},
         ident=BOB, ip="2001:db8:1234::15",
         err=("Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/bob is not authorized to perform: ec2:RunInstances")),
    call(5, "12:01:50", "ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupSet": {"items": [{"groupId": "sg-0badc0ffee0000000"}]}},
         read_only=True, err=("Client.InvalidGroup.NotFound", "The security group 'sg-0badc0ffee0000000' does not exist")),
    # CloudWatch.3: an IAM user signs in without MFA; with MFA it is no finding.
    login("2024-05-15T12:02:00Z", iam_user("carol", "AIDAIOSFODNN7CAROL01", key=""), "198.51.100.41", True, "No", uid(6)),
    login("2024-05-15T12:02:20Z", iam_user("dave", "AIDAIOSFODNN7DAVE001", key=""), "198.51.100.42", True, "Yes", uid(7),
          {"MFAIdentifier": f"arn:aws:iam::{A}:mfa/dave"}),
    # CloudWatch.4: an inline user policy written; reading a policy is no finding.
    call(8, "12:03:00", "iam.amazonaws.com", "PutUserPolicy",
         {"userName": "deploy-bot", "policyName": "deploy", "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:PutObject\",\"Resource\":\"arn:aws:s3:::amzn-s3-demo-bucket/*\"}]}"},
         host="iam.amazonaws.com"),
    call(9, "12:03:20", "iam.amazonaws.com", "GetPolicy", {"policyArn": f"arn:aws:iam::{A}:policy/deploy-boundary"},
         {"policy": {"policyName": "deploy-boundary", "policyId": "ANPAIOSFODNN7POLICY1", "arn": f"arn:aws:iam::{A}:policy/deploy-boundary",
                     "path": "/", "defaultVersionId": "v1", "attachmentCount": 1, "isAttachable": True,
                     "createDate": "May 1, 2024, 9:00:00 AM", "updateDate": "May 1, 2024, 9:00:00 AM"}},
         read_only=True, host="iam.amazonaws.com"),
    # CloudWatch.5: logging stopped (the refused StopLogging above is only CloudWatch.2).
    call(10, "12:04:00", "cloudtrail.amazonaws.com", "StopLogging", {"name": TRAIL}, resources=[{"accountId": A, "type": "AWS::CloudTrail::Trail", "ARN": TRAIL}]),
    call(11, "12:04:20", "cloudtrail.amazonaws.com", "DescribeTrails", {"trailNameList": [], "includeShadowTrails": True}, read_only=True),
    # CloudWatch.6 is every failed sign-in: this one, and the bursts at the end.
    failed_login(12, "12:05:00", "carol", "198.51.100.41"),
    # CloudWatch.7: a customer managed key disabled; describing it is no finding.
    call(13, "12:06:00", "kms.amazonaws.com", "DisableKey", {"keyId": KEY}, resources=KEY_RES),
    call(14, "12:06:20", "kms.amazonaws.com", "DescribeKey", {"keyId": KEY}, resources=KEY_RES, read_only=True),
    # CloudWatch.8: a bucket policy written; reading it is no finding.
    call(15, "12:07:00", "s3.amazonaws.com", "PutBucketPolicy",
         {"bucketPolicy": {"Version": "2012-10-17", "Statement": [{"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                           "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
          "bucketName": BUCKET, "Host": S3_HOST, "policy": ""},
         resources=BUCKET_RES, host=S3_HOST),
    call(16, "12:07:20", "s3.amazonaws.com", "GetBucketPolicy", {"bucketName": BUCKET, "Host": S3_HOST, "policy": ""},
         resources=BUCKET_RES, read_only=True, host=S3_HOST),
    # CloudWatch.9: the Config recorder stopped; describing it is no finding.
    call(17, "12:08:00", "config.amazonaws.com", "StopConfigurationRecorder", {"configurationRecorderName": "default"}),
    call(18, "12:08:20", "config.amazonaws.com", "DescribeConfigurationRecorders", {"configurationRecorderNames": ["default"]}, read_only=True),
    # CloudWatch.10: SSH opened in a security group; listing groups is no finding.
    call(19, "12:09:00", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
         {"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
          "groups": {}, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}},
         {"requestId": rid(19), "_return": True, "securityGroupRuleSet": {"items": [{"groupOwnerId": A, "groupId": "sg-0123456789abcdef0",
          "securityGroupRuleId": "sgr-0123456789abcdef0", "isEgress": False, "ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}]}}),
    call(20, "12:09:20", "ec2.amazonaws.com", "DescribeSecurityGroups", {"securityGroupSet": {}, "securityGroupIdSet": {}}, read_only=True),
    # CloudWatch.11: a network ACL entry added; listing ACLs is no finding.
    call(21, "12:10:00", "ec2.amazonaws.com", "CreateNetworkAclEntry",
         {"networkAclId": "acl-0123456789abcdef0", "ruleNumber": 100, "egress": False, "ruleAction": "allow", "icmpTypeCode": {},
          "portRange": {"from": 3389, "to": 3389}, "aclProtocol": "6", "cidrBlock": "0.0.0.0/0"}, {"requestId": rid(21), "_return": True}),
    call(22, "12:10:20", "ec2.amazonaws.com", "DescribeNetworkAcls", {"networkAclIdSet": {}, "filterSet": {}}, read_only=True),
    # CloudWatch.12: an internet gateway attached; listing gateways is no finding.
    call(23, "12:11:00", "ec2.amazonaws.com", "AttachInternetGateway", {"internetGatewayId": "igw-0123456789abcdef0", "vpcId": "vpc-0123456789abcdef0"},
         {"requestId": rid(23), "_return": True}),
    call(24, "12:11:20", "ec2.amazonaws.com", "DescribeInternetGateways", {"internetGatewayIdSet": {}, "filterSet": {}}, read_only=True),
    # CloudWatch.13: a route added; listing route tables is no finding.
    call(25, "12:12:00", "ec2.amazonaws.com", "CreateRoute",
         {"routeTableId": "rtb-0123456789abcdef0", "destinationCidrBlock": "0.0.0.0/0", "gatewayId": "igw-0123456789abcdef0"},
         {"requestId": rid(25), "_return": True}),
    call(26, "12:12:20", "ec2.amazonaws.com", "DescribeRouteTables", {"routeTableIdSet": {}, "filterSet": {}}, read_only=True),
    # CloudWatch.14: a VPC attribute changed; listing VPCs is no finding.
    call(27, "12:13:00", "ec2.amazonaws.com", "ModifyVpcAttribute", {"vpcId": "vpc-0123456789abcdef0", "enableDnsHostnames": {"value": True}},
         {"requestId": rid(27), "_return": True}),
    call(28, "12:13:20", "ec2.amazonaws.com", "DescribeVpcs", {"vpcSet": {}, "filterSet": {}}, read_only=True),
    # Organizations: a service control policy attached; listing accounts is no finding.
    call(29, "12:14:00", "organizations.amazonaws.com", "AttachPolicy", {"policyId": "p-examplepolicyid111", "targetId": "ou-exa1-abcd1234"},
         host="organizations.us-east-1.amazonaws.com"),
    call(30, "12:14:20", "organizations.amazonaws.com", "ListAccounts", {"maxResults": 20}, read_only=True,
         host="organizations.us-east-1.amazonaws.com"),
    # Data events (DataAccess metrics; no rule reads them).
    call(31, "12:15:00", "s3.amazonaws.com", "GetObject", {"bucketName": BUCKET, "Host": S3_HOST, "key": "exports/2024-05-15.parquet"},
         read_only=True, mgmt=False, host=S3_HOST,
         extra={"additionalEventData": {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0,
                                        "AuthenticationMethod": "AuthHeader", "x-amz-id-2": "Nr/EXAMPLEid2+S2b2=", "bytesTransferredOut": 73842}},
         resources=[{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{BUCKET}/exports/2024-05-15.parquet"}] + BUCKET_RES),
    call(32, "12:15:10", "lambda.amazonaws.com", "Invoke", {"functionName": f"arn:aws:lambda:us-east-1:{A}:function:report-builder", "invocationType": "RequestResponse"},
         mgmt=False, resources=[{"accountId": A, "type": "AWS::Lambda::Function", "ARN": f"arn:aws:lambda:us-east-1:{A}:function:report-builder"}]),
]
# Repeated failed sign-ins: five from one address inside five minutes fire the threshold
# rule; four from another address do not. Every one is a CloudWatch.6 failure.
rules += [failed_login(40 + i, f"12:20:{i * 10:02d}", u, "203.0.113.50")
          for i, u in enumerate(["admin", "carol", "HIDDEN_DUE_TO_SECURITY_REASONS", "dave", "carol"])]
rules += [failed_login(50 + i, f"12:21:{i * 10:02d}", u, "203.0.113.51")
          for i, u in enumerate(["carol", "dave", "HIDDEN_DUE_TO_SECURITY_REASONS", "admin"])]

def write(path, records, pretty):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    doc = {"Records": records}
    text = json.dumps(doc, indent=4, ensure_ascii=False) + "\n" if pretty else json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as g:
        g.write(text.encode())
    open(full, "wb").write(buf.getvalue())
    print(path, len(records), len(text))

write(f"AWSLogs/{A}/CloudTrail/us-east-1/2024/05/14/{A}_CloudTrail_us-east-1_20240514T0000Z_muster01.json.gz", mgmt, False)
write(f"AWSLogs/{A}/CloudTrail-Insight/us-east-1/2024/05/14/{A}_CloudTrail-Insight_us-east-1_20240514T0000Z_muster02.json.gz", insights, False)
write(f"AWSLogs/{B}/CloudTrail/eu-west-1/2024/05/14/{B}_CloudTrail_eu-west-1_20240514T1200Z_muster03.json.gz", eu, True)
write(f"AWSLogs/{A}/CloudTrail/us-east-1/2024/05/15/{A}_CloudTrail_us-east-1_20240515T1200Z_rules01.json.gz", rules, False)
