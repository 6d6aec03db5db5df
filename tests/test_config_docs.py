"""docs/config.md is the keys' declarations (config.key's "label|unit|example|help"), as
each profile's host firmware declares them (tools/epx/confdoc.py), and every key has one."""

from pathlib import Path

import pytest

from epx import build, confdoc

DOCS = Path(__file__).resolve().parents[1] / "docs" / "config.md"


@pytest.mark.parametrize("profile", build.profiles())
def test_every_key_is_described(profile):
    """A label in words and a help text for each key: what the setup page and the docs show."""
    for name, required, default, label, unit, example, help_ in confdoc.keys(profile):
        assert label != name and help_, (profile, name)
        assert "|" not in help_, (profile, name)  # a doc of more than four fields


def test_config_docs_are_generated_from_the_declarations():
    assert DOCS.read_text() == confdoc.markdown(), \
        "docs/config.md is stale: python -m epx.confdoc > docs/config.md"
