"""Auth password: credentials (argon2id hashes) and set/reset tokens. Publishes PASSWORD_SET,
PASSWORD_CHANGED, PASSWORD_RESET_REQUESTED."""
