"""Payouts: accounts, requests and scheduled runs, holds, approvals with a second factor, providers and statements."""
