"""The SMS port: how notify will reach people outside the app. Interface only; a carrier adapter comes later
(an outside carrier is the one dependency tests may fake)."""

from __future__ import annotations

from typing import Protocol


class SmsUnavailable(Exception):
    """The carrier could not take the message; the in-app notification stands and delivery is retried."""


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> str:
        """Hand one message to the carrier; returns the carrier's message id. Raises SmsUnavailable."""
        ...
