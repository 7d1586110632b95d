"""The catalog and statistics queries the linter runs (PostgreSQL 13 and newer).

Every query reads ``pg_catalog`` and the statistics views only. None calls a
function that opens a user relation: ``pg_get_indexdef``,
``pg_get_constraintdef``, ``pg_get_expr`` with a relation and
``pg_relation_size`` all take an AccessShareLock on the table and would wait
behind a migration holding ACCESS EXCLUSIVE, so sizes come from
``relpages`` and expressions are compared as their stored node trees.

``%(schemas)s`` is the list of schemas to read (an empty list means every
schema except the system ones).
"""

from __future__ import annotations

__all__ = [
    "COLUMNS",
    "CONSTRAINTS",
    "INDEXES",
    "RELATIONS",
    "SEQUENCES",
    "SERVER",
    "STATS",
]

_IN_SCOPE = """
  n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY(%(schemas)s::text[]))
  AND n.nspname <> ALL(%(exclude_schemas)s::text[])
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend e
    WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
"""

SERVER = """
SELECT current_setting('server_version_num')::int AS version_num,
       current_database() AS database,
       (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
         AS stats_reset,
       (SELECT extract(epoch FROM now() - stats_reset)::float8
        FROM pg_stat_database WHERE datname = current_database()) AS stats_age_s,
       current_setting('block_size')::int AS block_size
"""

RELATIONS = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       c.relispartition AS is_partition, c.reltuples::float8 AS reltuples,
       c.relpages::int8 AS relpages, COALESCE(t.relpages, 0)::int8 AS toast_pages,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
       CASE WHEN c.relkind = 'r' THEN pg_stat_get_numscans(c.oid) END AS seq_scan,
       CASE WHEN c.relkind = 'r' THEN
         (SELECT sum(pg_stat_get_numscans(x.indexrelid))::int8 FROM pg_index x
          WHERE x.indrelid = c.oid) END AS idx_scan,
       CASE WHEN c.relkind = 'r' THEN pg_stat_get_live_tuples(c.oid) END AS n_live_tup,
       CASE WHEN c.relkind = 'r' THEN pg_stat_get_dead_tuples(c.oid) END AS n_dead_tup,
       d.description AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY n.nspname, c.relname
"""

COLUMNS = f"""
SELECT a.attrelid AS relid, a.attnum::int AS num, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, t.typname AS typname,
       t.typtype AS typtype, t.typcategory AS category, a.attnotnull AS not_null,
       a.attidentity AS identity, a.attgenerated AS generated,
       CASE WHEN a.atthasdef AND a.attgenerated = '' THEN
         (SELECT pg_get_expr(ad.adbin, 0) FROM pg_attrdef ad
          WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum)
       END AS default_expr,
       d.description AS comment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_description d
  ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND a.attnum > 0
  AND NOT a.attisdropped AND {_IN_SCOPE}
ORDER BY a.attrelid, a.attnum
"""

CONSTRAINTS = f"""
SELECT co.oid, co.conname AS name, co.contype AS type, co.conrelid AS relid,
       co.confrelid AS ref_relid, rn.nspname AS ref_schema, rc.relname AS ref_name,
       COALESCE(co.conkey::int[], '{{}}') AS columns,
       COALESCE(co.confkey::int[], '{{}}') AS ref_columns,
       co.convalidated AS validated, co.conindid AS index_oid,
       co.conparentid <> 0 AS inherited, co.confdeltype AS on_delete,
       co.confupdtype AS on_update
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = co.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY co.conrelid, co.conname
"""

# Node trees minus their parse locations, so two identical expressions compare equal.
_TREE = "regexp_replace({0}::text, ' :location -?[0-9]+', '', 'g')"

INDEXES = f"""
SELECT i.indexrelid AS oid, ic.relname AS name, i.indrelid AS relid,
       ic.relkind = 'I' AS partitioned, am.amname AS method,
       i.indisunique AS is_unique, i.indisprimary AS is_primary,
       i.indisexclusion AS is_exclusion, i.indisvalid AS is_valid,
       i.indnkeyatts::int AS key_count, i.indkey::int2[]::int[] AS columns,
       i.indclass::oid[]::int8[] AS opclasses, i.indcollation::oid[]::int8[] AS collations,
       i.indoption::int2[]::int[] AS options,
       {_TREE.format("i.indexprs")} AS expressions,
       {_TREE.format("i.indpred")} AS predicate,
       ic.relpages::int8 AS relpages,
       (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = i.indexrelid LIMIT 1)
         AS parent,
       CASE WHEN ic.relkind = 'i' THEN pg_stat_get_numscans(i.indexrelid) END AS idx_scan,
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                 AND k.contype IN ('p', 'u', 'x')) AS backs_constraint
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY i.indrelid, ic.relname
"""

# Planner statistics of short MCV lists only: the enum-like rules need the whole value set.
STATS = """
SELECT s.schemaname AS schema, s.tablename AS table, s.attname AS column,
       s.inherited, s.null_frac::float8, s.n_distinct::float8,
       s.most_common_vals::text::text[] AS values,
       s.most_common_freqs::float8[] AS freqs
FROM pg_stats s
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND s.schemaname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR s.schemaname = ANY(%(schemas)s::text[]))
  AND s.most_common_freqs IS NOT NULL
  AND array_length(s.most_common_freqs, 1) <= %(max_values)s
"""

# pg_sequences reads each sequence's last value (a lock on the sequence, never on a table).
SEQUENCES = """
SELECT c.oid, s.schemaname AS schema, s.sequencename AS name, s.data_type::text AS data_type,
       s.min_value, s.max_value, s.increment_by, s.cycle, s.last_value,
       dep.refobjid AS owner_relid, dep.refobjsubid::int AS owner_column
FROM pg_sequences s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
LEFT JOIN pg_depend dep
  ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
 AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND s.schemaname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR s.schemaname = ANY(%(schemas)s::text[]))
  AND s.schemaname <> ALL(%(exclude_schemas)s::text[])
ORDER BY s.schemaname, s.sequencename
"""
