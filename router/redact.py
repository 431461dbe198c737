"""PII redaction of transcripts, before anything is stored or shown.

Handles card numbers (Luhn-checked digit runs, also spoken: "four five six ..."),
phone numbers, e-mail addresses (also spoken: "john at example dot com") and
national ID patterns (US SSN, UK National Insurance). Whatever long digit run is
left is masked too: a transcript never needs a caller's numbers.

Short runs (a PIN, a CVV, one group of a card read out over several utterances) look like
any other number, so they are masked only in a *sensitive context*: when the call's recent
speech names a card, a PIN, a security code or an account number (:func:`names_secret`; the
caller of :func:`redact` keeps that context per call).
"""

from __future__ import annotations

import re

_NUMBER_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_SPOKEN_DIGIT = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_SPOKEN_TOKEN = rf"(?:(?:double|triple)\s+)?{_SPOKEN_DIGIT}"
_SPOKEN_RUN = re.compile(rf"\b{_SPOKEN_TOKEN}(?:[\s,-]+{_SPOKEN_TOKEN})+\b", re.I)
_REPEAT = re.compile(rf"(double|triple)\s+({_SPOKEN_DIGIT})", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_SPOKEN_EMAIL = re.compile(r"\b[\w.+-]+\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)+\b", re.I)
_SSN = re.compile(r"\b\d{3}[-\s]?\d{2}[-\s]?\d{4}\b")
_NINO = re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.I)
_DIGIT_RUN = re.compile(r"(?<![\w])\+?\d(?:[\s().,-]*\d){5,}(?![\w])")
_SHORT_RUN = re.compile(r"(?<![\w\[])\d(?:[\s.,-]*\d)*(?![\w\]])")
_SECRET_WORDS = re.compile(
    r"\b(?:card|credit|debit|visa|mastercard|amex|pin|pins|passcode|password|security\s+(?:code|number|digits)"
    r"|cvv|cvc|cv2|csc|expiry|expiration|sort\s+code|account\s+(?:number|no)|routing\s+number"
    r"|last\s+(?:four|4)\s+digits)\b", re.I)


def luhn_valid(digits: str) -> bool:
    """Return whether a digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _spoken_to_digits(match: re.Match[str]) -> str:
    text = _REPEAT.sub(lambda m: " ".join([m.group(2)] * (2 if m.group(1).lower() == "double" else 3)),
                       match.group(0))
    return "".join(_NUMBER_WORDS[w.lower()] for w in re.findall(_SPOKEN_DIGIT, text, re.I))


def _classify_run(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "[CARD]"
    if 10 <= len(digits) <= 15:
        return "[PHONE]"
    return "[NUMBER]"


def names_secret(text: str) -> bool:
    """Return whether ``text`` names a card, PIN, security code or account number."""
    return _SECRET_WORDS.search(text) is not None


def redact(text: str, *, sensitive: bool = False) -> str:
    """Return ``text`` with cards, phones, e-mails, IDs and long numbers replaced by tags.

    With ``sensitive`` (the call's recent speech named a card, PIN, security code or account
    number), every remaining digit run, however short, becomes ``[NUMBER]`` too.
    """
    out = _EMAIL.sub("[EMAIL]", text)
    out = _SPOKEN_EMAIL.sub("[EMAIL]", out)
    out = _SPOKEN_RUN.sub(_spoken_to_digits, out)
    out = _NINO.sub("[ID]", out)
    out = _SSN.sub(lambda m: "[ID]" if len(re.sub(r"\D", "", m.group(0))) == 9 and not luhn_valid(
        re.sub(r"\D", "", m.group(0))) else m.group(0), out)
    out = _DIGIT_RUN.sub(_classify_run, out)
    return _SHORT_RUN.sub("[NUMBER]", out) if sensitive else out


def mask_phone(number: str) -> str:
    """Return a caller's number fit for a log line: its country prefix and last two digits only."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 4:
        return "***" if number else ""
    return f"{'+' if number.startswith('+') else ''}{digits[:1]}***{digits[-2:]}"
