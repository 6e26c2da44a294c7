"""The templates of the messages leaving the portal as a town sees them: the district's, or the town's own
(town administrator), and a preview of either with sample data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jinja2 import TemplateError

from platform_runtime.auth import Role
from platform_runtime.db import Database, UnitOfWork, utcnow
from platform_runtime.tenancy import require_role
from services.notify.adapters.orm import TemplateRecord
from services.notify.domain import outbound
from services.notify.domain.recipients import INBOX_ROLES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TownTemplate:
    event_type: str
    locale: str
    subject: str
    text: str
    overridden: bool

    def render(self, facts: Mapping[str, str]) -> outbound.Rendered:
        try:
            return outbound.render(self.subject, self.text, facts)
        except TemplateError:
            # Checked when saved; should a town's template still fail, the district's message goes out.
            log.exception("the town's %s/%s template failed; sending the district's", self.event_type, self.locale)
            subject, text = outbound.DEFAULTS[(self.event_type, self.locale)]
            return outbound.render(subject, text, facts)


def town_template(uow: UnitOfWork, event_type: str, locale: str) -> TownTemplate:
    locale = locale if locale in outbound.LOCALES else outbound.DEFAULT_LOCALE
    own = uow.session.get(TemplateRecord, (uow.tenant, event_type, locale))
    if own is not None:
        return TownTemplate(event_type, locale, own.subject, own.text, True)
    subject, text = outbound.DEFAULTS[(event_type, locale)]
    return TownTemplate(event_type, locale, subject, text, False)


class TemplateService:
    def __init__(self, database: Database, *, now: Callable[[], datetime] = utcnow) -> None:
        self._database = database
        self._now = now

    def list_templates(self) -> list[TownTemplate]:
        caller = require_role(*INBOX_ROLES)
        with self._database.unit_of_work(caller.tenant) as uow:
            return [town_template(uow, event_type, locale) for event_type, locale in outbound.DEFAULTS]

    def set_template(self, event_type: str, locale: str, subject: str, text: str) -> TownTemplate:
        caller = require_role(Role.TOWN_ADMIN)
        outbound.check_event_type(event_type)
        outbound.check_locale(locale)
        with self._database.unit_of_work(caller.tenant) as uow:
            own = uow.session.get(TemplateRecord, (caller.tenant, event_type, locale))
            if not subject.strip() and not text.strip():  # back to the district's
                if own is not None:
                    uow.session.delete(own)
            else:
                outbound.check(event_type, subject, text)
                if own is None:
                    own = TemplateRecord(tenant_id=caller.tenant, event_type=event_type, locale=locale)
                    uow.session.add(own)
                own.subject, own.text, own.updated_by, own.updated_at = subject, text, caller.user_id, self._now()
            uow.commit()
            return town_template(uow, event_type, locale)

    def preview(self, event_type: str, locale: str, subject: str = "", text: str = "") -> outbound.Rendered:
        """The saved template (or a draft) rendered with sample data, as it would leave the portal."""
        caller = require_role(*INBOX_ROLES)
        outbound.check_event_type(event_type)
        outbound.check_locale(locale or outbound.DEFAULT_LOCALE)
        if subject or text:
            return outbound.check(event_type, subject, text)
        with self._database.unit_of_work(caller.tenant) as uow:
            return town_template(uow, event_type, locale).render(outbound.sample_facts(event_type))
