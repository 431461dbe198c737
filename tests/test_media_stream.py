import base64
import json

import numpy as np
import pytest

from audio_models.g711 import mulaw_encode
from telephony.events import AudioChunk, CallEnded, CallStarted, DtmfPressed, MarkReached, StreamConnected
from telephony.media_stream import (
    CONNECTED_MESSAGE,
    StreamProtocolError,
    TwilioStreamParser,
    media_message,
    start_message,
    stop_message,
)

CALL, STREAM, ACCOUNT = "CA" + "1" * 32, "MZ" + "2" * 32, "AC" + "3" * 32


def started() -> TwilioStreamParser:
    parser = TwilioStreamParser()
    assert isinstance(parser.parse(CONNECTED_MESSAGE), StreamConnected)
    event = parser.parse(start_message(call_sid=CALL, stream_sid=STREAM, account_sid=ACCOUNT,
                                       custom_parameters={"caller": "+15550001111"}))
    assert isinstance(event, CallStarted)
    return parser


def tone_frame(seq: int, freq: float = 440.0) -> str:
    t = np.arange(160) / 8000
    payload = mulaw_encode(0.5 * np.sin(2 * np.pi * freq * t))
    return media_message(stream_sid=STREAM, sequence=seq, chunk=seq - 1, timestamp_ms=(seq - 2) * 20,
                         payload=payload)


def test_start_carries_call_and_custom_parameters():
    parser = TwilioStreamParser()
    event = parser.parse(start_message(call_sid=CALL, stream_sid=STREAM, account_sid=ACCOUNT,
                                       custom_parameters={"caller": "+15550001111"}))
    assert event == CallStarted(CALL, STREAM, ACCOUNT, ("inbound",), {"caller": "+15550001111"})


def test_media_is_decoded_and_resampled_to_16k():
    parser = started()
    event = parser.parse(tone_frame(2))
    assert isinstance(event, AudioChunk)
    assert event.call_sid == CALL and event.sequence == 2
    assert event.samples.dtype == np.float32 and len(event.samples) == 320
    assert 0.2 < np.abs(event.samples[40:]).max() < 0.6


def test_stop_mark_and_dtmf_events():
    parser = started()
    assert parser.parse(json.dumps({"event": "mark", "sequenceNumber": "2", "streamSid": STREAM,
                                    "mark": {"name": "greeting"}})) == MarkReached(CALL, "greeting")
    assert parser.parse(json.dumps({"event": "dtmf", "sequenceNumber": "3", "streamSid": STREAM,
                                    "dtmf": {"track": "inbound_track", "digit": "1"}})) == DtmfPressed(CALL, "1")
    assert parser.parse(stop_message(call_sid=CALL, stream_sid=STREAM, account_sid=ACCOUNT,
                                     sequence=4)) == CallEnded(CALL, "stop")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{not json", "not_json"),
        (json.dumps([1, 2]), "no_event"),
        (json.dumps({"event": "hangup"}), "unknown_event"),
        ("x" * (64 * 1024 + 1), "oversize"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(message, reason):
    parser = started()
    with pytest.raises(StreamProtocolError) as exc:
        parser.parse(message)
    assert exc.value.reason == reason
    assert parser.counters.rejected == {reason: 1}
    assert isinstance(parser.parse(tone_frame(2)), AudioChunk)  # the stream goes on


def test_bad_base64_payload_is_rejected():
    parser = started()
    bad = json.dumps({"event": "media", "sequenceNumber": "2", "streamSid": STREAM,
                      "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "@@not base64@@"}})
    with pytest.raises(StreamProtocolError, match="bad_base64"):
        parser.parse(bad)


def test_duplicate_and_out_of_order_frames_are_dropped():
    parser = started()
    assert parser.parse(tone_frame(5)) is not None
    for seq in (5, 3):
        with pytest.raises(StreamProtocolError) as exc:
            parser.parse(tone_frame(seq))
        assert exc.value.reason == "out_of_order"
    assert parser.parse(tone_frame(6)) is not None
    assert parser.counters.audio_frames == 2


def test_media_before_start_is_rejected():
    parser = TwilioStreamParser()
    with pytest.raises(StreamProtocolError) as exc:
        parser.parse(tone_frame(2))
    assert exc.value.reason == "before_start"


def test_wrong_codec_is_rejected_at_start():
    msg = json.loads(start_message(call_sid=CALL, stream_sid=STREAM, account_sid=ACCOUNT, custom_parameters={}))
    msg["start"]["mediaFormat"] = {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1}
    with pytest.raises(StreamProtocolError) as exc:
        TwilioStreamParser().parse(json.dumps(msg))
    assert exc.value.reason == "wrong_codec"
    assert "8 kHz mono mu-law" in str(exc.value)


def test_frames_of_another_stream_are_rejected():
    parser = started()
    other = tone_frame(2).replace(STREAM, "MZ" + "9" * 32)
    with pytest.raises(StreamProtocolError, match="wrong_stream"):
        parser.parse(other)


def test_outbound_track_is_ignored():
    parser = started()
    msg = json.loads(tone_frame(2))
    msg["media"]["track"] = "outbound"
    assert parser.parse(json.dumps(msg)) is None


def test_payload_of_real_twilio_frame_size_round_trips():
    parser = started()
    raw = bytes(range(160))
    msg = media_message(stream_sid=STREAM, sequence=2, chunk=1, timestamp_ms=0, payload=raw)
    assert base64.b64decode(json.loads(msg)["media"]["payload"]) == raw
    assert isinstance(parser.parse(msg), AudioChunk)


def test_a_rejected_message_is_quoted_at_most_one_line_long():
    parser = TwilioStreamParser()
    huge = json.dumps({"event": "start", "start": {"callSid": CALL, "streamSid": STREAM,
                                                   "mediaFormat": {"encoding": "x" * 20_000}}})
    with pytest.raises(StreamProtocolError) as exc:
        parser.parse(huge)
    assert exc.value.reason == "wrong_codec" and len(str(exc.value)) < 250


def test_media_larger_than_twilio_sends_is_refused():
    parser = TwilioStreamParser(max_payload_bytes=1600)
    parser.parse(start_message(call_sid=CALL, stream_sid=STREAM, account_sid=ACCOUNT, custom_parameters={}))
    big = media_message(stream_sid=STREAM, sequence=2, chunk=1, timestamp_ms=0, payload=b"\xff" * 8000)
    with pytest.raises(StreamProtocolError, match="oversize_payload"):
        parser.parse(big)


def test_media_lost_in_transit_is_counted_from_twilios_timestamps():
    parser = started()
    t = np.arange(160) / 8000
    payload = mulaw_encode(0.5 * np.sin(2 * np.pi * 440 * t))

    def frame(seq: int, chunk: int, ts: int) -> AudioChunk:
        event = parser.parse(media_message(stream_sid=STREAM, sequence=seq, chunk=chunk, timestamp_ms=ts,
                                           payload=payload))
        assert isinstance(event, AudioChunk)
        return event

    assert [frame(2, 1, 0).lost_ms, frame(3, 2, 20).lost_ms, frame(4, 3, 45).lost_ms] == [0, 0, 0]  # jitter
    # chunks 4-13 never arrived: 200 ms of the caller's audio
    assert frame(5, 14, 265).lost_ms == 200
    assert frame(6, 15, 285).lost_ms == 0
    assert parser.counters.lost_ms == 200
