"""The severity gate: rule parsing and the verdict on one import's per-severity counts."""

from __future__ import annotations

import pytest

from hextrackr_cli import gate as g
from hextrackr_cli.errors import UsageError


def deltas(new=None, reopened=None, unchanged=None, resolved=None):
    def row(d):
        d = dict(d or {})
        return {**{s: d.get(s, 0) for s in g.SEVERITIES}, "total": sum(d.values())}

    return {"new": row(new), "reopened": row(reopened), "unchanged": row(unchanged), "resolved": row(resolved)}


def counts(**kw):
    c = g.Counts.from_deltas(deltas(**kw))
    assert c is not None
    return c


@pytest.mark.parametrize("text, level", [("high", "High"), ("CRITICAL", "Critical"), (" Info ", "Info"),
                                         ("none", None), ("None", None)])
def test_levels_are_read_in_any_case(text, level):
    assert g.parse_level(text) == level


@pytest.mark.parametrize("bad", ["hgh", "", "severe", "4"])
def test_an_unknown_level_is_a_usage_error_naming_the_option_and_the_choices(bad):
    with pytest.raises(UsageError) as exc:
        g.parse_level(bad, "--warn-on")
    assert "--warn-on" in str(exc.value) and "critical, high, medium, low, info, none" in str(exc.value)


@pytest.mark.parametrize("bad", ["medium", "medium=", "=3", "medium=-1", "medium=ten", "none=3", "medium=1.5"])
def test_max_wants_level_equals_a_whole_number(bad):
    with pytest.raises(UsageError) as exc:
        g.parse_max(bad)
    assert "--max" in str(exc.value)


def test_no_rules_means_the_gate_is_off():
    rules = g.make_rules()
    assert not rules.active
    assert g.evaluate(rules, counts(new={"Critical": 9})).verdict == g.OFF


def test_fail_on_is_an_inclusive_threshold_over_new_and_reopened():
    rules = g.make_rules(fail_on="high")
    v = g.evaluate(rules, counts(new={"Critical": 1, "Medium": 5}, reopened={"High": 2}))
    assert v.verdict == g.FAILED
    assert v.offending == {"Critical": 1, "High": 2}  # Medium is below the threshold
    assert v.rule == "--fail-on high (scope new)"
    assert g.evaluate(rules, counts(new={"Medium": 5}, unchanged={"Critical": 3})).verdict == g.PASSED


def test_scope_open_also_counts_findings_that_stayed_open():
    rules = g.make_rules(fail_on="high", scope="open")
    v = g.evaluate(rules, counts(unchanged={"High": 4}, resolved={"Critical": 2}))
    assert v.verdict == g.FAILED and v.offending == {"High": 4}
    assert g.evaluate(rules, counts(resolved={"Critical": 2})).verdict == g.PASSED  # resolved is not open


def test_max_fails_only_above_n_at_exactly_that_level():
    rules = g.make_rules(maxima=["medium=10"])
    assert g.evaluate(rules, counts(new={"Medium": 10, "Critical": 50})).verdict == g.PASSED
    v = g.evaluate(rules, counts(new={"Medium": 11}))
    assert (v.verdict, v.rule, dict(v.offending)) == (g.FAILED, "--max medium=10 (scope new)", {"Medium": 11})


def test_the_last_max_of_a_level_wins_and_several_rules_are_named_together():
    rules = g.make_rules(fail_on="critical", maxima=["low=0", "low=2", "high=1"])
    assert rules.maxima == (("High", 1), ("Low", 2))
    v = g.evaluate(rules, counts(new={"Critical": 1, "High": 2, "Low": 3}))
    assert v.rule == "--fail-on critical (scope new); --max high=1 (scope new); --max low=2 (scope new)"
    assert list(v.offending) == ["Critical", "High", "Low"]  # most severe first


def test_warn_on_warns_and_never_fails():
    rules = g.make_rules(warn_on="medium")
    assert not rules.fails
    v = g.evaluate(rules, counts(new={"Medium": 1}))
    assert v.verdict == g.WARNED and v.offending == {"Medium": 1}
    assert g.evaluate(rules, counts(new={"Low": 7})).verdict == g.PASSED


def test_a_failure_outranks_a_warning():
    rules = g.make_rules(fail_on="critical", warn_on="low")
    assert g.evaluate(rules, counts(new={"Critical": 1, "Low": 1})).verdict == g.FAILED
    assert g.evaluate(rules, counts(new={"Low": 1})).verdict == g.WARNED


def test_an_unknown_scope_is_refused():
    with pytest.raises(UsageError) as exc:
        g.make_rules(fail_on="high", scope="all")
    assert "--fail-scope" in str(exc.value) and "open" in str(exc.value)


def test_counts_from_the_file_know_only_the_open_scope():
    c = g.Counts.from_severities({"High": 3, "Low": 1})
    assert c.knows("open") and not c.knows("new")
    assert g.evaluate(g.make_rules(fail_on="high", scope="open"), c).offending == {"High": 3}
    v = g.evaluate(g.make_rules(fail_on="high"), c)  # scope new cannot be counted: the gate cannot pass
    assert v.verdict == g.FAILED and "no per-severity counts for scope new" in v.rule
    assert c.to_json() == {"open": {"Critical": 0, "High": 3, "Medium": 0, "Low": 1, "Info": 0, "total": 4}}


def test_malformed_deltas_are_no_counts():
    assert g.Counts.from_deltas(None) is None
    assert g.Counts.from_deltas({"new": {}}) is None  # a kind missing
    c = g.Counts.from_deltas({**deltas(), "new": {"High": "2", "Low": -1, "Info": True}})
    assert c is not None and c.kind("new") == dict.fromkeys(g.SEVERITIES, 0)


def test_counts_json_has_every_kind_and_scope_with_totals():
    c = counts(new={"High": 2}, reopened={"High": 1}, unchanged={"Low": 4}, resolved={"Info": 5})
    j = c.to_json()
    assert list(j) == ["new", "reopened", "unchanged", "resolved", "open"]
    assert j["open"] == {"Critical": 0, "High": 3, "Medium": 0, "Low": 4, "Info": 0, "total": 7}
    assert j["new"]["High"] == 2 and j["reopened"]["High"] == 1  # the kinds as counted, not the scope
    assert c.scope("new") == {"Critical": 0, "High": 3, "Medium": 0, "Low": 0, "Info": 0}
    assert j["resolved"]["total"] == 5


def test_verdict_json_and_text_name_the_rule_and_counts():
    v = g.evaluate(g.make_rules(fail_on="high"), counts(new={"High": 2, "Critical": 1}))
    assert v.to_json() == {"verdict": "failed", "scope": "new", "rule": "--fail-on high (scope new)",
                           "offending": {"Critical": 1, "High": 2}}
    assert v.text() == "gate failed: --fail-on high (scope new): 1 Critical, 2 High"
    assert g.Verdict(g.OFF).to_json() == {"verdict": "off"}


def test_severity_line_shows_every_severity_whatever_the_gate():
    line = g.severity_line(counts(new={"High": 2}, unchanged={"High": 1, "Info": 9}, resolved={"Low": 3}))
    assert line == ("severity (new/open)  Critical 0/0  High 2/3  Medium 0/0  Low 0/0  Info 0/9  resolved 3")
    assert g.severity_line(g.Counts.from_severities({"Medium": 1})).startswith("severity (open)  Critical 0")
    assert g.severity_line(None) == ""
