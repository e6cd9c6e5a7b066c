"""Every subcommand and every option says what it is for in `--help` (students read these)."""

from __future__ import annotations

import argparse

from lpu.cli import build_parser


def _parsers(p: argparse.ArgumentParser, name: str = "lpu"):
    yield name, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub_name, sub in a.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help():
    missing = []
    for name, p in _parsers(build_parser()):
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction,
                              argparse._SubParsersAction)):
                continue
            if not a.help:
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, missing
