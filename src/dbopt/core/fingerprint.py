"""Statement fingerprints: one stable id for "the same statement with other values".

:func:`normalize` is a single-pass tokenizer that needs no parser, reads
PostgreSQL, SQLite and MySQL text alike and never raises:

* literals (strings of every quoting style, numbers, booleans, ``NULL`` as a
  value, ``DEFAULT`` in a value list) and placeholders of every driver style
  (``%s``, ``%(name)s``, ``?``, ``?1``, ``:name``, ``@name``, ``$name``, ``$1``)
  become ``?``; a minus sign folds into the number it negates, as in PostgreSQL;
* an IN-list counts each distinct element once, whatever their number and
  order; so do runs of equal elements of ``ARRAY[...]`` and of equal rows of a
  multi-row ``VALUES`` (an insertmanyvalues batch of any size);
* comments, whitespace, a trailing ``;``, the case of keywords and unquoted
  identifiers (ASCII letters, as PostgreSQL folds them), ``AS``,
  ``INNER``/``OUTER`` and ``!=`` vs ``<>`` are ignored; a quoted identifier
  equals the unquoted one when quoting changes nothing;
* names that are values in all but syntax are ignored: savepoint, cursor,
  prepared statement and channel names, ``SET`` values, transaction modes.

It is not libpg_query's fingerprint nor pg_stat_statements' ``queryid``.
Measured on libpg_query's own fingerprint test corpus (77 statements,
tests/test_fingerprint_truth.py): of the 36 pairs libpg_query groups together,
dbopt groups 9; of the 2,890 it keeps apart, dbopt merges none. Against
PostgreSQL 15's pg_stat_statements on the 65 of them it records: of its 10
pairs together dbopt groups 1, and it merges 6 pairs that PostgreSQL keeps
apart, all of which libpg_query merges too (a constant and a ``$1``, IN-lists
and VALUES batches of other lengths, ``UNLISTEN x`` and ``UNLISTEN *``). On a
corpus of real application statements and their variants the test suite
checks agreement with libpg_query (through pglast) except where pglast reads
the syntax tree in ways a tokenizer cannot or, by design, should not:

* pglast sorts and de-duplicates the operands of ``AND``/``OR``, function
  arguments, select and ``SET`` lists, ``FROM`` lists, insert columns and the
  values of a row, and ignores how many constants any list holds
  (``f(1, 2)`` = ``f(1)``); dbopt keeps them as written, but for IN-lists;
* pglast ignores select-list and sub-query alias names (``SELECT a AS x`` =
  ``SELECT a``); dbopt keeps them: they are part of what was run;
* pglast merges ``a = $1``, ``a IN ($1, $2)`` and ``a = ANY($1)``; dbopt keeps
  them apart: an N+1 loop (``id = ?``) and its fix (``id IN (?)``) must differ;
* pglast, like PostgreSQL 18, drops a table's schema in a query, and its name
  when it has an alias (``FROM users u`` = ``FROM orders u``), and name segments
  with two or more digits (``events_2024_01`` = ``events_2024_02``); dbopt keeps
  every name;
* pglast keeps the count of ``FETCH``/``MOVE``; dbopt treats it as a value;
* pglast resolves syntax variants (``x::int`` = ``CAST(x AS integer)``,
  ``LIMIT n`` = ``FETCH FIRST n ROWS ONLY``, ``(a = 1)`` = ``a = 1``) that a
  tokenizer sees as different text; nested ``/* /* */ */`` comments (a
  PostgreSQL extension) end at the first ``*/``.

MySQL text is read as with ``ANSI_QUOTES``: ``"..."`` is an identifier, so
write string literals in single quotes; a backslash-escaped quote (``'it\\'s'``)
is read as MySQL does when the standard reading would leave a string open.
``#`` comments are not recognised.

Results are cached by text in a bounded cache: a text seen before costs one
dict look-up.

The work is bounded whatever the text's size: a text longer than
:data:`MAX_CHARS` (64 KiB) is normalized from its first :data:`MAX_CHARS`
characters (a value list cut there still counts once, a ``VALUES`` row cut
there is dropped) followed by what follows its last closing parenthesis
within its last :data:`TAIL_CHARS` characters (the ``RETURNING``,
``ON CONFLICT`` or condition after a huge ``IN (...)`` or ``VALUES`` list).
So a 10 MB ``IN (...)`` costs about what a 64 KiB one does, and an IN-list or
an insertmanyvalues batch of any size shares the fingerprint of a short one;
two long texts that differ only past their first 64 KiB and before their
last ``)`` share one too.
"""

from __future__ import annotations

import hashlib
import re
import threading
from itertools import islice, pairwise
from typing import Literal, NamedTuple

__all__ = [
    "MAX_CHARS",
    "TAIL_CHARS",
    "FingerprintInfo",
    "StatementKind",
    "fingerprint",
    "fingerprint_info",
    "mask_literals",
    "normalize",
]

#: Characters of a text that are normalized; past them only the tail counts.
MAX_CHARS = 65_536
#: Characters at the end of a long text searched for what follows its last ``)``.
TAIL_CHARS = 4096

StatementKind = Literal[
    "select", "insert", "update", "delete", "merge", "ddl", "transaction", "utility", "other"
]


class FingerprintInfo(NamedTuple):
    """The fingerprint of a statement, its normalized text and its kind."""

    fingerprint: str
    normalized: str
    kind: StatementKind


_IDENT = r"[A-Za-z_\x80-\U0010FFFF][A-Za-z0-9_$\x80-\U0010FFFF]*"


def _token_pattern(plain_string: str, dollar_tags: bool = False) -> re.Pattern[str]:
    # Ordered by frequency where correctness allows; every alternative is
    # linear (runs of operator characters are split in Python, not here).
    body = "|".join(
        (
            _IDENT + r"(?:\.(?:" + _IDENT + r"|\*))*",  # a name, maybe qualified
            r"(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?",  # number
            r"[(),.;\[\]]",
            # E'...' keeps backslash escapes; the E itself is a word token.
            r"(?<=[eE])(?<![A-Za-z0-9_$\x80-\U0010FFFF][eE])'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'?",
            plain_string,
            r"%\([^()%\n]{0,200}\)[sbt]|(?<![\w$])%[sbt](?![\w$])",  # pyformat, format
            r"\?(?![|&#-])\d*|:[A-Za-z_]\w*|@[A-Za-z_]\w*|\$\d+",  # qmark, named, numeric
            r"\$(?P<tag>[A-Za-z_]\w*)\$.*?(?:\$(?P=tag)\$|\Z)" if dollar_tags else "(?!)",
            r"\$\$.*?(?:\$\$|\Z)|\$[A-Za-z_]\w*",  # dollar quote, SQLite's $name
            r"::|:=|--[^\n]*|/\*.*?(?:\*/|\Z)",
            r'"[^"]*(?:""[^"]*)*"?|`[^`]*(?:``[^`]*)*`?',  # quoted identifiers
            r"(?:[~!@#^&|*<>=+]|-(?!-)|/(?!\*)|%(?![sbt(])|\?(?=[|&#-]))+",  # operator
        )
    )
    return re.compile(r"[ \t\n\r\f\v]*(" + body + r"|[^ \t\n\r\f\v])", re.DOTALL)


_STANDARD_STRING = r"'[^']*(?:''[^']*)*'?"
_TOKEN = _token_pattern(_STANDARD_STRING)
#: MySQL reads ``\'`` inside a plain string as an escaped quote.
_TOKEN_BACKSLASH = _token_pattern(r"'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'?")
#: Tagged dollar quotes (``$fn$ ... $fn$``) need a back-reference: a second group.
_TOKEN_DOLLAR_TAGS = _token_pattern(_STANDARD_STRING, dollar_tags=True)
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_]\w*\$")
#: A string token that ends where it should, read as standard or as E'' (backslashes).
_TERMINATED_STRING = re.compile(r"'(?:[^']|'')*'|'(?:[^'\\]|\\.|'')*'", re.DOTALL)
_SIMPLE_IDENT = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# What to do with a token: found by the whole token in _ACTION, else by its first
# character in _CATEGORY (the text is lower-cased), else it is a name (_KEEP).
_KEEP, _COMMA, _OPEN, _CLOSE, _NUMBER, _VALUE, _OP, _CAST, _QUOTED, _DOT, _COMMENT = range(11)
_DROP, _BOOL, _NULL, _ALL, _DEFAULT, _NOT_EQUAL, _MAYBE = range(11, 18)
_ACTION: dict[str, int] = dict.fromkeys(
    ["=", "<", ">", "<=", ">=", "<>", "+", "-", "*", "/", "||", "->", "->>", "@>", "<@", ";"], _KEEP
)
_ACTION.update({",": _COMMA, "(": _OPEN, "[": _OPEN, ")": _CLOSE, "]": _CLOSE, ".": _DOT})
_ACTION.update({"::": _CAST, "!=": _NOT_EQUAL, "?": _VALUE, "%s": _VALUE})
_ACTION.update(dict.fromkeys(("as", "inner", "outer"), _DROP))
_ACTION.update({"true": _BOOL, "false": _BOOL, "null": _NULL, "all": _ALL, "default": _DEFAULT})
_CATEGORY: dict[str, int] = dict.fromkeys("0123456789", _NUMBER)
_CATEGORY.update(dict.fromkeys("'$", _VALUE))
_CATEGORY.update(dict.fromkeys("~!#^&|*<>=+", _OP))
_CATEGORY.update(dict.fromkeys("-/:%?@.", _MAYBE))
_CATEGORY.update({'"': _QUOTED, "`": _QUOTED})
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz_")
#: For a first character that does not decide: (second characters, action
#: with one of them, action without).
_RESOLVE: dict[str, tuple[frozenset[str], int, int]] = {
    "-": (frozenset("-"), _COMMENT, _OP),
    "/": (frozenset("*"), _COMMENT, _OP),
    ".": (frozenset({""}), _DOT, _NUMBER),
    "?": (frozenset({"", *"0123456789"}), _VALUE, _OP),
    "%": (frozenset("(sbt"), _VALUE, _OP),
    ":": (_NAME_START, _VALUE, _OP),
    "@": (_NAME_START, _VALUE, _OP),
}
#: Letters that make the string right after them a literal of another type.
_STRING_PREFIXES = frozenset("ebx")

#: PostgreSQL's reserved and type/function-name keywords: quoting them matters.
_KEYWORDS = _words(
    "all analyse analyze and any array as asc asymmetric both case cast check collate column"
    " constraint create current_catalog current_date current_role current_time"
    " current_timestamp current_user default deferrable desc distinct do else end except false"
    " fetch for foreign from grant group having in initially intersect into lateral leading"
    " limit localtime localtimestamp not null offset on only or order placing primary"
    " references returning select session_user some symmetric system_user table then to"
    " trailing true union unique user using variadic when where window with authorization"
    " binary collation concurrently cross current_schema freeze full ilike inner is isnull join"
    " left like natural notnull outer overlaps right similar tablesample verbose"
)
#: After these a ``-`` is a sign, not a subtraction.
_SIGN_WORDS = _words(
    "( , [ select where and or not when then else case between like ilike similar limit offset"
    " return returning by having distinct all default is from to escape set values on using"
    " any some array"
)
_OPERATOR_START = frozenset("=<>+-*/%^~!@#&|?:")

_KINDS: tuple[tuple[StatementKind, str], ...] = (
    ("select", "select values table"),
    ("insert", "insert replace"),
    ("update", "update"),
    ("delete", "delete"),
    ("merge", "merge"),
    ("ddl", "create alter drop truncate comment rename"),
    ("transaction", "begin start commit end rollback abort savepoint release"),
    ("utility", "show copy set reset explain analyze analyse vacuum pragma lock grant revoke"),
    ("utility", "listen unlisten notify prepare execute deallocate discard use declare fetch"),
    ("utility", "move close checkpoint cluster reindex refresh call do load"),
)
_KIND_WORDS = {word: kind for kind, words in _KINDS for word in words.split()}
_DML = _words("select values insert update delete merge table")
_QUERY_START = _words("select with values table")


def _tokens(sql: str) -> tuple[list[str], list[str] | None]:
    """Tokens of the lower-cased text, and the original spelling of ``"quoted"`` names."""
    low = sql.lower() if sql.isascii() else _ascii_lower(sql)
    pattern = _TOKEN
    if "$" in sql and _DOLLAR_TAG.search(sql):
        pattern = _TOKEN_DOLLAR_TAGS
    toks = _findall(pattern, low)
    if toks and "\\'" in sql:
        last = toks[-1]
        if last[0] == "'" and not _TERMINATED_STRING.fullmatch(last):
            pattern = _TOKEN_BACKSLASH
            toks = _findall(pattern, low)
    if '"' not in sql:
        return toks, None
    return toks, [t for t in _findall(pattern, sql) if t[0] == '"']


def _findall(pattern: re.Pattern[str], text: str) -> list[str]:
    if pattern.groups == 1:
        return pattern.findall(text)
    return [match[0] for match in pattern.findall(text)]


def _ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as PostgreSQL folds identifiers."""
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def _split_operator(tok: str) -> list[str]:
    """PostgreSQL's rule: an operator of only ``+-*/<>=`` cannot end in ``+`` or ``-``."""
    base = tok.rstrip("+-")
    return [base, *tok[len(base) :]] if base else list(tok)


def _normalize_tokens(toks: list[str], quoted: list[str] | None) -> list[str]:
    out: list[str] = []
    append = out.append
    opens: list[tuple[int, str]] = []  # per open bracket: its index in out, the token before
    commas: list[list[int] | None] = []  # per open bracket: its commas, if a list of values
    row_start = row_end = -2  # the last row of a VALUES list
    signed = -1  # index of the number whose minus sign was folded into it
    glue = 0  # after a "." apart from its names: the index in out of the name it joins
    originals = iter(quoted or ())
    # Locals: the loop runs once per token and global look-ups cost.
    action, category, keep, comma, value = _ACTION.get, _CATEGORY.get, _KEEP, _COMMA, _VALUE
    for tok in toks:
        if glue and len(out) > glue:
            out[glue - 1 : glue + 1] = [out[glue - 1] + out[glue]]
            glue = 0
        act = action(tok)
        if act is None:
            act = category(tok[0], keep)
            if act == _MAYBE:
                seconds, with_second, without = _RESOLVE[tok[0]]
                act = with_second if tok[1:2] in seconds else without
        if act == keep:
            append(tok)
        elif act == comma:
            seps = commas[-1] if commas else None
            if seps is not None:
                seps.append(len(out))
            append(tok)
        elif act == value:
            if tok[0] == "'" and out and out[-1] in _STRING_PREFIXES:
                out[-1] = "?"  # E'', B'', X'': a string all the same
            else:
                append("?")
        elif act == _DROP:
            continue
        elif act == _CAST:
            if signed == len(out) - 1:
                out.insert(signed, "-")  # PostgreSQL does not fold the sign of -1::int
            append(tok)
        elif act == _OPEN:
            prev = out[-1] if out else ""
            opens.append((len(out), prev))
            commas.append([] if prev == "in" or tok == "[" else None)
            append(tok)
        elif act == _CLOSE:
            append(tok)
            if not opens:
                continue
            start, after = opens.pop()
            seps = commas.pop()
            if seps and out[start + 1] not in _QUERY_START:  # IN (...), [...]: values
                _drop_repeats(out, start, seps, tok == ")")
                row_end = -2
            elif tok == ")" and (after == "values" or (after == "," and start - 2 == row_end)):
                end = len(out) - 1
                if start - 2 == row_end and out[row_start : row_end + 1] == out[start:]:
                    del out[start - 1 :]  # a row like the one before it
                    seps = commas[-1] if commas else None
                    if seps and seps[-1] == start - 1:
                        seps.pop()
                else:
                    row_start, row_end = start, end
        elif act == _NUMBER:
            if out and out[-1] == "-" and (len(out) == 1 or _is_unary_context(out[-2])):
                out[-1] = "?"
                signed = len(out) - 1
            else:
                append("?")
        elif act == _OP:
            if len(tok) > 1 and tok[-1] in "+-" and not tok.strip("+-*/<>="):
                out.extend(_split_operator(tok))
            else:
                append(tok)
        elif act == _QUOTED:
            name = next(originals, tok) if tok[0] == '"' and quoted is not None else tok
            body = name[1:-1]
            if (
                len(name) > 1
                and name[-1] == name[0]
                and _SIMPLE_IDENT.match(body)
                and body not in _KEYWORDS
            ):
                append(body)
            else:
                append(name)
        elif act == _DOT:
            if out:  # spaces, a comment or quotes around: as in a.b
                out[-1] += "."
                glue = len(out)
            else:
                append(tok)
        elif act in (_BOOL, _NULL):
            prev = out[-1] if out else ""
            if prev == "is" or (prev == "not" and (act == _NULL or out[-2:-1] == ["is"])):
                append(tok)
            else:
                append("?")
        elif act == _ALL:
            append("?" if out and out[-1] == "limit" else tok)
        elif act == _DEFAULT:  # a value where it stands for one
            append("?" if out and out[-1] in ("(", ",", "=") else tok)
        elif act == _NOT_EQUAL:
            append("<>")
        # else a comment: nothing
    if glue and len(out) > glue:
        out[glue - 1 : glue + 1] = [out[glue - 1] + out[glue]]
    while opens:  # a list cut short (a truncated statement) still counts its values once
        start, _ = opens.pop()
        seps = commas.pop()
        if seps and out[start + 1] not in _QUERY_START:
            out.append(")")
            _drop_repeats(out, start, seps, out[start] == "(")
            out.pop()
    while out and out[-1] == ";":
        out.pop()
    return out


def _drop_repeats(out: list[str], start: int, seps: list[int], as_set: bool) -> None:
    """Keep one of each element of the list from ``out[start]`` to the end: of each run of
    equal elements, or (``as_set``: an IN-list) of each distinct element, sorted."""
    bounds = [start, *seps, len(out) - 1]
    elements = [out[a + 1 : b] for a, b in pairwise(bounds)]
    if as_set:
        kept = [list(e) for e in sorted({tuple(e) for e in elements})]
    else:
        kept = [elements[0]]
        kept += [e for previous, e in pairwise(elements) if e != previous]
    if kept != elements:
        inner = kept[0]
        for element in kept[1:]:
            inner += [",", *element]
        out[start + 1 : -1] = inner


def _is_unary_context(prev: str) -> bool:
    return prev in _SIGN_WORDS or (prev[0] in _OPERATOR_START and prev != "?")


def _kind(out: list[str]) -> StatementKind:
    i = 0
    while i < len(out) and out[i] == "(":
        i += 1
    if i == len(out):
        return "other"
    head = out[i]
    if head == "with":
        depth = 0
        for j in range(i + 1, len(out)):
            tok = out[j]
            if tok == "(":
                depth += 1
            elif tok == ")":
                depth -= 1
            elif depth == 0 and tok in _DML and out[j - 1] == ")":
                return _KIND_WORDS[tok]
        return "other"
    return _KIND_WORDS.get(head, "other")


def _rewrite_names(out: list[str]) -> None:
    """Replace the names and modes in transaction and session statements by ``?``."""
    head = out[0]
    if head in ("end", "abort"):
        out[0] = head = "commit" if head == "end" else "rollback"
    if head in ("begin", "commit", "rollback") and out[1:2] in (["work"], ["transaction"]):
        del out[1]
    if head == "rollback" and "to" in out:
        del out[out.index("to") + 1 :]
        out += ["savepoint", "?"]
    elif head in ("savepoint", "listen", "unlisten", "close", "deallocate") and len(out) > 1:
        del out[1:]
        out.append("?")
    elif head == "release" and len(out) > 1:
        del out[1:]
        out += ["savepoint", "?"]
    elif head in ("declare", "prepare", "execute", "notify") and len(out) > 1:
        out[1] = "?"
        if head == "execute" and set(out[2:]) <= {"(", ")", "?", ","}:
            del out[2:]
    elif head in ("fetch", "move") and len(out) > 1:
        out[-1] = "?"
    elif head == "set" and out[1:2] != ["transaction"] and "characteristics" not in out:
        for i, tok in enumerate(out):
            if tok in ("=", "to"):
                out[i] = "="
                if out[i + 1 :] != ["default"]:
                    del out[i + 1 :]
                    out.append("?")
                return
        return
    if head in ("begin", "start", "set"):
        _rewrite_modes(out)


def _rewrite_modes(out: list[str]) -> None:
    """``ISOLATION LEVEL x``, ``READ ONLY|WRITE``, ``[NOT] DEFERRABLE``: the mode is a value."""
    i = 0
    while i < len(out):
        tok = out[i]
        if tok == "level" and i + 1 < len(out):
            width = 2 if out[i + 1] in ("read", "repeatable") else 1
            out[i + 1 : i + 1 + width] = ["?"]
        elif tok == "read" and out[i + 1 : i + 2] in (["only"], ["write"]):
            out[i + 1] = "?"
        elif tok == "not" and out[i + 1 : i + 2] == ["deferrable"]:
            del out[i]
        i += 1


_REWRITTEN = _words(
    "begin start commit end rollback abort savepoint release set declare close fetch move"
    " prepare execute deallocate listen unlisten notify"
)


def normalize(sql: str) -> tuple[str, StatementKind]:
    """Normalize ``sql`` (see the module docstring) and classify it.

    Never raises: on any failure the text is only lower-cased and its
    whitespace collapsed, and the kind is ``"other"``.
    """
    try:
        if len(sql) > MAX_CHARS:
            return _normalize_long(sql)
        out = _normalize_tokens(*_tokens(sql))
        kind = _kind(out)
        if out and out[0] in _REWRITTEN and ";" not in out:
            _rewrite_names(out)
        return " ".join(out), kind
    except Exception:  # noqa: BLE001 - fingerprinting must never raise
        return _fallback(sql[:MAX_CHARS] if isinstance(sql, str) else sql), "other"


def _normalize_long(sql: str) -> tuple[str, StatementKind]:
    """The first :data:`MAX_CHARS` characters, and what follows the last ``)`` near the end."""
    out = _close_cut(_normalize_tokens(*_tokens(sql[:MAX_CHARS])))
    kind = _kind(out)
    cut = sql.rfind(")", len(sql) - TAIL_CHARS)
    # No ")" near the end: a huge literal or name; its tail tells texts apart.
    out += _normalize_tokens(*_tokens(sql[cut + 1 :] if cut >= 0 else sql[-TAIL_CHARS:]))
    return " ".join(out), kind


_CLOSER = {"(": ")", "[": "]"}


def _close_cut(out: list[str]) -> list[str]:
    """Close the brackets a cut left open; drop a row of a ``VALUES`` list cut short."""
    stack: list[int] = []
    for i, tok in enumerate(out):
        if tok in _CLOSER:
            stack.append(i)
        elif tok in (")", "]") and stack:
            stack.pop()
    if not stack:
        return out
    first = stack[0]
    if first > 0 and out[first - 1] == ",":  # a row after others: drop it
        return out[: first - 1]
    return out + [_CLOSER[out[i]] for i in reversed(stack)]


def _fallback(sql: object) -> str:
    try:
        text = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else str(sql)
        return " ".join(text.split()).lower()
    except Exception:  # noqa: BLE001 - a str() that raises
        return f"<{type(sql).__name__}>"


#: Type names whose ``type 'literal'`` form needs a cast once the literal is a placeholder.
_TYPED_LITERAL = _words(
    "date time timestamp timestamptz interval json jsonb uuid inet cidr numeric decimal"
    " boolean bool text varchar char bytea money int int2 int4 int8 integer bigint smallint"
    " real float float4 float8 macaddr point"
)
_PYFORMAT = re.compile(r"%\([^()%\n]{0,200}\)[sbt]")
_FORMAT = re.compile(r"(?<![\w$%])%[sbt](?![\w$])")
_NUMERIC = re.compile(r"\$(\d+)")


def mask_literals(sql: str) -> str:
    """``sql`` with every literal value (string, number, dollar-quoted text) replaced
    by a placeholder, the rest kept as written; never raises.

    The placeholder follows the text's own style so the result can still be
    EXPLAINed with a generic plan: ``%(dbopt_literal_N)s`` next to ``%(name)s``
    placeholders, ``%s`` next to ``%s``, else ``$N`` numbered after the text's
    own ``$n``. A typed literal (``DATE '2024-01-01'``) becomes
    ``CAST($N AS date)``. Identifiers, comments and keywords are kept, so a
    comment that holds a value still shows it.
    """
    try:
        return _mask(sql)
    except Exception:  # noqa: BLE001 - never raise; say nothing rather than leak
        return normalize(sql)[0]


def _mask(sql: str) -> str:
    pattern = _TOKEN
    if "$" in sql and _DOLLAR_TAG.search(sql):
        pattern = _TOKEN_DOLLAR_TAGS
    if "\\'" in sql:
        pattern = _TOKEN_BACKSLASH
    if _PYFORMAT.search(sql):
        style = "pyformat"
    elif _FORMAT.search(sql):
        style = "format"
    else:
        style = "numeric"
    counter = max((int(n) for n in _NUMERIC.findall(sql)), default=0) if style == "numeric" else 0
    parts: list[str] = []
    pos = 0
    prev_start, prev_tok, before = -1, "", ""
    for match in pattern.finditer(sql):
        start, end = match.span(1)
        tok = match.group(1)
        first = tok[0]
        literal = (
            first == "'"
            or first.isdigit()
            or (first == "." and tok[1:2].isdigit())
            or (first == "$" and (tok.startswith("$$") or _DOLLAR_TAG.match(tok) is not None))
        )
        if not literal:
            before = prev_tok
            prev_start, prev_tok = start, tok
            continue
        if style == "pyformat":
            counter += 1
            holder = f"%(dbopt_literal_{counter})s"
        elif style == "format":
            holder = "%s"
        else:
            counter += 1
            holder = f"${counter}"
        low = prev_tok.lower()
        if first == "'" and low in _STRING_PREFIXES and prev_start + 1 == start:
            start = prev_start  # E'', B'', X'': the prefix goes with the string
        elif first == "'" and prev_start >= pos and low in _TYPED_LITERAL:
            start = prev_start
            holder = f"CAST({holder} AS {prev_tok})"
        elif (
            prev_tok == "-"
            and prev_start >= pos
            and (not before or _is_unary_context(before.lower()))
        ):
            start = prev_start  # a negative number: one value
        parts.append(sql[pos:start])
        parts.append(holder)
        pos = end
        prev_start, prev_tok, before = -1, "?", ""  # a value: a "-" after it subtracts
    parts.append(sql[pos:])
    return "".join(parts)


_CACHE_MAX = 8192
#: Total characters of cached statement texts: bounds the cache's memory.
_CACHE_MAX_CHARS = 16_000_000
_cache: dict[str, FingerprintInfo] = {}
_cache_chars = 0
_cache_lock = threading.Lock()


def _compute(sql: object) -> FingerprintInfo:
    normalized: str
    kind: StatementKind
    if isinstance(sql, str):
        normalized, kind = normalize(sql)
    else:  # bytes or a driver's SQL object, against the annotation: never raise
        normalized, kind = _fallback(sql), "other"
    data = normalized.encode("utf-8", "surrogatepass")
    return FingerprintInfo(hashlib.blake2b(data, digest_size=8).hexdigest(), normalized, kind)


#: The last text too long for the cache, and its info: every sink of one
#: statement gets the same str object, so an identity check finds it.
_last_long: tuple[object, FingerprintInfo | None] = (None, None)


def _miss(sql: str) -> FingerprintInfo:
    global _cache_chars, _last_long  # noqa: PLW0603 - the module-level cache
    last, last_info = _last_long
    if last is sql and last_info is not None:
        return last_info
    try:
        info = _compute(sql)
        size = len(sql)
    except Exception:  # noqa: BLE001 - unhashable or otherwise odd input
        return _compute(_fallback(sql))
    if size > _CACHE_MAX_CHARS // 8:
        _last_long = (sql, info)
        return info
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX or _cache_chars + size > _CACHE_MAX_CHARS:
            # Drop the oldest eighth: amortized O(1), no per-hit bookkeeping.
            for key in list(islice(_cache, _CACHE_MAX // 8)):
                if _cache.pop(key, None) is not None:
                    _cache_chars -= len(key)
        if sql not in _cache:
            _cache[sql] = info
            _cache_chars += size
    return info


def fingerprint_info(sql: str) -> FingerprintInfo:
    """Fingerprint, normalized text and kind of ``sql``; never raises.

    Cached by text: a text seen before costs one dict look-up. Texts over
    2 million characters are not kept (but the last one, by identity); their
    cost is bounded (see :data:`MAX_CHARS`).
    """
    try:
        info = _cache.get(sql)
    except TypeError:  # unhashable: not a str at all
        return _compute(_fallback(sql))
    if info is not None:
        return info
    return _miss(sql)


def fingerprint(sql: str) -> str:
    """A 16-hex-digit id shared by statements that differ only in values; never raises."""
    try:
        info = _cache.get(sql)
    except TypeError:  # unhashable: not a str at all
        info = None
    return (info or fingerprint_info(sql)).fingerprint
