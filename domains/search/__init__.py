"""The search domain: full-text search over posts and profiles, kept from other domains' facts."""
