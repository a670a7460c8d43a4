"""Reward rules, their evaluation, the ledger, coupons, holds and reversals."""
