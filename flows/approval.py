"""Answer a paused change from the command line: `python -m flows.approval RUN_ID --approver NAME ...`."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Literal
from uuid import UUID

from prefect.exceptions import FlowPauseTimeout

DEMO_APPROVER = "demo-approver (automated demo answer, not a person)"


def find_paused_run(flow_run_id: UUID | str | None = None, *, flow_name: str | None = None) -> Any | None:
    """The paused flow run with this id, or the newest paused run of the named flow."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        run_filter = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
        )
        if flow_run_id is not None:
            run_filter.id = FlowRunFilterId(any_=[UUID(str(flow_run_id))])
        flow_filter = FlowFilter(name=FlowFilterName(any_=[flow_name])) if flow_name else None
        runs = client.read_flow_runs(
            flow_run_filter=run_filter, flow_filter=flow_filter, sort=FlowRunSort.START_TIME_DESC, limit=1
        )
        return runs[0] if runs else None


def answer_approval(
    flow_run_id: UUID | str,
    *,
    approver: str,
    decision: Literal["approve", "reject"],
    change_ticket: str = "",
    comment: str = "",
    typed_confirmation: str | None = None,
    wait_seconds: float = 60.0,
) -> None:
    """Resume a paused run with an answer, waiting up to wait_seconds for it to pause first."""
    from prefect import resume_flow_run

    deadline = time.monotonic() + wait_seconds
    while find_paused_run(flow_run_id) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Flow run {flow_run_id} did not pause for approval within {wait_seconds:.0f} s."
            )
        time.sleep(0.5)
    run_input: dict[str, Any] = {
        "approver": approver,
        "decision": decision,
        "change_ticket": change_ticket,
        "comment": comment,
    }
    if typed_confirmation is not None:
        run_input["typed_confirmation"] = typed_confirmation
    resume_flow_run(UUID(str(flow_run_id)), run_input=run_input)


def main(argv: list[str] | None = None) -> int:
    """python -m flows.approval FLOW_RUN_ID --approver NAME --decision approve|reject [--ticket T] [--comment C]."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.approval", description="Answer a paused CMK flow run."
    )
    parser.add_argument("flow_run_id")
    parser.add_argument("--approver", required=True)
    parser.add_argument("--decision", choices=["approve", "reject"], required=True)
    parser.add_argument("--ticket", default="")
    parser.add_argument("--comment", default="")
    parser.add_argument("--confirm", default=None, help="the typed confirmation, for destructive flows")
    args = parser.parse_args(argv)
    try:
        answer_approval(
            args.flow_run_id,
            approver=args.approver,
            decision=args.decision,
            change_ticket=args.ticket,
            comment=args.comment,
            typed_confirmation=args.confirm,
        )
    except (RuntimeError, TimeoutError, FlowPauseTimeout, ValueError) as exc:
        print(f"Not answered: {answer_refusal(exc, args.confirm is not None)}", file=sys.stderr)
        return 2
    print(f"Answered {args.flow_run_id}: {args.decision} by {args.approver}.")
    return 0


def answer_refusal(exc: BaseException, confirmed: bool) -> str:
    """What went wrong with a command-line answer, and what to do, in one sentence."""
    text = str(exc)
    if confirmed and "typed_confirmation" in text:
        return "this run asks for no typed confirmation (only lock does); answer again without --confirm."
    if isinstance(exc, FlowPauseTimeout):
        return "the run's approval has expired; it can no longer be resumed. Start the change again."
    if isinstance(exc, ValueError):
        return f"{text}. Give the flow run id as shown in the Prefect UI (a UUID)."
    return f"{text.rstrip('.')}."


if __name__ == "__main__":
    sys.exit(main())
