"""Export the interview results updated in a window to object storage, one file per window."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import Asset, BaseOperator, ObjectStoragePath

from airflow_provider_jobmojito.exceptions import JobMojitoConfigError
from airflow_provider_jobmojito.results import ResultWindow, check_results_read
from airflow_provider_jobmojito.results_parquet import ParquetResults, require_pyarrow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

__all__ = ["InterviewResultsToStorageOperator"]

#: The key of the watermark in the outlet asset's state store (``since_last_run``).
WATERMARK_KEY = "jobmojito_results_watermark"
#: The key of the pinned window in the task's state store: a retry exports the same window.
WINDOW_KEY = "jobmojito_results_window"
#: Formats the operator writes.
FORMATS = ("jsonl", "parquet")
#: Where a first "since last run" export starts when no watermark and no window is known.
_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)


def _object_storage_path(destination: str) -> ObjectStoragePath:
    """``ObjectStoragePath(destination)``, or an error that names the fix where Airflow cannot make one.

    Airflow 2.11.0 allows universal-pathlib 0.3, whose paths its ``ObjectStoragePath`` cannot be
    (``TypeError: ... incompatible with ObjectStoragePath``); 2.11.1 and later require < 0.3.

    :param destination: the folder, as a path or a URL.
    :raises JobMojitoConfigError: when this Airflow and universal-pathlib cannot work together.
    """
    try:
        return ObjectStoragePath(destination)
    except TypeError as error:
        if "incompatible with ObjectStoragePath" not in str(error):
            raise
        raise JobMojitoConfigError(
            "This Airflow cannot make an ObjectStoragePath with the installed universal-pathlib "
            f"({error}). Airflow 2.11.0 allows universal-pathlib 0.3, which its object storage does "
            'not support: pip install "universal-pathlib<0.3", or install with Airflow\'s constraint '
            "file."
        ) from error


def _name_part(moment: datetime) -> str:
    """A window bound as it appears in a file name: UTC, basic ISO 8601, sortable."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y%m%dT%H%M%S")
    return text + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z"


def _moment(value: object, param: str) -> datetime | None:
    """A window bound given as a datetime, an ISO 8601 string (as templates render), or nothing."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{param} must be a datetime or an ISO 8601 date-time; got {value!r}.") from None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{param} must be a timezone-aware datetime; got {value!r}.")
    return value


#: Rows as JSON Lines: compact, and ASCII (other characters escaped), which the encoder writes
#: twice as fast; keys in the API's order, so a retry of a window writes the same bytes.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _line(row: dict[str, Any]) -> str:
    """A row as one JSON Lines line, without its newline."""
    return _ENCODER.encode(row)


class _Prefetched:
    """Pages read one ahead in a thread while the caller writes the last: the next list call waits
    on the network while this one's rows are written, so an export takes about the list calls'
    latency, not that plus the time to write. At most :attr:`AHEAD` pages wait in memory.

    Use as a context manager: leaving it (the writing failed, or finished) stops the reader, which
    closes the pager.
    """

    AHEAD = 1

    def __init__(self, pages: Iterator[list[dict[str, Any]]]) -> None:
        self._pages = pages
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=self.AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="jobmojito-results-pages", daemon=True)

    def _read(self) -> None:
        try:
            for page in self._pages:
                if not self._put(("page", page)):
                    return
            self._put(("done", None))
        except BaseException as error:  # handed to the writer, which raises it
            self._put(("error", error))
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def __enter__(self) -> Iterator[list[dict[str, Any]]]:
        self._thread.start()
        return self._each()

    def _each(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            kind, value = self._queue.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class InterviewResultsToStorageOperator(BaseOperator):
    """Export the interview results updated in a window to ``destination`` as JSON Lines (or Parquet).

    The window is, in this order of precedence:

    * ``updated_after``/``updated_before`` when given (``updated_before`` left out: ``settle``
      before now, fixed on the first try);
    * with ``since_last_run=True`` (Airflow 3.3+): from the watermark kept in the outlet asset's
      state store to ``settle`` before now; the first export, with no watermark, starts at the
      data interval's start if the run has one, else at the beginning. An asset-triggered run,
      which has no data interval, exports since the watermark;
    * otherwise the run's data interval, moved back by ``settle`` (``[start - settle, end -
      settle)``): windows of consecutive runs still meet end to end, and rows still being written
      when the run starts land in the next window.

    A window that depends on now is fixed on the first try in the task's state store (Airflow
    3.3+), so a retry exports the same window; the watermark advances only once the file is
    written, and never back (a cleared earlier run exports its window again). Rows come from
    :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.iter_results`
    (each result once, a page in memory at a time), one JSON object per line, in the API's order
    (newest first), as the API sends them (ASCII-escaped). Deletions are not exported: the API
    shows none. The next page is read while the last is written.

    The file is named after the window (``results_<after>_<before>.jsonl``, or ``.parquet``, UTC) and written
    atomically: to a hidden temporary file in the same folder, then moved to its name, so a task
    killed mid-write leaves no partial file under the final name, and a retry or a backfill of
    the same window overwrites the file instead of doubling it. Leftover temporary files of the
    same window are removed by the next try.

    Returns (as its XCom) ``{"path": str, "count": int, "window": {"updated_after": iso,
    "updated_before": iso}}``; each :class:`~airflow.sdk.Asset` among ``outlets`` gets an event
    whose ``extra`` holds the same three.

    :param destination: the folder to write into: a path or URL (``s3://bucket/results``,
        ``file:///data/results``) or an ``ObjectStoragePath`` (its connection decides the
        credentials). Templated.
    :param jobmojito_conn_id: the JobMojito connection.
    :param updated_after: the window's start (timezone-aware datetime or ISO 8601). Templated.
    :param updated_before: the window's end, excluded. Templated.
    :param settle: how long before now every window ends, so rows still being written land in the
        next one (default five minutes; ``timedelta(0)`` for none).
    :param since_last_run: export since the watermark in the outlet asset's state store (Airflow
        3.3+; needs exactly one Asset among ``outlets``).
    :param format: ``"jsonl"`` (JSON Lines) or ``"parquet"``: the columns of
        :data:`~airflow_provider_jobmojito.results_parquet.RESULT_COLUMNS` plus the whole row as
        JSON, a row group a page (needs pyarrow: ``pip install
        "airflow-provider-jobmojito[parquet]"``, checked before any request).
    :param include_test: export test results (``is_test``) too.
    :param filters: the list's filters (``type``, ``tab``, ``step``, ``interview_id``...), as
        :meth:`~airflow_provider_jobmojito.hooks.jobmojito.JobMojitoHook.iter_results` takes them.
    :param page_size: rows per list call, 2 to 1,000.
    """

    template_fields: Sequence[str] = ("destination", "updated_after", "updated_before")
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        jobmojito_conn_id: str = "jobmojito_default",
        updated_after: datetime | str | None = None,
        updated_before: datetime | str | None = None,
        settle: timedelta = timedelta(minutes=5),
        since_last_run: bool = False,
        format: str = "jsonl",
        include_test: bool = False,
        filters: Mapping[str, Any] | None = None,
        page_size: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(destination, str | ObjectStoragePath) or not str(destination):
            raise ValueError(
                f"destination must be a path, a URL or an ObjectStoragePath; got {destination!r}."
            )
        if not isinstance(settle, timedelta) or settle < timedelta(0):
            raise ValueError(f"settle must be a timedelta of zero or more; got {settle!r}.")
        if not isinstance(since_last_run, bool):
            raise ValueError(f"since_last_run must be True or False; got {since_last_run!r}.")
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}; got {format!r}.")
        if since_last_run and len(self._assets()) != 1:
            raise ValueError(
                "since_last_run=True keeps its watermark in the outlet asset's state store: give "
                f"exactly one Asset in outlets (got {len(self._assets())})."
            )
        # Checked now (a literal window too), so that a mistake fails the DAG's parse, not a run.
        self.filters = dict(filters or {})
        probe = datetime(2000, 1, 1, tzinfo=UTC)
        check_results_read(
            updated_after=probe, include_test=include_test, page_size=page_size, **self.filters
        )
        for name, value in (("updated_after", updated_after), ("updated_before", updated_before)):
            if not (isinstance(value, str) and "{{" in value):
                _moment(value, name)
        self.destination = destination
        self.jobmojito_conn_id = jobmojito_conn_id
        self.updated_after = updated_after
        self.updated_before = updated_before
        self.settle = settle
        self.since_last_run = since_last_run
        self.format = format
        self.include_test = include_test
        self.page_size = page_size
        #: What tells the time (tests give their own): timezone-aware now.
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def _assets(self) -> list[Any]:
        return [outlet for outlet in self.outlets if isinstance(outlet, Asset)]

    def hook(self) -> JobMojitoHook:
        """The hook, made when the task runs (never at parse time)."""
        from airflow_provider_jobmojito.hooks.jobmojito import JobMojitoHook

        return JobMojitoHook(self.jobmojito_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        if self.format == "parquet":
            # Before any request or file: a worker without pyarrow fails at once, saying what to install.
            require_pyarrow()
        window = self._window(context)
        folder = self.destination if isinstance(self.destination, ObjectStoragePath) else None
        folder = folder or _object_storage_path(str(self.destination))
        name = f"results_{_name_part(window.after)}_{_name_part(window.before or window.after)}.{self.format}"
        final = folder / name
        folder.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers(folder, name)
        hook = self.hook()
        plan = hook.endpoints.results_pages(
            updated_after=window.after,
            updated_before=window.before,
            include_test=self.include_test,
            page_size=self.page_size,
            **self.filters,
        )
        with _Prefetched(hook.client.pages(plan)) as pages:
            body = self._parquet(pages) if self.format == "parquet" else self._jsonl(pages)
            count = self._write(folder / f".{name}.{uuid.uuid4().hex}.tmp", final, body)
        bounds = {
            "updated_after": window.after.isoformat(),
            "updated_before": window.before.isoformat() if window.before else None,
        }
        self.log.info("Exported %d result(s) updated in [%s, %s) to %s.", count, *bounds.values(), final)
        if self.since_last_run and window.before is not None:
            # Only now that the file is there: a task that died before would export the window again.
            store = self._asset_store(context)
            stored = store.get(WATERMARK_KEY)
            # Forward only: a cleared earlier run exports its pinned window again, and must not
            # send the next run back over windows later runs exported (each row in two files).
            if not isinstance(stored, str) or datetime.fromisoformat(stored) < window.before:
                store.set(WATERMARK_KEY, window.before.isoformat())
        events = context.get("outlet_events")
        if events is not None:
            for asset in self._assets():
                events[asset].extra = {"path": str(final), "count": count, "window": dict(bounds)}
        return {"path": str(final), "count": count, "window": bounds}

    @staticmethod
    def _write(
        temporary: ObjectStoragePath, final: ObjectStoragePath, write: Callable[[ObjectStoragePath], int]
    ) -> int:
        """``write`` the rows to ``temporary``, then move it to ``final``; the count written. A try
        that fails or is interrupted leaves nothing under either name."""
        try:
            count = write(temporary)
            # A rename within one folder: atomic on a local or POSIX file system; on an object
            # store a copy that appears whole under the final key.
            temporary.rename(final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return count

    @staticmethod
    def _jsonl(pages: Iterable[list[dict[str, Any]]]) -> Callable[[ObjectStoragePath], int]:
        """Writes the rows of ``pages`` as JSON Lines."""

        def write(path: ObjectStoragePath) -> int:
            count = 0
            with path.open("w", encoding="utf-8") as handle:  # type: ignore[no-untyped-call]
                for page in pages:
                    # One write a page: each write through an ObjectStoragePath handle has a cost of
                    # its own (Airflow tracks the file's use), several seconds over 100,000 rows.
                    handle.write("".join(f"{_line(row)}\n" for row in page))
                    count += len(page)
            return count

        return write

    @staticmethod
    def _parquet(pages: Iterable[list[dict[str, Any]]]) -> Callable[[ObjectStoragePath], int]:
        """Writes the rows of ``pages`` as Parquet (see :mod:`airflow_provider_jobmojito.results_parquet`)."""

        def write(path: ObjectStoragePath) -> int:
            count = 0
            with (
                path.open("wb") as handle,  # type: ignore[no-untyped-call]
                ParquetResults(handle, _line) as parquet,
            ):
                for page in pages:
                    count += parquet.write(page)
            return count

        return write

    @staticmethod
    def _remove_leftovers(folder: ObjectStoragePath, name: str) -> None:
        """Temporary files of this window left by a try that was killed mid-write."""
        for leftover in folder.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)

    def _asset_store(self, context: Context) -> Any:
        stores = context.get("asset_state_store")
        if stores is None:
            raise ValueError(
                "since_last_run=True needs the asset state store of Airflow 3.3 or later; this Airflow "
                "gives none: export data intervals instead (since_last_run=False)."
            )
        return stores[self._assets()[0]]

    def _window(self, context: Context) -> ResultWindow:
        """The window to export, fixed on the first try when it depends on now."""
        after = _moment(self.updated_after, "updated_after")
        before = _moment(self.updated_before, "updated_before")
        if after is None and before is not None and not self.since_last_run:
            # Else the start would come from a watermark this export neither asked for nor keeps.
            raise ValueError(
                "updated_before needs updated_after (or since_last_run=True, which starts at the watermark)."
            )
        if after is None and before is None and not self.since_last_run:
            start, end = context.get("data_interval_start"), context.get("data_interval_end")
            if start is None or end is None or start == end:
                raise ValueError(
                    "This run has no data interval to export (an asset-triggered or manual run, or a "
                    "schedule without data intervals: Airflow 3's cron schedules have none unless "
                    "[scheduler] create_cron_data_intervals is on). Schedule the DAG with a timetable "
                    "that has them (CronDataIntervalTimetable, a timedelta), give updated_after, or use "
                    "since_last_run=True."
                )
            return ResultWindow.of(start - self.settle, end - self.settle)
        pinned = context.get("task_state_store")
        stored = pinned.get(WINDOW_KEY) if pinned is not None else None
        if (
            isinstance(stored, dict)
            and isinstance(stored.get("after"), str)
            and isinstance(stored.get("before"), str)
        ):
            return ResultWindow.of(
                datetime.fromisoformat(str(stored["after"])), datetime.fromisoformat(str(stored["before"]))
            )
        if after is None:
            watermark = self._asset_store(context).get(WATERMARK_KEY)
            start = context.get("data_interval_start")
            after = (
                datetime.fromisoformat(watermark)
                if isinstance(watermark, str)
                else start - self.settle
                if start is not None
                else _BEGINNING
            )
        before = before or self.now() - self.settle
        window = ResultWindow.of(after, before)
        if pinned is not None:
            pinned.set(WINDOW_KEY, {"after": after.isoformat(), "before": before.isoformat()})
        return window
