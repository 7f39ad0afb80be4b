"""The calls index: every change to call.json keeps the call's summary beside it, and the list's
pages read newest first, filtered, without reading what comes before them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.local_blob_store import LocalBlobStore
from shared.core.call_index import CallFilter, CallSummary, index_key, transcript_start
from shared.core.call_record import Flow, record_status
from shared.core.errors import BadRequest
from shared.flows.calls import list_calls, note_transcript, read_call, update_call

DAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()


def add_call(
    store: LocalBlobStore, number: int, at: float, *, flow: Flow = Flow.STREAM, words: str = "", caller: str = ""
) -> str:
    conversation_uuid = f"CON-{number:08d}"

    def change(call):  # type: ignore[no-untyped-def]
        call.flow = flow
        record_status(
            call,
            status="completed",
            timestamp="2026-11-30T09:00:00.000Z",
            uuid=f"leg-{number}",
            from_=caller or f"4477009{number:05d}",
            to="447700900000",
            direction="inbound",
            details={"duration": "12"},
        )

    update_call(store, conversation_uuid, change, at)
    if words:
        note_transcript(store, conversation_uuid, words, at + 30)
    return conversation_uuid


def test_a_new_call_is_dated_once_and_summarized_where_its_date_puts_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    conversation_uuid = add_call(store, 1, DAY, words="Caller: the production database is down")
    call = read_call(store, conversation_uuid)
    assert call is not None and call.created_at == "2026-11-30T09:00:00.000Z"
    blob = store.read(index_key(call.created_at, conversation_uuid))
    assert blob is not None
    summary = CallSummary.from_json(json.loads(blob.data))
    assert summary == CallSummary(
        conversation_uuid,
        "2026-11-30T09:00:00.000Z",
        "447700900001",
        "447700900000",
        "stream",
        "completed",
        12.0,
        "Caller: the production database is down",
    )
    assert index_key(call.created_at, conversation_uuid).startswith("index/calls/79738869/")


def test_a_long_transcript_keeps_its_start_cut_at_a_word() -> None:
    text = "word " * 400
    start = transcript_start(text)
    assert len(start) <= 1002 and start.endswith(" …") and "wor …" not in start


def test_the_list_is_newest_first_in_pages_that_cover_every_call_once(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    made = [add_call(store, n, DAY + n * 3600 * 7) for n in range(23)]  # about a week, a few a day
    seen: list[str] = []
    after = ""
    while True:
        page = list_calls(store, CallFilter(), after, limit=5)
        seen += [s.conversation_uuid for s in page.calls]
        if page.next_after is None or not page.calls:
            break
        after = page.next_after
    assert seen == list(reversed(made))


def test_filters_by_date_range_number_flow_and_words(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    a = add_call(store, 1, DAY - 86400, words="please call me back")
    b = add_call(store, 2, DAY, flow=Flow.VOICEMAIL, words="the DATABASE is down", caller="447700900555")
    c = add_call(store, 3, DAY + 86400, flow=Flow.CONVERSATION, words="new address please")

    def ids(**query: str) -> list[str]:
        return [s.conversation_uuid for s in list_calls(store, CallFilter.from_query(query)).calls]

    assert ids() == [c, b, a]
    assert ids(since="2026-11-30", until="2026-11-30") == [b]
    assert ids(since="2026-11-30") == [c, b]
    assert ids(until="2026-11-30") == [b, a]
    assert ids(number="+447700900555") == [b]
    assert ids(number="447700900000") == [c, b, a]
    assert ids(flow="conversation") == [c]
    assert ids(text="Database   is") == [b]
    assert ids(text="please") == [c, a]
    assert ids(text="please", until="2026-11-30") == [a]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"until": "2026-02-30"},
        {"flow": "fax"},
        {"number": "0800 FLOWERS"},
        {"since": "2026-12-01", "until": "2026-11-30"},
        {"text": "x" * 201},
    ],
)
def test_a_bad_filter_is_a_clear_error(query: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        CallFilter.from_query(query)


def test_a_rare_match_answers_after_the_scan_limit_with_where_to_go_on(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    rare = add_call(store, 0, DAY, words="needle")
    for n in range(1, 30):
        add_call(store, n, DAY + n, words="hay")
    page = list_calls(store, CallFilter(text="needle"), scan_limit=10)
    assert page.calls == [] and page.scanned == 10 and page.next_after is not None
    rest = list_calls(store, CallFilter(text="needle"), page.next_after, scan_limit=100)
    assert [s.conversation_uuid for s in rest.calls] == [rare]


def test_a_deleted_call_leaves_the_list(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    gone = add_call(store, 1, DAY)
    kept = add_call(store, 2, DAY + 1)

    def delete(call):  # type: ignore[no-untyped-def]
        call.deleted = {"at": "2026-11-30T10:00:00.000Z", "by": "ops@example.com"}

    update_call(store, gone, delete, DAY + 60)
    assert [s.conversation_uuid for s in list_calls(store, CallFilter()).calls] == [kept]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.from_regex(r"[a-c]{1,2}(/[a-c]{1,2}){0,2}", fullmatch=True), min_size=1, max_size=12, unique=True),
    st.from_regex(r"[a-c/]{0,6}", fullmatch=True),
    st.integers(1, 5),
)
def test_a_local_listing_page_is_the_slice_of_the_whole_listing(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], start: str, limit: int
) -> None:
    store = LocalBlobStore(tmp_path_factory.mktemp("store"))
    written: list[str] = []
    for name in names:
        key = f"p/{name}"
        # A key can't be both an object and a folder of objects.
        if any(other.startswith(key + "/") or key.startswith(other + "/") for other in written):
            continue
        store.write(key, b"x")
        written.append(key)
    whole = [info.key for info in store.list("p/")]
    start_after = f"p/{start}" if start else ""
    expected = [key for key in whole if key > start_after][:limit]
    assert [info.key for info in store.list_after("p/", start_after, limit)] == expected


def test_dates_are_whole_days_in_utc() -> None:
    where = CallFilter(since=date(2026, 11, 30), until=date(2026, 11, 30))
    inside = index_key("2026-11-30T23:59:59.999Z", "CON-x")
    after = index_key("2026-12-01T00:00:00.000Z", "CON-x")
    before = index_key("2026-11-29T23:59:59.999Z", "CON-x")
    assert where.first_key() < inside and not where.past_range(inside)
    assert after < where.first_key()
    assert where.past_range(before)


def test_calls_stored_before_the_index_are_dated_by_their_first_event_when_reindexed(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    old = {
        "conversation_uuid": "CON-old",
        "uuids": ["leg-1"],
        "from": "447700900123",
        "to": "447700900000",
        "flow": "voicemail",
        "direction": "inbound",
        "status": "completed",
        "events": [
            {"status": "completed", "timestamp": "2026-10-02T08:00:09.000Z", "uuid": "leg-1", "duration": "9"},
            {"status": "started", "timestamp": "2026-10-02T08:00:00.000Z", "uuid": "leg-1"},
        ],
        "recordings": [],
        "dtmf": [],
    }
    store.write("calls/CON-old/call.json", json.dumps(old).encode())
    add_call(store, 1, DAY)
    assert [s.conversation_uuid for s in list_calls(store, CallFilter()).calls] == ["CON-00000001"]

    from shared.flows.calls import reindex_calls

    assert reindex_calls(store, DAY + 60) == 2
    listed = list_calls(store, CallFilter()).calls
    assert [s.conversation_uuid for s in listed] == ["CON-00000001", "CON-old"]
    assert listed[1].created_at == "2026-10-02T08:00:00.000Z" and listed[1].duration == 9.0
    assert reindex_calls(store, DAY + 120) == 2
    assert len(store.list("index/calls/")) == 2
