"""Computing a run's lines: for every beneficiary of the district, chunk by chunk, what is due this month (and,
for children whose facts or the policy changed since the previous run, in the months it looks back on) minus
what earlier lines already hold, each line with its explanation and its ledger entry. Each chunk is one
transaction that also moves the run's cursor; calling `compute` again carries on from it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, insert, literal, select, text, tuple_, update
from sqlalchemy.orm import Session

from platform_runtime.auth import Principal
from platform_runtime.errors import Conflict
from platform_runtime.tenancy import require_role
from services.benefits.adapters.orm import (
    BeneficiaryRecord,
    DisbursementLineRecord,
    DisbursementRunRecord,
    EntitlementRecord,
    PolicyVersionRecord,
)
from services.benefits.adapters.policies import load_policies
from services.benefits.domain.policy import Grant, Line, PolicyVersion, add_months, due_lines, month_lines, policy_for
from services.benefits.service_layer import ledger
from services.benefits.service_layer.run_state import (
    COMPUTED,
    DRAFT,
    RUN_ROLES,
    RunSteps,
    RunView,
    makers,
)


class ComputingLines(RunSteps):
    def compute(self, run_id: str, max_chunks: int = 0) -> RunView:
        """Compute every beneficiary's lines, chunk by chunk; calling it again resumes where it stopped.
        With `max_chunks` it returns after that many (the portal shows progress and calls again)."""
        caller = require_role(*RUN_ROLES)
        chunks = 0
        while self._compute_chunk(caller, run_id):
            chunks += 1
            if chunks == max_chunks:
                break
        return self.run(run_id)

    def _compute_chunk(self, caller: Principal, run_id: str) -> bool:
        with self._uow(caller) as uow:
            session = uow.session
            run = self._locked(uow, run_id)
            if run.status != DRAFT:
                return False
            if caller.user_id not in makers(run):
                run.computed_by = ",".join(filter(None, [run.computed_by, caller.user_id]))
            policies = load_policies(session, run.tenant_id)
            current = policy_for(run.period, policies)
            if current is None:
                raise Conflict(f"no policy of the district is in effect on {run.period}")
            if not run.step_cursor:
                run.total = (
                    session.scalar(
                        select(func.count()).select_from(BeneficiaryRecord).where(*_in_district(run.tenant_id))
                    )
                    or 0
                )
            town, _, child = run.step_cursor.partition(":")
            chunk = session.execute(
                select(
                    BeneficiaryRecord.tenant_id,
                    BeneficiaryRecord.child_id,
                    BeneficiaryRecord.birth_date,
                    BeneficiaryRecord.facts_changed_at,
                    BeneficiaryRecord.account_ref,
                )
                .where(
                    *_in_district(run.tenant_id),
                    tuple_(BeneficiaryRecord.tenant_id, BeneficiaryRecord.child_id)
                    > tuple_(literal(town), literal(child)),
                )
                .order_by(BeneficiaryRecord.tenant_id, BeneficiaryRecord.child_id)
                .limit(self._chunk)
            ).all()
            if not chunk:
                self._freeze_policies(session, run, policies)
                self._move(uow, run, COMPUTED, caller)
                self._crash("compute:done")
                uow.commit()
                return False
            rows = self._lines_for(session, run, policies, current, chunk, (town, child))
            if rows:
                bulk_insert(session, DisbursementLineRecord.__table__, rows)
                ledger.entries_for_lines(session, run, run.line_count, self._now())
                run.line_count += len(rows)
                run.total_fen += sum(row["amount_fen"] for row in rows)
            run.done += len(chunk)
            run.step_cursor = f"{chunk[-1].tenant_id}:{chunk[-1].child_id}"
            run.updated_at = self._now()
            self._crash(f"compute:{run.done}")
            uow.commit()
            return True

    def _lines_for(
        self,
        session: Session,
        run: DisbursementRunRecord,
        policies: Sequence[PolicyVersion],
        current: PolicyVersion,
        chunk: Sequence[Any],
        after: tuple[str, str],
    ) -> list[dict[str, Any]]:
        """New lines for a chunk of children: what is due minus what earlier lines already hold."""
        grants: dict[str, list[Grant]] = defaultdict(list)
        for entitlement in session.execute(
            select(
                EntitlementRecord.child_id,
                EntitlementRecord.benefit_code,
                EntitlementRecord.starts_on,
                EntitlementRecord.ends_on,
            ).where(  # the chunk's range of (town, child): one index range scan, not a list of ids
                func.substr(EntitlementRecord.tenant_id, 1, 6) == run.tenant_id,
                tuple_(EntitlementRecord.tenant_id, EntitlementRecord.child_id)
                > tuple_(literal(after[0]), literal(after[1])),
                tuple_(EntitlementRecord.tenant_id, EntitlementRecord.child_id)
                <= tuple_(literal(chunk[-1].tenant_id), literal(chunk[-1].child_id)),
            )
        ):
            grants[entitlement.child_id].append(
                Grant(entitlement.benefit_code, entitlement.starts_on, entitlement.ends_on)
            )
        # Only children whose facts (or the policy) changed since the previous run look back for arrears.
        since = self._previous_run_started(session, run)
        if since is not None and any(policy_created > since for policy_created in self._policy_times(session, run)):
            since = None
        looking_back = {child.child_id for child in chunk if since is None or child.facts_changed_at >= since}
        # Earlier months are read only for children who look back; the others only for the run's month.
        window_start = add_months(run.period, -current.arrears_months) if looking_back else run.period
        held: dict[tuple[date, str, str], tuple[int, int]] = {
            (row.service_month, row.child_id, row.benefit_code): (int(row.amount), int(row.correction))
            for row in session.execute(
                select(
                    DisbursementLineRecord.service_month,
                    DisbursementLineRecord.child_id,
                    DisbursementLineRecord.benefit_code,
                    func.sum(DisbursementLineRecord.amount_fen).label("amount"),
                    func.max(DisbursementLineRecord.correction).label("correction"),
                )
                .where(
                    DisbursementLineRecord.tenant_id == run.tenant_id,
                    # the chunk's range of (town, child) on ix_disbursement_lines_child, as for entitlements
                    tuple_(DisbursementLineRecord.town, DisbursementLineRecord.child_id)
                    > tuple_(literal(after[0]), literal(after[1])),
                    tuple_(DisbursementLineRecord.town, DisbursementLineRecord.child_id)
                    <= tuple_(literal(chunk[-1].tenant_id), literal(chunk[-1].child_id)),
                    DisbursementLineRecord.service_month >= window_start,
                    DisbursementLineRecord.service_month <= run.period,
                )
                .group_by(
                    DisbursementLineRecord.service_month,
                    DisbursementLineRecord.child_id,
                    DisbursementLineRecord.benefit_code,
                )
            )
        }
        by_child: dict[str, list[tuple[date, str, str]]] = defaultdict(list)
        for key in held:
            by_child[key[1]].append(key)
        by_month: dict[date, PolicyVersion | None] = {}

        def policy_of(month: date) -> PolicyVersion | None:
            if month not in by_month:
                by_month[month] = policy_for(month, policies)
            return by_month[month]

        rows: list[dict[str, Any]] = []
        for child in chunk:
            look_back = child.child_id in looking_back
            held_grants = grants.get(child.child_id, [])
            if look_back:
                due = due_lines(policies, child.birth_date, held_grants, run.period)
            else:
                due = month_lines(current, child.birth_date, held_grants, run.period) if held_grants else []
            due_keys = set()
            for line in due:
                key = (line.service_month, child.child_id, line.benefit_code)
                due_keys.add(key)
                amount, correction = held.get(key, (0, -1))
                if amount != line.amount_fen:
                    rows.append(self._line_row(run, policy_of, child, line, amount, correction))
            for key in by_child.get(child.child_id, []):
                month = key[0]
                if key in due_keys or (not look_back and month != run.period):
                    continue
                amount, correction = held[key]
                if amount:  # no longer due (ended or corrected back): the difference is recovered
                    gone = Line(key[2], month, 0, 0, 0, f"{key[2]}: no longer due")
                    rows.append(self._line_row(run, policy_of, child, gone, amount, correction))
        for offset, row in enumerate(rows):
            row["seq"] = seq = run.line_count + offset + 1
            # unique across every run: district, month, the line's number in the run (the attempt follows)
            row["reference"] = f"{run.tenant_id}{run.period:%Y%m}{seq:08d}"
        return rows

    def _line_row(
        self,
        run: DisbursementRunRecord,
        policy_of: Callable[[date], PolicyVersion | None],
        child: Any,
        line: Line,
        held: int,
        correction: int,
    ) -> dict[str, Any]:
        policy = policy_of(line.service_month)
        assert policy is not None  # a line is only computed under a policy in effect
        rule = policy.rule_by_code.get(line.benefit_code)
        first = correction < 0
        kind = "adjustment" if not first else ("due" if line.service_month == run.period else "arrears")
        explanation = line.explanation if first else f"{line.explanation}; earlier lines held {held} fen"
        return {
            "tenant_id": run.tenant_id,
            "run_id": run.id,
            "town": child.tenant_id,
            "child_id": child.child_id,
            "benefit_code": line.benefit_code,
            "fund": rule.fund if rule else "",
            "service_month": line.service_month,
            "correction": correction + 1,
            "kind": kind,
            "amount_fen": line.amount_fen - held,
            "policy_version": policy.version,
            "explanation": explanation,
            "payee_account": child.account_ref,
        }

    def _previous_run_started(self, session: Session, run: DisbursementRunRecord) -> datetime | None:
        return session.scalar(
            select(func.max(DisbursementRunRecord.created_at)).where(
                DisbursementRunRecord.tenant_id == run.tenant_id,
                DisbursementRunRecord.period < run.period,
                DisbursementRunRecord.status != DRAFT,
            )
        )

    def _policy_times(self, session: Session, run: DisbursementRunRecord) -> list[datetime]:
        return list(
            session.scalars(
                select(PolicyVersionRecord.created_at).where(PolicyVersionRecord.tenant_id == run.tenant_id)
            )
        )

    def _freeze_policies(self, session: Session, run: DisbursementRunRecord, policies: Sequence[PolicyVersion]) -> None:
        """Versions a run computed with are never edited in place again (a new version is made instead)."""
        session.execute(
            update(PolicyVersionRecord)
            .where(PolicyVersionRecord.tenant_id == run.tenant_id, PolicyVersionRecord.used_at.is_(None))
            .where(PolicyVersionRecord.effective_from <= run.period)
            .values(used_at=self._now())
        )


def bulk_insert(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Many rows in one statement. On PostgreSQL one INSERT ... SELECT FROM unnest(arrays), each column sent as
    one delimited string (adapting a Python list element by element costs more than the insert; COPY would
    not do: it refuses tables under row-level security); elsewhere an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = [table.c[name].name for name in rows[0]]  # KeyError for anything not a column of the table
    values = {f"a{i}": _column_text([row[name] for row in rows]) for i, name in enumerate(columns)}
    arrays = ", ".join(
        # a trailing separator, then the first n elements: one row of '' is [''], not an empty array
        f"CAST((string_to_array(:a{i} || :separator, :separator))[1:{len(rows)}] AS {_ARRAY_TYPES[type(rows[0][name])]})"
        for i, name in enumerate(columns)
    )
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"  # noqa: S608 - names from the table, values bound
    session.execute(text(statement), values | {"separator": _SEPARATOR})


_SEPARATOR = "\x1f"  # ASCII unit separator: never in codes, ids, references or explanations
_ARRAY_TYPES = {str: "text[]", int: "bigint[]", date: "date[]"}


def _column_text(values: list[Any]) -> str:
    """One column's values joined by the separator (checked once: it may appear in no value)."""
    first = values[0]
    texts = values if isinstance(first, str) else [v.isoformat() if isinstance(v, date) else str(v) for v in values]
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) != len(values) - 1:
        raise ValueError("a value holds the unit separator")
    return joined


def _in_district(district: str) -> tuple[Any, ...]:
    return (func.substr(BeneficiaryRecord.tenant_id, 1, 6) == district, BeneficiaryRecord.merged_into.is_(None))
