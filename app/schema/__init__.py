"""The GraphQL API: maps GraphQL to the domain services, nothing more."""
