"""The rich live view on a terminal: title, bar, percent, stage, message, rows, elapsed, ETA, transport."""

from __future__ import annotations

import time
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from hextrackr_cli import protocol
from hextrackr_cli import events as ev
from hextrackr_cli.render import closing_lines, summary_line


def _elapsed(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _View:
    """Renderable state; rebuilt on every refresh so elapsed time keeps moving."""

    def __init__(self) -> None:
        self.title = "Importing"
        self.filename: str | None = None
        self.session_id = ""
        self.started = time.monotonic()
        self.progress = 0
        self.stage = "connecting"
        self.message = ""
        self.eta: int | None = None
        self.rows: tuple[int | None, int | None] = (None, None)
        self.transport = ""
        self.notice = ""
        self.notice_style = "yellow"
        self.state = "running"  # running | completed | failed | cancelled | cancelling | stopped
        self.upload: tuple[int, int] | None = None
        self.frozen_elapsed: float | None = None

    def __rich__(self) -> Any:
        style = {
            "completed": "green",
            "failed": "red",
            "cancelled": "yellow",
            "cancelling": "yellow",
            "stopped": "yellow",
        }.get(self.state, "cyan")
        title = Text(self.title, style="bold")
        if self.filename:
            title.append(f" {self.filename}", style="bold")
        bar_line = Table.grid(padding=(0, 1))
        bar_line.add_column(width=40)
        bar_line.add_column(justify="right", width=4)
        bar_line.add_column()
        pct = self.progress
        if self.upload and self.stage == "uploading":
            sent, size = self.upload
            pct = int(sent * 100 / size) if size else 0
        bar = ProgressBar(total=100, completed=pct, width=40, complete_style=style, finished_style=style)
        bar_line.add_row(bar, Text(f"{pct}%"), Text(self.stage, style=style))
        lines: list[Any] = [title, bar_line]
        if self.message:
            lines.append(Text(self.message, style="red" if self.state == "failed" else ""))
        elapsed = self.frozen_elapsed if self.frozen_elapsed is not None else time.monotonic() - self.started
        info = []
        done, total = self.rows
        if total:
            info.append(f"rows {done or 0:,}/{total:,}")
        elif self.upload and self.stage == "uploading":
            info.append(f"sent {self.upload[0]:,}/{self.upload[1]:,} bytes")
        info.append(f"elapsed {_elapsed(elapsed)}")
        eta = protocol.format_eta(self.eta) if self.eta is not None and self.state == "running" else ""
        info.append(f"ETA {eta or '-'}")
        if self.transport:
            info.append(f"via {self.transport}")
        lines.append(Text(" · ".join(info), style="dim"))
        if self.notice:
            lines.append(Text(self.notice, style=self.notice_style))
        return Group(*lines)


class RichRenderer:
    def __init__(self, stream: IO[str], *, color: bool = True, verbose: int = 0) -> None:
        self.console = Console(
            file=stream,
            force_terminal=True,
            no_color=not color,
            color_system="auto" if color else None,
            highlight=False,
            soft_wrap=False,
        )
        self.view = _View()
        self.verbose = verbose
        self.live: Live | None = None

    def _start(self) -> None:
        if self.live is None:
            self.live = Live(self.view, console=self.console, refresh_per_second=8, transient=False)
            self.live.start()

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.refresh()

    def handle(self, event: ev.Event) -> None:
        v = self.view
        if isinstance(event, ev.Started):
            self.close()
            self.view = v = _View()
            v.title = event.title
            v.filename = event.filename
            v.session_id = event.session_id
            v.stage = "starting"
            self._start()
        elif isinstance(event, ev.UploadProgress):
            v.upload = (event.sent, event.total)
            if v.stage in ("starting", "connecting", "uploading"):
                v.stage = "uploading"
        elif isinstance(event, ev.Uploaded):
            if v.stage == "uploading":
                v.stage = "queued"
                v.message = v.message or "upload stored; waiting for the server"
        elif isinstance(event, ev.Progress):
            self._start()
            v.progress = event.progress
            v.stage = event.type
            v.message = event.message
            v.eta = event.eta
            if event.total_rows is not None:
                v.rows = (event.processed_rows, event.total_rows)
            if event.type == protocol.ERROR:
                v.state = "failed"
            elif event.type == protocol.COMPLETE:
                v.state = "completed"
        elif isinstance(event, ev.TransportChanged):
            self._start()
            v.transport = event.transport
            if event.transport == ev.POLLING:
                v.notice = f"switched to HTTP polling: {event.reason}"
        elif isinstance(event, ev.Reconnecting):
            delay = f" in {event.delay:g}s" if event.delay is not None else ""
            v.notice = f"connection lost; reconnecting (attempt {event.attempt}{delay})"
            v.notice_style = "yellow"
        elif isinstance(event, ev.Reconnected):
            v.transport = event.transport
            v.notice = f"reconnected over {event.transport}"
            v.notice_style = "green"
        elif isinstance(event, ev.Cancelling):
            v.state = "cancelling"
            v.notice = "cancelling… (Ctrl-C again to detach)"
            v.notice_style = "yellow"
        elif isinstance(event, ev.Notice) and self.live is None:
            self.console.print(Text(event.message, style="yellow" if event.level == "warning" else ""), soft_wrap=True)
            return
        elif isinstance(event, ev.Notice):
            if event.level == "warning" or self.verbose:
                v.notice = event.message
                v.notice_style = "yellow" if event.level == "warning" else "dim"
        elif isinstance(event, ev.Outcome):
            v.frozen_elapsed = time.monotonic() - v.started
            v.notice = ""
            if event.outcome == protocol.OUTCOME_COMPLETED:
                v.state, v.progress = "completed", 100
                rows = event.summary.get("rows")
                if isinstance(rows, int) and rows:
                    v.rows = (rows, rows)
            elif event.outcome == protocol.OUTCOME_FAILED:
                v.state = "failed"
                v.stage = "error"
                v.message = event.message
            elif event.outcome == protocol.OUTCOME_CANCELLED:
                v.state = "cancelled"
                v.stage = "cancelled"
            else:
                v.state = "stopped"
            self._refresh()
            self.close()
            style = {"completed": "green", "skipped": "green", "failed": "red"}.get(event.outcome, "yellow")
            line = summary_line(event, event.filename or v.filename, v.frozen_elapsed)
            self.console.print(Text(line, style=style), soft_wrap=True)
            for text, line_style in closing_lines(event):
                self.console.print(Text(text, style=line_style), soft_wrap=True)
            return
        self._refresh()

    def close(self) -> None:
        if self.live is not None:
            try:
                self.live.stop()
            except Exception:
                pass
            self.live = None
