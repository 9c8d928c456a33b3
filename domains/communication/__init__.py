"""The communication domain: campaigns an admin schedules for a segment of users."""
