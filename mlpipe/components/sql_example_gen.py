"""SqlExampleGen: the rows of a SQL query -> Examples, through SQLAlchemy (any database it speaks).

Values are turned into text and typed by the CSV rules of :mod:`mlpipe.io.examples` (a column of
integers is INT, with any float FLOAT, else BYTES), so a table exported to CSV and the same table
queried give the same values, whatever types the driver returns (SQLite's columns, for one, have no
fixed type). NULL is a feature without a kind, as in TFX's SQL ExampleGens (``dict_to_example``),
where an empty CSV cell is an empty value list. Rows are hash-split on their text like CSV rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mlpipe.components.example_gen import BaseExampleGen
from mlpipe.components.example_gen_streaming import (
    Block,
    Encoded,
    Reader,
    SplitPlan,
    encode_rows,
    write_streamed_splits,
)
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.types.standard import Examples

if TYPE_CHECKING:
    import pyarrow as pa


class SqlExampleGen(BaseExampleGen):
    """``SqlExampleGen(query="SELECT ...", connection_url="sqlite:///taxi.db")``."""

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "query": ParameterSpec(str),
            "connection_url": ParameterSpec(str),
            "output_config": ParameterSpec(dict, default=None),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(self.parameters["connection_url"])
        except ArgumentError as e:
            raise DefinitionError(
                f"{self.id}: connection_url is not a SQLAlchemy URL ({e}); e.g. 'sqlite:///path/to/file.db' "
                f"or 'postgresql://user@host/db'"
            ) from None

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        query = ctx.parameters["query"]
        write_streamed_splits(ctx, SqlReader(query, ctx.parameters["connection_url"]), ["single_split"])
        out = ctx.outputs["examples"]
        out.set_property("span", 0)
        out.set_property("version", 0)
        out.set_custom_property("query", query)


class SqlReader(Reader):
    """The query's rows fetched :attr:`ROWS_PER_BLOCK` at a time from a streaming cursor; column
    kinds from the first block, held to by the rest (:mod:`mlpipe.io.column_kinds`). A wider kind
    found later runs the query again."""

    ROWS_PER_BLOCK = 65536

    def __init__(self, query: str, connection_url: str, rows_per_block: int | None = None):
        self.query, self.connection_url = query, connection_url
        self.rows_per_block = rows_per_block or self.ROWS_PER_BLOCK
        self.forced: dict[str, str] = {}
        self.kinds: dict[str, str] | None = None
        self.names: list[str] = []

    def blocks(self) -> Iterator[Block]:
        import sqlalchemy as sa

        from mlpipe.io.column_kinds import infer_kinds, wider

        query = self.query
        url = sa.engine.make_url(self.connection_url)
        where = url.render_as_string(hide_password=True)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                result = connection.execution_options(stream_results=True).execute(sa.text(query))
                self.names = names = list(result.keys())
                _check_names(query, where, names)
                first = True
                while rows := result.fetchmany(self.rows_per_block):
                    if first:
                        sample = infer_kinds(text_table(rows, names, query))
                        self.kinds = {n: wider(k, self.forced.get(n, k)) for n, k in sample.items()}
                        first = False
                    yield Block(f"query {query!r}", "single_split", rows)
                if first:
                    raise DataError(f"query {query!r} on {where} returned no rows; expected training data")
        except sa.exc.DBAPIError as e:
            raise DataError(
                f"query {query!r} failed on {where}: {e.orig}; fix the query or the database"
            ) from None
        except sa.exc.SQLAlchemyError as e:
            raise DataError(f"query {query!r} cannot run on {where}: {e}") from None
        finally:
            engine.dispose()

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        from mlpipe.io import examples as io
        from mlpipe.io.column_kinds import apply_kinds

        assert self.kinds is not None
        raw = text_table(block.payload, self.names, self.query)
        typed = apply_kinds(raw, self.kinds)
        return encode_rows(block, plan, typed, None, lambda: io.row_fingerprints(raw))

    def widen(self, kinds: dict[str, str]) -> None:
        self.forced, self.kinds = dict(kinds), None

    def schema(self) -> pa.Schema | None:
        import pyarrow as pa

        from mlpipe.io.column_kinds import arrow_type

        return None if self.kinds is None else pa.schema([(n, arrow_type(k)) for n, k in self.kinds.items()])


def _check_names(query: str, where: str, names: list[str]) -> None:
    if not names:
        raise DataError(f"query {query!r} on {where} returns no columns; it must be a SELECT")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(
            f"query {query!r}: column name(s) {repeated} appear more than once; name them apart with AS "
            f"(each becomes a feature)"
        )


def text_table(rows: Sequence[Any], names: list[str], query: str) -> pa.Table:
    """Rows of the query as string columns (NULL -> null)."""
    import pyarrow as pa

    columns = [
        pa.array([_text(row[i], query, name) for row in rows], pa.string()) for i, name in enumerate(names)
    ]
    return pa.Table.from_arrays(columns, names=names)


def _text(value: Any, query: str, column: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"query {query!r}: column {column!r} holds binary data that is not UTF-8 text; "
                f"select a text or numeric form of it"
            ) from None
    return str(value)


def query_as_text(query: str, connection_url: str) -> pa.Table:
    """All the query's rows as one table of string columns (NULL -> null), read as ExampleGen reads them."""
    import pyarrow as pa

    reader = SqlReader(query, connection_url)
    return pa.concat_tables([text_table(block.payload, reader.names, query) for block in reader.blocks()])
