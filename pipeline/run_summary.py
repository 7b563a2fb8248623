"""What the latest local run did, in a few lines for the terminal: each component's wall time
and state, which components were cached, the blessing, the evaluation metrics and the pushed
version. The run is read as the report reads it (pipeline/runs.py), so only this run's
executions count: a data-half run after a full one shows no model.
"""
from __future__ import annotations

from typing import List

from components.pusher import ALREADY_SERVED_PROPERTY
from pipeline import run_artifacts, runs


def component_lines(run: runs.PipelineRun) -> List[str]:
    """One line per component: its wall time (for a cached one, the cache lookup) and state."""
    return [f"  {name:<30} {entry.seconds:8.1f} s" + ("  (cached)" if entry.state == "CACHED"
                                                     else "")
            for name, entry in run.components.items()]


def describe_run(run: runs.PipelineRun) -> str:
    """Which components were cached, whether the run blessed its model, its evaluation metrics
    and where it pushed it; the model lines are left out for a run without one (data half)."""
    lines = []
    if run.cached:
        lines.append(f"cached (inputs and settings unchanged, outputs reused): "
                     f"{', '.join(run.cached)}")
    blessing = run_artifacts.blessed(run.artifact("Evaluator", "blessing"))
    if blessing is not None:
        lines.append(f"model blessed: {'yes' if blessing else 'no'}")
    evaluation = run.artifact("Evaluator", "evaluation")
    if evaluation is not None:
        metrics = run_artifacts.overall_metrics(evaluation.uri)
        shown = {name: round(value, 4) for name, value in sorted(metrics.items())
                 if "/" not in name}
        lines.append(f"evaluation (eval split): {shown}")
    pushed = run.artifact("ServingPusher", "pushed_model")
    if pushed is not None:
        if pushed.get_int_custom_property("pushed"):
            already = pushed.has_custom_property(ALREADY_SERVED_PROPERTY) and \
                pushed.get_int_custom_property(ALREADY_SERVED_PROPERTY)
            lines.append(f"{'already serving' if already else 'pushed'} model: "
                         f"{pushed.get_string_custom_property('pushed_destination')}"
                         f" (version {pushed.get_custom_property('pushed_version')})")
        else:
            lines.append("not pushed (the model was not blessed)")
    return "\n".join(lines)
