#!/usr/bin/env python3
"""Writes the GuardDuty samples, after AWS's documented finding format
(https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-summary.html,
https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Finding.html) and the way
GuardDuty exports findings to S3: gzip JSON lines of bare findings under
AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<uuid>.jsonl.gz. Also the AWS CLI's
`get-findings` output (PascalCase, {"Findings":[...]}) and a JSON array."""
import gzip, io, json, os

HERE = os.path.dirname(os.path.abspath(__file__))
ACCT, DET = "123456789012", "12abc34d567e8fa901bc2d34e56789f0"


def finding(fid, ftype, sev, title, desc, resource, action, region="us-east-1", acct=ACCT,
            created="2026-11-20T08:00:00.000Z", updated="2026-11-20T08:00:00.000Z",
            first=None, last=None, count=1, archived=False, **service_more):
    service = {
        "serviceName": "guardduty", "detectorId": DET, "action": action,
        "resourceRole": "TARGET", "additionalInfo": {"value": "{}", "type": "default"},
        "eventFirstSeen": first or created, "eventLastSeen": last or updated,
        "archived": archived, "count": count,
    }
    service.update(service_more)
    return {
        "schemaVersion": "2.0", "accountId": acct, "region": region, "partition": "aws",
        "id": fid, "arn": f"arn:aws:guardduty:{region}:{acct}:detector/{DET}/finding/{fid}",
        "type": ftype, "resource": resource, "service": service, "severity": sev,
        "createdAt": created, "updatedAt": updated, "title": title, "description": desc,
    }


def instance(iid="i-0abcd1234ef567890", **more):
    d = {
        "instanceId": iid, "instanceType": "t3.micro", "launchTime": "2026-11-01T10:00:00.000Z",
        "platform": None, "productCodes": [], "iamInstanceProfile": {
            "arn": f"arn:aws:iam::{ACCT}:instance-profile/web", "id": "AIPAEXAMPLEID12345678"},
        "networkInterfaces": [{
            "networkInterfaceId": "eni-0123456789abcdef0", "privateDnsName": "ip-10-0-1-23.ec2.internal",
            "privateIpAddress": "10.0.1.23", "publicDnsName": "ec2-198-51-100-23.compute-1.amazonaws.com",
            "publicIp": "198.51.100.23", "subnetId": "subnet-0a1b2c3d", "vpcId": "vpc-0a1b2c3d",
            "securityGroups": [{"groupName": "web", "groupId": "sg-0a1b2c3d4e5f67890"}],
            "ipv6Addresses": [], "privateIpAddresses": [
                {"privateDnsName": "ip-10-0-1-23.ec2.internal", "privateIpAddress": "10.0.1.23"}]}],
        "outpostArn": None, "tags": [{"key": "Name", "value": "web-1"}],
        "instanceState": "running", "availabilityZone": "us-east-1a", "imageId": "ami-0abcdef1234567890",
        "imageDescription": "Amazon Linux 2023",
    }
    d.update(more)
    return {"resourceType": "Instance", "instanceDetails": d}


def access_key(user="alice", key="ASIAEXAMPLEKEY123456"):
    return {"accessKeyId": key, "principalId": "AIDAEXAMPLEPRINCIPAL1", "userType": "IAMUser",
            "userName": user}


def remote_ip(ip, country="Netherlands", org="Example Hosting"):
    return {"ipAddressV4": ip, "organization": {"asn": "64496", "asnOrg": org, "isp": org, "org": org},
            "country": {"countryCode": "NL", "countryName": country}, "city": {"cityName": "Amsterdam"},
            "geoLocation": {"lat": 52.37, "lon": 4.89}}


main = [
    # A first sighting: created == updated, count 1 -> Create; Low.
    finding("a1b2c3d4e5f60718293a4b5c6d7e8f90", "UnauthorizedAccess:EC2/SSHBruteForce", 2,
            "198.51.100.77 is performing SSH brute force attacks against i-0abcd1234ef567890.",
            "198.51.100.77 is performing SSH brute force attacks against i-0abcd1234ef567890. "
            "Brute force attacks are used to gain unauthorized access to your instance by guessing the SSH password.",
            instance(), {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "INBOUND", "remoteIpDetails": remote_ip("198.51.100.77"),
                "remotePortDetails": {"port": 46120, "portName": "Unknown"},
                "localPortDetails": {"port": 22, "portName": "SSH"}, "protocol": "TCP",
                "blocked": False, "localIpDetails": {"ipAddressV4": "10.0.1.23"}}}),
    # Seen again and again: count 7, updatedAt later -> Update; Medium.
    finding("b2c3d4e5f60718293a4b5c6d7e8f90a1", "Recon:EC2/PortProbeUnprotectedPort", 5,
            "Unprotected port on EC2 instance i-0abcd1234ef567890 is being probed.",
            "EC2 instance has an unprotected port which is being probed by a known malicious host.",
            instance(), {"actionType": "PORT_PROBE", "portProbeAction": {"blocked": False, "portProbeDetails": [
                {"localPortDetails": {"port": 3389, "portName": "RDP"},
                 "remoteIpDetails": remote_ip("203.0.113.9", "Germany")}]}},
            created="2026-11-19T22:10:00.000Z", updated="2026-11-20T07:45:12.345Z", count=7,
            first="2026-11-19T22:09:41.000Z", last="2026-11-20T07:44:58.000Z"),
    # S3 data events: two buckets and the access key that read them; High.
    finding("c3d4e5f60718293a4b5c6d7e8f90a1b2", "Exfiltration:S3/AnomalousBehavior", 8,
            "Unusual S3 API requests by alice.",
            "An IAM entity invoked an S3 API in a suspicious way. Objects were read at an unusual rate.",
            {"resourceType": "S3Bucket", "accessKeyDetails": access_key(),
             "s3BucketDetails": [
                 {"arn": "arn:aws:s3:::acme-data", "name": "acme-data", "type": "Destination",
                  "createdAt": "2025-01-12T09:00:00.000Z", "owner": {"id": "79a59df900b949e55d96a1e698fbaced"},
                  "tags": [], "defaultServerSideEncryption": {"encryptionType": "AES256"},
                  "publicAccess": {"effectivePermission": "NOT_PUBLIC"}},
                 {"arn": "arn:aws:s3:::acme-backups", "name": "acme-backups", "type": "Destination",
                  "createdAt": "2025-03-02T09:00:00.000Z", "owner": {"id": "79a59df900b949e55d96a1e698fbaced"},
                  "tags": [{"key": "env", "value": "prod"}]}]},
            {"actionType": "AWS_API_CALL", "awsApiCallAction": {
                "api": "GetObject", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
                "remoteIpDetails": remote_ip("192.0.2.44", "Brazil"), "affectedResources": {}}},
            created="2026-11-20T06:00:00.000Z", updated="2026-11-20T06:30:00.000Z", count=3,
            additionalInfo={"value": "{\"anomalies\":{\"anomalousAPIs\":\"s3.amazonaws.com:[GetObject]\"}}", "type": "default"}),
    # Instance credentials used from outside AWS; severity as a float; a title with quotes.
    finding("d4e5f60718293a4b5c6d7e8f90a1b2c3",
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", 8.0,
            "Credentials for instance role \"web-role\" used from external IP address.",
            "Credentials created exclusively for an EC2 instance using instance role web-role\n"
            "have been used from external IP address 192.0.2.200 \u2014 not from AWS.",
            {"resourceType": "AccessKey", "accessKeyDetails": {
                "accessKeyId": "ASIAEXAMPLEKEY654321", "principalId": "AROAEXAMPLEROLEID:i-0abcd1234ef567890",
                "userType": "AssumedRole", "userName": "web-role"}},
            {"actionType": "AWS_API_CALL", "awsApiCallAction": {
                "api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP",
                "remoteIpDetails": remote_ip("192.0.2.200"), "errorCode": "AccessDenied"}}),
    # Critical: GuardDuty's extended threat detection on an EKS cluster.
    finding("e5f60718293a4b5c6d7e8f90a1b2c3d4", "AttackSequence:EKS/CompromisedCluster", 9.2,
            "Potential cluster compromise indicated by a sequence of actions involving cluster prod.",
            "A sequence of actions involving 3 signals indicating a possible compromise of EKS cluster prod.",
            {"resourceType": "EKSCluster", "eksClusterDetails": {
                "name": "prod", "arn": f"arn:aws:eks:us-east-1:{ACCT}:cluster/prod", "vpcId": "vpc-0a1b2c3d",
                "status": "ACTIVE", "tags": [], "createdAt": "2025-06-01T12:00:00.000Z"},
             "kubernetesDetails": {"kubernetesUserDetails": {"username": "system:serviceaccount:default:app",
                                                             "uid": "8c0e1f5a-0000-4000-8000-000000000001",
                                                             "groups": ["system:serviceaccounts"]}}},
            {"actionType": "KUBERNETES_API_CALL", "kubernetesApiCallAction": {
                "requestUri": "/api/v1/namespaces/kube-system/secrets", "verb": "list",
                "sourceIps": ["198.51.100.101"], "userAgent": "kubectl/v1.31.0", "statusCode": 200}},
            created="2026-11-20T05:00:00.000Z", updated="2026-11-20T05:00:00.000Z"),
    # Archived by a suppression rule: Close, Suppressed.
    finding("f60718293a4b5c6d7e8f90a1b2c3d4e5", "Recon:EC2/Portscan", 5,
            "EC2 instance i-0fedcba9876543210 is performing outbound port scans against remote host 198.51.100.5.",
            "EC2 instance i-0fedcba9876543210 is performing outbound port scans. This may indicate a compromised instance.",
            instance("i-0fedcba9876543210"), {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "OUTBOUND", "remoteIpDetails": remote_ip("198.51.100.5"),
                "remotePortDetails": {"port": 8080, "portName": "Unknown"},
                "localPortDetails": {"port": 40012, "portName": "Unknown"}, "protocol": "TCP", "blocked": False}},
            archived=True),
    # Lambda Protection.
    finding("0718293a4b5c6d7e8f90a1b2c3d4e5f6", "Backdoor:Lambda/C&CActivity.B", 8,
            "Lambda function resize-images is querying an IP address associated with a known command and control server.",
            "Lambda function resize-images is querying IP address 203.0.113.66 that is associated with a known command and control server.",
            {"resourceType": "Lambda", "lambdaDetails": {
                "functionName": "resize-images", "functionArn": f"arn:aws:lambda:us-east-1:{ACCT}:function:resize-images",
                "description": "", "lastModifiedAt": "2026-11-02T10:00:00.000Z", "revisionId": "1a2b3c4d",
                "functionVersion": "$LATEST", "role": f"arn:aws:iam::{ACCT}:role/lambda-exec",
                "vpcConfig": {"subnetIds": ["subnet-0a1b2c3d"], "vpcId": "vpc-0a1b2c3d",
                              "securityGroups": [{"groupName": "lambda", "groupId": "sg-0b1c2d3e4f5a67890"}]},
                "tags": []}},
            {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                "connectionDirection": "OUTBOUND", "remoteIpDetails": remote_ip("203.0.113.66"),
                "remotePortDetails": {"port": 443, "portName": "HTTPS"}, "protocol": "TCP", "blocked": False}}),
    # RDS Protection.
    finding("18293a4b5c6d7e8f90a1b2c3d4e5f607", "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin", 5,
            "User app_admin successfully logged in to RDS database orders-db in an anomalous way.",
            "A user logged in successfully to the RDS database orders-db in an anomalous way.",
            {"resourceType": "RDSDBInstance", "rdsDbInstanceDetails": {
                "dbInstanceIdentifier": "orders-db", "engine": "aurora-postgresql", "engineVersion": "16.4",
                "dbClusterIdentifier": "orders", "dbInstanceArn": f"arn:aws:rds:us-east-1:{ACCT}:db:orders-db",
                "tags": []},
             "rdsDbUserDetails": {"user": "app_admin", "application": "psql", "database": "orders",
                                  "ssl": "true", "authMethod": "PASSWORD"}},
            {"actionType": "RDS_LOGIN_ATTEMPT", "rdsLoginAttemptAction": {
                "remoteIpDetails": remote_ip("198.51.100.150"),
                "LoginAttributes": [{"user": "app_admin", "application": "psql", "successfulLoginAttempts": 1,
                                     "failedLoginAttempts": 0}]}}),
]

# A delegated administrator's export names its member accounts' findings.
member = [
    finding("293a4b5c6d7e8f90a1b2c3d4e5f60718", "CryptoCurrency:EC2/BitcoinTool.B!DNS", 8,
            "EC2 instance i-0123456789abcdef0 is querying a domain name that is associated with Bitcoin-related activity.",
            "EC2 instance i-0123456789abcdef0 is querying a domain name associated with cryptocurrency mining.",
            instance("i-0123456789abcdef0", availabilityZone="eu-west-1b"),
            {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.example.org", "protocol": "UDP",
                                                               "blocked": False}},
            region="eu-west-1", acct="210987654321"),
]


def write_jsonl_gz(rel, records):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(raw.encode())
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def pascal(v):
    """The AWS CLI's rendering: every key with its first letter in upper case."""
    if isinstance(v, dict):
        return {(k[:1].upper() + k[1:]): pascal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [pascal(x) for x in v]
    return v


write_jsonl_gz(f"AWSLogs/{ACCT}/GuardDuty/us-east-1/2026/11/20/4d1c5a2e-8f3b-4c6d-9e0f-1a2b3c4d5e6f.jsonl.gz", main)
write_jsonl_gz(f"AWSLogs/{ACCT}/GuardDuty/eu-west-1/2026/11/20/7e8f9a0b-1c2d-4e3f-8a5b-6c7d8e9f0a1b.jsonl.gz", member)
os.makedirs(os.path.join(HERE, "cli"), exist_ok=True)
with open(os.path.join(HERE, "cli", "get-findings.json"), "w") as f:
    json.dump({"Findings": [pascal(main[1]), pascal(main[6])]}, f, indent=4)
    f.write("\n")
os.makedirs(os.path.join(HERE, "array"), exist_ok=True)
with open(os.path.join(HERE, "array", "findings.json"), "w") as f:
    json.dump([main[0], main[5]], f, indent=2)
    f.write("\n")
