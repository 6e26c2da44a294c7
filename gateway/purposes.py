"""Purposes a signed-in user gave for opening a record, remembered in their session.

Every read of a case file or a report's details names its purpose and the service logs each read. Asking
again after every form the user posts on the same record would only teach people to type "x": the session
keeps the last purposes (per kind of record) and each later read sends the remembered one again, so every
read is still logged with it.
"""

from __future__ import annotations

from flask import session

KEPT = 20  # records per kind whose purpose the session remembers


def remembered(kind: str, record_id: str) -> str:
    kept = session.get(f"purposes:{kind}")
    return str(kept.get(record_id, "")) if isinstance(kept, dict) else ""


def remember(kind: str, record_id: str, purpose: str) -> None:
    kept = session.get(f"purposes:{kind}")
    kept = dict(kept) if isinstance(kept, dict) else {}
    kept.pop(record_id, None)
    kept[record_id] = purpose
    session[f"purposes:{kind}"] = dict(list(kept.items())[-KEPT:])
