"""Input checks, before anything is sent: ids, state changes, batches."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_jobmojito.status import InterviewStatus
from airflow_provider_jobmojito.validation import (
    StateChange,
    build_changes,
    check_max_workers,
    parse_is_embedded,
    parse_position_id,
)

ID = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"


class TestPositionIds:
    @pytest.mark.parametrize(
        "written",
        [
            ID,
            ID.upper(),
            "{" + ID + "}",
            "urn:uuid:" + ID,
            "URN:UUID:" + ID.upper(),
            ID.replace("-", ""),
            uuid.UUID(ID),
        ],
    )
    def test_the_forms_people_write_are_read_as_the_canonical_id(self, written: object) -> None:
        assert parse_position_id(written) == ID

    @pytest.mark.parametrize(
        "written",
        [
            # uuid.UUID() accepts these and reads a different id: 35 digits and a newline, a sign,
            # a hex prefix, inner whitespace.
            ID[:-1] + "\n",
            "+" + ID[1:],
            "0x" + ID.replace("-", "")[2:],
            " " + ID,
            ID + " ",
            ID[:8] + " " + ID[9:],
            "{" + ID,
            ID.replace("-", "", 1),
            "urn:uuid:{" + ID + "}",
            "",
            None,
            42,
            b"3f2a6c1e8a4b4a559d6e0c1f2b3a4d5e",
        ],
    )
    def test_anything_else_is_refused_naming_the_parameter(self, written: object) -> None:
        with pytest.raises(ValueError, match=r"^ids\[3\] must be a UUID such as"):
            parse_position_id(written, param="ids[3]")


class TestStateChange:
    def test_builds_the_body_with_only_what_changes(self) -> None:
        assert StateChange.build(ID.upper(), "archived").body() == {"position_id": ID, "status": "archived"}
        assert StateChange.build(ID, None, False).body() == {"position_id": ID, "is_embedded": False}

    def test_describes_itself_for_log_lines(self) -> None:
        change = StateChange.build(ID, InterviewStatus.ARCHIVED, False)
        assert change.describe() == f"position {ID} -> archived, embedding off"

    def test_needs_a_status_or_is_embedded(self) -> None:
        with pytest.raises(ValueError, match=r"Give status .* or is_embedded .* got neither"):
            StateChange.build(ID)

    @pytest.mark.parametrize("value", ["true", 1, 0, "False"])
    def test_is_embedded_is_a_bool_or_none(self, value: object) -> None:
        with pytest.raises(ValueError, match="is_embedded must be True, False or None"):
            parse_is_embedded(value)


class TestBatches:
    def test_one_change_per_id_in_input_order(self) -> None:
        ids = [str(uuid.uuid4()) for _ in range(5)]
        changes = build_changes(ids, "active", None)
        assert [change.position_id for change in changes] == ids
        assert {change.status for change in changes} == {InterviewStatus.ACTIVE}

    def test_ids_repeated_in_another_form_are_refused(self) -> None:
        with pytest.raises(ValueError, match=f"more than once .*{ID} at 0, 2"):
            build_changes([ID, str(uuid.uuid4()), ID.upper()], "active", None)

    def test_bad_ids_are_listed_with_their_index_ten_at_most(self) -> None:
        with pytest.raises(ValueError, match=r"13 of 13 are not: \[0\] 'x0', .*\[9\] 'x9', and 3 more\.$"):
            build_changes([f"x{n}" for n in range(13)], "active", None)

    def test_one_string_is_not_a_list_of_ids(self) -> None:
        with pytest.raises(ValueError, match="not one string"):
            build_changes(ID, "active", None)

    def test_the_change_is_checked_with_the_single_calls_rules(self) -> None:
        with pytest.raises(ValueError, match="status must be one of"):
            build_changes([ID], "actve", None)

    @pytest.mark.parametrize("value", [0, -1, 1.5, True, "8", None])
    def test_max_workers_is_a_whole_number_of_at_least_one(self, value: object) -> None:
        with pytest.raises(ValueError, match="max_workers must be a whole number of at least 1"):
            check_max_workers(value)
