"""strong_migrations' dangerous operations (its README, "Checks"), each as PostgreSQL.

github.com/ankane/strong_migrations (MIT): every operation its README lists
as potentially dangerous, written as the SQL the Rails migration runs on
PostgreSQL, must get the finding named here. The two MySQL/MariaDB-only
options (ALGORITHM=COPY, LOCK=SHARED) have no PostgreSQL syntax; their
PostgreSQL counterpart, an explicit table lock, is checked instead.
"""

from __future__ import annotations

import pytest

from dbopt.migrations import check

# Alembic and Rails run each migration in a transaction
BEGIN = "SET lock_timeout = '5s';\nBEGIN;\n"
END = "\nCOMMIT;"

CASES = [
    ("removing a column", "ALTER TABLE users DROP COLUMN some_column;", "MIG010"),
    ("changing the type of a column", "ALTER TABLE users ALTER COLUMN n TYPE text;", "MIG008"),
    ("renaming a column", "ALTER TABLE users RENAME COLUMN some_column TO new_name;", "MIG009"),
    ("renaming a table", "ALTER TABLE users RENAME TO customers;", "MIG009"),
    (
        "creating a table with the force option",
        "DROP TABLE IF EXISTS users CASCADE; CREATE TABLE users (id bigint PRIMARY KEY);",
        "MIG010",
    ),
    ("adding an auto-incrementing column", "ALTER TABLE users ADD COLUMN n bigserial;", "MIG007"),
    (
        "adding a stored generated column",
        "ALTER TABLE users ADD COLUMN n int GENERATED ALWAYS AS (a + 1) STORED;",
        "MIG007",
    ),
    (
        "adding a foreign key",
        "ALTER TABLE users ADD CONSTRAINT fk_orders FOREIGN KEY (order_id) REFERENCES orders;",
        "MIG004",
    ),
    (
        "adding a check constraint",
        "ALTER TABLE users ADD CONSTRAINT price_check CHECK (price > 0);",
        "MIG005",
    ),
    # strong_migrations cannot read raw SQL; dbopt parses it and applies the same rules
    ("executing SQL directly", "CREATE INDEX users_n ON users (n);", "MIG001"),
    (
        "backfilling data",
        "ALTER TABLE users ADD COLUMN c text; UPDATE users SET c = 'default_value';",
        "MIG044",
    ),
    ("adding an index non-concurrently", "CREATE INDEX users_c ON users (c);", "MIG001"),
    (
        "adding a reference",
        "ALTER TABLE users ADD COLUMN city_id bigint REFERENCES cities;",
        "MIG004",
    ),
    (
        "adding a unique constraint",
        "ALTER TABLE users ADD CONSTRAINT users_email UNIQUE (email);",
        "MIG014",
    ),
    (
        "adding an exclusion constraint",
        "ALTER TABLE meetings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, "
        "during WITH &&);",
        "MIG040",
    ),
    ("adding a json column", "ALTER TABLE users ADD COLUMN properties json;", "MIG041"),
    (
        "adding a column with a volatile default value",
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "MIG007",
    ),
    ("setting NOT NULL on an existing column", "ALTER TABLE users ALTER n SET NOT NULL;", "MIG006"),
    (
        "renaming an enum value",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy';",
        "MIG043",
    ),
    ("renaming a schema", "ALTER SCHEMA app RENAME TO core;", "MIG043"),
    ("using the COPY algorithm (PostgreSQL: a rewrite)", "VACUUM FULL users;", "MIG018"),
    (
        "using shared or exclusive locking (PostgreSQL: LOCK TABLE)",
        "LOCK TABLE users IN SHARE MODE;",
        "MIG018",
    ),
    (
        "adding a column with an expression default value",
        "ALTER TABLE users ADD COLUMN code text DEFAULT md5(random()::text);",
        "MIG007",
    ),
    (
        "keeping non-unique indexes to three columns or less",
        "CREATE INDEX CONCURRENTLY users_abcd ON users (a, b, c, d);",
        "MIG042",
    ),
]


@pytest.mark.parametrize(("operation", "sql", "code"), CASES, ids=[c[0] for c in CASES])
def test_dangerous_operation_is_reported(operation: str, sql: str, code: str) -> None:
    wrapped = sql if "CONCURRENTLY" in sql else BEGIN + sql + END
    found = check(wrapped)
    assert code in found.codes(), (operation, [f.code for f in found])


def test_all_of_the_readme_list_is_covered() -> None:
    assert len(CASES) == 24


@pytest.mark.parametrize(
    "sql",
    [
        # the safe forms strong_migrations recommends are quiet
        "CREATE INDEX CONCURRENTLY users_c ON users (c);",
        "ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (o) REFERENCES o NOT VALID;",
        "ALTER TABLE users ADD COLUMN properties jsonb;",
        "ALTER TABLE users ADD COLUMN c text DEFAULT 'x';",
        "CREATE UNIQUE INDEX CONCURRENTLY users_abcd ON users (a, b, c, d);",
        "ALTER TYPE mood ADD VALUE 'ecstatic';",
        "UPDATE users SET c = 'x' WHERE id BETWEEN 1 AND 10000;",
    ],
)
def test_safe_forms_are_quiet(sql: str) -> None:
    assert [f.code for f in check("SET lock_timeout = '5s';\n" + sql)] == []
