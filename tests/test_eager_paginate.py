"""``dbopt.eager.paginate``: keyset pages on PostgreSQL, stable under concurrent inserts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from dbopt.eager import cursor_of, paginate
from dbopt.errors import ConfigurationError


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "npg_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    score: Mapped[int]
    created: Mapped[datetime]


START = datetime(2026, 1, 1)
ROWS = 200


@pytest.fixture
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    with pg_engine.begin() as conn:
        # few distinct scores and timestamps: the tie-breaker decides most of the order
        conn.execute(
            insert(Item),
            [
                {"id": i, "score": i % 5, "created": START + timedelta(minutes=i % 7)}
                for i in range(1, ROWS + 1)
            ],
        )
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


def walk(
    engine: Engine, order_by: tuple[object, ...], limit: int, during: object = None
) -> list[int]:
    seen: list[int] = []
    cursor = None
    with Session(engine) as session:
        while True:
            page = session.scalars(
                paginate(select(Item), order_by=order_by, after=cursor, limit=limit)
            ).all()
            if callable(during):
                during()
            if not page:
                return seen
            seen += [item.id for item in page]
            cursor = cursor_of(page[-1], order_by)


@pytest.mark.parametrize(
    "order_by",
    [
        pytest.param((Item.id,), id="primary key"),
        pytest.param((Item.score, Item.id), id="score, id"),
        pytest.param((Item.score.desc(), Item.created, Item.id.desc()), id="mixed directions"),
    ],
)
def test_pages_visit_every_row_once_in_order(engine: Engine, order_by: tuple[object, ...]) -> None:
    with Session(engine) as session:
        expected = list(session.scalars(select(Item.id).order_by(*order_by)))  # type: ignore[arg-type]
    assert walk(engine, order_by, 17) == expected
    assert len(expected) == ROWS


def test_stable_under_concurrent_inserts(engine: Engine) -> None:
    """Rows inserted by another connection while paging: no original row is skipped or repeated.

    OFFSET paging over the same order, with inserts landing before the
    current page, repeats rows; the keyset walk does not.
    """
    order_by = (Item.score, Item.created, Item.id)
    next_id = iter(range(10_000, 20_000))
    inserted: list[int] = []

    def insert_some() -> None:
        def work() -> None:
            with engine.begin() as conn:
                for score in (0, 1):  # sorts before most pages
                    new = next(next_id)
                    conn.execute(insert(Item).values(id=new, score=score, created=START))
                    inserted.append(new)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()

    seen = walk(engine, order_by, 13, during=insert_some)
    originals = [i for i in seen if i <= ROWS]
    assert sorted(originals) == list(range(1, ROWS + 1))  # each exactly once
    assert len(seen) == len(set(seen))
    with Session(engine) as session:
        final = list(session.scalars(select(Item.id).order_by(*order_by)))
    assert [i for i in final if i in set(seen)] == seen  # the order is the table's order

    # the same with OFFSET repeats rows (what the keyset helper avoids)
    repeated: list[int] = []
    with Session(engine) as session:
        session.execute(text("DELETE FROM npg_items WHERE id > :n"), {"n": ROWS})
        session.commit()
        offset = 0
        while True:
            page = session.scalars(
                select(Item.id).order_by(*order_by).offset(offset).limit(13)
            ).all()
            insert_some()
            if not page:
                break
            repeated += page
            offset += 13
    assert len(repeated) != len(set(repeated))


def test_a_sort_without_a_unique_tie_breaker_is_refused(engine: Engine) -> None:
    with pytest.raises(ConfigurationError, match="unique tie-breaker"):
        paginate(select(Item), order_by=(Item.score,), limit=10)
    paginate(select(Item), order_by=(Item.score,), limit=10, unique=True)  # vouched for
    with pytest.raises(ConfigurationError, match="cursor has 1 values for 2"):
        paginate(select(Item), order_by=(Item.score, Item.id), after=(1,), limit=10)
    with pytest.raises(ConfigurationError, match="limit"):
        paginate(select(Item), order_by=(Item.id,), limit=0)


def test_cursor_of_a_core_row(engine: Engine) -> None:
    order_by = (Item.score, Item.id)
    with engine.connect() as conn:
        first = conn.execute(paginate(select(Item.__table__), order_by=order_by, limit=3)).all()
        cursor = cursor_of(first[-1], order_by)
        after = conn.execute(
            paginate(select(Item.__table__), order_by=order_by, after=cursor, limit=3)
        ).all()
    assert cursor == (0, 15)
    assert [r.id for r in first] == [5, 10, 15]
    assert [r.id for r in after] == [20, 25, 30]
