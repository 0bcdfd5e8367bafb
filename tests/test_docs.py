"""The docs say what the code knows: every reject code, setting, event field and link, read from the code.

Each list below comes from the shipper itself (the contract's tables, shipper.names, the package's source), never
from a copy kept here, so a code, variable or field added to the code fails this test until it is
documented. The bundled sample's readable copy is checked against the Kinesis sample it was made from.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shipper.contract import COMMON_FIELDS, EVENT_TYPES, TYPE_FIELDS
from shipper.names import REJECT_CODES

from exports import write_sample_text

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PACKAGE = ROOT / "shipper"

_VARIABLE = re.compile(r"\bSHIPPER_[A-Z0-9_]*[A-Z0-9]\b")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def variables_in_source() -> set[str]:
    """Every SHIPPER_* environment variable named in the package's source (`SHIPPER_METRICS_*` is not one)."""
    return {name for path in PACKAGE.rglob("*.py") for name in _VARIABLE.findall(path.read_text(encoding="utf-8"))}


def flags_in_source() -> set[str]:
    """Every command-line flag the package's commands define (`add_argument("--name", ...)`)."""
    flags: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Call) and _called(node) == "add_argument":
                flags.update(
                    arg.value for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("--")
                )
    return flags


def _table_names(text: str) -> set[str]:
    """The `backticked` names in the rows of a page's markdown tables."""
    rows = (line for line in text.splitlines() if line.lstrip().startswith("|"))
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row)}


def _sections(text: str) -> dict[str, str]:
    """Level-2 and level-3 sections of a page by their heading, with the backticks of the heading removed."""
    parts = re.split(r"^#{2,3} +(.+)$", text, flags=re.MULTILINE)
    return {heading.strip().strip("`"): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_reject_code_is_explained_in_troubleshooting():
    codes = set(REJECT_CODES)
    documented = _table_names((DOCS / "troubleshooting.md").read_text(encoding="utf-8"))
    assert sorted(codes - documented) == []


def test_every_environment_variable_is_in_the_configuration_table():
    variables = variables_in_source()
    assert {"SHIPPER_SINKS", "SHIPPER_TIMEOUT_MARGIN_S", "SHIPPER_METRICS_PREFIX"} <= variables, variables
    documented = _table_names((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert sorted(variables - documented) == []


def test_every_flag_is_in_the_configuration_table():
    flags = flags_in_source()
    assert {"--sink", "--stream", "--destination-arn", "--metrics-port"} <= flags, flags
    documented = {name.split()[0] for name in _table_names((DOCS / "configuration.md").read_text(encoding="utf-8"))}
    assert sorted(flags - documented) == []


def test_every_event_type_and_field_of_the_contract_is_documented():
    sections = _sections((DOCS / "events.md").read_text(encoding="utf-8"))
    missing = [f"common field {name}" for name in COMMON_FIELDS if name not in _table_names(sections["Common fields"])]
    for event_type in EVENT_TYPES:
        if event_type not in sections:
            missing.append(f"section for type {event_type}")
            continue
        fields = _table_names(sections[event_type])
        missing.extend(f"{event_type}.{name}" for name in TYPE_FIELDS[event_type] if name not in fields)
    assert missing == []


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings."""
    anchors = set()
    for heading in re.findall(r"^#+ +(.+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_every_relative_link_points_at_a_file_that_exists():
    broken = []
    for page in _pages():
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_readme_opens_with_the_two_commands_and_stays_short():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```")[1]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [["make", "run"], ["make", "test"]]
    assert text.index("```") < text.index("\n## ")
    assert len(text.splitlines()) <= 150
    # A clone has no ../shared/; the docs describe the shipper, not how it was built.
    assert not re.search(r"\.\./shared|design\.md", "".join(page.read_text(encoding="utf-8") for page in _pages()))


@pytest.fixture(scope="module")
def sample_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`shipper run` on the bundled Kinesis sample and on its `aws logs tail` copy: the JSON reports."""
    reports = {}
    for name in ("sample", "sample-text"):
        report = tmp_path_factory.mktemp(name) / "report.json"
        completed = subprocess.run(
            [sys.executable, "-m", "shipper.cli", "run", f"examples/{name}", "--sink", "null", "--report", str(report)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        reports[name] = orjson.loads(report.read_bytes())
    return reports


def test_the_readable_sample_reports_what_the_kinesis_sample_does(sample_reports):
    def per_function(report: dict) -> dict[str, tuple[int, int, int, int, int]]:
        return {
            row["function"]: (
                row["invocations"],
                row["cold_starts"],
                row["timeouts"],
                row["out_of_memory"],
                sum(row["errors"].values()),
            )
            for row in report["functions"]
        }

    kinesis, text = per_function(sample_reports["sample"]), per_function(sample_reports["sample-text"])
    assert len(kinesis) >= 5 and sum(counts[0] for counts in kinesis.values()) > 100
    assert text == kinesis
    assert sample_reports["sample-text"]["run"]["formats"] == {
        "tail": len(list((ROOT / "examples/sample-text").rglob("*.log")))
    }


def test_the_readable_sample_is_what_the_generator_writes(tmp_path):
    written = {Path(path).relative_to(tmp_path): Path(path).read_bytes() for path in write_sample_text(str(tmp_path))}
    bundled = ROOT / "examples" / "sample-text"
    assert {path.relative_to(bundled) for path in bundled.rglob("*") if path.is_file()} == set(written)
    assert all((bundled / path).read_bytes() == body for path, body in written.items())


def _exit_statuses(text: str) -> set[int]:
    """The statuses in the first column of a page's exit-status table (`| 3 | ... |`)."""
    return {int(number) for number in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}


def test_every_exit_status_of_run_is_in_its_tables():
    from shipper import runner

    statuses = {value for name, value in vars(runner).items() if name.startswith("EXIT_")}
    assert {0, 1, 2, 3, 130} <= statuses, statuses
    for page in ("run.md", "troubleshooting.md"):
        assert _exit_statuses((DOCS / page).read_text(encoding="utf-8")) == statuses, page


def test_the_stopping_and_deadline_figures_are_the_codes():
    from shipper.handler import ANSWER_RESERVE_S
    from shipper.stopping import SHUTDOWN_GRACE_S

    delivery = (DOCS / "delivery.md").read_text(encoding="utf-8")
    assert f"{SHUTDOWN_GRACE_S:g} s more (`SHUTDOWN_GRACE_S`)" in delivery
    assert f"{ANSWER_RESERVE_S:g} s (`ANSWER_RESERVE_S`)" in delivery
