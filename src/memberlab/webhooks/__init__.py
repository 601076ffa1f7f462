"""Outbound events: an outbox written with the change, delivered after commit, signed."""
