"""What people type, compared the way people read it: referral, vanity and coupon codes, and
names, in Latin, Arabic and Persian script. Every comparison of codes and names goes through
here, so a code and a name are the same wherever they are compared.

Folding (`fold`):

- digits: Arabic-Indic (٠–٩) and Persian (۰–۹) are ASCII digits; full-width forms (０, Ｋ, －)
  and Arabic presentation forms (ﻋ) are the ordinary characters (NFKC);
- invisible characters (zero-width joiners, the Persian half-space, bidi marks) are dropped,
  dash look-alikes (‐ – — − ‒ ﹣) are '-';
- Arabic letter variants are one letter: ي ی ى, ك ک, the hamza and madda forms of alef and of
  its carriers (أ إ آ ٱ ؤ ئ), ە ۀ as ه; ة as ه only where asked (`teh_marbuta`); tatweel (ـ)
  and diacritics (harakat, Quranic marks) are removed;
- case is folded.

`code_keys` is what codes are matched and made unique by (separators left out as well, so
`K7M3 QX9P`, `k7m3-qx9p` and `Ｋ７Ｍ３ＱＸ９Ｐ` are one code); `name_key` what the fraud engine
compares names by (`علي` = `علی`, `José` = `jose`); `name_skeleton` a consonant skeleton
that ignores script and spelling (`Ali Rezaei` = `علی رضایی`, `Mohammad` = `Muhammad`),
good only for a weak signal (vowels are gone: Mohammad and Mahmoud are one skeleton).
"""

from __future__ import annotations

import itertools
import re
import unicodedata

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_DASHES = re.compile("[\u058a\u05be\u1400\u1806\u2010-\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d]")
_TATWEEL = "\u0640"
# After NFKD has split hamza and madda off (they are marks, dropped): one letter per look-alike.
_LETTERS = str.maketrans(
    {
        "\u06cc": "\u064a",
        "\u0649": "\u064a",  # Persian yeh, alef maksura -> yeh
        "\u06a9": "\u0643",  # keheh (Persian kaf) -> kaf
        "\u0671": "\u0627",  # alef wasla -> alef
        "\u06d5": "\u0647",
        "\u06c1": "\u0647",  # ae, heh goal -> heh
    }
)
_TEH_MARBUTA = str.maketrans({"\u0629": "\u0647"})


def ascii_digits(text: str) -> str:
    return text.translate(_DIGITS)


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me")


def fold(text: str, *, teh_marbuta: bool = False) -> str:
    """The comparable form of `text` (see the module doc). Not for display."""
    text = unicodedata.normalize("NFKD", _INVISIBLE.sub("", text))
    text = "".join(ch for ch in text if not _is_mark(ch)).replace(_TATWEEL, "")
    text = _DASHES.sub("-", ascii_digits(text)).translate(_LETTERS)
    if teh_marbuta:
        text = text.translate(_TEH_MARBUTA)
    return unicodedata.normalize("NFC", text.casefold())


# --- scripts --------------------------------------------------------------------------------------


def is_arabic_letter(ch: str) -> bool:
    return ch.isalpha() and "ARABIC" in unicodedata.name(ch, "")


def is_latin_letter(ch: str) -> bool:
    return ch.isalpha() and "LATIN" in unicodedata.name(ch, "")


def has_arabic_letters(text: str) -> bool:
    return any(is_arabic_letter(ch) for ch in text)


# --- codes ------------------------------------------------------------------------------------------


def typed_code(raw: str | None, max_length: int = 64) -> str | None:
    """A code as typed, cleaned for storing and showing: no spaces or invisible characters,
    full-width forms and dash look-alikes made plain, Latin letters upper-case (an Arabic or
    Persian code keeps its own digits). None when it cannot be a code."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", raw))
    text = _DASHES.sub("-", "".join(text.split())).replace(_TATWEEL, "")
    text = "".join(ch for ch in text if not _is_mark(ch))
    if not has_arabic_letters(text):
        text = ascii_digits(text)
    text = text.upper()
    if not text or len(text) > max_length or not all(_code_character(ch) for ch in text):
        return None
    return text


def _code_character(ch: str) -> bool:
    """A-Z, digits of any of the three scripts, '-', '_', and Arabic and Persian letters."""
    return (ch.isascii() and (ch.isalnum() or ch in "-_")) or (ch.isalnum() and "ARABIC" in unicodedata.name(ch, ""))


def code_key(code: str, *, teh_marbuta: bool = False) -> str:
    """What a code is matched and made unique by: folded, letters and digits only."""
    return "".join(ch for ch in fold(code, teh_marbuta=teh_marbuta) if ch.isalnum())


def code_keys(code: str) -> tuple[str, str]:
    """(strict, loose): the key with ة kept, and with ة read as ه. A merchant who unifies them
    stores the loose key; a lookup tries both, preferring the strict one."""
    return code_key(code), code_key(code, teh_marbuta=True)


def code_look_alikes(code: str) -> set[str]:
    """Every key a code typed as `code` may have been stored under: strict, loose, and the loose
    key with some ه as ة (stored before the merchant unified them; the last three are enough)."""
    strict, loose = code_keys(code)
    heh = [i for i, ch in enumerate(loose) if ch == "\u0647"][-3:]
    return {strict, loose} | {
        "".join("\u0629" if i in chosen else ch for i, ch in enumerate(loose))
        for n in range(1, len(heh) + 1)
        for chosen in map(set, itertools.combinations(heh, n))
    }


# --- names ------------------------------------------------------------------------------------------


def name_key(name: str | None) -> str:
    """A name as the fraud engine compares it: folded (ة as ه: names are spelt both ways),
    punctuation as spaces, words single-spaced. "" for no name."""
    if not name:
        return ""
    folded = fold(name, teh_marbuta=True)
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


# Consonant classes shared by both scripts (upper-case letters); vowels, ع/ء, و and ی (vowels
# as often as not) drop out. Arabic and Persian say some letters differently (ض is d or z,
# ق is q or gh), so those classes are wide: a skeleton is a hint, never evidence alone.
_ARABIC_SOUNDS = {
    "ب": "B",
    "پ": "B",
    "ت": "T",
    "ط": "T",
    "ث": "S",
    "س": "S",
    "ص": "S",
    "ج": "J",
    "چ": "C",
    "ح": "H",
    "ه": "H",
    "ة": "H",
    "خ": "X",
    "د": "D",
    "ذ": "D",
    "ز": "D",
    "ض": "D",
    "ظ": "D",
    "ژ": "D",
    "ر": "R",
    "ش": "Q",
    "غ": "G",
    "ق": "G",
    "گ": "G",
    "ف": "F",
    "ک": "K",
    "ك": "K",
    "ل": "L",
    "م": "M",
    "ن": "N",
}
_LATIN_DIGRAPHS = (
    ("sh", "Q"),
    ("ch", "C"),
    ("kh", "X"),
    ("gh", "G"),
    ("zh", "D"),
    ("dh", "D"),
    ("th", "S"),
    ("ph", "F"),
    ("ck", "K"),
)
_LATIN_SOUNDS = {
    "b": "B",
    "p": "B",
    "t": "T",
    "s": "S",
    "j": "J",
    "h": "H",
    "x": "X",
    "d": "D",
    "z": "D",
    "r": "R",
    "g": "G",
    "q": "G",
    "f": "F",
    "k": "K",
    "c": "K",
    "l": "L",
    "m": "M",
    "n": "N",
}


def _skeleton_of_word(word: str) -> str:
    if any(is_arabic_letter(ch) for ch in word):
        sounds = "".join(_ARABIC_SOUNDS.get(ch, "") for ch in word)
    else:
        for digraph, sound in _LATIN_DIGRAPHS:
            word = word.replace(digraph, sound)
        sounds = "".join(ch if ch.isupper() else _LATIN_SOUNDS.get(ch, "") for ch in word)
    collapsed = re.sub(r"(.)\1+", r"\1", sounds)
    return collapsed[:-1] if len(collapsed) > 1 and collapsed.endswith("H") else collapsed  # Fatemeh = Fatima


def name_skeleton(name: str | None) -> str:
    """Consonants of each word by sound class, across Latin and Arabic script; "" for a name
    too short to mean anything (fewer than two words, or under three consonants in all)."""
    words = [w for w in (_skeleton_of_word(w) for w in name_key(name).split()) if w]
    if len(words) < 2 or sum(len(w) for w in words) < 3:
        return ""
    return " ".join(words)


# --- showing numbers --------------------------------------------------------------------------------


def localized_digits(text: str, numbering_system: str) -> str:
    """ASCII digits in `text` as the numbering system writes them (CLDR names: `arab`,
    `arabext`); others are left as they are."""
    if numbering_system == "arab":
        return text.translate(_ARABIC_INDIC)
    if numbering_system == "arabext":
        return text.translate(_PERSIAN)
    return text
