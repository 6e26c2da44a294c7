"""Survey imports and dry runs running behind the portal: the upload returns at once and the browser follows the
job's progress page while a thread streams the file to the registry and keeps the progress messages.

Jobs live in this process's memory (the registry keeps every import and its rows' outcomes: ListSurveyImports,
ListSurveyImportRows). A job's file is kept until its owner imports it for real or the job ages out, so a dry
run can be followed by the import without uploading again. A failure is logged and shown on the job's page.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from minorprot.registry.v1 import survey_pb2

from gateway.clients import BackendError, Backends, Caller
from gateway.errors import TITLES, TRY_AGAIN

log = logging.getLogger(__name__)
KEEP_SECONDS = 3600  # finished jobs (and their files) are forgotten an hour later
PROGRESS_EVERY = 50


@dataclass
class SurveyJob:
    job_id: str
    user_id: str
    file_name: str
    dry_run: bool
    content: bytes = field(repr=False)
    register_possible_duplicates: bool = False
    started: float = field(default_factory=time.monotonic)
    rows_done: int = 0
    rows_total: int = 0
    summary: survey_pb2.SurveyImportSummary | None = None
    error: str = ""
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def percent(self) -> int:
        if self.finished.is_set():
            return 100
        return min(99, round(100 * self.rows_done / self.rows_total)) if self.rows_total else 0


class SurveyJobs:
    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self._jobs: dict[str, SurveyJob] = {}
        self._lock = threading.Lock()

    def start(
        self, caller: Caller, user_id: str, file_name: str, content: bytes, *, dry_run: bool, duplicates: bool = False
    ) -> SurveyJob:
        job = SurveyJob(uuid.uuid4().hex, user_id, file_name, dry_run, content, duplicates)
        with self._lock:
            self._forget_old()
            self._jobs[job.job_id] = job
        threading.Thread(target=self._run, args=(job, caller), name=f"survey-{job.job_id[:8]}", daemon=True).start()
        return job

    def get(self, user_id: str, job_id: str) -> SurveyJob | None:
        """The job, only for the user who started it."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.user_id == user_id else None

    def _run(self, job: SurveyJob, caller: Caller) -> None:
        options = survey_pb2.SurveyImportOptions(
            file_name=job.file_name,
            dry_run=job.dry_run,
            progress_every=PROGRESS_EVERY,
            register_possible_duplicates=job.register_possible_duplicates,
        )

        def progress(reply: survey_pb2.ImportSurveyResponse) -> None:
            job.rows_done, job.rows_total = reply.rows_done, reply.rows_total

        try:
            job.summary = self._backends.import_survey(caller, options, job.content, progress)
        except BackendError as exc:
            log.warning("survey %s of %s failed: %s", "dry run" if job.dry_run else "import", job.job_id, exc)
            # Catalogue keys or a service's text: the job's page shows it in its language (this thread has none).
            job.error = exc.message if exc.code in {"INVALID_ARGUMENT", "FAILED_PRECONDITION"} else TRY_AGAIN
        except Exception:  # a thread's failure would otherwise vanish: log it and show it
            log.exception("survey job %s failed", job.job_id)
            job.error = TITLES[500]
        finally:
            if not job.dry_run:
                job.content = b""  # imported: the file is no longer needed
            job.finished.set()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id in [j.job_id for j in self._jobs.values() if j.finished.is_set() and now - j.started > KEEP_SECONDS]:
            del self._jobs[job_id]
