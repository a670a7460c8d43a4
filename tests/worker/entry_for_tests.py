"""The worker processes of the tests: `python -m dramatiq tests.worker.entry_for_tests`.
The test jobs are registered before `app.worker.entry` makes one actor per job."""

import tests.worker.jobs_for_tests  # noqa: F401
from app.worker.entry import broker  # noqa: E402, F401
