"""Property-based fuzzing (issue 6) with hypothesis.

- the CSV format detection and row mappers of ``hextrackr_cli/formats.py``: any header / any row of the header's
  width either maps to well-formed records or raises the module's documented ``FormatError``/``RowError``;
- the server's first-bytes check (``reading.sniff``): a Format or ``ImportProblem``, nothing else;
- whole CSV-ish files posted to the real server: each import ends ``completed`` or ``failed`` and a failed one
  leaves the existing data byte-for-byte unchanged (no partial writes); the server keeps serving;
- the Socket.io handlers: ``joinSession`` / ``cancelImport`` with random payload types always get a well-formed
  acknowledgement (a refusal unless the payload is a valid reservation), and the server keeps serving.

The default run keeps a few hundred cases. The ≥10,000-case run is marked ``slow``:
``.venv/bin/python -m pytest tests/faults/test_fuzz.py -m slow -q`` (or HEXTRACKR_FUZZ_SLOW=1).
"""

from __future__ import annotations

import string
import threading
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import faults as S
from support.figures import record

pytest_plugins = ["support.figures_plugin"]

SLOW_FACTOR = {"formats": 20, "sniff": 20, "socket": 20, "server": 10}


slow_enabled = S.slow_enabled


def two_runs(name: str, default: int):
    """Make ``body(request, examples, **fixtures)`` a default-run test (``default`` examples) and also define
    ``<name>_slow``, marked ``slow``, with ``default * SLOW_FACTOR`` examples (skipped unless asked for)."""
    import inspect

    def wrap(body):
        params = [p for p in inspect.signature(body).parameters.values() if p.name != "examples"]

        def variant(examples: int, slow: bool):
            def test(request, **kwargs):
                if slow and not slow_enabled(request.config):
                    pytest.skip("slow fuzz run: use -m slow or HEXTRACKR_FUZZ_SLOW=1")
                body(request, examples, **kwargs)

            test.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
            test.__name__ = body.__name__ + ("_slow" if slow else "")
            test.__qualname__ = test.__name__
            test.__doc__ = body.__doc__
            return pytest.mark.slow(test) if slow else test

        slow_test = variant(default * SLOW_FACTOR[name], True)
        globals()[slow_test.__name__] = slow_test
        return variant(default, False)

    return wrap


FUZZ = dict(deadline=None, database=None, derandomize=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------- formats.py
from hextrackr_cli import formats  # noqa: E402

ALIASES = sorted({a for reader in formats.readers() for aliases in getattr(reader, "columns", {}).values()
                  for a in aliases})
cell = st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "CVE-2024-1234", "CVE-2024-1,CVE-2024-2", "High",
                                                       "critical", "4", "9.8", "-1", "1e400", "nan", "10.0.0.1",
                                                       "999.1.1.1", "2025-02-30", "XT-12", "\ufeff", "\x00",
                                                       "=cmd|' /C calc'!A0", "a\r\nb", "\"", ","]))
header_name = st.one_of(st.sampled_from(ALIASES), st.text(max_size=20),
                        st.sampled_from(ALIASES).map(str.upper), st.sampled_from(ALIASES).map(lambda a: f" {a} "))


ROW_ERRORS = (formats.FormatError, getattr(formats, "RowError", formats.FormatError))


def check_formats(header: list[str], rows: list[list[str]], kind, vendor: str) -> None:
    try:
        fmt = formats.detect_format(header, kind)
    except formats.FormatError as exc:
        assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc) and "\x1b" not in str(exc), str(exc)
        return
    assert fmt.kind in (formats.VULNERABILITIES, formats.TICKETS)
    if kind is not None:
        assert fmt.kind == kind
    width = len(header)
    mapper = formats.make_mapper(fmt, vendor)
    fields = formats.TICKET_FIELDS if fmt.name == formats.TICKETS else formats.VULN_FIELDS
    for row in rows:
        row = (row + [""] * width)[:width]
        try:
            out = mapper(list(row))
        except ROW_ERRORS as exc:  # the module's documented error types for a bad value
            assert str(exc) and "\n" not in str(exc), str(exc)
            continue
        assert isinstance(out, list) and out, out
        for rec in out:
            assert isinstance(rec, tuple) and len(rec) == len(fields)
            assert all(v is None or isinstance(v, (str, float, int)) for v in rec)


@two_runs("formats", 300)
def test_fuzz_format_detection_and_mappers_raise_only_format_error(request, examples):
    """Random headers (known aliases mixed with junk) and random rows: detect_format/make_mapper return
    well-formed records or raise FormatError/RowError with a one-line message (no CR/LF/escape even when a
    header cell holds one); nothing else escapes."""

    @settings(max_examples=examples, **FUZZ)
    @given(header=st.lists(header_name, min_size=0, max_size=25),
           rows=st.lists(st.lists(cell, max_size=30), max_size=5),
           kind=st.sampled_from([None, formats.VULNERABILITIES, formats.TICKETS]),
           vendor=st.text(max_size=10))
    def run(header, rows, kind, vendor):
        record(fuzz_cases=1)
        check_formats(header, rows, kind, vendor)

    run()


@two_runs("formats", 150)
def test_fuzz_filename_metadata_and_scan_dates(request, examples):
    """metadata_from_filename never raises and returns a valid ISO date or None; parse_scan_date accepts only
    real YYYY-MM-DD dates (ValueError otherwise)."""
    import datetime as dt

    @settings(max_examples=examples, **FUZZ)
    @given(name=st.one_of(st.text(max_size=80), st.from_regex(r"[a-z]{1,8}_[a-z]{0,6}_?\d{4}-?\d{2}-?\d{2}\.csv",
                                                              fullmatch=True)),
           date=st.one_of(st.text(max_size=12), st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True)))
    def run(name, date):
        record(fuzz_cases=1)
        vendor, day = formats.metadata_from_filename(name)
        assert vendor is None or (vendor.isalnum() and vendor == vendor.lower())
        if day is not None:
            dt.date.fromisoformat(day)
        try:
            assert formats.parse_scan_date(date) == date
            dt.date.fromisoformat(date)
        except ValueError:
            pass

    run()


# --------------------------------------------------------------------------- every reader, whole files
def _real_headers() -> list[list[str]]:
    """The header row of every real CSV export in tests/data/real/ (one per family and column set)."""
    import csv as _csv
    import io as _io

    found: dict[tuple[str, ...], list[str]] = {}
    for path in sorted((Path(__file__).parent.parent / "data" / "real").glob("*.csv")):
        text = path.read_text(encoding="utf-8-sig")
        first = text.split("\n", 1)[0]
        rows = list(_csv.reader(_io.StringIO(text[:20000], newline=""), delimiter=";" if first.count(";") > 3 else ","))
        header = max(rows[:6], key=len) if rows else []
        found.setdefault(tuple(header), header)
    return list(found.values())


REAL_HEADERS = _real_headers()
real_cell = st.one_of(cell, st.sampled_from(["Log", "5", "M", "Ig", "None", "info", "Jun 20, 2016 09:09:53 EDT",
                                             "Jan 10, 2026 10:00 AM", "09/14/2020 15:00:39", "8.1 (AV:N/AC:H)",
                                             "5,0", "general/tcp", "10.0.0.1,10.0.0.2", "CVE-2020-1 CVE-2020-2"]))


@two_runs("formats", 200)
def test_fuzz_every_reader_reads_whole_files_or_refuses_in_one_line(request, examples):
    """Files built on the real exports' headers (a preamble, ';' or tab, BOM, CRLF, random cells, trailing empty
    rows, a cut end): detect() and read() give well-formed findings or FormatError/RowError in one line."""
    import io as _io

    @settings(max_examples=examples, **FUZZ)
    @given(header=st.sampled_from(REAL_HEADERS), rows=st.lists(st.lists(real_cell, max_size=45), max_size=6),
           delimiter=st.sampled_from([",", ";", "\t"]), preamble=st.lists(st.text(max_size=20), max_size=3),
           bom=st.booleans(), crlf=st.booleans(), empties=st.integers(0, 3), cut=st.integers(0, 40),
           kind=st.sampled_from([None, formats.VULNERABILITIES, formats.TICKETS]),
           force=st.one_of(st.none(), st.sampled_from(formats.names())))
    def run(header, rows, delimiter, preamble, bom, crlf, empties, cut, kind, force):
        record(fuzz_cases=1)
        import csv as _csv

        out = _io.StringIO()
        w = _csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
        for line in preamble:
            w.writerow([line])
        w.writerow(header)
        for row in rows:
            w.writerow((row + [""] * len(header))[:len(header)])
        for _ in range(empties):
            w.writerow([""] * len(header))
        data = (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8", "surrogatepass")
        if cut:
            data = data[:-cut]
        try:
            fmt = formats.detect(data[:formats.HEAD_BYTES], kind, complete=True, force=force)
            assert kind is None or fmt.kind == kind
            found = list(fmt.read(_io.BytesIO(data)))
        except (formats.FormatError, formats.RowError) as exc:
            assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc), str(exc)
            return
        for f in found:
            assert f.line > fmt.header_line and f.record >= 1
            if isinstance(f, formats.Finding):
                assert f.severity in formats.SEVERITY_LEVELS or f.severity == ""
                assert f.host or f.ip or f.asset_id

    run()


# --------------------------------------------------------------------------- server sniff
@two_runs("sniff", 200)
def test_fuzz_server_first_bytes_check_raises_only_import_problem(request, examples):
    """reading.sniff on random bytes and CSV-ish text returns a Format or raises ImportProblem (one line)."""
    from hextrackr_cli.server.reading import ImportProblem, sniff

    csvish = st.lists(st.lists(cell, max_size=12), min_size=0, max_size=6).map(
        lambda rows: "\r\n".join(",".join(r) for r in rows).encode("utf-8", "surrogatepass"))

    @settings(max_examples=examples, **FUZZ)
    @given(head=st.one_of(st.binary(max_size=2048), csvish,
                          st.builds(lambda h, b: h.encode() + b, st.sampled_from(["\ufeff", "", " \n"]), csvish)),
           kind=st.sampled_from([None, "vulnerabilities", "tickets"]))
    def run(head, kind):
        record(fuzz_cases=1)
        try:
            fmt = sniff(head, kind)
        except ImportProblem as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert kind is None or fmt.kind == kind

    run()


# --------------------------------------------------------------------------- whole imports, real server
@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    from hextrackr_cli.server.app import start_background

    home = tmp_path_factory.mktemp("fuzz-server")
    srv = start_background(database=f"sqlite:///{home / 'hextrackr.db'}", tokens=[S.TOKEN])
    base = S.gen_csv(home / "base_2025-11-01.csv", 30)
    sid = S.new_sid()
    assert S.post_file(srv.url, base, session_id=sid, filename=base.name).status_code == 202
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"
    yield srv
    srv.stop()


GOOD_HEADER = S.HEADER.strip().split(",")
import_cell = st.one_of(st.text(alphabet=string.printable, max_size=12), cell)


@two_runs("server", 25)
def test_fuzz_imports_end_completed_or_failed_without_partial_writes(request, examples, fuzz_server):
    """Random CSV-ish files (known header, random cells and widths, random bytes) posted to the real server: each
    import ends completed or failed (never stuck, never 500); a refused or failed one leaves the data unchanged;
    a completed one adds exactly its own vendor's rows."""
    srv = fuzz_server

    body = st.one_of(
        st.lists(st.lists(import_cell, min_size=len(GOOD_HEADER) - 2, max_size=len(GOOD_HEADER) + 1),
                 min_size=1, max_size=8).map(
            lambda rows: (",".join(GOOD_HEADER) + "\n" + "\n".join(",".join(r) for r in rows) + "\n").encode(
                "utf-8", "surrogatepass")),
        st.binary(max_size=512),
    )

    @settings(max_examples=examples, **FUZZ)
    @given(data=body)
    def run(data):
        record(fuzz_cases=1)
        before = S.fingerprint(srv.db_path)
        sid = S.new_sid()
        r = S.post_file(srv.url, data=data, filename="fuzz_2025-11-20.csv", session_id=sid)
        assert r.status_code in (202, 400, 422), (r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code != 202:
            assert S.fingerprint(srv.db_path) == before
            return
        final = S.wait_outcome(srv.url, sid, timeout=60)
        assert final["outcome"] in ("completed", "failed"), final
        if final["outcome"] == "failed":
            assert S.fingerprint(srv.db_path) == before, "a failed import changed the data"
        else:
            assert S.count(srv.db_path, where="vendor = 'base'") == 30

    run()
    assert requests.get(srv.url + "/health", timeout=10).status_code == 200


# --------------------------------------------------------------------------- Socket.io handlers
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=40), st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                          max_leaves=12)
payload = st.one_of(
    json_value,
    st.fixed_dictionaries({"sessionId": json_value}, optional={"reserve": json_value}),
    st.fixed_dictionaries({"sessionId": st.uuids().map(str)}, optional={"reserve": json_value}),
)


@pytest.fixture(scope="module")
def socket_server(tmp_path_factory):
    from hextrackr_cli.server.app import start_background

    home = tmp_path_factory.mktemp("fuzz-socket")
    srv = start_background(database=f"sqlite:///{home / 'hextrackr.db'}", tokens=[S.TOKEN])
    yield srv
    srv.stop()


def session_id_of(data) -> str | None:
    from hextrackr_cli import protocol

    sid = data.get("sessionId") if isinstance(data, dict) else data
    return sid.lower() if protocol.is_session_id(sid) else None


def well_formed_ack(event: str, data, ack, reserved: set[str]) -> None:
    """The ack is a dict with a boolean ``ok``; success only for reserving a valid UUID, or for joining/cancelling
    an id this client reserved earlier in the run; otherwise a one-line error."""
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    sid = session_id_of(data)
    if ack["ok"]:
        reserving = event == "joinSession" and isinstance(data, dict) and bool(data.get("reserve"))
        assert sid is not None and (reserving or sid in reserved), (event, data, ack)
        if event == "joinSession":
            assert isinstance(ack.get("session"), dict) and ack["session"]["sessionId"] == sid
            reserved.add(sid)
        else:
            reserved.discard(sid)  # a cancelled reservation is gone
    else:
        assert isinstance(ack.get("error"), str) and ack["error"] and "\n" not in ack["error"], ack
        assert "Traceback" not in ack["error"]


@two_runs("socket", 300)
def test_fuzz_socketio_join_and_cancel_always_ack_well_formed(request, examples, socket_server):
    """joinSession/cancelImport with random payload types (None, numbers, text, nested lists/dicts, UUIDs in any
    case, {sessionId, reserve} objects): every call gets a well-formed ack, and the server keeps serving."""
    from support.server import close_client, socket_client

    srv = socket_server
    sio = socket_client(srv.url, S.TOKEN)
    lock = threading.Lock()
    reserved: set[str] = set()
    try:
        @settings(max_examples=examples, **FUZZ)
        @given(event=st.sampled_from(["joinSession", "cancelImport"]), data=payload)
        def run(event, data):
            record(fuzz_cases=1)
            with lock:
                ack = sio.call(event, data, timeout=10)
            well_formed_ack(event, data, ack, reserved)

        run()
        assert sio.connected
    finally:
        close_client(sio)
    assert requests.get(srv.url + "/health", timeout=10).status_code == 200
    small = S.gen_csv(srv.db_path.parent / "after_2025-11-20.csv", 5)
    sid = S.new_sid()
    assert S.post_file(srv.url, small, session_id=sid).status_code == 202
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"


def test_socketio_handlers_refuse_extra_arguments_with_an_ack(socket_server):
    """joinSession/cancelImport emitted with several arguments (found by fuzzing: once a TypeError with no ack
    and a traceback on the server) get a well-formed refusal, and the connection stays usable."""
    from support.server import close_client, socket_client

    sio = socket_client(socket_server.url, S.TOKEN)
    try:
        for event in ("joinSession", "cancelImport"):
            for args in (("a", "b"), (S.new_sid(), 1, 2), (None, None)):
                record(fuzz_cases=1)
                ack = sio.call(event, args, timeout=10)
                assert isinstance(ack, dict) and ack.get("ok") is False and ack.get("error"), (event, args, ack)
        assert sio.call("joinSession", "not-a-uuid", timeout=10) == {"ok": False, "error": "Invalid session id"}
    finally:
        close_client(sio)


# --------------------------------------------------------------------------- HTTP routes
route_path = st.one_of(
    st.sampled_from(["/api/imports", "/api/imports/", "/api/import/progress/", "/api/vulnerabilities/import",
                     "/api/tickets/import", "/health", "/api/", "/api"]),
    st.builds(lambda base, seg: base + seg,
              st.sampled_from(["/api/imports/", "/api/import/progress/", "/api/", "/api/imports/1/"]),
              st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@", max_size=60),
                        st.uuids().map(str), st.integers().map(str))),
)
query = st.one_of(st.just(""), st.builds(lambda k, v: f"?{k}={v}", st.sampled_from(["limit", "offset", "x", ""]),
                                         st.one_of(st.integers().map(str), st.text(alphabet=string.printable.strip(
                                             "\r\n\t\x0b\x0c #"), max_size=20))))


@two_runs("sniff", 150)
def test_fuzz_http_routes_never_answer_500_or_non_json(request, examples, socket_server):
    """Random methods, API paths, path segments and query strings (sent raw, with the right token): never a 500,
    and every /api answer is JSON with an error code when it is an error."""
    import http.client
    import json as _json
    from urllib.parse import quote

    host, port = socket_server.url.rsplit("/", 1)[1].split(":")

    @settings(max_examples=examples, **FUZZ)
    @given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]), path=route_path,
           q=query)
    def run(method, path, q):
        record(fuzz_cases=1)
        target = quote(path, safe="/%!$&'()*+,;=:@-._~") + quote(q, safe="?=&%")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request(method, target, headers={"Authorization": f"Bearer {S.TOKEN}"})
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status < 500, (method, target, resp.status, body[:200])
        if method != "HEAD" and (path.startswith("/api") or path == "/health"):
            assert resp.getheader("content-type", "").startswith("application/json"), (method, target)
            if resp.status >= 400:
                data = _json.loads(body)
                assert isinstance(data.get("error"), str) and isinstance(data.get("code"), str), data

    run()


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "fuzzBOUNDARY") -> bytes:
    out = b""
    for name, filename, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode("utf-8", "surrogatepass") + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


part = st.tuples(st.sampled_from(["csvFile", "sessionId", "vendor", "scanDate", "other", ""]),
                 st.one_of(st.none(), st.text(max_size=30)),
                 st.one_of(st.binary(max_size=200), st.just(S.HEADER.encode() + b"h1,10.0.0.1,CVE-2024-1,High,1,p,d,s,"
                                                                                b"ACTIVE,2025-10-01,2025-11-20\n")))


@two_runs("sniff", 60)
def test_fuzz_multipart_uploads_never_answer_500(request, examples, socket_server):
    """Random multipart bodies (odd field names and orders, missing/duplicate csvFile, junk values, truncated
    bodies, raw bytes): the upload answers 2xx or a JSON 4xx, never 500, and the server keeps serving."""
    @settings(max_examples=examples, **FUZZ)
    @given(parts=st.lists(part, max_size=4), cut=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
           raw=st.one_of(st.none(), st.binary(max_size=300)))
    def run(parts, cut, raw):
        record(fuzz_cases=1)
        body = raw if raw is not None else multipart(parts)
        if cut is not None:
            body = body[:cut]
        r = requests.post(f"{socket_server.url}/api/vulnerabilities/import", data=body, timeout=30,
                          headers={**S.auth(), "Content-Type": "multipart/form-data; boundary=fuzzBOUNDARY"})
        assert r.status_code < 500, (r.status_code, r.text[:200], body[:120])
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code == 202:
            S.wait_outcome(socket_server.url, r.json()["sessionId"], timeout=60)

    run()
    assert requests.get(socket_server.url + "/health", timeout=10).status_code == 200
