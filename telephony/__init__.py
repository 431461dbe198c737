"""Telephony: everything that speaks Twilio (webhooks, Media Streams, REST actions)."""
