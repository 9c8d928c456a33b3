"""Auth admin: roles, admin-only user listing, disabling and enabling users, and the audit
log of admin actions. Publishes USER_DISABLED, USER_ENABLED, ROLE_GRANTED, ROLE_REVOKED."""
