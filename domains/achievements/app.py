"""The achievements domain: the rules declared in `declarations.py`, run by the engine.

See docs/achievements.md: what each rule counts, how awards stay single, who reads them.
"""

from __future__ import annotations

from domains.achievements.declarations import RULES
from domains.achievements.engine import achievements_domain
from domains.achievements.rules import load_rules

domain = achievements_domain(load_rules(RULES))
