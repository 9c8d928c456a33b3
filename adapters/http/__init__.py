"""Local HTTP serving of the domains' routes: what API Gateway does in production."""
