"""Which input files an ExampleGen reads: TFX's ``input_config`` split patterns with span/version/date.

A pattern is a glob relative to ``input_base`` in which ``{SPAN}``, ``{VERSION}`` and the date
``{YYYY}{MM}{DD}`` stand for digits. Data that arrives over time (one folder per day or per batch)
is then read one span at a time: the latest span by default, and within it the latest version, so a
re-delivered span replaces the old one without anyone editing the pipeline. A date is a span too:
its number is the days since 1970-01-01, as in TFX.

``range_config`` picks spans explicitly: ``{"static_range": {"start_span_number": a,
"end_span_number": b}}`` (every span from a to b must exist) or ``{"rolling_range": {"num_spans":
n}}`` (the latest n spans, optionally not before ``start_span_number``). Unlike TFX, which reads
exactly one span per ExampleGen run, several spans are read into one Examples artifact whose
``span`` is the latest of them (each span at its own latest version; ``version`` is the latest
span's); the custom property ``spans`` lists them all. This is what a model trained on a window of
days needs, without one ExampleGen per day.

Checks that need no file system run when the pipeline is defined (DefinitionError); what depends
on the files on disk is checked when the node runs (DataError).
"""

from __future__ import annotations

import datetime
import glob
import os
import re
from dataclasses import dataclass
from typing import Any

from mlpipe.errors import DataError, DefinitionError
from mlpipe.io.objstore import list_children, list_objects
from mlpipe.io.uris import is_remote, join

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DATE_PARTS = ("YYYY", "MM", "DD")
_KNOWN = {"SPAN", "VERSION", *_DATE_PARTS}
_EPOCH = datetime.date(1970, 1, 1)
_INPUT_CONFIG_EXAMPLE = '{"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*.csv"}, ...]}'


@dataclass(frozen=True)
class SplitPattern:
    """One input split: its name and its glob (relative to ``input_base``) with placeholders."""

    name: str
    pattern: str

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(_PLACEHOLDER.findall(self.pattern))

    @property
    def has_span(self) -> bool:
        return bool(self.placeholders & {"SPAN", *_DATE_PARTS})


@dataclass(frozen=True)
class ResolvedInput:
    """The files to read per split, and the span/version they belong to (0/0 without placeholders)."""

    files: dict[str, list[str]]
    span: int
    version: int
    spans: list[int]


def check_input_config(
    input_config: dict[str, Any] | None, range_config: dict[str, Any] | None, default_pattern: str = "*"
) -> list[SplitPattern]:
    """The split patterns of ``input_config`` (default: one split of ``default_pattern``), checked.

    Raises DefinitionError for a malformed config, an unknown or repeated placeholder, a
    ``{VERSION}`` without a span, a partial date, splits that disagree on placeholders, or a
    ``range_config`` without a span placeholder to range over.
    """
    if input_config is None:
        splits = [SplitPattern("single_split", default_pattern)]
    else:
        raw = input_config.get("splits") if isinstance(input_config, dict) else None
        if set(input_config or {}) != {"splits"} or not isinstance(raw, list) or not raw:
            raise DefinitionError(
                f"input_config must look like {_INPUT_CONFIG_EXAMPLE}, got {input_config!r}"
            )
        splits = []
        for split in raw:
            name = split.get("name") if isinstance(split, dict) else None
            pattern = split.get("pattern") if isinstance(split, dict) else None
            if not isinstance(name, str) or not name or not isinstance(pattern, str) or not pattern:
                raise DefinitionError(
                    f"input_config: each split needs a non-empty 'name' and 'pattern', got {split!r}"
                )
            splits.append(SplitPattern(name, pattern))
        names = [s.name for s in splits]
        if len(set(names)) != len(names):
            raise DefinitionError(f"input_config: split names must be unique, got {names}")
    for split in splits:
        _check_placeholders(split)
    if len({s.placeholders for s in splits}) > 1:
        found = {s.name: sorted(s.placeholders) for s in splits}
        raise DefinitionError(
            f"input_config: every split pattern must use the same placeholders, got {found}; "
            f"the span and version are chosen once for all splits"
        )
    _check_range_config(range_config, splits[0])
    return splits


def _check_placeholders(split: SplitPattern) -> None:
    found = _PLACEHOLDER.findall(split.pattern)
    where = f"input_config split {split.name!r} pattern {split.pattern!r}"
    unknown = sorted(set(found) - _KNOWN)
    if unknown:
        raise DefinitionError(
            f"{where}: unknown placeholder(s) {['{' + u + '}' for u in unknown]}; "
            f"use {{SPAN}}, {{VERSION}} or {{YYYY}}{{MM}}{{DD}}"
        )
    repeated = sorted({p for p in found if found.count(p) > 1})
    if repeated:
        raise DefinitionError(
            f"{where}: {['{' + r + '}' for r in repeated]} appear(s) more than once; use each once"
        )
    date = set(found) & set(_DATE_PARTS)
    if date and date != set(_DATE_PARTS):
        raise DefinitionError(f"{where}: a date needs all of {{YYYY}}, {{MM}} and {{DD}}, got {sorted(date)}")
    if date and "SPAN" in found:
        raise DefinitionError(f"{where}: use either {{SPAN}} or a {{YYYY}}{{MM}}{{DD}} date, not both")
    if "VERSION" in found and not (date or "SPAN" in found):
        raise DefinitionError(
            f"{where}: {{VERSION}} needs a {{SPAN}} or {{YYYY}}{{MM}}{{DD}} placeholder too"
        )


def _check_range_config(range_config: dict[str, Any] | None, split: SplitPattern) -> None:
    if range_config is None:
        return
    example = (
        '{"static_range": {"start_span_number": 1, "end_span_number": 3}} or '
        '{"rolling_range": {"num_spans": 2}}'
    )
    if not isinstance(range_config, dict) or len(range_config) != 1:
        raise DefinitionError(f"range_config must look like {example}, got {range_config!r}")
    ((kind, fields),) = range_config.items()
    allowed = {
        "static_range": ({"start_span_number", "end_span_number"}, {"start_span_number", "end_span_number"}),
        "rolling_range": ({"num_spans"}, {"num_spans", "start_span_number"}),
    }
    if kind not in allowed or not isinstance(fields, dict):
        raise DefinitionError(f"range_config must look like {example}, got {range_config!r}")
    required, accepted = allowed[kind]
    bad = [k for k, v in fields.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if not required <= set(fields) <= accepted or bad:
        raise DefinitionError(
            f"range_config.{kind} takes non-negative ints {sorted(accepted)} (required: {sorted(required)}), "
            f"got {fields!r}"
        )
    if kind == "static_range" and fields["start_span_number"] > fields["end_span_number"]:
        raise DefinitionError(f"range_config.static_range: start_span_number > end_span_number in {fields!r}")
    if kind == "rolling_range" and fields["num_spans"] < 1:
        raise DefinitionError("range_config.rolling_range.num_spans must be at least 1")
    if not split.has_span:
        raise DefinitionError(
            f"range_config selects spans, but pattern {split.pattern!r} has no {{SPAN}} or "
            f"{{YYYY}}{{MM}}{{DD}} placeholder; add one or drop range_config"
        )


def resolve_input(
    input_base: str, splits: list[SplitPattern], range_config: dict[str, Any] | None
) -> ResolvedInput:
    """Match the patterns against the files under ``input_base`` and pick the span(s) and version."""
    if not is_remote(input_base) and not os.path.isdir(input_base):
        raise DataError(
            f"input_base {input_base!r} is not a directory; pass the folder holding the input files"
        )
    matches = {s.name: _matches(input_base, s) for s in splits}
    first = splits[0]
    if not first.has_span:
        for split in splits:
            if not matches[split.name]:
                raise _no_match(input_base, split)
        files = {name: sorted(path for path, _, _ in found) for name, found in matches.items()}
        return ResolvedInput(files, 0, 0, [])
    if not matches[first.name]:
        raise _no_match(input_base, first)
    available = sorted({span for _, span, _ in matches[first.name]})
    spans = _select_spans(available, range_config, first, input_base)
    latest_version = {
        span: max(version for _, s, version in matches[first.name] if s == span) for span in spans
    }
    files = {}
    for split in splits:
        chosen = sorted(
            path for path, span, version in matches[split.name] if latest_version.get(span, -1) == version
        )
        missing = [s for s in spans if not any(sp == s for _, sp, _ in matches[split.name])]
        if missing:
            raise DataError(
                f"input_config split {split.name!r}: pattern {split.pattern!r} matches no file of span(s) "
                f"{missing} under {input_base!r}, but split {first.name!r} has them; deliver every split "
                f"of a span together"
            )
        files[split.name] = chosen
    return ResolvedInput(files, spans[-1], latest_version[spans[-1]], spans)


def _select_spans(
    available: list[int], range_config: dict[str, Any] | None, split: SplitPattern, input_base: str
) -> list[int]:
    if range_config is None:
        return available[-1:]
    if "static_range" in range_config:
        lo, hi = (
            range_config["static_range"]["start_span_number"],
            range_config["static_range"]["end_span_number"],
        )
        missing = sorted(set(range(lo, hi + 1)) - set(available))
        if missing:
            raise DataError(
                f"range_config.static_range asks for spans {lo}..{hi}, but pattern {split.pattern!r} under "
                f"{input_base!r} has no file of span(s) {missing} (spans present: {available}); deliver them "
                f"or narrow the range"
            )
        return list(range(lo, hi + 1))
    rolling = range_config["rolling_range"]
    eligible = [s for s in available if s >= rolling.get("start_span_number", 0)]
    if not eligible:
        raise DataError(
            f"range_config.rolling_range starts at span {rolling['start_span_number']}, but pattern "
            f"{split.pattern!r} under {input_base!r} only has spans {available}"
        )
    return eligible[-rolling["num_spans"] :]


def _matches(input_base: str, split: SplitPattern) -> list[tuple[str, int, int]]:
    """(path, span, version) of every file the pattern matches; span/version 0 where absent."""
    wildcard = _PLACEHOLDER.sub("*", split.pattern)
    regex = re.compile(_pattern_regex(split.pattern))
    found = []
    for path, relative in _files(input_base, wildcard):
        if relative.rsplit("/", 1)[-1].startswith("."):
            continue
        match = regex.fullmatch(relative)
        if match is None:  # the glob's '*' accepted non-digits where a placeholder stands
            continue
        values = match.groupdict()
        version = int(values.get("VERSION") or 0)
        if "YYYY" in values:
            span = _date_span(path, values)
        else:
            span = int(values.get("SPAN") or 0)
        found.append((path, span, version))
    return found


def _files(input_base: str, wildcard: str) -> list[tuple[str, str]]:
    """(path or URI, path relative to input_base with '/') of the files a pattern may match.

    On object storage there is no glob: every object under the prefix is a candidate, and the
    pattern's regex alone decides.
    """
    if is_remote(input_base):
        return [(join(input_base, o.key), o.key) for o in list_objects(input_base)]
    paths = glob.glob(os.path.join(glob.escape(input_base), wildcard))
    return [(p, os.path.relpath(p, input_base).replace(os.sep, "/")) for p in paths if os.path.isfile(p)]


def _pattern_regex(pattern: str) -> str:
    """A regex for a glob whose placeholders become named groups of digits (one path segment)."""
    widths = {"YYYY": 4, "MM": 2, "DD": 2}
    parts = []
    for i, piece in enumerate(_PLACEHOLDER.split(pattern)):
        if i % 2:
            parts.append(f"(?P<{piece}>\\d{{{widths[piece]}}})" if piece in widths else f"(?P<{piece}>\\d+)")
        else:
            parts.append(_glob_regex(piece))
    return "".join(parts)


def _glob_regex(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in text[i + 1 :]:
            end = text.index("]", i + 1)
            body = text[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _date_span(path: str, values: dict[str, str]) -> int:
    try:
        date = datetime.date(int(values["YYYY"]), int(values["MM"]), int(values["DD"]))
    except ValueError:
        raise DataError(
            f"{path}: {values['YYYY']}-{values['MM']}-{values['DD']} in its path is not a valid date; "
            f"rename it or narrow the pattern"
        ) from None
    return (date - _EPOCH).days


def _no_match(input_base: str, split: SplitPattern) -> DataError:
    try:
        entries = sorted(list_children(input_base) if is_remote(input_base) else os.listdir(input_base))
    except OSError:
        entries = []
    shown = ", ".join(entries[:10]) + (f", ... ({len(entries)} entries)" if len(entries) > 10 else "")
    return DataError(
        f"input_config split {split.name!r}: pattern {split.pattern!r} matches no file under {input_base!r} "
        f"(it contains: {shown or 'nothing'}); placeholders {{SPAN}}/{{VERSION}} match digits only, and "
        f"the pattern is relative to input_base"
    )
