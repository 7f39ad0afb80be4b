"""Create or update the AWS side of transcription: the staging bucket and the EventBridge route to tapedeck.

`python -m tools.aws_setup --region R --bucket B --endpoint-url https://.../transcription
    --api-key-secret S --role-arn arn:aws:iam::...:role/... [--prefix tapedeck-] [--expire-days 2]`

Every step reads what is there first and changes only what differs, so running it twice changes
nothing. The connection is the exception: its API key cannot be read back, so it is always re-applied.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.core.signatures import API_KEY_HEADER
from tools.cli import exit_status

__all__ = [
    "API_KEY_HEADER",
    "Change",
    "SetupConfig",
    "SetupError",
    "ensure_api_destination",
    "ensure_bucket",
    "ensure_connection",
    "ensure_lifecycle",
    "ensure_rule",
    "ensure_target",
    "event_pattern",
    "main",
    "setup",
]

# The header EventBridge sends the shared secret in; the receiver checks it.
# The prefixes AwsTranscriber stages under; both are short-lived copies.
STAGED_PREFIXES = ("media/", "transcripts/")
TARGET_ID = "tapedeck-api-destination"
_LIFECYCLE_ID = "tapedeck-expire-{}"


class SetupError(Exception):
    """AWS accepted a request but refused part of it; the message says which."""


@dataclass(frozen=True)
class Change:
    """One resource and what this run did to it: created, updated or kept."""

    kind: str
    name: str
    action: str

    def __str__(self) -> str:
        return f"{self.action:<8} {self.kind} {self.name}"


@dataclass(frozen=True)
class SetupConfig:
    region: str
    bucket: str
    endpoint_url: str
    api_key_secret: str
    role_arn: str
    prefix: str = "tapedeck-"
    expire_days: int = 2
    name: str = "tapedeck-transcribe"
    rate_per_second: int = 10


def _code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def event_pattern(prefix: str) -> dict[str, Any]:
    """The rule's pattern: finished Transcribe jobs whose names this deployment chose."""
    return {
        "source": ["aws.transcribe"],
        "detail-type": ["Transcribe Job State Change"],
        "detail": {
            "TranscriptionJobStatus": ["COMPLETED", "FAILED"],
            "TranscriptionJobName": [{"prefix": prefix}],
        },
    }


def ensure_bucket(s3: Any, bucket: str, region: str) -> Change:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
        return Change("bucket", bucket, "kept")
    except ClientError as err:
        if _code(err) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    # us-east-1 is the default location and refuses to be named as a LocationConstraint.
    extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        s3.create_bucket(Bucket=bucket, **extra)
    except ClientError as err:
        if _code(err) == "BucketAlreadyOwnedByYou":
            return Change("bucket", bucket, "kept")
        raise
    return Change("bucket", bucket, "created")


def _lifecycle_rules(days: int) -> list[dict[str, Any]]:
    return [
        {
            "ID": _LIFECYCLE_ID.format(prefix.rstrip("/")),
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        for prefix in STAGED_PREFIXES
    ]


def _rule_shape(rule: dict[str, Any]) -> tuple[Any, ...]:
    """The fields tapedeck sets, so extra fields S3 echoes back do not count as a difference."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix"))
    return (rule.get("ID"), prefix, rule.get("Status"), rule.get("Expiration", {}).get("Days"))


def ensure_lifecycle(s3: Any, bucket: str, days: int) -> Change:
    """Expire staged media and transcripts after `days`, leaving any other lifecycle rules in place."""
    from botocore.exceptions import ClientError

    try:
        existing: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as err:
        if _code(err) != "NoSuchLifecycleConfiguration":
            raise
        existing = []
    wanted = _lifecycle_rules(days)
    ours = {rule["ID"] for rule in wanted}
    current = sorted(_rule_shape(r) for r in existing if r.get("ID") in ours)
    if current == sorted(_rule_shape(r) for r in wanted):
        return Change("lifecycle", f"{bucket} ({days} days)", "kept")
    others = [r for r in existing if r.get("ID") not in ours]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, *wanted]})
    return Change("lifecycle", f"{bucket} ({days} days)", "updated" if current else "created")


def ensure_connection(events: Any, name: str, api_key: str) -> tuple[Change, str]:
    """The connection that signs each call with the API key header; returns it and its ARN."""
    from botocore.exceptions import ClientError

    auth = {"ApiKeyAuthParameters": {"ApiKeyName": API_KEY_HEADER, "ApiKeyValue": api_key}}
    try:
        events.describe_connection(Name=name)
    except ClientError as err:
        if _code(err) != "ResourceNotFoundException":
            raise
        created = events.create_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=auth)
        return Change("connection", name, "created"), str(created["ConnectionArn"])
    # The stored key cannot be read back to compare, so it is re-applied (an unchanged key changes nothing).
    updated = events.update_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=auth)
    return Change("connection", name, "updated"), str(updated["ConnectionArn"])


def ensure_api_destination(
    events: Any, name: str, connection_arn: str, endpoint_url: str, rate_per_second: int
) -> tuple[Change, str]:
    """The HTTPS endpoint EventBridge POSTs events to; returns it and its ARN."""
    from botocore.exceptions import ClientError

    wanted = {
        "ConnectionArn": connection_arn,
        "InvocationEndpoint": endpoint_url,
        "HttpMethod": "POST",
        "InvocationRateLimitPerSecond": rate_per_second,
    }
    try:
        found = events.describe_api_destination(Name=name)
    except ClientError as err:
        if _code(err) != "ResourceNotFoundException":
            raise
        created = events.create_api_destination(Name=name, **wanted)
        return Change("api destination", name, "created"), str(created["ApiDestinationArn"])
    if all(str(found.get(key)) == str(value) for key, value in wanted.items()):
        return Change("api destination", name, "kept"), str(found["ApiDestinationArn"])
    updated = events.update_api_destination(Name=name, **wanted)
    return Change("api destination", name, "updated"), str(updated["ApiDestinationArn"])


def ensure_rule(events: Any, name: str, prefix: str) -> Change:
    from botocore.exceptions import ClientError

    pattern = event_pattern(prefix)
    try:
        found = events.describe_rule(Name=name)
    except ClientError as err:
        if _code(err) != "ResourceNotFoundException":
            raise
        found = None
    if (
        found is not None
        and json.loads(found.get("EventPattern") or "{}") == pattern
        and found.get("State") == "ENABLED"
    ):
        return Change("rule", name, "kept")
    events.put_rule(
        Name=name,
        EventPattern=json.dumps(pattern),
        State="ENABLED",
        Description="Finished Amazon Transcribe jobs, sent to tapedeck",
    )
    return Change("rule", name, "updated" if found is not None else "created")


def ensure_target(events: Any, rule: str, destination_arn: str, role_arn: str) -> Change:
    """The rule's one target: the API destination, invoked with `role_arn` (needs events:InvokeApiDestination)."""
    targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
    found = next((t for t in targets if t.get("Id") == TARGET_ID), None)
    if found is not None and found.get("Arn") == destination_arn and found.get("RoleArn") == role_arn:
        return Change("target", f"{rule}/{TARGET_ID}", "kept")
    response = events.put_targets(Rule=rule, Targets=[{"Id": TARGET_ID, "Arn": destination_arn, "RoleArn": role_arn}])
    # PutTargets reports refused targets in its answer instead of raising.
    if response.get("FailedEntryCount"):
        raise SetupError(f"target of rule {rule} refused: {response.get('FailedEntries')}")
    return Change("target", f"{rule}/{TARGET_ID}", "updated" if found is not None else "created")


def setup(s3: Any, events: Any, config: SetupConfig) -> list[Change]:
    """Every step in order; each one is safe to repeat."""
    changes = [ensure_bucket(s3, config.bucket, config.region), ensure_lifecycle(s3, config.bucket, config.expire_days)]
    connection, connection_arn = ensure_connection(events, config.name, config.api_key_secret)
    destination, destination_arn = ensure_api_destination(
        events, config.name, connection_arn, config.endpoint_url, config.rate_per_second
    )
    changes += [connection, destination, ensure_rule(events, config.name, config.prefix)]
    changes.append(ensure_target(events, config.name, destination_arn, config.role_arn))
    return changes


def _parse(argv: Sequence[str] | None) -> SetupConfig:
    parser = argparse.ArgumentParser(
        prog="python -m tools.aws_setup", description="Create or update the AWS side of transcription."
    )
    parser.add_argument("--region", required=True, help="AWS region of Transcribe, the bucket and EventBridge")
    parser.add_argument("--bucket", required=True, help="staging bucket for audio and transcripts")
    parser.add_argument("--endpoint-url", required=True, help="HTTPS URL EventBridge POSTs job state changes to")
    parser.add_argument("--api-key-secret", required=True, help=f"value EventBridge sends in {API_KEY_HEADER}")
    parser.add_argument(
        "--role-arn",
        required=True,
        help="IAM role EventBridge assumes to call the destination (events:InvokeApiDestination)",
    )
    parser.add_argument("--prefix", default="tapedeck-", help="transcription job name prefix (default tapedeck-)")
    parser.add_argument("--expire-days", type=int, default=2, help="days before staged objects expire (default 2)")
    parser.add_argument("--name", default="tapedeck-transcribe", help="name of the connection, destination and rule")
    parser.add_argument("--rate", type=int, default=10, help="API destination invocations per second (default 10)")
    args = parser.parse_args(argv)
    if not args.endpoint_url.startswith("https://"):
        parser.error("--endpoint-url must be https://: EventBridge API destinations call HTTPS endpoints only")
    if args.expire_days < 1 or args.rate < 1:
        parser.error("--expire-days and --rate must be at least 1")
    return SetupConfig(
        region=args.region,
        bucket=args.bucket,
        endpoint_url=args.endpoint_url,
        api_key_secret=args.api_key_secret,
        role_arn=args.role_arn,
        prefix=args.prefix,
        expire_days=args.expire_days,
        name=args.name,
        rate_per_second=args.rate,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Bring the AWS resources in line and print one line per resource."""
    config = _parse(argv)
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    def work() -> None:
        s3 = boto3.client("s3", region_name=config.region)
        events = boto3.client("events", region_name=config.region)
        for change in setup(s3, events, config):
            print(change)

    return exit_status("aws-setup", work, (BotoCoreError, ClientError, SetupError))


if __name__ == "__main__":
    sys.exit(main())
