"""Auth OAuth: an OAuth 2.0 / OpenID Connect provider for first- and third-party clients.
Publishes OAUTH_CLIENT_REGISTERED, OAUTH_GRANT_ISSUED, OAUTH_GRANT_REVOKED."""
