"""Interview results as Parquet: a fixed, documented schema, written a page at a time.

The columns are those of a ``merchant-result-list`` row in the API's contract, each with an
explicit Arrow type, plus ``row``: the whole row as JSON (the line the JSON Lines export writes),
so that a field the API adds later, or a value of an unexpected type, is never lost. A value that
does not fit its column's type (a score sent as text, a timestamp without an offset) is null in
that column and kept as sent in ``row``.

pyarrow is an optional dependency (``pip install "airflow-provider-jobmojito[parquet]"``): it is
imported only when a Parquet file is written, never when this module is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["RESULT_COLUMNS", "ParquetResults", "require_pyarrow", "result_schema"]

#: The install that brings pyarrow, as the error tells it.
PARQUET_EXTRA = 'pip install "airflow-provider-jobmojito[parquet]"'
#: Schema version, in the file's key-value metadata under :data:`SCHEMA_VERSION_KEY`: raised when
#: a column changes type or goes away (adding a column does not).
SCHEMA_VERSION = "1"
SCHEMA_VERSION_KEY = "jobmojito.results.schema_version"

#: The file's columns, in order: name, kind (``string``, ``bool``, ``float64``, ``timestamp``
#: for ``timestamp[ms, tz=UTC]``, ``json`` for a value as JSON text), and what it holds. Every
#: column is nullable. docs/results.md shows this table (a test holds the two together).
RESULT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("id", "string", "The result row's id (never null in the API's answers)."),
    ("interview_result_id", "string", "The interview result's id: details endpoint, webhooks."),
    ("interview_result_pre_screening_id", "string", "The pre-screening result's id, if any."),
    ("merchant_id", "string", "The owning merchant's id."),
    ("profile_id", "string", "The candidate's profile id."),
    ("profile_interview_id", "string", "The candidate's (profile_interview) id."),
    ("definition_id", "string", "The interview definition's id."),
    ("candidate_name", "string", "The candidate's name."),
    ("candidate_email", "string", "The candidate's email."),
    ("position_name", "string", "The position's (interview's) name."),
    ("position_step", "string", "The pipeline step."),
    ("type", "string", "The product type."),
    ("emoji", "string", "The emoji marker."),
    ("external_id", "string", "The external identifier."),
    ("mojito_language_code", "string", "The platform language code."),
    ("status", "string", "The row's status."),
    ("coach_status", "string", "The interview's status (started, completed...)."),
    ("decision_status", "string", "The hiring decision (selected, rejected...)."),
    ("interview_started", "bool", "Whether the interview was started."),
    ("is_multi_stage", "bool", "Whether the interview is multi-stage."),
    ("is_test", "bool", "Whether it is a test result."),
    ("recruiter_shortlist", "bool", "Whether a recruiter shortlisted it."),
    ("recruiter_risks", "json", "The recruiter risk flags, as JSON text."),
    ("duration_ds", "float64", "The duration, in deciseconds."),
    ("score", "float64", "The overall score."),
    ("score_simulation", "float64", "The simulated overall score."),
    ("score_sentiment", "float64", "The sentiment sub-score."),
    ("score_words_per_minute", "float64", "The speaking-pace sub-score."),
    ("score_interview_ai", "float64", "The AI interview sub-score."),
    ("score_answer_ai", "float64", "The AI answer sub-score."),
    ("score_pronunciation", "float64", "The pronunciation sub-score."),
    ("processing_status", "string", "The processing status."),
    ("processing_error", "string", "The processing error, if any."),
    ("kyc_processing_status", "string", "The KYC processing status."),
    ("position_result_step_id", "string", "The position result step's id."),
    ("created_at", "timestamp", "When the result was created."),
    ("updated_at", "timestamp", "When the result was last updated: the window holds it."),
    ("row", "json", "The whole row as the API sent it: the line the JSON Lines export writes."),
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
#: JSON text of a column's value: compact, keys in the API's order, as the JSON Lines export.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def require_pyarrow() -> Any:
    """The ``pyarrow`` module, or an ``ImportError`` saying how to install it.

    :raises ImportError: pyarrow is not installed.
    """
    try:
        import pyarrow
    except ImportError as error:
        raise ImportError(
            f'format="parquet" needs pyarrow, which is not installed here: {PARQUET_EXTRA} '
            '(or use format="jsonl").'
        ) from error
    return pyarrow


def _string(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _float(value: object) -> float | None:
    # bool is an int to Python, not a number to the API.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _milliseconds(value: object) -> int | None:
    """An ISO 8601 date-time with an offset as milliseconds since the epoch (UTC), else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.utcoffset() is None:
        return None
    # Integer arithmetic: a float timestamp() can be off by one at the millisecond.
    return (moment - _EPOCH) // _MILLISECOND


def _json(value: object) -> str | None:
    return None if value is None else _ENCODER.encode(value)


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "string": _string,
    "bool": _bool,
    "float64": _float,
    "timestamp": _milliseconds,
    "json": _json,
}


def result_schema(pa: Any) -> Any:
    """The Arrow schema of :data:`RESULT_COLUMNS`.

    :param pa: the ``pyarrow`` module (see :func:`require_pyarrow`).
    """
    types = {
        "string": pa.string(),
        "bool": pa.bool_(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "json": pa.string(),
    }
    return pa.schema(
        [pa.field(name, types[kind], nullable=True) for name, kind, _ in RESULT_COLUMNS],
        metadata={SCHEMA_VERSION_KEY: SCHEMA_VERSION},
    )


class ParquetResults:
    """A Parquet file of results, written through a ``ParquetWriter`` one page at a time (a row
    group a page): memory holds one page, never the file's rows.

    Use as a context manager; leaving it closes the file (its footer written).

    :param handle: a binary file open for writing (an ``ObjectStoragePath``'s, or a local one).
    :param line: the function that gives a row's JSON text for the ``row`` column.
    """

    def __init__(self, handle: BinaryIO, line: Callable[[dict[str, Any]], str]) -> None:
        self._pa = require_pyarrow()
        import pyarrow.parquet

        self._schema = result_schema(self._pa)
        self._line = line
        # Snappy, the Parquet default, spelled out: the same rows give the same bytes on a retry.
        self._writer = pyarrow.parquet.ParquetWriter(handle, self._schema, compression="snappy")

    def __enter__(self) -> ParquetResults:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._writer.close()

    def write(self, page: Iterable[Mapping[str, Any]]) -> int:
        """Write one page's rows as a row group; the number written."""
        rows = list(page)
        if not rows:
            return 0
        columns = []
        for (name, kind, _), field in zip(RESULT_COLUMNS, self._schema, strict=True):
            if name == "row":
                values: list[object] = [self._line(dict(row)) for row in rows]
            else:
                convert = _CONVERTERS[kind]
                values = [convert(row.get(name)) for row in rows]
            columns.append(self._pa.array(values, type=field.type))
        self._writer.write_batch(self._pa.RecordBatch.from_arrays(columns, schema=self._schema))
        return len(rows)
