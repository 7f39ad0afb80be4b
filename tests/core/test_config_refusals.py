"""A configuration fault stops start-up with a message an operator can act on: a routes file's
fault names its line, and the route's field; a bad setting names its variable."""

from __future__ import annotations

import re

import pytest

from shared.config.routes import parse_routes
from shared.config.settings import Settings
from shared.core.errors import ConfigError

MAILBOX = '"447700900001":\n  flow: voicemail\n  recipients: ["447700900111"]\n'
CONVERSATION = '"447700900002":\n  flow: conversation\n'
REDACTS = MAILBOX + "  redact: [card]\n"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        # Numbers, flows and the file itself.
        ('"447700900001":\n  flow: voicemail\n  recipients: ["12"]\n', 3, "not a phone number"),
        ('"447700900001":\n  flow: fax\n', 2, "flow: must be one of"),
        ('"447700900001":\n  flow: stream\n  colour: blue\n', 3, "unknown field"),
        ('"447700900001":\n  flow: voicemail\n', 1, "needs at least one recipient"),
        ('"447700900001":\n  flow: stream\n"447700900001":\n  flow: stream\n', 3, "listed twice"),
        ('"447700900001":\n  flow: stream\n  max_seconds: 1\n', 3, "max_seconds"),
        ('"447700900001": [\n', 2, "not valid YAML"),
        # A conversation's parties, labels and delivery.
        (CONVERSATION, 1, "needs at least one number to connect"),
        (CONVERSATION + "  connect: [12]\n", 3, "route 447700900002, connect: '12' is not an E.164 number"),
        (CONVERSATION + "  connect: [447700900200]\n  caller_id: Vonage\n", 4, "caller_id"),
        (CONVERSATION + "  connect: [447700900200]\n  format: ogg\n", 4, "format: must be one of mp3, wav"),
        (CONVERSATION + "  connect: [447700900200]\n  result_webhook: crm\n", 4, "https://"),
        (CONVERSATION + "  connect: [447700900200]\n  labels: [A, B, C]\n", 4, "labels: more labels than channels"),
        (CONVERSATION + "  connect: [447700900200]\n  labels: ['']\n", 4, "1 to 40 characters"),
        # redact: a list of kinds.
        (
            MAILBOX + "  redact: [card, ssn]\n",
            4,
            "route 447700900001, redact: must be some of card, digits, phone, email, not 'ssn'$",
        ),
        # What the engine redacts on its own is not a route's choice.
        (MAILBOX + "  redact: pii\n", 4, "redact: must be some of card, digits, phone, email, not 'pii'"),
        (MAILBOX + "  redact: [Card]\n", 4, "redact: must be some of .*, not 'Card'"),
        (MAILBOX + "  redact: 16\n", 4, "redact: must be some of .*, not '16'"),
        (MAILBOX + "  redact:\n", 4, "redact: must be some of .*, not ''"),
        # In a block list, the line of the kind at fault, not of the field.
        (MAILBOX + "  redact:\n    - card\n    - phone\n    - passport\n", 7, "redact: .*not 'passport'"),
        (MAILBOX + "  redact: [[card, phone]]\n", 4, "a kind must be a single value"),
        (MAILBOX + "  redact: {card: true}\n", 4, "a kind must be a single value"),
        # keep_unredacted: a boolean, and only beside redact.
        # Without redact there is nothing unredacted to keep apart.
        (
            MAILBOX + "  keep_unredacted: true\n",
            4,
            "keep_unredacted: only a route that redacts can keep the unredacted words",
        ),
        (MAILBOX + "  redact: []\n  keep_unredacted: true\n", 5, "keep_unredacted: only a route that redacts"),
        (MAILBOX + "  keep_unredacted: true\n  language: en-GB\n", 4, "keep_unredacted: only a route that redacts"),
        (REDACTS + "  keep_unredacted: yes\n", 5, "keep_unredacted: must be true or false, not 'yes'"),
        (REDACTS + "  keep_unredacted: 1\n", 5, "keep_unredacted: must be true or false, not '1'"),
        (REDACTS + "  keep_unredacted:\n", 5, "keep_unredacted: must be true or false, not ''"),
        (REDACTS + "  keep_unredacted: [true]\n", 5, "keep_unredacted must be a single value"),
        # vocabulary: phrases an engine takes.
        (
            MAILBOX + "  vocabulary: [Tapedeck, K8s]\n",
            4,
            "vocabulary: 'K8s' has '8': a phrase takes letters a-z, apostrophes",
        ),
        (MAILBOX + "  vocabulary:\n    - Tapedeck\n    - Müller\n", 6, "vocabulary: 'Müller' has 'ü'"),
        (MAILBOX + '  vocabulary: ["tapedeck.io/docs"]\n', 4, "has '/'"),
        (MAILBOX + '  vocabulary: [""]\n', 4, "a phrase must not be empty"),
        (MAILBOX + "  vocabulary: [" + "a" * 101 + "]\n", 4, "longer than 100 characters"),
        (MAILBOX + "  vocabulary: [[Tapedeck]]\n", 4, "a phrase must be a single value"),
        # Distinct phrases: one given twice counts once.
        (
            MAILBOX + f"  vocabulary: [{', '.join(chr(97 + i // 26) + chr(97 + i % 26) for i in range(501))}]\n",
            4,
            "501 phrases",
        ),
        (
            MAILBOX
            + f"  vocabulary: [{', '.join(chr(97 + i % 26) * 90 + chr(97 + i // 26 % 26) * 9 for i in range(120))}]\n",
            4,
            "vocabulary: 11880 characters in all: at most 10000$",
        ),
    ],
)
def test_a_routes_file_fault_is_refused_naming_its_line_and_field(text: str, line: int, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"^routes\.yaml, line {line}: .*{says}"):
        parse_routes(text, "routes.yaml")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # Each variable's own kind and range.
        ({"STORAGE": "s3"}, "STORAGE"),
        ({"STORAGE": "gcs", "STREAM_TOKEN_SECRET": "x"}, "GCS_BUCKET"),
        ({"STORAGE": "gcs", "GCS_BUCKET": "b"}, "STREAM_TOKEN_SECRET"),
        ({"STREAM_RATE": "44100"}, "STREAM_RATE"),
        ({"STREAM_RATE": "fast"}, "STREAM_RATE"),
        ({"RECORDER_URL": "https://x/socket"}, "RECORDER_URL"),
        ({"PUBLIC_URL": "localhost:8080"}, "PUBLIC_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"UPLOAD_CHUNK_BYTES": "1000"}, "UPLOAD_CHUNK_BYTES"),
        ({"GREETING": "x" * 1501}, "GREETING"),
        ({"CALLBACK_ATTEMPTS": "0"}, "CALLBACK_ATTEMPTS must be from 1 to 20"),
        ({"PROMPT_INPUT_TIMEOUT": "11"}, "PROMPT_INPUT_TIMEOUT must be from 1 to 10 seconds"),
        ({"PROMPT_HANGUP_GRACE": "-1"}, "PROMPT_HANGUP_GRACE must be from 0 to 3600 seconds"),
        ({"SIGNED_URL_TTL": "10"}, "SIGNED_URL_TTL must be from 60 to 604800 seconds"),
        ({"VONAGE_API_HOST": "api.nexmo.com/x"}, "VONAGE_API_HOST must be a host"),
        ({"TASK_QUEUE": "cloud-tasks"}, "TASKS_PROJECT is required when TASK_QUEUE=cloud-tasks"),
        ({"IAP_AUDIENCE": "tapedeck-demo"}, "IAP_AUDIENCE must look like /projects/PROJECT_NUMBER/apps/PROJECT_ID"),
        ({"IAP_AUDIENCE": "/projects/12/apps/tapedeck-demo/extra"}, "IAP_AUDIENCE"),
        ({"IAP_KEYS_URL": "http://keys.example.test/public_key"}, "IAP_KEYS_URL must be https://"),
        ({"IAP_KEYS_URL": "ftp://keys.example.test/"}, "IAP_KEYS_URL"),
        # What Vonage would refuse in an NCCO.
        # An unlisted number would get a conversation with no one to connect: the call ends at once.
        ({"DEFAULT_FLOW": "conversation"}, "DEFAULT_FLOW must be one of stream, voicemail (a conversation needs"),
        ({"GREETING": "x" * 1501}, "GREETING is 1,501 characters, over Vonage's 1,500-character talk limit"),
        ({"GREETING": "<speak>Tom & Jerry</speak>"}, "GREETING starts with <speak> but is not one well-formed"),
        ({"GREETING": "  "}, "GREETING has nothing to say"),
        ({"GREETING": ""}, "GREETING has nothing to say"),
        ({"PUBLIC_URL": "https://fn.example.test/my functions"}, "PUBLIC_URL must be a URL without spaces"),
        ({"PUBLIC_URL": "https://fn.example.test/?v=1"}, "PUBLIC_URL must have no query or fragment"),
        ({"PUBLIC_URL": "https://fn.example.test/#top"}, "PUBLIC_URL must have no query or fragment"),
        ({"RECORDER_URL": "wss://rec.example.test/sóckét"}, "RECORDER_URL must be a URL without spaces"),
        ({"RECORDER_URL": "wss://[::1/socket"}, "RECORDER_URL must be a ws:// or wss:// URL"),
        ({"RECORDER_URL": "wss://rec.example.test:99999/socket"}, "RECORDER_URL must be a ws:// or wss:// URL"),
        ({"STREAM_RATE": "11025"}, "STREAM_RATE must be one of (8000, 16000, 24000)"),
        ({"PROMPT_INPUT_TIMEOUT": "11"}, "PROMPT_INPUT_TIMEOUT must be from 1 to 10 seconds"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        Settings.from_env(env)
