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
from typing import Any

import pytest

from shared.core.call_record import CallRecord, Gap
from shared.core.deliveries import DeliveryRecord, DeliveryState
from shared.core.job_record import Job
from shared.core.payloads import JsonObject, read_fields, write_fields
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
class _Note:
    from_: str
    state: DeliveryState
    gaps: list[Gap] = field(default_factory=list)
    at: float | None = None
    extra: JsonObject = field(default_factory=dict)


def test_a_typed_document_reads_its_known_fields_keeps_the_unknown_and_writes_them_in_order() -> None:
    renamed = {"from": "from_"}
    doc: dict[str, Any] = {"from": "447700900001", "state": "due", "later": {"kept": [1]}}
    values = read_fields(doc, ("from", "state"), ("gaps", "at"), renamed=renamed)
    # An optional field not there is None; its type's from_json converts what needs converting.
    assert values == {
        "from_": "447700900001",
        "state": "due",
        "gaps": None,
        "at": None,
        "extra": {"later": {"kept": [1]}},
    }

    note = _Note(**values | {"state": DeliveryState(doc["state"]), "gaps": [Gap(1.5, 2.0, "s", "e")]})
    note.state = DeliveryState.SENDING
    written = write_fields(note, ("from", "state", "gaps", "at"), optional=("gaps", "at"), renamed=renamed)
    assert json.dumps(written) == json.dumps(
        {
            "from": "447700900001",
            "state": "sending",
            "gaps": [{"at": 1.5, "seconds": 2.0, "start": "s", "end": "e"}],
            "later": {"kept": [1]},
        }
    )
    # Left out while None or empty; written as they are otherwise, null included.
    note.gaps = []
    assert write_fields(note, ("from", "state", "gaps", "at"), optional=("gaps",), renamed=renamed) == {
        "from": "447700900001",
        "state": "sending",
        "at": None,
        "later": {"kept": [1]},
    }
