"""French company identifiers: SIREN and SIRET.

Pure domain rules (no I/O). The keys are checked by python-stdnum
(``stdnum.fr.siren``, ``stdnum.fr.siret``, ``stdnum.luhn``), a pure library
that implements the same INSEE rules, La Poste included; this module keeps
what is Usine's own: the French messages, the rule ids, and which Unicode
spaces an applicant may type. These checks only catch
typing mistakes; whether the number exists in the SIRENE register is a
separate question for the INSEE API.

Legal sources
-------------
* Code de commerce, art. R123-220 et seq.: the SIRENE register kept by
  INSEE, which assigns each company a 9-digit SIREN and each of its
  establishments a 14-digit SIRET (SIREN + 5-digit NIC).
* The check key is an INSEE convention (no statute sets it): the SIREN and
  the SIRET each pass the Luhn algorithm (ISO/IEC 7812-1, annex B), except
  the establishments of La Poste (SIREN 356 000 000): a 5-digit NIC with a
  Luhn key allows only 10,000 establishments per SIREN, fewer than La Poste
  has, so INSEE requires instead that the sum of the 14 digits be a
  multiple of 5. The head office (SIRET 356 000 000 00048) keeps the Luhn
  key (its digit sum, 26, is not a multiple of 5).
"""

from __future__ import annotations

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

__all__ = [
    "InvalidIdentifier",
    "LA_POSTE_HEAD_OFFICE_SIRET",
    "LA_POSTE_SIREN",
    "luhn_valid",
    "validate_siren",
    "validate_siret",
]

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE_SIRET = "35600000000048"


class InvalidIdentifier(ValueError):
    """An identifier failed a format or checksum rule.

    ``field`` names the form field ("siren", "siret"), ``rule`` the rule that
    failed (e.g. "siren_checksum"), ``message`` a French sentence fit to show
    the applicant as is.
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.message = message

    def __reduce__(self):
        # The default exception pickling replays self.args (the message
        # only), which would not match __init__. Workflow engines pickle
        # exceptions raised by tasks, so rebuild from all three attributes.
        return (type(self), (self.field, self.rule, self.message))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(field={self.field!r}, rule={self.rule!r}, "
            f"message={self.message!r})"
        )


def _is_ascii_digits(s: str) -> bool:
    # str.isdigit() alone accepts "²" or Arabic-Indic digits, which int()
    # may then reject or misread; identifiers are plain ASCII digits.
    return s.isascii() and s.isdigit()


def luhn_valid(digits: str) -> bool:
    """Tell whether a string of ASCII digits passes the Luhn check.

    Luhn algorithm (ISO/IEC 7812-1, annex B), used by INSEE for the SIREN
    and SIRET keys: from the right, double every second digit, subtract 9
    from results above 9, and the total must be a multiple of 10.

    Returns False for an empty string or anything that is not only ASCII
    digits, so a malformed value can never count as valid.
    """
    if not isinstance(digits, str) or not _is_ascii_digits(digits):
        return False
    return luhn.is_valid(digits)


def _compact(value: object, field: str, label: str, length: int) -> str:
    # Applicants paste identifiers formatted as "732 829 320", often with
    # non-breaking spaces from French typography; str.split() with no
    # argument drops every kind of Unicode whitespace.
    if not isinstance(value, str):
        # An int would already have lost any leading zero; refuse it.
        raise InvalidIdentifier(
            field=field,
            rule=f"{field}_format",
            message=f"Le {label} doit être saisi comme une suite de {length} chiffres",
        )
    compact = "".join(value.split())
    if len(compact) != length or not _is_ascii_digits(compact):
        raise InvalidIdentifier(
            field=field,
            rule=f"{field}_format",
            message=f"Le {label} doit compter {length} chiffres",
        )
    return compact


def validate_siren(value: str) -> str:
    """Return the 9-digit SIREN from ``value`` or raise InvalidIdentifier.

    Spaces (including non-breaking ones) are stripped. Source: Code de
    commerce art. R123-220 et seq. (SIRENE register); key: INSEE Luhn rule.

    Rules: "siren_format" (not exactly 9 digits once spaces are removed),
    "siren_checksum" (the Luhn key does not match).
    """
    siren = _compact(value, "siren", "SIREN", 9)
    if not stdnum_siren.is_valid(siren):
        raise InvalidIdentifier(
            field="siren",
            rule="siren_checksum",
            message=f"Le SIREN {siren} ne respecte pas la clé de Luhn",
        )
    return siren


def validate_siret(value: str) -> str:
    """Return the 14-digit SIRET from ``value`` or raise InvalidIdentifier.

    Spaces (including non-breaking ones) are stripped. Source: Code de
    commerce art. R123-220 et seq. (SIRENE register); key: INSEE rules:

    * ordinary establishments: the 14 digits pass Luhn, and so does the
      embedded SIREN (the first 9 digits), since INSEE issues both keys;
    * La Poste establishments (SIREN 356000000) other than the head office
      35600000000048: the sum of the 14 digits is a multiple of 5.

    Rules: "siret_format" (not exactly 14 digits once spaces are removed),
    "siret_checksum" (the applicable key does not match).
    """
    siret = _compact(value, "siret", "SIRET", 14)
    try:
        return stdnum_siret.validate(siret)
    except ValidationError:
        pass
    # stdnum says only that the key is wrong; name which one, in French.
    siren = siret[:9]
    if siren == LA_POSTE_SIREN and siret != LA_POSTE_HEAD_OFFICE_SIRET:
        raise InvalidIdentifier(
            field="siret",
            rule="siret_checksum",
            message=(
                f"Le SIRET {siret} (établissement de La Poste) ne respecte "
                "pas la clé : la somme de ses chiffres doit être un "
                "multiple de 5"
            ),
        )
    if not luhn_valid(siret):
        raise InvalidIdentifier(
            field="siret",
            rule="siret_checksum",
            message=f"Le SIRET {siret} ne respecte pas la clé de Luhn",
        )
    raise InvalidIdentifier(
        field="siret",
        rule="siret_checksum",
        message=(
            f"Le SIRET {siret} commence par le SIREN {siren}, qui ne "
            "respecte pas la clé de Luhn"
        ),
    )
