"""HexTrackr ticket files: what its importer reads and what its own export writes (a round trip works)."""

from __future__ import annotations

from dataclasses import dataclass

from hextrackr_cli.formats.csvbase import CsvReader, RowMapper
from hextrackr_cli.formats.records import TICKET_FIELDS, TICKETS, Ticket
from hextrackr_cli.formats.registry import Format
from hextrackr_cli.formats.values import normalize_xt_number

_COLUMNS: dict[str, tuple[str, ...]] = {
    "xt_number": ("xt_number", "XT Number", "xtNumber", "XT#"),
    "date_submitted": ("date_submitted", "Date Submitted"),
    "date_due": ("date_due", "Date Due"),
    "hexagon_ticket": ("hexagon_ticket", "Hexagon Ticket", "Hexagon Ticket #"),
    "service_now_ticket": ("service_now_ticket", "ServiceNow Ticket", "Service Now #"),
    "location": ("location", "Location"),
    "devices": ("devices", "Devices"),
    "supervisor": ("supervisor", "Supervisor"),
    "tech": ("tech", "Tech"),
    "status": ("status", "Status"),
    "notes": ("notes", "Notes"),
}


@dataclass
class TicketReader(CsvReader):
    def mapper(self, fmt: Format) -> RowMapper:
        positions = [fmt.index.get(f, -1) for f in TICKET_FIELDS]
        pad = -1 in positions
        status_at = TICKET_FIELDS.index("status")

        def map_row(row: list, record: int = 0, line: int = 0) -> list:
            if pad:
                row.append("")
            values = [row[i].strip() for i in positions]
            values[0] = normalize_xt_number(values[0])
            if not values[status_at]:
                values[status_at] = "Open"
            return [Ticket._make([*values, record, line])]

        return map_row


HEXTRACKR_TICKETS = TicketReader(
    name=TICKETS,
    title="HexTrackr tickets",
    kind=TICKETS,
    vendor="generic",
    expected="tickets (xt_number, date_submitted, status, ...)",
    columns=_COLUMNS,
    required=(("xt_number",),),
)
