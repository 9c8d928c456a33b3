"""Auth user: a signed-in user's own security page, a projection of identity facts.
Publishes nothing."""
