#!/usr/bin/env python3
"""Static checks of the Terraform module in deploy/terraform.

    python3 deploy/checks/terraform.py

Parses every .tf file under deploy/terraform with python-hcl2 and checks,
for each module (a directory holding .tf files):

- every variable has a description and a type, and is used (var.NAME
  appears in the module outside the variable blocks);
- every output has a description;
- every templatefile() names a template that exists, and passes every
  ${...} placeholder the template uses (Terraform fails on a missing one,
  not on an unused one); a .json.tftpl, its placeholders filled in, is JSON;
  every .tftpl is loaded by some templatefile();
- the root module's outputs are exactly the SAM template's Outputs
  (deploy/sam/template.yaml) in snake_case.

Then `terraform fmt -check` (when a terraform binary is on the PATH) and
checkov (`--framework terraform`) on deploy/terraform and on
examples/organization: any failed check or parse error is a finding.
`terraform validate` is not run: it needs `terraform init`, which downloads
the hashicorp/aws provider from the Terraform registry, unreachable here.

Exit status: 0 no finding, 1 findings, 2 a tool could not be set up.

Tools: python-hcl2 (HCL2_VERSION) and checkov (CHECKOV_VERSION). Each is
used from this interpreter or the PATH when it is the pinned version, else
installed with pip into a virtual environment of its own under
$REKEY_TOOLS (default ~/.cache/rekey; checkov's is $REKEY_TOOLS/checkov,
where `scripts/ensure-tools deploy` puts it). checkov must not share an
environment with python-hcl2: it depends on bc-python-hcl2, a fork that
installs the same `hcl2` module. $CHECKOV names a checkov to use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HCL2_VERSION = "8.1.4"
CHECKOV_VERSION = "3.3.30"

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "deploy" / "terraform"
SAM_TEMPLATE = REPO / "deploy" / "sam" / "template.yaml"
EXAMPLE = TERRAFORM / "examples" / "organization"
# scripts/ensure-tools deploy's: checkov in $REKEY_TOOLS/checkov.
TOOLS_HOME = Path(
    os.environ.get("REKEY_TOOLS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rekey"
)

# The SAM template's Outputs, for when deploy/sam/template.yaml is not there.
SAM_OUTPUTS = [
    "FunctionArn",
    "FunctionRoleArn",
    "QueueUrl",
    "DeadLetterQueueUrl",
    "JournalTableName",
    "NotifyTopicArn",
    "ConfigRuleName",
]


# --- tools -------------------------------------------------------------


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _venv(name: str, packages: list[str], ready) -> Path:
    """A virtual environment under TOOLS_HOME holding `packages`; its dir.
    `ready(venv)` tells whether one already there will do."""
    venv = TOOLS_HOME / name
    python = venv / "bin" / "python"
    if python.exists() and ready(venv):
        return venv
    print(f"setting up {venv} with {' '.join(packages)}…", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"cannot set up {venv}: {e}", file=sys.stderr)
        sys.exit(2)
    return venv


def ensure_hcl2() -> None:
    """Re-runs this script under a python with python-hcl2 HCL2_VERSION."""
    if _dist_version("python-hcl2") == HCL2_VERSION and _dist_version("bc-python-hcl2") is None:
        try:
            import hcl2  # noqa: F401
            import yaml  # noqa: F401

            return
        except ImportError:
            pass
    if os.environ.get("REKEY_CHECKS_REEXEC"):
        print(f"python-hcl2=={HCL2_VERSION} is still not importable", file=sys.stderr)
        sys.exit(2)
    venv = _venv(
        "python-hcl2",
        [f"python-hcl2=={HCL2_VERSION}", "PyYAML==6.0.3"],
        lambda v: subprocess.run(
            [str(v / "bin" / "python"), "-c", f"import hcl2, yaml; from importlib.metadata import version; assert version('python-hcl2') == '{HCL2_VERSION}'"],
            capture_output=True,
        ).returncode
        == 0,
    )
    env = dict(os.environ, REKEY_CHECKS_REEXEC="1")
    python = str(venv / "bin" / "python")
    os.execve(python, [python, __file__, *sys.argv[1:]], env)


def checkov_command() -> list[str]:
    if os.environ.get("CHECKOV"):
        return [os.environ["CHECKOV"]]

    def version_ok(checkov) -> bool:
        try:
            out = subprocess.run([str(checkov), "--version"], capture_output=True, text=True)
        except OSError:
            return False
        return out.stdout.strip() == CHECKOV_VERSION

    on_path = shutil.which("checkov")
    if on_path and version_ok(on_path):
        return [on_path]
    venv = _venv("checkov", [f"checkov=={CHECKOV_VERSION}"], lambda v: version_ok(v / "bin" / "checkov"))
    return [str(venv / "bin" / "checkov")]


# --- parsing -----------------------------------------------------------


def unquote(s):
    """python-hcl2 keeps a string literal's quotes: `"x"` is x."""
    if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def blocks(parsed: dict, kind: str):
    """(name, body) of each top-level block of one label (variable, output)."""
    for entry in parsed.get(kind, []):
        for name, body in entry.items():
            yield unquote(name), body


def strings(value):
    """Every string inside a parsed value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def split_top(text: str, sep: str) -> list[str]:
    """Splits `text` on `sep` outside brackets and string literals."""
    parts, depth, cur, i, quote = [], 0, [], 0, False
    while i < len(text):
        c = text[i]
        if quote:
            cur.append(c)
            if c == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            depth -= 1
            cur.append(c)
        elif depth == 0 and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep) - 1
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur))
    return parts


def balanced(text: str, start: int) -> str | None:
    """The text between the bracket at `start` and its match, exclusive."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack, quote, i = [], False, start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c in pairs:
            stack.append(pairs[c])
        elif stack and c == stack[-1]:
            stack.pop()
            if not stack:
                return text[start + 1 : i]
        i += 1
    return None


def templatefile_calls(expr: str):
    """(path expression, passed keys or None) of each templatefile() in expr."""
    for m in re.finditer(r"\btemplatefile\s*\(", expr):
        inner = balanced(expr, m.end() - 1)
        if inner is None:
            yield None, None
            continue
        args = split_top(inner, ",")
        path = args[0].strip() if args else ""
        keys = None
        if len(args) >= 2:
            obj = args[1].strip()
            if obj.startswith("{") and obj.endswith("}"):
                keys = set()
                for entry in split_top(obj[1:-1], ","):
                    for line in split_top(entry, "\n"):
                        km = re.match(r'\s*"?([A-Za-z_][A-Za-z0-9_-]*)"?\s*[=:]', line)
                        if km:
                            keys.add(km.group(1))
        yield path, keys


TEMPLATE_KEYWORDS = {"true", "false", "null", "for", "in", "if", "else", "endif", "endfor"}


def placeholders(template: str) -> set[str]:
    """The variables a Terraform template refers to (not its loop names)."""
    text = template.replace("$${", "").replace("%%{", "")
    text = re.sub(r"\$\{\s*aws:[\w-]+\s*\}", "", text)  # IAM policy variables: reported apart
    loop_vars = set()
    for m in re.finditer(r"%\{~?\s*for\s+([A-Za-z_]\w*)(?:\s*,\s*([A-Za-z_]\w*))?\s+in\b", text):
        loop_vars.update(v for v in m.groups() if v)
    names = set()
    for m in re.finditer(r"[$%]\{", text):
        inner = balanced(text, m.end() - 1) or ""
        inner = re.sub(r'"(?:[^"\\]|\\.)*"', '""', inner)
        for im in re.finditer(r"(?<![\w.])([A-Za-z_][\w-]*)(?!\w)(\s*\()?", inner):
            name, call = im.group(1), im.group(2)
            if call or name in TEMPLATE_KEYWORDS or name in loop_vars:
                continue
            names.add(name)
    return names


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def sam_outputs() -> tuple[list[str], str]:
    if not SAM_TEMPLATE.exists():
        return SAM_OUTPUTS, (
            f"{SAM_TEMPLATE.relative_to(REPO)} does not exist: compared with the SAM outputs "
            "this check knows (" + ", ".join(SAM_OUTPUTS) + ")"
        )
    import yaml

    class CfnLoader(yaml.SafeLoader):
        pass

    def any_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_mapping(node, deep=True)

    CfnLoader.add_multi_constructor("!", any_tag)
    with SAM_TEMPLATE.open() as f:
        doc = yaml.load(f, Loader=CfnLoader)  # noqa: S506 (a SafeLoader)
    outputs = list((doc or {}).get("Outputs") or {})
    return outputs, f"read from {SAM_TEMPLATE.relative_to(REPO)}"


# --- checks ------------------------------------------------------------


class Findings:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where, what: str) -> None:
        self.items.append(f"{where}: {what}")
        print(f"  FINDING {where}: {what}")


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def check_modules(findings: Findings) -> None:
    import hcl2

    dirs = sorted({p.parent for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts})
    used_templates: set[Path] = set()
    root_docs: dict[Path, dict] = {}
    for d in dirs:
        print(f"module {rel(d)}:")
        parsed: dict[Path, dict] = {}
        for tf in sorted(d.glob("*.tf")):
            try:
                with tf.open() as f:
                    parsed[tf] = hcl2.load(f)
            except Exception as e:  # a parse error of any kind
                findings.add(rel(tf), f"python-hcl2 cannot parse it: {e}")
        print(f"  parsed {len(parsed)} file(s): {', '.join(p.name for p in parsed)}")
        if d == TERRAFORM:
            root_docs = parsed

        # The module's text outside its variable blocks, for var.NAME.
        used_text = "\n".join(
            s
            for doc in parsed.values()
            for kind, value in doc.items()
            if kind != "variable"
            for s in strings(value)
        )
        variables = outputs = 0
        for tf, doc in parsed.items():
            for name, body in blocks(doc, "variable"):
                variables += 1
                if not unquote(body.get("description") or "").strip():
                    findings.add(rel(tf), f'variable "{name}" has no description')
                if "type" not in body:
                    findings.add(rel(tf), f'variable "{name}" has no type')
                if not re.search(rf"\bvar\.{re.escape(name)}\b", used_text):
                    findings.add(rel(tf), f'variable "{name}" is declared but never used (no var.{name})')
            for name, body in blocks(doc, "output"):
                outputs += 1
                if not unquote(body.get("description") or "").strip():
                    findings.add(rel(tf), f'output "{name}" has no description')
        print(f"  {variables} variable(s) checked: a description, a type, used")
        print(f"  {outputs} output(s) checked: a description")

        calls = 0
        for tf, doc in parsed.items():
            for s in strings(doc):
                for path_expr, keys in templatefile_calls(s):
                    calls += 1
                    if path_expr is None:
                        findings.add(rel(tf), "a templatefile() call this check cannot read")
                        continue
                    path = unquote(path_expr).replace("${path.module}", str(d))
                    if "${" in path or path_expr == path:
                        findings.add(rel(tf), f"templatefile({path_expr}, …): cannot tell which file")
                        continue
                    if not os.path.isabs(path):
                        findings.add(
                            rel(tf),
                            f"templatefile({path_expr}, …): a relative path is read from the working "
                            "directory, not the module's: write ${path.module}/…",
                        )
                        continue
                    template = Path(os.path.normpath(path))
                    used_templates.add(template)
                    if not template.is_file():
                        findings.add(rel(tf), f"templatefile(): {path} does not exist")
                        continue
                    if keys is None:
                        findings.add(rel(tf), f"templatefile({rel(template)}): its variables are not an object literal")
                        continue
                    text = template.read_text()
                    needed = placeholders(text)
                    missing = sorted(needed - keys)
                    for pv in sorted(set(re.findall(r"(?<!\$)\$\{\s*(aws:[\w-]+)\s*\}", text))):
                        findings.add(
                            rel(template),
                            f"${{{pv}}} is an IAM policy variable, which Terraform would read as its own: write $${{{pv}}}",
                        )
                    if missing:
                        findings.add(
                            rel(tf),
                            f"templatefile({rel(template)}) does not pass {', '.join(missing)}",
                        )
                    print(
                        f"  templatefile({rel(template)}): uses {', '.join(sorted(needed)) or 'nothing'}; "
                        f"passes {', '.join(sorted(keys))}"
                    )
                    if template.name.endswith(".json.tftpl") and "%{" not in text.replace("%%{", ""):
                        filled = re.sub(r"(?<!\$)\$\{[^}]*\}", "X", text).replace("$${", "${")
                        try:
                            json.loads(filled)
                        except json.JSONDecodeError as e:
                            findings.add(rel(template), f"is not JSON with its placeholders filled in: {e}")
        print(f"  {calls} templatefile() call(s)")

    for template in sorted(TERRAFORM.rglob("*.tftpl")):
        if template not in used_templates:
            findings.add(rel(template), "no templatefile() loads it")

    expected, source = sam_outputs()
    want = sorted(snake(o) for o in expected)
    have = sorted(name for tf, doc in root_docs.items() for name, _ in blocks(doc, "output"))
    print(f"root module outputs vs the SAM outputs ({source}):")
    for name in sorted(set(want) - set(have)):
        findings.add(rel(TERRAFORM), f"no output {name} (SAM's {expected[[snake(o) for o in expected].index(name)]})")
    for name in sorted(set(have) - set(want)):
        findings.add(rel(TERRAFORM), f"output {name} is not one of the SAM outputs")
    if want == have:
        print(f"  the same: {', '.join(have)}")


def check_fmt(findings: Findings) -> None:
    terraform = shutil.which("terraform")
    if not terraform:
        print("terraform fmt: not run (no terraform binary on the PATH)")
        return
    out = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        findings.add(rel(TERRAFORM), "terraform fmt -check: not formatted\n" + out.stdout)
    else:
        print(f"terraform fmt -check -recursive {rel(TERRAFORM)}: formatted")


def check_checkov(findings: Findings, directory: Path) -> None:
    cmd = [
        *checkov_command(),
        "-d",
        str(directory),
        "--framework",
        "terraform",
        "--compact",
        "--skip-download",  # no call to the vendor's platform (unreachable here)
        "-o",
        "json",
    ]
    shown = f"checkov -d {rel(directory)} --framework terraform"
    env = dict(os.environ, LOG_LEVEL="WARNING", BC_SKIP_MAPPING="TRUE")
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    try:
        reports = json.loads(out.stdout) if out.stdout.strip() else []
    except json.JSONDecodeError:
        findings.add(shown, f"its output is not JSON (exit {out.returncode}):\n{out.stdout}{out.stderr}")
        return
    if isinstance(reports, dict):
        reports = [reports]
    if not reports or all("results" not in r for r in reports):
        findings.add(shown, f"checked nothing (exit {out.returncode}) {out.stderr.strip()}")
        return
    for r in reports:
        summary = r.get("summary", {})
        res = r.get("results", {})
        print(
            f"{shown}: {summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
            f"{summary.get('skipped', 0)} skipped, {summary.get('parsing_errors', 0)} parse errors"
        )
        for c in res.get("skipped_checks", []):
            print(f"  skipped {c['check_id']} on {c['resource']}: {c.get('check_result', {}).get('suppress_comment', '')}")
        for c in res.get("failed_checks", []):
            findings.add(
                f"{os.path.normpath(rel(directory) + c['file_path'])}:{c['file_line_range'][0]}",
                f"checkov {c['check_id']} failed on {c['resource']}: {c['check_name']}",
            )
        if summary.get("parsing_errors"):
            findings.add(shown, f"parse errors in {res.get('parsing_errors') or summary.get('parsing_errors')}")
    if out.returncode not in (0, 1):
        findings.add(shown, f"exited {out.returncode}: {out.stderr.strip()}")


def main() -> int:
    ensure_hcl2()
    findings = Findings()
    print(f"deploy/checks/terraform.py (python-hcl2 {_dist_version('python-hcl2')}, checkov {CHECKOV_VERSION})")
    check_modules(findings)
    check_fmt(findings)
    check_checkov(findings, TERRAFORM)
    check_checkov(findings, EXAMPLE)
    print(
        "terraform validate: not run (it needs `terraform init`, which downloads the "
        "hashicorp/aws provider from the Terraform registry, unreachable here)"
    )
    if findings.items:
        print(f"{len(findings.items)} finding(s)")
        return 1
    print("no finding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
