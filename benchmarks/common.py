"""Shared helpers of the benchmark suite: data files, processes, servers, RSS, statistics, machine info.

Everything here runs real components: the installed ``hextrackr`` console script, a separately started
``hextrackr serve`` process, real SQLite files in a fresh temporary directory per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
PY = sys.executable
TOKEN = "bench-token-0123456789"

# The tracker's emit, stamped with the wall-clock time at which the server hands the event to Socket.io.
# The event's own ``timestamp`` is taken when progress is *reported*; for a trailing-edge (throttled) event
# that is up to one throttle window before it is emitted, so it cannot measure emit -> render honestly.
# This wrapper lives only in the benchmark's server process; the product code is not changed.
STAMPED_SERVE = r"""
import sys, time
from hextrackr_cli.server import context as _c
_orig = _c.ServerContext.emit
def emit(self, event, data, room=None, to=None):
    if event == "importProgress" and to is None:
        data = dict(data, benchEmitMs=time.time() * 1000.0)
    return _orig(self, event, data, room=room, to=to)
_c.ServerContext.emit = emit
from hextrackr_cli.cli import main
sys.argv = ["hextrackr"] + sys.argv[1:]
sys.exit(main())
"""


def hextrackr() -> list[str]:
    script = Path(PY).with_name("hextrackr")
    if script.exists():
        return [str(script)]
    found = shutil.which("hextrackr")
    return [found] if found else [PY, "-m", "hextrackr_cli"]


def raise_nofile(want: int = 8192) -> int:
    """Raise this process's open-files limit (children inherit it). Returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------- data
def data_file(rows: int, fmt: str = "tenable") -> Path:
    """The generated CSV with ``rows`` rows (written on first use; deterministic)."""
    DATA.mkdir(parents=True, exist_ok=True)
    label = f"{rows // 1_000_000}m" if rows % 1_000_000 == 0 else (f"{rows // 1000}k" if rows % 1000 == 0 else str(rows))
    path = DATA / f"{fmt}_vulns_2025-11-20_{label}.csv"
    if not path.exists():
        tmp = path.with_suffix(".part")
        log(f"generating {path.name} ({rows} rows)")
        subprocess.run([PY, str(HERE / "generate.py"), "--rows", str(rows), "--format", fmt, "-o", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def big_file(size: int = 1 << 30) -> Path:
    """A CSV of exactly ``size`` bytes or a little less: a generated block of rows repeated."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"tenable_vulns_2025-11-20_{size >> 20}mib.csv"
    if path.exists() and path.stat().st_size > size * 0.99:
        return path
    src = data_file(10_000)
    with open(src, "rb") as f:
        header = f.readline()
        block = f.read()
    tmp = path.with_suffix(".part")
    with open(tmp, "wb") as out:
        out.write(header)
        written = len(header)
        while written + len(block) <= size:
            out.write(block)
            written += len(block)
    tmp.rename(path)
    return path


# --------------------------------------------------------------------------- processes
def log(msg: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


class TempHome:
    """A fresh XDG data/config home (and so a fresh local database) for one run."""

    def __init__(self, prefix: str = "hextrackr-bench-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEXTRACKR_")}
        env.update(XDG_DATA_HOME=str(self.dir / "data"), XDG_CONFIG_HOME=str(self.dir / "config"),
                   HOME=str(self.dir), NO_COLOR="1", PYTHONUNBUFFERED="1")
        env.update(extra)
        return env

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def vm_status(pid: int) -> dict[str, int]:
    """VmHWM/VmRSS (bytes) from /proc/PID/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


class Server:
    """A standalone ``hextrackr serve`` on an ephemeral port (optionally with emit time stamps)."""

    def __init__(self, home: TempHome, *, stamped: bool = False, args: tuple[str, ...] = ()) -> None:
        self.db = home.dir / "server.db"
        cmd = ([PY, "-c", STAMPED_SERVE] if stamped else hextrackr()) + [
            "serve", "--port", "0", "--database", f"sqlite:///{self.db}", "--token", TOKEN, *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=home.env(), text=True)
        self.url = ""
        self.stderr: list[str] = []
        ready = threading.Event()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip())
                m = re.search(r"listening on (http://\S+)", line)
                if m:
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise RuntimeError("hextrackr serve did not start: " + " | ".join(self.stderr[-5:]))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss(self) -> int:
        return vm_status(self.proc.pid).get("VmHWM", 0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class CliRun:
    """One ``hextrackr --output json import`` process: exit status, wall time, NDJSON lines with arrival times."""

    rc: int
    seconds: float
    lines: list[tuple[float, dict]] = field(default_factory=list)  # (time.time() at arrival, object)
    stderr: str = ""
    maxrss: int = 0  # bytes, from wait4
    ended: float = 0.0  # time.time() when the process had exited
    cpu: float = 0.0  # user + system CPU seconds of the process (wait4)

    def progress(self) -> list[tuple[float, dict]]:
        return [(t, o) for t, o in self.lines if "type" in o and "progress" in o and "event" not in o]

    def summary(self) -> dict:
        for _, o in reversed(self.lines):
            if o.get("event") == "summary":
                return o
        return {}


def run_cli(args: list[str], env: dict[str, str], *, on_line: Callable[[float, dict, subprocess.Popen], None] | None = None,
            timeout: float = 600.0) -> CliRun:
    """Run the CLI with ``--output json`` and timestamp every stdout line as it arrives."""
    cmd = hextrackr() + ["--output", "json"] + args
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    err: list[bytes] = []
    t_err = threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    t_err.start()
    lines: list[tuple[float, dict]] = []
    assert proc.stdout is not None
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        for raw in proc.stdout:
            now = time.time()
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            lines.append((now, obj))
            if on_line is not None:
                on_line(now, obj, proc)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        ended = time.time()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        killer.cancel()
    t_err.join(10)
    rc = proc.returncode
    if rc < 0:  # killed by a signal
        rc = 128 - rc
    return CliRun(rc, seconds, lines, b"".join(err).decode("utf-8", "replace"), usage.ru_maxrss * 1024, ended,
                  usage.ru_utime + usage.ru_stime)


# --------------------------------------------------------------------------- database
DATA_TABLES = ("vulnerabilities", "plugins", "vulnerability_snapshots", "tickets")


def db_checksum(path: Path) -> str:
    """sha256 over every row of the data tables (in key order); the import history is not part of it."""
    h = hashlib.sha256()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        for table in DATA_TABLES:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            h.update(f"{table}:{','.join(cols)}\n".encode())
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {', '.join(cols)}"):
                h.update(repr(row).encode())
    finally:
        conn.close()
    return h.hexdigest()


def db_count(path: Path, table: str = "vulnerabilities") -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# --------------------------------------------------------------------------- statistics
def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def figure(name: str, values: list[float], unit: str, *, target: str = "", ok: bool | None = None,
           reference: str = "", ref_value: float | None = None, note: str = "", stat: str = "median",
           value: float | None = None) -> dict[str, Any]:
    """One row of the result table. ``value`` overrides the headline (e.g. a p99); else the median."""
    head = value if value is not None else (statistics.median(values) if values else float("nan"))
    return {
        "name": name, "stat": stat, "value": head, "median": statistics.median(values) if values else None,
        "min": min(values) if values else None, "max": max(values) if values else None, "runs": len(values),
        "unit": unit, "values": values, "reference": reference, "ref_value": ref_value,
        "ratio": (head / ref_value) if ref_value else None, "target": target, "ok": ok, "note": note,
    }


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version, "loadavg_start": os.getloadavg(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_total_kib"] = int(f.readline().split()[1])
    except OSError:
        pass
    try:
        info["git"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                     check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git_dirty"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        info["git"] = "unknown"
    return info


def mib(n: float) -> float:
    return n / (1 << 20)


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    tmp.replace(path)
