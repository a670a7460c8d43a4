"""Fraud engine: signals, policies, decisions, the review queue and backtests."""
