"""SurveyService (排查摸底): the import of a town's spreadsheet (survey_import.py, its runs survey_runs.py and
results survey_results.py), its history (survey_history.py), and the template and register workbooks
(survey_export.py).
"""

from __future__ import annotations

from services.registry.service_layer.survey_export import SurveyExport
from services.registry.service_layer.survey_history import SurveyHistory
from services.registry.service_layer.survey_import import SurveyImport

__all__ = ["SurveyService"]


class SurveyService(SurveyImport, SurveyHistory, SurveyExport):
    """The gRPC SurveyService's use cases."""
