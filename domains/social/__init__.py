"""The social domain: follows, posts and feeds."""
