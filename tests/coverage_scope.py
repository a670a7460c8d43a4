"""Where `make test` measures coverage (pytest-cov): every test, but of the database tests only the
SQLite half. The PostgreSQL half runs the same application code again (a few dialect branches
aside), and the tracer costs about 40 % CPU in the pytest process on Python 3.11: tracing one half
keeps `make test` within ~15 % of its time without coverage. Loaded by `-p tests.coverage_scope`
(pyproject.toml); without --cov it does nothing."""

from __future__ import annotations

from collections.abc import Iterator

import coverage
import pytest


def _untraced(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("backend") == "postgresql"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    tracer = coverage.Coverage.current() if _untraced(item) else None
    if tracer is not None:
        tracer.stop()
    try:
        yield
    finally:
        if tracer is not None:
            tracer.start()
