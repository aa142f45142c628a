"""The read side in a real LocalExecutor deployment with a triggerer: a deferrable sensor, and an
AssetWatcher that starts a DAG when a recruiter completes a position in JobMojito, also across a
restart of the triggerer."""

from __future__ import annotations

import time

import pytest

from tests.e2e.deployment import Deployment, seconds_between
from tests.e2e.read_side import (
    check_a_restarted_triggerer_fires_what_was_completed_while_it_was_down,
    check_completed_position_starts_the_archive_dag,
    check_deferrable_sensor,
)

pytestmark = pytest.mark.e2e


def test_a_deferrable_sensor_waits_in_the_triggerer_and_completes(deployment: Deployment) -> None:
    run = check_deferrable_sensor(deployment)
    deployment.timings["run jobmojito_e2e_wait (deferred)"] = seconds_between(
        run["start_date"], run["end_date"]
    )


def test_a_position_completed_in_jobmojito_starts_the_archive_dag(deployment: Deployment) -> None:
    run = check_completed_position_starts_the_archive_dag(deployment)
    deployment.timings["run jobmojito_archive_when_completed (asset watcher)"] = seconds_between(
        run["start_date"], run["end_date"]
    )


def test_a_triggerer_killed_and_started_again_fires_what_was_completed_meanwhile_once(
    deployment: Deployment,
) -> None:
    started = time.monotonic()
    check_a_restarted_triggerer_fires_what_was_completed_while_it_was_down(deployment)
    deployment.timings["triggerer killed and started again: kill to archive run done"] = (
        time.monotonic() - started
    )
