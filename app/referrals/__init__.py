"""Programs, customers, referral codes, clicks and the attribution of actions to referrals."""
