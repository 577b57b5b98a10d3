"""Strict msgpack decoding of what a peer sends, and short echoes of bad values.

Every decoder of peer bytes in strangers (chat frames and inner messages in
:mod:`strangers.crypto.frames`, match frames in
:mod:`strangers.discovery.proposal`) goes through :func:`unpack_map`, so that
for *any* input it either returns a dict or raises
:class:`~strangers.errors.RemoteProtocolError`, never anything else:

* ``msgpack`` itself is bounded (``max_bin_len``, ``max_str_len``,
  ``max_array_len``, ``max_map_len``; no ext types) and each of its many
  exception types is turned into ``RemoteProtocolError``;
* string keys only, no duplicate keys, str as strict UTF-8;
* **nesting is bounded**: msgpack accepts containers 1024 levels deep, and
  such a value breaks any recursive Python code that touches it later
  (``repr``, ``==``, ``hash``: ``RecursionError``).  The decoded object is
  walked once, iteratively, and rejected if deeper than ``max_depth``
  (the top-level map is depth 1).  ``RecursionError`` from the decoder itself
  (the pure-Python fallback of msgpack recurses) is caught as well.

:func:`brief` is the one way to echo a peer's value in an error message: it
uses :mod:`reprlib`, which never recurses past a few levels and cuts long
strings, so it cannot fail or produce a 64 KiB message whatever the value.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import reprlib
from typing import Final

import msgpack

from strangers.errors import RemoteProtocolError

__all__ = ["MAX_DEPTH", "brief", "nesting_depth", "unpack_map"]

#: Deepest nesting any strangers message has: a map holding a list of strings is depth 2.
MAX_DEPTH: Final = 2

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlong = 40


def brief(value: object) -> str:
    """``repr(value)``, cut short and recursion-free.

    Lists, tuples, dicts and sets (the values that can nest) go through
    :mod:`reprlib` (two levels, six items each), so a list nested 1000 deep
    is echoed as ``[[...]]``.  Anything else longer than 80 characters of repr
    becomes its first 60 and ``...``, with `` of length N`` for str and bytes.
    """
    if isinstance(value, list | tuple | dict | set | frozenset):
        return _REPR.repr(value)
    text = repr(value)
    if len(text) <= 80:
        return text
    size = f" of length {len(value)}" if isinstance(value, bytes | bytearray | str) else ""
    return f"{text[:60]}...{size}"


def nesting_depth(obj: object, limit: int) -> int:
    """How deep ``obj``'s lists and dicts nest (a scalar is 0), counted up to ``limit + 1``.

    Iterative, so a value nested a thousand levels deep costs no Python recursion.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _no_ext(code: int, data: bytes) -> object:
    raise ValueError(f"ext type {code} is not allowed")


def _no_duplicates(pairs: list[tuple[object, object]]) -> dict[object, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a map has a duplicate key")
    return result


def unpack_map(
    data: bytes,
    *,
    what: str,
    max_bytes: int,
    max_container: int,
    max_map: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> dict[object, object]:
    """Decode ``data`` as exactly one msgpack map from the peer.

    ``what`` names the thing in error messages ("frame", "message"...);
    ``max_bytes`` bounds each str and bin, ``max_container`` each array and
    map (``max_map`` each map, if given), ``max_depth`` the nesting.  Raises :class:`RemoteProtocolError` for
    anything else, whatever the bytes.
    """
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            object_pairs_hook=_no_duplicates,
            ext_hook=_no_ext,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=max_container,
            max_map_len=max_container if max_map is None else max_map,
            max_ext_len=0,
        )
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise RemoteProtocolError(
            f"the stranger sent a {what} that is not valid msgpack: {brief(str(exc))}"
        ) from None
    if type(obj) is not dict:
        raise RemoteProtocolError(f"the stranger sent a {what} that is not a map: {brief(obj)}")
    if nesting_depth(obj, max_depth) > max_depth:
        raise RemoteProtocolError(
            f"the stranger sent a {what} nested more than {max_depth} levels deep"
        )
    return obj
