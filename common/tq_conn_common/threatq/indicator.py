"""Reading a ThreatQ indicator: the shapes ThreatQ sends differ by endpoint and version (reference sections 3, 5)."""

from typing import Any, TypedDict, Union


# The fields of an indicator that are read (here, by the client and by the exporter), as a page of them is decoded
# (http.loads_as): only these are kept, which halves the decoding of a page. A field added to what is read must be
# added here, or it reads as missing. Each type takes every shape the readers take; any other decodes the page whole.
class _Named(TypedDict, total=False):
    name: Any


class _Score(TypedDict, total=False):
    manual_score: Any
    generated_score: Any


class _Attribute(TypedDict, total=False):
    name: Any
    attribute: Any
    value: Any


_NAME = Union[_Named, str, int, float, None]


class Indicator(TypedDict, total=False):
    id: Any
    value: Any
    type: _NAME
    type_id: Any
    status: _NAME
    status_id: Any
    score: Union[_Score, str, int, float, None]
    attributes: Union[list[_Attribute], None]
    adversaries: Union[list[_NAME], None]
    created_at: Any
    updated_at: Any
    touched_at: Any


class Page(TypedDict, total=False):
    """A page of indicators as the Threat Library's query endpoints send it."""
    data: list[Indicator]
    total: Any
    nextCursorMark: Any
    errors: Any


def name_of(value):
    """Return the name of a type or status, sent as an object or (with fields=) as a plain string; None if odd."""
    if type(value) is dict:
        value = value.get("name")
    if type(value) is str or value is None:
        return value   # as sent, not trimmed
    return text_of(value)   # a number written, anything else None


def text_of(value):
    """Return a value sent as text (trimmed) or as a number (not a boolean; written as str() writes it); None for
    any other value. An attribute's value, an adversary's name and an indicator's value are read so."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def score(indicator):
    """Return the indicator's effective score as a number: manual if set, else generated; None if absent or odd."""
    value = indicator.get("score")
    if isinstance(value, dict):
        manual = value.get("manual_score")
        value = manual if manual not in (None, "") else value.get("generated_score")
    if value is None or value == "" or isinstance(value, (dict, list, bool)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if number.is_integer() else number


def attribute_values(indicator, *names):
    """Return the values of the attributes with these exact names, in the order of names, empty ones left out."""
    found = attributes_by_name(indicator, names)
    return [value for name in names for value in found[name]]


def attributes_by_name(indicator, names):
    """Return {name: [values]} of the attributes with these exact names, in one pass, empty values left out.

    Runs once per indicator on the export's hot path, so malformed shapes are caught by cheap type checks: attributes
    that are not a list read as none, and an entry that is not an object, or whose name is not text or whose value
    is not text or a number (text_of), is left out.
    """
    found = {name: [] for name in names}
    items = indicator.get("attributes")
    if type(items) is not list:
        return found
    for item in items:
        if type(item) is not dict:
            continue
        name = item.get("name") or name_of(item.get("attribute"))
        if type(name) is not str:
            continue
        values = found.get(name)
        if values is None:
            continue
        value = item.get("value")
        value = value.strip() if type(value) is str else text_of(value)   # (the usual text without a call)
        if value:
            values.append(value)
    return found


def adversaries(indicator):
    """Return the names of the indicator's related adversary objects (empty or malformed names left out)."""
    items = indicator.get("adversaries")
    if type(items) is not list:
        return []
    names = []
    for item in items:
        name = text_of(item.get("name") if type(item) is dict else item)
        if name:
            names.append(name)
    return names


def adversary_count(indicator):
    """Return how many related adversary objects the indicator lists (0 if the list is absent or malformed)."""
    items = indicator.get("adversaries")
    return len(items) if type(items) is list else 0


def unique(values):
    """Return values without repeats, first occurrence kept."""
    return list(dict.fromkeys(values))


__all__ = ["Indicator", "Page", "name_of", "text_of", "score", "attribute_values", "attributes_by_name", "adversaries",
           "adversary_count", "unique"]
