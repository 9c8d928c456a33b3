"""Users: sign-up and profiles. Publishes USER_CREATED."""
