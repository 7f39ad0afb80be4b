"""The operations plan: the staged alert policies read by Cloud Monitoring's own client types, the
log-based metrics they watch, the Cloud Scheduler job that runs the sweep, and how the deploy
creates each once."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from google.cloud import monitoring_v3
from google.protobuf import json_format

from tools.deploy import CHANNELS_VARIABLE, DeployError, format_plan, main, read_channels, run_plan
from tools.deploy_plan import SWEEP_JOB, Step, deploy_plan, sweep_schedule
from tools.monitoring import METRICS, POLICIES, RESOURCE_TYPES, metric_type

PROJECT, REGION = "demo", "europe-west1"
TASKS_URL = "https://tasks-abc123-ew.a.run.app"
ENVIRON = {
    "STORAGE": "gcs",
    "GCS_BUCKET": "calls",
    "STREAM_TOKEN_SECRET": "tok-s3cr3t",
    "TASK_QUEUE": "cloud-tasks",
    "TASKS_URL": TASKS_URL,
    "SWEEP_INTERVAL": "90",
    CHANNELS_VARIABLE: "projects/demo/notificationChannels/1234567890",
}


@pytest.fixture
def staged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[str]]:
    """The dry run's staging folder and the plan it printed."""
    out = tmp_path / "build"
    assert main(["--dry-run", "--project", PROJECT, "--region", REGION, "--out", str(out)], ENVIRON) == 0
    return out, capsys.readouterr().out.splitlines()


def test_each_staged_policy_is_an_alert_policy_as_cloud_monitoring_reads_it(staged: tuple[Path, list[str]]) -> None:
    out, _ = staged
    files = sorted((out / "monitoring").glob("*.json"))
    assert [f.stem for f in files] == sorted(p.name for p in POLICIES)
    for path in files:
        text = path.read_text()
        # proto-plus and protobuf's own JSON parsers: an unknown field or a bad enum value raises.
        policy = monitoring_v3.AlertPolicy.from_json(text)
        json_format.Parse(text, monitoring_v3.AlertPolicy.pb()())
        assert policy.combiner == monitoring_v3.AlertPolicy.ConditionCombinerType.OR and policy.enabled
        assert 1 <= len(policy.conditions) <= 6  # Cloud Monitoring's limit per policy
        for condition in policy.conditions:
            threshold = condition.condition_threshold
            assert threshold.comparison == monitoring_v3.ComparisonType.COMPARISON_GT and threshold.threshold_value == 0
            assert threshold.aggregations[0].alignment_period.total_seconds() == 300


@pytest.mark.parametrize(
    ("field", "value"),
    [("combiner", "EITHER"), ("conditions", [{"conditionTreshold": {}}]), ("alertStrategy", {"autoClose": "a day"})],
)
def test_a_malformed_policy_is_refused_by_the_same_reading(field: str, value: object) -> None:
    from tools.monitoring import alert_policy

    broken = json.dumps(alert_policy(POLICIES[0]) | {field: value})
    with pytest.raises((ValueError, json_format.ParseError)):
        monitoring_v3.AlertPolicy.from_json(broken)


def test_each_condition_watches_a_metric_the_plan_creates_on_each_resource_tapedeck_logs_from(
    staged: tuple[Path, list[str]],
) -> None:
    out, lines = staged
    created = {shlex.split(line.split("||")[-1])[4] for line in lines if "logging metrics create" in line}
    assert created == {metric.name for metric in METRICS}
    for policy in POLICIES:
        document = json.loads((out / "monitoring" / f"{policy.name}.json").read_text())
        filters = [c["conditionThreshold"]["filter"] for c in document["conditions"]]
        assert filters == [
            f'metric.type="{metric_type(name)}" AND resource.type="{resource}"'
            for name in policy.metrics
            for resource in RESOURCE_TYPES
        ]
        assert set(policy.metrics) <= created
    for metric in METRICS:
        # Cloud Logging's metric identifiers: at most 100 of these characters.
        assert re.fullmatch(r"[A-Za-z0-9_.,+!*'()%/-]{1,100}", metric.name)


def test_each_metric_filter_says_what_it_counts() -> None:
    (failed, incomplete, *_) = METRICS
    assert failed.log_filter == 'jsonPayload.event="recording.final" AND jsonPayload.state="failed"'
    assert incomplete.log_filter == (
        'jsonPayload.event="recording.final" AND (jsonPayload.state="recovered" OR jsonPayload.state="partial")'
    )
    assert incomplete.counts({"event": "recording.final", "state": "partial"})
    assert not incomplete.counts({"event": "recording.final", "state": "complete"})


def test_cloud_scheduler_posts_the_sweep_to_the_tasks_function_as_the_tasks_account(
    staged: tuple[Path, list[str]],
) -> None:
    _, lines = staged
    (create,) = (line for line in lines if f"scheduler jobs create http {SWEEP_JOB}" in line)
    describe, _, command = create.partition(" >/dev/null 2>&1 || ")
    assert describe == f"gcloud scheduler jobs describe {SWEEP_JOB} --location={REGION} --project={PROJECT}"
    flags = dict(word.split("=", 1) for word in shlex.split(command) if word.startswith("--"))
    assert flags["--uri"] == flags["--oidc-token-audience"] == TASKS_URL
    assert flags["--oidc-service-account-email"] == f"tapedeck-tasks@{PROJECT}.iam.gserviceaccount.com"
    assert json.loads(flags["--message-body"]) == {"kind": "sweep", "key": "scheduled", "payload": {}}
    assert (flags["--schedule"], flags["--http-method"], flags["--headers"]) == (
        "*/2 * * * *",
        "post",
        "Content-Type=application/json",
    )
    assert any(line.startswith(f"gcloud scheduler jobs update http {SWEEP_JOB}") for line in lines)
    assert "cloudscheduler.googleapis.com" in lines[0] and "monitoring.googleapis.com" in lines[0]


def test_the_recorder_may_queue_tasks_as_the_functions_do(staged: tuple[Path, list[str]]) -> None:
    _, lines = staged
    recorder = f"--member=serviceAccount:tapedeck-rec@{PROJECT}.iam.gserviceaccount.com"
    grants = [line for line in lines if recorder in line]
    assert any("tasks queues add-iam-policy-binding" in g and "roles/cloudtasks.enqueuer" in g for g in grants)
    assert any("tapedeck-tasks@" in g and "roles/iam.serviceAccountUser" in g for g in grants)


@pytest.mark.parametrize(
    ("seconds", "cron"), [(10, "*/1 * * * *"), (60, "*/1 * * * *"), (300, "*/5 * * * *"), (3600, "0 * * * *")]
)
def test_the_sweep_runs_every_whole_number_of_minutes(seconds: float, cron: str) -> None:
    assert sweep_schedule(seconds) == cron


def test_without_the_tasks_url_no_schedule_is_made_and_the_deploy_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ = {k: v for k, v in ENVIRON.items() if k != "TASKS_URL"}
    assert main(["--dry-run", "--project", PROJECT, "--region", REGION, "--out", str(tmp_path)], environ) == 0
    out, err = capsys.readouterr()
    assert "gcloud scheduler" not in out and "no schedule runs the sweep" in err


class Gcloud:
    """gcloud answering a policy listing with the policies `existing` names."""

    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, argv: tuple[str, ...], input: bytes | None = None, capture_output: bool = False) -> Any:
        if "list" in argv:
            names = [f"projects/demo/alertPolicies/{n}" for n in self.existing if any(n in word for word in argv)]
            return subprocess.CompletedProcess(argv, 0, "\n".join(names).encode())
        self.ran.append(argv)
        return subprocess.CompletedProcess(argv, 0)


def test_a_policy_is_created_once_found_by_its_title(tmp_path: Path) -> None:
    steps = [s for s in _plan(tmp_path) if s.argv[1:3] == ("alpha", "monitoring")]
    gcloud = Gcloud({POLICIES[0].display_name})
    run_plan(steps, which=lambda name: "/usr/bin/gcloud", run=gcloud)
    created = [next(w for w in argv if w.startswith("--policy-from-file=")) for argv in gcloud.ran]
    assert created == [f"--policy-from-file={tmp_path / 'monitoring' / f'{p.name}.json'}" for p in POLICIES[1:]]
    assert all("--notification-channels=1234567890" in argv for argv in gcloud.ran)
    assert format_plan(steps[:1]).startswith("gcloud alpha monitoring policies list '--filter=displayName=")


def _plan(tmp_path: Path) -> list[Step]:
    return deploy_plan(
        project=PROJECT,
        region=REGION,
        functions_dir=tmp_path / "functions",
        recorder_dir=tmp_path / "appengine",
        browser_dir=tmp_path / "browser",
        names=[("tasks", "tasks")],
        env=ENVIRON,
        channels=["1234567890"],
    )


def test_alert_channels_are_notification_channels() -> None:
    assert read_channels(" 123, projects/demo-1/notificationChannels/456 ,") == [
        "123",
        "projects/demo-1/notificationChannels/456",
    ]
    assert read_channels(None) == []
    for bad in ("ops@example.com", "projects/x/alertPolicies/1", "12 34"):
        with pytest.raises(DeployError, match=CHANNELS_VARIABLE):
            read_channels(bad)
