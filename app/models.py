"""Imports every domain's models so that `Base.metadata` knows all tables (alembic, tests)."""


def load_all_models() -> None:
    import app.analytics.models  # noqa: F401
    import app.campaigns.models  # noqa: F401
    import app.fraud.models  # noqa: F401
    import app.leads.models  # noqa: F401
    import app.merchants.models  # noqa: F401
    import app.partners.models  # noqa: F401
    import app.payouts.models  # noqa: F401
    import app.privacy.models  # noqa: F401
    import app.referrals.models  # noqa: F401
    import app.rewards.models  # noqa: F401
    import app.webhooks.models  # noqa: F401
    import app.widget.models  # noqa: F401
    import app.worker.models  # noqa: F401
