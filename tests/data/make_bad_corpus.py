#!/usr/bin/env python3
"""Write the bad-input corpus in tests/data/bad/ and its manifest.

Each file is small and hand-shaped to break one thing. The manifest says, per file, whether an import must be
refused (and which words the one-line message must contain, case-insensitively) or accepted (odd but valid).
Re-run after editing: ``python tests/data/make_bad_corpus.py``; the files are committed.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent / "bad"
HEADER = "hostname,ip_address,cve,severity,plugin_id,plugin_name,state,first_seen,last_seen"
ROW = "web{n:02d}.example.com,10.0.0.{n},CVE-2024-{c:04d},High,{p},OpenSSL Remote Code Execution,ACTIVE,2025-10-01,2025-11-20"


def rows(n: int = 3, start: int = 1) -> list[str]:
    return [ROW.format(n=i, c=1000 + i, p=20000 + i) for i in range(start, start + n)]


def good(n: int = 3) -> str:
    return "\r\n".join([HEADER, *rows(n)]) + "\r\n"


CASES: dict[str, tuple[bytes, dict]] = {}


def case(name: str, data: bytes | str, expect: str, *words: str, note: str = "") -> None:
    if isinstance(data, str):
        data = data.encode("utf-8")
    CASES[name] = (data, {"expect": expect, "words": list(words), "note": note})


def build() -> None:
    rnd = random.Random(64)
    case("empty.csv", b"", "refuse", "empty")
    case("whitespace_only.csv", "   \r\n\r\n  \n", "refuse", "empty")
    case("header_only.csv", HEADER + "\r\n", "accept", note="a clean scan: completes, changes nothing")
    case("header_then_blank_lines.csv", HEADER + "\r\n\r\n\r\n", "accept", note="a clean scan (blank lines)")
    case("random_bytes.csv", bytes(rnd.randrange(256) for _ in range(64 * 1024)), "refuse", "binary")
    case("nul_bytes.csv", good().replace("High", "Hi\x00gh"), "refuse", "nul")
    case("utf16.csv", good().encode("utf-16"), "refuse", "utf-16")
    case("latin1.csv", good().replace("web01", "w\u00e9b01").encode("latin-1"), "refuse", "utf-8", "line 2")
    case("gzip.csv", gzip.compress(good().encode(), mtime=0), "accept",
         note="a gzip-compressed export is expanded as it is read")
    case("gzip_truncated.csv", gzip.compress(good().encode(), mtime=0)[:-10], "refuse", "gzip", "damaged")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("xl/workbook.xml", (2025, 1, 1, 0, 0, 0)), "<workbook/>")
    case("excel.csv", buf.getvalue(), "refuse", "zip")
    case("html_page.csv", "<!DOCTYPE html>\n<html><body><h1>502 Bad Gateway</h1></body></html>\n", "refuse", "html")
    case("json_file.csv", json.dumps([{"hostname": "a", "cve": "CVE-2024-1"}]) + "\n", "refuse", "csv")
    case("semicolon.csv", good().replace(",", ";"), "accept", note="';' delimiter (European locale export), sniffed")
    case("tab_separated.csv", good().replace(",", "\t"), "accept", note="tab delimiter, sniffed")
    case("unknown_columns.csv", "name,address,issue\r\na,b,c\r\n", "refuse", "columns")
    case("duplicate_headers.csv", HEADER + ",hostname\r\n" + "\r\n".join(r + ",x" for r in rows()) + "\r\n",
         "refuse", "duplicate", "hostname")
    case("blank_column_name.csv", HEADER + ",\r\n" + "\r\n".join(r + "," for r in rows()) + "\r\n", "accept",
         note="a blank column name (real Tenable exports have them) is ignored")
    case("ragged_rows.csv", "\r\n".join([HEADER, *rows(2), "web09.example.com,10.0.0.9,CVE-2024-1009"]) + "\r\n",
         "refuse", "line 4")
    case("ragged_long_row.csv", "\r\n".join([HEADER, rows(1)[0] + ",extra,fields", *rows(2, 2)]) + "\r\n",
         "refuse", "line 2")
    case("unterminated_quote.csv", "\r\n".join([HEADER, *rows(2), 'web09.example.com,10.0.0.9,CVE-2024-1009,High,1,"Open SSL,ACTIVE,2025-10-01,2025-11-20']) + "\r\n",
         "refuse", "quote")
    case("single_line_10mb.csv", "hostname," + "x" * (10 * 1024 * 1024), "refuse", "line")
    case("huge_field.csv", HEADER + "\r\n" + rows(1)[0].replace("OpenSSL", "A" * (2 * 1024 * 1024)) + "\r\n",
         "refuse", "field")
    case("too_many_columns.csv", ",".join(f"c{i}" for i in range(5000)) + "\r\n" + ",".join("v" * 5000) + "\r\n",
         "refuse", "columns")
    case("no_host.csv", "\r\n".join([HEADER, *rows(1), ",,CVE-2024-1999,High,1,X,ACTIVE,2025-10-01,2025-11-20"]) + "\r\n",
         "refuse", "line 3", "host")
    case("non_date_dates.csv", good().replace("2025-10-01", "last tuesday", 1), "refuse", "line 2", "first_seen")
    case("impossible_date.csv", good().replace("2025-10-01", "2025-02-30", 1), "refuse", "line 2", "first_seen")
    case("giant_numbers.csv",
         "hostname,ip_address,cve,severity,vpr_score,plugin_id\r\nweb01.example.com,10.0.0.1,CVE-2024-1001,High,"
         + "9" * 400 + ",20001\r\n", "refuse", "line 2", "vpr_score")
    case("negative_score.csv",
         "hostname,ip_address,cve,severity,vpr_score,plugin_id\r\nweb01.example.com,10.0.0.1,CVE-2024-1001,High,-4,20001\r\n",
         "refuse", "line 2", "vpr_score")
    case("unknown_severity.csv", good().replace("High", "Apocalyptic", 1), "refuse", "line 2", "severity")
    case("bad_ip.csv", good().replace("10.0.0.1,", "999.1.1.1,", 1), "refuse", "line 2", "ip")
    case("tickets_as_vulns.csv",
         "xt_number,date_submitted,date_due,hexagon_ticket,service_now_ticket,location,devices,supervisor,tech,status,notes\r\n"
         "XT-12,2025-11-01,2025-11-30,HX1,SN1,Site A,host1,Ann,Bob,Open,\r\n", "refuse", "ticket")
    # Odd but valid: must import.
    case("bom_utf8.csv", "\ufeff" + good(), "accept", note="UTF-8 BOM from Excel is stripped")
    case("crlf_cr_lf_mix.csv", HEADER + "\r\n" + rows(1)[0] + "\n" + rows(1, 2)[0] + "\r\n" + rows(1, 3)[0] + "\n",
         "accept", note="mixed CRLF/LF line ends")
    case("formula_cells.csv", good().replace("OpenSSL Remote Code Execution", '"=HYPERLINK(""http://x"",""y"")"', 1),
         "accept", note="formula-looking text is stored as text, never evaluated")
    case("quoted_newlines.csv", good().replace("OpenSSL Remote Code Execution", '"OpenSSL\nRemote ""Code"" Execution"', 1),
         "accept", note="RFC 4180 quoting with embedded newline and quotes")
    case("title_case_columns.csv",
         "Host,IP Address,CVE,Severity,Plugin ID,State\r\nweb01.example.com,10.0.0.1,CVE-2024-1001,High,20001,ACTIVE\r\n",
         "accept", note="HexTrackr's title-case aliases")


def main() -> None:
    build()
    HERE.mkdir(parents=True, exist_ok=True)
    for old in HERE.iterdir():
        if old.name != "manifest.json":
            old.unlink()
    manifest = {}
    for name, (data, meta) in sorted(CASES.items()):
        (HERE / name).write_bytes(data)
        manifest[name] = meta
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"{len(CASES)} files in {HERE} ({sum(m['expect'] == 'refuse' for _, m in CASES.values())} refused)")


if __name__ == "__main__":
    main()
