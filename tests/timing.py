"""Time under the test's control, so that no test races the clock on a loaded machine.

:func:`alarm_once`: a task timeout at a point the test chooses, the SIGALRM that Airflow's
execution_timeout timer sends, sent once the calls a test waits for have reached the sandbox.
:func:`frozen_token_clock`: the clock by which the sandbox issues and expires access tokens,
moved only by the test.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING

from airflow_provider_jobmojito.sandbox import ManualClock, tokens

if TYPE_CHECKING:
    import pytest

#: How often the condition is checked.
POLL_SECONDS = 0.01


@contextmanager
def alarm_once(condition: Callable[[], bool]) -> Iterator[None]:
    """Within the block, send the main thread ``SIGALRM`` once ``condition`` holds.

    A thread polls ``condition``; leaving the block stops it, sent or not, so no alarm lands
    after the block (where the handler the block's code installed may be gone).

    :param condition: what the alarm must come after; called from the polling thread.
    """
    main = threading.main_thread().ident
    assert main is not None
    done = threading.Event()

    def poll() -> None:
        while not done.wait(POLL_SECONDS):
            if condition():
                signal.pthread_kill(main, signal.SIGALRM)
                return

    poller = threading.Thread(target=poll, name="alarm-once", daemon=True)
    poller.start()
    try:
        yield
    finally:
        done.set()
        poller.join()


def frozen_token_clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """Make every sandbox of this process issue and expire access tokens by a clock that moves only
    when the test moves it; the real clock again after the test.

    A token's ``exp`` is whole seconds after its issue (``int(now) + lifetime``, as Supabase does), so
    by the real clock a one-second token signed in late in a second expires within milliseconds.

    :param monkeypatch: the test's, which undoes the change.
    :return: the clock, at 2026-01-01T00:00:00Z, a whole second.
    """
    clock = ManualClock()
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=clock))
    return clock
