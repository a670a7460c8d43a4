"""Referral: a self-hostable backend for customer referral programs."""
