"""`python -m services.referral serve | migrate | issue-agency-credential --district D --agency A --name N |
list-agency-credentials --district D | revoke-agency-credential --district D --id ID`.

The credential commands are the district administrator's command line (the portal does the same): they act as
the district administrator named by `--by` against the service's database.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from platform_runtime.auth import Principal, Role
from platform_runtime.db import Database
from platform_runtime.service import Command, command_line
from platform_runtime.tenancy import acting_as
from services.referral import bootstrap
from services.referral.adapters.orm import APPEND_ONLY_TABLES, metadata
from services.referral.service_layer.credentials import AgencyCredentials
from services.referral.settings import ReferralSettings, load_settings


def _credentials(settings: ReferralSettings) -> AgencyCredentials:
    database = Database.connect(settings.common.database_url, metadata)
    credentials = bootstrap.build_credentials(settings, bootstrap.build_service(settings, database), database)
    if credentials is None:
        raise SystemExit("AGENCY_TOKEN_PRIVATE_KEY is not set: this deployment has no agency API")
    return credentials


def _administrator(args: argparse.Namespace) -> Principal:
    district = args.district
    if len(district) != 6 or not district.isdigit():
        raise SystemExit("--district is a six-digit division code (e.g. 110111)")
    by = args.by or f"command-line:{getpass.getuser()}"
    return Principal(by, by, Role.DISTRICT_ADMIN, tenant=district + "000", district=district)


def issue(args: argparse.Namespace, settings: ReferralSettings) -> int:
    with acting_as(_administrator(args)):
        issued = _credentials(settings).issue(args.agency, args.name, args.valid_days)
    credential = issued.credential
    print(
        f"credential {credential.credential_id} for {credential.agency_code} ({credential.name}), "
        f"valid until {credential.expires_at.isoformat()}",
        file=sys.stderr,
    )
    print(issued.token)  # alone on stdout, so it can be piped into the agency's secret store
    return 0


def list_credentials(args: argparse.Namespace, settings: ReferralSettings) -> int:
    with acting_as(_administrator(args)):
        for view in _credentials(settings).list():
            state = (
                f"revoked {view.revoked_at.isoformat()}"
                if view.revoked_at
                else f"valid until {view.expires_at.isoformat()}"
            )
            print(f"{view.credential_id}\t{view.agency_code}\t{view.name}\t{state}")
    return 0


def revoke(args: argparse.Namespace, settings: ReferralSettings) -> int:
    with acting_as(_administrator(args)):
        view = _credentials(settings).revoke(args.id)
    print(f"credential {view.credential_id} of {view.agency_code} revoked")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--district", required=True, help="the district's six-digit code")
    parser.add_argument("--by", default="", help="who is acting (recorded); default: command-line:<login>")


def _issue_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--agency", required=True, help="the agency's code in the district's directory")
    parser.add_argument("--name", required=True, help="the system the credential is for")
    parser.add_argument("--valid-days", type=int, default=365)


def _revoke_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--id", required=True, help="the credential's id")


COMMANDS = (
    Command("issue-agency-credential", "issue a credential to an agency's own system", _issue_arguments, issue),
    Command("list-agency-credentials", "list the district's agency credentials", _common, list_credentials),
    Command("revoke-agency-credential", "revoke an agency credential (refused at once)", _revoke_arguments, revoke),
)


def main(argv: list[str] | None = None) -> int:
    return command_line(
        "services.referral",
        load_settings,
        bootstrap.definition,
        argv,
        append_only_tables=APPEND_ONLY_TABLES,
        commands=COMMANDS,
    )


if __name__ == "__main__":
    sys.exit(main())
