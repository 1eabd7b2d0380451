"""SqlExampleGen: the rows of a SQL query -> Examples, through SQLAlchemy (any database it speaks).

Values are turned into text and typed by the CSV rules of :mod:`mlpipe.io.examples` (a column of
integers is INT, with any float FLOAT, else BYTES), so a table exported to CSV and the same table
queried give the same values, whatever types the driver returns (SQLite's columns, for one, have no
fixed type). NULL is a feature without a kind, as in TFX's SQL ExampleGens (``dict_to_example``),
where an empty CSV cell is an empty value list. Rows are hash-split on their text like CSV rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlpipe.components.example_gen import BaseExampleGen, InputRecords, encode_tables, write_splits
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
        from mlpipe.io import examples as io

        query = ctx.parameters["query"]
        table = query_as_text(query, ctx.parameters["connection_url"])
        data: InputRecords = encode_tables(
            {"single_split": table}, io.infer_column_types, io.row_fingerprints
        )
        write_splits(ctx, data)
        out = ctx.outputs["examples"]
        out.set_property("span", 0)
        out.set_property("version", 0)
        out.set_custom_property("query", query)


def query_as_text(query: str, connection_url: str) -> pa.Table:
    """The query's rows as string columns (NULL -> null); SQL errors quote the query and the database."""
    import pyarrow as pa
    import sqlalchemy as sa

    url = sa.engine.make_url(connection_url)
    where = url.render_as_string(hide_password=True)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            result = connection.execute(sa.text(query))
            names = list(result.keys())
            rows = result.fetchall()
    except sa.exc.DBAPIError as e:
        raise DataError(
            f"query {query!r} failed on {where}: {e.orig}; fix the query or the database"
        ) from None
    except sa.exc.SQLAlchemyError as e:
        raise DataError(f"query {query!r} cannot run on {where}: {e}") from None
    finally:
        engine.dispose()
    if not names:
        raise DataError(f"query {query!r} on {where} returns no columns; it must be a SELECT")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(
            f"query {query!r}: column name(s) {repeated} appear more than once; name them apart with AS "
            f"(each becomes a feature)"
        )
    if not rows:
        raise DataError(f"query {query!r} on {where} returned no rows; expected training data")
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
