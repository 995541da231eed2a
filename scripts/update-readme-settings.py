"""Rewrite the README's configuration table from the settings object (tests/unit/test_docs.py checks it)."""

import re
from pathlib import Path

from spacehub.config import settings_reference

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
table = f"<!-- settings:start -->\n{settings_reference()}\n<!-- settings:end -->"
readme.write_text(
    re.sub(r"<!-- settings:start -->.*<!-- settings:end -->", lambda _: table, text, flags=re.S)
)
