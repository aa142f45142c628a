"""Positions as code: the statuses in ``jobmojito_positions.yaml`` are the truth; plan, approve, apply.

The spec file beside this DAG names each position this DAG owns and the status it should have.
Trigger the DAG when the spec changes (by hand, or from CI after a merge, through Airflow's REST
API), or give it a schedule: ``max_active_runs=1`` keeps two plans from waiting for approval at
once. The ``plan`` task lists the positions (1,000 a page), plans the difference, logs it as a
table and returns it (a dry run: nothing is written). On Airflow 3.1 and later a person
approves that plan in the UI's Required Actions (or through the REST API), reading it in the
approval's body; ``apply`` then applies that plan, not a new one, leaving out any position
changed since (its ``updated_at`` moved). Rejected, ``apply`` is skipped. Where there is no
human-in-the-loop operator (Airflow 2.11, 3.0) ``apply`` follows ``plan`` directly.

``max_changes=20`` refuses a plan of more than 20 changes, before any write: a spec edited by
mistake (or a truncated export) fails the task instead of changing everything.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG, AirflowOptionalProviderFeatureException

from airflow_provider_jobmojito.operators.positions_as_code import ReconcilePositionsOperator

try:
    # Before Airflow 3.1 the module is missing, or (standard provider 1.6+) refuses with its own error.
    from airflow.providers.standard.operators.hitl import ApprovalOperator
except (ImportError, AirflowOptionalProviderFeatureException):  # Airflow 2.11, 3.0: no approval step
    ApprovalOperator = None

with DAG(
    dag_id="jobmojito_positions_as_code",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["jobmojito", "example"],
    doc_md=__doc__,
):
    # [START howto_operator_reconcile_plan]
    plan = ReconcilePositionsOperator(
        task_id="plan",
        desired="jobmojito_positions.yaml",  # relative to this file's folder
        dry_run=True,
        max_changes=20,
    )
    # [END howto_operator_reconcile_plan]

    # [START howto_operator_reconcile_apply]
    apply = ReconcilePositionsOperator(
        task_id="apply",
        # The plan as approved; tojson keeps it JSON through Jinja.
        approved_plan="{{ ti.xcom_pull(task_ids='plan') | tojson }}",
        max_changes=20,
    )
    # [END howto_operator_reconcile_apply]

    if ApprovalOperator is not None:
        # [START howto_operator_reconcile_approval]
        approve = ApprovalOperator(
            task_id="approve",
            subject="Apply the JobMojito positions plan?",
            body="{{ ti.xcom_pull(task_ids='plan')['table'] }}",
        )
        plan >> approve >> apply
        # [END howto_operator_reconcile_approval]
    else:
        plan >> apply
