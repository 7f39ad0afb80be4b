"""RFC 6455 frames as a server reads them from a client: a parser with no I/O.

The recorder takes one 640-byte frame every 20 ms from each of hundreds of calls, so this is its
hottest path: headers are read byte by byte from one buffer, a payload is unmasked in one integer
operation, and an unfragmented message (every frame Vonage sends) is handed over as it was read.

Kept from RFC 6455, as a server must:
- client frames are masked, and the reserved bits are clear (no extension is ever agreed);
- control frames (close, ping, pong) are whole and at most 125 bytes, and may come between the
  fragments of a message; a continuation needs a message begun, a new message needs none;
- text, and a close frame's reason, are UTF-8;
- a close code is one a peer may send;
- a message has a size limit, checked from the header before its payload is awaited.

A broken rule raises `FrameError` with the close code to answer with: 1002, 1007 or 1009.
Everything before the broken frame has been handed over already.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = [
    "CLOSE",
    "CLOSE_INVALID_DATA",
    "CLOSE_NO_STATUS",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "PING",
    "PONG",
    "Control",
    "FrameError",
    "FrameReader",
    "close_code",
    "close_frame",
    "server_frame",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009
# What a close frame with no payload means (RFC 6455 7.1.5); never sent in a frame.
CLOSE_NO_STATUS = 1005
_FIN, _RSV, _OPCODE, _MASKED, _LENGTH = 0x80, 0x70, 0x0F, 0x80, 0x7F
_MAX_CONTROL = 125
# Drop what has been read from the front of the buffer once this much has piled up.
_COMPACT_AT = 64 * 1024


class FrameError(Exception):
    """A frame that breaks RFC 6455: the connection is failed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Control:
    """A close, ping or pong frame, for the socket to answer."""

    opcode: int
    payload: bytes


def close_code(payload: bytes) -> int:
    """The code of a checked close frame's payload."""
    return int.from_bytes(payload[:2], "big") if payload else CLOSE_NO_STATUS


def _valid_close_code(code: int) -> bool:
    # 1004-1006 and 1015 are reserved for endpoints' own use, never sent; 1016-2999 are unassigned.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR with the four mask bytes repeated: one integer operation over the whole payload."""
    size = len(data)
    if not size:
        return b""
    key = (bytes(mask) * ((size + 3) >> 2))[:size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(size, "little")


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with `code` and `reason` (cut to fit 125 bytes); none for CLOSE_NO_STATUS,
    which is only ever answered, never sent."""
    payload = b"" if code == CLOSE_NO_STATUS else code.to_bytes(2, "big") + reason.encode()[:123]
    return server_frame(CLOSE, payload)


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One whole unmasked frame, as a server sends it."""
    size = len(payload)
    if size < 126:
        head = bytes((_FIN | opcode, size))
    elif size < 1 << 16:
        head = bytes((_FIN | opcode, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((_FIN | opcode, 127)) + size.to_bytes(8, "big")
    return head + payload


class FrameReader:
    """Messages and control frames out of the bytes a client sent, in order.

    `feed` what the socket gave; `next` returns a whole message (bytes for binary, str for text),
    a `Control`, or None when more bytes are needed. At most `max_message` bytes of a message are
    held, and the fragments of one message at a time.
    """

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._position = 0
        # The message under way when it came in fragments: its opcode, parts and size so far.
        self._opcode: int | None = None
        self._parts: list[bytes] = []
        self._chars: list[str] = []
        self._size = 0
        self._text = codecs.getincrementaldecoder("utf-8")()

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet handed over."""
        return len(self._buffer) - self._position

    def feed(self, data: bytes) -> None:
        buffer = self._buffer
        if self._position == len(buffer):
            buffer.clear()
            self._position = 0
        elif self._position >= _COMPACT_AT:
            del buffer[: self._position]
            self._position = 0
        buffer += data

    def next(self) -> bytes | str | Control | None:
        """The next message or control frame fed whole, or None. Raises FrameError."""
        while True:
            frame = self._frame()
            if frame is None:
                return None
            first, payload = frame
            opcode = first & _OPCODE
            if opcode >= CLOSE:
                return _control(opcode, payload)
            message = self._message(first & _FIN, opcode, payload)
            if message is not None:
                return message

    def _frame(self) -> tuple[int, bytes] | None:
        """The next whole frame's first byte and unmasked payload, once its header is checked."""
        buffer, start = self._buffer, self._position
        available = len(buffer) - start
        if available < 2:
            return None
        first, second = buffer[start], buffer[start + 1]
        if first & _RSV:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
        if not second & _MASKED:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        size, head = second & _LENGTH, 6
        if size == 126:
            if available < 4:
                return None
            size, head = (buffer[start + 2] << 8) | buffer[start + 3], 8
        elif size == 127:
            if available < 10:
                return None
            size, head = int.from_bytes(buffer[start + 2 : start + 10], "big"), 14
            if size >> 63:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "frame length has its top bit set")
        self._check_header(first, size)
        end = start + head + size
        if end > len(buffer):
            return None
        payload = _unmask(buffer[start + head : end], buffer[start + head - 4 : start + head])
        self._position = end
        return first, payload

    def _check_header(self, first: int, size: int) -> None:
        opcode = first & _OPCODE
        if opcode >= CLOSE:
            if opcode not in (CLOSE, PING, PONG):
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if not first & _FIN:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "fragmented control frame")
            if size > _MAX_CONTROL:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes")
            return
        if opcode not in (CONTINUATION, TEXT, BINARY):
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if opcode == CONTINUATION and self._opcode is None:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a message")
        if opcode != CONTINUATION and self._opcode is not None:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "new message before the last one ended")
        if self._size + size > self.max_message:
            raise FrameError(CLOSE_TOO_BIG, "message too big")

    def _message(self, fin: int, opcode: int, payload: bytes) -> bytes | str | None:
        if fin and opcode == BINARY:
            return payload
        if fin and opcode == TEXT:
            return _text(payload)
        if opcode != CONTINUATION:
            self._opcode, self._size = opcode, 0
            self._text.reset()
        self._size += len(payload)
        if self._opcode == TEXT:
            # Checked as it comes, so a bad message fails at its first bad fragment.
            self._chars.append(_text_part(self._text, payload, bool(fin)))
        else:
            self._parts.append(payload)
        if not fin:
            return None
        whole: bytes | str = "".join(self._chars) if self._opcode == TEXT else b"".join(self._parts)
        self._opcode, self._parts, self._chars, self._size = None, [], [], 0
        return whole


def _text(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError as err:
        raise FrameError(CLOSE_INVALID_DATA, "text is not UTF-8") from err


def _text_part(decoder: codecs.IncrementalDecoder, payload: bytes, final: bool) -> str:
    try:
        return str(decoder.decode(payload, final))
    except UnicodeDecodeError as err:
        raise FrameError(CLOSE_INVALID_DATA, "text is not UTF-8") from err


def _control(opcode: int, payload: bytes) -> Control:
    if opcode == CLOSE:
        if len(payload) == 1:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "close frame of one byte")
        if payload and not _valid_close_code(close_code(payload)):
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"close code {close_code(payload)} may not be sent")
        _text(payload[2:])
    return Control(opcode, payload)
