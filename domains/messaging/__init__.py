"""Messaging: e-mails to users. Reacts to USER_CREATED; publishes WELCOME_EMAIL_SENT."""
