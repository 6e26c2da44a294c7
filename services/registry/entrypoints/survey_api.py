"""gRPC servicer of the survey: translate protobuf to the use case's arguments and back, nothing else.

The file comes in as a client stream (options first, then chunks of at most 1 MiB, at most 64 MiB in
all): gRPC's default 4 MiB message limit stays untouched, and 100,000 rows (about 5 MB as .xlsx, 15 MB
as .csv) fit with room to spare. Progress and the export go back as server streams.
The runtime's GuardInterceptor authenticates these streaming calls like every unary one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import grpc
from minorprot.registry.v1 import survey_pb2, survey_pb2_grpc

from platform_runtime import errors
from services.registry.adapters.messages import timestamp
from services.registry.service_layer.survey import SurveyService
from services.registry.service_layer.survey_results import (
    ImportOptions,
    ImportProgress,
    ImportStatus,
    ImportView,
    RowOutcome,
    RowResult,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
MAX_FILE_BYTES = 64 * CHUNK_BYTES
SERVICE_NAME = survey_pb2.DESCRIPTOR.services_by_name["SurveyService"].full_name

_OUTCOMES = {
    RowOutcome.ACCEPTED: survey_pb2.SURVEY_ROW_OUTCOME_ACCEPTED,
    RowOutcome.UNCHANGED: survey_pb2.SURVEY_ROW_OUTCOME_UNCHANGED,
    RowOutcome.REJECTED: survey_pb2.SURVEY_ROW_OUTCOME_REJECTED,
    RowOutcome.POSSIBLE_DUPLICATE: survey_pb2.SURVEY_ROW_OUTCOME_POSSIBLE_DUPLICATE,
}
_OUTCOMES_FROM_PROTO = {value: outcome for outcome, value in _OUTCOMES.items()}
_STATUSES = {
    ImportStatus.RUNNING: survey_pb2.SURVEY_IMPORT_STATUS_RUNNING,
    ImportStatus.FINISHED: survey_pb2.SURVEY_IMPORT_STATUS_FINISHED,
    ImportStatus.STOPPED: survey_pb2.SURVEY_IMPORT_STATUS_STOPPED,
}


class SurveyServicer(survey_pb2_grpc.SurveyServiceServicer):
    def __init__(self, service: SurveyService) -> None:
        self._service = service

    def GetSurveyTemplate(
        self, request: survey_pb2.GetSurveyTemplateRequest, context: grpc.ServicerContext
    ) -> survey_pb2.GetSurveyTemplateResponse:
        file_name, content = self._service.template()
        return survey_pb2.GetSurveyTemplateResponse(file_name=file_name, content=content)

    def ImportSurvey(
        self, request: Iterator[survey_pb2.ImportSurveyRequest], context: grpc.ServicerContext
    ) -> Iterator[survey_pb2.ImportSurveyResponse]:
        options, content = _receive_file(request)
        for progress in self._service.import_survey(content, options):
            yield _progress(progress)

    def ListSurveyImports(
        self, request: survey_pb2.ListSurveyImportsRequest, context: grpc.ServicerContext
    ) -> survey_pb2.ListSurveyImportsResponse:
        imports, token = self._service.list_imports(request.page_size, request.page_token)
        return survey_pb2.ListSurveyImportsResponse(imports=[_import(i) for i in imports], next_page_token=token)

    def ListSurveyImportRows(
        self, request: survey_pb2.ListSurveyImportRowsRequest, context: grpc.ServicerContext
    ) -> survey_pb2.ListSurveyImportRowsResponse:
        unknown = [o for o in request.outcomes if o not in _OUTCOMES_FROM_PROTO]
        if unknown:
            raise errors.InvalidInput(f"unknown outcome {unknown[0]}", "outcomes")
        view, rows, token = self._service.import_rows(
            request.import_id,
            [_OUTCOMES_FROM_PROTO[o] for o in request.outcomes],
            request.page_size,
            request.page_token,
        )
        return survey_pb2.ListSurveyImportRowsResponse(
            survey_import=_import(view), rows=[_row(r) for r in rows], next_page_token=token
        )

    def ExportRegister(
        self, request: survey_pb2.ExportRegisterRequest, context: grpc.ServicerContext
    ) -> Iterator[survey_pb2.ExportRegisterResponse]:
        file_name, content = self._service.export_register(
            request.purpose, list(request.categories), list(request.village_codes)
        )
        for offset in range(0, max(len(content), 1), CHUNK_BYTES):
            yield survey_pb2.ExportRegisterResponse(
                file_name=file_name if offset == 0 else "", content=content[offset : offset + CHUNK_BYTES]
            )


def _receive_file(messages: Iterator[survey_pb2.ImportSurveyRequest]) -> tuple[ImportOptions, bytes]:
    first = next(messages, None)
    if first is None or first.WhichOneof("part") != "options":
        raise errors.InvalidInput("the first message carries the options", "options")
    content = bytearray()
    for message in messages:
        if message.WhichOneof("part") != "chunk" or len(message.chunk) > CHUNK_BYTES:
            raise errors.InvalidInput(
                f"every message after the first carries a chunk of at most {CHUNK_BYTES} bytes", "chunk"
            )
        content += message.chunk
        if len(content) > MAX_FILE_BYTES:
            raise errors.InvalidInput(f"the file is larger than {MAX_FILE_BYTES // CHUNK_BYTES} MiB: split it", "file")
    given = first.options
    options = ImportOptions(
        file_name=given.file_name,
        dry_run=given.dry_run,
        progress_every=given.progress_every,
        register_possible_duplicates=given.register_possible_duplicates,
    )
    return options, bytes(content)


def _progress(progress: ImportProgress) -> survey_pb2.ImportSurveyResponse:
    message = survey_pb2.ImportSurveyResponse(
        rows_done=progress.rows_done,
        rows_total=progress.rows_total,
        rows=[_row(row) for row in progress.rows],
    )
    if (summary := progress.summary) is not None:
        message.summary.CopyFrom(
            survey_pb2.SurveyImportSummary(
                import_id=summary.import_id,
                file_sha256=summary.file_sha256,
                dry_run=summary.dry_run,
                rows=summary.rows,
                accepted=summary.accepted,
                unchanged=summary.unchanged,
                rejected=summary.rejected,
                possible_duplicates=summary.possible_duplicates,
            )
        )
    return message


def _row(row: RowResult) -> survey_pb2.SurveyRowResult:
    return survey_pb2.SurveyRowResult(
        row_number=row.row_number,
        outcome=_OUTCOMES[row.outcome],
        problems=[survey_pb2.SurveyRowProblem(column=p.column, field=p.field, reason=p.reason) for p in row.problems],
        child_id=row.child_id,
        note=row.note,
    )


def _import(view: ImportView) -> survey_pb2.SurveyImport:
    message = survey_pb2.SurveyImport(
        import_id=view.import_id,
        file_name=view.file_name,
        file_sha256=view.file_sha256,
        imported_by=view.imported_by,
        started_at=timestamp(view.started_at),
        dry_run=view.dry_run,
        status=_STATUSES[view.status],
        rows=view.rows,
        accepted=view.accepted,
        unchanged=view.unchanged,
        rejected=view.rejected,
        possible_duplicates=view.possible_duplicates,
    )
    if view.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(view.finished_at))
    return message


def register(base: Callable[[grpc.Server], list[str]], service: SurveyService) -> Callable[[grpc.Server], list[str]]:
    """`base` (the registry's other servicers, grpc_api.register) plus SurveyService."""

    def add(server: grpc.Server) -> list[str]:
        names = base(server)
        if SERVICE_NAME in names:  # already wired in by `base`
            return names
        survey_pb2_grpc.add_SurveyServiceServicer_to_server(SurveyServicer(service), server)
        return [*names, SERVICE_NAME]

    return add
