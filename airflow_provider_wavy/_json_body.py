"""
Read an HTTP answer's JSON body strictly and within bounds, failing with one plain reason.

The Wavy API answers a flat object (``{"file_url": "..."}``, or ``{"errorCode": ..., "errorMessage": ...}``).
Anything far from that shape is refused before or while decoding, with a reason a message can quote:

- the body must be UTF-8 (RFC 8259, section 8.1); a UTF-8 byte order mark is tolerated;
- nesting deeper than :data:`MAX_JSON_DEPTH` is refused by a linear pre-scan, so the limit is the
  provider's own and not what is left of the interpreter's recursion budget (the C decoder raises
  ``RecursionError`` at that budget, which varies with the caller's stack); a ``RecursionError`` from the
  decoder is still caught, as a last line of defence;
- numbers longer than :data:`MAX_NUMBER_CHARS` are refused before conversion (``int()`` of a long digit
  string costs quadratic time when ``sys.set_int_max_str_digits(0)`` lifted Python's own limit);
- ``NaN``/``Infinity`` (not JSON) and a key repeated in one object (which value wins is ambiguous) are
  refused.

CPU stays linear in the body's size, which the transports cap.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, Final

#: A real answer nests one or two levels; far deeper means it is not the Wavy API.
MAX_JSON_DEPTH: Final = 32
#: Longer than any real number (a 64-bit integer has 20 characters).
MAX_NUMBER_CHARS: Final = 100
#: Presigned storage URLs run to a few kilobytes; common servers refuse request lines over 8 KiB.
MAX_FILE_URL_CHARS: Final = 8192

# A JSON string, or an unterminated one running to the end of the text (optionally ending in a lone
# backslash): once started at a quote it always matches, so removing strings is one linear pass.
_STRING: Final = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]++")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonBodyError(ValueError):
    """The body is not JSON the provider reads; the message is a short reason, fit to quote."""


def json_type(value: Any) -> str:
    """
    Name a decoded value's JSON type, as a reader of the API documentation would.

    :param value: a value :func:`load_json` returned.
    """
    if isinstance(value, bool):
        return "true or false"
    names = {dict: "object", list: "array", str: "string", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def load_json(body: bytes) -> Any:
    """
    Decode a JSON body, strictly and in linear time.

    :param body: the whole body (already capped by the transport).
    :raises JsonBodyError: the body is not UTF-8, not JSON, or JSON this provider refuses; the message
        says which, in a few words.
    """
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise JsonBodyError("UTF-16 text (it starts with a UTF-16 byte order mark), JSON must be UTF-8")
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise JsonBodyError(f"not UTF-8: byte 0x{body[error.start]:02x} at offset {error.start}") from None
    if _too_deep(text):
        raise JsonBodyError(f"nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except JsonBodyError:
        raise
    except json.JSONDecodeError as error:
        raise JsonBodyError(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:  # not reached while MAX_JSON_DEPTH is far below the recursion limit
        raise JsonBodyError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as error:
        raise JsonBodyError(f"unreadable JSON ({type(error).__name__})") from None


def _too_deep(text: str) -> bool:
    """Tell whether brackets outside strings nest deeper than :data:`MAX_JSON_DEPTH`."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False  # the common case: no scan at all
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_JSON_DEPTH


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                shown = key if len(key) <= 40 else f"{key[:40]}..."
                raise JsonBodyError(f"the key {shown!r} appears twice in one object")
            seen.add(key)
    return document


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonBodyError(f"a number of {len(text):,} digits (at most {MAX_NUMBER_CHARS} are read)")
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    return float(_number(text))


def _constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON value")


__all__ = [
    "MAX_FILE_URL_CHARS",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_CHARS",
    "JsonBodyError",
    "json_type",
    "load_json",
]
