"""Lint, ERD and ``partitions check`` on situations found in public sample databases.

Every schema here is our own DDL reproducing what a public database does; the
docstring of each test names the database that inspired it (Pagila:
github.com/devrimgunduz/pagila, Chinook: github.com/lerocha/chinook-database).
The review of every default finding on the real databases is in docs/lint.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dbopt.lint import LintConfig
from dbopt.partitions import PartitionSpec
from dbopt.schema import erd, from_database
from test_lint_support import fresh_schema, lint_schema, objects, run

pytestmark = pytest.mark.postgres

#: Pagila in miniature: ``last_update`` on every table but the partitioned ``payment``,
#: whose foreign keys and customer index were added partition by partition, and the
#: newest partition got none of them; ``store.manager_staff_id`` has no foreign key.
PAGILA_LIKE = """
CREATE TABLE customer (customer_id serial PRIMARY KEY, active int,
  last_update timestamptz DEFAULT now() NOT NULL);
CREATE TABLE staff (staff_id serial PRIMARY KEY, last_update timestamptz DEFAULT now() NOT NULL);
CREATE TABLE store (store_id serial PRIMARY KEY, manager_staff_id int NOT NULL,
  last_update timestamptz DEFAULT now() NOT NULL);
CREATE TABLE film (film_id serial PRIMARY KEY, rental_duration smallint NOT NULL,
  last_update timestamptz DEFAULT now() NOT NULL);
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
CREATE TABLE payment (payment_id serial, customer_id int NOT NULL, amount numeric(5,2),
  payment_date timestamptz NOT NULL, PRIMARY KEY (payment_date, payment_id))
  PARTITION BY RANGE (payment_date);
CREATE TABLE payment_p2022_01 PARTITION OF payment
  FOR VALUES FROM ('2022-01-01 00:00+00') TO ('2022-02-01 00:00+00');
CREATE TABLE payment_p2022_02 PARTITION OF payment
  FOR VALUES FROM ('2022-02-01 00:00+00') TO ('2022-03-01 00:00+00');
CREATE TABLE payment_p2022_03 PARTITION OF payment
  FOR VALUES FROM ('2022-03-01 00:00+00') TO ('2022-04-01 00:00+00');
ALTER TABLE payment_p2022_01 ADD FOREIGN KEY (customer_id) REFERENCES customer;
ALTER TABLE payment_p2022_02 ADD FOREIGN KEY (customer_id) REFERENCES customer;
CREATE INDEX idx_fk_payment_p2022_01_customer_id ON payment_p2022_01 (customer_id);
CREATE INDEX idx_fk_payment_p2022_02_customer_id ON payment_p2022_02 (customer_id);
INSERT INTO customer (active) SELECT g % 2 FROM generate_series(1, 200) g;
INSERT INTO staff DEFAULT VALUES;
INSERT INTO store (manager_staff_id) VALUES (1);
INSERT INTO film (rental_duration) SELECT 3 + g % 5 FROM generate_series(1, 300) g;
ANALYZE;
"""


def _apply(pg_url: str, schema: str, fix: str | None) -> None:
    """Run a fix's statements, skipping its comment lines (the sample warnings)."""
    sql = "\n".join(line for line in (fix or "").splitlines() if not line.startswith("--"))
    run(pg_url, schema, sql.split("  --")[0] if "\n" not in sql else sql)


def test_audit_columns_follow_the_schema_convention(pg_url: str) -> None:
    """Pagila: every table has last_update except payment; alembic_version is the tool's."""
    with fresh_schema(pg_url, PAGILA_LIKE) as name:
        report = lint_schema(pg_url, name, rules=["LINT013"])
        assert {f.metadata["table"]: f.metadata["missing"] for f in report} == {
            "payment": ["last_update"]
        }
        fix = report[0].fix or ""
        assert "ADD COLUMN last_update timestamp with time zone DEFAULT now() NOT NULL" in fix
        # asked for created_at, every table but the migration tool's lacks it
        asked = lint_schema(
            pg_url, name, rules=["LINT013"], config=LintConfig(audit_columns=("created_at",))
        )
        tables = {f.metadata["table"] for f in asked}
        assert "alembic_version" not in tables
        assert tables == {"customer", "staff", "store", "film", "payment"}
        _apply(pg_url, name, fix)
        assert len(lint_schema(pg_url, name, rules=["LINT013"])) == 0


def test_primary_key_columns_are_not_missing_references(pg_url: str) -> None:
    """Pagila: payment_id is half of payment's own key; manager_staff_id points at staff."""
    with fresh_schema(pg_url, PAGILA_LIKE) as name:
        report = lint_schema(pg_url, name, rules=["LINT003"])
        found = {f.object: f for f in report}
        assert set(found) == {f"{name}.payment.customer_id", f"{name}.store.manager_staff_id"}
        # the foreign key on two of three partitions counts; the finding names the third
        partitioned = found[f"{name}.payment.customer_id"]
        assert partitioned.metadata["partitions"] == ["payment_p2022_03"]
        assert "payment_p2022_03" in partitioned.message
        manager = found[f"{name}.store.manager_staff_id"]
        assert manager.metadata["guessed_target"] == f"{name}.staff"
        for f in report:
            _apply(pg_url, name, f.fix)
        assert len(lint_schema(pg_url, name, rules=["LINT003"])) == 0


def test_enum_like_values_are_a_sample(pg_url: str) -> None:
    """Pagila: customer.active holds 0/1 (a flag); film.rental_duration 3..7 is data."""
    with fresh_schema(pg_url, PAGILA_LIKE) as name:
        report = lint_schema(pg_url, name, rules=["LINT009"])
        assert objects(report, "LINT009") == {f"{name}.customer.active"}
        f = report[0]
        assert f.metadata["from_sample"] is True
        assert (f.fix or "").startswith("-- from a sample")
        assert "active BETWEEN 0 AND 1" in (f.fix or "")


def test_partitioned_table_keys_count_for_the_parent(pg_url: str) -> None:
    """Pagila-style keys declared per partition: the parent has none of its own."""
    ddl = """
    CREATE TABLE ev (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE ev_1 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE ev_2 PARTITION OF ev FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    ALTER TABLE ev_1 ADD PRIMARY KEY (id);
    ALTER TABLE ev_2 ADD PRIMARY KEY (id);
    CREATE TABLE half (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE half_1 PARTITION OF half FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
    CREATE TABLE half_2 PARTITION OF half FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
    ALTER TABLE half_1 ADD PRIMARY KEY (id);
    """
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT002"])
        assert objects(report, "LINT002") == {f"{name}.half"}
        assert report[0].metadata["partitions"] == ["half_2"]
        run(pg_url, name, "ALTER TABLE half_2 ADD PRIMARY KEY (id)")
        assert len(lint_schema(pg_url, name, rules=["LINT002"])) == 0


def test_midnight_timestamps_are_dates(pg_url: str) -> None:
    """Chinook: employee.birth_date and hire_date are timestamps that are always midnight."""
    ddl = """
    CREATE TABLE employee (employee_id int PRIMARY KEY, birth_date timestamp,
      hire_date timestamp, last_login timestamp);
    INSERT INTO employee SELECT g, date '1960-01-01' + g * 97, date '2002-01-01' + g * 13,
      timestamp '2024-01-01 08:00' + g * interval '37 minutes' FROM generate_series(1, 40) g;
    ANALYZE employee;
    """
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name, rules=["LINT010"])
        found = {f.metadata["column"]: f for f in report}
        assert set(found) == {"birth_date", "hire_date", "last_login"}
        assert found["birth_date"].metadata["suggested_type"] == "date"
        assert found["hire_date"].metadata["suggested_type"] == "date"
        assert "TYPE date" in (found["birth_date"].fix or "")
        assert "timestamptz" not in (found["birth_date"].fix or "")
        assert found["last_login"].metadata["suggested_type"] == "timestamptz"
        # the fix asks to check every row first: a row with a time of day is not a date
        check = next(
            line for line in (found["hire_date"].fix or "").splitlines() if "SELECT" in line
        )
        run(pg_url, name, check.lstrip("- ").split("  --")[0])
        _apply(pg_url, name, found["birth_date"].fix)
        _apply(pg_url, name, found["hire_date"].fix)
        after = lint_schema(pg_url, name, rules=["LINT010"])
        assert {f.metadata["column"] for f in after} == {"last_login"}


def test_naming_follows_the_schema(pg_url: str) -> None:
    """Old Chinook quotes PascalCase everywhere: consistent, so not reported by default."""
    pascal = """
    CREATE TABLE "Album" ("AlbumId" int PRIMARY KEY, "Title" text, "ArtistId" int);
    CREATE TABLE "Artist" ("ArtistId" int PRIMARY KEY, "Name" text);
    """
    mostly_snake = """
    CREATE TABLE album (album_id int PRIMARY KEY, title text, artist_id int, sort_key text);
    CREATE TABLE artist (artist_id int PRIMARY KEY, name text, "sortName" text);
    """
    with fresh_schema(pg_url, pascal) as name:
        assert len(lint_schema(pg_url, name, rules=["LINT014"])) == 0
    with fresh_schema(pg_url, mostly_snake) as name:
        report = lint_schema(pg_url, name, rules=["LINT014"])
        assert {f.metadata["name"] for f in report} == {"sortName"}


def test_erd_shows_foreign_keys_that_live_on_partitions(pg_url: str) -> None:
    """Pagila: payment's foreign keys exist only on its partitions."""
    with fresh_schema(pg_url, PAGILA_LIKE) as name:
        doc = from_database(pg_url, schemas=[name])
        payment = doc.table(name, "payment")
        assert payment is not None
        fks = {(tuple(f.columns), f.ref_table): f for f in payment.foreign_keys}
        assert set(fks) == {(("customer_id",), "customer")}
        assert fks[(("customer_id",), "customer")].partitions == [
            "payment_p2022_01",
            "payment_p2022_02",
        ]
        assert next(c for c in payment.columns if c.name == "customer_id").foreign_key
        text = erd(doc)
        assert 'customer ||--o{ payment : "customer_id (on 2 of 3 partitions)"' in text
        dot = erd(doc, "dot")
        assert '"payment":' in dot
        assert "(on 2 of 3 partitions)" in dot


def _payment(pg_url: str, schema: str) -> None:
    run(pg_url, schema, PAGILA_LIKE.replace("ANALYZE;", ""))


def test_partitions_check_reports_what_siblings_have(
    pg_url: str, schema: str, manager: Any
) -> None:
    """Pagila: payment_p2022_03 lacks the foreign key and index the others have."""
    _payment(pg_url, schema)
    spec = PartitionSpec(
        f"{schema}.payment",
        key="payment_date",
        interval="month",
        premake=0,
        start=datetime(2022, 1, 1),
    )
    report = manager.check(spec, now=datetime(2022, 3, 10, tzinfo=UTC))
    lacking = f"{schema}.payment_p2022_03"
    assert report.lacking == (
        (lacking, f"foreign key (customer_id) -> {schema}.customer (customer_id)"),
        (lacking, "index btree (customer_id)"),
    )
    assert not report.ok
    assert "lacking what their siblings have" in report.describe()
    assert report.to_dict()["lacking"][0]["partition"] == lacking
    run(
        pg_url,
        schema,
        "ALTER TABLE payment_p2022_03 ADD FOREIGN KEY (customer_id) REFERENCES customer;"
        "CREATE INDEX ON payment_p2022_03 (customer_id);",
    )
    assert manager.check(spec, now=datetime(2022, 3, 10, tzinfo=UTC)).lacking == ()


#: microblog (github.com/miguelgrinberg/microblog at a975ef6): the schema its nine
#: Alembic migrations create on PostgreSQL, written out here, and a used-looking data set:
#: posts in many languages ('' when undetected), timestamps written as UTC.
MICROBLOG = """
CREATE TABLE "user" (id serial PRIMARY KEY, username varchar(64) NOT NULL,
  email varchar(120) NOT NULL, password_hash varchar(256), about_me varchar(140),
  last_seen timestamp, last_message_read_time timestamp, token varchar(32),
  token_expiration timestamp);
CREATE UNIQUE INDEX ix_user_email ON "user" (email);
CREATE UNIQUE INDEX ix_user_username ON "user" (username);
CREATE UNIQUE INDEX ix_user_token ON "user" (token);
CREATE TABLE post (id serial PRIMARY KEY, body varchar(140) NOT NULL,
  "timestamp" timestamp NOT NULL, user_id int NOT NULL REFERENCES "user" (id),
  language varchar(5));
CREATE INDEX ix_post_timestamp ON post ("timestamp");
CREATE INDEX ix_post_user_id ON post (user_id);
CREATE TABLE followers (follower_id int NOT NULL REFERENCES "user" (id),
  followed_id int NOT NULL REFERENCES "user" (id), PRIMARY KEY (follower_id, followed_id));
CREATE TABLE message (id serial PRIMARY KEY, sender_id int NOT NULL REFERENCES "user" (id),
  recipient_id int NOT NULL REFERENCES "user" (id), body varchar(140) NOT NULL,
  "timestamp" timestamp NOT NULL);
CREATE INDEX ix_message_recipient_id ON message (recipient_id);
CREATE INDEX ix_message_sender_id ON message (sender_id);
CREATE INDEX ix_message_timestamp ON message ("timestamp");
CREATE TABLE notification (id serial PRIMARY KEY, name varchar(128) NOT NULL,
  user_id int NOT NULL REFERENCES "user" (id), "timestamp" float8 NOT NULL,
  payload_json text NOT NULL);
CREATE INDEX ix_notification_name ON notification (name);
CREATE INDEX ix_notification_timestamp ON notification ("timestamp");
CREATE INDEX ix_notification_user_id ON notification (user_id);
CREATE TABLE task (id varchar(36) PRIMARY KEY, name varchar(128) NOT NULL,
  description varchar(128), user_id int NOT NULL REFERENCES "user" (id),
  complete boolean NOT NULL);
CREATE INDEX ix_task_name ON task (name);
CREATE TABLE alembic_version (version_num varchar(32) NOT NULL,
  CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO alembic_version VALUES ('834b1a697901');
INSERT INTO "user" (username, email, password_hash, about_me, last_seen,
  last_message_read_time, token, token_expiration)
SELECT 'user' || g, 'user' || g || '@example.com', md5(g::text),
  CASE WHEN g % 3 = 0 THEN 'about ' || g END,
  timestamp '2024-01-01' + g * interval '17 minutes 13 seconds',
  CASE WHEN g % 2 = 0 THEN timestamp '2024-02-01' + g * interval '7 minutes 3 seconds' END,
  CASE WHEN g % 5 = 0 THEN md5('t' || g) END,
  CASE WHEN g % 5 = 0 THEN timestamp '2024-03-01 10:11:12' + g * interval '1 hour' END
FROM generate_series(1, 300) g;
INSERT INTO post (body, "timestamp", user_id, language)
SELECT 'post ' || g, timestamp '2024-01-01' + g * interval '11 minutes 7 seconds',
  1 + g * 7 % 300,
  (ARRAY['en', 'en', 'en', 'en', 'es', 'es', '', 'fr', 'de', 'it', 'pt', 'ja', 'ru',
         'nl', 'ko', 'zh-cn', 'ca', 'tr', 'pl'])[1 + g * 13 % 19]
FROM generate_series(1, 4000) g;
INSERT INTO followers SELECT DISTINCT 1 + g % 300, 1 + g * 31 % 299
FROM generate_series(1, 3000) g WHERE 1 + g % 300 <> 1 + g * 31 % 299;
INSERT INTO message (sender_id, recipient_id, body, "timestamp")
SELECT 1 + g % 300, 1 + g * 7 % 300, 'hi ' || g,
  timestamp '2024-02-01' + g * interval '13 minutes 7 seconds' FROM generate_series(1, 800) g;
INSERT INTO notification (name, user_id, "timestamp", payload_json)
SELECT CASE WHEN g % 4 = 0 THEN 'task_progress' ELSE 'unread_message_count' END,
  1 + g % 300, 1706745600 + g * 37.25, '{"n": ' || g % 9 || '}'
FROM generate_series(1, 900) g;
INSERT INTO task SELECT md5(g::text)::uuid::text, 'export_posts', 'Exporting posts...',
  1 + g * 11 % 300, g % 10 <> 0 FROM generate_series(1, 60) g;
ANALYZE;
"""


def test_microblog_default_findings(pg_url: str) -> None:
    """microblog, linted with defaults: the findings docs/lint.md reviews, and nothing else.

    Not reported: a CHECK on ``post.language`` (the application writes any code its
    language detection returns), audit columns (``alembic_version`` included),
    ``notification.timestamp`` (a float of epoch seconds, not a timestamp).
    """
    with fresh_schema(pg_url, MICROBLOG) as name:
        report = lint_schema(pg_url, name)
        assert {(f.code, f.object) for f in report} == {
            ("LINT001", f"{name}.followers.followers_followed_id_fkey"),
            ("LINT001", f"{name}.task.task_user_id_fkey"),
            ("LINT010", f'{name}."user".last_seen'),
            ("LINT010", f'{name}."user".last_message_read_time'),
            ("LINT010", f'{name}."user".token_expiration'),
            ("LINT010", f'{name}.post."timestamp"'),
            ("LINT010", f'{name}.message."timestamp"'),
        }
        # the application writes UTC instants (datetime.now(timezone.utc)) and reads
        # them back as UTC: timestamptz, converting from UTC, not date
        for f in report.of("LINT010"):
            assert f.metadata["suggested_type"] == "timestamptz"
            assert "AT TIME ZONE 'UTC'" in (f.fix or "")
        for f in report:
            _apply(pg_url, name, f.fix)
        assert len(lint_schema(pg_url, name)) == 0
