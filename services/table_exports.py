"""A table as a file to download — CSV, XLSX or ODS — with the same columns and French headers
as the screen it comes from (the work queue, a council session's agenda). Docs: docs/letters.md.

- Rows come in as an iterator (read by the caller in bounded keyset batches) and are written as
  they come: the CSV is streamed batch by batch; XLSX uses openpyxl's write-only workbook (rows
  are written to a temporary file, not kept as objects); ODS (odfpy) is built in memory.
- Amounts are real numbers: a `Decimal` becomes a numeric cell with a euro number format
  (`# ##0,00 €`), never text; dates are date cells (shown JJ/MM/AAAA); in the CSV, French
  spreadsheet conventions (`;`, decimal comma without grouping, JJ/MM/AAAA, UTF-8 with BOM).
- Text cells go through the one neutraliser (`services.csv_export.neutralise_cell`) in all three
  formats: openpyxl writes a string beginning with `=` as a formula, and LibreOffice reads one
  typed in a CSV as such, so a company name `=HYPERLINK(…)` must stay text everywhere.

ODS: odfpy (the library pandas uses to write ODS; pure Python, one dependency, defusedxml) rather
than pyexcel-ods3, which stands on ezodf (last released 2015) and lxml, and has no cell types of
its own beyond what it passes through."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Iterator, Literal, Sequence

from rules import french
from services.csv_export import neutralise_cell, write_csv

Kind = Literal["text", "money", "date", "int"]
FORMATS = ("csv", "xlsx", "ods")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}
XLSX_EURO = '#,##0.00\\ "€"'
XLSX_DATE = "DD/MM/YYYY"
CSV_BATCH = 500


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = "text"
    width: int | None = None  # in characters, for a column whose values run longer than its header


# An XLSX column's width when its Column gives none: its header's, at least what its kind needs
# (rows are streamed, so the width cannot be read from every value before they are written).
XLSX_WIDTHS: dict[str, int] = {"text": 14, "money": 16, "date": 12, "int": 8}


def xlsx_width(column: Column) -> int:
    return max(column.width or 0, len(column.header) + 2, XLSX_WIDTHS[column.kind])


def _csv_cell(value, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "money":
        return french.number(Decimal(value), 2, grouping=False)
    if kind == "date":
        return french.day(value.date() if isinstance(value, datetime) else value)
    return str(value)


def csv_chunks(columns: Sequence[Column], rows: Iterable[Sequence], *, title: str | None = None) -> Iterator[bytes]:
    """The CSV file in pieces of `CSV_BATCH` rows (the first with the BOM, the title and header)."""
    headers = [c.header for c in columns]
    yield ("\ufeff" + write_csv(headers, [], delimiter=";", preamble=[title] if title else [])).encode("utf-8")
    batch: list[dict] = []
    for row in rows:
        batch.append({c.header: _csv_cell(v, c.kind) for c, v in zip(columns, row)})
        if len(batch) >= CSV_BATCH:
            yield write_csv(headers, batch, delimiter=";", header=False).encode("utf-8")
            batch = []
    if batch:
        yield write_csv(headers, batch, delimiter=";", header=False).encode("utf-8")


def xlsx_bytes(columns: Sequence[Column], rows: Iterable[Sequence], *, title: str | None = None,
               sheet: str = "Export") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet[:31])
    for number, c in enumerate(columns, start=1):  # before any row: a write-only sheet's rule
        ws.column_dimensions[get_column_letter(number)].width = xlsx_width(c)
    bold = Font(bold=True)
    if title:
        cell = WriteOnlyCell(ws, value=neutralise_cell(title))
        cell.font = bold
        ws.append([cell])
    header = []
    for c in columns:
        cell = WriteOnlyCell(ws, value=neutralise_cell(c.header))
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for row in rows:
        out = []
        for c, value in zip(columns, row):
            if value is None:
                out.append(None)
            elif c.kind == "money":
                cell = WriteOnlyCell(ws, value=Decimal(value))
                cell.number_format = XLSX_EURO
                out.append(cell)
            elif c.kind == "date":
                cell = WriteOnlyCell(ws, value=value.date() if isinstance(value, datetime) else value)
                cell.number_format = XLSX_DATE
                out.append(cell)
            elif c.kind == "int":
                out.append(int(value))
            else:
                out.append(neutralise_cell(value))
        ws.append(out)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def ods_bytes(columns: Sequence[Column], rows: Iterable[Sequence], *, title: str | None = None,
              sheet: str = "Export") -> bytes:
    from odf.number import CurrencyStyle, CurrencySymbol, DateStyle, Day, Month, Number, Year
    from odf.number import Text as NumberText
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TextProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    euro = CurrencyStyle(name="euro")
    euro.addElement(Number(decimalplaces="2", minintegerdigits="1", grouping="true"))
    euro.addElement(NumberText(text="\u00a0"))
    euro.addElement(CurrencySymbol(language="fr", country="FR", text="€"))
    day = DateStyle(name="jour")
    for part in (Day(style="long"), NumberText(text="/"), Month(style="long"), NumberText(text="/"), Year(style="long")):
        day.addElement(part)
    doc.automaticstyles.addElement(euro)
    doc.automaticstyles.addElement(day)
    money_style = Style(name="montant", family="table-cell", datastylename="euro")
    date_style = Style(name="date", family="table-cell", datastylename="jour")
    head_style = Style(name="entete", family="table-cell")
    head_style.addElement(TextProperties(fontweight="bold"))
    for s in (money_style, date_style, head_style):
        doc.automaticstyles.addElement(s)
    table = Table(name=sheet[:31])

    def text_cell(value: str, style=None) -> TableCell:
        cell = TableCell(valuetype="string", stylename=style) if style else TableCell(valuetype="string")
        cell.addElement(P(text=value))
        return cell

    if title:
        tr = TableRow()
        tr.addElement(text_cell(neutralise_cell(title), head_style))
        table.addElement(tr)
    tr = TableRow()
    for c in columns:
        tr.addElement(text_cell(neutralise_cell(c.header), head_style))
    table.addElement(tr)
    for row in rows:
        tr = TableRow()
        for c, value in zip(columns, row):
            if value is None:
                tr.addElement(TableCell())
            elif c.kind == "money":
                amount = french.round_cents(Decimal(value))
                cell = TableCell(valuetype="currency", currency="EUR", value=str(amount), stylename=money_style)
                cell.addElement(P(text=french.euros(amount)))
                tr.addElement(cell)
            elif c.kind == "date":
                d = value.date() if isinstance(value, datetime) else value
                cell = TableCell(valuetype="date", datevalue=d.isoformat(), stylename=date_style)
                cell.addElement(P(text=french.day(d)))
                tr.addElement(cell)
            elif c.kind == "int":
                cell = TableCell(valuetype="float", value=str(int(value)))
                cell.addElement(P(text=str(int(value))))
                tr.addElement(cell)
            else:
                tr.addElement(text_cell(neutralise_cell(value)))
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    doc.write(buffer)
    return buffer.getvalue()


def export_file(fmt: str, columns: Sequence[Column], rows: Iterable[Sequence], *, title: str | None = None,
                sheet: str = "Export") -> Iterator[bytes]:
    """The file in the format asked for, as pieces to stream (one piece for XLSX and ODS)."""
    if fmt == "csv":
        yield from csv_chunks(columns, rows, title=title)
    elif fmt == "xlsx":
        yield xlsx_bytes(columns, rows, title=title, sheet=sheet)
    elif fmt == "ods":
        yield ods_bytes(columns, rows, title=title, sheet=sheet)
    else:
        raise ValueError(f"format d'export inconnu : {fmt}")
