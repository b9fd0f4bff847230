#!/usr/bin/env python3
"""deploy/sam's templates as stacks in the emulator (moto, in-process).

template.yaml is expanded with aws-sam-translator (the SAM transform that
CloudFormation runs), its CodeUri pointed at a dummy zip uploaded to the
emulator's S3 first (the function's code is never run here), and created
as a stack twice: once with every optional parameter set, once with the
defaults. member-role.yaml is then created as a stack trusting the first
stack's function role. The resources are read back through the services'
APIs and checked against what the templates promise.

moto's CloudFormation lacks some resource types. Each is left out of the
template before the stack is made, with whatever refers to it, and said;
the rest is checked. Exit 0 when every check passed, 1 otherwise.

    python3 deploy/checks/stack_in_emulator.py
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import logging
import os
import re
import sys
import warnings
import urllib.parse
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "sam" / "template.yaml"
MEMBER_ROLE = ROOT / "deploy" / "sam" / "member-role.yaml"
REGION = "us-east-1"

# Nothing here may reach AWS: fake credentials, no profile, no endpoint.
for var in list(os.environ):
    if var.startswith("AWS_ENDPOINT_URL") or var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        del os.environ[var]
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION=REGION,
    AWS_REGION=REGION,
)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.cloudformation import parsing as moto_cfn  # noqa: E402
from moto.iam.policy_validation import IAMPolicyDocumentValidator  # noqa: E402
from moto.kms.models import kms_backends  # noqa: E402
from samtranslator.public.translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

# moto logs each type it lacks (this script says them itself), and the
# SAM translator its unpublished metrics.
logging.getLogger("moto").setLevel(logging.ERROR)
logging.getLogger("samtranslator").setLevel(logging.ERROR)

EXPECTED_OUTPUTS = [
    "FunctionArn",
    "FunctionRoleArn",
    "QueueUrl",
    "DeadLetterQueueUrl",
    "JournalTableName",
    "NotifyTopicArn",
    "ConfigRuleName",
]

ALL_SET = {
    "OrganizationRootOrOus": "ou-ab12-cdef3456,ou-ab12-ghij7890",
    "Schedule": "rate(12 hours)",
    "MemberRoleName": "rekey-member",
    "NotifyEmailFrom": "rekey@example.com",
    "NotifyWebhook": "secretsmanager:rekey/webhook",
    "ConfigLocation": "ssm:/rekey/config",
    "SecretsPrefix": "rekey/",
    "LogRetentionDays": "30",
}
DEFAULTS: dict[str, str] = {}

failures: list[str] = []


def check(ok: bool, what: str, got: object = None) -> bool:
    if ok:
        print(f"  ok    {what}")
    else:
        detail = "" if got is None else f" (got {got!r})"
        print(f"  FAIL  {what}{detail}")
        failures.append(what)
    return ok


def note(what: str) -> None:
    print(f"  note  {what}")


def emulated_or_declared(emulated_ok: bool, declared_ok: bool, what: str, got: object, declared: object) -> None:
    """A property moto's CloudFormation does not carry into the resource:
    checked as the expanded template declares it, and said."""
    if emulated_ok:
        check(True, what)
        return
    note(f"moto's CloudFormation does not apply it ({got!r}): {what} checked in the expanded template")
    check(declared_ok, what + " (declared)", declared)


# --- the template, expanded and cut to what moto's CloudFormation knows ---


def references(node: object) -> set[str]:
    """The logical IDs `node` names: Ref, Fn::GetAtt, Fn::Sub's ${X}."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list) and len(value) > 1:
                    found |= references(value[1])
                continue
            found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def depends_on(resource: dict) -> set[str]:
    d = resource.get("DependsOn", [])
    return {d} if isinstance(d, str) else set(d)


def cut_to_moto(template: dict) -> tuple[dict, list[str]]:
    """The template without the resources moto's CloudFormation cannot make,
    nor what refers to them; and what was left out, said."""
    t = copy.deepcopy(template)
    resources = t["Resources"]
    said: list[str] = []
    gone: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, r in list(resources.items()):
            if moto_cfn.resource_class_from_type(r["Type"]) is None:
                gone.add(name)
                said.append(f"{name} ({r['Type']}): moto's CloudFormation has no such type")
                del resources[name]
    changed = True
    while changed:
        changed = False
        for name, r in list(resources.items()):
            names = (references(r) | depends_on(r)) & gone
            if names:
                gone.add(name)
                said.append(f"{name} ({r['Type']}): refers to {', '.join(sorted(names))}, left out")
                del resources[name]
                changed = True
    for name, o in list(t.get("Outputs", {}).items()):
        names = references(o) & gone
        if names:
            said.append(f"output {name}: refers to {', '.join(sorted(names))}, left out")
            del t["Outputs"][name]
    return t, said


def expanded(bucket: str, key: str, params: dict[str, str]) -> dict:
    template = yaml_parse(TEMPLATE.read_text())
    fn = template["Resources"]["RekeyFunction"]["Properties"]
    want = "../../target/lambda/rekey-lambda/bootstrap.zip"
    check(fn.get("CodeUri") == want, f"RekeyFunction's CodeUri is {want}", fn.get("CodeUri"))
    fn["CodeUri"] = {"Bucket": bucket, "Key": key}
    iam = boto3.client("iam", region_name=REGION)
    return transform(template, dict(params), ManagedPolicyLoader(iam))


def dummy_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\necho 'a stand-in: the emulator never runs it' >&2\nexit 1\n")
    return buf.getvalue()


def create_stack(cfn, name: str, template: dict, params: dict[str, str]) -> dict[str, str] | None:
    declared = template.get("Parameters", {})
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in params.items() if k in declared
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if not check(
        stack["StackStatus"] == "CREATE_COMPLETE",
        f"stack {name} is CREATE_COMPLETE",
        f"{stack['StackStatus']}: {stack.get('StackStatusReason')}",
    ):
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


# --- the checks ---


def check_left_out(full: dict) -> None:
    """What the emulator cannot make, checked as the expanded template
    declares it."""
    r = full["Resources"]
    alarm = r["DeadLetterAlarm"]["Properties"]
    check(
        (alarm.get("Namespace"), alarm.get("MetricName"), alarm.get("Dimensions"))
        == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["WorkDeadLetterQueue", "QueueName"]}}],
        ),
        "DeadLetterAlarm (declared): watches the dead-letter queue's visible messages",
        alarm,
    )
    check(
        (alarm.get("ComparisonOperator"), alarm.get("Threshold")) == ("GreaterThanThreshold", 0)
        and alarm.get("AlarmActions") == [{"Ref": "NotifyTopic"}],
        "DeadLetterAlarm (declared): > 0 tells NotifyTopic",
        alarm,
    )
    rule = r["KeyAgeRule"]
    src = rule["Properties"]["Source"]
    check(
        src.get("Owner") == "CUSTOM_LAMBDA" and src.get("SourceIdentifier") == {"Fn::GetAtt": ["RekeyFunction", "Arn"]},
        "KeyAgeRule (declared): a custom Lambda rule of RekeyFunction",
        src,
    )
    kinds = {(d.get("MessageType"), d.get("MaximumExecutionFrequency")) for d in src.get("SourceDetails", [])}
    check(
        kinds == {("ConfigurationItemChangeNotification", None), ("ScheduledNotification", "TwentyFour_Hours")},
        "KeyAgeRule (declared): on configuration changes and every 24 hours",
        kinds,
    )
    check(
        rule["Properties"].get("Scope") == {"ComplianceResourceTypes": ["AWS::IAM::User"]}
        and rule["Properties"].get("InputParameters") == {"maxAccessKeyAge": "90"},
        "KeyAgeRule (declared): IAM users, maxAccessKeyAge 90",
        rule["Properties"],
    )
    check("ConfigPermission" in depends_on(rule), "KeyAgeRule (declared): after ConfigPermission", rule.get("DependsOn"))


def check_stack(cfn, name: str, params: dict[str, str], bucket: str, key: str) -> dict[str, str] | None:
    print(f"\nstack {name}: template.yaml with {'; '.join(f'{k}={v}' for k, v in params.items()) or 'the defaults'}")
    full = expanded(bucket, key, params)
    resources = full["Resources"]
    types = {n: r["Type"] for n, r in resources.items()}
    for n, t in [
        ("RekeyFunction", "AWS::Lambda::Function"),
        ("RekeyFunctionRole", "AWS::IAM::Role"),
        ("RekeyLogGroup", "AWS::Logs::LogGroup"),
        ("WorkQueue", "AWS::SQS::Queue"),
        ("WorkDeadLetterQueue", "AWS::SQS::Queue"),
        ("DeadLetterAlarm", "AWS::CloudWatch::Alarm"),
        ("JournalTable", "AWS::DynamoDB::Table"),
        ("NotifyTopic", "AWS::SNS::Topic"),
        ("KeyAgeRule", "AWS::Config::ConfigRule"),
        ("ConfigPermission", "AWS::Lambda::Permission"),
        ("SecretsManagerPermission", "AWS::Lambda::Permission"),
    ]:
        check(types.get(n) == t, f"the expanded template has {n} ({t})", types.get(n))
    sched = [n for n, t in types.items() if t == "AWS::Events::Rule"]
    esm = [n for n, t in types.items() if t == "AWS::Lambda::EventSourceMapping"]
    check(len(sched) == 1, "the transform made one EventBridge rule (the Schedule event)", sched)
    check(len(esm) == 1, "the transform made one SQS event source mapping", esm)
    check(
        sorted(full.get("Outputs", {})) == sorted(EXPECTED_OUTPUTS),
        "the outputs are exactly " + ", ".join(EXPECTED_OUTPUTS),
        sorted(full.get("Outputs", {})),
    )
    check_left_out(full)
    cut, said = cut_to_moto(full)
    for line in said:
        print(f"  left out  {line}")
    out = create_stack(cfn, name, cut, params)
    if out is None:
        return None
    for o in EXPECTED_OUTPUTS:
        if o in cut.get("Outputs", {}):
            check(bool(out.get(o)), f"output {o} has a value", out.get(o))

    # The journal.
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = out["JournalTableName"]
    t = ddb.describe_table(TableName=table)["Table"]
    check(
        [(k["AttributeName"], k["KeyType"]) for k in t["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")],
        f"table {table}: key pk (HASH) + sk (RANGE)",
        t["KeySchema"],
    )
    check(
        sorted((a["AttributeName"], a["AttributeType"]) for a in t["AttributeDefinitions"])
        == [("pk", "S"), ("sk", "S")],
        "table: pk and sk are strings",
        t["AttributeDefinitions"],
    )
    check(
        t.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST",
        "table: on-demand (PAY_PER_REQUEST)",
        t.get("BillingModeSummary"),
    )
    declared = resources["JournalTable"]["Properties"]
    ttl = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    emulated_or_declared(
        ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == "expires",
        declared.get("TimeToLiveSpecification") == {"AttributeName": "expires", "Enabled": True},
        "table: time to live on `expires`",
        ttl,
        declared.get("TimeToLiveSpecification"),
    )
    pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    emulated_or_declared(
        pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED",
        declared.get("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True},
        "table: point-in-time recovery",
        pitr["PointInTimeRecoveryDescription"],
        declared.get("PointInTimeRecoverySpecification"),
    )
    sse = t.get("SSEDescription", {})
    emulated_or_declared(
        sse.get("Status") == "ENABLED",
        declared.get("SSESpecification", {}).get("SSEEnabled") is True,
        "table: encrypted at rest (SSE)",
        sse,
        declared.get("SSESpecification"),
    )
    check(
        full["Resources"]["JournalTable"].get("DeletionPolicy") == "Retain"
        and full["Resources"]["JournalTable"].get("UpdateReplacePolicy") == "Retain",
        "table: kept when the stack is deleted or the table replaced (Retain)",
    )

    # The queues.
    sqs = boto3.client("sqs", region_name=REGION)
    q = sqs.get_queue_attributes(QueueUrl=out["QueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=out["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    check(int(q["VisibilityTimeout"]) >= 6 * 900, "queue: visibility timeout >= 6 x 900 s", q["VisibilityTimeout"])
    redrive = json.loads(q.get("RedrivePolicy", "{}"))
    check(
        redrive.get("deadLetterTargetArn") == dlq["QueueArn"],
        "queue: redrives to the dead-letter queue",
        redrive,
    )
    check(int(redrive.get("maxReceiveCount", 0)) == 3, "queue: maxReceiveCount 3", redrive)
    check(q.get("KmsMasterKeyId") == "alias/aws/sqs", "queue: encrypted (alias/aws/sqs)", q.get("KmsMasterKeyId"))
    check(
        dlq.get("KmsMasterKeyId") == "alias/aws/sqs",
        "dead-letter queue: encrypted (alias/aws/sqs)",
        dlq.get("KmsMasterKeyId"),
    )
    check(
        int(dlq["MessageRetentionPeriod"]) == 14 * 86400,
        "dead-letter queue: keeps messages 14 days",
        dlq["MessageRetentionPeriod"],
    )

    # The function.
    lam = boto3.client("lambda", region_name=REGION)
    fn = lam.get_function(FunctionName=out["FunctionArn"])["Configuration"]
    check(fn["Runtime"] == "provided.al2023", "function: runtime provided.al2023", fn["Runtime"])
    emulated_or_declared(
        fn.get("Architectures") == ["arm64"],
        resources["RekeyFunction"]["Properties"].get("Architectures") == ["arm64"],
        "function: arm64",
        fn.get("Architectures"),
        resources["RekeyFunction"]["Properties"].get("Architectures"),
    )
    check(fn["Handler"] == "bootstrap", "function: handler bootstrap", fn["Handler"])
    check(fn["Timeout"] == 900, "function: timeout 900 s", fn["Timeout"])
    check(fn["MemorySize"] == 512, "function: 512 MB", fn["MemorySize"])
    check(fn["Role"] == out["FunctionRoleArn"], "function: runs as RekeyFunctionRole", fn["Role"])
    env = fn.get("Environment", {}).get("Variables", {})
    topic = out["NotifyTopicArn"]
    want = {
        "REKEY_JOURNAL": f"dynamodb:{table}",
        "REKEY_QUEUE_URL": out["QueueUrl"],
        "REKEY_ROLE": params.get("MemberRoleName", "rekey-member"),
        "REKEY_NOTIFY_SNS": topic,
    }
    optional = {
        "REKEY_OUS": "OrganizationRootOrOus",
        "REKEY_CONFIG": "ConfigLocation",
        "REKEY_NOTIFY_EMAIL_FROM": "NotifyEmailFrom",
        "REKEY_NOTIFY_WEBHOOK": "NotifyWebhook",
    }
    for var, param in optional.items():
        if params.get(param):
            want[var] = params[param]
    check(env == want, "function: environment " + ", ".join(sorted(want)), env)
    concurrency = lam.get_function_concurrency(FunctionName=fn["FunctionName"])
    check(
        concurrency.get("ReservedConcurrentExecutions") == 10,
        "function: reserved concurrency 10",
        concurrency.get("ReservedConcurrentExecutions"),
    )
    mappings = lam.list_event_source_mappings(FunctionName=fn["FunctionName"])["EventSourceMappings"]
    check(
        [m["EventSourceArn"] for m in mappings] == [q["QueueArn"]],
        "function: one event source, the work queue",
        [m.get("EventSourceArn") for m in mappings],
    )
    for m in mappings:
        check(m.get("BatchSize") == 1, "event source: batch size 1", m.get("BatchSize"))
        frt = m.get("FunctionResponseTypes")
        if frt is None:
            declared = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping")
            note("moto's event source mapping keeps no FunctionResponseTypes: checked in the expanded template")
            frt = declared["Properties"].get("FunctionResponseTypes")
        check(frt == ["ReportBatchItemFailures"], "event source: ReportBatchItemFailures", frt)
    declared = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    scaling = [d.get("ScalingConfig", {}).get("MaximumConcurrency") for d in declared]
    reserved = resources["RekeyFunction"]["Properties"].get("ReservedConcurrentExecutions")
    check(
        all(isinstance(m, int) and 2 <= m < (reserved or 0) for m in scaling) and bool(scaling),
        f"event source (declared): MaximumConcurrency {scaling} under the reserved concurrency {reserved}",
    )
    events = boto3.client("events", region_name=REGION)
    rules = [r for r in events.list_rules()["Rules"] if r["Name"].startswith(name)]
    check(
        [r.get("ScheduleExpression") for r in rules] == [params.get("Schedule", "rate(1 day)")],
        "schedule: one EventBridge rule on the Schedule parameter",
        [r.get("ScheduleExpression") for r in rules],
    )
    for r in rules:
        targets = events.list_targets_by_rule(Rule=r["Name"])["Targets"]
        check([x["Arn"] for x in targets] == [fn["FunctionArn"]], "schedule: its target is the function", targets)
    policy = json.loads(lam.get_policy(FunctionName=fn["FunctionName"])["Policy"])
    principals = sorted(s["Principal"].get("Service", "") for s in policy["Statement"])
    want_principals = sorted(
        p
        for p, logical in [
            ("events.amazonaws.com", sched[0] + "Permission" if sched else ""),
            ("config.amazonaws.com", "ConfigPermission"),
            ("secretsmanager.amazonaws.com", "SecretsManagerPermission"),
        ]
        if logical in cut["Resources"]
    )
    check(principals == want_principals, "function: invoked by " + ", ".join(want_principals), principals)
    for s in policy["Statement"]:
        if s["Principal"].get("Service") in ("config.amazonaws.com", "secretsmanager.amazonaws.com"):
            account = s.get("Condition", {}).get("StringEquals", {}).get("AWS:SourceAccount")
            check(
                account == "123456789012",
                f"function: {s['Principal']['Service']} only from its own account",
                s.get("Condition"),
            )

    # The role.
    iam = boto3.client("iam", region_name=REGION)
    role_name = out["FunctionRoleArn"].rsplit("/", 1)[1]
    role = iam.get_role(RoleName=role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    check(
        [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}],
        "role: trusts lambda.amazonaws.com",
        trust,
    )
    inline = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
    check(inline == ["rekey-lambda"] and not attached, "role: one inline policy, rekey-lambda", (inline, attached))
    if inline:
        check_policy(iam, role_name, inline[0], "role")

    # Logs, topic, key.
    logs = boto3.client("logs", region_name=REGION)
    group = f"/aws/lambda/{fn['FunctionName']}"
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    check([g["logGroupName"] for g in groups] == [group], f"log group {group}", [g["logGroupName"] for g in groups])
    want_days = int(params.get("LogRetentionDays", "90"))
    for g in groups:
        check(g.get("retentionInDays") == want_days, f"log group: kept {want_days} days", g.get("retentionInDays"))
    sns = boto3.client("sns", region_name=REGION)
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    stack_resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    keys = [r["PhysicalResourceId"] for r in stack_resources if r["LogicalResourceId"] == "NotifyTopicKey"]
    if check(len(keys) == 1, "NotifyTopicKey exists", keys):
        check(
            attrs.get("KmsMasterKeyId") in (keys[0], f"arn:aws:kms:{REGION}:123456789012:key/{keys[0]}"),
            "topic: encrypted with NotifyTopicKey",
            attrs.get("KmsMasterKeyId"),
        )
        # Read from moto's backend: its KMS API cannot read back a key
        # policy that CloudFormation gave as an object (it keeps the object
        # and then parses it as text).
        key = kms_backends["123456789012"][REGION].keys[keys[0]]
        check(key.key_manager == "CUSTOMER", "NotifyTopicKey: customer managed", key.key_manager)
        check(key.key_rotation_status is True, "NotifyTopicKey: rotation on", key.key_rotation_status)
        kp = key.policy if isinstance(key.policy, dict) else json.loads(key.policy)
        services = [s["Principal"].get("Service") for s in kp["Statement"] if isinstance(s["Principal"], dict)]
        check(
            "cloudwatch.amazonaws.com" in services,
            "NotifyTopicKey: CloudWatch alarms may use it (so DeadLetterAlarm can publish)",
            services,
        )
    return out


def check_policy(iam, role: str, policy: str, who: str) -> None:
    """The role's inline policy as the stack resolved it: a valid IAM
    policy document (moto's validator: version, effects, actions, ARNs)."""
    doc = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    if isinstance(doc, str):
        text = urllib.parse.unquote(doc)
        try:
            doc = json.loads(text)
        except ValueError:
            # moto keeps a CloudFormation role's inline policy as the
            # Python value it resolved, and prints it so.
            doc = ast.literal_eval(text)
    try:
        IAMPolicyDocumentValidator(json.dumps(doc)).validate()
        valid, why = True, None
    except Exception as e:  # moto's MalformedPolicyDocument
        valid, why = False, f"{type(e).__name__}: {e}"
    statements = doc.get("Statement", [])
    check(valid and bool(statements), f"{who}: {policy} is a valid policy document ({len(statements)} statements)", why)


def check_member_role(cfn, function_role_arn: str) -> None:
    print("\nstack rekey-member: member-role.yaml trusting the first stack's function role")
    template = yaml_parse(MEMBER_ROLE.read_text())
    template, said = cut_to_moto(template)
    for line in said:
        print(f"  left out  {line}")
    org = "o-a1b2c3d4e5"
    out = create_stack(
        cfn,
        "rekey-member",
        template,
        {"RekeyFunctionRoleArn": function_role_arn, "OrganizationId": org},
    )
    if out is None:
        return
    iam = boto3.client("iam", region_name=REGION)
    role = iam.get_role(RoleName="rekey-member")["Role"]
    check(out.get("MemberRoleArn") == role["Arn"], "output MemberRoleArn is the role rekey-member", out)
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    check(
        [(s["Effect"], s["Principal"], s["Action"]) for s in trust]
        == [("Allow", {"AWS": function_role_arn}, "sts:AssumeRole")],
        "member role: only the function's role may assume it",
        trust,
    )
    check(
        all(s.get("Condition") == {"StringEquals": {"aws:PrincipalOrgID": org}} for s in trust),
        "member role: only from inside the organization (aws:PrincipalOrgID)",
        [s.get("Condition") for s in trust],
    )
    inline = iam.list_role_policies(RoleName="rekey-member")["PolicyNames"]
    attached = iam.list_attached_role_policies(RoleName="rekey-member")["AttachedPolicies"]
    check(inline == ["rekey-member"] and not attached, "member role: one inline policy, rekey-member", (inline, attached))
    if inline:
        check_policy(iam, "rekey-member", inline[0], "member role")


def main() -> int:
    global TEMPLATE, MEMBER_ROLE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--member-role", type=Path, default=MEMBER_ROLE)
    args = parser.parse_args()
    TEMPLATE, MEMBER_ROLE = args.template, args.member_role
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        bucket, key = "rekey-deploy-artifacts", "rekey-lambda/bootstrap.zip"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=dummy_zip())
        print(f"code: a dummy zip (a stand-in bootstrap) at s3://{bucket}/{key}, in place of CodeUri")
        cfn = boto3.client("cloudformation", region_name=REGION)
        out = check_stack(cfn, "rekey", ALL_SET, bucket, key)
        check_stack(cfn, "rekey-defaults", DEFAULTS, bucket, key)
        if out is not None:
            check_member_role(cfn, out["FunctionRoleArn"])
        else:
            check(False, "member-role.yaml: not tried, the first stack failed")
    print()
    if failures:
        print(f"stack in the emulator: {len(failures)} check(s) failed:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print("stack in the emulator: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
