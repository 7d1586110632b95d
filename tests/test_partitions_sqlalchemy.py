"""SQLAlchemy ``create_all`` of partitioned tables, Alembic operations and autogenerate."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from dbopt.partitions import PartitionSpec
from dbopt.partitions.alembic import PartitionFilter, register_operations
from dbopt.partitions.sqlalchemy import partitioned
from test_partitions_support import bounds, connect, exists, make_manager

pytestmark = pytest.mark.postgres
UTC = timezone.utc
NOW = datetime(2024, 5, 10, tzinfo=UTC)


def events_table(metadata: sa.MetaData, schema: str, name: str = "events") -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Index(f"{name}_kind_idx", "kind"),
        schema=schema,
    )


def test_create_all_makes_parent_and_partitions(
    pg_url: str, pg_engine: sa.Engine, schema: str
) -> None:
    metadata = sa.MetaData()
    spec = PartitionSpec(f"{schema}.events", key="created_at", interval="month", premake=2)
    table = partitioned(events_table(metadata, schema), spec, now=NOW, state_schema=schema)
    assert table.info["dbopt_partition_spec"] is spec
    metadata.create_all(pg_engine)
    assert [n for n, _ in bounds(pg_url, schema, "events")] == [
        "events_default",
        "events_p202405",
        "events_p202406",
        "events_p202407",
    ]
    with pg_engine.begin() as conn:
        conn.execute(table.insert().values(created_at=NOW, kind="view"))
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1
    manager = make_manager(pg_url, schema)
    assert manager.plan(spec, now=NOW).converged
    assert manager.check(spec, now=NOW).unowned == ()
    metadata.drop_all(pg_engine)
    assert not exists(pg_url, schema, "events")
    assert not exists(pg_url, schema, "events_p202405")


def test_orm_model_and_a_session_timezone_left_alone(
    pg_url: str, pg_engine: sa.Engine, schema: str
) -> None:
    class Base(DeclarativeBase):
        pass

    class Reading(Base):
        __tablename__ = "readings"
        __table_args__ = {"schema": schema}  # noqa: RUF012 (SQLAlchemy's own convention)
        sensor: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
        day: Mapped[datetime] = mapped_column(sa.Date, primary_key=True)

    spec = PartitionSpec(f"{schema}.readings", key="day", interval="year", premake=1, default=False)
    partitioned(Reading, spec, now=NOW, state_schema=schema)
    with pg_engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL TimeZone = 'Asia/Tokyo'"))
        Base.metadata.create_all(conn)
        assert conn.execute(sa.text("SHOW TimeZone")).scalar() == "Asia/Tokyo"
    assert bounds(pg_url, schema, "readings") == [
        ("readings_p2024", "FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"),
        ("readings_p2025", "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"),
    ]


def test_autogenerate_does_not_want_to_drop_partitions(
    pg_url: str, pg_engine: sa.Engine, schema: str
) -> None:
    metadata = sa.MetaData()
    spec = PartitionSpec(f"{schema}.events", key="created_at", interval="month", premake=1)
    partitioned(events_table(metadata, schema), spec, now=NOW, state_schema=schema)
    metadata.create_all(pg_engine)

    def diffs(**hooks: object) -> list[tuple[object, ...]]:
        with pg_engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "target_metadata": metadata,
                    "include_schemas": True,
                    "include_name": hooks.get("include_name")
                    or (lambda name, type_, parents: type_ != "schema" or name == schema),
                    **{k: v for k, v in hooks.items() if k != "include_name"},
                },
            )
            return [d for d in compare_metadata(context, metadata) if isinstance(d, tuple)]

    unfiltered = diffs()
    dropped = sorted(d[1].name for d in unfiltered if d[0] == "remove_table")
    assert "events_p202405" in dropped
    assert "dbopt_partition_state" in dropped

    with pg_engine.connect() as conn:
        hide = PartitionFilter(conn, state_schema=schema)

    def only_schema(name: str | None, type_: str, parents: object) -> bool:
        if type_ == "schema":
            return name == schema
        return hide.include_name(name, type_, parents)

    assert diffs(include_name=only_schema, include_object=hide.include_object) == []


def test_alembic_operations_online_and_offline(
    pg_url: str, pg_engine: sa.Engine, schema: str
) -> None:
    register_operations()
    register_operations()  # idempotent
    spec = PartitionSpec(f"{schema}.clicks", key="at", interval="day", premake=1, default=False)

    def columns() -> list[sa.Column[object]]:
        return [
            sa.Column("id", sa.BigInteger, nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        ]

    with pg_engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.create_partitioned_table("clicks", *columns(), spec=spec, now=NOW)  # type: ignore[attr-defined]
    assert [n for n, _ in bounds(pg_url, schema, "clicks")] == [
        "clicks_p20240510",
        "clicks_p20240511",
    ]
    later = datetime(2024, 5, 12, tzinfo=UTC)
    with pg_engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.create_partitions(spec, now=later)  # type: ignore[attr-defined]
    assert [n for n, _ in bounds(pg_url, schema, "clicks")][-1] == "clicks_p20240513"
    assert make_manager(pg_url, schema).plan(spec, now=later).converged

    buffer = io.StringIO()
    offline = PartitionSpec(f"{schema}.taps", key="at", interval="month", premake=1)
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buffer}
    )
    Operations(context).create_partitioned_table("taps", *columns(), spec=offline, now=NOW)  # type: ignore[attr-defined]
    script = buffer.getvalue()
    assert "PARTITION BY RANGE" in script
    assert script.count("PARTITION OF") == 3
    with connect(pg_url) as conn:
        for statement in filter(str.strip, script.split(";")):
            conn.execute(statement)  # type: ignore[call-overload]
    assert [n for n, _ in bounds(pg_url, schema, "taps")] == [
        "taps_default",
        "taps_p202405",
        "taps_p202406",
    ]
    adopted = make_manager(pg_url, schema).create(offline, now=NOW)
    assert len(adopted.done) == 3  # ownership recorded after the offline migration
