"""The migration safety rules: codes, names (as squawk and strong_migrations call them), why
each is dangerous, and the safe recipe."""

from __future__ import annotations

from dataclasses import dataclass

from dbopt.findings import Severity

__all__ = ["RULES", "MigrationRule", "rule_for"]


@dataclass(frozen=True)
class MigrationRule:
    """A migration rule; ``recipe`` is the safe way to do what the statement wanted."""

    code: str
    name: str
    severity: Severity
    summary: str
    why: str
    recipe: str


def _r(code: str, name: str, severity: str, summary: str, why: str, recipe: str) -> MigrationRule:
    return MigrationRule(code, name, Severity.parse(severity), summary, why, recipe)


_ALL = [
    _r(
        "MIG000",
        "parse-error",
        "error",
        "A statement could not be parsed as PostgreSQL.",
        "A statement the checker cannot read is not checked, and may not run at all.",
        "Fix the syntax, or suppress MIG000 for statements of another dialect.",
    ),
    _r(
        "MIG001",
        "require-concurrent-index-creation",
        "error",
        "CREATE INDEX without CONCURRENTLY on an existing table.",
        "A plain CREATE INDEX holds a SHARE lock for the whole build: every INSERT, UPDATE "
        "and DELETE on the table waits, for minutes on a large table.",
        "CREATE INDEX CONCURRENTLY, outside a transaction (Alembic: inside "
        "`with op.get_context().autocommit_block():` and `postgresql_concurrently=True`). "
        "If it fails, DROP INDEX CONCURRENTLY the invalid index and retry.",
    ),
    _r(
        "MIG002",
        "require-concurrent-index-deletion",
        "warning",
        "DROP INDEX without CONCURRENTLY.",
        "A plain DROP INDEX takes ACCESS EXCLUSIVE on the table: it waits for every running "
        "query and blocks all new ones, reads included, until it gets the lock.",
        "DROP INDEX CONCURRENTLY, outside a transaction.",
    ),
    _r(
        "MIG003",
        "concurrently-in-transaction",
        "error",
        "CONCURRENTLY inside a transaction block.",
        "CREATE/DROP INDEX CONCURRENTLY and REINDEX CONCURRENTLY cannot run in a transaction: "
        "the migration fails at that statement.",
        "Run it outside the transaction: COMMIT first, or in Alembic wrap the operation in "
        "`with op.get_context().autocommit_block():`.",
    ),
    _r(
        "MIG004",
        "constraint-missing-not-valid",
        "warning",
        "A foreign key is added without NOT VALID.",
        "Adding a validated foreign key scans the whole table while holding SHARE ROW "
        "EXCLUSIVE on it and on the referenced table: writes to both wait for the scan.",
        "ADD CONSTRAINT ... NOT VALID (brief lock, no scan), then in a separate transaction "
        "VALIDATE CONSTRAINT (scans under SHARE UPDATE EXCLUSIVE, writes continue).",
    ),
    _r(
        "MIG005",
        "check-missing-not-valid",
        "warning",
        "A CHECK constraint is added without NOT VALID.",
        "Adding a validated CHECK scans the whole table under ACCESS EXCLUSIVE: nothing can "
        "read or write it until the scan ends.",
        "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a separate "
        "transaction.",
    ),
    _r(
        "MIG006",
        "disallowed-set-not-null",
        "warning",
        "SET NOT NULL without a validated CHECK (col IS NOT NULL) first.",
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, unless a valid CHECK "
        "constraint already proves the column has no NULLs (PostgreSQL 12+).",
        "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c (separate "
        "transaction); SET NOT NULL (no scan now); DROP CONSTRAINT c.",
    ),
    _r(
        "MIG007",
        "adding-field-with-volatile-default",
        "error",
        "ADD COLUMN with a volatile default (or serial, identity, stored generated).",
        "A volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval) must be "
        "computed per row: PostgreSQL rewrites the whole table under ACCESS EXCLUSIVE. "
        "Constant and STABLE defaults such as now() are free since PostgreSQL 11.",
        "Add the column without the default (or with a constant one), set the default in a "
        "second statement, and backfill existing rows in batches.",
    ),
    _r(
        "MIG008",
        "changing-column-type",
        "error",
        "ALTER COLUMN ... TYPE on an existing table.",
        "Most type changes rewrite the table and every index under ACCESS EXCLUSIVE. Only "
        "binary-compatible changes skip it (varchar(n) to varchar(m > n) or text, raising a "
        "numeric's precision at the same scale).",
        "Add a new column of the new type, write both from the application, backfill in "
        "batches, switch reads, then drop the old column.",
    ),
    _r(
        "MIG009",
        "renaming-column-or-table",
        "warning",
        "A column or table is renamed.",
        "Running application code still uses the old name: every query that names it fails "
        "from the moment the migration commits until the new code is deployed.",
        "Expand and contract: add the new column (or a view with the old table name), deploy "
        "code that uses the new name, backfill, then drop the old one later.",
    ),
    _r(
        "MIG010",
        "ban-drop-column-or-table",
        "warning",
        "A column or table is dropped.",
        "Code still running that names the column or table fails at once (an ORM selects "
        "every mapped column), and the data is gone: there is no rollback.",
        "First deploy code that no longer uses it (SQLAlchemy: remove it from the model), "
        "then drop it in a later migration; keep a backup of the data.",
    ),
    _r(
        "MIG011",
        "require-lock-timeout",
        "warning",
        "The migration takes locks on existing tables without setting lock_timeout.",
        "A DDL statement waiting for its lock blocks every query that comes after it on the "
        "table: one long transaction turns a millisecond ALTER into an outage.",
        "SET lock_timeout = '5s'; at the top (Alembic: op.execute, or connect_args in "
        "env.py) and retry the migration when it times out.",
    ),
    _r(
        "MIG012",
        "prefer-bigint-primary-key",
        "warning",
        "A new primary key is integer (or smallint/serial).",
        "A 32-bit key runs out at 2.1 billion rows or sequence values; widening it later "
        "rewrites the table and every referencing one.",
        "Use bigint: `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY` (or bigserial).",
    ),
    _r(
        "MIG013",
        "prefer-timestamptz",
        "warning",
        "A column is timestamp without time zone.",
        "timestamp stores wall-clock time without an offset: values from sessions in other "
        "time zones are silently wrong, and DST makes some times ambiguous.",
        "Use timestamptz (timestamp with time zone); it costs the same 8 bytes.",
    ),
    _r(
        "MIG014",
        "disallowed-unique-constraint",
        "warning",
        "A UNIQUE or PRIMARY KEY constraint is added to an existing table without USING INDEX.",
        "Adding it builds the index while holding ACCESS EXCLUSIVE: the table is unreadable "
        "for the whole build.",
        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING INDEX "
        "(or PRIMARY KEY USING INDEX), which only takes a brief lock.",
    ),
    _r(
        "MIG015",
        "adding-required-field",
        "error",
        "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table.",
        "Existing rows would get NULL: the statement fails on any table that has rows.",
        "Add the column with a constant DEFAULT (no rewrite since PostgreSQL 11), or add it "
        "nullable, backfill, and SET NOT NULL with the CHECK recipe (MIG006).",
    ),
    _r(
        "MIG016",
        "control-character",
        "error",
        "The SQL contains a NUL byte or another control character.",
        "PostgreSQL rejects a NUL byte, and tools that read C strings stop at it, so the "
        "statements after it are invisible to a reviewer or checker; other control "
        "characters (and Unicode bidirectional overrides) hide or disguise text.",
        "Remove the character; write it in a string as an escape (E'\\x01', chr(1)) if "
        "the data needs it.",
    ),
    _r(
        "MIG017",
        "not-statically-readable",
        "warning",
        "An Alembic op.* call whose arguments cannot be known without running the file.",
        "check-migrations reads revision files, it never imports or runs them: a call "
        "built from application code, op.get_bind() or the database is not checked.",
        "Write the operation with literal arguments, or check the `alembic upgrade --sql` "
        "output instead.",
    ),
]

#: Every migration rule by code.
RULES: dict[str, MigrationRule] = {r.code: r for r in _ALL}
_BY_NAME = {r.name: r for r in _ALL}


def rule_for(key: str) -> MigrationRule | None:
    """The rule with code or name ``key`` (case-insensitive code)."""
    return RULES.get(key.upper()) or _BY_NAME.get(key)
