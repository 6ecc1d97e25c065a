"""Spreadsheets: each sheet cut into regions of rows, each region cited by its range.

A region is a run of rows that fits in about one chunk (`REGION_CHARS`); it starts
with the sheet's header row (its first non-empty row), repeated in every region so a
chunk of figures still says what the columns are. Every block of a region carries the
locator `Sheet!A21:D40` (the rows the region itself covers), so it is cited as
`budget.xlsx:Sheet!A21:D40`; the sheet name is the heading. A blank row ends a region.
Tables run to more tokens per character than prose: where a region still outgrows one
chunk, the chunker starts each of its chunks with the header row (`Block.repeated`).
A CSV or TSV file is one sheet without a name: cited as `table.csv:A21:D40`.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator

from gritdesk.ingest.document import Block, ParsedDocument, ParseFailure, SkipFile
from gritdesk.ingest.formats import BlockBudget
from gritdesk.ingest.formats.packages import check_package

# header row included; table text runs about 2.4 characters a token (rows of words and
# numbers, measured with the synthetic model's tokenizer): about 330 tokens, one chunk of
# the default 384
REGION_CHARS = 800
REGION_ROWS = 60
CELL_SEPARATOR = " | "

Row = tuple[int, list[tuple[int, str]]]  # (1-based row, [(1-based column, text)])


def column_letter(column: int) -> str:
    """1 -> A, 27 -> AA (as spreadsheets name columns)."""
    letters = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


_PLAIN_SHEET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def sheet_reference(
    sheet: str | None, first_row: int, last_row: int, first_col: int, last_col: int
) -> str:
    """`Sheet!A1:D20`; a sheet name with spaces or symbols is quoted as spreadsheets do;
    `A1:D20` for a file that is a single unnamed sheet (CSV)."""
    start = f"{column_letter(first_col)}{first_row}"
    end = f"{column_letter(last_col)}{last_row}"
    cells = start if start == end else f"{start}:{end}"
    if sheet is None:
        return cells
    name = sheet if _PLAIN_SHEET_NAME.match(sheet) else "'" + sheet.replace("'", "''") + "'"
    return f"{name}!{cells}"


def cell_text(value: object) -> str:
    """A cell's value as text: whole floats without ".0", dates without midnight."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return " ".join(str(value).split())


def sheet_blocks(sheet: str | None, rows: Iterable[Row], budget: BlockBudget | None) -> list[Block]:
    """The blocks of one sheet's regions, header row first in each (`sheet` None: a CSV,
    no sheet name in the locator and no heading)."""
    heading = (sheet,) if sheet is not None else ()
    blocks: list[Block] = []
    header: Row | None = None
    region: list[Row] = []
    size = 0
    previous_row = 0

    def flush() -> None:
        nonlocal region, size
        if not region:
            return
        shown = ([header] if header is not None and region[0] is not header else []) + region
        columns = [column for _, cells in shown for column, _ in cells]
        locator = sheet_reference(sheet, region[0][0], region[-1][0], min(columns), max(columns))
        made = [
            Block(
                _row_text(cells),
                None,
                heading_path=heading,
                locator=locator,
                repeated=row is header,
            )
            for row in shown
            for _, cells in [row]
        ]
        if budget is not None:
            budget.add(made)
        blocks.extend(made)
        region, size = [], _row_size(header[1]) if header is not None else 0

    for row in rows:
        number, cells = row
        if not cells:
            continue
        if header is None:
            header = row
        elif (
            number > previous_row + 1
            or size + _row_size(cells) > REGION_CHARS
            or (len(region) >= REGION_ROWS)
        ):
            flush()
        region.append(row)
        size += _row_size(cells)
        previous_row = number
    flush()
    return blocks


def _row_text(cells: list[tuple[int, str]]) -> str:
    return CELL_SEPARATOR.join(text for _, text in cells)


def _row_size(cells: list[tuple[int, str]]) -> int:
    return sum(len(text) + len(CELL_SEPARATOR) for _, text in cells)


# --- XLSX ---------------------------------------------------------------------------------


def parse_xlsx(
    data: bytes, budget: BlockBudget | None = None, max_inflated_bytes: int | None = None
) -> ParsedDocument:
    """Every worksheet's regions, in workbook order.

    openpyxl (MIT, the reference Python reader) streams rows in read-only mode, so a
    large sheet is never held whole; cached values are read (`data_only`), not formulas.
    """
    import openpyxl

    check_package(data, "XLSX", max_inflated_bytes)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException, lxml
        raise ParseFailure(f"cannot read XLSX: {type(exc).__name__}: {exc}") from exc
    blocks: list[Block] = []
    try:
        for worksheet in workbook.worksheets:
            if not hasattr(worksheet, "iter_rows"):
                continue  # a chart sheet
            blocks.extend(sheet_blocks(worksheet.title, _xlsx_rows(worksheet), budget))
    except (SkipFile, MemoryError, RecursionError):
        raise
    except Exception as exc:
        raise ParseFailure(f"cannot read XLSX: {type(exc).__name__}: {exc}") from exc
    finally:
        workbook.close()
    return ParsedDocument("xlsx", blocks)


def _xlsx_rows(worksheet) -> Iterator[Row]:
    for row in worksheet.iter_rows():
        cells = [
            (cell.column, text)
            for cell in row
            if getattr(cell, "value", None) is not None and (text := cell_text(cell.value))
        ]
        number = next((cell.row for cell in row if getattr(cell, "row", None)), None)
        if cells and number is not None:
            yield number, cells


# --- CSV / TSV ----------------------------------------------------------------------------

_SNIFF_CHARS = 16 * 1024
_CSV_DELIMITERS = ",;\t|"


def parse_csv(text: str, suffix: str, budget: BlockBudget | None = None) -> ParsedDocument:
    """A delimited table as one unnamed sheet: row N is the file's Nth record (a quoted
    field may span lines, as spreadsheet programs count). The stdlib `csv` reader; `.tsv`
    is tab-separated, a `.csv` file's delimiter (comma, semicolon, tab or bar) is sniffed
    from its start, comma when unclear."""
    if suffix == ".tsv":
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=_CSV_DELIMITERS)
        except csv.Error:
            dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        blocks = sheet_blocks(None, _csv_rows(reader), budget)
    except csv.Error as exc:  # a field over csv.field_size_limit(), a stray quote...
        raise ParseFailure(f"cannot read {suffix[1:].upper()}: {exc}") from exc
    return ParsedDocument(suffix[1:], blocks)


def _csv_rows(reader: Iterator[list[str]]) -> Iterator[Row]:
    for number, record in enumerate(reader, 1):
        cells = [(col, text) for col, value in enumerate(record, 1) if (text := cell_text(value))]
        yield number, cells
