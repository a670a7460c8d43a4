"""Recording what a shop's customers do (signup, purchase, refund...) and what follows from it.

This package sits above the domains and is the only one that calls several of them: an action
is stored (referrals), attributed to a referral, screened (fraud), and rewarded (rewards), with
webhooks and the worker below. Calls run one way: actions -> fraud -> rewards -> referrals.
"""
