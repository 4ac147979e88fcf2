"""The gate and the CI reports of one ``import`` or ``watch``: decided per file, written once at the end.

The gate is decided only on an import that *completed* (``decide``, run by the Follower before the outcome is
shown): a failed, cancelled, timed-out or interrupted import keeps its own exit status, and a tripped gate
turns a completed import's 0 into 6. At the end ``finish`` writes ``--junit`` / ``--summary-md`` and, inside
GitHub Actions, the step summary and the ``::error``/``::warning`` lines.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass, replace
from typing import IO, Any, Callable, Mapping

from hextrackr_cli import gate, protocol
from hextrackr_cli.errors import ExitStatus, UsageError


@dataclass(frozen=True)
class ReportOptions:
    """``--junit FILE``, ``--summary-md FILE``, ``--no-ci-annotations``."""

    junit: str | None = None
    summary_md: str | None = None
    ci_annotations: bool = True

    def check(self) -> None:
        """A report that could not be written is refused before anything is sent."""
        for flag, path in (("--junit", self.junit), ("--summary-md", self.summary_md)):
            if path is None:
                continue
            folder = os.path.dirname(os.path.abspath(path))
            if os.path.isdir(path):
                raise UsageError(f"{flag} {path}: is a directory; name the file to write")
            if not os.path.isdir(folder):
                raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
            if not os.access(folder, os.W_OK):
                raise UsageError(f"{flag} {path}: the folder {folder} is not writable")


def _gate_flags(settings: Any) -> list[str]:
    names = {"fail_on": "--fail-on", "max": "--max", "warn_on": "--warn-on", "fail_scope": "--fail-scope"}
    return [flag for key, flag in names.items() if settings.source_of(key) == "flag"]


class Reporter:
    """Collects how each file ended, decides its gate, writes the reports."""

    def __init__(self, command: str, settings: Any, options: ReportOptions = ReportOptions(), *,
                 env: Mapping[str, str] | None = None, err: IO[str] | None = None) -> None:
        from hextrackr_cli.render.ci import ci_system

        self.command = command
        self.settings = settings
        self.rules: gate.Rules = settings.gate or gate.Rules()
        self.options = options
        self.env = os.environ if env is None else env
        self.ci = ci_system(self.env) if options.ci_annotations else None
        self.err = err
        self.reports: list[Any] = []

    # ------------------------------------------------------------------ before anything is sent
    def check(self, *, import_type: str = protocol.IMPORT_TYPES[0], detach: bool = False) -> None:
        """Refuse a gate that cannot be decided: ``--detach`` (nothing waits for the end), tickets (no
        severities). A gate from the environment or a profile is dropped there instead: it is a default."""
        self.options.check()
        if not self.rules.active:
            return
        why = ("--detach does not wait for the import to end" if detach else
               "a tickets import has no severities" if import_type != protocol.IMPORT_TYPES[0] else "")
        if not why:
            return
        flags = _gate_flags(self.settings)
        if flags:
            raise UsageError(f"{' / '.join(flags)}: {why}, so no gate can be decided",
                             hint=f"drop {' / '.join(flags)}")
        self.rules = gate.Rules()

    def check_server(self, conn: Any, *, sends_file: bool = True) -> None:
        """Against HexTrackr 1.1.x only ``--fail-scope open`` can be counted (from the file sent): 1.1.x does not
        say per severity which findings are new. Refused before the upload, naming ``open``."""
        if not conn.strategy.counts_from_file or not self.rules.active:
            return
        if not sends_file:
            raise UsageError("a gate on `hextrackr watch` cannot be decided against HexTrackr 1.1.x: it reports no "
                             "per-severity counts, and watch has no file to count",
                             hint="put --fail-on / --max / --warn-on on `hextrackr import` with --fail-scope open")
        if self.rules.scope == gate.SCOPE_NEW:
            raise UsageError(
                "--fail-scope new cannot be decided against HexTrackr 1.1.x: it reports how many findings are new "
                "(insertedToCurrent), not which or of what severity",
                hint="use --fail-scope open (this scan's findings, counted from the file sent)")

    def renderer(self, renderer: Any) -> Any:
        """The command's renderer, inside GitLab's collapsible sections when that is where the plain lines go."""
        from hextrackr_cli.render.ci import GITLAB, GitLabSections

        if self.ci == GITLAB and self.settings.output == "plain":
            return GitLabSections(renderer, self.err or sys.stderr)
        return renderer

    # ------------------------------------------------------------------ per file
    def decider(self, lf: Any = None, *, from_file: bool = False) -> Callable[[Any], Any]:
        """The Follower's hook: a completed outcome with its counts, verdict and exit status. ``from_file``:
        the counts are the severities of the file sent (HexTrackr 1.1.x), read only if the import completed."""

        def decide(outcome: Any) -> Any:
            if outcome.outcome != protocol.OUTCOME_COMPLETED or outcome.exit_code != ExitStatus.OK:
                return outcome
            from hextrackr_cli.render import outcome_counts

            counts = outcome_counts(outcome)
            if counts is None and from_file and lf is not None and self.rules.active:
                found = file_severities(lf)
                counts = gate.Counts.from_severities(found) if found is not None else None
            verdict = gate.evaluate(self.rules, counts)
            code = outcome.exit_code
            if verdict.failed:  # offending counts: the gate tripped; none: the server gave nothing to count
                code = ExitStatus.GATE if verdict.offending else ExitStatus.IMPORT_FAILED
            return replace(outcome, counts=counts, gate=verdict if self.rules.active else None, exit_code=code)

        return decide

    def record(self, name: str, outcome: Any, seconds: float | None, browser_url: str | None = None) -> None:
        from hextrackr_cli.render import outcome_counts, summary_line
        from hextrackr_cli.render.reports import FileReport

        self.reports.append(FileReport(
            file=name, outcome=outcome.outcome, exit_code=int(outcome.exit_code),
            message=summary_line(outcome, name), counts=outcome_counts(outcome),
            verdict=outcome.gate or gate.Verdict(gate.OFF), seconds=seconds, browser_url=browser_url,
            session_id=outcome.session_id, import_id=outcome.import_id,
        ))

    # ------------------------------------------------------------------ at the end
    def finish(self) -> None:
        """Write the reports asked for; a report that cannot be written is said on stderr (the exit status
        stays the imports')."""
        from hextrackr_cli.render import ci, reports

        if not self.reports:
            return
        markdown = None
        if self.options.junit:
            self._write(self.options.junit, "--junit", lambda: reports.junit_xml(self.command, self.reports))
        if self.options.summary_md:
            markdown = reports.markdown_summary(self.command, self.reports)
            self._write(self.options.summary_md, "--summary-md", lambda: markdown)
        if self.ci == ci.GITHUB:
            path = self.env.get("GITHUB_STEP_SUMMARY")
            if path:
                try:
                    if not ci.append_step_summary(path, markdown or reports.markdown_summary(self.command, self.reports)):
                        self._say("hextrackr: warning: $GITHUB_STEP_SUMMARY is full (1 MiB); no summary added")
                except OSError as exc:
                    self._say(f"hextrackr: warning: cannot append to $GITHUB_STEP_SUMMARY: {exc.strerror or exc}")
            for line in ci.github_annotations(self.reports):
                self._say(line)

    def _write(self, path: str, flag: str, text: Callable[[], str]) -> None:
        from hextrackr_cli.render.reports import write_report

        try:
            write_report(path, text())
        except OSError as exc:
            self._say(f"hextrackr: cannot write {flag} {path}: {exc.strerror or exc}")

    def _say(self, line: str) -> None:
        stream = self.err or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


def file_severities(lf: Any) -> dict[str, int] | None:
    """Findings per severity of a checked file (what its import leaves open, as far as the client can tell);
    None when the file cannot be read through (the gate then cannot be decided)."""
    from hextrackr_cli.formats import HEAD_BYTES, VULNERABILITIES, FormatError, RowError, detect

    counts: Counter[str] = Counter()
    try:
        with open(lf.path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
            fmt = detect(head, VULNERABILITIES, complete=len(head) < HEAD_BYTES)
            fh.seek(0)
            for finding in fmt.read(fh):
                counts[getattr(finding, "severity", "")] += 1
    except (OSError, FormatError, RowError):
        return None
    return {s: counts.get(s, 0) for s in gate.SEVERITIES}
