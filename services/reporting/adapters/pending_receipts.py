"""The receipts waiting to be handed to notify, on SQLAlchemy (`service_layer.receipt_sending.PendingReceipts`).

The table holds every town's (the worker reads them in one query); each address and receipt number is decrypted
with its own town's binding, so a row moved to another town does not open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from platform_runtime.db import Database
from platform_runtime.pii import FieldCipher
from services.reporting.adapters.orm import PendingReceiptRecord
from services.reporting.adapters.repository import RECEIPT_ADDRESS_FIELD, RECEIPT_NUMBER_FIELD, _aware
from services.reporting.domain.receipt_sending import ReceiptChannel, ReceiptDestination
from services.reporting.service_layer.receipt_sending import PendingReceipt


class SqlPendingReceipts:
    def __init__(self, database: Database, cipher: FieldCipher) -> None:
        self._database = database
        self._cipher = cipher

    def due(self, now: datetime, limit: int) -> list[PendingReceipt]:
        with self._database.platform_session() as session:
            rows = session.scalars(
                select(PendingReceiptRecord)
                .where(PendingReceiptRecord.due_at <= now)
                .order_by(PendingReceiptRecord.due_at)
                .limit(limit)
            ).all()
            return [self._pending(row) for row in rows]

    def _pending(self, row: PendingReceiptRecord) -> PendingReceipt:
        def opened(token: str, field: str) -> str:
            return self._cipher.decrypt(token, tenant=row.tenant_id, field=field)

        return PendingReceipt(
            tenant=row.tenant_id,
            report_id=row.report_id,
            receipt=opened(row.receipt_cipher, RECEIPT_NUMBER_FIELD),
            destination=ReceiptDestination(
                ReceiptChannel(row.channel), opened(row.address_cipher, RECEIPT_ADDRESS_FIELD), row.locale
            ),
            created_at=_aware(row.created_at),
            attempts=row.attempts,
        )

    def taken(self, report_id: str) -> None:
        with self._database.platform_session() as session:
            session.execute(delete(PendingReceiptRecord).where(PendingReceiptRecord.report_id == report_id))
            session.commit()

    def retry(self, report_id: str, due_at: datetime, error: str) -> None:
        with self._database.platform_session() as session:
            session.execute(
                update(PendingReceiptRecord)
                .where(PendingReceiptRecord.report_id == report_id)
                .values(due_at=due_at, attempts=PendingReceiptRecord.attempts + 1, last_error=error[:1000])
            )
            session.commit()

    def backlog(self, now: datetime) -> tuple[int, float]:
        with self._database.platform_session() as session:
            count, oldest = session.execute(select(func.count(), func.min(PendingReceiptRecord.created_at))).one()
        return int(count), (now - _aware(oldest)).total_seconds() if oldest is not None else 0.0
