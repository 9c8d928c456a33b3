"""Auth admin: roles and admin actions. Only its contracts exist so far (USER_DISABLED,
USER_ENABLED), so that the domains reacting to them can be written first."""
