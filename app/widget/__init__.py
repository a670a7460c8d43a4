"""The embeddable widget: browser access to the API (CORS per merchant origin), signed
customer identity, the share panel's session, the served bundle and the demo shop."""
