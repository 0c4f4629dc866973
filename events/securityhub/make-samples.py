#!/usr/bin/env python3
"""Writes the Security Hub samples, after AWS's documented formats: the AWS Security
Finding Format (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-syntax.html),
the EventBridge events "Security Hub Findings - Imported" / "- Custom Action"
(https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-cwe-event-formats.html),
as a Firehose delivery stream writes them to S3 (gzip, records concatenated with no
separator, or one a line when the stream adds a newline delimiter), and a
BatchImportFindings/GetFindings {"Findings":[...]} document."""
import gzip, io, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
ACCT, REGION = "123456789012", "us-east-1"
SH = f"arn:aws:securityhub:{REGION}::product/aws/securityhub"


def envelope(eid, detail_type, time, findings, **detail_more):
    detail = dict(detail_more)
    detail["findings"] = findings
    resources = ([f"arn:aws:securityhub:{REGION}:{ACCT}:action/custom/send-to-ticket"]
                 if detail_type.endswith("Custom Action")
                 else [f["ProductArn"] + "/" + f["Id"] for f in findings])
    return {"version": "0", "id": eid, "detail-type": detail_type, "source": "aws.securityhub",
            "account": ACCT, "time": time, "region": REGION, "resources": resources, "detail": detail}


guardduty_via_sh = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:guardduty:{REGION}:{ACCT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/guardduty",
    "ProductName": "GuardDuty", "CompanyName": "Amazon", "Region": REGION,
    "GeneratorId": "arn:aws:guardduty:us-east-1:123456789012:detector/12abc34d567e8fa901bc2d34e56789f0",
    "AwsAccountId": ACCT,
    "Types": ["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"],
    "FirstObservedAt": "2026-11-20T08:00:00.000Z", "LastObservedAt": "2026-11-20T08:20:00.000Z",
    "CreatedAt": "2026-11-20T08:00:05.120Z", "UpdatedAt": "2026-11-20T08:20:05.400Z",
    "Severity": {"Product": 2, "Label": "LOW", "Normalized": 20},
    "Title": "198.51.100.77 is performing SSH brute force attacks against i-0abcd1234ef567890.",
    "Description": "198.51.100.77 is performing SSH brute force attacks against i-0abcd1234ef567890.",
    "SourceUrl": "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?macros=current&fId=a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "ProductFields": {"aws/guardduty/service/action/actionType": "NETWORK_CONNECTION",
                      "aws/guardduty/service/count": "3",
                      "aws/securityhub/FindingId": f"arn:aws:securityhub:{REGION}::product/aws/guardduty/arn:aws:guardduty:{REGION}:{ACCT}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1b2c3d4e5f60718293a4b5c6d7e8f90",
                      "aws/securityhub/ProductName": "GuardDuty", "aws/securityhub/CompanyName": "Amazon"},
    "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:{REGION}:{ACCT}:instance/i-0abcd1234ef567890",
                   "Partition": "aws", "Region": REGION, "Tags": {"Name": "web-1"},
                   "Details": {"AwsEc2Instance": {"Type": "t3.micro", "ImageId": "ami-0abcdef1234567890",
                                                  "IpV4Addresses": ["10.0.1.23", "198.51.100.23"],
                                                  "VpcId": "vpc-0a1b2c3d", "SubnetId": "subnet-0a1b2c3d",
                                                  "LaunchedAt": "2026-11-01T10:00:00.000Z"}}}],
    "Network": {"Direction": "IN", "Protocol": "TCP", "SourceIpV4": "198.51.100.77", "SourcePort": 46120,
                "DestinationIpV4": "10.0.1.23", "DestinationPort": 22},
    "Action": {"ActionType": "NETWORK_CONNECTION", "NetworkConnectionAction": {
        "ConnectionDirection": "INBOUND", "RemoteIpDetails": {"IpAddressV4": "198.51.100.77",
                                                              "Country": {"CountryName": "Netherlands"}},
        "RemotePortDetails": {"Port": 46120}, "LocalPortDetails": {"Port": 22, "PortName": "SSH"},
        "Protocol": "TCP", "Blocked": False}},
    "WorkflowState": "NEW", "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
    "FindingProviderFields": {"Types": ["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"],
                              "Severity": {"Product": 2, "Label": "LOW", "Normalized": 20}},
    "Sample": False,
}

inspector = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:inspector2:{REGION}:{ACCT}:finding/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/inspector", "ProductName": "Inspector",
    "CompanyName": "Amazon", "Region": REGION,
    "GeneratorId": "AWSInspector", "AwsAccountId": ACCT,
    "Types": ["Software and Configuration Checks/Vulnerabilities/CVE"],
    "FirstObservedAt": "2026-11-18T03:00:00.000Z", "LastObservedAt": "2026-11-20T03:00:00.000Z",
    "CreatedAt": "2026-11-18T03:01:00.000Z", "UpdatedAt": "2026-11-20T03:01:00.000Z",
    "Severity": {"Label": "CRITICAL", "Normalized": 90},
    "Title": "CVE-2026-12345 - openssl", "Description": "A use-after-free in openssl allows remote code execution.",
    "Remediation": {"Recommendation": {"Text": "Upgrade openssl to 3.2.4 or later."}},
    "ProductFields": {"aws/inspector/FindingStatus": "ACTIVE", "aws/inspector/inspectorScore": "9.8",
                      "aws/inspector/resources/1/resourceDetails/awsEcrContainerImageDetails/platform": "AMAZON_LINUX_2023",
                      "aws/securityhub/ProductName": "Inspector", "aws/securityhub/CompanyName": "Amazon"},
    "Resources": [{"Type": "AwsEcrContainerImage", "Id": f"arn:aws:ecr:{REGION}:{ACCT}:repository/web/sha256:3f1a",
                   "Partition": "aws", "Region": REGION,
                   "Details": {"AwsEcrContainerImage": {"RegistryId": ACCT, "RepositoryName": "web",
                                                        "ImageDigest": "sha256:3f1a", "ImageTags": ["1.4.2"]}}}],
    "Vulnerabilities": [{"Id": "CVE-2026-12345", "VulnerablePackages": [
        {"Name": "openssl", "Version": "3.2.1", "Epoch": "1", "Release": "1.amzn2023", "Architecture": "X86_64",
         "PackageManager": "OS", "FixedInVersion": "1:3.2.4-1.amzn2023", "Remediation": "dnf update openssl"}],
        "Cvss": [{"Version": "3.1", "BaseScore": 9.8,
                  "BaseVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "Source": "NVD"}],
        "Vendor": {"Name": "NVD", "Url": "https://nvd.nist.gov/vuln/detail/CVE-2026-12345"},
        "FixAvailable": "YES", "ExploitAvailable": "NO"}],
    "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
}

control = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:securityhub:{REGION}:{ACCT}:security-control/S3.8/finding/4f2d7c1e-9a0b-4c3d-8e5f-6a7b8c9d0e1f",
    "ProductArn": SH, "ProductName": "Security Hub", "CompanyName": "AWS", "Region": REGION,
    "GeneratorId": "security-control/S3.8", "AwsAccountId": ACCT,
    "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
    "FirstObservedAt": "2026-10-01T12:00:00.000Z", "LastObservedAt": "2026-11-20T12:00:00.000Z",
    "CreatedAt": "2026-10-01T12:00:00.000Z", "UpdatedAt": "2026-11-20T12:00:03.000Z",
    "Severity": {"Label": "HIGH", "Normalized": 70, "Original": "HIGH"},
    "Title": "S3 general purpose buckets should block public access",
    "Description": "This control checks whether an Amazon S3 general purpose bucket blocks public access at the bucket level.",
    "Remediation": {"Recommendation": {"Text": "For information on how to correct this issue, consult the AWS Security Hub controls documentation.",
                                       "Url": "https://docs.aws.amazon.com/console/securityhub/S3.8/remediation"}},
    "ProductFields": {"RelatedAWSResources:0/name": "securityhub-s3-bucket-level-public-access-prohibited-5a8f2c",
                      "RelatedAWSResources:0/type": "AWS::Config::ConfigRule",
                      "aws/securityhub/ProductName": "Security Hub", "aws/securityhub/CompanyName": "AWS",
                      "Resources:0/Id": "arn:aws:s3:::acme-data"},
    "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-data", "Partition": "aws", "Region": REGION,
                   "Details": {"AwsS3Bucket": {"OwnerId": "79a59df900b949e55d96a1e698fbaced",
                                               "CreatedAt": "2025-01-12T09:00:00.000Z"}}}],
    "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8",
                   "AssociatedStandards": [{"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"},
                                           {"StandardsId": "standards/cis-aws-foundations-benchmark/v/3.0.0"}],
                   "RelatedRequirements": ["CIS AWS Foundations Benchmark v3.0.0/2.1.4"],
                   "SecurityControlParameters": []},
    "WorkflowState": "NEW", "Workflow": {"Status": "NOTIFIED"}, "RecordState": "ACTIVE",
    "Note": {"Text": "Ticket SEC-1042 opened", "UpdatedBy": "muster-ticket-forwarder",
             "UpdatedAt": "2026-11-20T12:01:00.000Z"},
}

prowler = {
    "SchemaVersion": "2018-10-08",
    "Id": "prowler-iam_root_mfa_enabled-123456789012-us-east-1-root",
    "ProductArn": f"arn:aws:securityhub:{REGION}::product/prowler/prowler",
    "ProductName": "Prowler", "CompanyName": "Prowler", "Region": REGION,
    "GeneratorId": "prowler-iam_root_mfa_enabled", "AwsAccountId": ACCT,
    "Types": ["Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"],
    "FirstObservedAt": "2026-11-20T09:00:00Z", "UpdatedAt": "2026-11-20T09:00:00Z", "CreatedAt": "2026-11-20T09:00:00Z",
    "Severity": {"Label": "CRITICAL"}, "Confidence": 80, "Criticality": 90,
    "Title": "Ensure MFA is enabled for the \"root\" account",
    "Description": "Root account has no MFA.\nEnable a hardware MFA device.",
    "Resources": [{"Type": "AwsAccount", "Id": f"arn:aws:iam::{ACCT}:root", "Partition": "aws", "Region": REGION}],
    "Compliance": {"Status": "FAILED", "RelatedRequirements": ["CIS-2.0: 1.5", "CIS-3.0: 1.5"]},
    "Workflow": {"Status": "SUPPRESSED"}, "RecordState": "ACTIVE",
}

archived = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:securityhub:{REGION}:{ACCT}:subscription/aws-foundational-security-best-practices/v/1.0.0/EC2.19/finding/9e8d7c6b-5a49-4382-9170-a6b5c4d3e2f1",
    "ProductArn": SH, "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/EC2.19", "AwsAccountId": ACCT,
    "Types": ["Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"],
    "CreatedAt": "2026-09-01T00:00:00.000Z", "UpdatedAt": "2026-11-20T10:00:00.000Z",
    "Severity": {"Label": "INFORMATIONAL", "Normalized": 0, "Original": "CRITICAL"},
    "Title": "EC2.19 Security groups should not allow unrestricted access to ports with high risk",
    "Description": "This control checks whether unrestricted incoming traffic for security groups is accessible to high-risk ports.",
    "ProductFields": {"StandardsArn": "arn:aws:securityhub:::standards/aws-foundational-security-best-practices/v/1.0.0",
                      "ControlId": "EC2.19", "aws/securityhub/ProductName": "Security Hub",
                      "aws/securityhub/CompanyName": "AWS"},
    "Resources": [{"Type": "AwsEc2SecurityGroup", "Id": f"arn:aws:ec2:{REGION}:{ACCT}:security-group/sg-0a1b2c3d4e5f67890",
                   "Partition": "aws", "Region": REGION}],
    "Compliance": {"Status": "PASSED"},
    "Workflow": {"Status": "RESOLVED"}, "RecordState": "ARCHIVED",
}

access_analyzer = {
    "SchemaVersion": "2018-10-08",
    "Id": f"arn:aws:access-analyzer:{REGION}:{ACCT}:analyzer/org-analyzer/arn:aws:s3:::acme-public",
    "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/access-analyzer", "AwsAccountId": ACCT,
    "GeneratorId": f"aws/access-analyzer", "Types": ["Software and Configuration Checks/AWS Security Best Practices/External Access Granted"],
    "CreatedAt": "2026-11-19T15:00:00Z", "UpdatedAt": "2026-11-19T15:00:00Z",
    "Severity": {"Normalized": 75}, "Title": "AwsS3Bucket/arn:aws:s3:::acme-public/ allows public access",
    "Description": "AWS::S3::Bucket/arn:aws:s3:::acme-public/ allows public access",
    "Resources": [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-public", "Region": REGION}],
    "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
}

macie = {
    "SchemaVersion": "2018-10-08",
    "Id": "5a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d", "ProductArn": f"arn:aws:securityhub:{REGION}::product/aws/macie",
    "GeneratorId": "aws/macie", "AwsAccountId": ACCT,
    "Types": ["Sensitive Data Identifications/PII"],
    "CreatedAt": "2026-11-20T11:00:00.000Z", "UpdatedAt": "2026-11-20T11:00:00.000Z",
    "Severity": {"Label": "HIGH", "Normalized": 70},
    "Title": "The S3 object contains personal information.",
    "Description": "The object contains personal information such as full names or mailing addresses.",
    "Resources": [{"Type": "AwsS3Object", "Id": "arn:aws:s3:::acme-data/exports/customers.csv", "Partition": "aws",
                   "Region": REGION}],
    "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
}

firehose = [
    envelope("6a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b", "Security Hub Findings - Imported", "2026-11-20T08:20:06Z",
             [guardduty_via_sh, inspector]),
    envelope("6a1b2c3d-0001-4e5f-8a9b-0c1d2e3f4a5b", "Security Hub Findings - Imported", "2026-11-20T12:00:04Z",
             [control]),
    envelope("6a1b2c3d-0002-4e5f-8a9b-0c1d2e3f4a5b", "Security Hub Findings - Custom Action", "2026-11-20T12:30:00Z",
             [prowler], actionName="Send to ticket", actionDescription="Open a ticket for the selected findings"),
    envelope("6a1b2c3d-0003-4e5f-8a9b-0c1d2e3f4a5b", "Security Hub Findings - Imported", "2026-11-20T10:00:01Z",
             [archived]),
]


def write_gz(rel, text):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(text.encode())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


# Firehose's default S3 key: <prefix>YYYY/MM/DD/HH/<stream>-<version>-<YYYY-MM-DD-HH-MM-SS>-<uuid>.
write_gz("firehose/2026/11/20/12/muster-securityhub-1-2026-11-20-12-35-00-3b4c5d6e-7f80-4a91-b2c3-d4e5f6a7b8c9.gz",
         "".join(compact(e) for e in firehose))
write_gz("firehose-newline/2026/11/20/12/muster-securityhub-nl-1-2026-11-20-12-35-00-8c9d0e1f-2a3b-4c5d-9e6f-7a8b9c0d1e2f.gz",
         "".join(compact(e) + "\n" for e in firehose[:2]))
os.makedirs(os.path.join(HERE, "get-findings"), exist_ok=True)
with open(os.path.join(HERE, "get-findings", "findings.json"), "w") as f:
    json.dump({"Findings": [access_analyzer, macie]}, f, indent=2, ensure_ascii=False)
    f.write("\n")
