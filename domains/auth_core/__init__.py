"""Auth core: sessions, refresh tokens, signing keys, lockout. Publishes SIGNED_IN,
SIGN_IN_FAILED, SIGNED_OUT, ACCOUNT_LOCKED."""
