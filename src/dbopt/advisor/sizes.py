"""How big a B-tree index will be once built, deduplication included.

hypopg sizes a hypothetical B-tree as one index tuple per row; since
PostgreSQL 13 a built B-tree stores the heap pointers of equal keys in one
posting-list tuple, so an index on a column with many duplicates (a foreign
key, a status) is often a third of that. This estimate follows what
``CREATE INDEX`` does:

* leaf tuples of ``MAXALIGN(8-byte header + key data) + 4-byte line pointer``;
* with deduplication (no INCLUDE, every key type deduplication-safe: not
  numeric, float, bpchar, jsonb, arrays, ranges...), one posting tuple per distinct
  key and up to about 812 bytes of posting list (the build's limit, 10 % of a
  page), 6 bytes per row;
* the number of distinct keys from ``pg_stats.n_distinct`` (a product over
  the key columns, at most the row count; corrected upwards for a column
  stored in order, whose sampled n_distinct is too low); rows from ``reltuples``; key
  widths from ``pg_stats.avg_width``;
* leaf pages filled to the default fillfactor (90 %), a high key per page,
  internal levels of truncated pivot tuples at 70 %, and the metapage.

A test builds indexes on real data and checks the estimate against
``pg_relation_size``.
"""

from __future__ import annotations

import math

from dbopt.advisor.catalog import Catalog, Column, Relation
from dbopt.advisor.ddl import reusable_index
from dbopt.advisor.model import IndexSpec

__all__ = ["btree_size"]

_PAGE = 8192
_USABLE = _PAGE - 24 - 16  # page header, B-tree special space
_LEAF_FILL = 0.90
_INTERNAL_FILL = 0.70
_MAX_POSTING = 812  # MAXALIGN_DOWN(BLCKSZ * 10 / 100) - sizeof(ItemIdData) while building
_TID = 6

# bpchar: its operator class has no "equal image" support function, so no deduplication
_NO_DEDUP = frozenset(
    {"numeric", "float4", "float8", "jsonb", "json", "tsvector", "money", "interval", "bpchar"}
)
_ALIGN = {
    "int8": 8,
    "float8": 8,
    "timestamp": 8,
    "timestamptz": 8,
    "time": 8,
    "money": 8,
    "int4": 4,
    "date": 4,
    "float4": 4,
    "oid": 4,
    "int2": 2,
}
_FIXED = {
    "int8": 8,
    "float8": 8,
    "timestamp": 8,
    "timestamptz": 8,
    "time": 8,
    "int4": 4,
    "date": 4,
    "float4": 4,
    "oid": 4,
    "int2": 2,
    "bool": 1,
    "uuid": 16,
    "char": 1,
}


def _maxalign(n: float) -> float:
    return math.ceil(n / 8) * 8


def _width(col: Column | None) -> tuple[float, int]:
    """(average stored width, alignment) of one key column."""
    if col is None:
        return 8.0, 8
    fixed = _FIXED.get(col.typname)
    width = float(fixed if fixed is not None else (col.avg_width or 8))
    if fixed is None and col.avg_width:
        # pg_stats counts the detoasted value; a short varlena in an index has a 1-byte header
        width = float(col.avg_width) + (1 if col.avg_width < 127 else 0)
    return width, _ALIGN.get(col.typname, 1)


def _data_width(cols: list[Column | None]) -> float:
    off = 0.0
    for col in cols:
        width, align = _width(col)
        off = math.ceil(off / align) * align + width
    return off


def _distinct(col: Column | None, rows: float) -> float | None:
    if col is None or col.n_distinct is None:
        return None
    d = col.n_distinct
    if d < 0:
        d = -d * rows
    elif col.correlation is not None and abs(col.correlation) > 0.9 and d < rows:
        # ANALYZE samples whole pages: on a column stored in order, equal values share
        # pages, and a positive (fixed) n_distinct underestimates the distinct count;
        # take the geometric mean with "all distinct" (l_orderkey of TPC-H: 0.38M
        # estimated, 1.5M real, 1.5M by this)
        d = math.sqrt(d * rows)
    return max(1.0, min(rows, d))


def dedup_safe(spec: IndexSpec, rel: Relation) -> bool:
    """True if ``CREATE INDEX`` would deduplicate this B-tree."""
    if spec.method != "btree" or spec.include:
        return False
    for key in spec.keys:
        if not key.is_column:
            continue
        col = rel.columns.get(key.columns[0])
        if col is None or col.typname in _NO_DEDUP or col.typname.startswith("_"):
            return False
        if col.category in ("A", "R", "C"):  # arrays, ranges, composites
            return False
        if col.collation not in (None, "", "default", "C", "POSIX") and col.category == "S":
            return False  # possibly nondeterministic
    return True


def btree_size(spec: IndexSpec, rel: Relation, catalog: Catalog, fraction: float = 1.0) -> int:
    """Estimated bytes of ``spec`` built on ``rel`` (``fraction`` of rows for a partial one).

    A partitioned table's index is summed over the leaf partitions it would
    be built on: a partition whose matching index is attached instead
    (:func:`dbopt.advisor.ddl.reusable_index`) adds nothing.
    """
    if rel.kind == "p":
        leaves = [leaf for leaf in catalog.leaves(rel) if leaf.kind == "r"]
        if leaves:
            return sum(
                _one(spec, leaf, rel, fraction)
                for leaf in leaves
                if reusable_index(spec, leaf, catalog) is None
            )
    return _one(spec, rel, rel, fraction)


def _one(spec: IndexSpec, rel: Relation, stats: Relation, fraction: float) -> int:
    rows = max(0.0, rel.reltuples) * fraction
    if rows < 1:
        return _PAGE * 2
    key_cols: list[Column | None] = []
    for key in spec.keys:
        if key.is_column:
            key_cols.append(rel.columns.get(key.columns[0]) or stats.columns.get(key.columns[0]))
        else:
            key_cols.append(None)
    inc_cols = [rel.columns.get(c) or stats.columns.get(c) for c in spec.include]
    key_data = _data_width(key_cols)
    tuple_head = _maxalign(8 + _data_width(key_cols + inc_cols))
    plain = tuple_head + 4
    leaf_bytes = rows * plain
    if dedup_safe(spec, stats):
        distinct: float | None = 1.0
        for col in key_cols:
            d = _distinct(col, rows)
            if d is None or distinct is None:
                distinct = None
                break
            distinct = min(rows, distinct * d)
        if distinct is not None and distinct < rows:
            per = rows / distinct
            # a posting tuple: header + key, padded, then the heap TIDs
            room = max(_TID, _MAX_POSTING - _maxalign(8 + key_data))
            per_tuple = max(1, int(room // _TID))
            tuples_per_key = math.ceil(per / per_tuple)
            if per > 1.5:
                posting = tuples_per_key * (_maxalign(8 + key_data) + 4) + _maxalign(per * _TID)
                leaf_bytes = distinct * min(posting, per * plain)
    high_key = _maxalign(8 + key_data) + 4
    leaf_pages = math.ceil(leaf_bytes / (_USABLE * _LEAF_FILL - high_key))
    pivot = _maxalign(8 + key_data) + 4
    pages = leaf_pages
    level = leaf_pages
    fanout = max(2, int(_USABLE * _INTERNAL_FILL // pivot))
    while level > 1:
        level = math.ceil(level / fanout)
        pages += level
    return int((pages + 1) * _PAGE)
