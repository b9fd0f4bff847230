#!/usr/bin/env python3
"""In-process moto server for rekey's integration tests (see DESIGN.md, "Testing
against a real AWS API").

    python3 tests/support/moto_harness.py [--port N] [--verbose]   # serve
    python3 tests/support/moto_harness.py --self-test                # verify

Serves moto on 127.0.0.1 (port 0 = a free port), prints exactly one stdout line
`READY <port>` once connections are accepted, and runs until SIGTERM/SIGINT or
until its stdin reaches EOF (so a dead parent never leaves it running).
Use fake credentials and endpoint http://127.0.0.1:<port>, region us-east-1.

Control API: POST, JSON in / JSON out, under /_rekey/. Errors: HTTP 400/500,
{"error": "..."}. Every other request is forwarded to moto.
  /_rekey/bootstrap {}  -> {"account_id","access_key_id","secret_access_key"}
      Account 123456789012 gets an organization (feature set ALL) and user
      `harness-admin` (inline policy Action "*") with a key; from then on
      signatures and IAM policies are enforced for every request.
      Idempotent: a second call returns the same credentials.
      new_org and new_account bootstrap implicitly.
  /_rekey/new_org {"members": N, "member_names": [..optional..]}
      -> {"management_account_id", "organization_id", "access_key_id",
          "secret_access_key", "members": [{"account_id", "name"}]}
      A fresh, isolated organization. The key belongs to the user `org-admin`
      (inline policy Action "*") in the management account; it has never been
      used. Each member has OrganizationAccountAccessRole (trusting the
      management account, AdministratorAccess-equivalent inline policy).
      ListAccounts also shows the management account (named "master" by moto).
  /_rekey/new_account {} -> {"account_id","access_key_id","secret_access_key"}
      A fresh account (member of the bootstrap org) with user `account-admin`.
  /_rekey/key_dates {"account_id", "user_name", "access_key_id",
      "create_date": ISO8601|null, "last_used_date": ISO8601|null,
      "last_used_service": str|null, "last_used_region": str|null} -> {"ok":true}
      Back-dates a key (null create_date = unchanged) and sets its last-used
      info (null last_used_date = never used). Seen by ListAccessKeys,
      GetAccessKeyLastUsed and the credential report. Using the key afterwards
      overwrites last-used, as in AWS.
  /_rekey/clock {"account_id", "now": ISO8601|null} -> {"ok":true}
      A simulated clock for the account: while set, keys created in it get
      CreateDate `now` and a key used to sign a request gets LastUsedDate `now`
      (service/region as recorded). moto stamps both with the real time; the
      key-lifecycle tests need simulated days. It does not advance: set it again
      for each simulated day. null goes back to the real time.
  /_rekey/root_keys {"account_id", "keys": [{"active": bool, "last_rotated": ISO,
      "last_used_date": ISO|null, "last_used_region"?, "last_used_service"?}],
      "mfa_active"?: bool} -> {"ok":true}
      0..2 root keys for the credential report's <root_account> row and
      GetAccountSummary (AccountAccessKeysPresent, AccountMFAEnabled).
      Region/service default to us-east-1/iam when last_used_date is set.
  /_rekey/calls (GET or POST) -> {"total", "by_action": {"iam:ListUsers": n},
      "by_account": {"123456789012": n}}: AWS API requests received since the
      last /_rekey/calls_reset (including ones failed by /_rekey/fail, excluding
      the harness's own internal requests).
  /_rekey/calls_reset {} -> {"ok":true}
  /_rekey/denied {"account_id"} -> {"denied": [message]}: every AccessDenied
      answered to a caller of that account ("User: arn:aws:iam::ACCOUNT:user/u
      is not authorized to perform: ACTION"), oldest first.
  /_rekey/fail {"action": "iam:CreateAccessKey", "user_name"?, "account_id"?,
      "count": 1, "status": 500, "code": "ServiceFailure", "message"?,
      "after_success": false} -> {"ok":true}
      The next `count` requests matching action (and UserName parameter /
      account of the signing key, when given) fail with that AWS error, in
      the protocol of the request: query XML <ErrorResponse><Error><Code>
      (iam, sts, sns, SES v1), JSON {"__type"} + x-amzn-ErrorType header
      (X-Amz-Target services, and REST-JSON ones: SES v2). after_success=true
      forwards to moto first (the side effect happens) and then replaces the
      answer. Faults are global: pass account_id when tests run in parallel.
      An action is "<signing name>:<operation>", as in IAM policies and
      /_rekey/calls: SES v2 (REST-JSON, POST /v2/email/outbound-emails) is
      "ses:SendEmail" (its operation found from method and path), SNS
      "sns:Publish". E.g. {"action": "ses:SendEmail", "status": 429, "code":
      "TooManyRequestsException"} or {"action": "sns:Publish", "status": 400,
      "code": "Throttling"}. The AWS SDKs retry throttling codes and 5xx:
      the SDK for Rust (standard mode, 3 attempts) succeeds on its second
      attempt after a count-1 throttle unless the client's retries are off.
  /_rekey/fail_clear {} -> {"ok":true}
  /_rekey/mfa_device {"account_id", "user_name", "device_name"?: user_name}
      -> {"serial_number", "seed"}
      Creates a virtual MFA device (CreateVirtualMFADevice; its Base32 seed is
      the TOTP seed) and enables it for the user, as EnableMFADevice does.
  /_rekey/mfa_code {"serial_number", "steps"?: 0} -> {"code"}
      The TOTP code (RFC 6238: HMAC-SHA1, 30 s step, 6 digits) of a virtual
      device's seed for the current time step (+ `steps`).
  /_rekey/new_key_delay {"account_id"?, "seconds": float, "hide": true,
      "reject": true} -> {"ok":true}
      For `seconds` after each CreateAccessKey in that account (every account
      without account_id; an account's own setting wins), the new key is left
      out of ListAccessKeys and the credential report (hide) and requests
      signed with it fail with InvalidClientTokenId (reject), as while IAM
      propagates a key. seconds 0 clears the account's setting (keys already
      made keep their delay).
  /_rekey/report_age {"account_id", "generated_at": ISO8601|null} -> {"ok":true}
      Freezes the account's credential report: its content is rendered now
      and labelled `generated_at`. From then on, as in AWS, Generate returns
      COMPLETE without regenerating while the report is younger than 4 hours,
      and GetCredentialReport returns the frozen content and GeneratedTime; an
      older report is regenerated (STARTED, then frozen anew at that moment).
      null goes back to a report rendered at every Get.
  /_rekey/secret_rotation {"account_id", "secret_id", "lambda_arn",
      "region"?: "us-east-1", "days"?: 30} -> {"ok":true}
      Marks the secret (name or ARN) as one whose rotation is enabled through
      that Lambda: DescribeSecret then shows RotationEnabled true,
      RotationLambdaARN and RotationRules, as AWS does for a secret with
      rotation configured. Nothing is invoked and no version is added.
  /_rekey/secret_pending {"account_id", "secret_id", "token", "lambda_arn",
      "copy"?: false, "region"?: "us-east-1"} -> {"ok":true}
      What RotateSecret does before it invokes the rotation function: a new
      version `token` staged AWSPENDING (taken from any other version), with
      no value as AWS makes it, or with "copy" AWSCURRENT's value as moto's
      own RotateSecret makes it; rotation enabled through `lambda_arn`.
  /_rekey/ses_sent {"account_id"?, "region"?: "us-east-1"}
      -> {"messages": [{"account_id", "message_id", "source", "destinations":
          [..], "subject", "text", "html"}]}
      The mails SES v2 SendEmail with Simple content recorded as sent (what
      rekey sends), in the order sent within an account; every account's
      without account_id.
      destinations: To, then Cc, then Bcc addresses. text/html: the parts
      sent (null when absent). Raw, templated and SES v1 mails are left out.
      The sender must be verified first, as in AWS: a test creates its
      identity (SES v2 CreateEmailIdentity with the address or its domain)
      in the sending account and region; otherwise SendEmail fails with
      MessageRejected (400).
  /_rekey/config_evaluations {"account_id"?}
      -> {"calls": [{"account_id", "region", "result_token", "test_mode",
          "evaluations": [{"ComplianceResourceType", "ComplianceResourceId",
          "ComplianceType", "Annotation", "OrderingTimestamp"}], "failed": [..]}]}
      The AWS Config PutEvaluations calls accepted, in the order received
      within an account (the account of the signing credentials); every
      account's without account_id. OrderingTimestamp as ISO 8601 UTC with
      milliseconds ("2026-12-08T00:00:00.000Z"); Annotation null when absent;
      failed: the resource IDs answered in FailedEvaluations.
  /_rekey/config_refuse {"account_id", "resource_ids": [..]} -> {"ok":true}
      From then on PutEvaluations in that account answers evaluations of
      those resource IDs in FailedEvaluations (the others are kept), as AWS
      does for evaluations it cannot record. [] clears it.

MFA (AWS behaviour): GetSessionToken with SerialNumber + TokenCode checks the
code against the seed of a virtual device enabled for the calling user
(current step +-1; a code of a step already used is rejected) and fails with
AccessDenied otherwise. EnableMFADevice on a virtual device needs two
consecutive codes. Identity policies evaluate Bool/BoolIfExists on
aws:MultiFactorAuthPresent: absent for long-term keys, "false" for role
sessions and non-MFA GetSessionToken sessions, "true" for MFA sessions; other
conditions are ignored, as by moto. A non-MFA GetSessionToken session cannot
call IAM at all (AWS: "MFA required" for IAM from GetSessionToken credentials).

Credential report (AWS-like, deterministic, per account): GetCredentialReport
before any Generate -> ReportNotPresent (410). First Generate -> STARTED; while
STARTED, GetCredentialReport -> ReportInProgress (404) and the report becomes
COMPLETE; a second Generate -> COMPLETE. Content is rendered at Get time
(unless frozen by report_age).

Parent process: keep the harness's stdin open as a pipe (Rust:
Stdio::piped(), hold the ChildStdin); a null/closed stdin makes it exit at once
(or pass --no-stdin-watch). stderr is quiet unless --verbose.

moto 5.2.1 facts ([T] checked by --self-test, [S] read in the moto source):
- [S] Auth is enforced when ActionAuthenticatorMixin.request_count >=
  settings.INITIAL_NO_AUTH_ACTION_COUNT (read per request). The harness keeps
  it at inf until bootstrap, then sets 0. Identity policies are evaluated by
  action only (every request is checked against Resource "*").
- [T] moto renders auth errors as <ErrorResponse><Errors><Error>, status 403,
  Content-Type text/html, for every protocol. The Rust SDK's awsQuery parser
  (rest_xml_wrapped_errors.rs) only reads <ErrorResponse><Error>, and JSON
  services got XML (boto3 saw Code "403"). Patched (1).
- [T] Organizations state is per management account; members are recorded in
  organizations_backends.master_accounts, so a member's CreateOrganization
  fails with AlreadyInOrganizationException. new_org therefore does, over HTTP
  with auth enforced: CreateAccount in the bootstrap org, AssumeRole into its
  OrganizationAccountAccessRole, RemoveAccountFromOrganization (AWS allows
  this too), then as that role: create `org-admin`, CreateOrganization,
  CreateAccount per member. Its ListAccounts never sees other orgs' accounts.
- [T] moto creates OrganizationAccountAccessRole with a trust policy but no
  permissions (AWS attaches AdministratorAccess). Patched.
- [T] AssumeRole: moto evaluated trust policies only for roles in the caller's
  own account, compared principals literally (":root" never matched), let
  a missing ExternalId satisfy StringEquals sts:ExternalId, and allowed
  assuming non-existent roles. Patched: trust is enforced across accounts,
  so a test cannot assume roles of another test's organization.
- [T] GetAccountAuthorizationDetails ignored MaxItems/Marker. Patched (perf block).
- [T] GetAccountAuthorizationDetails(Filter=[User]) returns Tags and GroupList;
  ListUserTags works; ExternalId works once the patch above is in.
- [S] GetAccessKeyLastUsed finds keys of ANY account (AWS: own account only).
- [S] Last-used info is recorded when a request arrives, before its
  authentication (inactive keys excepted, by the patch).
- [T] MaxItems/Marker are ignored on ListUsers and ListAccessKeys. Patched.
- [S] RotateSecret invokes the rotation Lambda at once (moto runs it in
  Docker, absent here) and, without a Lambda, rotates the secret itself;
  DescribeSecret shows RotationEnabled/RotationLambdaARN only after it.
  /_rekey/secret_rotation sets those on the secret instead ([T] checked).
- [T] Served by Flask, a form-encoded (query protocol) body reached the
  signature check only as parsed fields, re-encoded botocore's way (space as
  "+"); the Rust SDK sends "%20", so a value holding a space (a tag value)
  failed with SignatureDoesNotMatch. Patched in (1): the bytes as received.
- [T] Security Hub (issue 6 block): BatchImportFindings and GetFindings
  worked without EnableSecurityHub, imported into any account's default
  product, stored findings missing required ASFF attributes, let a provider
  overwrite Workflow, and GetFindings ignored Filters. Patched. Findings are
  kept per account and region; the same Id updates a finding in place.
- [T] SES v2 (notifications block): SendEmail from an address or domain
  without an identity fails with MessageRejected (400, JSON), as in the
  sandbox. CreateEmailIdentity is enough to send: moto answers
  VerifiedForSendingStatus false yet accepts the sender at once (AWS waits
  for the link in the mail to be followed, or DKIM for a domain); recipients
  need no identity (AWS's sandbox requires them verified too). SendEmail
  with Simple content kept only the Html part (Text dropped when both were
  sent). Patched: both are kept, for /_rekey/ses_sent. Sent mails are kept
  in ses_backends[account][region].sent_messages, shared by SES v1 and v2.
- [T] SES v2 is REST-JSON (no X-Amz-Target): faults and auth errors were
  rendered as query XML, which the SDKs cannot read; counted as
  "ses:unknown". Patched: JSON errors, actions named from method and path.
- [T] SNS -> SQS (protocol sqs): moto delivers without a queue policy (AWS
  needs one allowing sns.amazonaws.com sqs:SendMessage); the SQS body is the
  SNS envelope (Type, MessageId, TopicArn, Subject, Message,
  MessageAttributes {name: {"Type", "Value"}}, Timestamp, Signature...)
  unless RawMessageDelivery is set.
- [S] AWS Config PutEvaluations (issue 20) raised NotImplementedError unless
  TestMode was set, kept nothing and checked no limit. Patched: the calls are
  kept for /_rekey/config_evaluations and checked as AWS checks them: at most
  100 evaluations ([T] 101 -> ValidationException), an Annotation of at most
  256 characters, the required fields, ComplianceType COMPLIANT,
  NON_COMPLIANT or NOT_APPLICABLE (INSUFFICIENT_DATA ->
  InvalidParameterValueException), a ResultToken (any non-empty one: the
  harness has no rules to check it against).
"""
import argparse, base64, datetime as dt, json, os, re, signal, sys, threading, uuid
from io import BytesIO
from urllib.parse import parse_qs

os.environ.pop("MOTO_ACCOUNT_ID", None)  # would override the key->account mapping
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# moto must be imported after the environment tweaks above.
from werkzeug.exceptions import HTTPException  # noqa: E402
from werkzeug.serving import WSGIRequestHandler, make_server  # noqa: E402
from moto import settings  # noqa: E402
from moto.core import exceptions as mexc  # noqa: E402
from moto.core.authorization import ActionAuthenticatorMixin  # noqa: E402
from moto.core.responses import ActionResult  # noqa: E402
from moto.core.utils import utcnow  # noqa: E402
from moto.iam import access_control, models as iam_models  # noqa: E402
from moto.iam.exceptions import IAMException, NotFoundException  # noqa: E402
from moto.iam.models import AccessKeyLastUsed, AccountSummary, iam_backends  # noqa: E402
from moto.iam.policy_conditions import CONDITION_OPERATIONS  # noqa: E402
from moto.iam.responses import IamResponse  # noqa: E402
from moto.iam.utils import (EXTERNAL_CONDITION_SOURCES, REQUIRE_RESOURCE_ACCESS_POLICIES_CHECK,  # noqa: E402
                            format_incoming_conditional_values)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from moto.organizations import models as org_models  # noqa: E402

DEFAULT_ACCOUNT = "123456789012"
ADMIN_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]})
QUERY_NS = {"iam": "https://iam.amazonaws.com/doc/2010-05-08/",
            "sts": "https://sts.amazonaws.com/doc/2011-06-15/"}
# JSON protocols name the auth errors differently from the query protocol.
JSON_AUTH_CODES = {"InvalidClientTokenId": "UnrecognizedClientException",
                   "SignatureDoesNotMatch": "InvalidSignatureException",
                   "AccessDenied": "AccessDeniedException"}
# REST-JSON services (no X-Amz-Target, the operation is method + path): moto
# service name -> (signing name, path prefix), as moto's dispatcher tells
# SES v2 from SES v1.
REST_JSON = {"sesv2": ("ses", "/v2/")}
INTERNAL_HEADER = "x-rekey-internal"
CURRENT = threading.local()  # .raw_body: this thread's request body, as received
STARTED_AT = utcnow()

ROOT = {}           # account_id -> {"keys": [...], "mfa_active": bool}
REPORT_STATE = {}   # account_id -> "STARTED" | "COMPLETE"
CLOCK = {}          # account_id -> naive UTC datetime (/_rekey/clock)


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_iso(s):
    """ISO8601 -> naive UTC datetime, as moto stores them."""
    if s is None:
        return None
    d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return d.astimezone(dt.timezone.utc).replace(tzinfo=None) if d.tzinfo else d


def aws_error(service, protocol, code, message, status):
    """(status, headers, body) of an AWS-shaped error in the request's protocol:
    "query" (XML), "json" (X-Amz-Target) or "rest-json" (SES v2)."""
    rid = str(uuid.uuid4())
    if protocol != "query":
        body = json.dumps({"__type": code, "message": message})
        ctype = "application/json" if protocol == "rest-json" else "application/x-amz-json-1.1"
        return status, {"Content-Type": ctype, "x-amzn-ErrorType": code, "x-amzn-RequestId": rid}, body
    ns = QUERY_NS.get(service, f"https://{service}.amazonaws.com/doc/")
    kind = "Receiver" if status >= 500 else "Sender"
    msg = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{msg}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>")
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body


# ---------------------------------------------------------------- moto patches
class _AuthError(HTTPException):
    def __init__(self, status, body):
        super().__init__(description=body)
        self.code = status


_orig_auth = ActionAuthenticatorMixin._authenticate_and_authorize_action
DENIED = []  # every AccessDenied's message; /_rekey/denied
DENIED_LOCK = threading.Lock()


def _auth(self, iam_request_cls, resource="*"):
    # AWS behaviour restored: auth errors are <ErrorResponse><Error><Code> for
    # query services (403) and {"__type": ...} + x-amzn-ErrorType for JSON
    # services (400), so every SDK (incl. Rust's) reads the error code.
    #
    # The signature is checked over the bytes that were sent. Served by
    # Flask, moto sees a form body only as parsed fields and re-encodes them
    # the way botocore does (a space as `+`); the Rust SDK sends `%20`, so
    # any query-protocol value holding a space (a tag value) failed with
    # SignatureDoesNotMatch where AWS accepts it.
    raw = getattr(CURRENT, "raw_body", None)
    if raw and not self.raw_body:
        self.raw_body = raw
    try:
        return _orig_auth(self, iam_request_cls, resource)
    except (mexc.InvalidClientTokenIdError, mexc.SignatureDoesNotMatchError,
            mexc.AccessDeniedError) as e:
        protocol = ("json" if self.headers.get("X-Amz-Target")
                    else "rest-json" if self.service_name in REST_JSON else "query")
        if isinstance(e, mexc.AccessDeniedError):
            with DENIED_LOCK:
                DENIED.append(e.message)
        code = JSON_AUTH_CODES[e.error_type] if protocol != "query" else e.error_type
        # REST-JSON services answer auth errors with 403, as query ones do.
        status, headers, body = aws_error(self.service_name, protocol, code, e.message,
                                          400 if protocol == "json" else 403)
        headers.pop("x-amzn-RequestId")
        self.response_headers.update(headers)
        raise _AuthError(status, body) from None


ActionAuthenticatorMixin._authenticate_and_authorize_action = _auth

_orig_key_init = access_control.IAMUserAccessKey.__init__


def _key_init(self, account_id, partition, access_key_id, headers):
    # AWS behaviour restored: a request signed with an Inactive key fails with
    # InvalidClientTokenId ("The security token included in the request is invalid.").
    _orig_key_init(self, account_id, partition, access_key_id, headers)
    key = self.backend.access_keys.get(access_key_id)
    if key is not None and (key.status != "Active" or _rejected(key)):  # _rejected: issue 9, new_key_delay
        raise access_control.CreateAccessKeyFailure(reason="InvalidId")


access_control.IAMUserAccessKey.__init__ = _key_init

# AWS behaviour restored: sts:AssumeRole needs an existing role whose trust
# policy admits the caller, wherever the role lives. moto evaluated trust only
# for roles in the caller's own account, compared principals literally (so
# "arn:aws:iam::X:root" never matched), denied on any non-matching statement,
# and let a missing ExternalId satisfy StringEquals sts:ExternalId.
def _is_assuming_role_operation(self, resource_arn):
    return ":role/" in resource_arn and self._action in REQUIRE_RESOURCE_ACCESS_POLICIES_CHECK


def _trusts(statement, principal, incoming):
    expected = statement.get("Principal")
    if expected != "*":
        aws = expected.get("AWS") if isinstance(expected, dict) else None
        acct = principal.split(":")[4]  # "X", ".../root" = any principal of X; role = its sessions
        role = re.sub(r"^arn:([\w-]+):sts::(\d+):assumed-role/([^/]+)/.*$", r"arn:\1:iam::\2:role/\3", principal)
        if not any(e in ("*", principal, role, acct, f"arn:aws:iam::{acct}:root")
                   for e in (aws if isinstance(aws, list) else [aws])):
            return False
    for op, kv in (statement.get("Condition") or {}).items():
        fn = CONDITION_OPERATIONS.get(op)  # moto knows StringEquals; others are ignored
        for key, want in kv.items():
            if fn and key in EXTERNAL_CONDITION_SOURCES and (key not in incoming or not fn(want, incoming[key])):
                return False
    return True


def _check_role_trust_relationship(self, role_arn):
    m = re.match(r"arn:aws[\w-]*:iam::(\d{12}):role/", role_arn)
    try:
        role = iam_backends[m.group(1)]["global"].get_role_by_arn(role_arn)
    except (AttributeError, NotFoundException):
        return False
    doc = role.assume_role_policy_document
    statements = (json.loads(doc) if isinstance(doc, str) else doc)["Statement"]
    incoming = format_incoming_conditional_values(self._data)
    allowed = False
    for st in statements if isinstance(statements, list) else [statements]:
        if (access_control.IAMPolicyStatement(st)._check_element_matches("Action", self._action)
                and _trusts(st, self._access_key.arn, incoming)):
            if st.get("Effect") == "Deny":
                return False
            allowed = True
    return allowed


access_control.IAMRequestBase._is_assuming_role_operation = _is_assuming_role_operation
access_control.IAMRequestBase._check_role_trust_relationship = _check_role_trust_relationship


# AWS behaviour restored: sts:GetSessionToken (the MFA session of
# `rekey rotate` for profiles with mfa_serial) returns temporary credentials
# that act as the calling IAM user. moto returned one fixed example key that
# belongs to nobody, so every call made with it failed authentication.
from moto.sts import models as sts_models  # noqa: E402
from moto.sts.responses import TokenResponse  # noqa: E402
from moto.core.utils import iso_8601_datetime_with_milliseconds  # noqa: E402


def _caller_user(account_id, access_key_id):
    for partition in iam_backends[account_id]:
        user = iam_backends[account_id][partition].get_user_from_access_key_id(access_key_id)
        if user is not None:
            return partition, user
    return None, None


def _get_session_token(self):
    duration = self._get_int_param("DurationSeconds", 43200)
    token = self.backend.get_session_token(duration=duration)
    caller = self.get_access_key()
    account_id = iam_models.get_account_id_from(caller)
    partition, user = _caller_user(account_id, caller)
    if user is None:  # not an IAM user's key: keep moto's answer
        return _orig_get_session_token(self)
    # AWS behaviour restored (issue 9): SerialNumber + TokenCode are checked;
    # the session records whether MFA was used (aws:MultiFactorAuthPresent).
    try:
        mfa = _check_mfa_code(account_id, user, self._get_param("SerialNumber"), self._get_param("TokenCode"))
    except _MfaDenied as e:
        status, headers, body = aws_error("sts", "query", "AccessDenied", str(e), 403)
        headers.pop("x-amzn-RequestId")
        self.response_headers.update(headers)
        raise _AuthError(status, body) from None
    key = iam_backends[account_id][partition].create_temp_access_key()
    key.session_user = user.name
    key.session_mfa = mfa
    key.session_token = "FwoGZXIvYXdzE" + uuid.uuid4().hex + uuid.uuid4().hex
    return ActionResult({"Credentials": {
        "AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key,
        "SessionToken": key.session_token, "Expiration": token.expiration}})


_orig_get_session_token = TokenResponse.get_session_token
TokenResponse.get_session_token = _get_session_token


def _session_key(account_id, partition, access_key_id):
    key = iam_backends[account_id][partition].access_keys.get(access_key_id)
    return key if getattr(key, "session_user", None) else None


class _SessionUserAccessKey(access_control.IAMUserAccessKey):
    """A GetSessionToken key: authorised as the user who asked for it."""

    def __init__(self, account_id, partition, access_key_id, headers):
        self.account_id, self.partition = account_id, partition
        key = _session_key(account_id, partition, access_key_id)
        if headers.get("X-Amz-Security-Token") != key.session_token:
            raise access_control.CreateAccessKeyFailure(reason="InvalidToken")
        self._owner_user_name = key.session_user
        self._access_key_id = access_key_id
        self._secret_access_key = key.secret_access_key
        self._session_token = key.session_token

    def create_credentials(self):
        return access_control.Credentials(self._access_key_id, self._secret_access_key, self._session_token)


_orig_create_access_key = access_control.create_access_key


def _create_access_key(account_id, partition, access_key_id, headers):
    if _session_key(account_id, partition, access_key_id):
        return _SessionUserAccessKey(account_id, partition, access_key_id, headers)
    return _orig_create_access_key(account_id, partition, access_key_id, headers)


access_control.create_access_key = _create_access_key

_orig_caller_identity = sts_models.STSBackend.get_caller_identity


def _caller_identity(self, access_key_id, region):
    key = _session_key(self.account_id, self.partition, access_key_id)
    if key is not None:
        user = iam_backends[self.account_id][self.partition].get_user(key.session_user)
        return user.id, user.arn, user.account_id
    return _orig_caller_identity(self, access_key_id, region)


sts_models.STSBackend.get_caller_identity = _caller_identity

_orig_visited = iam_models.mark_account_as_visited


def _visited(account_id, access_key, service, region):
    # AWS behaviour restored: a rejected (inactive) key's last-used info is not updated.
    key = iam_backends[account_id]["global"].access_keys.get(access_key)
    if key is None or (key.status == "Active" and not _rejected(key)):
        _orig_visited(account_id=account_id, access_key=access_key, service=service, region=region)
        now = CLOCK.get(account_id)
        if key is not None and now is not None and key.last_used is not None:  # /_rekey/clock
            key.last_used = AccessKeyLastUsed(timestamp=now, service=key.last_used.service,
                                              region=key.last_used.region)


iam_models.mark_account_as_visited = _visited

_orig_fake_account_init = org_models.FakeAccount.__init__


def _fake_account_init(self, organization, **kwargs):
    # AWS behaviour restored: OrganizationAccountAccessRole grants full
    # administrator access (AWS attaches AdministratorAccess; an inline policy
    # is used because moto does not load AWS managed policies by default).
    _orig_fake_account_init(self, organization, **kwargs)
    role = kwargs.get("RoleName") or "OrganizationAccountAccessRole"
    iam_backends[self.id]["global"].put_role_policy(role, "AdministratorAccess", ADMIN_POLICY)


org_models.FakeAccount.__init__ = _fake_account_init


def _page(resp, items):
    # AWS behaviour restored: MaxItems (default 100) is honoured and further
    # pages are reached through IsTruncated + an opaque Marker.
    max_items = resp._get_int_param("MaxItems") or 100
    marker = resp._get_param("Marker")
    try:
        start = int(base64.b64decode(marker).decode().split(":")[1]) if marker else 0
    except Exception:
        raise IAMException("ValidationError", "Invalid Marker.") from None
    page, more = items[start:start + max_items], start + max_items < len(items)
    out = {"IsTruncated": more}
    if more:
        out["Marker"] = base64.b64encode(f"rekey:{start + max_items}".encode()).decode()
    return page, out


def _list_users(self):
    page, out = _page(self, list(self.backend.list_users(self._get_param("PathPrefix"), None, None)))
    return ActionResult({"Users": page, **out})


def _list_access_keys(self):
    user_name = self._get_param("UserName")
    if not user_name:
        user_name = self.backend.get_access_key_last_used(self.get_access_key())["user_name"]
    keys = [k for k in self.backend.list_access_keys(user_name) if not _hidden(k)]  # issue 9, new_key_delay
    page, out = _page(self, keys)
    return ActionResult({"UserName": user_name, "AccessKeyMetadata": page, **out})


IamResponse.list_users = _list_users
IamResponse.list_access_keys = _list_access_keys


# --- perf block (issue 9, item 12): GetAccountAuthorizationDetails paging ---
# AWS behaviour restored: GetAccountAuthorizationDetails honours MaxItems
# (default 100, at most 1,000) and returns the rest through IsTruncated +
# Marker, paging over users, then groups, roles and policies. moto answered
# everything in one page with IsTruncated false, so a client that ignored
# the Marker would pass here and miss users in AWS.
_DETAIL_LISTS = [("UserDetailList", "users"), ("GroupDetailList", "groups"),
                 ("RoleDetailList", "roles"), ("Policies", "managed_policies")]


def _get_account_authorization_details(self):
    details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
    entities = [(name, e) for name, key in _DETAIL_LISTS for e in details[key]]
    page, out = _page(self, entities)
    for name, _ in _DETAIL_LISTS:
        out[name] = [e for n, e in page if n == name]
    return ActionResult(out)


IamResponse.get_account_authorization_details = _get_account_authorization_details
# --- end of perf block ---


# Credential report. AWS behaviour restored: a <root_account> first row, real
# last-used region/service (N/A if never used), N/A password columns for users
# without a password, STARTED -> COMPLETE generation, ReportInProgress/NotPresent.
REPORT_HEADER = ("user,arn,user_creation_time,password_enabled,password_last_used,"
                 "password_last_changed,password_next_rotation,mfa_active,"
                 + ",".join(f"access_key_{i}_active,access_key_{i}_last_rotated,"
                            f"access_key_{i}_last_used_date,access_key_{i}_last_used_region,"
                            f"access_key_{i}_last_used_service" for i in (1, 2))
                 + ",cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated")


def _key_cols(keys):
    cols = []
    for i in range(2):
        k = keys[i] if i < len(keys) else None
        if k is None:
            cols += ["false", "N/A", "N/A", "N/A", "N/A"]
            continue
        used = k["last_used_date"]
        cols += ["true" if k["active"] else "false", iso(k["last_rotated"]),
                 iso(used) if used else "N/A",
                 (k.get("last_used_region") or "us-east-1") if used else "N/A",
                 (k.get("last_used_service") or "iam") if used else "N/A"]
    return cols


def _user_row(user):
    keys = []
    for k in (k for k in user.access_keys if not _hidden(k)):  # issue 9, new_key_delay
        lu = k.last_used
        if isinstance(lu, dt.datetime):
            lu = AccessKeyLastUsed(lu, "N/A", "N/A")
        keys.append({"active": k.status == "Active", "last_rotated": k.create_date,
                     "last_used_date": lu.timestamp if lu else None,
                     "last_used_region": lu and lu.region, "last_used_service": lu and lu.service})
    if user.password:
        pw = ["true", iso(user.password_last_used) if user.password_last_used
              else "no_information", iso(user.create_date), "N/A"]
    else:
        pw = ["false", "N/A", "N/A", "N/A"]
    certs = list(user.signing_certificates.values())
    cert_cols = []
    for i in range(2):
        cert_cols += ["true" if i < len(certs) and certs[i].status == "Active" else "false", "N/A"]
    return [user.name, user.arn, iso(user.create_date), *pw,
            "true" if user.mfa_devices else "false", *_key_cols(keys), *cert_cols]


def _root_row(account_id):
    r = ROOT.get(account_id, {})
    return ["<root_account>", f"arn:aws:iam::{account_id}:root", iso(STARTED_AT),
            "not_supported", "no_information", "not_supported", "not_supported",
            "true" if r.get("mfa_active") else "false", *_key_cols(r.get("keys", [])),
            "false", "N/A", "false", "N/A"]


def _generate_credential_report(self):
    acct = self.current_account
    frozen = REPORT_FROZEN.get(acct)  # issue 9, report_age: AWS keeps a report for 4 hours
    if frozen is not None and REPORT_STATE.get(acct) == "COMPLETE":
        if utcnow() - frozen["generated_at"] < REPORT_MAX_AGE:
            return ActionResult({"State": "COMPLETE"})
        REPORT_FROZEN[acct] = {"generated_at": utcnow(), "content": _render_report(acct)}
        REPORT_STATE[acct] = "STARTED"
        return ActionResult({"State": "STARTED"})
    if REPORT_STATE.get(acct) is None:
        REPORT_STATE[acct] = "STARTED"
        return ActionResult({"State": "STARTED", "Description":
                             "No report exists. Starting a new report generation task"})
    REPORT_STATE[acct] = "COMPLETE"
    return ActionResult({"State": "COMPLETE"})


def _get_credential_report(self):
    acct = self.current_account
    state = REPORT_STATE.get(acct)
    if state is None:  # HTTP 410 in AWS (from the service model)
        raise IAMException("ReportNotPresent", "Credential report not present")
    if state == "STARTED":  # HTTP 404 in AWS; the next Get succeeds
        REPORT_STATE[acct] = "COMPLETE"
        raise IAMException("ReportInProgress", "Credential report generation is in progress")
    frozen = REPORT_FROZEN.get(acct)
    if frozen is not None:
        return ActionResult({"Content": frozen["content"], "ReportFormat": "text/csv",
                             "GeneratedTime": frozen["generated_at"]})
    return ActionResult({"Content": _render_report(acct), "ReportFormat": "text/csv", "GeneratedTime": utcnow()})


IamResponse.generate_credential_report = _generate_credential_report
IamResponse.get_credential_report = _get_credential_report

_orig_summary_map = AccountSummary.summary_map.fget


def _summary_map(self):
    # AWS behaviour restored: AccountAccessKeysPresent / AccountMFAEnabled reflect the root user.
    m = _orig_summary_map(self)
    r = ROOT.get(self._iam_backend.account_id, {})
    m["AccountAccessKeysPresent"] = 1 if r.get("keys") else 0
    m["AccountMFAEnabled"] = 1 if r.get("mfa_active") else 0
    return m


AccountSummary.summary_map = property(_summary_map)


# ------------------------------------------- issue 9: as difficult as AWS
# MFA codes, MFA-conditioned policies, new-key propagation delay and a stale
# credential report. Control calls for these are in the Harness class, in the
# block marked "issue 9".
import hashlib, hmac, struct, time  # noqa: E402,E401

from moto.sts.exceptions import STSClientError  # noqa: E402

TOTP_STEP = 30           # RFC 6238: 30 s time step, 6 digits, HMAC-SHA1
MFA_LAST_STEP = {}       # serial -> last time step accepted (AWS rejects a reused code)
NEW_KEY_DELAY = {}       # account_id | None (every account) -> {"seconds", "hide", "reject"}
REPORT_FROZEN = {}       # account_id -> {"generated_at": naive UTC, "content": str}
REPORT_MAX_AGE = dt.timedelta(hours=4)
MFA_CONTEXT_KEYS = {"aws:MultiFactorAuthPresent"}


def totp(seed_b32, step):
    """The 6-digit RFC 6238 code of a Base32 seed for time step `step`."""
    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def _now_step():
    return int(time.time()) // TOTP_STEP


def _mfa_seed(serial):
    m = re.match(r"arn:aws[\w-]*:iam::(\d{12}):mfa/", serial or "")
    device = m and iam_backends[m.group(1)]["global"].virtual_mfa_devices.get(serial)
    return device.base32_string_seed if device else None


class _MfaDenied(Exception):
    """AccessDenied (403) of GetSessionToken, rendered like the auth errors."""


def _mfa_denied(why):
    return _MfaDenied(f"MultiFactorAuthentication failed {why}")


def _check_mfa_code(account_id, user, serial, code):
    """True for a valid MFA code, False when none was given; raises AccessDenied
    for a device the user has not enabled, a wrong code, or a reused one."""
    if not serial and not code:
        return False
    if not serial or not code:
        raise STSClientError("ValidationError", "SerialNumber and TokenCode must be given together")
    seed = _mfa_seed(serial)
    if seed is None or serial not in user.mfa_devices:
        raise _mfa_denied("with invalid MFA one time pass code. (no such device enabled for the user)")
    now = _now_step()
    for step in (now - 1, now, now + 1):  # the adjacent steps allow for clock drift
        if hmac.compare_digest(totp(seed, step), str(code)):
            if step <= MFA_LAST_STEP.get(serial, -1):
                raise _mfa_denied("with invalid MFA one time pass code. (code already used)")
            MFA_LAST_STEP[serial] = step
            return True
    raise _mfa_denied("with invalid MFA one time pass code.")


_orig_enable_mfa = iam_models.IAMBackend.enable_mfa_device


def _enable_mfa_device(self, user_name, serial_number, authentication_code_1, authentication_code_2):
    # AWS behaviour restored: a virtual device is enabled only with two
    # consecutive codes of its seed.
    seed = _mfa_seed(serial_number)
    if seed is not None:
        now = _now_step()
        if not any(totp(seed, n) == authentication_code_1 and totp(seed, n + 1) == authentication_code_2
                   for n in (now - 2, now - 1, now)):
            raise IAMException("InvalidAuthenticationCode", "Authentication code for device is not valid.")
    _orig_enable_mfa(self, user_name, serial_number, authentication_code_1, authentication_code_2)


iam_models.IAMBackend.enable_mfa_device = _enable_mfa_device


def _request_context(access_key):
    """Global condition keys of a request: aws:MultiFactorAuthPresent is absent
    for long-term keys and "true"/"false" for temporary credentials."""
    key = _session_key(access_key.account_id, access_key.partition, access_key._access_key_id) \
        if isinstance(access_key, _SessionUserAccessKey) else None
    if key is not None:
        return {"aws:MultiFactorAuthPresent": "true" if key.session_mfa else "false"}
    if isinstance(access_key, access_control.AssumedRoleAccessKey):
        return {"aws:MultiFactorAuthPresent": "false"}
    return {}


def _conditions_hold(statement, context):
    # Bool and BoolIfExists on the keys of _request_context are evaluated as
    # AWS does (a missing key fails Bool, satisfies BoolIfExists); every other
    # condition is ignored, as moto ignores it.
    for op, kv in (statement.get("Condition") or {}).items():
        base, if_exists = (op[:-len("IfExists")], True) if op.endswith("IfExists") else (op, False)
        for ckey, want in kv.items():
            if base != "Bool" or ckey not in MFA_CONTEXT_KEYS:
                continue
            have = context.get(ckey)
            if have is None:
                if if_exists:
                    continue
                return False
            if have not in [str(w).lower() for w in (want if isinstance(want, list) else [want])]:
                return False
    return True


def _check_action_permitted(self, resource):
    # AWS behaviour restored: MFA conditions in identity policies are
    # evaluated (moto ignored them, and turned any failed condition of an
    # Allow statement into an explicit Deny); credentials of a
    # GetSessionToken made without MFA cannot call IAM at all.
    if self._action == "sts:GetCallerIdentity":  # AWS: always allowed
        return
    context = _request_context(self._access_key)
    if self._action.startswith("iam:") and context.get("aws:MultiFactorAuthPresent") == "false" \
            and isinstance(self._access_key, _SessionUserAccessKey):
        self._raise_access_denied()
    permitted = False
    for policy in self._access_key.collect_policies():
        doc = access_control.IAMPolicy(policy)._policy_json
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for st in statements:
            if not _conditions_hold(st, context):
                continue
            bare = {k: v for k, v in st.items() if k != "Condition"}
            result = access_control.IAMPolicyStatement(bare).is_action_permitted(self._action, resource)
            if result == access_control.PermissionResult.DENIED:
                self._raise_access_denied()
            permitted = permitted or result == access_control.PermissionResult.PERMITTED
    if self._is_assuming_role_operation(resource):
        permitted = permitted and self._check_role_trust_relationship(resource)
    if not permitted:
        self._raise_access_denied()


access_control.IAMRequestBase.check_action_permitted = _check_action_permitted


# New keys take seconds to work and to show up (IAM is eventually consistent).
_orig_backend_create_key = iam_models.IAMBackend.create_access_key


def _create_access_key_delayed(self, user_name, prefix="AKIA", status="Active"):
    key = _orig_backend_create_key(self, user_name, prefix=prefix, status=status)
    if self.account_id in CLOCK:  # /_rekey/clock
        key.create_date = CLOCK[self.account_id]
    delay = NEW_KEY_DELAY.get(self.account_id) or NEW_KEY_DELAY.get(None)
    if delay:
        until = time.time() + delay["seconds"]
        key.rekey_hidden_until = until if delay["hide"] else 0
        key.rekey_rejected_until = until if delay["reject"] else 0
    return key


iam_models.IAMBackend.create_access_key = _create_access_key_delayed


def _hidden(key):
    return getattr(key, "rekey_hidden_until", 0) > time.time()


def _rejected(key):
    return getattr(key, "rekey_rejected_until", 0) > time.time()


def _render_report(account_id):
    backend = iam_backends[account_id]["global"]
    rows = [_root_row(account_id)] + [_user_row(u) for u in backend.users.values()]
    return REPORT_HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows)
# ------------------------------------------- end of issue 9 block


# ------------------------------------------- issue 6: Security Hub as strict as AWS
# rekey --to-security-hub imports ASFF findings with BatchImportFindings and
# reads its earlier ones back with GetFindings. moto 5.2.1 accepts and returns
# more than AWS does, in ways that would hide exactly the bugs to catch:
# - AWS: both calls fail with InvalidAccessException ("Account X is not
#   subscribed to AWS Security Hub") until EnableSecurityHub. moto accepted.
# - AWS: under a default product ARN
#   (arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default) only that
#   ACCOUNT may import, and only findings whose AwsAccountId is ACCOUNT; any
#   other call fails whole with AccessDeniedException ("... is not authorized
#   to perform: securityhub:BatchImportFindings on resource: <product ARN>").
#   This is why rekey imports from each member account's own role. moto
#   stored anything.
# - AWS: a finding without a required ASFF attribute (AwsAccountId, CreatedAt,
#   Description, GeneratorId, Id, ProductArn, Resources[Type, Id],
#   SchemaVersion 2018-10-08, Severity, Title, Types, UpdatedAt) comes back in
#   FailedFindings (InvalidInput) and is not stored. moto stored it.
# - AWS: GetFindings honours Filters; moto returned every finding. Patched for
#   the string filters (EQUALS, NOT_EQUALS, PREFIX, PREFIX_NOT_EQUALS): values
#   of one attribute OR'ed for EQUALS/PREFIX, AND'ed for the negations,
#   attributes AND'ed. Another filter fails loudly rather than being ignored.
# - AWS: a new finding gets Workflow.Status NEW and RecordState ACTIVE unless
#   given; on an existing finding, BatchImportFindings cannot change Note,
#   UserDefinedFields, VerificationState or Workflow (customers' fields, set
#   with BatchUpdateFindings). moto overwrote them.
from moto.securityhub import models as sh_models  # noqa: E402
from moto.securityhub.exceptions import InvalidInputException, SecurityHubClientError  # noqa: E402
from moto.utilities.paginator import paginate  # noqa: E402

ASFF_REQUIRED = ("AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn",
                 "Resources", "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt")
CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow", "WorkflowState")
# GetFindings filter name -> path into the finding.
FINDING_FILTERS = {"Id": ("Id",), "ProductArn": ("ProductArn",), "GeneratorId": ("GeneratorId",),
                   "AwsAccountId": ("AwsAccountId",), "Title": ("Title",),
                   "RecordState": ("RecordState",), "ComplianceStatus": ("Compliance", "Status"),
                   "SeverityLabel": ("Severity", "Label"), "WorkflowStatus": ("Workflow", "Status")}


def _require_hub(backend):
    if not backend.enabled:
        raise SecurityHubClientError("InvalidAccessException",
                                     f"Account {backend.account_id} is not subscribed to AWS Security Hub")


def _default_product(backend):
    return f"arn:aws:securityhub:{backend.region_name}:{backend.account_id}:product/{backend.account_id}/default"


def _asff_problem(f):
    missing = [k for k in ASFF_REQUIRED if f.get(k) in (None, "", [])]
    if missing:
        return f"Finding is missing required attribute(s): {', '.join(missing)}"
    if f["SchemaVersion"] != "2018-10-08":
        return f"Unsupported SchemaVersion {f['SchemaVersion']}"
    if any(not r.get("Type") or not r.get("Id") for r in f["Resources"]):
        return "Every resource needs Type and Id"
    return None


def _batch_import_findings(self, findings):
    _require_hub(self)
    product = _default_product(self)
    for f in findings:
        arn = f.get("ProductArn", "")
        is_default = arn.endswith("/default") and ":product/" in arn
        if is_default and (arn != product or f.get("AwsAccountId") != self.account_id):
            raise SecurityHubClientError(
                "AccessDeniedException",
                f"User: arn:aws:iam::{self.account_id}:caller is not authorized to perform: "
                f"securityhub:BatchImportFindings on resource: {arn}")
    failed = []
    for f in findings:
        problem = _asff_problem(f)
        if problem:
            failed.append({"Id": f.get("Id", ""), "ErrorCode": "InvalidInput", "ErrorMessage": problem})
            continue
        existing = next((x for x in self.findings if x.id == f["Id"]), None)
        if existing:
            kept = {k: existing.data[k] for k in CUSTOMER_FIELDS if k in existing.data}
            existing.data.update({k: v for k, v in f.items() if k not in CUSTOMER_FIELDS})
            existing.data.update(kept)
        else:
            data = dict(f)
            data.setdefault("RecordState", "ACTIVE")
            data["Workflow"] = {"Status": "NEW"}
            data["WorkflowState"] = "NEW"
            for k in ("Note", "UserDefinedFields", "VerificationState"):
                data.pop(k, None)
            self.findings.append(sh_models.Finding(f["Id"], data))
    return len(failed), len(findings) - len(failed), failed


def _value_at(finding, path):
    for k in path:
        finding = finding.get(k) if isinstance(finding, dict) else None
    return finding


def _string_match(value, cond):
    want, how = cond.get("Value", ""), cond.get("Comparison", "EQUALS")
    value = "" if value is None else str(value)
    return {"EQUALS": value == want, "NOT_EQUALS": value != want,
            "PREFIX": value.startswith(want), "PREFIX_NOT_EQUALS": not value.startswith(want)}[how]


def _matches(finding, filters):
    for name, conds in (filters or {}).items():
        if name not in FINDING_FILTERS or any(c.get("Comparison", "EQUALS") not in
                                              ("EQUALS", "NOT_EQUALS", "PREFIX", "PREFIX_NOT_EQUALS")
                                              for c in conds):
            raise InvalidInputException(op="GetFindings",
                                        msg=f"filter {name} {conds} is not emulated by moto_harness")
        value = _value_at(finding, FINDING_FILTERS[name])
        positive = [c for c in conds if c.get("Comparison", "EQUALS") in ("EQUALS", "PREFIX")]
        negative = [c for c in conds if c not in positive]
        if positive and not any(_string_match(value, c) for c in positive):
            return False
        if not all(_string_match(value, c) for c in negative):
            return False
    return True


@paginate(pagination_model=sh_models.SecurityHubBackend.PAGINATION_MODEL)
def get_findings(self, filters=None, sort_criteria=None, max_results=None):
    _require_hub(self)
    if max_results is not None and not 1 <= int(max_results) <= 100:
        raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
    return [f.as_dict() for f in self.findings if _matches(f.data, filters)]


sh_models.SecurityHubBackend.batch_import_findings = _batch_import_findings
sh_models.SecurityHubBackend.get_findings = get_findings
# ------------------------------------------- end of issue 6 block


# ------------------------------------------- notifications: SES v2, SNS
from moto.core.responses import _get_method_urls  # noqa: E402
from moto.ses.models import ses_backends  # noqa: E402
from moto.sesv2.responses import SESV2Response  # noqa: E402


def _rest_operation(service, method, path):
    """The operation of a REST-JSON request, found as moto finds it: the
    longest URI pattern of the service's model that matches."""
    patterns = _get_method_urls(service, "us-east-1").get(method, {})
    for regexp, name in sorted(patterns.items(), key=lambda x: len(x[0]), reverse=True):
        if re.match(regexp, path):
            return name
    return "unknown"


_orig_sesv2_send_email = SESV2Response.send_email


def _sesv2_send_email(self):
    # moto keeps one body per mail, the Html part when both were sent; a
    # test of a notification reads both parts (/_rekey/ses_sent).
    out = _orig_sesv2_send_email(self)
    simple = (json.loads(self.body).get("Content") or {}).get("Simple")
    if simple is not None:
        message_id = json.loads(out)["MessageId"]
        sent = ses_backends[self.current_account][self.region].sent_messages
        message = next(m for m in reversed(sent) if getattr(m, "id", None) == message_id)
        body = simple.get("Body") or {}
        message.rekey_parts = {part: (body.get(key) or {}).get("Data")
                               for part, key in (("text", "Text"), ("html", "Html"))}
    return out


SESV2Response.send_email = _sesv2_send_email


def ses_sent(account_id=None, region="us-east-1"):
    """Mails sent through SES v2 SendEmail (Simple content), oldest first."""
    accounts = [account_id] if account_id else list(dict.keys(ses_backends))
    out = []
    for acct in accounts:
        backend = dict.get(dict.get(ses_backends, acct) or {}, region)
        for m in getattr(backend, "sent_messages", []):
            parts = getattr(m, "rekey_parts", None)
            if parts is None:
                continue
            d = m.destinations or {}
            out.append({"account_id": acct, "message_id": m.id, "source": m.source,
                        "destinations": [a for k in ("ToAddresses", "CcAddresses", "BccAddresses")
                                         for a in d.get(k, [])],
                        "subject": m.subject, **parts})
    return out
# ------------------------------------------- end of notifications block


# ------------------------------------------- issue 20: AWS Config PutEvaluations
from moto.config import exceptions as config_exc  # noqa: E402
from moto.config.models import ConfigBackend  # noqa: E402

CONFIG_EVALUATIONS = {}   # account_id -> [call]; /_rekey/config_evaluations
CONFIG_REFUSE = {}        # account_id -> {resource_id}; /_rekey/config_refuse
CONFIG_LOCK = threading.Lock()
MOTO_LOCK = threading.Lock()  # Harness._moto
CONFIG_TYPES = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE")


def _config_time(value):
    """An OrderingTimestamp as sent (epoch seconds, as the SDKs send
    awsJson timestamps, or ISO 8601), as ISO 8601 UTC with milliseconds."""
    if isinstance(value, (int, float)):
        at = dt.datetime.fromtimestamp(value, dt.timezone.utc)
    else:
        at = parse_iso(str(value)).replace(tzinfo=dt.timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _check_evaluation(i, e):
    where = f"evaluations.{i + 1}.member"
    for field, most in (("ComplianceResourceType", 256), ("ComplianceResourceId", 768)):
        v = e.get(field)
        if not isinstance(v, str) or not 1 <= len(v) <= most:
            raise config_exc.ValidationException(
                f"1 validation error detected: Value {v!r} at '{where}.{field[0].lower() + field[1:]}' "
                f"failed to satisfy constraint: Member must have length between 1 and {most}")
    if e.get("ComplianceType") not in CONFIG_TYPES:
        raise config_exc.InvalidParameterValueException(
            f"The ComplianceType {e.get('ComplianceType')!r} is not valid: PutEvaluations takes "
            "COMPLIANT, NON_COMPLIANT or NOT_APPLICABLE.")
    note = e.get("Annotation")
    if note is not None and not 1 <= len(note) <= 256:
        raise config_exc.ValidationException(
            f"1 validation error detected: Value at '{where}.annotation' failed to satisfy "
            "constraint: Member must have length between 1 and 256")
    if e.get("OrderingTimestamp") is None:
        raise config_exc.ValidationException(
            f"1 validation error detected: Value null at '{where}.orderingTimestamp' failed to "
            "satisfy constraint: Member must not be null")


def _put_evaluations(self, evaluations=None, result_token=None, test_mode=False):
    # moto raised NotImplementedError unless TestMode was set and kept
    # nothing; a rule's test must read back what it put, and be refused
    # what AWS refuses (over 100 a call, annotations over 256 characters).
    evaluations = evaluations or []
    if len(evaluations) > 100:
        raise config_exc.ValidationException(
            "1 validation error detected: Value at 'evaluations' failed to satisfy constraint: "
            "Member must have length less than or equal to 100")
    if not result_token:
        raise config_exc.InvalidResultTokenException()
    for i, e in enumerate(evaluations):
        _check_evaluation(i, e)
    with CONFIG_LOCK:
        refuse = CONFIG_REFUSE.get(self.account_id, set())
        failed = [e for e in evaluations if e["ComplianceResourceId"] in refuse]
        CONFIG_EVALUATIONS.setdefault(self.account_id, []).append({
            "account_id": self.account_id, "region": self.region_name, "result_token": result_token,
            "test_mode": bool(test_mode),
            "evaluations": [{**{k: e.get(k) for k in ("ComplianceResourceType", "ComplianceResourceId",
                                                       "ComplianceType", "Annotation")},
                             "OrderingTimestamp": _config_time(e["OrderingTimestamp"])}
                            for e in evaluations if e not in failed],
            "failed": [e["ComplianceResourceId"] for e in failed]})
    return {"FailedEvaluations": failed}


ConfigBackend.put_evaluations = _put_evaluations


def config_evaluations(account_id=None):
    with CONFIG_LOCK:
        accounts = [account_id] if account_id else sorted(CONFIG_EVALUATIONS)
        return json.loads(json.dumps([c for a in accounts for c in CONFIG_EVALUATIONS.get(a, [])]))
# ------------------------------------------- end of issue 20 Config block


# ------------------------------------------------------------------- harness
class Harness:
    """WSGI middleware: control API under /_rekey/, counting and faults, then moto."""

    def __init__(self, app):
        self.app = app
        self.port = None
        self.lock = threading.RLock()       # serialises control calls
        self.stats_lock = threading.Lock()  # counters and faults
        self.admin = None
        self.faults = []
        self.calls = {"total": 0, "by_action": {}, "by_account": {}}
        self.session = None

    # --- WSGI entry
    def __call__(self, environ, start_response):
        body = self._read_body(environ)
        CURRENT.raw_body = body
        if environ.get("PATH_INFO", "").startswith("/_rekey/"):
            return self._control(environ, body, start_response)
        if environ.get("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")):
            return self._moto(environ, start_response)
        req = self._classify(environ, body)
        with self.stats_lock:
            c = self.calls
            c["total"] += 1
            c["by_action"][req["action"]] = c["by_action"].get(req["action"], 0) + 1
            if req["account"]:
                c["by_account"][req["account"]] = c["by_account"].get(req["account"], 0) + 1
            fault = self._take_fault(req)
        if fault is None:
            return self._moto(environ, start_response)
        if fault.get("after_success"):
            out = self._moto(environ, lambda *a, **k: (lambda data: None))
            for _ in out:
                pass  # let moto perform the side effect, drop its answer
            getattr(out, "close", lambda: None)()
        status, headers, text = aws_error(req["service"], req["protocol"], fault.get("code", "ServiceFailure"),
                                          fault.get("message") or "injected by moto_harness",
                                          int(fault.get("status", 500)))
        return self._respond(start_response, status, text, headers)

    def _moto(self, environ, start_response):
        # One request at a time inside moto: its backends are plain dicts and
        # lists changed by whichever request thread gets there, so two
        # requests at once can interleave inside one (a lost update, a
        # "dictionary changed size during iteration" 500). AWS keeps its own
        # state consistent; so must the emulator. Python's GIL ran the
        # threads one bytecode at a time already, so little speed is lost.
        with MOTO_LOCK:
            out = self.app(environ, start_response)
            try:
                body = b"".join(out)
            finally:
                getattr(out, "close", lambda: None)()
        return [body]

    @staticmethod
    def _read_body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        body = stream.read(length) if length else (
            stream.read() if environ.get("wsgi.input_terminated") else b"")
        environ["wsgi.input"] = BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return body

    @staticmethod
    def _classify(environ, body):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        m = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", auth)
        key, service = (m.group(1), m.group(3)) if m else (None, "unknown")
        target = environ.get("HTTP_X_AMZ_TARGET")
        params = parse_qs(environ.get("QUERY_STRING", ""))
        path = environ.get("PATH_INFO", "")
        rest = next((name for name, (signing, prefix) in REST_JSON.items()
                     if service == signing and path.startswith(prefix)), None)
        protocol = "json" if target else "rest-json" if rest else "query"
        if target:
            action = target.split(".")[-1]
            try:
                params = {k: [v] for k, v in json.loads(body or b"{}").items() if isinstance(v, str)}
            except (ValueError, AttributeError):
                pass
        elif rest:
            action = _rest_operation(rest, environ.get("REQUEST_METHOD", "GET"), path)
        else:
            if b"=" in body:
                params.update(parse_qs(body.decode("utf-8", "replace")))
            action = (params.get("Action") or ["unknown"])[0]
        account = iam_models.get_account_id_from(key) if key else None
        if account == DEFAULT_ACCOUNT and key not in iam_backends[DEFAULT_ACCOUNT]["global"].access_keys:
            account = None  # unknown key (moto would fall back to the default account)
        return {"service": service, "action": f"{service}:{action}", "protocol": protocol,
                "account": account, "user_name": (params.get("UserName") or [None])[0]}

    def _take_fault(self, req):
        for f in self.faults:
            if (f["action"] == req["action"]
                    and f.get("user_name") in (None, req["user_name"])
                    and f.get("account_id") in (None, req["account"])):
                f["remaining"] -= 1
                if f["remaining"] <= 0:
                    self.faults.remove(f)
                return f
        return None

    @staticmethod
    def _respond(start_response, status, text, headers):
        data = text.encode() if isinstance(text, str) else text
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        start_response(f"{status} {reason}", list(headers.items()) + [("Content-Length", str(len(data)))])
        return [data]

    # --- control API
    def _control(self, environ, body, start_response):
        name = environ["PATH_INFO"][len("/_rekey/"):].strip("/")
        handler = getattr(self, "c_" + name, None)
        try:
            if handler is None:
                raise ValueError(f"unknown control call {name!r}")
            req = json.loads(body or b"{}")
            with self.lock:
                status, out = 200, handler(req)
        except (ValueError, KeyError, TypeError) as e:
            status, out = 400, {"error": f"{type(e).__name__}: {e}"}
        except Exception as e:  # noqa: BLE001 - report everything to the caller
            status, out = 500, {"error": f"{type(e).__name__}: {e}"}
        return self._respond(start_response, status, json.dumps(out, default=str),
                             {"Content-Type": "application/json"})

    def _client(self, service, key_id, secret, token=None):
        import boto3
        from botocore.config import Config
        if self.session is None:
            self.session = boto3.session.Session()
        c = self.session.client(service, endpoint_url=f"http://127.0.0.1:{self.port}",
                                region_name="us-east-1", aws_access_key_id=key_id,
                                aws_secret_access_key=secret, aws_session_token=token,
                                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        c.meta.events.register("before-sign", lambda request, **kw: request.headers.__setitem__(
            INTERNAL_HEADER, "1"))
        return c

    def _admin_client(self, service):
        return self._client(service, self.admin["access_key_id"], self.admin["secret_access_key"])

    def _make_admin_user(self, iam, user_name):
        iam.create_user(UserName=user_name)
        iam.put_user_policy(UserName=user_name, PolicyName="AdministratorAccess", PolicyDocument=ADMIN_POLICY)
        k = iam.create_access_key(UserName=user_name)["AccessKey"]
        return {"access_key_id": k["AccessKeyId"], "secret_access_key": k["SecretAccessKey"]}

    def _assume(self, client_factory, account_id):
        creds = client_factory("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
            RoleSessionName="rekey-harness")["Credentials"]
        return lambda svc: self._client(svc, creds["AccessKeyId"], creds["SecretAccessKey"],
                                        creds["SessionToken"])

    def c_bootstrap(self, _req):
        if self.admin is None:
            # Auth is not enforced yet, so any fake key works here.
            org = self._client("organizations", "AKIAHARNESSBOOTSTRAP", "fake")
            try:
                org.create_organization(FeatureSet="ALL")
            except org.exceptions.AlreadyInOrganizationException:
                pass
            creds = self._make_admin_user(self._client("iam", "AKIAHARNESSBOOTSTRAP", "fake"),
                                          "harness-admin")
            self.admin = {"account_id": DEFAULT_ACCOUNT, **creds}
            # From now on every request is authenticated and authorised
            # (request_count >= 0 always holds).
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        return dict(self.admin)

    def _new_member(self, name):
        self.c_bootstrap({})
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        st = self._admin_client("organizations").create_account(AccountName=name, Email=email)
        return st["CreateAccountStatus"]["AccountId"]

    def c_new_account(self, _req):
        acct = self._new_member(f"account-{uuid.uuid4().hex[:6]}")
        role = self._assume(self._admin_client, acct)
        return {"account_id": acct, **self._make_admin_user(role("iam"), "account-admin")}

    def c_new_org(self, req):
        n = int(req.get("members", 0))
        names = list(req.get("member_names") or [])
        names += [f"member-{i + 1}" for i in range(len(names), n)]
        mgmt = self._new_member(f"org-mgmt-{uuid.uuid4().hex[:6]}")
        role = self._assume(self._admin_client, mgmt)
        # moto keeps a member in master_accounts; leave the bootstrap org first
        # (AWS allows this) so the account may create its own organization.
        self._admin_client("organizations").remove_account_from_organization(AccountId=mgmt)
        creds = self._make_admin_user(role("iam"), "org-admin")
        org = role("organizations")
        org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
        members = []
        for name in names:
            st = org.create_account(AccountName=name, Email=f"{name}-{uuid.uuid4().hex[:8]}@example.com")
            members.append({"account_id": st["CreateAccountStatus"]["AccountId"], "name": name})
        return {"management_account_id": mgmt, "organization_id": org_id, **creds, "members": members}

    def c_key_dates(self, req):
        backend = iam_backends[req["account_id"]]["global"]
        key = (backend.get_user(req["user_name"]).get_access_key_by_id(req["access_key_id"])
               if req.get("user_name") else backend.access_keys[req["access_key_id"]])
        if req.get("create_date"):
            key.create_date = parse_iso(req["create_date"])
        used = parse_iso(req.get("last_used_date"))
        key.last_used = used and AccessKeyLastUsed(
            timestamp=used, service=req.get("last_used_service") or "iam",
            region=req.get("last_used_region") or "us-east-1")
        return {"ok": True}

    def c_clock(self, req):
        now = parse_iso(req.get("now"))
        if now is None:
            CLOCK.pop(req["account_id"], None)
        else:
            CLOCK[req["account_id"]] = now
        return {"ok": True}

    def c_root_keys(self, req):
        keys = []
        for k in req.get("keys", []):
            keys.append({"active": bool(k.get("active", True)),
                         "last_rotated": parse_iso(k.get("last_rotated")) or STARTED_AT,
                         "last_used_date": parse_iso(k.get("last_used_date")),
                         "last_used_region": k.get("last_used_region"),
                         "last_used_service": k.get("last_used_service")})
        if len(keys) > 2:
            raise ValueError("the root user has at most 2 access keys")
        ROOT[req["account_id"]] = {"keys": keys, "mfa_active": bool(req.get("mfa_active"))}
        return {"ok": True}

    def c_calls(self, _req):
        with self.stats_lock:
            return json.loads(json.dumps(self.calls))

    def c_denied(self, req):
        # The AccessDenied answers whose message names account_id (the
        # caller's ARN holds it): why a call failed where rekey only logs it
        # (a Lambda worker's message that comes back).
        needle = f"::{req['account_id']}:"
        with DENIED_LOCK:
            return {"denied": [m for m in DENIED if needle in m]}

    def c_calls_reset(self, _req):
        with self.stats_lock:
            self.calls = {"total": 0, "by_action": {}, "by_account": {}}
        return {"ok": True}

    def c_fail(self, req):
        if ":" not in req["action"]:
            raise ValueError("action must look like 'iam:CreateAccessKey'")
        with self.stats_lock:
            self.faults.append({**req, "remaining": int(req.get("count", 1))})
        return {"ok": True}

    def c_fail_clear(self, _req):
        with self.stats_lock:
            self.faults.clear()
        return {"ok": True}


    # --- issue 9: MFA devices and codes, new-key delay, stale credential report
    def c_mfa_device(self, req):
        backend = iam_backends[req["account_id"]]["global"]
        device = backend.create_virtual_mfa_device(req.get("device_name") or req["user_name"], "/")
        now = _now_step()
        backend.enable_mfa_device(req["user_name"], device.serial_number,
                                  totp(device.base32_string_seed, now), totp(device.base32_string_seed, now + 1))
        return {"serial_number": device.serial_number, "seed": device.base32_string_seed}

    def c_mfa_code(self, req):
        seed = _mfa_seed(req["serial_number"])
        if seed is None:
            raise ValueError(f"no virtual MFA device {req['serial_number']!r}")
        return {"code": totp(seed, _now_step() + int(req.get("steps", 0)))}

    def c_new_key_delay(self, req):
        seconds = float(req["seconds"])
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        acct = req.get("account_id")
        if seconds == 0:
            NEW_KEY_DELAY.pop(acct, None)
        else:
            NEW_KEY_DELAY[acct] = {"seconds": seconds, "hide": bool(req.get("hide", True)),
                                   "reject": bool(req.get("reject", True))}
        return {"ok": True}

    def c_report_age(self, req):
        acct = req["account_id"]
        if req.get("generated_at") is None:
            REPORT_FROZEN.pop(acct, None)
        else:
            REPORT_FROZEN[acct] = {"generated_at": parse_iso(req["generated_at"]), "content": _render_report(acct)}
            REPORT_STATE[acct] = "COMPLETE"
        return {"ok": True}
    # --- end of issue 9 block

    # --- issue 7: a secret rotated by another Lambda
    def c_secret_rotation(self, req):
        # Not through RotateSecret: moto's invokes the Lambda at once (it
        # needs Docker, absent here) and, lacking one, rotates the secret
        # itself, adding a version. AWS shows rotation as configured without
        # either, so the backend's secret object is marked directly.
        from moto.secretsmanager.models import secretsmanager_backends
        backend = secretsmanager_backends[req["account_id"]][req.get("region") or "us-east-1"]
        if req["secret_id"] not in backend.secrets:
            raise ValueError(f"no secret {req['secret_id']!r} in account {req['account_id']}")
        secret = backend.secrets[req["secret_id"]]
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.rotation_lambda_arn = req["lambda_arn"]
        secret.auto_rotate_after_days = int(req.get("days", 30))
        return {"ok": True}

    def c_secret_pending(self, req):
        # moto's RotateSecret invokes the Lambda (it needs Docker) or,
        # without one, makes the new version current at once; the rotation
        # function's tests need the state AWS leaves before createSecret.
        import time as _time
        from moto.secretsmanager.models import secretsmanager_backends
        backend = secretsmanager_backends[req["account_id"]][req.get("region") or "us-east-1"]
        secret = backend.secrets[req["secret_id"]]
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        version = {"createdate": int(_time.time()), "version_id": req["token"],
                   "version_stages": ["AWSPENDING"]}
        if req.get("copy"):
            version["secret_string"] = secret.secret_string
        secret.versions[req["token"]] = version
        return self.c_secret_rotation(req)
    # --- end of issue 7 block

    # --- notifications: what SES sent
    def c_ses_sent(self, req):
        return {"messages": ses_sent(req.get("account_id"), req.get("region") or "us-east-1")}

    # --- issue 20: what AWS Config was given
    def c_config_evaluations(self, req):
        return {"calls": config_evaluations(req.get("account_id"))}

    def c_config_refuse(self, req):
        with CONFIG_LOCK:
            CONFIG_REFUSE[req["account_id"]] = set(req.get("resource_ids") or [])
        return {"ok": True}


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def serve(port, verbose=False, watch_stdin=True):
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")  # until /_rekey/bootstrap
    harness = Harness(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, harness, threaded=True,
                         request_handler=WSGIRequestHandler if verbose else QuietHandler)
    harness.port = server.server_port
    if watch_stdin and sys.stdin is not None:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):  # exit at once, even with busy daemon threads
        signal.signal(sig, lambda *_: os._exit(0))
    print(f"READY {harness.port}", flush=True)
    server.serve_forever()


# ------------------------------------------------------------------ self-test
def self_test(script):
    import subprocess, tempfile, time, urllib.request
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    proc = subprocess.Popen([sys.executable, script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    ep = f"http://127.0.0.1:{int(line.split()[1])}"
    res = {"passed": 0, "failed": 0}
    session = boto3.session.Session()

    def check(name, cond, detail=""):
        res["passed" if cond else "failed"] += 1
        print(f"{'ok  ' if cond else 'FAIL'} {name}" + ("" if cond else f"  -- {detail}"), flush=True)

    def ctl(path, body=None):
        r = urllib.request.Request(f"{ep}/_rekey/{path}", json.dumps(body or {}).encode(), method="POST")
        return json.loads(urllib.request.urlopen(r).read())

    def cl(svc, c, token=None):
        key = c.get("access_key_id") or c.get("AccessKeyId")
        sec = c.get("secret_access_key") or c.get("SecretAccessKey")
        client = session.client(svc, endpoint_url=ep, region_name="us-east-1", aws_access_key_id=key,
                                aws_secret_access_key=sec, aws_session_token=token or c.get("SessionToken"),
                                config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        client.raw = {}
        client.meta.events.register("before-parse", lambda response_dict, **kw: client.raw.update(response_dict))
        return client

    def err(client, op, **kw):
        try:
            getattr(client, op)(**kw)
            return None, None, ""
        except ClientError as e:
            body = client.raw.get("body", b"")
            return e.response["Error"].get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"], \
                body.decode() if isinstance(body, bytes) else body

    try:
        check("READY line", line.startswith("READY "), line)
        admin = ctl("bootstrap")
        check("bootstrap idempotent", ctl("bootstrap") == admin and admin["account_id"] == DEFAULT_ACCOUNT)
        iam, sts, org = cl("iam", admin), cl("sts", admin), cl("organizations", admin)
        check("admin works", sts.get_caller_identity()["Arn"].endswith(":user/harness-admin"))

        # 1. auth error shapes
        bogus = {"access_key_id": "AKIAIOSFODNN7BOGUS00", "secret_access_key": "x"}
        code, status, body = err(cl("sts", bogus), "get_caller_identity")
        check("sts bogus key -> InvalidClientTokenId", code == "InvalidClientTokenId" and status == 403
              and re.match(r'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>'
                           r"Sender</Type><Code>InvalidClientTokenId</Code>", body), (code, status, body))
        code, _, _ = err(cl("sts", {**admin, "secret_access_key": "wrong"}), "get_caller_identity")
        check("bad secret -> SignatureDoesNotMatch", code == "SignatureDoesNotMatch", code)
        acct = ctl("new_account")
        a_iam = cl("iam", acct)
        a_iam.create_user(UserName="nopol")
        nopol = a_iam.create_access_key(UserName="nopol")["AccessKey"]
        code, status, body = err(cl("iam", nopol), "list_users")
        check("no policy -> iam AccessDenied (<ErrorResponse><Error>)", code == "AccessDenied" and status == 403
              and "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>" in body, (code, body))
        o_np = cl("organizations", nopol)
        code, status, body = err(o_np, "list_accounts")
        check("no policy -> organizations AccessDeniedException (JSON)", code == "AccessDeniedException"
              and json.loads(body).get("__type") == "AccessDeniedException"
              and o_np.raw["headers"].get("x-amzn-ErrorType") == code, (code, body))
        code, _, body = err(cl("organizations", bogus), "list_accounts")
        check("organizations bogus key -> UnrecognizedClientException", code == "UnrecognizedClientException", body)

        # A form body that encodes a space as %20 (the Rust SDK does; botocore
        # sends "+") is checked over the bytes sent, as AWS does.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials
        iam.create_user(UserName="spaced-tag")
        form = ("Action=TagUser&Version=2010-05-08&UserName=spaced-tag&Tags.member.1.Key=k"
                "&Tags.member.1.Value=secretsmanager%3Aa%20ssm%3A%2Fb").encode()
        signed = AWSRequest(method="POST", url=ep + "/", data=form, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(BotoCredentials(admin["access_key_id"], admin["secret_access_key"]),
                  "iam", "us-east-1").add_auth(signed)
        try:
            status = urllib.request.urlopen(urllib.request.Request(
                ep + "/", data=form, headers=dict(signed.headers), method="POST")).status
        except urllib.error.HTTPError as e:
            status = (e.code, e.read()[:200])
        tags = iam.list_user_tags(UserName="spaced-tag")["Tags"]
        check("a %20 in a signed form body is accepted (tag value with a space)",
              status == 200 and tags == [{"Key": "k", "Value": "secretsmanager:a ssm:/b"}], (status, tags))

        # 2. inactive keys
        a_iam.put_user_policy(UserName="nopol", PolicyName="p", PolicyDocument=ADMIN_POLICY)
        check("active key works", cl("sts", nopol).get_caller_identity()["UserId"] is not None)
        a_iam.update_access_key(UserName="nopol", AccessKeyId=nopol["AccessKeyId"], Status="Inactive")
        code, _, _ = err(cl("iam", nopol), "list_users")
        check("inactive key -> InvalidClientTokenId", code == "InvalidClientTokenId", code)
        a_iam.update_access_key(UserName="nopol", AccessKeyId=nopol["AccessKeyId"], Status="Active")
        check("reactivated key works", "Users" in cl("iam", nopol).list_users())

        # 3. pagination
        for i in range(4):
            a_iam.create_user(UserName=f"pg-{i}")
        first = a_iam.list_users(MaxItems=2)
        names = [u["UserName"] for p in a_iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 2})
                 for u in p["Users"]]
        check("ListUsers MaxItems/IsTruncated/Marker", len(first["Users"]) == 2 and first["IsTruncated"]
              and "Marker" in first and len(names) == 6 and len(set(names)) == 6, names)
        k2 = a_iam.create_access_key(UserName="nopol")["AccessKey"]
        p1 = a_iam.list_access_keys(UserName="nopol", MaxItems=1)
        p2 = a_iam.list_access_keys(UserName="nopol", MaxItems=1, Marker=p1["Marker"])
        check("ListAccessKeys MaxItems", p1["IsTruncated"] and not p2["IsTruncated"] and
              {p1["AccessKeyMetadata"][0]["AccessKeyId"], p2["AccessKeyMetadata"][0]["AccessKeyId"]}
              == {nopol["AccessKeyId"], k2["AccessKeyId"]})

        # 4+5. back-dating, credential report, root row, account summary
        a = acct["account_id"]
        ctl("key_dates", {"account_id": a, "user_name": "nopol", "access_key_id": k2["AccessKeyId"],
                          "create_date": "2020-01-02T03:04:05Z", "last_used_date": "2021-02-03T04:05:06Z",
                          "last_used_service": "s3", "last_used_region": "eu-west-1"})
        meta = {m["AccessKeyId"]: m for m in a_iam.list_access_keys(UserName="nopol")["AccessKeyMetadata"]}
        check("ListAccessKeys CreateDate back-dated",
              meta[k2["AccessKeyId"]]["CreateDate"].isoformat().startswith("2020-01-02T03:04:05"), meta)
        lu = a_iam.get_access_key_last_used(AccessKeyId=k2["AccessKeyId"])["AccessKeyLastUsed"]
        check("GetAccessKeyLastUsed back-dated", lu["LastUsedDate"].isoformat().startswith("2021-02-03T04:05:06")
              and lu["ServiceName"] == "s3" and lu["Region"] == "eu-west-1", lu)
        ctl("clock", {"account_id": a, "now": "2030-01-05T00:00:00Z"})
        a_iam.create_user(UserName="clocked")
        a_iam.put_user_policy(UserName="clocked", PolicyName="p", PolicyDocument=ADMIN_POLICY)
        ck = a_iam.create_access_key(UserName="clocked")["AccessKey"]
        cmeta = a_iam.list_access_keys(UserName="clocked")["AccessKeyMetadata"]
        check("clock: ListAccessKeys CreateDate is the clock's",
              [m["CreateDate"].isoformat() for m in cmeta] == ["2030-01-05T00:00:00+00:00"], cmeta)
        cl("iam", ck).get_user()
        lu = a_iam.get_access_key_last_used(AccessKeyId=ck["AccessKeyId"])["AccessKeyLastUsed"]
        check("clock: GetAccessKeyLastUsed LastUsedDate is the clock's",
              lu.get("LastUsedDate") and lu["LastUsedDate"].isoformat() == "2030-01-05T00:00:00+00:00"
              and lu["ServiceName"] == "iam" and lu["Region"] == "us-east-1", lu)
        ctl("clock", {"account_id": a, "now": None})
        cl("sts", ck).get_caller_identity()
        lu = a_iam.get_access_key_last_used(AccessKeyId=ck["AccessKeyId"])["AccessKeyLastUsed"]
        check("clock: null goes back to the real time",
              lu["LastUsedDate"].year < 2030 and lu["ServiceName"] == "sts", lu)
        code, status, _ = err(a_iam, "get_credential_report")
        check("GetCredentialReport before generate -> ReportNotPresent 410",
              (code, status) == ("ReportNotPresent", 410), (code, status))
        check("GenerateCredentialReport STARTED", a_iam.generate_credential_report()["State"] == "STARTED")
        code, status, _ = err(a_iam, "get_credential_report")
        check("GetCredentialReport in progress -> ReportInProgress 404",
              (code, status) == ("ReportInProgress", 404), (code, status))
        check("GenerateCredentialReport COMPLETE", a_iam.generate_credential_report()["State"] == "COMPLETE")
        ctl("root_keys", {"account_id": a, "keys": [{"active": True, "last_rotated": "2019-05-06T07:08:09Z",
                                                      "last_used_date": None}]})
        rows = [r.split(",") for r in a_iam.get_credential_report()["Content"].decode().splitlines()]
        hdr, root = rows[0], dict(zip(rows[0], rows[1]))
        users = {r[0]: dict(zip(hdr, r)) for r in rows[2:]}
        nk = users["nopol"]
        check("report root row", root["user"] == "<root_account>" and root["arn"] == f"arn:aws:iam::{a}:root"
              and root["access_key_1_active"] == "true" and root["access_key_1_last_rotated"] ==
              "2019-05-06T07:08:09+00:00" and root["access_key_1_last_used_date"] == "N/A"
              and root["access_key_2_active"] == "false", root)
        check("report back-dated key2 with region/service", nk["access_key_2_last_rotated"] ==
              "2020-01-02T03:04:05+00:00" and nk["access_key_2_last_used_date"] == "2021-02-03T04:05:06+00:00"
              and nk["access_key_2_last_used_region"] == "eu-west-1"
              and nk["access_key_2_last_used_service"] == "s3" and nk["access_key_1_last_used_service"] == "iam"
              and users["pg-0"]["access_key_1_last_used_date"] == "N/A" and len(hdr) == 22, nk)
        summ = a_iam.get_account_summary()["SummaryMap"]
        ctl("root_keys", {"account_id": a, "keys": []})
        check("AccountAccessKeysPresent follows root_keys", summ["AccountAccessKeysPresent"] == 1 and
              a_iam.get_account_summary()["SummaryMap"]["AccountAccessKeysPresent"] == 0)

        # 6+7. call counting and fault injection
        ctl("calls_reset")
        a_iam.list_users()
        a_iam.list_users()
        cl("organizations", acct).describe_organization()
        calls = ctl("calls")
        check("call counting", calls["total"] == 3 and calls["by_action"] == {
            "iam:ListUsers": 2, "organizations:DescribeOrganization": 1} and calls["by_account"] == {a: 3}, calls)
        a_iam.create_user(UserName="ft")
        n_keys = lambda: len(a_iam.list_access_keys(UserName="ft")["AccessKeyMetadata"])  # noqa: E731
        ctl("fail", {"action": "iam:CreateAccessKey", "user_name": "ft", "account_id": a, "count": 1,
                     "status": 500, "code": "ServiceFailure"})
        code, status, body = err(a_iam, "create_access_key", UserName="ft")
        check("fault before: ServiceFailure 500, no key", (code, status) == ("ServiceFailure", 500)
              and "<Type>Receiver</Type>" in body and n_keys() == 0, (code, status, body))
        check("fault consumed", "AccessKey" in a_iam.create_access_key(UserName="ft"))
        ctl("fail", {"action": "iam:CreateAccessKey", "count": 1, "status": 400, "code": "Throttling",
                     "after_success": True})
        code, status, _ = err(a_iam, "create_access_key", UserName="ft")
        check("fault after_success: error but key created", (code, status) == ("Throttling", 400)
              and n_keys() == 2, (code, status, n_keys()))
        ctl("fail", {"action": "organizations:ListAccounts", "count": 5, "status": 400, "code": "TooManyRequestsException"})
        code, _, body = err(org, "list_accounts")
        ctl("fail_clear")
        check("JSON fault + fail_clear", code == "TooManyRequestsException" and "__type" in body
              and "Accounts" in org.list_accounts(), (code, body))

        # new_org isolation and cross-account AssumeRole
        o1, o2 = ctl("new_org", {"members": 2}), ctl("new_org", {"members": 1, "member_names": ["prod"]})
        ids = lambda o: {x["Id"] for p in cl("organizations", o).get_paginator("list_accounts").paginate()  # noqa: E731
                         for x in p["Accounts"]}
        i1, i2 = ids(o1), ids(o2)
        check("new_org ListAccounts isolated", i1 == {o1["management_account_id"]} | {m["account_id"] for m in
              o1["members"]} and len(i2) == 2 and not i1 & i2 and o2["members"][0]["name"] == "prod", (i1, i2))
        m = o1["members"][0]["account_id"]
        cr = cl("sts", o1).assume_role(RoleArn=f"arn:aws:iam::{m}:role/OrganizationAccountAccessRole",
                                       RoleSessionName="test")["Credentials"]
        check("AssumeRole into member + admin there", cl("sts", cr).get_caller_identity()["Account"] == m
              and "Users" in cl("iam", cr).list_users(), m)
        code, _, _ = err(cl("organizations", cr), "create_organization", FeatureSet="ALL")
        check("fact: member cannot CreateOrganization", code == "AlreadyInOrganizationException", code)
        other = o2["members"][0]["account_id"]
        code, _, _ = err(cl("sts", o1), "assume_role", RoleSessionName="test",
                         RoleArn=f"arn:aws:iam::{other}:role/OrganizationAccountAccessRole")
        check("trust: other org's member role -> AccessDenied", code == "AccessDenied", code)
        code, _, _ = err(cl("sts", o1), "assume_role", RoleSessionName="test",
                         RoleArn=f"arn:aws:iam::{m}:role/NoSuchRole")
        check("trust: missing role -> AccessDenied", code == "AccessDenied", code)
        xtrust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": o2["management_account_id"]}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{o1['management_account_id']}:root"},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}}}]}
        a_iam.create_role(RoleName="xext", AssumeRolePolicyDocument=json.dumps(xtrust))
        xarn = f"arn:aws:iam::{acct['account_id']}:role/xext"
        code, _, _ = err(cl("sts", o1), "assume_role", RoleArn=xarn, RoleSessionName="test")
        ok = cl("sts", o1).assume_role(RoleArn=xarn, RoleSessionName="test", ExternalId="x-1")
        ok2 = cl("sts", o2).assume_role(RoleArn=xarn, RoleSessionName="test")
        check("trust: cross-account, 2 statements, ExternalId", code == "AccessDenied" and "Credentials" in ok
              and "Credentials" in ok2, code)

        # facts: authorization details, tags, ExternalId
        a_iam.create_group(GroupName="g")
        a_iam.add_user_to_group(GroupName="g", UserName="ft")
        a_iam.tag_user(UserName="ft", Tags=[{"Key": "team", "Value": "x"}])
        det = {u["UserName"]: u for u in a_iam.get_account_authorization_details(Filter=["User"])["UserDetailList"]}
        check("fact: GetAccountAuthorizationDetails has Tags+GroupList", det["ft"]["GroupList"] == ["g"] and
              det["ft"]["Tags"] == [{"Key": "team", "Value": "x"}], det["ft"])
        pages = list(a_iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User"], PaginationConfig={"PageSize": 2}))
        paged = [u["UserName"] for p in pages for u in p["UserDetailList"]]
        check("GetAccountAuthorizationDetails MaxItems/IsTruncated/Marker", len(pages) > 1
              and all(len(p["UserDetailList"]) <= 2 for p in pages)
              and sorted(paged) == sorted(det) and len(set(paged)) == len(paged), paged)
        check("fact: ListUserTags works", a_iam.list_user_tags(UserName="ft")["Tags"][0]["Key"] == "team")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "AWS": f"arn:aws:iam::{a}:user/nopol"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}}]}
        a_iam.create_role(RoleName="ext", AssumeRolePolicyDocument=json.dumps(trust))
        arn = f"arn:aws:iam::{a}:role/ext"
        code, _, _ = err(cl("sts", nopol), "assume_role", RoleArn=arn, RoleSessionName="test", ExternalId="bad")
        ok = cl("sts", nopol).assume_role(RoleArn=arn, RoleSessionName="test", ExternalId="ext-1")
        check("fact: same-account AssumeRole checks ExternalId", code == "AccessDenied" and "Credentials" in ok, code)

        # issue 9: MFA codes and MFA-conditioned policies
        b = ctl("new_account")
        b_iam, bid = cl("iam", b), b["account_id"]
        need_mfa = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["iam:ListAccessKeys"], "Resource": "*",
             "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
            {"Effect": "Allow", "Action": ["sts:GetSessionToken"], "Resource": "*"}]}
        b_iam.create_user(UserName="m")
        b_iam.put_user_policy(UserName="m", PolicyName="p", PolicyDocument=json.dumps(need_mfa))
        mk = b_iam.create_access_key(UserName="m")["AccessKey"]
        code, _, _ = err(cl("iam", mk), "list_access_keys")
        check("MFA policy: long-term key -> AccessDenied", code == "AccessDenied", code)
        plain = cl("sts", mk).get_session_token()["Credentials"]
        code, _, _ = err(cl("iam", plain), "list_access_keys")
        check("MFA policy: session without MFA -> AccessDenied", code == "AccessDenied", code)
        serial = ctl("mfa_device", {"account_id": bid, "user_name": "m"})["serial_number"]
        check("mfa_device enabled for the user", [d["SerialNumber"] for d in
              b_iam.list_mfa_devices(UserName="m")["MFADevices"]] == [serial], serial)
        good = ctl("mfa_code", {"serial_number": serial})["code"]
        wrong = f"{(int(good) + 1) % 1_000_000:06d}"
        code, status, body = err(cl("sts", mk), "get_session_token", SerialNumber=serial, TokenCode=wrong)
        check("GetSessionToken with a wrong code -> AccessDenied 403", (code, status) == ("AccessDenied", 403)
              and "invalid MFA one time pass code" in body, (code, status, body))
        code, _, _ = err(cl("sts", mk), "get_session_token", SerialNumber=f"arn:aws:iam::{bid}:mfa/nobody",
                         TokenCode=good)
        check("GetSessionToken with an unknown device -> AccessDenied", code == "AccessDenied", code)
        sess = cl("sts", mk).get_session_token(SerialNumber=serial, TokenCode=good)["Credentials"]
        check("MFA session may call IAM", len(cl("iam", sess).list_access_keys(UserName="m")
                                                 ["AccessKeyMetadata"]) == 1)
        code, _, _ = err(cl("sts", mk), "get_session_token", SerialNumber=serial, TokenCode=good)
        check("a used MFA code is rejected", code == "AccessDenied", code)
        b_iam.create_user(UserName="d")
        deny_form = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "NotAction": ["sts:GetSessionToken"], "Resource": "*",
             "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}
        b_iam.put_user_policy(UserName="d", PolicyName="p", PolicyDocument=json.dumps(deny_form))
        dk = b_iam.create_access_key(UserName="d")["AccessKey"]
        code, _, _ = err(cl("iam", dk), "list_users")
        check("BoolIfExists false-deny: long-term key -> AccessDenied", code == "AccessDenied", code)
        b_iam.create_virtual_mfa_device(VirtualMFADeviceName="d")
        dserial = f"arn:aws:iam::{bid}:mfa/d"
        same = ctl("mfa_code", {"serial_number": dserial})["code"]
        code, _, _ = err(b_iam, "enable_mfa_device", UserName="d", SerialNumber=dserial,
                         AuthenticationCode1=same, AuthenticationCode2=same)
        check("EnableMFADevice needs consecutive codes", code == "InvalidAuthenticationCode", code)
        b_iam.enable_mfa_device(UserName="d", SerialNumber=dserial, AuthenticationCode1=same,
                                AuthenticationCode2=ctl("mfa_code", {"serial_number": dserial, "steps": 1})["code"])
        dsess = cl("sts", dk).get_session_token(
            SerialNumber=dserial, TokenCode=ctl("mfa_code", {"serial_number": dserial})["code"])["Credentials"]
        check("BoolIfExists false-deny: MFA session allowed", "Users" in cl("iam", dsess).list_users())

        # issue 9: new keys take time to work and to be listed
        b_iam.create_user(UserName="late")
        ctl("new_key_delay", {"account_id": bid, "seconds": 2})
        lk = b_iam.create_access_key(UserName="late")["AccessKey"]
        listed = lambda: [k["AccessKeyId"] for k in b_iam.list_access_keys(UserName="late")["AccessKeyMetadata"]]  # noqa: E731
        code, _, _ = err(cl("sts", lk), "get_caller_identity")
        check("new_key_delay: new key hidden and rejected", listed() == [] and code == "InvalidClientTokenId",
              (listed(), code))
        time.sleep(2.2)
        check("new_key_delay: listed and working afterwards", listed() == [lk["AccessKeyId"]]
              and cl("sts", lk).get_caller_identity()["Account"] == bid, listed())
        ctl("new_key_delay", {"account_id": bid, "seconds": 5, "hide": False})
        lk2 = b_iam.create_access_key(UserName="late")["AccessKey"]
        code, _, _ = err(cl("sts", lk2), "get_caller_identity")
        check("new_key_delay hide=false: listed at once, still rejected",
              lk2["AccessKeyId"] in listed() and code == "InvalidClientTokenId", code)
        ctl("new_key_delay", {"account_id": bid, "seconds": 0})
        b_iam.delete_access_key(UserName="late", AccessKeyId=lk2["AccessKeyId"])
        lk3 = b_iam.create_access_key(UserName="late")["AccessKey"]
        check("new_key_delay 0 clears it", lk3["AccessKeyId"] in listed()
              and cl("sts", lk3).get_caller_identity()["Account"] == bid)

        # issue 9: a credential report up to 4 hours old
        ago = lambda h: (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=h)).replace(microsecond=0)  # noqa: E731
        two_h = ago(2)
        ctl("report_age", {"account_id": bid, "generated_at": two_h.isoformat()})
        b_iam.create_user(UserName="after-report")
        check("stale report: Generate -> COMPLETE", b_iam.generate_credential_report()["State"] == "COMPLETE")
        rep = b_iam.get_credential_report()
        check("stale report: old content and GeneratedTime", rep["GeneratedTime"] == two_h
              and b"\nm," in rep["Content"] and b"after-report" not in rep["Content"], rep["GeneratedTime"])
        ctl("report_age", {"account_id": bid, "generated_at": ago(5).isoformat()})
        check("report older than 4h: Generate -> STARTED", b_iam.generate_credential_report()["State"] == "STARTED")
        code, _, _ = err(b_iam, "get_credential_report")
        rep = b_iam.get_credential_report()
        check("regenerated report is fresh", code == "ReportInProgress" and b"after-report" in rep["Content"]
              and rep["GeneratedTime"] > ago(0.1), (code, rep["GeneratedTime"]))
        check("regenerated report is kept", b_iam.generate_credential_report()["State"] == "COMPLETE")

        # issue 7: a secret whose rotation another Lambda performs
        sm = cl("secretsmanager", acct)
        rot = sm.create_secret(Name="rotated-elsewhere", SecretString='{"k": "v"}')
        fn = f"arn:aws:lambda:us-east-1:{a}:function:rotate-elsewhere"
        ctl("secret_rotation", {"account_id": a, "secret_id": "rotated-elsewhere", "lambda_arn": fn})
        d = sm.describe_secret(SecretId=rot["ARN"])
        check("secret_rotation: DescribeSecret shows rotation enabled through the Lambda",
              d.get("RotationEnabled") is True and d.get("RotationLambdaARN") == fn
              and d.get("RotationRules", {}).get("AutomaticallyAfterDays") == 30, d)
        check("secret_rotation: no version added, nothing staged AWSPENDING",
              list(d["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
              and sm.get_secret_value(SecretId="rotated-elsewhere")["SecretString"] == '{"k": "v"}',
              d["VersionIdsToStages"])
        plain = sm.create_secret(Name="rotated-nowhere", SecretString="{}")
        check("secret_rotation: other secrets show no rotation",
              not sm.describe_secret(SecretId=plain["ARN"]).get("RotationEnabled"))
        tok = "c9b4a2f0-6a8e-4b7e-9d5e-0123456789ab"
        ctl("secret_pending", {"account_id": a, "secret_id": plain["ARN"], "token": tok, "lambda_arn": fn})
        d = sm.describe_secret(SecretId=plain["ARN"])
        check("secret_pending: the token staged AWSPENDING, AWSCURRENT where it was, rotation on",
              d["VersionIdsToStages"].get(tok) == ["AWSPENDING"] and d.get("RotationEnabled") is True
              and sm.get_secret_value(SecretId=plain["ARN"])["SecretString"] == "{}", d)
        sm.put_secret_value(SecretId=plain["ARN"], ClientRequestToken=tok, SecretString='{"n": 1}',
                            VersionStages=["AWSPENDING"])
        check("secret_pending: the rotation function writes the token's version",
              sm.get_secret_value(SecretId=plain["ARN"], VersionStage="AWSPENDING")["SecretString"] == '{"n": 1}')

        # issue 6: Security Hub as strict as AWS
        sh_org = ctl("new_org", {"members": 2})
        sh_m1, sh_m2 = (x["account_id"] for x in sh_org["members"])

        def member(acct_id):
            c = cl("sts", sh_org).assume_role(RoleArn=f"arn:aws:iam::{acct_id}:role/OrganizationAccountAccessRole",
                                              RoleSessionName="sh")["Credentials"]
            return cl("securityhub", c)

        sh1, sh2 = member(sh_m1), member(sh_m2)

        def asff(acct_id, fid, **over):
            f = {"SchemaVersion": "2018-10-08", "Id": fid, "GeneratorId": "selftest",
                 "ProductArn": f"arn:aws:securityhub:us-east-1:{acct_id}:product/{acct_id}/default",
                 "AwsAccountId": acct_id, "Types": ["Software and Configuration Checks"],
                 "CreatedAt": "2026-01-01T00:00:00Z", "UpdatedAt": "2026-01-01T00:00:00Z",
                 "Severity": {"Label": "MEDIUM"}, "Title": "t", "Description": "d",
                 "Resources": [{"Type": "AwsIamAccessKey", "Id": "AKIAEXAMPLE"}]}
            f.update(over)
            return f

        code, status, _ = err(sh1, "batch_import_findings", Findings=[asff(sh_m1, "f1")])
        check("securityhub: import before EnableSecurityHub -> InvalidAccessException",
              code == "InvalidAccessException", (code, status))
        code, _, _ = err(sh1, "get_findings")
        check("securityhub: GetFindings before EnableSecurityHub -> InvalidAccessException",
              code == "InvalidAccessException", code)
        sh1.enable_security_hub()
        sh2.enable_security_hub()
        code, status, _ = err(sh1, "batch_import_findings", Findings=[asff(sh_m2, "f-other")])
        check("securityhub: another account's default product -> AccessDeniedException",
              code == "AccessDeniedException", (code, status))
        code, _, _ = err(sh1, "batch_import_findings", Findings=[asff(sh_m1, "f-x", AwsAccountId=sh_m2)])
        check("securityhub: AwsAccountId of another account -> AccessDeniedException",
              code == "AccessDeniedException", code)
        bad = asff(sh_m1, "f-bad", Title="")  # boto3 itself refuses a finding without Title
        r = sh1.batch_import_findings(Findings=[asff(sh_m1, "f1"), asff(sh_m1, "f2"), bad])
        check("securityhub: a finding without Title is rejected, the others stored",
              r["FailedCount"] == 1 and r["SuccessCount"] == 2 and r["FailedFindings"][0]["Id"] == "f-bad"
              and "Title" in r["FailedFindings"][0]["ErrorMessage"], r)
        got = {f["Id"]: f for f in sh1.get_findings()["Findings"]}
        check("securityhub: new findings are ACTIVE with Workflow NEW",
              set(got) == {"f1", "f2"} and got["f1"]["RecordState"] == "ACTIVE"
              and got["f1"]["Workflow"] == {"Status": "NEW"}, got)
        check("securityhub: findings are per account", sh2.get_findings()["Findings"] == [])
        sh1.batch_import_findings(Findings=[asff(sh_m1, "f1", RecordState="ARCHIVED",
                                                 Compliance={"Status": "PASSED"},
                                                 Workflow={"Status": "SUPPRESSED"},
                                                 UpdatedAt="2026-01-02T00:00:00Z")])
        got = {f["Id"]: f for f in sh1.get_findings()["Findings"]}
        check("securityhub: same Id updates in place; provider cannot set Workflow",
              len(got) == 2 and got["f1"]["RecordState"] == "ARCHIVED"
              and got["f1"]["Compliance"]["Status"] == "PASSED" and got["f1"]["Workflow"] == {"Status": "NEW"}
              and got["f1"]["UpdatedAt"] == "2026-01-02T00:00:00Z", got.get("f1"))
        eq = lambda v: [{"Value": v, "Comparison": "EQUALS"}]  # noqa: E731
        r = sh1.get_findings(Filters={"Id": eq("f2"), "GeneratorId": eq("selftest")})["Findings"]
        r2 = sh1.get_findings(Filters={"RecordState": eq("ACTIVE")})["Findings"]
        r3 = sh1.get_findings(Filters={"GeneratorId": eq("someone-else")})["Findings"]
        r4 = sh1.get_findings(Filters={"Id": [{"Value": "f", "Comparison": "PREFIX"}],
                                       "ComplianceStatus": [{"Value": "PASSED", "Comparison": "NOT_EQUALS"}]})
        check("securityhub: GetFindings honours string filters",
              [f["Id"] for f in r] == ["f2"] and [f["Id"] for f in r2] == ["f2"] and r3 == []
              and [f["Id"] for f in r4["Findings"]] == ["f2"], (r, r2, r3, r4))
        code, _, _ = err(sh1, "get_findings", Filters={"ResourceTags": [{"Key": "a", "Value": "b",
                                                                          "Comparison": "EQUALS"}]})
        check("securityhub: a filter the harness does not emulate fails loudly",
              code == "InvalidInputException", code)

        # notifications: SES v2 mails read back, SES v2 and SNS faults
        n_acct = ctl("new_account")
        n_ses, n_sns, n_sqs = cl("sesv2", n_acct), cl("sns", n_acct), cl("sqs", n_acct)
        mail = dict(FromEmailAddress="rekey@example.com",
                    Destination={"ToAddresses": ["owner@example.com"], "CcAddresses": ["ops@example.com"]},
                    Content={"Simple": {"Subject": {"Data": "Key rotated"},
                                        "Body": {"Text": {"Data": "plain"}, "Html": {"Data": "<p>html</p>"}}}})
        code, status, body = err(n_ses, "send_email", **mail)
        check("ses: unverified sender -> MessageRejected (JSON)", code == "MessageRejected" and status == 400
              and json.loads(body).get("__type") == "MessageRejected", (code, status, body))
        n_ses.create_email_identity(EmailIdentity="rekey@example.com")
        sent_id = n_ses.send_email(**mail)["MessageId"]
        got = ctl("ses_sent", {"account_id": n_acct["account_id"]})["messages"]
        check("ses_sent: the mail as sent, text and html parts both kept",
              got == [{"account_id": n_acct["account_id"], "message_id": sent_id, "source": "rekey@example.com",
                       "destinations": ["owner@example.com", "ops@example.com"], "subject": "Key rotated",
                       "text": "plain", "html": "<p>html</p>"}], got)
        check("ses_sent: every account's without account_id, none in another region",
              sent_id in [m["message_id"] for m in ctl("ses_sent")["messages"]]
              and ctl("ses_sent", {"account_id": n_acct["account_id"], "region": "eu-west-1"})["messages"] == [])
        ctl("fail", {"action": "ses:SendEmail", "account_id": n_acct["account_id"], "status": 429,
                     "code": "TooManyRequestsException"})
        code, status, body = err(n_ses, "send_email", **mail)
        check("fail ses:SendEmail -> TooManyRequestsException 429 (REST-JSON)",
              code == "TooManyRequestsException" and status == 429
              and json.loads(body).get("__type") == code
              and n_ses.raw["headers"].get("x-amzn-ErrorType") == code, (code, status, body))
        check("a failed SendEmail is not recorded as sent",
              len(ctl("ses_sent", {"account_id": n_acct["account_id"]})["messages"]) == 1)
        by_action = ctl("calls")["by_action"]
        check("calls name SES v2 operations", by_action.get("ses:SendEmail", 0) >= 3
              and by_action.get("ses:CreateEmailIdentity", 0) >= 1, by_action)
        cl("iam", n_acct).create_user(UserName="nomail")
        nomail = cl("iam", n_acct).create_access_key(UserName="nomail")["AccessKey"]
        nm_ses = cl("sesv2", nomail)
        code, status, body = err(nm_ses, "send_email", **mail)
        check("ses without permission -> AccessDeniedException (JSON)", code == "AccessDeniedException"
              and status == 403 and json.loads(body).get("__type") == code, (code, status, body))
        topic = n_sns.create_topic(Name="rekey-events")["TopicArn"]
        queue = n_sqs.create_queue(QueueName="rekey-events")["QueueUrl"]
        queue_arn = n_sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        n_sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        n_sns.publish(TopicArn=topic, Message='{"event": "rotated"}', Subject="s",
                      MessageAttributes={"kind": {"DataType": "String", "StringValue": "rotated"}})
        msgs = n_sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        env = json.loads(msgs[0]["Body"]) if len(msgs) == 1 else {}
        check("sns -> sqs: the envelope carries Message, Subject and MessageAttributes",
              env.get("Message") == '{"event": "rotated"}' and env.get("Subject") == "s"
              and env.get("MessageAttributes") == {"kind": {"Type": "String", "Value": "rotated"}}, msgs)
        ctl("fail", {"action": "sns:Publish", "account_id": n_acct["account_id"], "status": 400,
                     "code": "Throttling"})
        code, status, body = err(n_sns, "publish", TopicArn=topic, Message="m")
        check("fail sns:Publish -> Throttling 400 (query XML)", code == "Throttling" and status == 400
              and "<ErrorResponse" in body and "<Code>Throttling</Code>" in body, (code, status, body))
        check("a failed Publish delivers nothing",
              n_sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []) == [])

        # issue 20: AWS Config PutEvaluations kept and checked as AWS does
        c_acct = ctl("new_account")
        c_cfg = cl("config", c_acct)
        ev = lambda rid, **over: {"ComplianceResourceType": "AWS::IAM::User",  # noqa: E731
                                  "ComplianceResourceId": rid, "ComplianceType": "COMPLIANT",
                                  "Annotation": "ok", "OrderingTimestamp": dt.datetime(
                                      2026, 12, 8, tzinfo=dt.timezone.utc), **over}
        r = c_cfg.put_evaluations(Evaluations=[ev("AIDA1"), ev("AIDA2", ComplianceType="NON_COMPLIANT")],
                                  ResultToken="tok")
        got = ctl("config_evaluations", {"account_id": c_acct["account_id"]})["calls"]
        check("config: PutEvaluations without TestMode is kept, per account",
              r["FailedEvaluations"] == [] and len(got) == 1 and got[0]["result_token"] == "tok"
              and got[0]["evaluations"] == [
                  {"ComplianceResourceType": "AWS::IAM::User", "ComplianceResourceId": "AIDA1",
                   "ComplianceType": "COMPLIANT", "Annotation": "ok",
                   "OrderingTimestamp": "2026-12-08T00:00:00.000Z"},
                  {"ComplianceResourceType": "AWS::IAM::User", "ComplianceResourceId": "AIDA2",
                   "ComplianceType": "NON_COMPLIANT", "Annotation": "ok",
                   "OrderingTimestamp": "2026-12-08T00:00:00.000Z"}], got)
        code, _, _ = err(c_cfg, "put_evaluations", ResultToken="tok",
                         Evaluations=[ev(f"AIDA{i}") for i in range(101)])
        check("config: 101 evaluations in one call -> ValidationException", code == "ValidationException", code)
        code, _, _ = err(c_cfg, "put_evaluations", ResultToken="tok", Evaluations=[ev("AIDA1", Annotation="x" * 257)])
        check("config: an annotation over 256 characters -> ValidationException", code == "ValidationException", code)
        code, _, _ = err(c_cfg, "put_evaluations", ResultToken="tok",
                         Evaluations=[ev("AIDA1", ComplianceType="INSUFFICIENT_DATA")])
        check("config: INSUFFICIENT_DATA -> InvalidParameterValueException",
              code == "InvalidParameterValueException", code)
        ctl("config_refuse", {"account_id": c_acct["account_id"], "resource_ids": ["AIDA2"]})
        r = c_cfg.put_evaluations(Evaluations=[ev("AIDA1"), ev("AIDA2")], ResultToken="tok")
        got = ctl("config_evaluations", {"account_id": c_acct["account_id"]})["calls"]
        ctl("config_refuse", {"account_id": c_acct["account_id"], "resource_ids": []})
        check("config: a refused resource comes back in FailedEvaluations, the rest kept",
              [e["ComplianceResourceId"] for e in r["FailedEvaluations"]] == ["AIDA2"] and len(got) == 2
              and [e["ComplianceResourceId"] for e in got[1]["evaluations"]] == ["AIDA1"]
              and got[1]["failed"] == ["AIDA2"], (r, got))
        check("config: calls refused outright are not kept; another account sees none",
              ctl("config_evaluations", {"account_id": n_acct["account_id"]})["calls"] == [])

        # aws CLI compatibility, old key fails after deletion
        with tempfile.TemporaryDirectory() as d:
            with open(f"{d}/credentials", "w") as f:
                f.write(f"[p]\naws_access_key_id = {nopol['AccessKeyId']}\n"
                        f"aws_secret_access_key = {nopol['SecretAccessKey']}\n")
            env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": f"{d}/credentials", "AWS_CONFIG_FILE": f"{d}/none",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
                env.pop(k, None)
            cmd = ["aws", "--endpoint-url", ep, "sts", "get-caller-identity", "--profile", "p", "--output", "json"]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            check("aws CLI get-caller-identity", r.returncode == 0 and json.loads(r.stdout)["Account"] == a,
                  r.stderr)
            a_iam.delete_access_key(UserName="nopol", AccessKeyId=nopol["AccessKeyId"])
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            check("aws CLI with deleted key fails", r.returncode != 0 and "InvalidClientTokenId" in r.stderr,
                  r.stderr)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        check("self-test ran to completion", False, repr(e))
    finally:
        proc.stdin.close()  # harness must exit on stdin EOF
        try:
            proc.wait(timeout=10)
            check("exits on stdin EOF", True)
        except subprocess.TimeoutExpired:
            proc.kill()
            check("exits on stdin EOF", False)
    print(f"{res['passed']} passed, {res['failed']} failed")
    return 1 if res["failed"] else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    p.add_argument("--no-stdin-watch", action="store_true", help="do not exit on stdin EOF")
    p.add_argument("--self-test", action="store_true")
    a = p.parse_args()
    if a.self_test:
        sys.exit(self_test(os.path.abspath(__file__)))
    serve(a.port, a.verbose, not a.no_stdin_watch)


if __name__ == "__main__":
    main()
