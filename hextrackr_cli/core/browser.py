"""``--open``: the session's browser progress view, in a graphical browser whose output stays off our terminal."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Callable

from hextrackr_cli.core.connection import Connection

ASKS_TOKEN = "the page asks for the API token once"


def open_progress_page(conn: Connection, sid: str, report: Callable[[Any], Any]) -> None:
    """--open: the browser progress view, in a graphical browser only (a text browser would take the terminal)."""
    from hextrackr_cli import events as ev

    url = conn.page_url(sid)
    if url is None:
        if conn.embedded is not None:
            why = ("the embedded server (--server local) stops with this command and its token is never shown; "
                   "run `hextrackr serve` and import with --server URL to follow an import in a browser")
        else:
            why = f"the server at {conn.url} has no browser progress view (hextrackr serve has one)"
        report(ev.Notice(f"--open: {why}", "warning"))
        return
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if not graphical:
        report(ev.Notice(f"--open: no graphical browser here; open {url} yourself ({ASKS_TOKEN})"))
        return

    said = threading.Event()  # the launcher's verdict is reported once, by whoever knows it first

    def launch() -> None:
        started, why = _launch_browser(url)
        if not started:
            report(ev.Notice(f"--open: could not start a browser ({why}); open {url} yourself ({ASKS_TOKEN})",
                             "warning"))
        elif not said.is_set():
            report(ev.Notice(f"opened the progress page {url} in a browser ({ASKS_TOKEN})"))
        said.set()

    t = threading.Thread(target=launch, name="hextrackr-browser", daemon=True)
    t.start()
    t.join(1.0)  # a launcher that fails says so at once (a short import may be over before a later notice)
    if not said.is_set():
        said.set()
        report(ev.Notice(f"opening the progress page {url} ({ASKS_TOKEN})"))


def _launch_browser(url: str) -> tuple[bool, str]:
    """Start the desktop's browser on ``url`` with its output kept off our terminal: (started, why not).

    webbrowser's own launchers report success as soon as the launcher process exists and let it write to our
    stderr (e.g. ``gio: …: Operation not supported`` when no browser handles http); a launcher that exits
    non-zero within a few seconds is a failure here."""
    import subprocess
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False, "no browser found"
    name, args = getattr(browser, "name", ""), getattr(browser, "args", None)
    if not name or not isinstance(args, list):  # macOS / Windows launchers answer for themselves
        try:
            return bool(browser.open_new_tab(url)), "the system launcher refused"
        except Exception as exc:
            return False, type(exc).__name__
    try:
        proc = subprocess.Popen([name, *(a.replace("%s", url) for a in args)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return False, f"{name}: {exc.strerror or exc}"
    try:
        code = proc.wait(5.0)
    except subprocess.TimeoutExpired:
        return True, ""  # still running: a browser window
    return code == 0, f"{name} exited with status {code}"
