"""Audio models: waveforms in, emotion readings and transcripts out.

This package knows waveforms and nothing about calls, queues or Twilio.
"""
