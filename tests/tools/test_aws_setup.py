"""aws_setup against moto running as a real server on loopback: the bucket, its lifecycle, and
EventBridge's connection, API destination, rule and target."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.aws import REGION
from tools import aws_setup

# Real servers or emulators on loopback, started by the tests.
pytestmark = pytest.mark.slow

BUCKET = "tapedeck-staging-test"

ROLE = "arn:aws:iam::123456789012:role/tapedeck-events"
ARGS = [
    "--region",
    REGION,
    "--bucket",
    BUCKET,
    "--endpoint-url",
    "https://example.test/transcription",
    "--api-key-secret",
    "s3cret",
    "--role-arn",
    ROLE,
]


def test_setup_creates_everything_then_keeps_it(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert aws_setup.main(ARGS) == 0
    first = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in first] == ["created"] * 6

    assert aws_setup.main(ARGS) == 0
    second = capsys.readouterr().out.splitlines()
    # The connection's key cannot be read back, so it is re-applied; everything else is left alone.
    assert [line.split()[0] for line in second] == ["kept", "kept", "updated", "kept", "kept", "kept"]

    s3 = boto3.client("s3", region_name=REGION)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert sorted((r["Filter"]["Prefix"], r["Expiration"]["Days"], r["Status"]) for r in rules) == [
        ("media/", 2, "Enabled"),
        ("transcripts/", 2, "Enabled"),
    ]
    events = boto3.client("events", region_name=REGION)
    assert len(events.list_rules()["Rules"]) == 1
    rule = events.describe_rule(Name="tapedeck-transcribe")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.transcribe"],
        "detail-type": ["Transcribe Job State Change"],
        "detail": {
            "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
            "TranscriptionJobName": [{"prefix": "tapedeck-"}],
        },
    }
    connection = events.describe_connection(Name="tapedeck-transcribe")
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"] == "X-Tapedeck-Key"
    destination = events.describe_api_destination(Name="tapedeck-transcribe")
    assert destination["InvocationEndpoint"] == "https://example.test/transcription"
    assert destination["HttpMethod"] == "POST"
    assert destination["ConnectionArn"] == connection["ConnectionArn"]
    (target,) = events.list_targets_by_rule(Rule="tapedeck-transcribe")["Targets"]
    assert (target["Arn"], target["RoleArn"]) == (destination["ApiDestinationArn"], ROLE)


def test_setup_updates_what_changed(aws: str) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    config = aws_setup.SetupConfig(REGION, BUCKET, "https://a.test/t", "k", ROLE)
    aws_setup.setup(s3, events, config)
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [
                *s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"],
                {"ID": "theirs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
            ]
        },
    )

    changed = aws_setup.SetupConfig(REGION, BUCKET, "https://b.test/t", "k", ROLE, prefix="vm-", expire_days=5)
    actions = {c.kind: c.action for c in aws_setup.setup(s3, events, changed)}

    assert actions == {
        "bucket": "kept",
        "lifecycle": "updated",
        "connection": "updated",
        "api destination": "updated",
        "rule": "updated",
        "target": "kept",
    }
    rules = {r["ID"]: r["Expiration"]["Days"] for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert rules == {"theirs": 30, "tapedeck-expire-media": 5, "tapedeck-expire-transcripts": 5}
    pattern = json.loads(events.describe_rule(Name="tapedeck-transcribe")["EventPattern"])
    assert pattern["detail"]["TranscriptionJobName"] == [{"prefix": "vm-"}]
    assert events.describe_api_destination(Name="tapedeck-transcribe")["InvocationEndpoint"] == "https://b.test/t"


def test_a_bucket_outside_us_east_1_is_created_in_its_region(aws: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    assert aws_setup.ensure_bucket(s3, "tapedeck-eu", "eu-west-1").action == "created"
    assert s3.get_bucket_location(Bucket="tapedeck-eu")["LocationConstraint"] == "eu-west-1"
    assert aws_setup.ensure_bucket(s3, "tapedeck-eu", "eu-west-1").action == "kept"


def test_setup_refuses_a_plain_http_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*ARGS]
    args[args.index("--endpoint-url") + 1] = "http://example.test/transcription"
    with pytest.raises(SystemExit):
        aws_setup.main(args)
    assert "https" in capsys.readouterr().err
