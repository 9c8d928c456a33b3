"""The e-mails' words in each language, and choosing the language for a BCP 47 locale.

A locale is matched by its primary language subtag (`de-AT` reads German); a language with
no templates reads English. Values are filled with `str.format_map`; every value a template
names is given by the handler that sends it.
"""

from __future__ import annotations

from dataclasses import dataclass

from domains.messaging_consumers.contracts import Template

FALLBACK = "en"


@dataclass(frozen=True, slots=True)
class Wording:
    subject: str
    text: str


TEMPLATES: dict[str, dict[Template, Wording]] = {
    "en": {
        "welcome": Wording(
            "Welcome, {name}",
            "Hello {name},\n\nwelcome aboard. Your account is ready.\n",
        ),
        "set-password": Wording(
            "Choose your password",
            "Hello {name},\n\nchoose your password here (the link works once):\n{link}\n",
        ),
        "reset-password": Wording(
            "Reset your password",
            "Hello {name},\n\nsomeone asked to reset your password. If it was you, follow "
            "this link (it works once):\n{link}\n\nIf not, ignore this e-mail.\n",
        ),
        "account-locked": Wording(
            "Your account is locked",
            "Hello {name},\n\nafter too many failed sign-ins your account is locked until "
            "{until}. If that was not you, reset your password.\n",
        ),
        "receipt": Wording(
            "Receipt for invoice {invoice_id}",
            "Hello {name},\n\nthank you: we received {amount} for invoice {invoice_id} on "
            "{paid_at}.\n",
        ),
        "payment-failed": Wording(
            "Your payment failed",
            "Hello {name},\n\nwe could not collect {amount} for invoice {invoice_id} "
            "({decline_code}). {next_step}\n",
        ),
        "achievement": Wording(
            "Achievement unlocked: {title}",
            "Hello {name},\n\nyou unlocked \u201c{title}\u201d. Well done!\n",
        ),
    },
    "de": {
        "welcome": Wording(
            "Willkommen, {name}",
            "Hallo {name},\n\nwillkommen an Bord. Dein Konto ist bereit.\n",
        ),
        "set-password": Wording(
            "W\u00e4hle dein Passwort",
            "Hallo {name},\n\nw\u00e4hle hier dein Passwort (der Link gilt einmal):\n{link}\n",
        ),
        "reset-password": Wording(
            "Passwort zur\u00fccksetzen",
            "Hallo {name},\n\njemand m\u00f6chte dein Passwort zur\u00fccksetzen. Warst du es, "
            "folge diesem Link (er gilt einmal):\n{link}\n\nSonst ignoriere diese E-Mail.\n",
        ),
        "account-locked": Wording(
            "Dein Konto ist gesperrt",
            "Hallo {name},\n\nnach zu vielen fehlgeschlagenen Anmeldungen ist dein Konto bis "
            "{until} gesperrt. Warst du das nicht, setze dein Passwort zur\u00fcck.\n",
        ),
        "receipt": Wording(
            "Quittung f\u00fcr Rechnung {invoice_id}",
            "Hallo {name},\n\ndanke: wir haben {amount} f\u00fcr Rechnung {invoice_id} am "
            "{paid_at} erhalten.\n",
        ),
        "payment-failed": Wording(
            "Deine Zahlung ist fehlgeschlagen",
            "Hallo {name},\n\nwir konnten {amount} f\u00fcr Rechnung {invoice_id} nicht "
            "einziehen ({decline_code}). {next_step}\n",
        ),
        "achievement": Wording(
            "Erfolg freigeschaltet: {title}",
            "Hallo {name},\n\ndu hast \u201e{title}\u201c freigeschaltet. Gut gemacht!\n",
        ),
    },
}

#: Sentences a handler picks and passes as a value, in each language.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "retry": "We will try again on {when}.",
        "final": "That was the last attempt: your subscription ends.",
    },
    "de": {
        "retry": "Wir versuchen es am {when} erneut.",
        "final": "Das war der letzte Versuch: dein Abonnement endet.",
    },
}

#: Minor units per major unit, by ISO 4217 code, where it is not 100.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "BHD": 3, "KWD": 3, "JOD": 3}


def language(locale: str) -> str:
    """The templates' language for a BCP 47 locale: its primary subtag if written, else en."""
    primary = locale.split("-", 1)[0].lower()
    return primary if primary in TEMPLATES else FALLBACK


def render(template: Template, locale: str, values: dict[str, str]) -> Wording:
    wording = TEMPLATES[language(locale)][template]
    return Wording(wording.subject.format_map(values), wording.text.format_map(values))


def phrase(key: str, locale: str, **values: str) -> str:
    return PHRASES[language(locale)][key].format_map(values)


def money(amount: int, currency: str, locale: str) -> str:
    """`EUR 12.50` in English, `12,50 EUR` in German: integer minor units, never a float."""
    exponent = _EXPONENTS.get(currency, 2)
    major, minor = divmod(amount, 10**exponent)
    if language(locale) == "de":
        whole = f"{major:,}".replace(",", ".")
        return f"{whole},{minor:0{exponent}d} {currency}" if exponent else f"{whole} {currency}"
    whole = f"{major:,}"
    return f"{currency} {whole}.{minor:0{exponent}d}" if exponent else f"{currency} {whole}"
