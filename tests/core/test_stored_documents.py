"""Stored documents written before they were typed are read and written back byte for byte.

The files in data/documents were written by the code before call records, jobs, prompt
transactions and delivery records had types: a claim as created (compact), and a document after
an update (indented, keys sorted); call-reconnected.json is a call whose socket was reconnected,
in three sessions stitched into one recording. Each is read with its type's from_json and written
back with to_json in the same encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.core.call_record import CallRecord, Gap
from shared.core.deliveries import DeliveryRecord, DeliveryState
from shared.core.job_record import Job
from shared.core.payloads import StoredDocument, each
from shared.core.pin_prompt import PromptTransaction
from shared.flows.documents import Document, encode_document

DOCUMENTS = Path(__file__).parents[1] / "data" / "documents"
KINDS: dict[str, type[Document]] = {
    "call": CallRecord,
    "job": Job,
    "prompt": PromptTransaction,
    "delivery": DeliveryRecord,
}


def encode_claim(doc: dict[str, object]) -> bytes:
    """How claim_once writes a new document."""
    return json.dumps(doc).encode()


@pytest.mark.parametrize("path", sorted(DOCUMENTS.glob("*.json")), ids=lambda p: p.name)
def test_a_stored_document_is_read_and_written_back_unchanged(path: Path) -> None:
    data = path.read_bytes()
    kind = KINDS[path.name.split("-", 1)[0]]
    typed = kind.from_json(json.loads(data))
    encode = encode_document if data.startswith(b"{\n") else encode_claim
    assert encode(typed.to_json()) == data


def test_every_kind_of_document_has_samples() -> None:
    assert {path.name.split("-", 1)[0] for path in DOCUMENTS.glob("*.json")} == set(KINDS)
    assert any(p.read_bytes().startswith(b'{"') for p in DOCUMENTS.glob("*.json"))


@dataclass
class _Note(
    StoredDocument,
    fields=("from", "state"),
    later=("gaps", "at"),
    renamed={"from": "from_"},
    read={"state": DeliveryState, "gaps": each(Gap.from_json)},
):
    from_: str
    state: DeliveryState
    gaps: list[Gap] = field(default_factory=list)
    at: float | None = None


def test_a_typed_document_reads_its_known_fields_keeps_the_unknown_and_writes_them_in_order() -> None:
    note = _Note.from_json({"later": {"kept": [1]}, "state": "due", "from": "447700900001"})
    assert note == _Note("447700900001", DeliveryState.DUE, [], None, extra={"later": {"kept": [1]}})

    note.gaps, note.state = [Gap(1.5, 2.0, "s", "e")], DeliveryState.SENDING
    # In the order declared, a later field left out while None or empty, the unknown ones last.
    assert json.dumps(note.to_json()) == json.dumps(
        {
            "from": "447700900001",
            "state": "sending",
            "gaps": [{"at": 1.5, "seconds": 2.0, "start": "s", "end": "e"}],
            "later": {"kept": [1]},
        }
    )
    note.gaps, note.at = [], 12.5
    assert json.dumps(_Note.from_json(note.to_json()).to_json()) == json.dumps(
        {"from": "447700900001", "state": "sending", "at": 12.5, "later": {"kept": [1]}}
    )
    # A field that is always there is required to read the document.
    with pytest.raises(KeyError, match="from"):
        _Note.from_json({"state": "due"})
