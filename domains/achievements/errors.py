"""The achievements domain's errors."""

from __future__ import annotations

from bus import ConfigurationError


class InvalidRuleDeclaration(ConfigurationError):
    """A rule declaration the engine cannot run: the message names the rule, the field and
    what is wrong, and the domain refuses to load rather than count the wrong thing."""
