"""Canonical emails: one mailbox behind its provider's aliases, so a second address at the
same inbox is recognised as the same person."""

import pytest

from app.referrals.emails import canonical_email


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        # Gmail ignores dots and everything after "+", and googlemail.com is gmail.com.
        ("jane.doe@gmail.com", "janedoe@gmail.com"),
        ("Jane.Doe+shop@Gmail.com", "janedoe@gmail.com"),
        ("j.a.n.e.d.o.e+a+b@gmail.com", "janedoe@gmail.com"),
        ("janedoe@googlemail.com", "janedoe@gmail.com"),
        ("jane.doe+x@GOOGLEMAIL.COM", "janedoe@gmail.com"),
        ("  janedoe@gmail.com  ", "janedoe@gmail.com"),
        # Microsoft, Apple and Fastmail: "+tag" is dropped, dots are significant.
        ("jane.doe+promo@outlook.com", "jane.doe@outlook.com"),
        ("jane.doe+promo@hotmail.com", "jane.doe@hotmail.com"),
        ("Jane+x@Live.com", "jane@live.com"),
        ("jane+1@hotmail.co.uk", "jane@hotmail.co.uk"),
        ("jane.doe+a@icloud.com", "jane.doe@icloud.com"),
        ("jane+a@me.com", "jane@me.com"),
        ("jane+news@fastmail.com", "jane@fastmail.com"),
        ("jane+news@fastmail.fm", "jane@fastmail.fm"),
        # Yahoo's disposable addresses use "-".
        ("jane.doe-shopping@yahoo.com", "jane.doe@yahoo.com"),
        ("jane-x@ymail.com", "jane@ymail.com"),
        ("jane-x@yahoo.co.uk", "jane@yahoo.co.uk"),
        # Elsewhere nothing but case is folded: "+" and "." may be real parts of the name.
        ("Jane.Doe+shop@Example.COM", "jane.doe+shop@example.com"),
        ("jane-doe@example.com", "jane-doe@example.com"),
        ("jane.doe@gmail.co", "jane.doe@gmail.co"),
        ("jane+x@mail.outlook.com", "jane+x@mail.outlook.com"),
        ("jane-x@yahoo.com.example", "jane-x@yahoo.com.example"),
    ],
)
def test_canonical_email(address, canonical):
    assert canonical_email(address) == canonical


def test_aliases_of_one_inbox_share_a_canonical_address():
    aliases = ["jane.doe@gmail.com", "JaneDoe+referral@gmail.com", "j.anedoe+1@googlemail.com"]
    assert {canonical_email(a) for a in aliases} == {"janedoe@gmail.com"}


def test_different_people_keep_different_canonical_addresses():
    people = [
        "jane.doe@outlook.com",
        "janedoe@outlook.com",
        "jane@example.com",
        "jane@example.org",
        "jane.doe@yahoo.com",
        "janedoe@yahoo.com",
    ]
    assert len({canonical_email(p) for p in people}) == len(people)
