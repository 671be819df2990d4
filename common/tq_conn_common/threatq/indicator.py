"""Reading a ThreatQ indicator: the shapes ThreatQ sends differ by endpoint and version (reference sections 3, 5)."""

from typing import Any, TypedDict, Union

import msgspec

# An indicator as the client hands it over: the fields that are read (here, by the client and by the exporter) as
# msgspec Structs, decoded straight from a page (http.loads_as): fields not named are skipped, which is about a third
# of the work of decoding them whole, and an attribute is read without a dict lookup. A field added to what is read
# must be added here, or it reads as None. Each field that has a type takes every JSON value (an object as the
# Struct named, anything else as it came), so an odd shape never fails the page: the readers below judge it.
_OTHER = Union[str, int, float, bool, None, list]   # any JSON value but an object
_NOT_A_LIST = Union[dict, str, int, float, bool, None]   # any JSON value but an array


class Named(msgspec.Struct, gc=False):
    """A type, a status or an adversary sent as an object."""
    name: Any = None


class Score(msgspec.Struct, gc=False):
    """A score sent as an object."""
    manual_score: Any = None
    generated_score: Any = None


class Attribute(msgspec.Struct, gc=False):
    """An attribute of an indicator, named by name or by its attribute object."""
    name: Any = None
    attribute: Union[Named, _OTHER] = None
    value: Any = None


class Indicator(msgspec.Struct, gc=False):   # gc=False: trees decoded from JSON, without cycles
    """An indicator of a Threat Library answer (reference sections 3, 5), the fields read."""
    id: Any = None
    value: Any = None
    type: Union[Named, _OTHER] = None
    type_id: Any = None
    status: Union[Named, _OTHER] = None
    status_id: Any = None
    score: Union[Score, _OTHER] = None
    attributes: Union[list[Union[Attribute, _OTHER]], _NOT_A_LIST] = None
    adversaries: Union[list[Union[Named, _OTHER]], _NOT_A_LIST] = None
    created_at: Any = None
    updated_at: Any = None
    touched_at: Any = None


class Page(TypedDict, total=False):
    """A page of indicators as the Threat Library's query endpoints send it (the last may hold data {})."""
    data: Union[list[Union[Indicator, _OTHER]], _NOT_A_LIST]
    total: Any
    nextCursorMark: Any
    errors: Any


def as_indicator(value):
    """Return an indicator decoded as a plain dict (a body msgspec refused: NaN, a lone surrogate) as an Indicator;
    any other value as it is."""
    return msgspec.convert(value, Indicator) if type(value) is dict else value


def name_of(value):
    """Return the name of a type or status, sent as an object (Named) or (with fields=) as a plain string; None if
    odd."""
    if type(value) is Named:
        value = value.name
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
    value = indicator.score
    if type(value) is Score:
        manual = value.manual_score
        value = manual if manual not in (None, "") else value.generated_score
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
    items = indicator.attributes
    if type(items) is not list:
        return found
    for item in items:
        if type(item) is not Attribute:
            continue
        name = item.name or name_of(item.attribute)
        if type(name) is not str:
            continue
        values = found.get(name)
        if values is None:
            continue
        value = item.value
        value = value.strip() if type(value) is str else text_of(value)   # (the usual text without a call)
        if value:
            values.append(value)
    return found


def adversaries(indicator):
    """Return the names of the indicator's related adversary objects (empty or malformed names left out)."""
    items = indicator.adversaries
    if type(items) is not list:
        return []
    names = []
    for item in items:
        name = text_of(item.name if type(item) is Named else item)
        if name:
            names.append(name)
    return names


def adversary_count(indicator):
    """Return how many related adversary objects the indicator lists (0 if the list is absent or malformed)."""
    items = indicator.adversaries
    return len(items) if type(items) is list else 0


def unique(values):
    """Return values without repeats, first occurrence kept."""
    return list(dict.fromkeys(values))


__all__ = ["Indicator", "Named", "Score", "Attribute", "Page", "as_indicator", "name_of", "text_of", "score",
           "attribute_values", "attributes_by_name", "adversaries", "adversary_count", "unique"]
