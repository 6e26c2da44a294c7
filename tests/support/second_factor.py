"""Second-factor codes for tests that sign in: the one helper every sign-in of a test goes through.

A code is accepted once, for a 30-second step later than the last one used, within a step of the server's
clock. So this hands out the current step's code, then the next step's, and when both are spent it waits
for the clock: at most two sign-ins of one account per half minute without waiting.
"""

from __future__ import annotations

import time

from gateway import second_factor

# (account, secret) -> the last step handed out. `account` names the user in one gateway database (its
# URL or address and the username), so tests with their own database never wait for one another.
_last_step: dict[tuple[str, str], int] = {}
# account -> the secret a test enrolled it with on the enrolment page (users the tests make themselves).
_enrolled: dict[str, str] = {}


def fresh_code(secret: str, account: str) -> str:
    key = (account, secret)
    step = max(second_factor.step_at(time.time()), _last_step.get(key, 0) + 1)
    ahead = step - second_factor.step_at(time.time())
    if ahead > second_factor.DRIFT_STEPS:
        time.sleep((step - second_factor.DRIFT_STEPS) * second_factor.STEP_SECONDS - time.time() + 0.05)
    _last_step[key] = step
    return second_factor.hotp(second_factor.key_of(secret), step)


def enrolled(secret: str, account: str) -> str:
    """The first code for a secret shown on the enrolment page; later codes of the account use it too."""
    _enrolled[account] = secret
    return fresh_code(secret, account)


def demo_code(password: str, account: str) -> str:
    """A code of the account: the secret a test enrolled it with, else the demo secret `seed-demo` and
    `enrol-second-factor` give (derived from the password)."""
    return fresh_code(_enrolled.get(account) or second_factor.demo_secret(password), account)
