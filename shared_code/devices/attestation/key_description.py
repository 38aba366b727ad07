"""The Android KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17), parsed tag by tag.

Schema: source.android.com/docs/security/features/keystore/attestation#schema (KeyMint tags:
``hardware/interfaces/security/keymint/aidl/.../Tag.aidl``). The result has the shape of the
JSON beside each chain in Google's ``android/keyattestation`` test data: camelCase names,
integers as decimal strings, byte strings as standard base64, enums by name, absent fields
omitted. For example::

    {"attestationVersion": "300", "attestationSecurityLevel": "TRUSTED_ENVIRONMENT",
     "keyMintVersion": "300", "keyMintSecurityLevel": "TRUSTED_ENVIRONMENT",
     "attestationChallenge": "Y2hhbGxlbmdl", "uniqueId": "",
     "softwareEnforced": {"creationDateTime": "1727389885586", "attestationApplicationId": {...}},
     "hardwareEnforced": {"purposes": ["2"], "origin": "GENERATED", "rootOfTrust": {...}, ...}}

Robustness rules (real devices break the schema): tags may come in any order; tags this parser
does not know are skipped and listed under ``unknownTags``; a tag repeated with SET values is
merged, a repeated scalar tag is refused; ``deviceLocked`` may be a BER boolean (any non-zero
octet is true).
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from shared_code.devices.attestation import asn1_walk as asn1
from shared_code.devices.attestation.asn1_walk import Asn1Error

OID = "1.3.6.1.4.1.11129.2.1.17"

SECURITY_LEVELS = {0: "SOFTWARE", 1: "TRUSTED_ENVIRONMENT", 2: "STRONG_BOX"}
ORIGINS = {0: "GENERATED", 1: "DERIVED", 2: "IMPORTED", 3: "RESERVED", 4: "SECURELY_IMPORTED"}
VERIFIED_BOOT_STATES = {0: "VERIFIED", 1: "SELF_SIGNED", 2: "UNVERIFIED", 3: "FAILED"}


class KeyDescriptionError(ValueError):
    """The extension is not a KeyDescription this parser can read (the message says why)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int_set(element: asn1.Tlv) -> list[int]:
    return [asn1.integer(item) for item in asn1.children(element, asn1.TAG_SET)]


def _int(element: asn1.Tlv) -> str:
    return str(asn1.integer(element))


def _flag(element: asn1.Tlv) -> bool:
    asn1.expect(element, asn1.TAG_NULL)
    return True


def _utf8(element: asn1.Tlv) -> str:
    try:
        return asn1.octets(element).decode("utf-8")
    except UnicodeDecodeError:
        raise Asn1Error("attestation id is not UTF-8") from None


def _named(names: dict[int, str]) -> Callable[[asn1.Tlv], str]:
    def parse(element: asn1.Tlv) -> str:
        value = asn1.integer(element)
        if value not in names:
            raise Asn1Error(f"unknown value {value}")
        return names[value]
    return parse


def _root_of_trust(element: asn1.Tlv) -> dict[str, Any]:
    items = asn1.children(element)
    if len(items) not in (3, 4):
        raise Asn1Error("RootOfTrust has 3 or 4 fields")
    state = asn1.enumerated(items[2])
    if state not in VERIFIED_BOOT_STATES:
        raise Asn1Error(f"unknown verifiedBootState {state}")
    result = {"verifiedBootKey": _b64(asn1.octets(items[0])), "deviceLocked": asn1.boolean(items[1]),
              "verifiedBootState": VERIFIED_BOOT_STATES[state]}
    if len(items) == 4:
        result["verifiedBootHash"] = _b64(asn1.octets(items[3]))
    return result


def _application_id(element: asn1.Tlv) -> dict[str, Any]:
    """AttestationApplicationId, DER inside the OCTET STRING: SEQUENCE { SET OF
    AttestationPackageInfo {packageName OCTET STRING, version INTEGER}, SET OF OCTET STRING }."""
    items = asn1.children(asn1.parse_one(asn1.octets(element)))
    if len(items) != 2:
        raise Asn1Error("AttestationApplicationId has 2 fields")
    packages = []
    for info in asn1.children(items[0], asn1.TAG_SET):
        name, version = asn1.children(info)
        packages.append({"name": _utf8(name), "version": _int(version)})
    signatures = [_b64(asn1.octets(item)) for item in asn1.children(items[1], asn1.TAG_SET)]
    return {"packages": sorted(packages, key=lambda p: (p["name"], p["version"])), "signatures": sorted(signatures)}


# tag -> (JSON name, parser, is a SET)
_TAGS: dict[int, tuple[str, Callable[[asn1.Tlv], Any], bool]] = {
    1: ("purposes", _int_set, True), 2: ("algorithms", _int, False), 3: ("keySize", _int, False),
    4: ("blockModes", _int_set, True), 5: ("digests", _int_set, True), 6: ("paddings", _int_set, True),
    10: ("ecCurve", _int, False), 11: ("mlDsaVariant", _int, False), 200: ("rsaPublicExponent", _int, False),
    203: ("rsaOaepMgfDigests", _int_set, True), 400: ("activeDateTime", _int, False),
    401: ("originationExpireDateTime", _int, False), 402: ("usageExpireDateTime", _int, False),
    405: ("usageCountLimit", _int, False), 503: ("noAuthRequired", _flag, False), 504: ("userAuthType", _int, False),
    505: ("authTimeout", _int, False), 506: ("allowWhileOnBody", _flag, False),
    507: ("trustedUserPresenceRequired", _flag, False), 508: ("trustedConfirmationRequired", _flag, False),
    509: ("unlockedDeviceRequired", _flag, False), 701: ("creationDateTime", _int, False),
    702: ("origin", _named(ORIGINS), False), 703: ("rollbackResistant", _flag, False),
    704: ("rootOfTrust", _root_of_trust, False), 705: ("osVersion", _int, False), 706: ("osPatchLevel", _int, False),
    709: ("attestationApplicationId", _application_id, False), 710: ("attestationIdBrand", _utf8, False),
    711: ("attestationIdDevice", _utf8, False), 712: ("attestationIdProduct", _utf8, False),
    713: ("attestationIdSerial", _utf8, False), 714: ("attestationIdImei", _utf8, False),
    715: ("attestationIdMeid", _utf8, False), 716: ("attestationIdManufacturer", _utf8, False),
    717: ("attestationIdModel", _utf8, False), 718: ("vendorPatchLevel", _int, False),
    719: ("bootPatchLevel", _int, False), 720: ("deviceUniqueAttestation", _flag, False),
    723: ("attestationIdSecondImei", _utf8, False), 724: ("moduleHash", lambda e: _b64(asn1.octets(e)), False),
}


def _authorization_list(element: asn1.Tlv, where: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    sets: dict[str, set[int]] = {}
    unknown: list[int] = []
    for item in asn1.children(element):
        if item.class_ != asn1.CONTEXT or not item.constructed:
            raise Asn1Error(f"{where}: every entry must be an EXPLICIT context tag")
        if item.tag not in _TAGS:
            unknown.append(item.tag)
            continue
        name, parse, is_set = _TAGS[item.tag]
        try:
            value = parse(asn1.explicit(item, item.tag))
        except Asn1Error as exc:
            raise Asn1Error(f"{where}.{name}: {exc}") from None
        if is_set:
            sets.setdefault(name, set()).update(value)  # a repeated SET-valued tag is merged
        elif name in result:
            raise Asn1Error(f"{where}.{name}: the tag is repeated")
        else:
            result[name] = value
    for name, values in sets.items():
        result[name] = [str(value) for value in sorted(values)]
    if unknown:
        result["unknownTags"] = sorted(set(unknown))
    return result


def parse_key_description(extension_value: bytes) -> dict[str, Any]:
    """Parse the DER ``extension_value`` (the extnValue contents) into the JSON shape above.

    Raises :class:`KeyDescriptionError` naming the field that does not parse.
    """
    try:
        items = asn1.children(asn1.parse_one(extension_value))
        if len(items) != 8:
            raise Asn1Error(f"KeyDescription has 8 fields, found {len(items)}")
        levels = []
        for index in (1, 3):
            level = asn1.enumerated(items[index])
            if level not in SECURITY_LEVELS:
                raise Asn1Error(f"unknown security level {level}")
            levels.append(SECURITY_LEVELS[level])
        return {
            "attestationVersion": _int(items[0]),
            "attestationSecurityLevel": levels[0],
            "keyMintVersion": _int(items[2]),
            "keyMintSecurityLevel": levels[1],
            "attestationChallenge": _b64(asn1.octets(items[4])),
            "uniqueId": _b64(asn1.octets(items[5])),
            "softwareEnforced": _authorization_list(items[6], "softwareEnforced"),
            "hardwareEnforced": _authorization_list(items[7], "hardwareEnforced"),
        }
    except Asn1Error as exc:
        raise KeyDescriptionError(str(exc)) from None
