"""The user_message domain: conversations between users who follow each other, delivered live."""
