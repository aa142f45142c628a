"""The decisions of a reconcile, without HTTP: parsing, planning, the guardrail, re-checking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_jobmojito import reconcile
from airflow_provider_jobmojito.reconcile import Live

P1 = "3f2a6c1e-8a4b-4a55-9d6e-0c1f2b3a4d5e"
P2 = "9b1d3c52-7e0a-4f7b-8c55-2a1e6d4b0f10"
P3 = "5c7e1a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"


def live(*rows: tuple[str, str, str]) -> dict[str, Live]:
    return reconcile.index_live(
        {"id": position_id, "name": f"n{i}", "status": status, "updated_at": stamp}
        for i, (position_id, status, stamp) in enumerate(rows)
    )


class TestParseDesired:
    def test_the_three_forms_give_the_same_state(self) -> None:
        mapping = reconcile.parse_desired({P1.upper(): "active"})
        records = reconcile.parse_desired([{"position_id": P1, "status": "active"}])
        document = reconcile.parse_desired({"positions": [{"position_id": P1, "status": "active"}]})
        assert mapping == records == document
        assert list(mapping) == [P1]

    def test_every_bad_entry_is_counted_and_the_first_named(self) -> None:
        with pytest.raises(ValueError, match=r"desired: 2 bad entries: desired\['x'\] must be a UUID"):
            reconcile.parse_desired({"x": "active", P1: "open"})

    def test_the_same_id_spelt_twice_is_a_duplicate(self) -> None:
        with pytest.raises(ValueError, match=r"desired\[1\] \(.*\) is a duplicate of desired\[0\]"):
            reconcile.parse_desired(
                [
                    {"position_id": P1, "status": "active"},
                    {"position_id": P1.replace("-", ""), "status": "active"},
                ]
            )


class TestSpecFiles:
    def test_yaml_and_json_files_are_read_relative_to_the_folder(self, tmp_path: Path) -> None:
        (tmp_path / "a.yaml").write_text(f"{P1}: active\n")
        (tmp_path / "b.json").write_text(json.dumps([{"position_id": P1, "status": "active"}]))
        for name in ("a.yaml", "b.json"):
            assert reconcile.parse_desired(reconcile.load_spec_file(name, tmp_path))[P1].status == "active"

    def test_a_missing_or_broken_file_names_the_parameter_and_the_file(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"desired: cannot read '.*missing.json'"):
            reconcile.load_spec_file("missing.json", tmp_path)
        (tmp_path / "bad.yaml").write_text("a: [\n")
        with pytest.raises(ValueError, match=r"desired: '.*bad.yaml' is not valid YAML"):
            reconcile.load_spec_file("bad.yaml", tmp_path)


class TestPlan:
    def test_a_position_listed_twice_counts_once_with_its_newest_row(self) -> None:
        rows = live((P1, "draft", "2026-01-01T00:00:00.000Z"), (P1, "active", "2026-01-02T00:00:00.000Z"))
        assert rows[P1].status == "active"

    def test_unmanaged_archive_respects_managed_ids(self) -> None:
        rows = live((P1, "active", "t"), (P2, "active", "t"), (P3, "active", "t"))
        the_plan = reconcile.plan({}, rows, unmanaged="archive", managed_ids=frozenset({P2}))
        assert [(c["position_id"], c["to"]) for c in the_plan["changes"]] == [(P2, "archived")]
        assert the_plan["managed"] == 1

    def test_unmanaged_archive_never_undeletes_nor_takes_a_preparing_position(self) -> None:
        rows = live((P1, "deleted", "t"), (P2, "preparing", "t"), (P3, "active", "t"))
        for allowed in (frozenset(), frozenset({"deleted", "preparing"})):
            the_plan = reconcile.plan({}, rows, unmanaged="archive", allow_statuses=allowed)
            assert [(c["position_id"], c["to"]) for c in the_plan["changes"]] == [(P3, "archived")]
            assert (the_plan["unchanged"], the_plan["skipped"]) == (2, [])
            # So a drift check over the same scope is quiet once the active one is archived.
            assert (
                reconcile.drift(
                    reconcile.plan(
                        {},
                        {**rows, **live((P3, "archived", "t"))},
                        unmanaged="archive",
                        allow_statuses=allowed,
                    )
                )
                == []
            )

    @pytest.mark.parametrize(("max_changes", "limit"), [(None, None), (3, 3), (0.5, 5), (0.0, 0), (1.0, 10)])
    def test_change_limit(self, max_changes: int | float | None, limit: int | None) -> None:
        assert reconcile.change_limit(max_changes, 10) == limit

    @pytest.mark.parametrize(("max_changes", "managed", "limit"), [(0.29, 100, 29), (0.35, 180, 63)])
    def test_a_fraction_allows_its_exact_share_despite_float_error(
        self, max_changes: float, managed: int, limit: int
    ) -> None:
        # 0.29 * 100 is 28.999999999999996 in floating point: the share is 29, not 28.
        assert reconcile.change_limit(max_changes, managed) == limit

    def test_every_one_of_ten_thousand_positions_is_planned(self) -> None:
        # Its CPU is measured in make bench (section 6), not here.
        ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(10_000)]
        rows = live(*((i, "draft", "t") for i in ids))
        desired = reconcile.parse_desired(dict.fromkeys(ids, "active"))
        the_plan = reconcile.plan(desired, rows)
        assert (len(the_plan["changes"]), the_plan["managed"]) == (10_000, 10_000)


class TestRecheck:
    def test_keeps_only_changes_whose_position_did_not_move(self) -> None:
        before = live((P1, "draft", "t1"), (P2, "draft", "t1"), (P3, "draft", "t1"))
        desired = reconcile.parse_desired({P1: "active", P2: "active", P3: "active"})
        approved = reconcile.parse_plan(json.dumps(reconcile.plan(desired, before)))
        after = live((P1, "draft", "t1"), (P2, "archived", "t2"))
        rechecked = reconcile.recheck(approved, after)
        assert [c["position_id"] for c in rechecked["changes"]] == [P1]
        reasons = {s["position_id"]: s["reason"] for s in rechecked["skipped"]}
        assert reasons[P2].startswith("changed since the plan (updated_at t1 -> t2")
        assert reasons[P3].startswith("no longer listed")

    def test_a_plan_changing_a_position_twice_is_refused(self) -> None:
        change = {
            "position_id": P1,
            "to": "active",
            "updated_at": "t",
            "from": "draft",
            "name": "",
            "why": "",
        }
        with pytest.raises(ValueError, match=r"approved_plan\['changes'\]\[1\] changes .* a second time"):
            reconcile.parse_plan({"version": 1, "changes": [change, change]})


def test_render_table_escapes_pipes_in_names() -> None:
    the_plan = reconcile.plan(
        reconcile.parse_desired({P1: "active"}),
        reconcile.index_live([{"id": P1, "name": "a|b", "status": "draft"}]),
    )
    assert "| a\\|b | draft | active | desired |" in reconcile.render_table(the_plan)
