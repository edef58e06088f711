"""Bytes of an export file to a table of strings: gzip, .xlsx, text encodings, the delimiter.

Text is UTF-8 (with or without a byte-order mark) or UTF-16 (Excel's "Unicode text", tab-separated, with a BOM);
anything else is read as Windows-1252, the encoding Excel on Windows saves "CSV" in, and said so in a note.
The delimiter is the one of ``,`` ``;`` tab that splits the header line into the most fields. A row with more
fields than the header is kept aside (counted as ``ragged_row``), never a reason to give up on the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DELIMITERS = (",", ";", "\t")
EXPORT_SUFFIXES = (".csv", ".csv.gz", ".gz", ".tsv", ".xlsx")
"""File names (lower case) read as sales exports, in a folder or under the sales prefix; other files are ignored."""


class DecodeError(ValueError):
    """The file as a whole cannot be read as a table; the message says why, without the file's name."""


@dataclass
class DecodedTable:
    frame: pd.DataFrame
    """Every cell a string ("" or missing when empty; surrounding blanks may remain), the file's own headers."""
    lines: Sequence[int]
    """Line (CSV) or row (xlsx) number of each row, the header being 1."""
    ragged: list[int] = field(default_factory=list)
    """Lines that had more fields than the header."""
    notes: list[str] = field(default_factory=list)


def _is_xlsx(data: bytes) -> bool:
    if data[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.startswith("xl/") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Text of the bytes and a note when it was not UTF-8."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError as exc:
            raise DecodeError(f"starts as UTF-16 but is not UTF-16 text ({exc.reason})") from exc
    if len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0:4:2] != b"\x00\x00":
        return data.decode("utf-16-le", errors="replace"), None
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), None
    except UnicodeDecodeError as exc:
        text = data.decode("cp1252", errors="replace")
        return text, (
            f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): read as Windows-1252; "
            "export as UTF-8 if names look wrong"
        )


def unwrap(data: bytes) -> bytes:
    """Undo gzip; a corrupt gzip stream is a :class:`DecodeError`."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DecodeError(f"looks gzipped but cannot be decompressed ({exc})") from exc
    return data


def sniff_delimiter(header_line: str) -> str:
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))


def _strip(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for column in frame.columns:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=True)
        cleaned = pd.Index(uniques, dtype=object).astype(str).str.strip().to_numpy(dtype=object)
        values = cleaned[codes] if len(cleaned) else codes.astype(object)
        values[codes < 0] = ""
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


def _read_xlsx(data: bytes) -> DecodedTable:
    try:
        frame = pd.read_excel(io.BytesIO(data), sheet_name=0, dtype=str, engine="openpyxl", keep_default_na=False)
    except ImportError as exc:
        raise DecodeError("is an .xlsx workbook and openpyxl is not installed") from exc
    except Exception as exc:  # openpyxl raises many kinds on a broken workbook
        raise DecodeError(f"is not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = _strip(frame)
    # Excel stores dates as datetimes; pandas writes them as "YYYY-MM-DD 00:00:00", which parses as ISO
    return DecodedTable(frame=frame.reset_index(drop=True), lines=list(range(2, len(frame) + 2)))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name.strip()
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out


def _read_csv_text(
    text: str, delimiter: str | None, float_columns: Callable[[list[str]], Iterable[str]] | None = None
) -> DecodedTable:
    header_line = next((line.rstrip("\r\n") for line in io.StringIO(text) if line.strip()), "")
    delimiter = delimiter or sniff_delimiter(header_line)
    # the header named explicitly: otherwise a first row with extra fields silently becomes an index
    names = _unique(next(csv.reader([header_line], delimiter=delimiter), []))
    options = {
        "sep": delimiter,
        "dtype": str,
        "keep_default_na": False,
        "na_filter": False,
        "skip_blank_lines": True,
        "skipinitialspace": True,
        "names": names,
        "header": 0,
    }
    numeric = set(float_columns(names)) if float_columns else set()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                # a clean file's numbers are parsed by the C reader; any other value sends the file to strings
                dtype = {c: ("float64" if c in numeric else str) for c in names}
                frame = pd.read_csv(io.StringIO(text), index_col=False, **{**options, "dtype": dtype})
            except (ValueError, OverflowError) as exc:
                if isinstance(exc, pd.errors.ParserError) or not numeric:
                    raise
                frame = pd.read_csv(io.StringIO(text), index_col=False, **options)
    except pd.errors.EmptyDataError as exc:
        raise DecodeError("is empty") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        # rows with more fields than the header: pandas either fails or silently shifts or cuts them, so this
        # (rare) file is split by the csv module, which also gives each row's line number
        return _read_ragged(text, delimiter, names)
    # cells are not stripped here: the reader strips the fields it uses, once per distinct value
    frame.columns = [str(c).strip() for c in frame.columns]
    # line numbers of the rows: the reader skips blank lines (a quoted field spanning lines shifts them)
    line_count = text.count("\n") + (0 if text.endswith("\n") else 1)
    if line_count == len(frame) + 1:
        numbers = np.arange(2, len(frame) + 2)
    else:
        numbers = np.asarray([i for i, line in enumerate(text.splitlines(), start=1) if line.strip()][1:])
        if len(numbers) != len(frame):
            numbers = np.arange(2, len(frame) + 2)
    return DecodedTable(frame=frame.reset_index(drop=True), lines=numbers)


def _read_ragged(text: str, delimiter: str, names: list[str]) -> DecodedTable:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    width = len(names)
    rows: list[list[str]] = []
    numbers: list[int] = []
    ragged: list[int] = []
    header_seen = False
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if not header_seen:
            header_seen = True
            continue
        if len(fields) > width:
            ragged.append(reader.line_num)
            continue
        rows.append([f.strip() for f in fields] + [""] * (width - len(fields)))
        numbers.append(reader.line_num)
    frame = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(columns=names, dtype=object)
    return DecodedTable(frame=frame, lines=numbers, ragged=ragged)


def read_table(
    data: bytes,
    *,
    delimiter: str | None = None,
    float_columns: Callable[[list[str]], Iterable[str]] | None = None,
) -> DecodedTable:
    """The file as strings: gzip undone, xlsx through openpyxl, text decoded, delimiter sniffed.

    ``float_columns(headers)`` names the columns to try as plain numbers first (they come back as float64 when
    every value is one, as strings otherwise).
    """
    data = unwrap(data)
    if not data.strip():
        raise DecodeError("is empty")
    if _is_xlsx(data):
        table = _read_xlsx(data)
    else:
        text, note = decode_text(data)
        if not text.strip():
            raise DecodeError("is empty")
        table = _read_csv_text(text, delimiter, float_columns)
        if note:
            table.notes.append(note)
    if not len(table.frame.columns):
        raise DecodeError("is empty")
    if table.frame.empty and not table.ragged:
        raise DecodeError("has a header but no rows")
    return table
