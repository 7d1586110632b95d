"""Fingerprints: agreement with PostgreSQL's own (pglast) on a corpus, robustness, caching.

The corpus (tests/data/fingerprint_corpus.sql) holds real statements: the seed
documents' schemas and queries and what SQLAlchemy's ORM emitted for them on
PostgreSQL, SQLite and MariaDB. Every statement is rewritten into variants
(other literal values, IN-lists and VALUES batches of other lengths, other
whitespace, keyword case and comments, placeholders replaced by ``$n`` or by
literals), and dbopt must group the PostgreSQL-parseable ones exactly as
``pglast.parser.fingerprint`` does, except for the differences by design listed
in :data:`DIFFERENCES` (see the module docstring of dbopt.core.fingerprint).
"""

from __future__ import annotations

import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pglast.parser import ParseError
from pglast.parser import fingerprint as pg_fingerprint
from sqlalchemy import Engine, text

import dbopt
from dbopt.core import fingerprint as fp_module
from dbopt.core.fingerprint import StatementKind, fingerprint, fingerprint_info, normalize

CORPUS = Path(__file__).parent / "data" / "fingerprint_corpus.sql"


class Entry(NamedTuple):
    dialect: str
    name: str
    sql: str


def load_corpus() -> list[Entry]:
    entries: list[Entry] = []
    header: tuple[str, str] | None = None
    lines: list[str] = []
    for line in [*CORPUS.read_text(encoding="utf-8").splitlines(), "-- @end end"]:
        if line.startswith("--#"):
            continue
        if line.startswith("-- @"):
            if header is not None:
                entries.append(Entry(*header, "\n".join(lines).strip()))
            dialect, name = line[4:].split()
            header, lines = (dialect, name), []
        else:
            lines.append(line)
    return entries


ENTRIES = load_corpus()

# Corpus statements that pglast groups together and dbopt keeps apart, by design.
DIFFERENCES: dict[frozenset[str], str] = {
    frozenset({"seed001_partition_2023m07", "seed001_partition_2023m08"}): (
        "pglast drops name segments with two or more digits (partition names)"
    ),
    frozenset(
        f"{source}_{query}"
        for source in ("sqla_pg", "psycopg_numeric", "psycopg_client")
        for query in ("get_user", "users_in_list", "users_in_list_6")
    ): "pglast merges users.id = $1 with users.id IN ($1, $2): an N+1 query and its fix",
}
# Statements whose variants pglast tells apart by something dbopt treats as a value.
SPLIT_BY_PGLAST: dict[str, str] = {
    "pg_fetch_cursor": "FETCH/MOVE counts are part of pglast's fingerprint",
}

# --------------------------------------------------------------------------- variants

_LEX = {
    "postgresql": r"[eE]'(?:[^'\\]|\\.)*'|'(?:[^']|'')*'|\$\$.*?\$\$|%\(\w+\)s|%s|\$\d+",
    "sqlite": r"'(?:[^']|'')*'|\?|:\w+",
    "mysql": r"'(?:[^'\\]|''|\\.)*'|%\(\w+\)s|%s",
}
# A lexer of the test's own, for the corpus (not dbopt's): strings, placeholders and numbers
# are what variants change; "?" is a placeholder in SQLite and MySQL, an operator in PostgreSQL.
_COMMON = (
    r"(?P<ws>\s+)|(?P<comment>--[^\n]*|/\*.*?\*/)|(?P<value>{values})"
    r"|(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)|(?P<word>[A-Za-z_][\w$]*)"
    r"|(?P<quoted>\"[^\"]*\"|`[^`]*`)|(?P<punct>::|[(),;.\[\]])"
    r"|(?P<op>(?:[-+*/<>=~!@#^&|]|%(?![(s])|{qmark})+)"
)
LEXERS = {
    d: re.compile(_COMMON.format(values=v, qmark=r"\?" if d == "postgresql" else "(?!)"), re.S)
    for d, v in _LEX.items()
}
PARAM = re.compile(r"%\(\w+\)s|%s|\$\d+|\?|:\w+")
STRINGS = ["'x'", "'O''Brien'", "'100%'", "'ünïcödé'", "'--no comment'", "'/* nor */'", "''"]
STRINGS += ["'?'", "':name'", "'%(x)s'", "'$1'", "'a,b'", "'(1, 2)'"]
PG_STRINGS = [*STRINGS, "E'it\\'s'", "$$dollar's$$", "'back\\slash'"]
NUMBERS = ["0", "7", "42", "123456789", "3.25", "-1", "-0.5", "1e3", ".5"]

Tok = tuple[str, str]  # (kind, text); kind "param" for placeholders


def lex(sql: str, dialect: str) -> list[Tok]:
    toks = []
    for match in LEXERS[dialect].finditer(sql):
        kind, value = str(match.lastgroup), match.group()
        if kind == "value" and PARAM.fullmatch(value):
            kind = "param"
        toks.append((kind, value))
    assert "".join(t for _, t in toks) == sql
    return toks


def literal(kind: str, dialect: str, rng: random.Random, like: str = "", cast: bool = False) -> str:
    """A random literal: a number for a number (an integer for one), a string for a string,
    anything for a placeholder. Not a negative number before a cast: PostgreSQL keeps
    ``-1::int`` a negation, not a constant, and pglast compares the list it is in as a set
    (by design dbopt does not, so they would disagree on that, not on values)."""
    if kind == "number":
        return str(rng.choice([0, 7, 42, 123456])) if like.isdigit() else rng.choice(["3.25", ".5"])
    if kind == "param" and rng.random() < 0.5:
        return rng.choice([n for n in NUMBERS if not (cast and n.startswith("-"))])
    return rng.choice(PG_STRINGS if dialect == "postgresql" else STRINGS)


def respell(toks: list[Tok], dialect: str, rng: random.Random) -> list[Tok]:
    """Other literal values; placeholders stay placeholders."""
    return [
        (kind, f" {literal(kind, dialect, rng, value)} " if kind in ("number", "value") else value)
        for kind, value in toks
    ]


def _element_ends(toks: list[Tok], start: int) -> tuple[list[int], int]:
    """Depth-0 commas of the bracket opened at toks[start], and its closing index."""
    depth, commas = 0, list[int]()
    for i in range(start, len(toks)):
        value = toks[i][1]
        if value in "([":
            depth += 1
        elif value in ")]":
            depth -= 1
            if depth == 0:
                return commas, i
        elif value == "," and depth == 1:
            commas.append(i)
    return commas, len(toks)


def _previous_word(toks: list[Tok], i: int) -> str:
    while i > 0:
        i -= 1
        if toks[i][0] not in ("ws", "comment"):
            return toks[i][1].upper()
    return ""


def _next_value(toks: list[Tok], i: int) -> str:
    for kind, value in toks[i + 1 :]:
        if kind not in ("ws", "comment"):
            return value
    return ""


def _copies(element: list[Tok], count: int) -> list[Tok]:
    out: list[Tok] = []
    for n in range(count):
        out += ([("punct", ",")] if n else []) + element
    return out


def resize_lists(toks: list[Tok], rng: random.Random) -> list[Tok]:
    """IN-lists, arrays and VALUES batches of another length (copies of the first element)."""
    for i in range(len(toks) - 1, 0, -1):
        kind, value = toks[i]
        if (value == "(" and _previous_word(toks, i) == "IN") or value == "[":
            commas, end = _element_ends(toks, i)
            bounds = [i, *commas, end]
            shapes = {_shape(toks[a + 1 : b]) for a, b in pairwise(bounds)}
            if len(shapes) == 1 and "v" in next(iter(shapes)):
                new = _copies(toks[i + 1 : bounds[1]], rng.choice([1, 2, 5, 13]))
                toks = toks[: i + 1] + new + toks[end:]
        elif kind == "word" and value.upper() == "VALUES" and _previous_word(toks, i) != "=":
            rows, j = [], i + 1
            while j < len(toks) and toks[j][0] == "ws":
                j += 1
            while j < len(toks) and toks[j][1] == "(":
                end = _element_ends(toks, j)[1]
                rows.append((j, end))
                j = end + 1
                while j < len(toks) and toks[j][0] == "ws":
                    j += 1
                if j == len(toks) or toks[j][1] != ",":
                    break
                j += 1
                while j < len(toks) and toks[j][0] == "ws":
                    j += 1
            shapes = {_shape(toks[a : b + 1]) for a, b in rows}
            if len(shapes) == 1 and "v" in next(iter(shapes)):
                first = toks[rows[0][0] : rows[0][1] + 1]
                new = _copies(first, rng.choice([1, 2, 3, 50]))
                toks = toks[: rows[0][0]] + new + toks[rows[-1][1] + 1 :]
    return toks


def _shape(toks: list[Tok]) -> tuple[str, ...]:
    return tuple("v" if k in ("param", "value", "number") else v for k, v in toks if k != "ws")


def rejoin(toks: list[Tok], rng: random.Random, case: bool, spaces: bool, notes: bool) -> str:
    """Other whitespace, keyword case and comments around the same tokens."""
    parts: list[str] = []
    after_line_comment = False
    for kind, value in toks:
        spelled = value
        if kind == "ws" and spaces:
            spelled = rng.choice([" ", "\n", "\t", "\n    ", "  \n\t"])
            if after_line_comment:
                spelled = "\n" + spelled
        elif kind == "word" and case:
            spelled = rng.choice([value.lower(), value.upper(), value.title(), value])
        elif kind == "punct" and spaces and value in "(),":
            spelled = rng.choice(["", " ", "\n"]) + value + rng.choice(["", " ", "\n"])
        if notes and kind != "ws" and rng.random() < 0.1:
            parts.append(rng.choice([" /* note */ ", " -- note, it's '\n", "/*x*/"]))
        parts.append(spelled)
        after_line_comment = kind == "comment" and value.startswith("--")
    if notes:
        parts.append(" /*controller='words',action='index'*/")
    return "".join(parts)


def placeholders_as(toks: list[Tok], style: str, dialect: str, rng: random.Random) -> str:
    """``$n`` placeholders (style "numeric") or literals (style "literal")."""
    out, n = [], 0
    for i, (kind, value) in enumerate(toks):
        if kind == "param":
            n += 1
            cast = _next_value(toks, i) == "::"
            out.append(
                f"${n}" if style == "numeric" else f" {literal('param', dialect, rng, '', cast)} "
            )
        else:
            out.append(value)
    return "".join(out)


def variants(entry: Entry) -> list[str]:
    """Driver-style variants of one corpus statement (placeholders kept)."""
    rng = random.Random(entry.name)
    toks = lex(entry.sql, entry.dialect)
    texts = [entry.sql]
    for _ in range(2):
        respelled = respell(toks, entry.dialect, rng)
        texts.append("".join(v for _, v in respelled))
        resized = lex("".join(v for _, v in resize_lists(respelled, rng)), entry.dialect)
        texts.append("".join(v for _, v in resized))
        texts.append(rejoin(resized, rng, case=True, spaces=False, notes=False))
        texts.append(rejoin(resized, rng, case=False, spaces=True, notes=False))
        texts.append(rejoin(resized, rng, case=False, spaces=False, notes=True))
        texts.append(rejoin(resized, rng, case=True, spaces=True, notes=True))
    return texts


def pg_forms(entry: Entry, driver_text: str) -> list[str]:
    rng = random.Random(driver_text)
    toks = lex(driver_text, entry.dialect)
    if not any(kind == "param" for kind, _ in toks):
        return [driver_text]
    return [placeholders_as(toks, s, entry.dialect, rng) for s in ("numeric", "literal")]


# --------------------------------------------------------------------------- corpus


def test_corpus_is_real_and_varied() -> None:
    dialects: dict[str, int] = defaultdict(int)
    for entry in ENTRIES:
        dialects[entry.dialect] += 1
    assert len(ENTRIES) >= 80
    assert min(dialects.values()) >= 20
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)
    kinds = {fingerprint_info(e.sql).kind for e in ENTRIES}
    assert kinds >= {"select", "insert", "update", "delete", "ddl", "transaction", "utility"}


def test_partitions_agree_with_pglast() -> None:
    records = []  # (statement, pglast fingerprint, dbopt fingerprint) of each variant
    for entry in (e for e in ENTRIES if e.dialect == "postgresql"):
        for driver_text in variants(entry):
            forms = pg_forms(entry, driver_text)
            # The placeholder style changes nothing: %(name)s, %s and $n are all "?".
            assert fingerprint(driver_text) == fingerprint(forms[0]), driver_text
            for sql in forms:
                try:
                    theirs = pg_fingerprint(sql)
                except ParseError as exc:  # the variant generator is broken
                    raise AssertionError(f"{entry.name}: does not parse: {sql}") from exc
                records.append((entry.name, theirs, fingerprint(sql)))
    merged_by_pglast = _disagreements(records, by=1, other=2)
    merged_by_dbopt = _disagreements(records, by=2, other=1)
    assert merged_by_pglast == set(DIFFERENCES), "pglast merges what dbopt keeps apart"
    assert merged_by_dbopt == {frozenset({name}) for name in SPLIT_BY_PGLAST}
    # Not vacuous: many texts per statement, and few classes per statement.
    statements = sum(1 for e in ENTRIES if e.dialect == "postgresql")
    assert len(records) >= 15 * statements
    assert len({r[2] for r in records}) <= 2 * statements


def _disagreements(records: list[tuple[str, str, str]], by: int, other: int) -> set[frozenset[str]]:
    """Statements grouped by one fingerprint whose texts the other fingerprint splits."""
    classes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in records:
        classes[record[by]][record[other]].add(record[0])
    found = set()
    for split in classes.values():
        if len(split) > 1:
            found.add(frozenset().union(*split.values()))
    return found


# Corpus statements that are one statement with IN-lists of other lengths.
SAME_STATEMENT = {
    frozenset({"sqla_mysql_users_in_list", "sqla_mysql_users_in_list_6"}),
    frozenset({"sqla_mysql_flush_insert_words", "sqla_mysql_insert_words_batch_25"}),
}


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_sqlite_and_mysql_variants_share_one_fingerprint(dialect: str) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for entry in (e for e in ENTRIES if e.dialect == dialect):
        prints = set()
        for driver_text in variants(entry):
            toks = lex(driver_text, dialect)
            literal_text = placeholders_as(toks, "literal", dialect, random.Random(driver_text))
            prints |= {fingerprint(driver_text), fingerprint(literal_text)}
        assert len(prints) == 1, (entry.name, [normalize(v)[0] for v in variants(entry)])
        owners[prints.pop()].add(entry.name)
    shared = {frozenset(names) for names in owners.values() if len(names) > 1}
    assert shared == {names for names in SAME_STATEMENT if f"_{dialect}_" in min(names)}


def test_documented_differences_from_pglast() -> None:
    pairs = [
        ("SELECT a AS x FROM t", "SELECT a AS y FROM t"),  # select-list aliases
        ("SELECT * FROM t WHERE a = 1 AND b = 2", "SELECT * FROM t WHERE b = 2 AND a = 1"),
        ("SELECT * FROM t WHERE a = $1", "SELECT * FROM t WHERE a IN ($1, $2)"),
        ("SELECT * FROM users u WHERE u.id = 1", "SELECT * FROM orders u WHERE u.id = 1"),
        ("SELECT * FROM public.t", "SELECT * FROM t"),
        ("SELECT f(1, 2)", "SELECT f(1)"),
        ("SELECT x::int", "SELECT CAST(x AS integer)"),
        ("SELECT 1 WHERE a IN (SELECT b, c FROM t)", "SELECT 1 WHERE a IN (SELECT c, b FROM t)"),
        ("FETCH 10 FROM c", "FETCH 20 FROM c"),  # the other way round: dbopt merges
    ]
    for a, b in pairs[:-1]:
        assert pg_fingerprint(a) == pg_fingerprint(b)
        assert fingerprint(a) != fingerprint(b)
    a, b = pairs[-1]
    assert pg_fingerprint(a) != pg_fingerprint(b)
    assert fingerprint(a) == fingerprint(b)


# --------------------------------------------------------------------------- rules

SAME = [
    ("SELECT * FROM t WHERE id = %s", "select * from t where id=?", "select * from t where id=:id"),
    (
        "SELECT 1 WHERE a IN (%(a_1)s::INTEGER, %(a_2)s::INTEGER)",
        "SELECT 1 WHERE a IN ($1::integer)",
    ),
    ("INSERT INTO t (a) VALUES (1), (2), (3)", "insert into t (a) values (-5)"),
    ("SELECT * FROM t WHERE a=-1", "SELECT * FROM t WHERE a = - 1", "SELECT * FROM t WHERE a=7"),
    ('SELECT "name" FROM "t"', "SELECT name FROM t", "SELECT `name` FROM `T`"),
    ("SELECT a FROM t -- x\n", "SELECT /* y */ a FROM t;", "select\n\ta\nfrom t ;"),
    ("SAVEPOINT sa_savepoint_1", "savepoint sa_savepoint_22"),
    ("RELEASE SAVEPOINT s1", "release s2"),
    ("ROLLBACK TO SAVEPOINT s1", "rollback to s2"),
    ("BEGIN", "begin transaction", "BEGIN WORK"),
    ("COMMIT", "END", "commit work"),
    ("SET search_path TO a, b", "set search_path = c"),
    ("SELECT 'it''s', E'it\\'s', $$x$$, $f$y$f$", "SELECT 'a', 'b', 'c', 'd'"),
    ("UPDATE t SET a = 'it\\'s' WHERE b = 1", "UPDATE t SET a = 'x' WHERE b = 2"),
    ("SELECT x WHERE a = ANY(ARRAY[1, 2, 3])", "SELECT x WHERE a = ANY(ARRAY[4])"),
    ("SELECT 1 WHERE a IN (x, 1)", "SELECT 1 WHERE a IN (2, x, 3)", "SELECT 1 WHERE a IN (x,4)"),
    ("SELECT users.id FROM users", "SELECT users . id FROM users", 'SELECT "users".id FROM users'),
]
DIFFERENT = [
    ("SELECT * FROM t WHERE a IS NULL", "SELECT * FROM t WHERE a IS NOT NULL"),
    ("SELECT * FROM t WHERE a IS TRUE", "SELECT * FROM t WHERE a IS FALSE"),
    ('SELECT * FROM "T"', "SELECT * FROM t"),
    ('SELECT "user" FROM t', "SELECT user FROM t"),
    ("SELECT -1::int", "SELECT 1::int"),
    ("SELECT a - 1 FROM t", "SELECT a FROM t"),
    ("SELECT a FROM t; SELECT b FROM t", "SELECT a FROM t"),
    ("SELECT a[1] FROM t", "SELECT a i FROM t"),
]


@pytest.mark.parametrize("texts", SAME)
def test_same_statement_other_values(texts: tuple[str, ...]) -> None:
    assert len({fingerprint(t) for t in texts}) == 1, [normalize(t)[0] for t in texts]


@pytest.mark.parametrize("pair", DIFFERENT)
def test_different_statements(pair: tuple[str, str]) -> None:
    assert fingerprint(pair[0]) != fingerprint(pair[1])
    if all(_parses(t) for t in pair):
        assert pg_fingerprint(pair[0]) != pg_fingerprint(pair[1])


def _parses(sql: str) -> bool:
    try:
        pg_fingerprint(sql)
    except ParseError:
        return False
    return True


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1", "update"),
        ("(SELECT 1) UNION (SELECT 2)", "select"),
        ("with recursive r(n) as (select 1) insert into t select n from r", "insert"),
        ("EXPLAIN ANALYZE SELECT 1", "utility"),
        ("ALTER TABLE t ADD COLUMN a int", "ddl"),
        ("release savepoint x", "transaction"),
        ("", "other"),
        ("frobnicate the database", "other"),
    ],
)
def test_kind(sql: str, kind: StatementKind) -> None:
    assert fingerprint_info(sql).kind == kind
    assert normalize(sql)[1] == kind


def test_cache_is_one_lookup_and_bounded() -> None:
    sql = "SELECT cached FROM t WHERE id = 1"
    first = fingerprint_info(sql)
    assert fp_module._cache.get(sql) is first
    assert fingerprint_info(sql) is first
    for i in range(fp_module._CACHE_MAX + 10):
        fingerprint_info(f"SELECT {i} AS c{i}")
    assert len(fp_module._cache) <= fp_module._CACHE_MAX
    assert fp_module._cache_chars == sum(len(k) for k in fp_module._cache)


# --------------------------------------------------------------------------- properties

FRAGMENTS = [
    *"'\"`$()[],;:?%-/*\\\n\t\x00",
    *["--", "/*", "*/", "$$", "$a$", "E'", 'U&"', "%(", ")s", "::", "\ud800", "\udfff"],
    *["select ", " from t", " in (", "values (", "1", "-1", "1e5", " is ", "null", "as x"],
    *["begin", "savepoint s", "set a = ", "ARRAY[", "@>", "->>", "?|", "=-", "<>", "!="],
]
sql_ish = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=40).map("".join)
any_char = st.characters(exclude_categories=()) | st.characters(
    min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()
)  # lone surrogates, as a driver's surrogateescape decoding leaves them
any_text = st.text(any_char)


@given(st.one_of(any_text, sql_ish))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_never_raises_and_is_deterministic(sql: str) -> None:
    info = fingerprint_info(sql)
    assert re.fullmatch(r"[0-9a-f]{16}", info.fingerprint)
    assert info.kind in get_args(StatementKind)
    assert fp_module._compute(sql) == info
    assert normalize(sql) == (info.normalized, info.kind)


IDENTS = st.sampled_from(["id", "email", "user_id", "created_at", "status", "score"])
TABLES = st.sampled_from(["users", "courses", "payments", "user_progress"])
OPS = st.sampled_from(["=", "<>", "<", ">=", "LIKE"])


VALUES = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr).filter(lambda t: "e" not in t),
    st.text(max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(["%s", "%(p)s", "$1", "?", ":name", "TRUE", "NULL", "E'a\\'b'", "1e-05"]),
)


@st.composite
def statements(draw: st.DrawFn) -> tuple[list[str], int]:
    """A simple statement as tokens ("\\0" where a value goes), and its number of values."""
    conds = draw(st.lists(st.tuples(IDENTS, OPS), min_size=1, max_size=3))
    toks = ["SELECT", draw(IDENTS), "FROM", draw(TABLES), "WHERE"]
    for i, (col, op) in enumerate(conds):
        toks += (["AND"] if i else []) + [col, op, "\0"]
    if draw(st.booleans()):
        size = draw(st.integers(1, 6))
        toks += ["AND", "id", "IN", "(", *(["\0", ","] * size)[:-1], ")"]
    return toks, sum(t == "\0" for t in toks)


def render(toks: list[str], values: Iterable[str], rng: random.Random) -> str:
    it = iter(values)
    out = []
    for tok in toks:
        word = next(it) if tok == "\0" else rng.choice([tok, tok.lower(), tok.upper()])
        out.append(word + rng.choice([" ", "\n", "\t ", " /* c */ ", " -- c\n"]))
    return "".join(out)


@given(statements(), st.data(), st.randoms(use_true_random=False))
@settings(max_examples=300, deadline=None)
def test_values_whitespace_case_and_comments_do_not_matter(
    stmt: tuple[list[str], int], data: st.DataObject, rng: random.Random
) -> None:
    toks, count = stmt
    first = render(toks, [data.draw(VALUES) for _ in range(count)], rng)
    second = render(toks, [data.draw(VALUES) for _ in range(count)], rng)
    assert fingerprint(first) == fingerprint(second), (normalize(first), normalize(second))
    if _parses(first) and _parses(second):  # the generator changes only what pglast ignores
        assert pg_fingerprint(first) == pg_fingerprint(second)


# --------------------------------------------------------------------------- bad input


def _values_insert(rows: int) -> str:
    row = (
        "({i}, 'word number {i}, with a translation long enough to make a megabyte', {i}.5, now())"
    )
    body = ", ".join(row.format(i=i) for i in range(rows))
    return f"INSERT INTO words (id, term, score, created_at) VALUES {body}"


def test_megabyte_values_insert_is_one_row() -> None:
    big = _values_insert(12_000)
    assert len(big) > 1_000_000
    started = time.perf_counter()
    info = fingerprint_info(big)
    assert time.perf_counter() - started < 20  # linear; quadratic work would take minutes
    assert info.fingerprint == fingerprint(_values_insert(1))
    assert info.normalized.count("(") == 3


@pytest.mark.parametrize(
    "make",
    [
        lambda: bytes(random.Random(7).randbytes(1_000_000)).decode("utf-8", "surrogateescape"),
        lambda: "+" * 1_000_000,
        lambda: "(" * 500_000 + ")" * 500_000,
        lambda: "x in (" * 200_000,
        lambda: "%(" * 500_000,
        lambda: "'" + "a" * 1_000_000,
        lambda: "/*" * 500_000,
        lambda: "$a$" * 300_000,
        lambda: "select -" * 150_000,
        lambda: "values (1, (2)), " * 80_000,
    ],
)
def test_megabyte_garbage(make: Callable[[], str]) -> None:
    sql = make()
    started = time.perf_counter()
    info = fingerprint_info(sql)
    assert time.perf_counter() - started < 20
    assert fingerprint_info(sql) == info


# Malformed statements still group by everything but their values.
MALFORMED = [
    ("SELECT * FROM WHERE a = 1", "select * from where a = 'x'"),
    ("SELECT 'unterminated", "SELECT 'other, unterminated too"),
    ("SELECT E'unterminated \\'", "SELECT E'other'"),
    ("SELECT $$ unterminated dollar", "SELECT $$other$$"),
    ("SELECT 1 /* unterminated comment", "SELECT 2"),
    ('SELECT "unterminated identifier', 'SELECT "unterminated identifier'),
    (")))(((", ")))((("),
    ("SELECT * FROM t WHERE a IN (1, 2", "SELECT * FROM t WHERE a IN (3"),  # cut short
    ("SELECT * FROM t WHERE a IN (1, 2, (3", "SELECT * FROM t WHERE a IN (4, (5"),
    ("INSERT INTO t VALUES (1,", "INSERT INTO t VALUES ('x',"),
    ("\x00\x01 = 1", "\x00\x01 = 2"),
    ("SELECT \udc80\udcff FROM t WHERE a = 1", "SELECT \udc80\udcff FROM t WHERE a = 3"),
    ("U&", "u&"),
]


@pytest.mark.parametrize("pair", MALFORMED)
def test_malformed_sql(pair: tuple[str, str]) -> None:
    first, second = (fingerprint_info(sql) for sql in pair)
    assert first == second
    assert first == fp_module._compute(pair[0])


@pytest.mark.parametrize("value", [b"SELECT \xff\xfe", None, 42, ["SELECT 1"], object()])
def test_not_a_string(value: object) -> None:
    info = fingerprint_info(value)  # type: ignore[arg-type]
    assert len(info.fingerprint) == 16
    assert fingerprint(value) == info.fingerprint  # type: ignore[arg-type]
    assert info.kind == "other"


@pytest.mark.postgres
def test_ten_thousand_row_insert_through_postgres(pg_engine: Engine) -> None:
    rows = ", ".join(f"({i}, 'w{i}')" for i in range(10_000))
    with dbopt.capture_queries(pg_engine) as captured, pg_engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE fp_words (id int, term text)"))
        conn.execute(text(f"INSERT INTO fp_words (id, term) VALUES {rows}"))
        conn.execute(
            text("INSERT INTO fp_words (id, term) VALUES (:id, :term)"), {"id": 1, "term": "x"}
        )
        assert conn.execute(text("SELECT count(*) FROM fp_words")).scalar() == 10_001
    big, small = [e for e in captured if e.sql.startswith("INSERT")]
    assert big.fingerprint == small.fingerprint
    assert big.normalized == "insert into fp_words ( id , term ) values ( ? , ? )"
