"""A task timeout at a point the test chooses: the SIGALRM that Airflow's execution_timeout timer
sends, sent once a condition holds (the calls a test waits for have reached the sandbox), so that
no test races a short timeout against slow answers."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
