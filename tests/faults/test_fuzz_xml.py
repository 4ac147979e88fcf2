"""Property-based fuzzing (hypothesis) of the .nessus reader and the compressed-export layer.

- XML documents built from Nessus's vocabulary with DTDs, entity declarations and references, external entities,
  deep nesting, odd severities and addresses, random truncation and random bytes: detection and reading either give
  well-formed findings or raise the formats package's FormatError/RowError with a one-line message; nothing else.
- gzip and zip archives of real exports, damaged (bytes flipped, truncated, garbage appended), holding several
  files, and bombs past a small cap: the same two outcomes, and never more than the cap's bytes read.
- whole uploads of both to the real server: each import is refused (422) or ends completed or failed, and one that
  did not complete leaves the data byte-for-byte unchanged (no partial writes); the server keeps serving.

Ten times the examples with ``HEXTRACKR_FUZZ_SLOW=1 .venv/bin/python -m pytest tests/faults/test_fuzz_xml.py -q``.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import faults as S
from support.figures import record
from hextrackr_cli.formats import HEAD_BYTES, SEVERITY_LEVELS, FormatError, RowError, detect
from hextrackr_cli.formats.compressed import expanded, expanded_head

pytest_plugins = ["support.figures_plugin"]

REAL = Path(__file__).parent.parent / "data" / "real"
SMALL_NESSUS = (REAL / "nessus_many_vuln.xml").read_bytes()
FUZZ = dict(deadline=None, database=None, derandomize=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                   HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------ documents
names = st.sampled_from(["NessusClientData_v2", "Report", "ReportHost", "HostProperties", "tag", "ReportItem", "cve",
                         "description", "solution", "plugin_output", "cvss3_base_score", "vpr_score", "risk_factor",
                         "x", "Policy"])
attr_value = st.one_of(st.sampled_from(["0", "1", "4", "7", "-1", "", "10.0.0.1", "999.1.1.1", "host-ip",
                                        "http://example.com/", "NaN", "1e400", "&amp;", "&#0;", "&x;"]),
                       st.text(max_size=12))
text = st.one_of(st.sampled_from(["CVE-2024-1", "9.8", "11", "nan", "&lt;b&gt;", "&x;", "&#x110000;", "&#65;",
                                  "<![CDATA[ <x> ]]>", "\u00e9", ""]), st.text(max_size=20))
prologs = st.sampled_from([
    b"", b'<?xml version="1.0" ?>\n', b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0"?><!DOCTYPE NessusClientData_v2>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "xx">]>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p"> %p;]>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
    b"<!-- a comment --><?pi data?>", b'<?xml version="1.0" encoding="UTF-16"?>', b"\xef\xbb\xbf",
])


def element(depth: int) -> st.SearchStrategy[bytes]:
    leaf = st.builds(lambda n, t: b"<%s>%s</%s>" % (n.encode(), t.encode("utf-8", "surrogatepass"), n.encode()),
                     names, text)
    if depth <= 0:
        return leaf
    child = element(depth - 1)
    return st.one_of(leaf, st.builds(
        lambda n, attrs, kids: b"<%s%s>%s</%s>" % (
            n.encode(), b"".join(b' %s="%s"' % (k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in attrs),
            b"".join(kids), n.encode()),
        names, st.lists(st.tuples(st.sampled_from(["severity", "pluginID", "pluginName", "name", "port", "protocol"]),
                                  attr_value), max_size=3, unique_by=lambda kv: kv[0]),
        st.lists(child, max_size=3)))


def nested(n: int) -> bytes:
    return b"<NessusClientData_v2>" + b"<Report>" * n + b"</Report>" * n + b"</NessusClientData_v2>"


documents = st.one_of(
    st.builds(lambda p, body: p + b"<NessusClientData_v2>" + body + b"</NessusClientData_v2>", prologs,
              st.lists(element(4), max_size=4).map(b"".join)),
    st.builds(lambda p, body: p + body, prologs, element(5)),
    st.integers(0, 300).map(nested),
    st.builds(lambda cut: SMALL_NESSUS[:cut], st.integers(0, len(SMALL_NESSUS))),
    st.builds(lambda at, junk: SMALL_NESSUS[:at] + junk + SMALL_NESSUS[at:], st.integers(0, len(SMALL_NESSUS)),
              st.binary(min_size=1, max_size=8)),
    st.binary(max_size=300).map(lambda b: b"<NessusClientData_v2>" + b),
)


def read_or_refuse(data: bytes, limit: int = 1 << 30) -> list:
    """Findings of ``data`` (plain or compressed), or the formats package's one-line refusal, nothing else."""
    try:
        head, complete = expanded_head(io.BytesIO(data), HEAD_BYTES, limit=limit)
        fmt = detect(head, "vulnerabilities", complete=complete)
        stream, _, _ = expanded(io.BytesIO(data), limit=limit)
        found = list(fmt.read(stream))
    except (FormatError, RowError) as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message
        return []
    for f in found:
        assert f.severity in SEVERITY_LEVELS or f.severity == ""
        assert f.host or f.ip or f.asset_id
    return found


def examples(request: pytest.FixtureRequest, default: int) -> int:
    return default * 10 if S.slow_enabled(request.config) else default


def test_fuzz_nessus_xml_reads_or_refuses_in_one_line(request):
    """Random Nessus-like XML (DTDs, entities, deep nesting, truncation, junk): findings or one line, never more."""
    @settings(max_examples=examples(request, 300), **FUZZ)
    @given(data=documents)
    def run(data):
        record(fuzz_cases=1)
        found = read_or_refuse(data)
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            assert found == []  # never read, whatever it declares

    run()


# ------------------------------------------------------------------ archives
def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zipped(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


CSV = b"hostname,ip_address,cve,severity,plugin_id\nweb01,10.0.0.1,CVE-2024-1,High,1\n"
archives = st.one_of(
    st.sampled_from([gz(SMALL_NESSUS), gz(CSV), zipped(("scan.nessus", SMALL_NESSUS)), zipped(("a.csv", CSV)),
                     zipped(("a.csv", CSV), ("b.csv", CSV)), zipped(), zipped(("dir/", b"")),
                     zipped(("inner.csv.gz", gz(CSV))), gz(gz(CSV))]),
    st.builds(lambda n: gz(b"x" * n), st.integers(0, 300_000)),
)
damage = st.one_of(
    st.just(lambda b: b),
    st.builds(lambda cut: (lambda b: b[: cut % max(1, len(b))]), st.integers(0, 10**6)),
    st.builds(lambda at, x: (lambda b: b[: at % max(1, len(b))] + bytes([(b[at % max(1, len(b))] if b else 0) ^ x])
                             + b[at % max(1, len(b)) + 1:]), st.integers(0, 10**6), st.integers(1, 255)),
    st.builds(lambda junk: (lambda b: b + junk), st.binary(min_size=1, max_size=64)),
)


def test_fuzz_damaged_archives_and_bombs_read_or_refuse_in_one_line(request):
    """gzip/zip of real exports, damaged, with several members, nested, and bombs past a 64 KiB cap."""
    limit = 64 * 1024

    @settings(max_examples=examples(request, 300), **FUZZ)
    @given(archive=archives, hurt=damage)
    def run(archive, hurt):
        record(fuzz_cases=1)
        data = hurt(archive)
        read_or_refuse(data, limit=limit)
        try:  # the cap holds whatever the headers claim (a plain file is capped by the upload itself)
            stream, compression, _ = expanded(io.BytesIO(data), limit=limit)
            total = 0
            while chunk := stream.read(1 << 14):
                total += len(chunk)
            assert compression is None or total <= limit
        except (FormatError, RowError):
            pass

    run()


# ------------------------------------------------------------------ whole uploads, real server
@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    from hextrackr_cli.server.app import start_background

    home = tmp_path_factory.mktemp("fuzz-xml-server")
    srv = start_background(database=f"sqlite:///{home / 'hextrackr.db'}", tokens=[S.TOKEN], max_upload=1 << 20)
    base = S.gen_csv(home / "base_2025-11-01.csv", 30)
    sid = S.new_sid()
    assert S.post_file(srv.url, base, session_id=sid, filename=base.name).status_code == 202
    assert S.wait_outcome(srv.url, sid)["outcome"] == "completed"
    yield srv
    srv.stop()


def test_fuzz_xml_and_archive_uploads_end_without_partial_writes(request, fuzz_server):
    """Random XML, damaged archives and bombs (cap 1 MiB) posted to the real server: refused, completed or failed;
    never a 500; one that did not complete leaves the data unchanged; the server keeps serving."""
    srv = fuzz_server
    bodies = st.one_of(documents, st.builds(lambda a, h: h(a), archives, damage),
                       st.just(gz(b"hostname,ip_address,cve\n" + b"h,10.0.0.1,CVE-2024-1\n" * 200_000)))

    @settings(max_examples=examples(request, 25), **FUZZ)
    @given(data=bodies)
    def run(data):
        record(fuzz_cases=1)
        before = S.fingerprint(srv.db_path)
        sid = S.new_sid()
        r = S.post_file(srv.url, data=data, filename="fuzz_2025-11-20.nessus", session_id=sid)
        assert r.status_code in (202, 400, 413, 422), (r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        if r.status_code != 202:
            assert "\n" not in r.json()["error"]
            assert S.fingerprint(srv.db_path) == before
            return
        final = S.wait_outcome(srv.url, sid, timeout=60)
        assert final["outcome"] in ("completed", "failed"), final
        if final["outcome"] == "failed":
            assert S.fingerprint(srv.db_path) == before, "a failed import changed the data"

    run()
    assert requests.get(srv.url + "/health", timeout=10).status_code == 200
