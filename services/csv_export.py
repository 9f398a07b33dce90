"""Every CSV file Usine writes goes through `write_csv` (a test keeps it so): the one place where
a cell is neutralised against formula injection (« CSV injection », OWASP).

A spreadsheet (Excel, LibreOffice Calc) opening a CSV file reads a cell that begins with `=`,
`+`, `-` or `@` as a formula — `=HYPERLINK("http://…")` becomes a live link, `=1+2` a
computation, and DDE payloads can run commands — and a leading tab or carriage return does not
stop it. The open data file is published by the region and opened by anyone: a company name or
a deliberation number typed by a person must stay text. Following the OWASP guidance
(https://owasp.org/www-community/attacks/CSV_Injection), such a cell is prefixed with a single
quote (`'=1+2`), which spreadsheets show as the text `=1+2`; the cell is then quoted by the csv
module, which also doubles any double quote inside it. Cells that cannot begin so (amounts,
dates, SIRET numbers, fixed words) are written unchanged: the neutralisation only ever touches
free text, so the SCDL schema's constraints still hold (services.opendata.check_row).

The JSON form of an export is not a spreadsheet and keeps the values as they are."""
from __future__ import annotations

import csv
import io
from typing import Iterable, Mapping, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value) -> str:
    """The cell as text, prefixed with `'` when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def write_csv(columns: Sequence[str], rows: Iterable[Mapping], *, delimiter: str = ",",
              preamble: Sequence[str] = (), header: bool = True) -> str:
    """UTF-8 CSV text, CR LF line ends, optional one-cell title lines, one header line, every
    cell neutralised (comma-separated; `;` for files opened in a French spreadsheet).
    `header=False` writes the rows alone: the next batch of a file streamed in batches."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for line in preamble:
        writer.writerow([neutralise_cell(line)])
    if header:
        writer.writerow([neutralise_cell(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise_cell(row.get(c)) for c in columns])
    return out.getvalue()
