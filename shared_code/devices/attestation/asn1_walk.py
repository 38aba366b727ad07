"""A schema-free walk over DER (and the BER that real devices emit) on asn1crypto's parser.

Real Android KeyDescriptions carry tags newer than every published ASN.1 schema, tags out of
order and BER booleans, so they are read element by element (X.690 §8: identifier, length,
contents) rather than against a fixed schema. Values are decoded by asn1crypto's universal
types; nothing here interprets bytes by hand beyond choosing which type to load.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import core, parser

UNIVERSAL, CONTEXT = 0, 2
TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_NULL, TAG_ENUMERATED, TAG_SEQUENCE, TAG_SET = 1, 2, 4, 5, 10, 16, 17


class Asn1Error(ValueError):
    """The bytes are not the ASN.1 structure expected (the message says where)."""


@dataclass(frozen=True)
class Tlv:
    """One element: class (0 universal, 2 context), constructed flag, tag number, contents."""

    class_: int
    constructed: bool
    tag: int
    contents: bytes


def parse_one(data: bytes) -> Tlv:
    """The single element ``data`` encodes; raises :class:`Asn1Error` on garbage or trailing bytes."""
    elements = parse_all(data)
    if len(elements) != 1:
        raise Asn1Error(f"expected one element, found {len(elements)}")
    return elements[0]


def parse_all(data: bytes) -> list[Tlv]:
    """Every element encoded back to back in ``data`` (the contents of a SEQUENCE or SET)."""
    elements: list[Tlv] = []
    offset = 0
    while offset < len(data):
        try:
            class_, method, tag, header, contents, trailer = parser.parse(data[offset:])
        except ValueError as exc:
            raise Asn1Error(f"malformed element at byte {offset}: {exc}") from None
        elements.append(Tlv(class_, method == 1, tag, contents))
        offset += len(header) + len(contents) + len(trailer)
    return elements


def children(element: Tlv, tag: int = TAG_SEQUENCE) -> list[Tlv]:
    """The elements inside a universal constructed ``element`` of ``tag`` (SEQUENCE by default)."""
    expect(element, tag, constructed=True)
    return parse_all(element.contents)


def expect(element: Tlv, tag: int, *, constructed: bool = False, class_: int = UNIVERSAL) -> None:
    """Raise :class:`Asn1Error` unless ``element`` has this class, tag and form."""
    if element.class_ != class_ or element.tag != tag or element.constructed != constructed:
        raise Asn1Error(f"expected {'context' if class_ == CONTEXT else 'universal'} tag {tag}, "
                        f"found class {element.class_} tag {element.tag}")


def integer(element: Tlv) -> int:
    """An INTEGER's value."""
    expect(element, TAG_INTEGER)
    return core.Integer(contents=element.contents).native


def enumerated(element: Tlv) -> int:
    """An ENUMERATED's value (same content encoding as INTEGER, X.690 §8.4)."""
    expect(element, TAG_ENUMERATED)
    return core.Integer(contents=element.contents).native


def octets(element: Tlv) -> bytes:
    """An OCTET STRING's bytes (primitive form)."""
    expect(element, TAG_OCTET_STRING)
    return core.OctetString(contents=element.contents).native


def boolean(element: Tlv) -> bool:
    """A BOOLEAN: false for a zero octet, true otherwise (BER, X.690 §8.2.2; DER requires 0xFF)."""
    expect(element, TAG_BOOLEAN)
    if len(element.contents) != 1:
        raise Asn1Error("a BOOLEAN has exactly one content octet")
    return bool(core.Boolean(contents=element.contents))


def explicit(element: Tlv, tag: int) -> Tlv:
    """The one element inside the context-specific EXPLICIT tag ``[tag]``."""
    expect(element, tag, constructed=True, class_=CONTEXT)
    return parse_one(element.contents)
