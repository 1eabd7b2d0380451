"""The CSV reader reads what Python's csv module reads, and names the file and line of what it
cannot: malformed shapes one by one, then a fixed-seed fuzz run against the csv module as oracle
(the long run is ``bench/csv_fuzz.py``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from mlpipe.errors import DataError
from mlpipe.io import examples as io
from tests.support.csv_oracle import BOM, csv_files, oracle_rows

# (content, line named, words of the message)
MALFORMED = {
    "unclosed-quote": (b'a,b\n1,"oops\n2,3\n', 2, "never closed"),
    "unclosed-quote-last-line": (b'a,b\n1,2\n3,"x', 3, "never closed"),
    "unclosed-quote-in-header": (b'a,"b\n1,2\n', 1, "never closed"),
    "unclosed-after-multiline-value": (b'a,b\n1,"x\ny"\n2,"z\n', 4, "never closed"),
    "unclosed-quote-crlf": (b'a,b\r\n1,2\r\n"3,4\r\n5,6\r\n', 3, "never closed"),
    "text-after-closing-quote": (b'a,b\n1,"ab"c\n', 2, "follows the quote"),
    "space-after-closing-quote": (b'a,b\n1,"ab" \n', 2, "follows the quote"),
    "quote-pair-then-text": (b'a,b\n1,""x\n', 2, "follows the quote"),
    "stray-quote-closes-early": (b'a,b\n"1,2\n"3,4\n', 3, "follows the quote"),
    "row-too-short": (b"a,b\n1,2\n3\n", 3, "expected 2 fields"),
    "row-too-long": (b"a,b\n1,2\n3,4,5\n", 3, "expected 2 fields"),
    "trailing-comma": (b"a,b\n1,2,\n", 2, "expected 2 fields"),
    "ragged-after-multiline": (b'a,b\n1,"x\ny"\n2\n', 4, "expected 2 fields"),
    "ragged-cr-only": (b"a,b\r1,2\r3\r", 3, "expected 2 fields"),
    "whitespace-row": (b"a,b\n1,2\n   \n", 3, "expected 2 fields"),
    "bad-utf8": (b"a,b\n1,2\n3,\xff\n", 3, "not UTF-8"),
    "latin1": (b"a,b\n1,caf\xe9\n", 2, "not UTF-8"),
    "truncated-utf8": (b"a,b\n1,\xc3", 2, "not UTF-8"),
    "nul-byte": (b"a,b\n1,2\n3,\x004\n", 3, "NUL byte"),
    "utf16": ("a,b\n1,2\n".encode("utf-16-le"), 1, "NUL byte"),
    "empty-column-name": (b"a,,c\n1,2,3\n", 1, "empty column name"),
    "header-trailing-comma": (b"a,b,\n1,2,3\n", 1, "empty column name"),
    "duplicate-column-name": (b"a,b,a\n1,2,3\n", 1, "appears twice"),
    "duplicate-after-bom": (BOM + b"a,a\n1,2\n", 1, "appears twice"),
    "header-after-blank-lines": (b"\n\nx,x\n1,2\n", 3, "appears twice"),
    "quoted-empty-name": (b'a,""\n1,2\n', 1, "empty column name"),
}


@pytest.mark.parametrize("content,line,words", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_csv_is_a_data_error_naming_file_and_line(tmp_path, content, line, words):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    assert oracle_rows(content) is None  # Python's csv module (and the stated rules) reject it too
    with pytest.raises(DataError) as info:
        io.read_csv_strings([str(path)])
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and words in message


WELL_FORMED = {
    "multiline-value": (b'a,b\n1,"x\ny"\n2,3\n', [["1", "x\ny"], ["2", "3"]]),
    "crlf-inside-quotes": (b'a,b\r\n1,"x\r\ny"\r\n', [["1", "x\r\ny"]]),
    "escaped-quotes": (b'a,b\n1,"say ""hi"""\n"",""""\n', [["1", 'say "hi"'], [None, '"']]),
    "quote-inside-plain-value": (b'a,b\n1,5"\n', [["1", '5"']]),
    "mixed-line-endings": (b"a,b\r\n1,2\n3,4\r5,6", [["1", "2"], ["3", "4"], ["5", "6"]]),
    "bom-and-blank-lines": (BOM + b"a,b\n\n1,2\n\n", [["1", "2"]]),
    "empty-and-quoted-empty": (b'a,b\n,""\n', [[None, None]]),
    "unicode": ('a,b\n"é,🙂",ü\n'.encode(), [["é,🙂", "ü"]]),
}


@pytest.mark.parametrize("content,rows", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_well_formed_csv_reads_as_the_csv_module_reads_it(tmp_path, content, rows):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    table = io.read_csv_strings([str(path)])
    assert [list(r.values()) for r in table.to_pylist()] == rows
    assert oracle_rows(content) == (table.column_names, rows)


def _mlpipe_rows(data: bytes) -> tuple[list[str], list[list[str | None]]] | None:
    try:
        table = io.parse_csv("fuzz.csv", data)  # read_csv_strings' parser, without a file to write
    except DataError as e:
        assert str(e).startswith("fuzz.csv"), e  # every rejection names the file
        return None
    return table.column_names, [list(row.values()) for row in table.to_pylist()]


FUZZ_EXAMPLES = 10_000


def test_fuzzed_csv_reads_as_the_csv_module_reads_it():
    """10,000 generated files (fixed seed, ~20 s): accepted by both with the same rows, or
    rejected by both."""
    seen = {"accepted": 0, "rejected": 0}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(csv_files())
    def check(data: bytes) -> None:
        expected = oracle_rows(data)
        assert _mlpipe_rows(data) == expected
        seen["accepted" if expected else "rejected"] += 1

    check()
    # both kinds of input were tried in numbers (hypothesis stops early only if it runs out of inputs)
    assert sum(seen.values()) >= FUZZ_EXAMPLES
    assert min(seen.values()) > FUZZ_EXAMPLES // 10, seen
