"""The scheduler: domain model, pure assignment policy, transactional operations, stores and REST API."""
