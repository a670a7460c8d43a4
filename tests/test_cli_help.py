"""`referral --help` is the operator's manual: every command and option says what it does, and
every option that has a default says which. The test walks the parser `referral` runs, so a new
command or option without a help line fails here, naming it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator

from app.cli import build_parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """(command path, its parser, the help line its group lists it with), for every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, listed.get(name)
                yield from _commands(sub, (*path, name))


def _problems(parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    for path, command, listed_help in _commands(parser):
        name = "referral " + " ".join(path)
        if not listed_help:
            problems.append(f"{name}: no help line in `referral {' '.join(path[:-1])} --help`".replace("  ", " "))
        if not command.description:
            problems.append(f"{name}: no description in its own --help")
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            label = "/".join(action.option_strings) or action.dest
            if not action.help:
                problems.append(f"{name} {label}: no help")
                continue
            optional = bool(action.option_strings) or action.nargs in ("?", "*")
            if optional and "default" not in action.help:
                problems.append(f"{name} {label}: the help does not say the default ({action.default!r})")
    return problems


def test_every_command_and_option_of_referral_has_help_and_shows_its_default():
    assert _problems(build_parser()) == []


def test_the_walk_finds_every_command_and_a_missing_help_line():
    parser = build_parser()
    paths = {" ".join(path) for path, _, _ in _commands(parser)}
    assert {"serve", "keys rotate", "admins reset-totp", "analytics backfill", "db check"} <= paths
    # the same check fails for an option without help, and for one that hides its default
    keys = next(command for path, command, _ in _commands(parser) if path == ("keys", "create"))
    keys.add_argument("--silent")
    keys.add_argument("--limit", type=int, default=5, help="at most this many")
    assert _problems(parser) == [
        "referral keys create --silent: no help",
        "referral keys create --limit: the help does not say the default (5)",
    ]


def test_help_renders_for_every_command():
    """As an operator sees it: each command's --help prints its description and options."""
    for path, command, _ in _commands(build_parser()):
        text = " ".join(command.format_help().split())  # argparse wraps lines
        assert command.description in text, path
    shown = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "rotate", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "issue a new key and retire the old ones of that kind" in shown
    assert "(default: secret)" in shown and "(default: 0, they stop" in shown
