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
  /_rekey/fail {"action": "iam:CreateAccessKey", "user_name"?, "account_id"?,
      "count": 1, "status": 500, "code": "ServiceFailure", "message"?,
      "after_success": false} -> {"ok":true}
      The next `count` requests matching action (and UserName parameter /
      account of the signing key, when given) fail with that AWS error
      (query XML for iam/sts, JSON for others). after_success=true forwards
      to moto first (the side effect happens) and then replaces the answer.
      Faults are global: pass account_id when tests run in parallel.
  /_rekey/fail_clear {} -> {"ok":true}

Credential report (AWS-like, deterministic, per account): GetCredentialReport
before any Generate -> ReportNotPresent (410). First Generate -> STARTED; while
STARTED, GetCredentialReport -> ReportInProgress (404) and the report becomes
COMPLETE; a second Generate -> COMPLETE. Content is rendered at Get time.

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
INTERNAL_HEADER = "x-rekey-internal"
STARTED_AT = utcnow()

ROOT = {}           # account_id -> {"keys": [...], "mfa_active": bool}
REPORT_STATE = {}   # account_id -> "STARTED" | "COMPLETE"


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_iso(s):
    """ISO8601 -> naive UTC datetime, as moto stores them."""
    if s is None:
        return None
    d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return d.astimezone(dt.timezone.utc).replace(tzinfo=None) if d.tzinfo else d


def aws_error(service, is_json, code, message, status):
    """(status, headers, body) of an AWS-shaped error for the service's protocol."""
    rid = str(uuid.uuid4())
    if is_json:
        body = json.dumps({"__type": code, "message": message})
        return status, {"Content-Type": "application/x-amz-json-1.1",
                        "x-amzn-ErrorType": code, "x-amzn-RequestId": rid}, body
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


def _auth(self, iam_request_cls, resource="*"):
    # AWS behaviour restored: auth errors are <ErrorResponse><Error><Code> for
    # query services (403) and {"__type": ...} + x-amzn-ErrorType for JSON
    # services (400), so every SDK (incl. Rust's) reads the error code.
    try:
        return _orig_auth(self, iam_request_cls, resource)
    except (mexc.InvalidClientTokenIdError, mexc.SignatureDoesNotMatchError,
            mexc.AccessDeniedError) as e:
        is_json = bool(self.headers.get("X-Amz-Target"))
        code = JSON_AUTH_CODES[e.error_type] if is_json else e.error_type
        status, headers, body = aws_error(self.service_name, is_json, code, e.message,
                                          400 if is_json else 403)
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
    if key is not None and key.status != "Active":
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
    key = iam_backends[account_id][partition].create_temp_access_key()
    key.session_user = user.name
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
    if key is None or key.status == "Active":
        _orig_visited(account_id=account_id, access_key=access_key, service=service, region=region)


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
    page, out = _page(self, list(self.backend.list_access_keys(user_name)))
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
    for k in user.access_keys:
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
    rows = [_root_row(acct)] + [_user_row(u) for u in self.backend.users.values()]
    content = REPORT_HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows)
    return ActionResult({"Content": content, "ReportFormat": "text/csv", "GeneratedTime": utcnow()})


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
        if environ.get("PATH_INFO", "").startswith("/_rekey/"):
            return self._control(environ, body, start_response)
        if environ.get("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")):
            return self.app(environ, start_response)
        req = self._classify(environ, body)
        with self.stats_lock:
            c = self.calls
            c["total"] += 1
            c["by_action"][req["action"]] = c["by_action"].get(req["action"], 0) + 1
            if req["account"]:
                c["by_account"][req["account"]] = c["by_account"].get(req["account"], 0) + 1
            fault = self._take_fault(req)
        if fault is None:
            return self.app(environ, start_response)
        if fault.get("after_success"):
            out = self.app(environ, lambda *a, **k: (lambda data: None))
            for _ in out:
                pass  # let moto perform the side effect, drop its answer
            getattr(out, "close", lambda: None)()
        status, headers, text = aws_error(req["service"], req["json"], fault.get("code", "ServiceFailure"),
                                          fault.get("message") or "injected by moto_harness",
                                          int(fault.get("status", 500)))
        return self._respond(start_response, status, text, headers)

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
        if target:
            action = target.split(".")[-1]
            try:
                params = {k: [v] for k, v in json.loads(body or b"{}").items() if isinstance(v, str)}
            except (ValueError, AttributeError):
                pass
        else:
            if b"=" in body:
                params.update(parse_qs(body.decode("utf-8", "replace")))
            action = (params.get("Action") or ["unknown"])[0]
        account = iam_models.get_account_id_from(key) if key else None
        if account == DEFAULT_ACCOUNT and key not in iam_backends[DEFAULT_ACCOUNT]["global"].access_keys:
            account = None  # unknown key (moto would fall back to the default account)
        return {"service": service, "action": f"{service}:{action}", "json": bool(target),
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
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
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
