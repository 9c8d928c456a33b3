"""Users: sign-up and profiles. Publishes USER_CREATED, USER_UPDATED, USER_DELETED."""
