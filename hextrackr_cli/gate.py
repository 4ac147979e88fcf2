"""The CI gate: does an import's outcome cross the user's severity rules?

Pure: rule parsing (``--fail-on``, ``--fail-scope``, ``--max``, ``--warn-on``), the per-severity counts of one
import (the server's deltas, or the severities of the file sent) and the verdict. No I/O; the commands decide
the gate only after an import *completed* and turn a failed verdict into exit status 6.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from hextrackr_cli.errors import UsageError
from hextrackr_cli.formats.records import SEVERITY_LEVELS

# Most severe first; the normalised severities of records and of the server's deltas.
SEVERITIES: tuple[str, ...] = SEVERITY_LEVELS
# The per-import delta kinds the server reports (docs/wire.md, "Deltas").
DELTA_KINDS: tuple[str, ...] = ("new", "reopened", "unchanged", "resolved")
SCOPE_NEW = "new"  # new + reopened in this import
SCOPE_OPEN = "open"  # findings of this scan that are open after it: new + reopened + unchanged
SCOPES: tuple[str, ...] = (SCOPE_NEW, SCOPE_OPEN)
LEVEL_CHOICES: tuple[str, ...] = tuple(s.lower() for s in SEVERITIES) + ("none",)

PASSED, FAILED, WARNED, OFF = "passed", "failed", "warned", "off"

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def parse_level(text: str, option: str = "--fail-on") -> str | None:
    """``critical|high|medium|low|info|none`` (any case) → the severity name, or None for ``none``."""
    word = text.strip().lower()
    if word == "none":
        return None
    for s in SEVERITIES:
        if s.lower() == word:
            return s
    raise UsageError(f"{option} {text!r}: expected one of {', '.join(LEVEL_CHOICES)}")


def parse_max(text: str) -> tuple[str, int]:
    """``LEVEL=N`` (``--max high=0``) → (severity, N)."""
    level, sep, number = text.partition("=")
    if not sep or not number.strip():
        raise UsageError(f"--max {text!r}: expected LEVEL=N, e.g. --max medium=10")
    sev = parse_level(level, "--max")
    if sev is None:
        raise UsageError(f"--max {text!r}: the level must be a severity ({', '.join(LEVEL_CHOICES[:-1])})")
    try:
        n = int(number.strip())
    except ValueError:
        n = -1
    if n < 0:
        raise UsageError(f"--max {text!r}: N must be a whole number of findings, 0 or more")
    return sev, n


def at_or_above(level: str) -> tuple[str, ...]:
    """The severities an inclusive threshold covers: ``High`` → Critical, High."""
    return SEVERITIES[: _RANK[level] + 1]


@dataclass(frozen=True)
class Rules:
    """The gate of one command, resolved once from flags, environment and profile."""

    fail_on: str | None = None  # inclusive threshold; None = no threshold
    scope: str = SCOPE_NEW
    maxima: tuple[tuple[str, int], ...] = ()  # (severity, N): fail when more than N at exactly that severity
    warn_on: str | None = None  # inclusive threshold that prints and annotates, never fails

    @property
    def active(self) -> bool:
        return self.fail_on is not None or bool(self.maxima) or self.warn_on is not None

    @property
    def fails(self) -> bool:
        """Whether the rules can fail the command at all (``--warn-on`` alone never does)."""
        return self.fail_on is not None or bool(self.maxima)


def make_rules(fail_on: str | None = None, scope: str | None = None, maxima: Iterable[str] = (),
               warn_on: str | None = None) -> Rules:
    """Rules from the option texts (None = not given)."""
    scope_word = (scope or SCOPE_NEW).strip().lower()
    if scope_word not in SCOPES:
        raise UsageError(f"--fail-scope {scope!r}: expected new (new and reopened in this import) or open "
                         "(this scan's findings open after it)")
    parsed: dict[str, int] = {}
    for text in maxima:
        sev, n = parse_max(text)
        parsed[sev] = n  # the last --max of a level wins, like any repeated option
    return Rules(
        fail_on=parse_level(fail_on, "--fail-on") if fail_on else None,
        scope=scope_word,
        maxima=tuple(sorted(parsed.items(), key=lambda kv: _RANK[kv[0]])),
        warn_on=parse_level(warn_on, "--warn-on") if warn_on else None,
    )


def _per_severity(data: Any) -> dict[str, int] | None:
    if not isinstance(data, Mapping):
        return None
    out: dict[str, int] = {}
    for s in SEVERITIES:
        v = data.get(s)
        out[s] = v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0
    return out


@dataclass(frozen=True)
class Counts:
    """Per-severity counts of one import. ``kinds`` holds the server's deltas (new, reopened, unchanged,
    resolved) when it reported them; ``file_open`` the severities of the file sent, where the server says
    nothing (HexTrackr 1.1.x): then only the ``open`` scope is known."""

    kinds: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    file_open: Mapping[str, int] | None = None

    @classmethod
    def from_deltas(cls, deltas: Any) -> "Counts | None":
        """The counts of a wire ``deltas`` object (``{"new": {"High": 2, …, "total": 2}, …}``); None when
        the server sent none or something else."""
        if not isinstance(deltas, Mapping):
            return None
        kinds = {k: _per_severity(deltas.get(k)) for k in DELTA_KINDS}
        if any(v is None for v in kinds.values()):
            return None
        return cls(kinds={k: v for k, v in kinds.items() if v is not None})

    @classmethod
    def from_severities(cls, severities: Mapping[str, int]) -> "Counts":
        """The counts of the file sent (every finding of a scan is open after it)."""
        return cls(file_open=_per_severity(severities))

    def knows(self, scope: str) -> bool:
        return bool(self.kinds) or (scope == SCOPE_OPEN and self.file_open is not None)

    def kind(self, name: str) -> dict[str, int] | None:
        """One delta kind as the server counted it (new, reopened, unchanged, resolved), or ``open`` (this scan's
        findings open after it: new + reopened + unchanged, or the file's severities); None when not known."""
        if name == SCOPE_OPEN and not self.kinds:
            return dict(self.file_open) if self.file_open is not None else None
        if not self.kinds:
            return None
        parts: tuple[str, ...] = ("new", "reopened", "unchanged") if name == SCOPE_OPEN else (name,)
        return {s: sum(self.kinds[p].get(s, 0) for p in parts) for s in SEVERITIES}

    def scope(self, name: str) -> dict[str, int] | None:
        """What the gate counts: scope ``new`` = new + reopened in this import, ``open`` as in ``kind``."""
        if name != SCOPE_NEW:
            return self.kind(name)
        new, back = self.kind("new"), self.kind("reopened")
        if new is None or back is None:
            return None
        return {s: new[s] + back[s] for s in SEVERITIES}

    def to_json(self) -> dict[str, Any]:
        """The NDJSON ``counts``: every known kind and scope, per severity plus ``total``."""
        out: dict[str, Any] = {}
        names = (*DELTA_KINDS, "open") if self.kinds else ("open",)
        for name in names:
            row = self.kind(name)
            if row is not None:
                out[name] = {**row, "total": sum(row.values())}
        return out


@dataclass(frozen=True)
class Verdict:
    """What the gate decided: ``passed|failed|warned|off``, the rules that tripped and the counts that did it."""

    verdict: str
    scope: str = SCOPE_NEW
    rule: str = ""  # the tripped rules, as the user wrote them ("--fail-on high (scope new)")
    offending: Mapping[str, int] = field(default_factory=dict)  # severity → count in scope

    @property
    def failed(self) -> bool:
        return self.verdict == FAILED

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"verdict": self.verdict}
        if self.verdict != OFF:
            obj["scope"] = self.scope
        if self.rule:
            obj["rule"] = self.rule
        if self.offending:
            obj["offending"] = dict(self.offending)
        return obj

    def text(self) -> str:
        """One line for humans: ``gate failed: --fail-on high (scope new): 2 High, 1 Critical``."""
        if self.verdict == OFF:
            return "gate off"
        if self.verdict == PASSED:
            return f"gate passed (scope {self.scope})"
        found = ", ".join(f"{n:,} {s}" for s, n in self.offending.items())
        return f"gate {self.verdict}: {self.rule}" + (f": {found}" if found else "")


def evaluate(rules: Rules, counts: Counts | None) -> Verdict:
    """The verdict of ``rules`` on one completed import's ``counts``.

    ``--fail-on`` trips on any finding at or above its level in scope, ``--max LEVEL=N`` on more than N at
    exactly that level; ``--warn-on`` gives ``warned`` when nothing failed. Without counts for the scope (a
    server that reports none) an active gate cannot pass: it fails naming why.
    """
    if not rules.active:
        return Verdict(OFF)
    scope = rules.scope
    row = counts.scope(scope) if counts is not None else None
    if row is None:
        return Verdict(FAILED if rules.fails else WARNED, scope,
                       f"the server reported no per-severity counts for scope {scope}")
    tripped: list[str] = []
    offending: dict[str, int] = {}
    if rules.fail_on is not None:
        hits = {s: row[s] for s in at_or_above(rules.fail_on) if row[s] > 0}
        if hits:
            tripped.append(f"--fail-on {rules.fail_on.lower()} (scope {scope})")
            offending.update(hits)
    for sev, limit in rules.maxima:
        if row[sev] > limit:
            tripped.append(f"--max {sev.lower()}={limit} (scope {scope})")
            offending[sev] = row[sev]
    if tripped:
        return Verdict(FAILED, scope, "; ".join(tripped), _ordered(offending))
    if rules.warn_on is not None:
        hits = {s: row[s] for s in at_or_above(rules.warn_on) if row[s] > 0}
        if hits:
            return Verdict(WARNED, scope, f"--warn-on {rules.warn_on.lower()} (scope {scope})", hits)
    return Verdict(PASSED, scope)


def _ordered(counts: Mapping[str, int]) -> dict[str, int]:
    return {s: counts[s] for s in SEVERITIES if s in counts}


def severity_line(counts: Counts | None) -> str:
    """The one-line severity table closing the rich view and the plain lines:
    ``severity  Critical 0/1  High 2/5  Medium 0/3  Low 0/0  Info 0/9  (new/open)``; with only the file's
    severities: ``severity (open)  Critical 1  High 5 …``."""
    if counts is None:
        return ""
    new, open_ = counts.scope(SCOPE_NEW), counts.scope(SCOPE_OPEN)
    if open_ is None:
        return ""
    if new is None:
        return "severity (open)  " + "  ".join(f"{s} {open_[s]:,}" for s in SEVERITIES)
    resolved = counts.kind("resolved") or {}
    cells = "  ".join(f"{s} {new[s]:,}/{open_[s]:,}" for s in SEVERITIES)
    gone = sum(resolved.values())
    return f"severity (new/open)  {cells}" + (f"  resolved {gone:,}" if gone else "")
