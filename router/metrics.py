"""Prometheus metrics, one registry per app instance (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

FIRST_WORDS_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0)


class Metrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        """Register everything in a fresh registry."""
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open files
        self.frames = Counter("emoroute_stream_frames_total", "Media Stream messages received", registry=r)
        self.vad_chunks = Gauge("emoroute_vad_chunks_scored", "32 ms chunks the VAD has scored since start (only "
                                "rises; over emoroute_vad_runs: how many calls' chunks a run takes on average)",
                                registry=r)
        self.vad_runs = Gauge("emoroute_vad_runs", "VAD model runs since start (only rises)", registry=r)
        self.rejected = Counter("emoroute_stream_rejected_total", "Media Stream messages rejected",
                                ["reason"], registry=r)
        self.calls = Counter("emoroute_calls_total", "Calls whose stream started", registry=r)
        self.live_calls = Gauge("emoroute_live_calls", "Calls streaming now", registry=r)
        self.readings = Counter("emoroute_emotion_readings_total", "Emotion readings", ["kind"], registry=r)
        self.decisions = Counter("emoroute_decisions_total", "Routing decisions", ["queue", "rule"], registry=r)
        self.decision_latency = Histogram(
            "emoroute_decision_latency_seconds",
            "From the frame that closed the first utterance to the routing action",
            buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5), registry=r)
        self.first_words_latency = Histogram(
            "emoroute_first_words_seconds",
            "From the frame that closed a call's first utterance to its transcript, analysed or found empty (in "
            "time for the first decision or late), by the caller's language: en, or other (the multilingual path)",
            ["language"], buckets=FIRST_WORDS_BUCKETS, registry=r)
        self.opt_outs = Counter("emoroute_opt_outs_total", "Callers who refused the analysis", registry=r)
        self.keys = Counter("emoroute_keypad_total", "Keypad webhook results", ["stage", "result"], registry=r)
        self.surveys = Counter("emoroute_survey_total", "Post-call survey results", ["result"], registry=r)
        self.errors = Counter("emoroute_errors_total", "Handled errors", ["where"], registry=r)
        self.transcripts = Counter("emoroute_transcripts_total",
                                   "Transcripts: partial (of an utterance still spoken), partial_decided (a partial "
                                   "stood in for a final that missed the first decision's wait)",
                                   ["kind"], registry=r)
        self.signature_failures = Counter("emoroute_signature_failures_total",
                                          "Requests with a missing or forged X-Twilio-Signature",
                                          ["endpoint"], registry=r)
        self.outbox = Gauge("emoroute_redis_outbox", "Writes waiting for Redis", registry=r)
        self.streams_refused = Counter("emoroute_streams_refused_total",
                                       "Media Streams closed before any audio was used, by reason", ["reason"],
                                       registry=r)
        self.streams_closed = Counter("emoroute_streams_closed_total",
                                      "Accepted Media Streams closed by EmoRoute (limits), by reason", ["reason"],
                                      registry=r)
        self.dropped = Counter("emoroute_work_dropped_total",
                               "Work dropped when an in-memory queue overflowed (never a deciding utterance)",
                               ["what"], registry=r)
        self.asr_stream_length = Gauge("emoroute_asr_stream_length",
                                       "Transcription jobs not yet acknowledged, per urgency (EMOROUTE_ASR_MODE=redis)",
                                       ["urgency"], registry=r)
        self.asr_stream_pending = Gauge("emoroute_asr_stream_pending",
                                        "Transcription jobs a worker holds, per urgency", ["urgency"], registry=r)
        self.sse_clients = Gauge("emoroute_sse_clients", "Live-event (SSE) connections open", registry=r)
        self.login_failures = Counter("emoroute_login_failures_total", "Failed dashboard logins", registry=r)
