"""Merchant analytics: daily rollups of a program's funnel, money and fraud measures (kept by a
worker job, rebuilt by `referral analytics backfill`), and the reports read from them."""
