"""Index advisor rules learned on real schemas (Chinook): prefix search, cities."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from dbopt.advisor import AdvisorReport, IndexAdvisor
from dbopt.testing import libpq_url, postgres_url

pytestmark = [pytest.mark.postgres, pytest.mark.extensions("hypopg")]

# shaped like Chinook scaled up (bench/chinook/scale.sql): 35,000 tracks named after
# words, 5,900 customers in 53 cities of 24 countries
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS hypopg;
CREATE TABLE track (track_id int PRIMARY KEY, name varchar(200) NOT NULL, genre_id int);
INSERT INTO track
  SELECT n, (ARRAY['Alpha','Bravo','Charlie','Delta','Echo','Foxtrot','Golf','Hotel',
                   'India','Juliet','Kilo','Lima','Mike','November','Oscar','Papa','Quebec',
                   'Romeo','Sierra','Tango','Uniform','Victor','Whiskey','Xray','Yankee',
                   'Zulu'])[1 + (n * 7) % 26] || ' ' || n, n % 25
  FROM generate_series(1, 35000) n;
CREATE TABLE customer (customer_id int PRIMARY KEY, country text, city text, name text);
INSERT INTO customer SELECT n, 'country' || (n % 53) % 24, 'city' || n % 53, 'n' || n
  FROM generate_series(1, 5900) n;
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with postgres_url(prefix="dbopt_advisor_realschema") as u:
        with psycopg.connect(libpq_url(u), autocommit=True) as conn:
            conn.execute(SCHEMA)
            conn.execute("VACUUM ANALYZE")
        yield u


def advise(url: str, *sql: str) -> AdvisorReport:
    return IndexAdvisor(url, findings=False).advise(list(sql))


def test_prefix_search_ordered_by_the_same_column_is_not_served_by_a_plain_index(
    url: str,
) -> None:
    search = "SELECT track_id, name FROM track WHERE name LIKE 'Romeo%' ORDER BY name LIMIT 20"
    report = advise(url, search)
    # the plain index on name looks cheap to the planner (it expects the matches spread
    # along the index order) and would scan every name before 'Romeo'
    assert "public.track (name)" not in [r.label for r in report.recommendations]
    by_genre = "SELECT track_id, name FROM track WHERE genre_id = 7 ORDER BY name LIMIT 50"
    both = advise(url, search, by_genre)
    (result,) = [s for s in both.statements if "Romeo" in s.sql]
    if result.indexes:  # an index the search would use: priced as the scan it is
        assert result.cost_after is not None
        assert result.cost_before is not None
        if result.cost_after > 1.05 * result.cost_before:
            assert result.reason is not None
            assert result.reason.startswith("slower with")


def test_a_city_is_not_a_partial_index_predicate(url: str) -> None:
    sql = "SELECT customer_id, name FROM customer WHERE country = 'country7' AND city = 'city7'"
    report = advise(url, sql)
    assert report.recommendations
    assert all(r.predicate is None for r in report.recommendations)
