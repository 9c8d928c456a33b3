"""greeter: a stateless domain (no `Storage()`) that answers each sign-up with a task to its
own queue, as a function whose idempotency records live in a table of their own."""
