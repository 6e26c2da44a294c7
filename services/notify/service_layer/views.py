"""What the notify use cases return: plain dataclasses, free of SQL and protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notify.domain.templates import Priority


@dataclass(frozen=True)
class NotificationView:
    notification_id: str
    tenant: str
    recipient_role: str
    recipient_user: str
    title: str
    body: str
    priority: Priority
    subject_type: str
    subject_id: str
    created_at: datetime
    read_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
