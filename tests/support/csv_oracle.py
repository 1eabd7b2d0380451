"""Python's ``csv`` module as the oracle for mlpipe's CSV reader, and CSV files to fuzz it with.

The oracle is the reader TFX's CsvExampleGen parses cells with (``csv.reader``, here strict) plus
the rules mlpipe states for a CSV input, each independent of mlpipe's code: UTF-8 (a leading BOM
dropped), no NUL byte, blank lines skipped, the first record is the header (names non-empty and
unique), at least one row, every row as wide as the header, an empty cell missing (None).
"""

from __future__ import annotations

import csv
import io
import random

from hypothesis import strategies as st

BOM = b"\xef\xbb\xbf"


def oracle_rows(data: bytes) -> tuple[list[str], list[list[str | None]]] | None:
    """(header, rows) as Python's csv module reads the file, or None where a rule rejects it."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if not data.strip():
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if r]
    except csv.Error:
        return None
    header, rows = records[0], records[1:]
    if not all(header) or len(set(header)) != len(header) or not rows:
        return None
    if any(len(row) != len(header) for row in rows):
        return None
    return header, [[v if v != "" else None for v in row] for row in rows]


# Pieces CSV trips over: separators, quotes, line breaks of every kind, spaces, multi-byte and
# broken UTF-8, NUL, a BOM, and plain text and numbers.
_TOKENS = [
    b",",
    b'"',
    b'""',
    b"\n",
    b"\r",
    b"\r\n",
    b" ",
    b"a",
    b"b7",
    b"1",
    b"-2.5",
    b"\xc3\xa9",
    b"\xf0\x9f\x99\x82",
]
_RARE = [b"\xff", b"\x00", BOM, b"\t", b"'"]


def _quoted(value: bytes) -> bytes:
    return b'"' + value.replace(b'"', b'""') + b'"'


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """Mostly well-formed CSV (a header, rows of the same width, some values quoted with quotes,
    commas and line breaks inside), then a few random edits; or a soup of CSV's special pieces.

    One draw of a seeded ``random.Random`` builds the file (hypothesis' per-value draws cost ~1 ms
    a file); the soup is drawn piece by piece, so hypothesis shrinks a failing soup."""
    if draw(st.integers(0, 3)) == 0:
        tokens = st.sampled_from(_TOKENS) | st.sampled_from(_RARE)
        return b"".join(draw(st.lists(tokens, max_size=40)))
    return _structured(draw(st.randoms(use_true_random=False)))


def _structured(rng: random.Random) -> bytes:
    width = rng.randint(1, 4)
    rows = [[rng.choice([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b""]) for _ in range(width)]]
    for _ in range(rng.randint(0, 5)):
        row_width = width if rng.randrange(10) else rng.randint(1, 5)
        row = []
        for _ in range(row_width):
            if rng.randrange(2):
                row.append(
                    rng.choice([b"", b"x", b"12", b"-3.5e2", b"nan", b" y ", b"\xc3\xa9t\xc3\xa9", b'q"q'])
                )
            else:
                row.append(_quoted(b"".join(rng.choices(_TOKENS, k=rng.randint(0, 4)))))
        rows.append(row)
    newline = rng.choice([b"\n", b"\r\n", b"\r"])
    data = newline.join(b",".join(row) for row in rows) + rng.choice([newline, b""])
    for _ in range(rng.choice([0, 0, 1, 2])):  # a stray piece somewhere: an open quote, a lone CR...
        at = rng.randint(0, len(data))
        data = data[:at] + rng.choice(_TOKENS + _RARE) + data[at:]
    return data
