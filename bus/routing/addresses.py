"""IP addresses in patterns: `cidr` ranges and plain values that spell an address.

An address literal in a pattern matches the same address however the event spells it
(`::1` and `0:0::1`); a CIDR range runs from the address as written, as AWS's does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from bus.routing.errors import PatternError

_IPV4_SHAPE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_SHAPE = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = tuple[int, int, int]  # (version, lowest, highest)


def ip_if_possible(text: str) -> Address | None:
    """The address `text` spells, if it has the shape of an IPv4 or IPv6 literal."""
    if not (_IPV4_SHAPE.fullmatch(text) or _IPV6_SHAPE.fullmatch(text)):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def compile_cidr(text: str) -> Network:
    """Parse `a.b.c.d/n` with AWS's messages; the range runs from the address as written."""
    pieces = text.split("/")
    while len(pieces) > 1 and not pieces[-1]:
        pieces.pop()  # split as Java does: trailing empty pieces are dropped
    if len(pieces) != 2:
        raise PatternError("Malformed CIDR, one '/' required")
    address_text, mask_text = pieces
    try:
        mask = int(mask_text)
    except ValueError:
        raise PatternError("Malformed CIDR, mask bits must be an integer") from None
    if mask < 0:
        raise PatternError("Malformed CIDR, mask bits must not be negative")
    shaped = _IPV4_SHAPE.fullmatch(address_text) or _IPV6_SHAPE.fullmatch(address_text)
    if not shaped:
        raise PatternError(f"Nonstandard IP address: {address_text}")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        raise PatternError(f"Invalid IP address: {address_text}") from None
    if address.version == 4 and mask > 31:
        raise PatternError("IPv4 mask bits must be < 32")
    if address.version == 6 and mask > 127:
        raise PatternError("IPv6 mask bits must be < 128")
    host_bits = address.max_prefixlen - mask
    lowest = int(address)
    return (address.version, lowest, lowest | ((1 << host_bits) - 1))


def in_network(network: Network) -> Callable[[str], bool]:
    version, lowest, highest = network

    def test(value: str) -> bool:
        address = ip_if_possible(value)
        return (
            address is not None and address.version == version and lowest <= int(address) <= highest
        )

    return test


def ip_equals(expected: Address) -> Callable[[str], bool]:
    return lambda value: ip_if_possible(value) == expected
