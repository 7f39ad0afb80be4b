"""The recorder's frame parser against frames from an independent implementation (wsproto's client
framing), cut at any byte, and against bytes no client should send."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol

from shared.core.websocket_frames import (
    CLOSE,
    PING,
    PONG,
    Control,
    FrameError,
    FrameReader,
    close_code,
    server_frame,
)

LIMIT = 64 * 1024


def client() -> FrameProtocol:
    return FrameProtocol(client=True, extensions=[])


def read_all(reader: FrameReader, data: bytes, cuts: list[int] | None = None) -> list[bytes | str | Control]:
    """Feed `data` in pieces cut at `cuts` and take everything out as it becomes whole."""
    found: list[bytes | str | Control] = []
    start = 0
    for end in [*sorted(set(cuts or [])), len(data)]:
        reader.feed(data[start:end])
        start = end
        while (item := reader.next()) is not None:
            found.append(item)
    return found


@dataclass(frozen=True)
class Sent:
    """What a client sends: a message (in fragments) or a ping between them."""

    message: bytes | str
    fragments: int
    pings: tuple[bytes, ...]


def frames_of(sent: list[Sent]) -> tuple[bytes, list[bytes | str | Control]]:
    """The wire bytes of `sent` as wsproto frames them, and what the parser should hand over."""
    proto, wire = client(), bytearray()
    expected: list[bytes | str | Control] = []
    for item in sent:
        message, count = item.message, item.fragments
        step = max(1, -(-len(message) // count))
        pieces = [message[i : i + step] for i in range(0, len(message), step)] or [message[:0]]
        for index, piece in enumerate(pieces):
            wire += proto.send_data(piece, fin=index == len(pieces) - 1)
            if index < len(item.pings) and index < len(pieces) - 1:
                # A control frame between two fragments of one message.
                wire += proto.ping(item.pings[index])
                expected.append(Control(PING, item.pings[index]))
        expected.append(message)
    return bytes(wire), expected


messages = st.one_of(st.binary(max_size=3000), st.text(max_size=300))
sent_items = st.builds(Sent, messages, st.integers(1, 5), st.lists(st.binary(max_size=125), max_size=3).map(tuple))


@settings(max_examples=300, deadline=None)
@given(st.lists(sent_items, max_size=8), st.lists(st.integers(0, 20000), max_size=12))
def test_every_message_comes_out_whole_and_in_order_however_the_bytes_are_cut(
    sent: list[Sent], cuts: list[int]
) -> None:
    wire, expected = frames_of(sent)
    found = read_all(FrameReader(LIMIT), wire, [cut for cut in cuts if cut < len(wire)])
    # Control frames come out where they were sent: a ping between fragments before its message.
    assert found == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=6))
def test_any_bytes_give_messages_or_a_close_code_and_nothing_else(data: bytes, cuts: list[int]) -> None:
    reader = FrameReader(1000)
    try:
        found = read_all(reader, data, [cut for cut in cuts if cut < len(data)])
    except FrameError as err:
        assert err.code in (1002, 1007, 1009)
        return
    assert all(isinstance(item, bytes | str | Control) for item in found)


def test_a_vonage_frame_is_unmasked_exactly() -> None:
    pcm = bytes(range(256)) * 2 + bytes(128)
    (found,) = read_all(FrameReader(LIMIT), bytes(client().send_data(pcm)))
    assert found == pcm


def raw(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04", length: int | None = None) -> bytes:
    """A frame put together by hand: `first` byte, masked payload, any length field."""
    size = len(payload) if length is None else length
    if size < 126:
        head = bytes([first, 0x80 | size])
    elif size < 1 << 16:
        head = bytes([first, 0x80 | 126]) + struct.pack(">H", size)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack(">Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


AUDIO = bytes(client().send_data(b"\x05" * 640))


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x82\x05hello", 1002),  # not masked
        (raw(0x82 | 0x40, b"x"), 1002),  # a reserved bit: no extension is agreed
        (raw(0x83, b"x"), 1002),  # an unknown data opcode
        (raw(0x8B, b""), 1002),  # an unknown control opcode
        (raw(0x80, b"x"), 1002),  # a continuation with no message begun
        (raw(0x02, b"x") + raw(0x82, b"y"), 1002),  # a new message before the first ended
        (raw(0x09, b"x"), 1002),  # a fragmented ping
        (raw(0x89, b"x" * 126), 1002),  # a ping over 125 bytes
        (raw(0x88, b"\x03"), 1002),  # a close of one byte
        (raw(0x88, struct.pack(">H", 1005)), 1002),  # a close code no peer may send
        (raw(0x88, struct.pack(">H", 2000)), 1002),  # an unassigned close code
        (raw(0x88, struct.pack(">H", 1000) + b"\xff"), 1007),  # a close reason that is not UTF-8
        (raw(0x81, b"caf\xc3"), 1007),  # text that is not UTF-8
        (raw(0x01, b"caf\xc3") + raw(0x80, b"\xff"), 1007),  # fragmented text broken across fragments
        (raw(0x82, b"", length=LIMIT + 1)[:14], 1009),  # refused from its header, before its payload
        (raw(0x02, b"x" * 40000) + raw(0x80, b"", length=40000)[:8], 1009),  # fragments past the limit
    ],
)
def test_a_frame_that_breaks_the_rules_fails_with_its_code_after_the_audio_before_it(wire: bytes, code: int) -> None:
    reader = FrameReader(LIMIT)
    reader.feed(AUDIO + wire)
    assert reader.next() == b"\x05" * 640
    with pytest.raises(FrameError) as failed:
        while reader.next() is not None:
            pass
    assert failed.value.code == code


def test_a_64_bit_length_with_its_top_bit_set_is_refused() -> None:
    reader = FrameReader(LIMIT)
    reader.feed(bytes([0x82, 0xFF]) + b"\x80" + bytes(7) + b"mask")
    with pytest.raises(FrameError) as failed:
        reader.next()
    assert failed.value.code == 1002


def test_close_codes_and_pongs_come_out_as_controls() -> None:
    proto = client()
    wire = bytes(proto.pong(b"p") + proto.close(4000, "bye"))
    pong, close = read_all(FrameReader(LIMIT), wire)
    assert pong == Control(PONG, b"p")
    assert isinstance(close, Control) and isinstance(empty := read_all(FrameReader(LIMIT), raw(0x88, b""))[0], Control)
    assert close.opcode == CLOSE and close_code(close.payload) == 4000 and close.payload[2:] == b"bye"
    assert close_code(empty.payload) == 1005


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_server_frames_have_the_shortest_length_field(size: int) -> None:
    frame = server_frame(0x2, b"a" * size)
    head = 2 if size < 126 else 4 if size < 65536 else 10
    assert len(frame) == head + size and frame[0] == 0x82


def test_a_busy_socket_keeps_its_buffer_small() -> None:
    reader, frame = FrameReader(LIMIT), AUDIO
    for _ in range(1000):
        reader.feed(frame * 3 + frame[:100])
        for _ in range(3):
            assert reader.next() == b"\x05" * 640
        reader.feed(frame[100:])
        assert reader.next() == b"\x05" * 640
    assert reader.buffered == 0
