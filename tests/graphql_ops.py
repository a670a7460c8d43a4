"""GraphQL documents shared by the tests, written as a merchant's integration would."""

CREATE_PROGRAM = """
mutation($input: ProgramInput!) {
  createProgram(input: $input) {
    program { id name status attributionWindowDays claimWindowDays shareUrlTemplate codeStyle codeLength }
    userErrors { field code message }
  }
}"""

UPDATE_PROGRAM = """
mutation($id: ID!, $input: ProgramInput!) {
  updateProgram(id: $id, input: $input) {
    program { id name status }
    userErrors { field code message }
  }
}"""

UPSERT_CUSTOMER = """
mutation($input: UpsertCustomerInput!) {
  upsertCustomer(input: $input) {
    customer { id externalId email emailCanonical name metadata }
    userErrors { field code message }
  }
}"""

ISSUE_CODE = """
mutation($input: IssueReferralCodeInput!) {
  issueReferralCode(input: $input) {
    referralCode { id code active isVanity shareUrl }
    userErrors { field code message }
  }
}"""

DEACTIVATE_CODE = """
mutation($code: String!) {
  deactivateReferralCode(code: $code) {
    referralCode { code active deactivatedAt }
    userErrors { field code message }
  }
}"""

TRACK_CLICK = """
mutation($input: TrackClickInput!) {
  trackClick(input: $input) {
    attributionToken expiresAt repeated
    referralCode { code shareUrl }
    userErrors { field code message }
  }
}"""

REWARD_FIELDS = """
  id kind recipient status amount unit remaining reversedAmount milestone
  holdUntil expiresAt availableAt endedAt endReason
  customer { externalId }
  rule { id ruleId version name }
"""

RECORD_ACTION_WITH_REWARDS = f"""
mutation($input: RecordActionInput!) {{
  recordAction(input: $input) {{
    action {{ id type orderId attribution }}
    referral {{ id status }}
    rewards {{
      {REWARD_FIELDS} underReview awaitingClearance awaitingCoupon
      coupon {{ code status amountOff currency percentOffBps }}
    }}
    refund {{ orderFound rewards {{ {REWARD_FIELDS} }} }}
    replayed
    userErrors {{ field code message }}
  }}
}}"""
"""recordAction with what it granted (and, for a REFUND, what it took back): the rewards tests' document."""

RECORD_ACTION = """
mutation($input: RecordActionInput!) {
  recordAction(input: $input) {
    action { id type amount { amount currency } attribution orderId occurredAt }
    referral { id status source referrer { externalId } referee { externalId } }
    replayed
    userErrors { field code message }
  }
}"""

CLAIM_REFERRAL = """
mutation($input: ClaimReferralInput!) {
  claimReferral(input: $input) {
    referral { id status source referrer { externalId } referee { externalId } }
    userErrors { field code message }
  }
}"""

REFERRALS = """
query($programId: ID, $status: ReferralStatus, $first: Int, $after: String) {
  referrals(programId: $programId, status: $status, first: $first, after: $after) {
    edges { cursor node { id status referrer { externalId } referee { externalId } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
