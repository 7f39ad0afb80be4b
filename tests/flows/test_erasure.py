"""Erasing calls everywhere they left a trace: the retention sweep (per route, with legal hold),
forgetting a number (idempotent, and finished by running it again after a crash at any step), and
the engine's copies on Amazon Transcribe (moto in server mode)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.aws_transcriber import AwsTranscriber
from shared.adapters.local_blob_store import LocalBlobStore
from shared.config.routes import parse_routes
from shared.config.settings import Settings, StorageSettings, StreamSettings, SweepSettings
from shared.core.call_record import record_status
from shared.core.erasure import forget_record_key, number_digest
from shared.core.errors import BadRequest, Conflict, Gone
from shared.core.pin_prompt import PromptRequest, new_transaction
from shared.core.ports import BINARY, Transcript, TranscriptionJob
from shared.flows.calls import update_call
from shared.flows.erase import (
    RETENTION_CURSOR_KEY,
    delete_call,
    forget_number,
    request_forget,
    run_forget,
    run_retention,
    set_legal_hold,
)
from shared.flows.links import resolve_link
from shared.flows.pin_calls import transaction_key
from shared.flows.sweep import run_sweep
from shared.flows.transcription import run_transcription
from tests.aws import REGION
from tests.browser.calls import recorded_stream
from tests.fakes import FakeServices
from tests.flows.mailbox import CALLER, CONVERSATION, JOB, LINK, MAILBOX, OWNERS, RECORDING, SPOKEN, URL, received
from tests.testbed import DATA, TOKEN_SECRET

DAY = 86400.0
STREAMED = "447700900004"
ROUTES = (
    f'"{MAILBOX}":\n  flow: voicemail\n  owner: Sam\n  recipients: ["{OWNERS[0]}", "{OWNERS[1]}"]\n'
    "  retention_days: 30\n"
    f'"{STREAMED}":\n  flow: stream\n  retention_days: 0\n'
)


def services_on(folder: Path, retention_days: int = 365, batch: int = 100) -> FakeServices:
    settings = Settings(
        stream=StreamSettings(token_secret=TOKEN_SECRET),
        public_url="https://fn.example.test",
        routes=parse_routes(ROUTES, "routes.yaml", default_flow="stream"),
        storage=StorageSettings(retention_days=retention_days),
        sweep=SweepSettings(batch=batch),
    )
    services = FakeServices.on(folder, settings)
    services.recordings.files[URL] = (DATA / "voicemail_outage.wav").read_bytes()
    return services


def voicemail(services: FakeServices) -> str:
    """A voicemail from CALLER, transcribed and paged to both owners, with a link to its audio."""
    job = received(services)
    services.transcriber.transcripts[JOB] = Transcript(JOB, "completed", SPOKEN)
    assert run_transcription(services, job, services.clock()) == "completed"
    return CONVERSATION


def streamed(services: FakeServices, conversation_uuid: str, at: float, caller: str = CALLER, to: str = "") -> None:
    """A streamed call from `caller`, over."""
    recorded_stream(services.store, conversation_uuid, at, caller)

    def over(call):  # type: ignore[no-untyped-def]
        record_status(call, status="completed", timestamp="2026-11-30T09:01:00.000Z", uuid="leg-1")
        call.to = to or call.to

    update_call(services.store, conversation_uuid, over, at)


def everything(store: LocalBlobStore) -> dict[str, bytes]:
    """Every object and what it holds."""
    return {info.key: store.read(info.key).data for info in store.list("")}  # type: ignore[union-attr]


def naming(store: LocalBlobStore, text: str) -> list[str]:
    """The objects that name `text`, in their key or their content; and any file on disk, lock
    files included, whose name has it."""
    found = [key for key, data in everything(store).items() if text in key or text.encode() in data]
    found += [str(p) for p in store.root.rglob("*") if text in p.name]
    return found


def test_a_call_past_its_route_s_retention_is_erased_everywhere(tmp_path: Path) -> None:
    services = services_on(tmp_path)
    voicemail(services)
    link = LINK.search(services.messenger.texts[0][1])
    assert link is not None
    link_id = link.group().rsplit("=", 1)[1]
    created = services.clock()
    streamed(services, "CON-kept-by-route", created, caller="447700900555", to=STREAMED)
    streamed(services, "CON-default", created, caller="447700900556")
    before = everything(services.store)
    assert any(key.startswith("jobs/") for key in before) and any(key.startswith("links/") for key in before)

    assert run_retention(services, created + 29 * DAY).erased == 0
    assert everything(services.store) == before

    report = run_retention(services, created + 30 * DAY + 1)
    assert (report.erased, report.held) == (1, 0)
    assert naming(services.store, CONVERSATION) == []
    assert naming(services.store, RECORDING) == []
    assert services.messenger.sent == []  # the outbox's copies of the pages
    assert services.transcriber.transcripts == {}  # the engine's copy
    with pytest.raises(Gone):
        resolve_link(services.store, link_id, created + 30 * DAY + 2)
    assert json.loads(services.store.read(f"links/{link_id}.json").data) == {"erased": True}  # type: ignore[union-attr]
    # The route's 0 keeps its calls; the rest keep the default, 365 days.
    assert services.store.read("calls/CON-kept-by-route/call.json") is not None
    assert services.store.read("calls/CON-default/call.json") is not None
    run_retention(services, created + 366 * DAY)
    assert services.store.read("calls/CON-default/call.json") is None
    assert [key for key in everything(services.store) if key.startswith("calls/")] == [
        key for key in before if key.startswith("calls/CON-kept-by-route/")
    ]


def test_a_held_call_is_kept_whole_until_its_hold_is_cleared(tmp_path: Path) -> None:
    services = services_on(tmp_path, retention_days=10)
    start = services.clock()
    streamed(services, "CON-held", start)
    streamed(services, "CON-gone", start)
    set_legal_hold(services.store, "CON-held", True, "alice@example.com", start + 60)
    held = {k: v for k, v in everything(services.store).items() if "CON-held" in k}

    report = run_retention(services, start + 11 * DAY)
    assert (report.erased, report.held) == (1, 1)
    assert {k: v for k, v in everything(services.store).items() if "CON-held" in k} == held
    with pytest.raises(Conflict):
        delete_call(services, "CON-held", "alice@example.com", start + 11 * DAY)

    set_legal_hold(services.store, "CON-held", False, "alice@example.com", start + 11 * DAY)
    run_retention(services, start + 11 * DAY)  # the pass before reached the end: this one starts over
    assert naming(services.store, "CON-held") == []


def test_a_long_backlog_is_erased_a_batch_a_run_from_where_the_last_stopped(tmp_path: Path) -> None:
    services = services_on(tmp_path, retention_days=1, batch=3)
    start = services.clock()
    for n in range(8):
        streamed(services, f"CON-{n}", start + n)
    runs = []
    while True:
        report = run_retention(services, start + 2 * DAY)
        runs.append(report.erased)
        if not report.more:
            break
    assert runs == [3, 3, 2]
    assert [info.key for info in services.store.list("")] == [RETENTION_CURSOR_KEY]


def test_the_sweep_erases_past_retention_as_of_a_given_time(tmp_path: Path) -> None:
    services = services_on(tmp_path, retention_days=30)
    start = services.clock()
    streamed(services, "CON-old", start)
    assert run_sweep(services, start).retention.erased == 0
    report = run_sweep(services, start, as_of=start + 31 * DAY)
    assert report.retention.erased == 1 and "1 erased" in report.describe()
    assert naming(services.store, "CON-old") == []


def test_the_browser_s_delete_keeps_only_who_deleted_the_call_and_when(tmp_path: Path) -> None:
    services = services_on(tmp_path)
    conversation_uuid = voicemail(services)
    delete_call(services, conversation_uuid, "alice@example.com", services.clock())
    left = everything(services.store)
    assert [key for key in left if conversation_uuid in key] == [f"calls/{conversation_uuid}/call.json"]
    record = json.loads(left[f"calls/{conversation_uuid}/call.json"])
    assert record["deleted"]["by"] == "alice@example.com"
    assert CALLER not in json.dumps(record) and record["events"] == [] and record["from"] is None
    assert naming(services.store, CALLER) == []


def prompt_for(services: FakeServices, tid: str, to: str) -> None:
    request = PromptRequest(to, "447700900000", "Enter your code", "4821", "https://crm.example/cb")
    document = new_transaction(tid, request, services.clock(), 7).to_json()
    services.store.write(transaction_key(tid), json.dumps(document).encode(), "application/json")


def forgettable(folder: Path) -> FakeServices:
    """A voicemail and two streamed calls from CALLER, one streamed call from someone else, and a
    PIN prompt to each."""
    services = services_on(folder)
    voicemail(services)
    start = services.clock()
    streamed(services, "CON-a", start + 10)
    streamed(services, "CON-b", start + 20)
    streamed(services, "CON-other", start + 30, caller="447700900999")
    prompt_for(services, "0eaf2c05-133b-48b0-b68c-000000000001", CALLER)
    prompt_for(services, "0eaf2c05-133b-48b0-b68c-000000000002", "447700900999")
    return services


def test_forgetting_a_number_leaves_nothing_naming_it_and_a_record_that_does_not(tmp_path: Path) -> None:
    services = forgettable(tmp_path)
    other = {
        k: v
        for k, v in everything(services.store).items()
        if "CON-other" in k or "0eaf2c05-133b-48b0-b68c-000000000002" in k
    }

    report = forget_number(services, CALLER, "alice@example.com", services.clock())
    assert report.done and report.calls == 3 and report.objects["prompt transactions"] == 1
    assert naming(services.store, CALLER) == [], "nothing names the number"
    assert naming(services.store, CONVERSATION) == [] and services.messenger.sent == []
    assert {
        k: v
        for k, v in everything(services.store).items()
        if "CON-other" in k or "0eaf2c05-133b-48b0-b68c-000000000002" in k
    } == other
    record = json.loads(services.store.read(forget_record_key(number_digest(CALLER))).data)  # type: ignore[union-attr]
    (run,) = record["runs"]
    assert run["by"] == "alice@example.com" and run["calls"] == 3
    assert run["objects"]["audio"] == 3 and run["objects"]["prompt transactions"] == 1
    assert CALLER not in json.dumps(record)

    after = everything(services.store)
    again = forget_number(services, CALLER, "bob@example.com", services.clock() + 60)
    assert again.done and again.calls == 0 and not again.objects
    assert everything(services.store) == after, "a second run changes nothing"


def test_forgetting_keeps_held_calls_and_calls_not_over_and_finishes_them_later(tmp_path: Path) -> None:
    services = services_on(tmp_path)
    start = services.clock()
    streamed(services, "CON-held", start)
    set_legal_hold(services.store, "CON-held", True, "alice@example.com", start)

    def answered_only(call):  # type: ignore[no-untyped-def]
        record_status(call, status="answered", timestamp="2026-11-30T09:00:00.000Z", uuid="leg-9", from_=CALLER)

    update_call(services.store, "CON-live", answered_only, start)
    report = forget_number(services, CALLER, "alice@example.com", start + 60)
    assert (report.done, report.held, report.in_progress) == (False, 1, 1)
    assert services.store.read("calls/CON-held/audio.wav") is not None
    assert services.store.read("calls/CON-live/call.json") is not None

    set_legal_hold(services.store, "CON-held", False, "alice@example.com", start + 120)
    # A day on, a call whose end never came is erased too; the sweep finishes the request.
    runs = [run_sweep(services, start + DAY + 60).forgotten for _ in range(3)]
    assert "under way; 2 call(s) erased" in runs[0][0]
    assert any("done" in line for line in runs[1]) and runs[2] == []
    assert naming(services.store, CALLER) == []


def test_one_of_the_deployment_s_own_numbers_cannot_be_forgotten(tmp_path: Path) -> None:
    services = services_on(tmp_path)
    with pytest.raises(BadRequest):
        forget_number(services, MAILBOX, "alice@example.com", services.clock())


class Crash(Exception):
    """The process died here."""


class CrashingStore(LocalBlobStore):
    """A local folder whose process dies at its `at`-th write or delete."""

    def __init__(self, root: Path, at: int) -> None:
        super().__init__(root)
        self.left = at

    def _step(self) -> None:
        self.left -= 1
        if self.left == 0:
            raise Crash

    def write(self, key: str, data: bytes, content_type: str = BINARY, if_generation_match: int | None = None) -> int:
        self._step()
        return super().write(key, data, content_type, if_generation_match)

    def delete(self, key: str) -> None:
        self._step()
        super().delete(key)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(1, 60))
def test_forgetting_finishes_when_run_again_after_a_crash_at_any_step(
    tmp_path_factory: pytest.TempPathFactory, at: int
) -> None:
    folder = tmp_path_factory.mktemp("crash")
    services = forgettable(folder)
    crashing = CrashingStore(folder / "data", at)
    dying = FakeServices(services.settings, crashing, services.transcriber, services.messenger, clock=services.clock)
    with contextlib.suppress(Crash):
        forget_number(dying, CALLER, "alice@example.com", services.clock())
    report = forget_number(services, CALLER, "alice@example.com", services.clock() + 60)
    assert report.done
    assert naming(services.store, CALLER) == []
    assert services.store.read(forget_record_key(number_digest(CALLER))) is not None
    assert services.store.read("calls/CON-other/call.json") is not None


def test_a_request_waits_for_the_sweep_and_is_done_a_batch_a_run(tmp_path: Path) -> None:
    services = forgettable(tmp_path)
    services = FakeServices(
        Settings(**{**services.settings.__dict__, "sweep": SweepSettings(batch=2)}),
        services.store,
        services.transcriber,
        services.messenger,
        clock=services.clock,
    )
    digest = request_forget(services.store, CALLER, "alice@example.com", services.clock())
    assert request_forget(services.store, CALLER, "bob@example.com", services.clock()) == digest
    runs = 0
    while not run_forget(services, digest, services.clock()).done:
        runs += 1
    assert runs >= 3 and naming(services.store, CALLER) == []


def test_the_engine_s_copies_on_amazon_transcribe_are_discarded(tmp_path: Path, aws: str) -> None:
    """Amazon Transcribe and S3 as moto serves them: the staged audio, the transcript and the job."""
    store = LocalBlobStore(tmp_path / "data")
    store.write("calls/CON-1/message.wav", (DATA / "voicemail_outage.wav").read_bytes(), "audio/wav")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="staging")
    transcriber = AwsTranscriber(store, "staging", REGION)
    name = f"tapedeck-vm-{RECORDING}"
    transcriber.start(TranscriptionJob(name, "calls/CON-1/message.wav", "wav", "en-US"))
    s3.put_object(Bucket="staging", Key=f"transcripts/{name}.json", Body=b"{}")
    assert len(s3.list_objects_v2(Bucket="staging").get("Contents", [])) == 2

    assert transcriber.discard(name) == 3
    assert s3.list_objects_v2(Bucket="staging").get("Contents", []) == []
    transcribe = boto3.client("transcribe", region_name=REGION)
    with pytest.raises(transcribe.exceptions.BadRequestException):
        transcribe.get_transcription_job(TranscriptionJobName=name)
    assert transcriber.discard(name) == 0
