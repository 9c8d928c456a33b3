"""The Lambda edge: AWS event shapes in, dispatcher calls through, AWS's answers out."""
