"""ReferralService: the referral use cases, one file each job. Opening referrals from reports and for a plan
action: opening.py; what an agency does with a referral: agency_actions.py; what the referrer (town staff, the
leading group office) does: referrer_actions.py; reading: reading.py; escalating overdue referrals: overdue.py;
the agencies' change feed: agency_feed.py. What a move does (state, time limit, history, events, feed):
moves.py; what they all share: use_cases.py. Each change runs in a unit of work scoped to one town; its events
(domain/events.py) go through the outbox.
"""

from __future__ import annotations

from services.referral.domain.lifecycle import LEADING_GROUP_OFFICE, WORKING
from services.referral.service_layer.agency_actions import AgencyActionUseCases
from services.referral.service_layer.opening import OpeningUseCases
from services.referral.service_layer.overdue import ESCALATIONS_PER_ROUND, OverdueUseCases
from services.referral.service_layer.reading import ReadingUseCases
from services.referral.service_layer.referrer_actions import ReferrerActionUseCases
from services.referral.service_layer.use_cases import AGENCY_ROLES, STAFF_ROLES

__all__ = ["AGENCY_ROLES", "ESCALATIONS_PER_ROUND", "LEADING_GROUP_OFFICE", "STAFF_ROLES", "WORKING", "ReferralService"]


class ReferralService(
    OpeningUseCases,
    AgencyActionUseCases,
    ReferrerActionUseCases,
    ReadingUseCases,
    OverdueUseCases,
):
    """The gRPC ReferralService's use cases, and what the consumers, the agency edge and the escalation worker
    call."""
