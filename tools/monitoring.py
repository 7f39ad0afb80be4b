"""The operations plan: log-based metrics that count tapedeck's outcome lines, and alert policies on
them. Pure; the deploy stages each policy as JSON (`build/monitoring/<name>.json`) and creates
metrics and policies with gcloud (tools/deploy_plan.py).

Each metric counts the JSON log lines of one `event` (shared/core/operations.py), narrowed by the
values of other fields; each policy opens an incident when any of its metrics counted a line in
the last five minutes, from the functions (Cloud Run, where gen2 functions run) or from the
recorder (App Engine).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.core.operations import Event

__all__ = [
    "METRICS",
    "POLICIES",
    "RESOURCE_TYPES",
    "AlertPolicySpec",
    "LogMetric",
    "alert_policy",
    "metric_type",
]

# The monitored resources tapedeck's lines are logged under: the functions, the recorder.
RESOURCE_TYPES = ("cloud_run_revision", "gae_app")
# How often an incident may open again; the window each count is taken over.
ALIGNMENT = "300s"
AUTO_CLOSE = "86400s"


@dataclass(frozen=True)
class LogMetric:
    """A counter of the log lines whose `event` is `event` and whose fields in `where` hold one of
    the values given for them."""

    name: str
    description: str
    event: Event
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def log_filter(self) -> str:
        """The metric's filter, in Cloud Logging's query language."""
        terms = [f'jsonPayload.event="{self.event}"']
        for field, values in self.where:
            alternatives = " OR ".join(f'jsonPayload.{field}="{value}"' for value in values)
            terms.append(f"({alternatives})" if len(values) > 1 else alternatives)
        return " AND ".join(terms)

    def counts(self, line: Mapping[str, object]) -> bool:
        """Whether the metric counts this JSON log line (what `log_filter` says, for the tests)."""
        return line.get("event") == self.event and all(line.get(field) in values for field, values in self.where)


METRICS = (
    LogMetric(
        "tapedeck_recordings_failed",
        "Recordings that ended with no audio at all: the stream sent none, or never connected",
        Event.RECORDING_FINAL,
        (("state", ("failed",)),),
    ),
    LogMetric(
        "tapedeck_recordings_incomplete",
        "Recordings assembled after their recorder died, or known to miss audio",
        Event.RECORDING_FINAL,
        (("state", ("recovered", "partial")),),
    ),
    LogMetric("tapedeck_pages_failed", "Pages (SMS) that could not be sent", Event.PAGE_FAILED),
    LogMetric(
        "tapedeck_deliveries_failed",
        "Signed deliveries (result, live and recording webhooks, PIN callbacks) given up on",
        Event.DELIVERY_FAILED,
    ),
    LogMetric("tapedeck_tasks_exhausted", "Tasks that failed on their last attempt", Event.TASK_EXHAUSTED),
)


@dataclass(frozen=True)
class AlertPolicySpec:
    """One alert policy: its staged file's name, its title, the metrics it watches, what to do."""

    name: str
    display_name: str
    metrics: tuple[str, ...]
    documentation: str


_PROBLEMS = "The recordings browser's Problems page lists each one, with a retry where one makes sense."
POLICIES = (
    AlertPolicySpec(
        "recordings",
        "tapedeck: recordings failed, recovered or partial",
        ("tapedeck_recordings_failed", "tapedeck_recordings_incomplete"),
        "A recording ended other than complete: its stream never connected or sent no audio, its "
        'recorder died, or audio is missing. Log lines: `jsonPayload.event="recording.final"`. ' + _PROBLEMS,
    ),
    AlertPolicySpec(
        "pages",
        "tapedeck: pages not sent",
        ("tapedeck_pages_failed",),
        'A page (SMS) could not be sent. Log lines: `jsonPayload.event="page.failed"`. ' + _PROBLEMS,
    ),
    AlertPolicySpec(
        "deliveries",
        "tapedeck: deliveries given up",
        ("tapedeck_deliveries_failed",),
        'A signed delivery ran out of attempts. Log lines: `jsonPayload.event="delivery.failed"`. ' + _PROBLEMS,
    ),
    AlertPolicySpec(
        "tasks",
        "tapedeck: tasks given up",
        ("tapedeck_tasks_exhausted",),
        "A task failed on its last attempt and will not run again by itself. Log lines: "
        '`jsonPayload.event="task.exhausted"`. ' + _PROBLEMS,
    ),
)


def metric_type(name: str) -> str:
    """The Cloud Monitoring metric type of a log-based metric."""
    return f"logging.googleapis.com/user/{name}"


def alert_policy(spec: AlertPolicySpec) -> dict[str, object]:
    """The policy as Cloud Monitoring's AlertPolicy JSON: one condition per metric and resource
    type (a condition's filter names one of each), any of them opening an incident."""
    conditions = [
        {
            "displayName": f"{metric} counted a line ({resource})",
            "conditionThreshold": {
                "filter": f'metric.type="{metric_type(metric)}" AND resource.type="{resource}"',
                "aggregations": [
                    {"alignmentPeriod": ALIGNMENT, "perSeriesAligner": "ALIGN_SUM", "crossSeriesReducer": "REDUCE_SUM"}
                ],
                "comparison": "COMPARISON_GT",
                "thresholdValue": 0,
                "duration": "0s",
                "trigger": {"count": 1},
            },
        }
        for metric in spec.metrics
        for resource in RESOURCE_TYPES
    ]
    return {
        "displayName": spec.display_name,
        "documentation": {"content": spec.documentation, "mimeType": "text/markdown"},
        "userLabels": {"app": "tapedeck"},
        "conditions": conditions,
        "combiner": "OR",
        "enabled": True,
        "alertStrategy": {"autoClose": AUTO_CLOSE},
    }
