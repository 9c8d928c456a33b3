"""Events the users domain publishes, and the e-mail address rule every identity domain
keys on: the only module other domains may import."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, StringConstraints

from bus.messages import Event

Plan = Literal["free", "pro", "business"]

#: Longest address SMTP carries (RFC 5321's 256-octet path less its angle brackets).
MAX_EMAIL_LENGTH = 254
#: Longest local part (RFC 5321 4.5.3.1.1).
MAX_LOCAL_PART_LENGTH = 64
MAX_NAME_LENGTH = 200
#: Bidirectional overrides and isolates: invisible, and able to make a name read backwards.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(text: str) -> bool:
    """Whether `text` holds a control character (NUL, ESC of an ANSI escape, CR, LF, ...) or
    a bidirectional override."""
    return any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in text)


def normalize_email(value: str) -> str:
    """The one spelling of an address that uniqueness, sign-in and reset all key on:
    lower-cased, NFC, the domain's trailing dot dropped and its labels IDNA-encoded.
    `ValueError` for anything that cannot be an address."""
    import idna

    if has_control_characters(value) or any(c.isspace() for c in value):
        raise ValueError("an e-mail address holds no spaces or control characters")
    local, at, domain = unicodedata.normalize("NFC", value).rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise ValueError("an e-mail address is local-part@domain")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        raise ValueError(f"the part before @ is at most {MAX_LOCAL_PART_LENGTH} characters")
    domain = domain.removesuffix(".")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValueError(f"the domain is not a valid host name ({error})") from None
    if "." not in ascii_domain:
        raise ValueError("the domain needs a dot (name.tld)")
    address = f"{local.lower()}@{ascii_domain}"
    if len(address) > MAX_EMAIL_LENGTH:
        raise ValueError(f"an e-mail address is at most {MAX_EMAIL_LENGTH} characters")
    return address


def _display_name(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("a name holds no control characters")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ValueError("a name is not empty or only spaces")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a name is at most {MAX_NAME_LENGTH} characters")
    return name


#: Longer text is refused before it is normalised (normalising costs time in its length).
MAX_RAW_TEXT_LENGTH = 4 * MAX_EMAIL_LENGTH


def _text(value: object) -> object:
    if isinstance(value, str) and len(value) > MAX_RAW_TEXT_LENGTH:
        raise ValueError(f"at most {MAX_RAW_TEXT_LENGTH} characters")
    return value


#: A BCP 47 language tag as a person's locale (`en`, `de-AT`, `sr-Latn-RS`): language,
#: optional script, region and variants (RFC 5646's langtag; no extensions).
Locale = Annotated[
    str,
    StringConstraints(
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?"
        r"(-([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$",
    ),
]
DEFAULT_LOCALE = "en"

#: An e-mail address as accepted from a caller: normalised, so equal addresses are equal.
EmailAddress = Annotated[str, BeforeValidator(_text), AfterValidator(normalize_email)]
#: A person's name as shown: trimmed, not empty, no control characters.
DisplayName = Annotated[str, BeforeValidator(_text), AfterValidator(_display_name)]


class UserCreated(Event):
    """A person signed up."""

    type = "USER_CREATED"
    version = 2

    user_id: str
    email: str
    name: str
    plan: Plan = "free"
    #: The user's BCP 47 locale; events from before it existed read as English.
    locale: str = DEFAULT_LOCALE


@UserCreated.upcaster(from_version=1)
def _split_display_name(data: dict[str, object]) -> dict[str, object]:
    """Version 1 called the name `display_name`."""
    data["name"] = data.pop("display_name", "")
    return data


class UserUpdated(Event):
    """A user's profile changed; the fields are its state after the change."""

    type = "USER_UPDATED"

    user_id: str
    email: str
    name: str
    plan: Plan
    locale: str = DEFAULT_LOCALE


class UserDeleted(Event):
    """A user deleted their account: every domain keeping a projection of them erases it."""

    type = "USER_DELETED"

    user_id: str
