#!/usr/bin/env python3
"""Writes our Security Hub EventBridge samples (see README.md). Deterministic: re-running gives the same bytes."""
import os; os.chdir(os.path.dirname(os.path.abspath(__file__)))
import json, copy
ACC="111122223333"; ACC2="444455556666"
def finding(fid, product, gen, title, sev, norm, wf="NEW", rs="ACTIVE", comp=None, res=None, region="us-west-2", acc=ACC, types=None, desc="", updated="2026-11-20T10:15:00.000Z", product_name=None, company="AWS", extra=None):
    parn=f"arn:aws:securityhub:{region}::product/aws/{product}"
    f={
      "SchemaVersion":"2018-10-08","Id":fid,"ProductArn":parn,
      "ProductName":product_name or product,"CompanyName":company,"Region":region,
      "GeneratorId":gen,"AwsAccountId":acc,"Types":types or ["Software and Configuration Checks/AWS Security Best Practices"],
      "FirstObservedAt":"2026-11-20T10:00:00.000Z","LastObservedAt":updated,
      "CreatedAt":"2026-11-20T10:00:00.000Z","UpdatedAt":updated,
      "Severity":{"Label":sev,"Normalized":norm,"Original":sev},
      "Title":title,"Description":desc or title+".",
      "Resources":res or [{"Type":"AwsAccount","Id":f"AWS::::Account:{acc}","Partition":"aws","Region":region}],
      "WorkflowState":"NEW","Workflow":{"Status":wf},"RecordState":rs,
      "FindingProviderFields":{"Severity":{"Label":sev,"Original":sev},"Types":types or ["Software and Configuration Checks/AWS Security Best Practices"]},
      "ProductFields":{"aws/securityhub/ProductName":product_name or product,"aws/securityhub/CompanyName":company,"aws/securityhub/FindingId":parn+"/"+fid},
    }
    if comp: f["Compliance"]={"Status":comp}
    if extra: f.update(extra)
    return f
def envelope(findings, detail_type="Security Hub Findings - Imported", region="us-west-2", eid="0b9e5a3c-2d4f-4f8e-9b1a-6f0c2e7d1a11", time="2026-11-20T10:15:30Z", action=None):
    det={"findings":findings}
    res=[f["ProductFields"]["aws/securityhub/FindingId"] for f in findings]
    if action:
        det={"actionName":action[0],"actionDescription":action[1],"findings":findings}
        res=[f"arn:aws:securityhub:{region}:{ACC}:action/custom/{action[2]}"]
    return {"version":"0","id":eid,"detail-type":detail_type,"source":"aws.securityhub","account":ACC,"time":time,"region":region,"resources":res,"detail":det}

gd_id=f"arn:aws:guardduty:us-west-2:{ACC}:detector/12abc34d567e8fa901bc2d34e56789f0/finding/a1b2c3d4e5f60718293a4b5c6d7e8f90"
gd=finding(gd_id,"guardduty","arn:aws:guardduty:us-west-2:%s:detector/12abc34d567e8fa901bc2d34e56789f0"%ACC,
  "EC2 instance i-0abcd1234ef567890 is querying a domain name associated with a known command and control server.","HIGH",70,
  res=[{"Type":"AwsEc2Instance","Id":f"arn:aws:ec2:us-west-2:{ACC}:instance/i-0abcd1234ef567890","Partition":"aws","Region":"us-west-2","Details":{"AwsEc2Instance":{"Type":"t3.micro","VpcId":"vpc-0a1b2c3d"}}}],
  types=["TTPs/Command and Control/Backdoor:EC2-C&CActivity.B!DNS"], product_name="GuardDuty",
  extra={"SourceUrl":"https://us-west-2.console.aws.amazon.com/guardduty/home?region=us-west-2#/findings?fId=a1b2c3d4e5f60718293a4b5c6d7e8f90"})
json.dump(envelope([gd]), open("imported_guardduty_high.json","w"), indent=2)

s3_id=f"arn:aws:securityhub:us-west-2:{ACC}:security-control/S3.8/finding/4f2d7c1e-9a3b-4c6d-8e1f-2a3b4c5d6e7f"
s3=finding(s3_id,"securityhub","security-control/S3.8","S3 general purpose buckets should block public access","HIGH",70,comp="FAILED",
  res=[{"Type":"AwsS3Bucket","Id":"arn:aws:s3:::example-public-bucket","Partition":"aws","Region":"us-west-2"}],
  types=["Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"],product_name="Security Hub")
insp_id=f"arn:aws:inspector2:us-east-1:{ACC2}:finding/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
insp=finding(insp_id,"inspector","AWSInspector","CVE-2024-3094 - xz-utils","CRITICAL",90,region="us-east-1",acc=ACC2,
  res=[{"Type":"AwsEcrContainerImage","Id":f"arn:aws:ecr:us-east-1:{ACC2}:repository/app/sha256:9f8e7d6c5b4a","Partition":"aws","Region":"us-east-1"}],
  types=["Software and Configuration Checks/Vulnerabilities/CVE"],product_name="Inspector")
iam_id=f"arn:aws:securityhub:us-west-2:{ACC}:security-control/IAM.6/finding/8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968"
iam=finding(iam_id,"securityhub","security-control/IAM.6","Hardware MFA should be enabled for the root user","LOW",1,comp="FAILED",product_name="Security Hub")
json.dump(envelope([s3,insp,iam],eid="7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"), open("imported_multi_three_products.json","w"), indent=2)

arch=copy.deepcopy(s3); arch["RecordState"]="ARCHIVED"; arch["Compliance"]={"Status":"NOT_AVAILABLE"}; arch["UpdatedAt"]=arch["LastObservedAt"]="2026-11-22T08:00:00.000Z"
json.dump(envelope([arch],eid="2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b",time="2026-11-22T08:00:05Z"), open("imported_archived.json","w"), indent=2)

res=copy.deepcopy(s3); res["Workflow"]={"Status":"RESOLVED"}; res["Compliance"]={"Status":"PASSED"}; res["UpdatedAt"]=res["LastObservedAt"]="2026-11-21T09:00:00.000Z"
res["Note"]={"Text":"Public access block enabled by the platform team.","UpdatedBy":"arn:aws:sts::%s:assumed-role/SecOps/alice"%ACC,"UpdatedAt":"2026-11-21T09:00:00.000Z"}
json.dump(envelope([res],eid="3f4a5b6c-7d8e-4f9a-0b1c-2d3e4f5a6b7c",time="2026-11-21T09:00:04Z"), open("imported_resolved.json","w"), indent=2)

echo=copy.deepcopy(gd); echo["Workflow"]={"Status":"NOTIFIED"}; echo["UpdatedAt"]="2026-11-20T10:16:02.000Z"
echo["Note"]={"Text":"Ticket SEC-101: https://acme.atlassian.net/browse/SEC-101","UpdatedBy":"arn:aws:sts::%s:assumed-role/muster-ticket-forwarder/muster-ticket-forwarder"%ACC,"UpdatedAt":"2026-11-20T10:16:02.000Z"}
echo["UserDefinedFields"]={"muster_ticket":"SEC-101","muster_ticket_url":"https://acme.atlassian.net/browse/SEC-101"}
json.dump(envelope([echo],eid="4a5b6c7d-8e9f-4a0b-1c2d-3e4f5a6b7c8d",time="2026-11-20T10:16:05Z"), open("imported_writeback_echo.json","w"), indent=2)

json.dump(envelope([gd,iam],detail_type="Security Hub Findings - Custom Action",eid="5b6c7d8e-9f0a-4b1c-2d3e-4f5a6b7c8d9e",time="2026-11-20T11:00:00Z",
  action=("Send to ticket","Open a ticket for the selected findings","SendToTicket")), open("customaction_send_to_ticket.json","w"), indent=2)

# One finding's life as JSON lines: new -> severity up -> cosmetic -> resolved -> active again.
seq=[]
base=finding(s3_id.replace("S3.8","S3.2").replace("4f2d7c1e","5a6b7c8d"),"securityhub","security-control/S3.2","S3 general purpose buckets should block public read access","MEDIUM",40,comp="FAILED",
  res=[{"Type":"AwsS3Bucket","Id":"arn:aws:s3:::example-logs","Partition":"aws","Region":"us-west-2"}],product_name="Security Hub")
steps=[("MEDIUM",40,"NEW","FAILED",None,"2026-11-20T10:00:00.000Z"),
       ("HIGH",70,"NOTIFIED","FAILED",None,"2026-11-20T12:00:00.000Z"),
       ("HIGH",70,"NOTIFIED","FAILED","S3 general purpose buckets should block public read access (re-evaluated)","2026-11-20T18:00:00.000Z"),
       ("HIGH",70,"RESOLVED","PASSED",None,"2026-11-21T09:00:00.000Z"),
       ("HIGH",70,"NEW","FAILED",None,"2026-11-23T07:30:00.000Z")]
for i,(sev,norm,wf,comp,title,upd) in enumerate(steps):
    f=copy.deepcopy(base); f["Severity"]={"Label":sev,"Normalized":norm,"Original":sev}; f["Workflow"]={"Status":wf}; f["Compliance"]={"Status":comp}
    f["UpdatedAt"]=f["LastObservedAt"]=upd
    if title: f["Title"]=title
    seq.append(json.dumps(envelope([f],eid=f"6c7d8e9f-0a1b-4c2d-3e4f-5a6b7c8d9e0{i}",time=upd[:19]+"Z"),separators=(",",":")))
open("lifecycle_s3_2.jsonl","w").write("\n".join(seq)+"\n")
