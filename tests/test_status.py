"""The lifecycle status enum: its values, and how it refuses anything else."""

from __future__ import annotations

import pytest

from airflow_provider_jobmojito.status import InterviewStatus


def test_the_six_statuses_of_the_api_in_its_order() -> None:
    assert InterviewStatus.allowed() == "draft, active, archived, deleted, preparing, completed"


def test_members_compare_equal_to_their_strings() -> None:
    assert InterviewStatus.ACTIVE == "active"
    assert InterviewStatus.parse("completed") is InterviewStatus.COMPLETED
    assert InterviewStatus.parse(InterviewStatus.DRAFT) is InterviewStatus.DRAFT


@pytest.mark.parametrize("value", ["Active", " active", "actve", "", None, 1, True])
def test_anything_else_is_refused_naming_the_parameter_and_the_allowed_values(value: object) -> None:
    with pytest.raises(ValueError, match=r"^state must be one of draft, active, .*; got "):
        InterviewStatus.parse(value, param="state")
