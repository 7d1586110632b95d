"""Statement fingerprints: one stable id for "the same statement with other values".

The normalizer is a single-pass tokenizer, dialect-agnostic, that needs no
parser and never raises:

* literals (strings, numbers, booleans, NULL as a value) and placeholders of
  every driver style (``%s``, ``%(name)s``, ``?``, ``:name``, ``$1``) become ``?``;
* IN-lists and multi-row VALUES of any length become one element;
* comments, whitespace and the case of keywords and unquoted identifiers are
  ignored, and so are ``AS``, ``INNER``/``OUTER`` and ``!=`` vs ``<>``;
  quoted identifiers keep their case unless quoting changes nothing.

It is built to agree with PostgreSQL's own fingerprint (libpg_query through
pglast, which the test suite checks on a corpus) while also reading SQLite
and MySQL text that PostgreSQL's parser rejects. Results are cached by text
in a bounded cache, so a statement seen before costs one dict look-up.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Literal, NamedTuple

__all__ = ["FingerprintInfo", "StatementKind", "fingerprint", "fingerprint_info", "normalize"]

StatementKind = Literal[
    "select", "insert", "update", "delete", "merge", "ddl", "transaction", "utility", "other"
]


class FingerprintInfo(NamedTuple):
    """The fingerprint of a statement, its normalized text and its kind."""

    fingerprint: str
    normalized: str
    kind: StatementKind


_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<estr>[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z))
    | (?P<str>(?:[nNbBxXuU]&?)?'(?:[^']|'')*(?:'|\Z))
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)?\$|\Z))
    | (?P<param>%\([^)]*\)s|%s|\$\d+|\?(?![|&-])|(?<!:):[A-Za-z_]\w*|@[A-Za-z_]\w*)
    | (?P<num>0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<qident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[A-Za-z_][\w ]*\])
    | (?P<word>[A-Za-z_\x80-\U0010FFFF][\w$\x80-\U0010FFFF]*)
    | (?P<op>::|<>|!=|<=|>=|\|\||->>|->|\#>>|\#>|@>|<@|[-+*/<>=~!@\#%^&|?]+)
    | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_LITERAL_WORDS = frozenset({"true", "false"})
_DROPPED_WORDS = frozenset({"as", "inner", "outer"})
_SIMPLE_IDENT = re.compile(r"[a-z_][a-z0-9_$]*\Z")
_KIND_WORDS: dict[str, StatementKind] = {
    "select": "select",
    "values": "select",
    "table": "select",
    "show": "utility",
    "insert": "insert",
    "replace": "insert",
    "copy": "utility",
    "update": "update",
    "delete": "delete",
    "merge": "merge",
    "create": "ddl",
    "alter": "ddl",
    "drop": "ddl",
    "truncate": "ddl",
    "comment": "ddl",
    "begin": "transaction",
    "commit": "transaction",
    "rollback": "transaction",
    "savepoint": "transaction",
    "release": "transaction",
    "start": "transaction",
    "end": "transaction",
    "set": "utility",
    "explain": "utility",
    "analyze": "utility",
    "vacuum": "utility",
    "pragma": "utility",
    "lock": "utility",
    "grant": "utility",
    "revoke": "utility",
    "listen": "utility",
    "notify": "utility",
    "prepare": "utility",
    "execute": "utility",
    "deallocate": "utility",
    "discard": "utility",
    "reset": "utility",
    "use": "utility",
}
#: After these, a ``-`` before a number is a sign, not subtraction.
_SIGN_CONTEXT = frozenset(
    {
        "(",
        ",",
        "=",
        "<>",
        "<",
        ">",
        "<=",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "in",
        "and",
        "or",
        "not",
        "select",
        "where",
        "when",
        "then",
        "else",
        "between",
        "values",
        "limit",
        "offset",
        "return",
    }
)

_CACHE_MAX = 8192
_CACHE_MAX_TEXT = 100_000
_cache: dict[str, FingerprintInfo] = {}
_cache_lock = threading.Lock()


def _collapse(out: list[str], open_index: int, after: str) -> None:
    """Collapse the just-closed group ``out[open_index:]`` when it is a value list."""
    inner = out[open_index + 1 : -1]
    if after == "in" and inner and all(t in ("?", ",") for t in inner):
        del out[open_index + 1 : -1]
        out.insert(open_index + 1, "?")
        return
    # One row of a VALUES list: drop it when it repeats the row before.
    if after == "," and open_index >= 2:
        prev_close = open_index - 2
        if out[prev_close] == ")":
            depth = 0
            for start in range(prev_close, -1, -1):
                if out[start] == ")":
                    depth += 1
                elif out[start] == "(":
                    depth -= 1
                    if depth == 0:
                        break
            else:
                return
            if out[start : prev_close + 1] == out[open_index:] and _is_values_row(out, start):
                del out[open_index - 1 :]


def _is_values_row(out: list[str], start: int) -> bool:
    """Whether the group opening at ``start`` is a row of a VALUES list."""
    i = start - 1
    while i >= 0:
        token = out[i]
        if token == "values":
            return True
        if token != ",":
            return False
        # skip the previous row
        if i - 1 < 0 or out[i - 1] != ")":
            return False
        depth = 0
        j = i - 1
        while j >= 0:
            if out[j] == ")":
                depth += 1
            elif out[j] == "(":
                depth -= 1
                if depth == 0:
                    break
            j -= 1
        i = j - 1
    return False


def normalize(sql: str) -> tuple[str, StatementKind]:
    """Normalize ``sql`` (see the module docstring) and classify it.

    Never raises on any ``str``; unknown characters are kept as they are.
    """
    out: list[str] = []
    opens: list[tuple[int, str]] = []
    kind: StatementKind | None = None
    depth = 0
    in_cte = False
    for match in _TOKEN.finditer(sql):
        group = match.lastgroup
        if group in ("ws", "comment"):
            continue
        text = match.group()
        if group == "word":
            token = text.lower()
            if token in _DROPPED_WORDS:
                continue
            if token in _LITERAL_WORDS:
                token = "?"
            elif token == "null":
                token = "null" if out and out[-1] in ("is", "not") else "?"
            elif depth == 0 and kind is None:
                if token == "with" and not out:
                    in_cte = True
                elif not in_cte or (out and out[-1] == ")"):
                    kind = _KIND_WORDS.get(token, "other")
        elif group in ("str", "estr", "dollar", "param", "num"):
            token = "?"
            if out and out[-1] == "-" and (len(out) == 1 or out[-2] in _SIGN_CONTEXT):
                out.pop()
        elif group == "qident":
            body = text[1:-1]
            token = body if _SIMPLE_IDENT.match(body) or text[0] in "`[" else text
            if text[0] in "`[":
                token = token.lower()
        elif group == "op":
            token = "<>" if text == "!=" else text
        else:  # punct
            token = text
            if token == "(":
                depth += 1
                opens.append((len(out), out[-1] if out else ""))
            elif token == ")":
                depth = max(depth - 1, 0)
                out.append(token)
                if opens:
                    index, after = opens.pop()
                    _collapse(out, index, after)
                continue
            elif token == ";":
                continue
        out.append(token)
    return " ".join(out), kind or "other"


def _compute(sql: str) -> FingerprintInfo:
    try:
        normalized, kind = normalize(sql)
    except Exception:  # noqa: BLE001 - fingerprinting must never raise
        normalized, kind = " ".join(sql.split()).lower(), "other"
    digest = hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return FingerprintInfo(digest, normalized, kind)


def fingerprint_info(sql: str) -> FingerprintInfo:
    """Fingerprint, normalized text and kind of ``sql``, cached by text."""
    info = _cache.get(sql)
    if info is not None:
        return info
    info = _compute(sql)
    if len(sql) <= _CACHE_MAX_TEXT:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                # Drop the oldest eighth: amortized O(1), no per-hit bookkeeping.
                for key in list(_cache)[: _CACHE_MAX // 8]:
                    _cache.pop(key, None)
            _cache[sql] = info
    return info


def fingerprint(sql: str) -> str:
    """A 16-hex-digit id shared by statements that differ only in values."""
    return fingerprint_info(sql).fingerprint
