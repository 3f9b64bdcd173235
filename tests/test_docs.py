"""Every setting is documented where people look for it, and the docs name only commands that exist."""

from __future__ import annotations

from sopilot.core.settings import ROOT, SETTINGS

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme():
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in README]
    assert not missing, f"add these to the README's Configuration table: {missing}"


def test_the_readme_links_only_files_that_exist():
    import re

    links = re.findall(r"\]\(((?:docs|guard|eval)/[^)#]+)\)", README)
    assert links and all((ROOT / link).exists() for link in links), [lnk for lnk in links if not (ROOT / lnk).exists()]
