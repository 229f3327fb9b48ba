"""Token amounts and the big-integer encoding Filecoin uses for them.

Amounts are plain Python ``int`` counts of attoFIL (10^-18 FIL): arithmetic on them is as fast
as Python gets, and ``TokenAmount`` is only a name for that ``int``. The helpers here convert
between that int and what the chain stores, and format it for people.

CBOR form (ref-fvm ``shared/src/bigint/bigint_ser.rs``, go-state-types ``big/int.go``): a byte
string, empty for zero, otherwise a sign byte (0x00 positive, 0x01 negative) followed by the
big-endian magnitude. At most 128 bytes including the sign byte. Both references accept, and so
does this module, a sign byte with an empty magnitude and magnitudes with leading zero bytes
(both decode to the plain value); such input therefore does not re-encode to itself. The
unsigned variant (``biguint_ser.rs``) requires the 0x00 sign byte.

Text forms: ref-fvm's ``Display`` for ``TokenAmount`` (``shared/src/econ/mod.rs``: always a
decimal point, "1.0") and Lotus's ``types.FIL`` (``chain/types/fil.go``: "1.5 FIL", the short
"100 mFIL" form, and ``ParseFIL``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Final, TypeAlias

from store.errors import MalformedInput

TokenAmount: TypeAlias = int
"""An amount of attoFIL."""

TOKEN_DECIMALS: Final = 18
FILECOIN_PRECISION: Final = 10**TOKEN_DECIMALS
NANO_PRECISION: Final = 10**9
# The total supply: 2 billion FIL (Lotus ``buildconstants.FilBase``).
FILECOIN_BASE: Final = 2_000_000_000
TOTAL_FILECOIN: Final = FILECOIN_BASE * FILECOIN_PRECISION
# Longest accepted CBOR byte string for a big integer, sign byte included.
MAX_BIGINT_SIZE: Final = 128

_POSITIVE: Final = 0
_NEGATIVE: Final = 1
# Lotus ``ParseFIL`` refuses number texts longer than this.
_MAX_FIL_TEXT_LEN: Final = 50
_FIL_NUMBER_CHARS: Final = "-.1234567890"
_DECIMAL_NUMBER: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# Lotus ``FIL.Short`` unit prefixes, each 1000 times the previous, starting at attoFIL.
_SHORT_UNIT_PREFIXES: Final = ("a", "f", "p", "n", "μ", "m")


class BigIntError(MalformedInput):
    """A byte string that is not a Filecoin big integer, or a value too large to encode."""


def encode_bigint(value: int) -> bytes:
    """The byte-string form of a signed big integer (without the CBOR header)."""
    if value == 0:
        return b""
    if value > 0:
        out = b"\x00" + value.to_bytes((value.bit_length() + 7) // 8, "big")
    else:
        magnitude = -value
        out = b"\x01" + magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    if len(out) > MAX_BIGINT_SIZE:
        raise BigIntError(f"big integer of {len(out)} bytes exceeds {MAX_BIGINT_SIZE}")
    return out


def decode_bigint(data: bytes, where: str | None = None) -> int:
    """The signed big integer in its byte-string form."""
    if not data:
        return 0
    sign = data[0]
    if sign > _NEGATIVE:
        raise BigIntError(f"big integer sign byte must be 0 or 1, got {sign}", where)
    if len(data) > MAX_BIGINT_SIZE:
        raise BigIntError(f"big integer of {len(data)} bytes exceeds {MAX_BIGINT_SIZE}", where)
    magnitude = int.from_bytes(data[1:], "big")
    return -magnitude if sign == _NEGATIVE else magnitude


def bigint_from_cbor(value: Any, where: str | None = None) -> int:
    """The signed big integer in a decoded DAG-CBOR value (which must be a byte string)."""
    if type(value) is not bytes:
        raise BigIntError(
            f"big integer must be a CBOR byte string, not {type(value).__name__}", where
        )
    return decode_bigint(value, where)


def encode_biguint(value: int) -> bytes:
    """The byte-string form of an unsigned big integer (``biguint_ser``)."""
    if value < 0:
        raise BigIntError(f"cannot encode negative {value} as an unsigned big integer")
    return encode_bigint(value)


def decode_biguint(data: bytes, where: str | None = None) -> int:
    """The unsigned big integer in its byte-string form: the sign byte must be 0x00."""
    if not data:
        return 0
    if data[0] != _POSITIVE:
        raise BigIntError("unsigned big integer must start with the 0x00 sign byte", where)
    if len(data) > MAX_BIGINT_SIZE:
        raise BigIntError(f"big integer of {len(data)} bytes exceeds {MAX_BIGINT_SIZE}", where)
    return int.from_bytes(data[1:], "big")


def biguint_from_cbor(value: Any, where: str | None = None) -> int:
    """The unsigned big integer in a decoded DAG-CBOR value (a byte string)."""
    if type(value) is not bytes:
        raise BigIntError(
            f"big integer must be a CBOR byte string, not {type(value).__name__}", where
        )
    return decode_biguint(value, where)


def from_whole(fil: int) -> TokenAmount:
    """Whole FIL to attoFIL."""
    return fil * FILECOIN_PRECISION


def from_nano(nano_fil: int) -> TokenAmount:
    """nanoFIL to attoFIL."""
    return nano_fil * NANO_PRECISION


# -- text ---------------------------------------------------------------------------------


def format_decimal(atto: TokenAmount, precision: int | None = None) -> str:
    """ref-fvm's ``Display``: whole units, a decimal point, the fraction without trailing zeros.

    ``precision`` pads or truncates the fraction to that many digits (Rust's ``{:.N}``).
    """
    whole, fraction = divmod(abs(atto), FILECOIN_PRECISION)
    after = str(fraction).rjust(TOKEN_DECIMALS, "0").rstrip("0") if fraction else "0"
    if precision is not None:
        after = after.ljust(precision, "0")[:precision]
    sign = "-" if atto < 0 else ""
    return f"{sign}{whole}.{after}"


def _go_float_string(numerator: int, denominator: int, digits: int) -> str:
    """Go's ``big.Rat.FloatString``: ``digits`` decimals, halves rounded away from zero."""
    negative = numerator < 0
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder == 0:
        text = str(numerator // denominator)
        return text + "." + "0" * digits if digits > 0 else text
    scale = 10**digits
    fraction, rest = divmod(remainder * scale, denominator)
    if 2 * rest >= denominator:
        fraction += 1
        if fraction >= scale:
            quotient += 1
            fraction -= scale
    text = ("-" if negative else "") + str(quotient)
    if digits > 0:
        text += "." + str(fraction).rjust(digits, "0")
    return text


def _trim_decimal(text: str) -> str:
    return text.rstrip("0").rstrip(".")


def format_fil_unitless(atto: TokenAmount) -> str:
    """Lotus ``FIL.Unitless``: the amount in FIL, trailing zeros and point dropped ("1.5")."""
    if atto == 0:
        return "0"
    return _trim_decimal(_go_float_string(atto, FILECOIN_PRECISION, TOKEN_DECIMALS))


def format_fil(atto: TokenAmount) -> str:
    """Lotus ``FIL.String``: "1.5 FIL"."""
    return format_fil_unitless(atto) + " FIL"


def format_fil_short(atto: TokenAmount) -> str:
    """Lotus ``FIL.Short``: at most three decimals in the largest unit below 1000 ("100 mFIL")."""
    magnitude = abs(atto)
    unit = 1
    prefix = ""
    for candidate in _SHORT_UNIT_PREFIXES:
        if magnitude < unit * 1000:
            prefix = candidate
            break
        unit *= 1000
    if atto == 0:
        return "0"
    return f"{_trim_decimal(_go_float_string(atto, unit, 3))} {prefix}FIL"


def format_fil_nano(atto: TokenAmount) -> str:
    """Lotus ``FIL.Nano``: the amount in nanoFIL ("1.5 nFIL")."""
    if atto == 0:
        return "0"
    return _trim_decimal(_go_float_string(atto, NANO_PRECISION, 9)) + " nFIL"


def parse_fil(text: str) -> TokenAmount:
    """Lotus ``ParseFIL``: "1.5", "1.5 FIL", "-2 fil", "100 attoFIL" / "100 afil" to attoFIL.

    Raises ``ValueError`` for anything else, or for a FIL amount finer than one attoFIL.
    """
    number = text[: len(text) - len(text.lstrip(_FIL_NUMBER_CHARS))]
    suffix = text[len(number) :]
    unit = suffix.strip().lower()
    if unit in ("", "fil"):
        atto_units = False
    elif unit in ("attofil", "afil"):
        atto_units = True
    else:
        raise ValueError(f"unrecognized suffix: {suffix!r}")
    if len(number) > _MAX_FIL_TEXT_LEN:
        raise ValueError(f"string length too large: {len(number)}")
    if not _DECIMAL_NUMBER.fullmatch(number):
        raise ValueError(f"failed to parse {number!r} as a decimal number")
    value = Fraction(number)
    if not atto_units:
        value *= FILECOIN_PRECISION
    if value.denominator != 1:
        raise ValueError(f"invalid {'atto' if atto_units else ''}FIL value: {number!r}")
    return int(value)
