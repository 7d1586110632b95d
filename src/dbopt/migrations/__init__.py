"""Migration safety checks: ``check(source)`` finds statements that lock or break a live
database, in SQL text, SQL files, ``alembic upgrade --sql`` output and Alembic revisions.

Rules (``RULES``): MIG001 CREATE INDEX without CONCURRENTLY, MIG002 DROP INDEX
without CONCURRENTLY, MIG003 CONCURRENTLY in a transaction, MIG004 foreign key
without NOT VALID, MIG005 CHECK without NOT VALID, MIG006 SET NOT NULL without
a validated CHECK, MIG007 ADD COLUMN with a volatile default, MIG008 column
type change, MIG009 rename, MIG010 drop column or table, MIG011 no
lock_timeout, MIG012 integer primary key, MIG013 timestamp without time
zone, MIG014 UNIQUE/PRIMARY KEY without USING INDEX, MIG015 NOT NULL column
without default, MIG016 control characters, MIG017 Alembic op calls that
cannot be read statically; MIG018-MIG044 the lock model's blocking statements
and squawk's and strong_migrations' other rules (see ``RULES``; some are
opt-in: ``check(..., enable=[...])``); MIG000 for statements that do not
parse. Every finding carries its statement's lock (``dbopt.migrations.locks``).
Alembic revision files are parsed, never imported or run.
"""

from __future__ import annotations

from dbopt.migrations.api import MigrationReport, check, check_statements
from dbopt.migrations.rules import RULES, MigrationRule
from dbopt.migrations.statements import Statement, split_sql

__all__ = [
    "RULES",
    "MigrationReport",
    "MigrationRule",
    "Statement",
    "check",
    "check_statements",
    "split_sql",
]
