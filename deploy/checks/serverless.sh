#!/usr/bin/env bash
# Checks deploy/serverless offline: packages the service with the pinned
# Serverless Framework v3 (package-lock.json), then lints the CloudFormation
# template it makes with cfn-lint (no error, no warning) and checkov
# (--framework cloudformation), and serverless.yml itself with checkov's
# serverless framework.
#
#   deploy/checks/serverless.sh
#
# Nothing talks to AWS: `serverless package` runs with dummy credentials,
# no telemetry, no notifications, no dashboard. Without
# target/lambda/rekey-lambda/bootstrap.zip (scripts/build-lambda) the
# service is packaged with a dummy zip (REKEY_LAMBDA_ZIP).
#
# Tools: serverless from deploy/serverless/package-lock.json (npm ci);
# cfn-lint from the PATH, else CFN_LINT_VERSION in a venv; checkov from
# $CHECKOV, else the PATH when it is CHECKOV_VERSION, else that version in
# $REKEY_TOOLS/checkov (default ~/.cache/rekey/checkov, where
# `scripts/ensure-tools deploy` puts it; a venv of its own, as it brings
# bc-python-hcl2, which clashes with python-hcl2), installed when missing.
#
# Exit status: 0 no finding, 1 findings, 2 a tool could not be set up.
set -uo pipefail

CHECKOV_VERSION=3.3.30
CFN_LINT_VERSION=1.51.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
service=$repo/deploy/serverless
tools=${REKEY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/rekey}
py=${PYTHON:-python3}
findings=0

finding() {
    echo "  FINDING $*"
    findings=$((findings + 1))
}

die() {
    echo "deploy/checks/serverless.sh: $*" >&2
    exit 2
}

# A venv $1 under $tools holding the pip requirement $2, unless its
# command $3 already prints $4 for --version; prints the command's path.
venv_tool() {
    local dir=$tools/$1 requirement=$2 command=$3 version=$4
    if [ "$("$dir/bin/$command" --version 2>/dev/null)" != "$version" ]; then
        echo "setting up $dir with $requirement…" >&2
        "$py" -m venv --clear "$dir" >&2 &&
            "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement" >&2 ||
            die "cannot install $requirement into $dir"
    fi
    echo "$dir/bin/$command"
}

# --- tools -------------------------------------------------------------

command -v npm >/dev/null || die "npm is not installed (Node.js 18 or later)"
if ! (cd "$service" && npm ls serverless --depth=0 >/dev/null 2>&1) ||
    [ "$(cd "$service" && node -p 'require("serverless/package.json").version' 2>/dev/null)" != \
        "$(cd "$service" && node -p 'require("./package-lock.json").packages["node_modules/serverless"].version')" ]; then
    echo "npm ci in deploy/serverless…" >&2
    (cd "$service" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $service"
fi
sls_version=$(cd "$service" && node -p 'require("serverless/package.json").version')

if [ -n "${CHECKOV:-}" ]; then
    checkov=$CHECKOV
elif command -v checkov >/dev/null && [ "$(checkov --version 2>/dev/null)" = "$CHECKOV_VERSION" ]; then
    checkov=$(command -v checkov)
else
    checkov=$(venv_tool checkov "checkov==$CHECKOV_VERSION" checkov "$CHECKOV_VERSION") || exit 2
fi
if command -v cfn-lint >/dev/null; then
    cfn_lint=$(command -v cfn-lint)
else
    cfn_lint=$(venv_tool cfn-lint "cfn-lint==$CFN_LINT_VERSION" cfn-lint "cfn-lint $CFN_LINT_VERSION") || exit 2
fi
echo "deploy/checks/serverless.sh (serverless $sls_version, $("$cfn_lint" --version), checkov $("$checkov" --version))"

# --- serverless package, offline ---------------------------------------

zip=$repo/target/lambda/rekey-lambda/bootstrap.zip
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ -f "$zip" ]; then
    echo "artifact: $zip"
    artifact=$zip
else
    # A zip with a stand-in bootstrap: packaging only copies it.
    printf '#!/bin/sh\nexit 1\n' >"$scratch/bootstrap"
    chmod +x "$scratch/bootstrap"
    (cd "$scratch" && "$py" -c 'import zipfile; z = zipfile.ZipFile("bootstrap.zip", "w"); z.write("bootstrap"); z.close()') ||
        die "cannot make a dummy zip"
    artifact=$scratch/bootstrap.zip
    echo "artifact: $zip does not exist (scripts/build-lambda makes it): packaging a dummy zip, REKEY_LAMBDA_ZIP=$artifact"
fi

rm -rf "$service/.serverless"
# Dummy credentials, in a HOME of its own (no ~/.aws, no serverless login);
# no telemetry, notifications, update notices or dashboard (no org/app).
sls_env=(
    env -i "PATH=$PATH" "HOME=$scratch/home" "TMPDIR=$scratch"
    AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
    AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off SLS_DEPRECATION_DISABLE='*'
    NPM_CONFIG_UPDATE_NOTIFIER=false CI=1
    "REKEY_LAMBDA_ZIP=$artifact"
)
mkdir -p "$scratch/home"
echo "serverless package --stage prod --region us-east-1 (offline):"
if ! out=$(cd "$service" && "${sls_env[@]}" node_modules/.bin/serverless package --stage prod --region us-east-1 2>&1); then
    echo "$out" | sed 's/^/    /'
    finding "serverless package failed"
    echo "$findings finding(s)"
    exit 1
fi
echo "$out" | grep -v '^\s*$' | sed 's/^/    /'
template=$service/.serverless/cloudformation-template-update-stack.json
[ -f "$template" ] || {
    finding "serverless package made no $template"
    exit 1
}
rel_template=${template#"$repo"/}

# The template holds what serverless.yml promises.
if ! summary=$("$py" - "$template" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
r = t["Resources"]
problems = []
want = {
    "FunctionRole": "AWS::IAM::Role", "WorkQueue": "AWS::SQS::Queue",
    "WorkDeadLetterQueue": "AWS::SQS::Queue", "DeadLetterAlarm": "AWS::CloudWatch::Alarm",
    "JournalTable": "AWS::DynamoDB::Table", "NotifyTopic": "AWS::SNS::Topic",
    "KeyAgeRule": "AWS::Config::ConfigRule", "ConfigPermission": "AWS::Lambda::Permission",
    "SecretsManagerPermission": "AWS::Lambda::Permission", "RekeyLambdaFunction": "AWS::Lambda::Function",
    "RekeyLogGroup": "AWS::Logs::LogGroup",
}
for name, kind in want.items():
    if r.get(name, {}).get("Type") != kind:
        problems.append(f"no {kind} {name}")
for p in ("MemberRoleName", "SecretsPrefix"):
    if p not in t.get("Parameters", {}):
        problems.append(f"no parameter {p}")
outputs = ["FunctionArn", "FunctionRoleArn", "QueueUrl", "DeadLetterQueueUrl",
           "JournalTableName", "NotifyTopicArn", "ConfigRuleName"]
for o in outputs:
    if o not in t.get("Outputs", {}):
        problems.append(f"no output {o}")
f = r.get("RekeyLambdaFunction", {}).get("Properties", {})
checks = {
    "runtime provided.al2023": f.get("Runtime") == "provided.al2023",
    "arm64": f.get("Architectures") == ["arm64"],
    "handler bootstrap": f.get("Handler") == "bootstrap",
    "timeout 900": f.get("Timeout") == 900,
    "memory 512": f.get("MemorySize") == 512,
    "reserved concurrency": "ReservedConcurrentExecutions" in f,
}
esm = [v["Properties"] for v in r.values() if v.get("Type") == "AWS::Lambda::EventSourceMapping"]
checks["sqs batch 1, ReportBatchItemFailures"] = any(
    m.get("BatchSize") == 1 and m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in esm)
checks["schedule rule"] = any(
    v.get("Type") == "AWS::Events::Rule" and "ScheduleExpression" in v.get("Properties", {}) for v in r.values())
policies = r.get("FunctionRole", {}).get("Properties", {}).get("Policies", [])
checks["FunctionRole's rekey policy is a mapping"] = bool(policies) and isinstance(policies[0].get("PolicyDocument"), dict)
for what, ok in checks.items():
    if not ok:
        problems.append(f"the function: not {what}")
print("; ".join(problems) if problems else f"{len(r)} resources, {len(t.get('Outputs', {}))} outputs, the function as expected")
sys.exit(1 if problems else 0)
EOF
); then
    finding "$rel_template: $summary"
else
    echo "template $rel_template: $summary"
fi

# --- lint --------------------------------------------------------------

echo "cfn-lint $rel_template:"
out=$("$cfn_lint" --format parseable "$template" 2>&1)
rc=$?
if [ "$rc" = 0 ]; then
    echo "    no error, no warning"
else
    echo "$out" | sed 's/^/    /'
    finding "cfn-lint exited $rc (bits: 2 an error, 4 a warning, 8 an informational): $(echo "$out" | grep -c .) line(s)"
fi

# checkov: JSON, summarised here; --skip-download keeps it off its vendor's
# platform (unreachable here).
run_checkov() { # label, then checkov's arguments
    local label=$1
    shift
    (cd "$service" && LOG_LEVEL=WARNING "$checkov" "$@" --compact --skip-download -o json \
        >"$scratch/checkov.json" 2>"$scratch/checkov.err")
    local rc=$?
    if ! "$py" - "$label" "$rc" "$scratch/checkov.json" "$scratch/checkov.err" <<'EOF'
import json, sys
label, rc = sys.argv[1], int(sys.argv[2])
raw, err = open(sys.argv[3]).read(), open(sys.argv[4]).read().strip()
try:
    reports = json.loads(raw) if raw.strip() else []
except json.JSONDecodeError:
    print(f"  FINDING {label}: output is not JSON (exit {rc}): {raw[:2000]} {err}")
    sys.exit(1)
reports = reports if isinstance(reports, list) else [reports]
if not any("results" in r for r in reports):
    print(f"  FINDING {label}: checked nothing (exit {rc}) {raw[:500]} {err}")
    sys.exit(1)
bad = False
for r in reports:
    s, res = r.get("summary", {}), r.get("results", {})
    print(f"{label}: {s.get('passed', 0)} passed, {s.get('failed', 0)} failed, "
          f"{s.get('skipped', 0)} skipped, {s.get('parsing_errors', 0)} parse errors")
    for c in res.get("skipped_checks", []):
        print(f"    skipped {c['check_id']} on {c['resource']}: {c.get('check_result', {}).get('suppress_comment', '')}")
    for c in res.get("failed_checks", []):
        print(f"  FINDING {label}: {c['check_id']} failed on {c['resource']} "
              f"({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}")
        bad = True
    if s.get("parsing_errors"):
        print(f"  FINDING {label}: parse errors: {res.get('parsing_errors')}")
        bad = True
if rc not in (0, 1):
    print(f"  FINDING {label}: exited {rc}: {err}")
    bad = True
sys.exit(1 if bad else 0)
EOF
    then
        findings=$((findings + 1))
    fi
}

run_checkov "checkov --framework cloudformation -f $rel_template" \
    -f "$template" --framework cloudformation
run_checkov "checkov --framework serverless -f deploy/serverless/serverless.yml" \
    -f "$service/serverless.yml" --framework serverless

if [ "$findings" -gt 0 ]; then
    echo "$findings finding(s)"
    exit 1
fi
echo "no finding"
