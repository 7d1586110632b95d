"""``check()``: migration safety findings for SQL text, SQL files and Alembic revisions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.migrations.alembic_revision import is_revision, revision_statements
from dbopt.migrations.checker import Checker
from dbopt.migrations.rules import rule_for
from dbopt.migrations.statements import Statement, file_ignores, split_sql
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["MigrationReport", "check", "check_statements"]


@dataclass(eq=False)
class MigrationReport(FindingsReport):
    """Findings of :func:`check` (in file and statement order), suppressed ones, errors.

    A :class:`~dbopt.findings.FindingsReport`; ``errors`` maps a file that
    could not be read or rendered to why. :meth:`failed` and :attr:`ok` use
    ``warning`` as the default threshold, like ``dbopt check-migrations``.
    """

    default_fail_on: ClassVar[Severity] = Severity.WARNING

    findings: list[Finding]
    suppressed: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the shared report keys plus ``files``."""
        return {**super().to_dict(), "files": list(self.files)}


def check_statements(
    statements: Iterable[Statement],
    *,
    in_transaction: bool = False,
    require_lock_timeout: bool = True,
) -> tuple[list[Finding], list[Finding]]:
    """``(findings, inline-suppressed findings)`` of ``statements``, checked as one migration."""
    checker = Checker(in_transaction=in_transaction, require_lock_timeout=require_lock_timeout)
    found = checker.feed_all(statements)
    return found, checker.suppressed


def _files(source: Path) -> list[Path]:
    if source.is_dir():
        found = [p for p in source.rglob("*") if p.suffix in (".sql", ".py") and p.is_file()]
        return sorted(p for p in found if p.name != "env.py" and "__pycache__" not in p.parts)
    return [source]


def _is_path(source: str) -> bool:
    if "\n" in source or ";" in source or len(source) > 4096:
        return False
    return Path(source).exists()


def _drop_file_ignored(findings: list[Finding], text: str) -> tuple[list[Finding], list[Finding]]:
    ignored = file_ignores(text)
    if ignored is None:
        return findings, []
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for f in findings:
        rule = rule_for(f.code)
        name = rule.name if rule else ""
        (dropped if not ignored or f.code in ignored or name in ignored else kept).append(f)
    return kept, dropped


def check(
    source: str | Path | Iterable[str | Path],
    *,
    in_transaction: bool | None = None,
    require_lock_timeout: bool = True,
    suppress: SuppressionsLike = None,
) -> MigrationReport:
    """Check migrations for operations that lock or break a live database.

    ``source`` is SQL text, a ``.sql`` file (plain SQL or ``alembic upgrade
    --sql`` output), an Alembic revision ``.py`` file, a directory of them,
    or a list of any of these; each file is one migration (tables it creates
    are exempt from the locking rules). ``in_transaction`` says whether the
    runner wraps each SQL file in a transaction (default: no for SQL, yes
    for Alembic revisions). Inline ``-- dbopt:ignore CODE`` comments and
    ``suppress`` (codes, names, object globs) silence findings. A file that
    cannot be read or rendered is listed in ``errors``.
    """
    silencer = Suppressions.coerce(suppress)
    sources: list[str | Path] = [source] if isinstance(source, (str, Path)) else list(source)
    report = MigrationReport(findings=[])
    for item in sources:
        if isinstance(item, str) and not _is_path(item):
            _check_text(report, item, None, in_transaction, require_lock_timeout)
            continue
        path = Path(item)
        if not path.exists():
            raise ConfigurationError(f"no such migration file or directory: {path}")
        for file in _files(path):
            report.files.append(str(file))
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                report.errors[str(file)] = str(exc)
                continue
            if file.suffix == ".py":
                if not is_revision(text):
                    continue
                try:
                    statements = revision_statements(file)
                except ConfigurationError as exc:
                    report.errors[str(file)] = str(exc)
                    continue
                found, inline = check_statements(
                    statements, require_lock_timeout=require_lock_timeout
                )
                kept, dropped = _drop_file_ignored(found, text)
                report.findings.extend(kept)
                report.suppressed.extend(inline + dropped)
            else:
                _check_text(report, text, str(file), in_transaction, require_lock_timeout)
    kept, silenced = silencer.split(report.findings)
    report.findings = kept
    report.suppressed.extend(silenced)
    return report


def _check_text(
    report: MigrationReport,
    text: str,
    path: str | None,
    in_transaction: bool | None,
    require_lock_timeout: bool,
) -> None:
    found, inline = check_statements(
        split_sql(text, path),
        in_transaction=bool(in_transaction),
        require_lock_timeout=require_lock_timeout,
    )
    kept, dropped = _drop_file_ignored(found, text)
    report.findings.extend(kept)
    report.suppressed.extend(inline + dropped)
