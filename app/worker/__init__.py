"""Background work: a transactional outbox feeding dramatiq (Redis, RabbitMQ, or in-process)."""
