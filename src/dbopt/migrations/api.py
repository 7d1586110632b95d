"""``check()``: migration safety findings for SQL text, SQL files and Alembic revisions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.migrations.alembic_revision import is_revision, revision_statements
from dbopt.migrations.checker import Checker
from dbopt.migrations.rules import rule_for
from dbopt.migrations.state import enabled_codes
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
    pg_version: int | None = None,
    enable: Iterable[str] = (),
) -> tuple[list[Finding], list[Finding]]:
    """``(findings, inline-suppressed findings)`` of ``statements``, checked as one migration."""
    checker = _run(statements, in_transaction, require_lock_timeout, pg_version, enable)
    return checker.findings, checker.suppressed


def _run(
    statements: Iterable[Statement],
    in_transaction: bool,
    require_lock_timeout: bool,
    pg_version: int | None,
    enable: Iterable[str],
) -> Checker:
    checker = Checker(
        in_transaction=in_transaction,
        require_lock_timeout=require_lock_timeout,
        pg_version=pg_version,
        enable=enable,
    )
    found = checker.feed_all(statements)
    found.extend(checker.finish())
    if checker.statements <= 1:
        # one statement is atomic: running it again after a failure is always possible
        found = [f for f in found if f.code != "MIG032"]
        checker.suppressed = [f for f in checker.suppressed if f.code != "MIG032"]
    checker.findings = found
    return checker


def _not_null_proofs(checker: Checker) -> set[tuple[str, str]]:
    """(table, column) pairs this migration proves NOT NULL with a validated CHECK."""
    proofs = set(checker.proven_not_null)
    for (table, name), column in checker.not_null_checks.items():
        if (table, name) not in checker.pending_checks:
            proofs.add((table, column))
    return proofs


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
    pg_version: int | None = None,
    enable: Iterable[str] = (),
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

    ``pg_version`` is the target server's major version (None: any supported
    one, 13 or later; 19+ turns on MIG022 prefer-repack); ``enable`` turns on
    opt-in rules by code or name (``"all"`` for every one). A ``SET NOT NULL``
    whose ``CHECK (col IS NOT NULL)`` is validated by another migration of
    the same run is not a MIG006 finding (the cross-migration recipe).
    """
    options = _Options(bool(in_transaction), require_lock_timeout, pg_version, tuple(enable))
    enabled_codes(options.enable)  # unknown rule names fail before any file is read
    runs: list[tuple[str, Checker]] = []
    silencer = Suppressions.coerce(suppress)
    sources: list[str | Path] = [source] if isinstance(source, (str, Path)) else list(source)
    report = MigrationReport(findings=[])
    for item in sources:
        if isinstance(item, str) and not _is_path(item):
            runs.append(("<sql>", _check_text(report, item, None, options)))
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
                checker = _run(statements, False, require_lock_timeout, pg_version, options.enable)
                runs.append((str(file), checker))
                kept, dropped = _drop_file_ignored(checker.findings, text)
                report.findings.extend(kept)
                report.suppressed.extend(checker.suppressed + dropped)
            else:
                runs.append((str(file), _check_text(report, text, str(file), options)))
    _cross_migration(report, runs)
    kept, silenced = silencer.split(report.findings)
    report.findings = kept
    report.suppressed.extend(silenced)
    return report


#: a file that says its runner does not wrap it in a transaction (squawk's spelling too)
_NO_TRANSACTION = re.compile(
    r"--\s*(?:dbopt:\s*no-transaction|squawk-disable-assume-in-transaction)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class _Options:
    in_transaction: bool
    require_lock_timeout: bool
    pg_version: int | None
    enable: tuple[str, ...]


def _check_text(report: MigrationReport, text: str, path: str | None, options: _Options) -> Checker:
    checker = _run(
        split_sql(text, path),
        options.in_transaction and not _NO_TRANSACTION.search(text),
        options.require_lock_timeout,
        options.pg_version,
        options.enable,
    )
    kept, dropped = _drop_file_ignored(checker.findings, text)
    report.findings.extend(kept)
    report.suppressed.extend(checker.suppressed + dropped)
    return checker


def _cross_migration(report: MigrationReport, runs: list[tuple[str, Checker]]) -> None:
    """Drop MIG006 where another migration of the run validated CHECK (col IS NOT NULL).

    The recipe spreads over migrations: ADD CONSTRAINT ... NOT VALID and
    VALIDATE in one, SET NOT NULL in the next; the SET NOT NULL then does not
    scan (PostgreSQL 12+).
    """
    if len(runs) < 2 or (runs[0][1].pg_version or 13) < 12:
        return
    proofs = {name: _not_null_proofs(checker) for name, checker in runs}
    kept = []
    for f in report.findings:
        if f.code == "MIG006":
            key = (
                str(f.metadata.get("table", "")).rpartition(".")[2].strip('"'),
                str(f.metadata.get("column")),
            )
            where = f.metadata.get("path") or "<sql>"
            if any(key in p for name, p in proofs.items() if name != where):
                report.suppressed.append(f)
                continue
        kept.append(f)
    report.findings = kept
