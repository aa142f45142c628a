"""The synchronous driver: carries out the client's plans on the calling thread, over requests.

Everything that is not I/O is decided by the plans (:mod:`~airflow_provider_jobmojito.plan`,
:mod:`~airflow_provider_jobmojito.endpoints`); this driver only sends through a
:class:`~airflow_provider_jobmojito.wire.SyncTransport`, sleeps, holds the sign-in locks and
registers secrets. Its twin for event loops is :mod:`~airflow_provider_jobmojito.client_async`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_jobmojito.masking import mask
from airflow_provider_jobmojito.plan import Blocking, Emit, Exclusive, Run, Secret, Send, Wait
from airflow_provider_jobmojito.wire import NoAnswer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_jobmojito.plan import Plan, Step
    from airflow_provider_jobmojito.retry import Stop
    from airflow_provider_jobmojito.wire import Answer, SyncTransport

T = TypeVar("T")


def wait(seconds: float, stop: Stop | None) -> bool:
    """Sleep ``seconds``; return early, with ``True``, if ``stop`` is set meanwhile."""
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)


class JobMojitoClient:
    """Runs plans synchronously: ``client.run(endpoints.get_position(position_id))``.

    Thread-safe: the bulk path runs plans from many threads over one client.

    :param transport: sends one attempt (the hook's: requests, through its session).
    """

    def __init__(self, transport: SyncTransport) -> None:
        self.transport = transport
        #: How retries wait: ``wait(seconds, stop) -> stopped``. Tests replace it to record the
        #: backoff without sleeping.
        self.wait: Callable[[float, Stop | None], bool] = wait

    def run(self, plan: Plan[T], *, on_secret: Callable[[str], None] = mask) -> T:
        """Carry ``plan`` out and return its result (or raise its error).

        :param on_secret: registers a secret the API sent (by default with the masker at once; a
            bulk change collects them and registers them together).
        """
        run = Run(plan)
        for step in run:
            run.answer(self._carry_out(step, on_secret))
        return run.result  # type: ignore[return-value]

    def pages(self, plan: Plan[None]) -> Iterator[Any]:
        """Carry ``plan`` out, yielding what it emits (pages) as the caller asks for them."""
        run = Run(plan)
        for step in run:
            run.answer((yield step.item) if isinstance(step, Emit) else self._carry_out(step, mask))

    def _carry_out(self, step: Step, on_secret: Callable[[str], None]) -> Any:
        if isinstance(step, Send):
            return self._send(step)
        if isinstance(step, Wait):
            return self.wait(step.seconds, step.stop)
        if isinstance(step, Blocking):
            return step.function(*step.args)
        if isinstance(step, Secret):
            return on_secret(step.value)
        if isinstance(step, Exclusive):
            with step.locks():
                return self.run(step.plan, on_secret=on_secret)
        if isinstance(step, Emit):  # emitted by a plan run for its result: not asked for
            return None
        raise TypeError(f"A plan yielded {type(step).__name__}, which is not a step.")

    def _send(self, step: Send) -> Answer | NoAnswer:
        try:
            return self.transport.send(step.request, token=step.token, timeout=step.timeout)
        except NoAnswer as no_answer:
            return no_answer
