"""The severity gate and the CI reports, as a pipeline meets them: the real CLI against the real embedded server
(and the HexTrackr 1.1.12 double), exit statuses, NDJSON, JUnit (schema-checked), GitHub and GitLab output."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator

import pytest
import xmlschema

from support.cli import interrupt_when, run_cli, spawn_cli
from support.cli_suite import cli_env
from support.fixtures import big_csv, server  # noqa: F401  (fixtures)

HEADER = "hostname,ip_address,cve,severity,vpr_score,plugin_id,plugin_name,state,first_seen,last_seen\n"
SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent.parent / "data" / "junit.xsd"))


def scan(path: Path, *findings: tuple[str, str, str]) -> Path:
    """A generic CSV of (host, cve, severity) findings."""
    path.write_text(HEADER + "".join(f"{h},,{cve},{sev},,,,ACTIVE,,\n" for h, cve, sev in findings))
    return path


def summary(r: Any) -> dict:
    lines = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert lines and lines[-1]["event"] == "summary", lines[-3:]
    return lines[-1]


BASE = [("h1", "CVE-2024-0001", "High"), ("h1", "CVE-2024-0002", "Medium"), ("h2", "CVE-2024-0003", "Low")]


def test_fail_on_high_exits_6_on_new_highs_0_on_a_reimport_and_6_again_with_scope_open(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    first = scan(tmp_path / "acme_scan.csv", *BASE)
    r = run_cli(["--output", "json", "import", "--fail-on", "high", str(first)], env)
    assert r.returncode == 6, r.stderr.decode()
    s = summary(r)
    assert s["outcome"] == "completed" and s["exitCode"] == 6
    assert s["gate"] == {"verdict": "failed", "scope": "new", "rule": "--fail-on high (scope new)",
                         "offending": {"High": 1}}
    assert s["counts"]["new"] == {"Critical": 0, "High": 1, "Medium": 1, "Low": 1, "Info": 0, "total": 3}
    err = r.stderr.decode()
    assert "severity (new/open)  Critical 0/0  High 1/1  Medium 1/1  Low 1/1  Info 0/0" in err
    assert "gate failed: --fail-on high (scope new): 1 High (exit 6)" in err

    # the same scan again: nothing new, the gate passes and every severity is still shown
    r = run_cli(["--output", "plain", "import", "--fail-on", "high", str(first)], env)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stderr.decode().strip().splitlines()
    assert lines[-2] == "severity (new/open)  Critical 0/0  High 0/1  Medium 0/1  Low 0/1  Info 0/0"
    assert lines[-1] == "gate passed (scope new)"

    # scope open: the High this scan keeps open trips it
    r = run_cli(["--output", "json", "import", "--fail-on", "high", "--fail-scope", "open", str(first)], env)
    assert r.returncode == 6 and summary(r)["gate"]["offending"] == {"High": 1}


def test_reopened_findings_count_as_new(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    assert run_cli(["import", str(scan(tmp_path / "acme_1.csv", *BASE))], env).returncode == 0
    assert run_cli(["import", str(scan(tmp_path / "acme_2.csv", *BASE[1:]))], env).returncode == 0  # High resolved
    r = run_cli(["--output", "json", "import", "--fail-on", "high", str(scan(tmp_path / "acme_3.csv", *BASE))], env)
    assert r.returncode == 6
    s = summary(r)
    assert s["counts"]["reopened"]["High"] == 1 and s["counts"]["new"]["total"] == 0


def test_max_fails_only_above_n(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    ten = [(f"h{i}", f"CVE-2024-{i:04d}", "Medium") for i in range(10)]
    r = run_cli(["import", "--max", "medium=10", str(scan(tmp_path / "acme_a.csv", *ten))], env)
    assert r.returncode == 0, r.stderr.decode()
    eleven = scan(tmp_path / "acme_b.csv", *ten, ("h10", "CVE-2024-0010", "Medium"))
    r = run_cli(["--output", "json", "import", "--max", "medium=10", "--fail-scope", "open", str(eleven)], env)
    assert r.returncode == 6
    assert summary(r)["gate"] == {"verdict": "failed", "scope": "open", "rule": "--max medium=10 (scope open)",
                                  "offending": {"Medium": 11}}


def test_warn_on_warns_but_exits_0(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", "--warn-on", "low", str(scan(tmp_path / "acme.csv", *BASE))], env)
    assert r.returncode == 0
    assert summary(r)["gate"]["verdict"] == "warned"
    assert "gate warned: --warn-on low (scope new): 1 High, 1 Medium, 1 Low" in r.stderr.decode()


def test_gate_from_the_environment_and_from_a_profile(server, tmp_path):
    first = scan(tmp_path / "acme.csv", *BASE)
    env = cli_env(tmp_path, server.url, HEXTRACKR_FAIL_ON="medium")
    assert run_cli(["import", str(first)], env).returncode == 6
    cfg = tmp_path / "cfg" / "hextrackr"
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('[profiles.default]\nfail_on = "low"\nfail_scope = "open"\n')
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", str(first)], env)
    assert r.returncode == 6 and summary(r)["gate"]["rule"] == "--fail-on low (scope open)"
    r = run_cli(["import", "--fail-on", "none", str(first)], env)  # the flag wins over the profile
    assert r.returncode == 0, r.stderr.decode()


def test_a_failed_import_keeps_exit_1_and_is_never_a_tripped_gate(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    bad = scan(tmp_path / "acme.csv", *BASE, ("h3", "CVE-2024-0009", "Catastrophic"))
    r = run_cli(["--output", "json", "import", "--fail-on", "info", str(bad)], env)
    assert r.returncode == 1, r.stderr.decode()
    s = summary(r)
    assert s["outcome"] == "failed" and "gate" not in s
    assert "gate" not in r.stderr.decode()


def test_with_several_files_a_failure_outranks_a_tripped_gate(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    highs = scan(tmp_path / "acme_a.csv", *BASE)
    bad = scan(tmp_path / "globex_b.csv", ("h9", "CVE-2024-0009", "Catastrophic"))
    r = run_cli(["import", "--fail-on", "high", str(highs), str(bad)], env)
    assert r.returncode == 1, r.stderr.decode()
    clean = scan(tmp_path / "initech_c.csv", ("h8", "CVE-2024-0008", "Low"))
    r = run_cli(["import", "--fail-on", "high", str(clean), str(scan(tmp_path / "umbrella_d.csv", *BASE))], env)
    assert r.returncode == 6, r.stderr.decode()


def test_ctrl_c_still_exits_130_and_timeout_still_5_with_a_gate(server, big_csv, tmp_path):
    env = cli_env(tmp_path, server.url)
    proc = spawn_cli(["--output", "json", "import", "--fail-on", "high", str(big_csv)], env)
    _, out, err = interrupt_when(proc, lambda o: o.get("event") == "uploaded")
    assert proc.returncode == 130, err
    assert "gate" not in json.loads(out.splitlines()[-1])
    r = run_cli(["--output", "json", "import", "--fail-on", "high", "--timeout", "0.5", str(big_csv)], env)
    assert r.returncode == 5 and summary(r)["outcome"] == "timeout"


def test_a_gate_flag_with_detach_or_tickets_is_refused_before_anything_is_sent(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    first = scan(tmp_path / "acme.csv", *BASE)
    r = run_cli(["import", "--detach", "--fail-on", "high", str(first)], env)
    assert r.returncode == 2 and "--fail-on: --detach does not wait for the import to end" in r.stderr.decode()
    r = run_cli(["import", "--max", "high", str(first)], env)
    assert r.returncode == 2 and "--max 'high': expected LEVEL=N" in r.stderr.decode()
    r = run_cli(["import", "--junit", str(tmp_path / "missing" / "j.xml"), str(first)], env)
    assert r.returncode == 2 and "does not exist" in r.stderr.decode()
    r = run_cli(["imports", "--json"], env)
    assert json.loads(r.stdout)["total"] == 0


def test_junit_and_markdown_reports(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    junit, md = tmp_path / "report.xml", tmp_path / "summary.md"
    bad = scan(tmp_path / "globex.csv", ("h9", "CVE-2024-0009", "Catastrophic"))
    r = run_cli(["import", "--fail-on", "high", "--junit", str(junit), "--summary-md", str(md),
                 str(scan(tmp_path / "acme.csv", *BASE)), str(bad)], env)
    assert r.returncode == 1
    SCHEMA.validate(str(junit))
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("hextrackr import", "2", "2")
    cases = {c.get("name"): c.find("failure") for c in suite.findall("testcase")}
    assert cases["acme.csv"].get("type") == "gate" and "1 High" in cases["acme.csv"].get("message")
    assert cases["globex.csv"].get("type") == "failed"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["acme.csv:new.High"] == "1" and props["acme.csv:gate"] == "failed"
    text = md.read_text()
    assert "| acme.csv | completed | **failed**: --fail-on high (scope new) |" in text
    assert "| High | 1 | 0 | 0 | 1 |" in text and "| globex.csv | failed |" in text


def test_github_actions_gets_a_step_summary_and_error_lines(server, tmp_path):
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n")
    env = cli_env(tmp_path, server.url, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(step))
    first = scan(tmp_path / "acme.csv", *BASE)
    r = run_cli(["--output", "json", "import", "--fail-on", "high", str(first)], env)
    assert r.returncode == 6
    err = r.stderr.decode()
    assert "::error title=hextrackr%3A severity gate failed::acme.csv: gate failed: --fail-on high (scope new): 1 High" in err
    assert all(not line.startswith("::") for line in r.stdout.decode().splitlines())  # stdout stays NDJSON
    text = step.read_text()
    assert text.startswith("earlier step\n") and "### `hextrackr import`" in text and "| High | 1 | 0 | 0 | 1 |" in text
    r = run_cli(["import", "--warn-on", "high", str(first)], env)
    assert r.returncode == 0 and "::warning title=hextrackr%3A severity warning::" not in r.stderr.decode()
    r = run_cli(["import", "--warn-on", "high", "--fail-scope", "open", str(first)], env)
    assert r.returncode == 0 and "::warning title=hextrackr%3A severity warning::acme.csv" in r.stderr.decode()
    size = step.stat().st_size
    r = run_cli(["import", "--no-ci-annotations", "--fail-on", "high", "--fail-scope", "open", str(first)], env)
    assert r.returncode == 6 and "::error" not in r.stderr.decode() and step.stat().st_size == size


def test_gitlab_ci_wraps_each_file_in_a_collapsible_section(server, tmp_path):
    env = cli_env(tmp_path, server.url, GITLAB_CI="true")
    a, b = scan(tmp_path / "acme.csv", *BASE), scan(tmp_path / "globex.csv", ("h9", "CVE-2024-0009", "Low"))
    r = run_cli(["--output", "plain", "import", str(a), str(b)], env)
    assert r.returncode == 0
    err = r.stderr.decode()
    starts = re.findall(r"\x1b\[0Ksection_start:\d+:(hextrackr_\d_[\w.-]+)\[collapsed=true\]\r\x1b\[0K", err)
    ends = re.findall(r"\x1b\[0Ksection_end:\d+:(hextrackr_\d_[\w.-]+)\r\x1b\[0K", err)
    assert starts == ends == ["hextrackr_1_acme.csv", "hextrackr_2_globex.csv"]
    assert err.index("section_end:") < err.index("completed acme.csv")  # the outcome stays visible when collapsed
    r = run_cli(["--output", "plain", "import", "--no-ci-annotations", str(a)], env)
    assert "section_start" not in r.stderr.decode()


# --------------------------------------------------------------------------- HexTrackr 1.1.x
@pytest.fixture
def double() -> Iterator[Any]:
    from support.hx11_double import HX11Double

    hx = HX11Double(users={"analyst": "pw"}, rate_limit=None, step_delay=0.01).start()
    yield hx
    hx.stop()


def test_against_hextrackr_11_open_is_counted_from_the_file_and_new_is_refused(double, tmp_path):
    env = cli_env(tmp_path, double.url, token=None, HEXTRACKR_USERNAME="analyst", HEXTRACKR_PASSWORD="pw")
    first = scan(tmp_path / "acme.csv", *BASE)
    r = run_cli(["import", "--fail-on", "high", str(first)], env)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "--fail-scope new cannot be decided against HexTrackr 1.1.x" in err and "--fail-scope open" in err
    assert double.history == []  # refused before the upload
    r = run_cli(["--output", "json", "import", "--fail-on", "medium", "--fail-scope", "open", str(first)], env)
    assert r.returncode == 6, r.stderr.decode()
    s = summary(r)
    assert s["gate"]["offending"] == {"High": 1, "Medium": 1}
    assert s["counts"] == {"open": {"Critical": 0, "High": 1, "Medium": 1, "Low": 1, "Info": 0, "total": 3}}
    r = run_cli(["import", "--fail-on", "critical", "--fail-scope", "open", str(first)], env)
    assert r.returncode == 0, r.stderr.decode()


def test_the_rich_view_ends_with_the_severity_table_and_a_red_tripped_gate(server, tmp_path):
    import os
    import pty
    import select
    import sys
    import time

    env = cli_env(tmp_path, server.url, TERM="xterm-256color")
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI on a terminal (rich output, colour)
        os.execve(sys.executable, [sys.executable, "-m", "hextrackr_cli", "import", "--fail-on", "high",
                                   str(scan(tmp_path / "acme.csv", *BASE))], env)
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(st) == 6, out
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "severity (new/open)  Critical 0/0  High 1/1  Medium 1/1  Low 1/1  Info 0/0" in plain
    assert re.search(r"\x1b\[1;31mgate failed: --fail-on high \(scope new\): 1 High \(exit 6\)", out), out[-400:]


def test_watch_decides_the_gate_and_status_and_imports_show_the_deltas(server, tmp_path):
    env = cli_env(tmp_path, server.url)
    r = run_cli(["--output", "json", "import", str(scan(tmp_path / "acme.csv", *BASE))], env)
    sid = summary(r)["sessionId"]
    r = run_cli(["--output", "json", "watch", "--fail-on", "medium", sid], env)
    assert r.returncode == 6 and summary(r)["gate"]["offending"] == {"High": 1, "Medium": 1}
    assert run_cli(["watch", "--fail-on", "critical", sid], env).returncode == 0
    r = run_cli(["status", sid], env)
    assert "severity (new/open)  Critical 0/0  High 1/1  Medium 1/1  Low 1/1  Info 0/0" in r.stdout.decode()
    table = run_cli(["imports"], env).stdout.decode().splitlines()
    assert "NEW C/H/M/L/I" in table[0] and "0/1/1/1/0" in table[1]
