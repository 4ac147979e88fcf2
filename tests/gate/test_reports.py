"""CI reports: JUnit XML (schema-validated), Markdown summary, GitHub annotations/step summary, GitLab sections."""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from hextrackr_cli import gate as g
from hextrackr_cli import events as ev
from hextrackr_cli.render import ci
from hextrackr_cli.render.plain import PlainRenderer
from hextrackr_cli.render.reports import FileReport, junit_xml, markdown_summary, write_report

SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "data" / "junit.xsd"))


def _row(d):
    return {**{s: d.get(s, 0) for s in g.SEVERITIES}, "total": sum(d.values())}


def counts(new=None, reopened=None, unchanged=None, resolved=None):
    c = g.Counts.from_deltas({"new": _row(new or {}), "reopened": _row(reopened or {}),
                              "unchanged": _row(unchanged or {}), "resolved": _row(resolved or {})})
    assert c is not None
    return c


def reports():
    high = counts(new={"High": 2, "Low": 1}, unchanged={"Medium": 4}, resolved={"Info": 3})
    rules = g.make_rules(fail_on="high")
    return [
        FileReport("scan a|b.csv", "completed", 6, "completed scan a|b.csv: 7 rows", high, g.evaluate(rules, high),
                   1.25, "http://127.0.0.1:1/imports/s1", "s1", 7),
        FileReport("clean.csv", "completed", 0, "completed clean.csv: 1 rows", counts(unchanged={"Low": 1}),
                   g.evaluate(rules, counts(unchanged={"Low": 1})), 0.5, None, "s2", 8),
        FileReport("broken.csv", "failed", 1, "failed broken.csv: database is locked <&>", None, g.Verdict(g.OFF),
                   0.1, None, "s3"),
    ]


def test_junit_is_valid_against_the_schema_and_tells_each_file():
    text = junit_xml("hextrackr import", reports(), timestamp=0)
    SCHEMA.validate(text)  # raises with the offending path when it is not
    root = ET.fromstring(text)
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "hextrackr import"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"scan a|b.csv", "clean.csv", "broken.csv"}
    gate_failure = cases["scan a|b.csv"].find("failure")
    assert gate_failure is not None and gate_failure.get("type") == "gate"
    assert "--fail-on high (scope new): 2 High" in gate_failure.get("message")
    assert "new 0/2/0/1/0" in gate_failure.get("message")  # the counts in the message
    assert cases["clean.csv"].find("failure") is None
    broken = cases["broken.csv"].find("failure")
    assert broken.get("type") == "failed" and "database is locked <&>" in broken.get("message")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["scan a|b.csv:new.High"] == "2"
    assert props["scan a|b.csv:open.Medium"] == "4"
    assert props["scan a|b.csv:resolved.total"] == "3"
    assert props["scan a|b.csv:gate"] == "failed" and props["broken.csv:outcome"] == "failed"


def test_junit_of_a_passing_run_has_no_failure():
    ok = reports()[1]
    root = ET.fromstring(junit_xml("hextrackr watch", [ok]))
    SCHEMA.validate(root)
    assert root.find("testsuite").get("failures") == "0" and root.find(".//failure") is None


def test_the_schema_does_catch_a_broken_report():
    bad = junit_xml("hextrackr import", reports()).replace(' failures="2"', "", 1)
    assert not SCHEMA.is_valid(bad.replace(' failures="2"', ""))


def test_markdown_has_the_outcome_table_the_severity_tables_and_the_browser_view():
    md = markdown_summary("hextrackr import", reports())
    assert "| scan a\\|b.csv | completed | **failed**: --fail-on high (scope new) | 1.2s |" in md
    assert "| clean.csv | completed | passed | 500ms |" in md
    assert "| severity | new | reopened | resolved | open |" in md
    assert "| High | 2 | 0 | 0 | 2 |" in md
    assert "| Medium | 0 | 0 | 0 | 4 |" in md
    assert "| Info | 0 | 0 | 3 | 0 |" in md
    assert "| **total** | 3 | 0 | 3 | 7 |" in md
    assert "[browser view](http://127.0.0.1:1/imports/s1)" in md
    assert "no per-severity counts reported" in md  # the failed import


def test_markdown_from_the_files_severities_shows_only_open():
    r = FileReport("f.csv", "completed", 0, "", g.Counts.from_severities({"High": 1}), g.Verdict(g.PASSED, "open"))
    md = markdown_summary("hextrackr import", [r])
    assert "| severity | open |" in md and "| High | 1 |" in md and "counted from the file sent" in md


def test_github_annotations_for_a_tripped_gate_a_failed_import_and_a_warning():
    warn = counts(new={"Medium": 1})
    rs = [*reports(), FileReport("w.csv", "completed", 0, "", warn, g.evaluate(g.make_rules(warn_on="medium"), warn))]
    lines = ci.github_annotations(rs)
    assert lines[0] == ("::error title=hextrackr%3A severity gate failed::scan a|b.csv: gate failed: "
                        "--fail-on high (scope new): 2 High")
    assert lines[1].startswith("::error title=hextrackr%3A import failed::broken.csv: failed broken.csv")
    assert lines[2] == "::warning title=hextrackr%3A severity warning::w.csv: gate warned: --warn-on medium (scope new): 1 Medium"
    assert len(lines) == 3  # the clean file is not annotated


def test_annotation_data_cannot_inject_a_second_command():
    r = FileReport("x\n::error::forged.csv", "failed", 1, "bad\r\n::set-env name=A::b")
    (line,) = ci.github_annotations([r])
    assert "\n" not in line and "\r" not in line and "%0A::error::forged" in line


def test_step_summary_is_appended_and_kept_under_the_limit(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("# earlier step\n")
    assert ci.append_step_summary(str(path), "### ours\n")
    assert path.read_text() == "# earlier step\n\n### ours\n"
    big = "| row | é |\n" * 20_000
    assert ci.append_step_summary(str(path), big, limit=64 * 1024)
    data = path.read_bytes()
    assert len(data) < 64 * 1024
    assert data.decode("utf-8").endswith("(summary cut here: GitHub keeps at most 1 MiB of step summary)\n")
    assert not ci.append_step_summary(str(path), big, limit=len(data) + 10)  # no room left: nothing written
    assert len(path.read_bytes()) == len(data)


@pytest.mark.parametrize("env, expected", [({"GITHUB_ACTIONS": "true"}, "github"), ({"GITLAB_CI": "true"}, "gitlab"),
                                           ({"GITHUB_ACTIONS": "false", "CI": "true"}, None), ({}, None)])
def test_the_ci_system_is_read_from_the_environment(env, expected):
    assert ci.ci_system(env) == expected


def test_gitlab_sections_wrap_each_files_plain_lines():
    out = io.StringIO()
    r = ci.GitLabSections(PlainRenderer(out), out, clock=lambda: 1700000000)
    for name, sid in (("scan one.csv", "s1"), ("two.csv", "s2")):
        r.handle(ev.Started("Importing vulnerabilities", sid, name, 10, "http://x"))
        r.handle(ev.Progress({"sessionId": sid, "type": "loading", "progress": 40, "message": "Loading"}))
        r.handle(ev.Outcome("completed", sid, 0, summary={"rows": 3}))
    r.close()
    lines = out.getvalue().split("\n")  # not splitlines(): the markers hold a \r
    starts = [i for i, line in enumerate(lines) if "section_start:1700000000:" in line]
    ends = [i for i, line in enumerate(lines) if "section_end:1700000000:" in line]
    assert len(starts) == len(ends) == 2
    assert lines[starts[0]] == ("\x1b[0Ksection_start:1700000000:hextrackr_1_scan_one.csv[collapsed=true]\r\x1b[0K"
                                "Importing vulnerabilities scan one.csv")
    assert lines[ends[1]] == "\x1b[0Ksection_end:1700000000:hextrackr_2_two.csv\r\x1b[0K"
    assert starts[0] < ends[0] < starts[1] < ends[1]
    assert "Loading" in "\n".join(lines[starts[0]:ends[0]])
    assert lines[ends[0] + 1].startswith("completed scan one.csv")  # the summary stays visible when collapsed


def test_write_report_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "junit.xml"
    write_report(target, "<x/>")
    assert target.read_text() == "<x/>" and os.listdir(tmp_path) == ["junit.xml"]
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "missing" / "j.xml", "<x/>")
