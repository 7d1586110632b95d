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
    #: False for opt-in (convention) rules: ``check(..., enable=[code or name])`` turns them on
    default_enabled: bool = True


def _r(
    code: str,
    name: str,
    severity: str,
    summary: str,
    why: str,
    recipe: str,
    default_enabled: bool = True,
) -> MigrationRule:
    return MigrationRule(
        code, name, Severity.parse(severity), summary, why, recipe, default_enabled
    )


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
    _r(
        "MIG018",
        "blocking-lock",
        "warning",
        "A statement holds a lock that blocks writes (or reads) on an existing table for "
        "longer than an instant: CLUSTER, VACUUM FULL, REFRESH MATERIALIZED VIEW, TRUNCATE, "
        "DROP VIEW, LOCK TABLE, ATTACH PARTITION and the like.",
        "Every query on the table waits behind the lock for as long as it is held (the "
        "finding's metadata names the lock, how long it is held and what it blocks).",
        "Run it in a maintenance window, or use the non-blocking form: pg_repack for CLUSTER "
        "and VACUUM FULL, REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index), "
        "DELETE in batches instead of TRUNCATE, a weaker LOCK mode or none.",
    ),
    _r(
        "MIG019",
        "validate-in-same-transaction",
        "warning",
        "A constraint added NOT VALID is validated in the same transaction.",
        "The ADD CONSTRAINT's lock (ACCESS EXCLUSIVE, or SHARE ROW EXCLUSIVE for a foreign "
        "key) is held until the transaction commits, so the VALIDATE scan runs under it: "
        "NOT VALID buys nothing.",
        "COMMIT between ADD CONSTRAINT ... NOT VALID and VALIDATE CONSTRAINT (Alembic: put "
        "the VALIDATE in the next revision or in an autocommit_block()).",
    ),
    _r(
        "MIG020",
        "require-concurrent-reindex",
        "warning",
        "REINDEX without CONCURRENTLY.",
        "A plain REINDEX locks out writes to the table and every query that would use the "
        "index being rebuilt (ACCESS EXCLUSIVE on the index) for the whole build.",
        "REINDEX ... CONCURRENTLY (PostgreSQL 12+), outside a transaction.",
    ),
    _r(
        "MIG021",
        "require-concurrent-partition-detach",
        "warning",
        "DETACH PARTITION without CONCURRENTLY.",
        "A plain DETACH PARTITION takes ACCESS EXCLUSIVE on the partitioned table: every "
        "query on every partition waits.",
        "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), outside a "
        "transaction; if it is interrupted, finish it with DETACH PARTITION ... FINALIZE.",
    ),
    _r(
        "MIG022",
        "prefer-repack",
        "warning",
        "CLUSTER or VACUUM FULL where REPACK CONCURRENTLY exists (PostgreSQL 19+).",
        "CLUSTER and VACUUM FULL rewrite the table under ACCESS EXCLUSIVE: nothing can read or "
        "write it until the rewrite ends.",
        "REPACK (CONCURRENTLY) table (PostgreSQL 19+), or the pg_repack extension.",
    ),
    _r(
        "MIG023",
        "require-statement-timeout",
        "warning",
        "A slow or locking statement with no statement_timeout set earlier (opt-in).",
        "Without statement_timeout a scan or rewrite that takes longer than planned keeps "
        "its lock until someone cancels it.",
        "SET statement_timeout = '5s'; at the top of the migration (raise it, or SET it to 0, "
        "around statements meant to run long such as CREATE INDEX CONCURRENTLY).",
        default_enabled=False,
    ),
    _r(
        "MIG024",
        "ban-alter-domain-with-add-constraint",
        "warning",
        "ALTER DOMAIN ... ADD CONSTRAINT.",
        "Adding a constraint to a domain checks every column of every table that uses the "
        "domain, each under lock; NOT VALID + VALIDATE helps, but the columns are hard to see.",
        "Put the CHECK on the tables' columns instead (NOT VALID, then VALIDATE).",
    ),
    _r(
        "MIG025",
        "ban-create-domain-with-constraint",
        "warning",
        "CREATE DOMAIN with a CHECK or NOT NULL constraint.",
        "Changing a domain's constraint later scans every table that uses it under lock, and "
        "a domain NOT NULL is not enforced everywhere (outer joins, composite values).",
        "Use a plain domain (or the base type) and CHECK constraints on the columns.",
    ),
    _r(
        "MIG026",
        "ban-drop-database",
        "error",
        "DROP DATABASE in a migration.",
        "Every table and row of the database is deleted; there is no rollback.",
        "Drop databases by hand, never from a migration.",
    ),
    _r(
        "MIG027",
        "ban-truncate-cascade",
        "error",
        "TRUNCATE ... CASCADE.",
        "CASCADE also empties every table with a foreign key to the truncated one, and the "
        "tables that reference those, which the statement does not name.",
        "TRUNCATE the tables by name, without CASCADE.",
    ),
    _r(
        "MIG028",
        "ban-drop-not-null",
        "warning",
        "ALTER COLUMN ... DROP NOT NULL.",
        "Code still running may rely on the column never being NULL; once NULLs are written, "
        "the constraint cannot come back without a backfill.",
        "Deploy code that handles NULL first; suppress the finding when that is done.",
    ),
    _r(
        "MIG029",
        "ban-uncommitted-transaction",
        "error",
        "A BEGIN without a matching COMMIT at the end of the migration.",
        "The migration's changes stay uncommitted and its locks held until the session ends, "
        "and then they are rolled back.",
        "End the transaction with COMMIT.",
    ),
    _r(
        "MIG030",
        "transaction-nesting",
        "warning",
        "BEGIN inside a transaction, or COMMIT/ROLLBACK with no transaction of this file open.",
        "PostgreSQL has no nested transactions: a second BEGIN is ignored and the first "
        "COMMIT ends the runner's transaction early, so later statements run outside it.",
        "Leave transaction control to the runner (Alembic, psql -1, Flyway), or use it "
        "consistently and only once.",
    ),
    _r(
        "MIG031",
        "ban-duplicate-column-assignments",
        "error",
        "A column is named twice in one SET list, INSERT column list, CREATE TABLE or view.",
        "PostgreSQL rejects it (multiple assignments to the same column, column specified "
        "more than once), so the migration fails at that statement.",
        "Name each column once.",
    ),
    _r(
        "MIG032",
        "prefer-robust-stmts",
        "warning",
        "A statement outside a transaction that cannot be re-run: CREATE without IF NOT "
        "EXISTS, DROP without IF EXISTS (opt-in).",
        "A migration that fails part way through outside a transaction leaves some "
        "statements applied: running it again fails on the first one.",
        "Add IF [NOT] EXISTS, or run the migration in a transaction.",
        default_enabled=False,
    ),
    _r(
        "MIG033",
        "require-enum-value-ordering",
        "info",
        "ALTER TYPE ... ADD VALUE without BEFORE or AFTER (opt-in).",
        "The new value sorts after every existing one; ORDER BY on the enum follows the "
        "declaration order, which may not be the intended one.",
        "ALTER TYPE ... ADD VALUE 'x' BEFORE 'y' (or AFTER).",
        default_enabled=False,
    ),
    _r(
        "MIG034",
        "prefer-identity",
        "info",
        "A serial column (opt-in).",
        "serial makes a sequence that the table does not fully own (grants, dumps, "
        "ALTER TYPE); identity columns are the SQL standard form.",
        "bigint GENERATED BY DEFAULT AS IDENTITY (or ALWAYS).",
        default_enabled=False,
    ),
    _r(
        "MIG035",
        "prefer-text-field",
        "info",
        "A varchar(n) column (opt-in).",
        "Raising the limit of varchar(n) later is cheap, but lowering it rewrites and a CHECK "
        "(length(col) <= n) is easier to change; text and varchar cost the same.",
        "text, with CHECK (char_length(col) <= n) NOT VALID if a limit is needed.",
        default_enabled=False,
    ),
    _r(
        "MIG036",
        "ban-char-field",
        "info",
        "A char(n) (bpchar) column.",
        "char(n) pads with spaces, compares ignoring them and is no faster than text.",
        "text (or varchar).",
    ),
    _r(
        "MIG037",
        "identifier-too-long",
        "warning",
        "An identifier longer than 63 bytes.",
        "PostgreSQL silently truncates it to 63 bytes: two names that differ only after the "
        "63rd byte collide, and code that uses the full name does not find the object.",
        "Use a name of at most 63 bytes (UTF-8).",
    ),
    _r(
        "MIG038",
        "require-table-schema",
        "info",
        "A table named without a schema (opt-in).",
        "The statement acts on whatever schema comes first in search_path.",
        "Qualify the table: public.t.",
        default_enabled=False,
    ),
    _r(
        "MIG039",
        "prefer-bigint",
        "info",
        "An integer or smallint column that is not a primary key (opt-in).",
        "Counters and foreign keys outgrow 32 bits; widening later rewrites the table.",
        "bigint (8 bytes instead of 4).",
        default_enabled=False,
    ),
    _r(
        "MIG040",
        "adding-exclusion-constraint",
        "warning",
        "ADD CONSTRAINT ... EXCLUDE on an existing table.",
        "Adding an exclusion constraint builds its index and checks every row under ACCESS "
        "EXCLUSIVE; it cannot be added NOT VALID or USING INDEX.",
        "Add it while the table is small or in a maintenance window, or enforce the rule "
        "in the application until then.",
    ),
    _r(
        "MIG041",
        "prefer-jsonb",
        "info",
        "A json column.",
        "json has no equality operator: SELECT DISTINCT and UNION on the table fail, and "
        "every access reparses the text.",
        "jsonb.",
    ),
    _r(
        "MIG042",
        "index-too-many-columns",
        "info",
        "A non-unique index on more than three columns.",
        "Wide non-unique indexes rarely help more than their first columns and cost space "
        "and write time (strong_migrations' rule).",
        "Index the most selective leading columns only.",
    ),
    _r(
        "MIG043",
        "renaming-schema-or-enum-value",
        "warning",
        "A schema or enum value is renamed.",
        "Running code that names the schema, or writes or compares the old value, fails "
        "from the moment the migration commits until new code is deployed.",
        "Add the new value (or schema) alongside, migrate data and code, then remove the old.",
    ),
    _r(
        "MIG044",
        "backfill-in-ddl-transaction",
        "warning",
        "UPDATE or DELETE of a table that the same transaction has altered under a lock.",
        "The ALTER's lock (ACCESS EXCLUSIVE for most) is held until COMMIT, so every row the "
        "backfill touches extends the time nobody can read or write the table.",
        "Commit the schema change first, then backfill in batches outside the migration's "
        "transaction (Alembic: a later revision or an autocommit_block()).",
    ),
]

#: Every migration rule by code.
RULES: dict[str, MigrationRule] = {r.code: r for r in _ALL}
_BY_NAME = {r.name: r for r in _ALL}


def rule_for(key: str) -> MigrationRule | None:
    """The rule with code or name ``key`` (case-insensitive code)."""
    return RULES.get(key.upper()) or _BY_NAME.get(key)
