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

# --- campaigns, contests, promotion rules (issue 15) ------------------------------------------

CAMPAIGN_FIELDS = """
  id programId name kind status startsAt endsAt timeZone currency rewardKind holdDays threshold bonusAmount
  category boostBps tiers { fromSale rateBps } topN prizeAmount refundWindowDays finalizedAt
"""

CREATE_CAMPAIGN = f"""
mutation($input: CampaignInput!) {{
  createCampaign(input: $input) {{ campaign {{ {CAMPAIGN_FIELDS} }} userErrors {{ field code message }} }}
}}"""

CANCEL_CAMPAIGN = f"""
mutation($id: ID!) {{ cancelCampaign(id: $id) {{ campaign {{ {CAMPAIGN_FIELDS} }} userErrors {{ field code message }} }} }}"""

CAMPAIGNS = f"""
query($programId: ID) {{ campaigns(programId: $programId) {{ edges {{ node {{ {CAMPAIGN_FIELDS} }} }} }} }}"""

LEADERBOARD_FIELDS = """
  campaign { id } status finalAfter
  top { rank displayName sales winsPrize referrerExternalId }
  own { rank displayName sales winsPrize referrerExternalId }
"""

CAMPAIGN_LEADERBOARD = f"""
query($campaignId: ID!, $first: Int) {{ campaignLeaderboard(campaignId: $campaignId, first: $first) {{ {LEADERBOARD_FIELDS} }} }}"""

REFERRER_CAMPAIGN_LEADERBOARD = f"""
query($campaignId: ID!, $customer: String!, $timestamp: BigInt, $signature: String) {{
  referrerCampaignLeaderboard(campaignId: $campaignId, customerExternalId: $customer, timestamp: $timestamp,
                              signature: $signature) {{ {LEADERBOARD_FIELDS} }}
}}"""

PUBLISH_PROMOTION_RULES = """
mutation($programId: ID!, $text: String!, $clauses: [PromotionRuleClauseInput!]!) {
  publishPromotionRules(programId: $programId, text: $text, clauses: $clauses) {
    promotionRules { programId version text clauses { id text } }
    userErrors { field code message }
  }
}"""

PROMOTION_RULES_STATUS_FIELDS = "current { version } acceptedAt acceptedVia pendingAcceptance"

PROMOTION_RULES_STATUS = f"""
query($programId: ID!, $customer: String!, $timestamp: BigInt, $signature: String) {{
  promotionRulesStatus(programId: $programId, customerExternalId: $customer, timestamp: $timestamp, signature: $signature) {{
    {PROMOTION_RULES_STATUS_FIELDS}
  }}
}}"""

ACCEPT_PROMOTION_RULES = f"""
mutation($programId: ID!, $version: Int!, $customer: String!, $timestamp: BigInt, $signature: String) {{
  acceptPromotionRules(programId: $programId, version: $version, customerExternalId: $customer, timestamp: $timestamp,
                       signature: $signature) {{
    status {{ {PROMOTION_RULES_STATUS_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}"""

# --- business referrals (leads) ---------------------------------------------------------------

LEAD_FIELDS = """
  id programId referrerExternalId status company companyDomain contactName contactEmail notes duplicateOfId
  contractValue contractCurrency feeRewardId
  history { fromStatus toStatus notes notesVisibleToReferrer actorKeyId actorAdminId byReferrer at }
"""

REFERRER_LEAD_FIELDS = "id programId status company feeGranted steps { status notes at }"

SET_LEAD_SETTINGS = """
mutation($programId: ID!, $input: LeadSettingsInput!) {
  setLeadSettings(programId: $programId, input: $input) {
    settings { programId kind feeAmount feePercentBps currency holdDays }
    userErrors { field code message }
  }
}"""

SUBMIT_LEAD = f"""
mutation($input: SubmitLeadInput!) {{
  submitLead(input: $input) {{ lead {{ {REFERRER_LEAD_FIELDS} }} replayed userErrors {{ field code message }} }}
}}"""

MOVE_LEAD = f"""
mutation($input: MoveLeadInput!) {{
  moveLead(input: $input) {{ lead {{ {LEAD_FIELDS} }} userErrors {{ field code message }} }}
}}"""

LEAD = f"""query($id: ID!) {{ lead(id: $id) {{ {LEAD_FIELDS} }} }}"""

LEADS = f"""
query($programId: ID, $status: LeadStatus) {{
  leads(programId: $programId, status: $status) {{ edges {{ node {{ {LEAD_FIELDS} }} }} }}
}}"""

REFERRER_LEADS = f"""
query($customer: String!, $timestamp: BigInt, $signature: String) {{
  referrerLeads(customerExternalId: $customer, timestamp: $timestamp, signature: $signature) {{ {REFERRER_LEAD_FIELDS} }}
}}"""

RESOLVE_FRAUD_REVIEW_CITING = """
mutation($id: ID!, $resolution: FraudResolution!, $note: String, $citedRule: CitedRuleInput) {
  resolveFraudReview(id: $id, resolution: $resolution, note: $note, citedRule: $citedRule) {
    review { id status resolutionNote citedRule { version clauseId clauseText } }
    userErrors { field code message }
  }
}"""

# --- affiliate programs (app/schema/partners.py) ---------------------------------------------

PARTNER_FIELDS = """id programId customerExternalId status groupId invited applicationNote appliedAt decidedAt
    history { fromStatus toStatus actor reason at }"""

APPLY_AS_PARTNER = f"""
mutation($programId: ID!, $customerExternalId: String, $note: String, $signature: PartnerSignatureInput) {{
  applyAsPartner(programId: $programId, customerExternalId: $customerExternalId, note: $note, signature: $signature) {{
    partner {{ {PARTNER_FIELDS} }} linkCode
    userErrors {{ field code message }}
  }}
}}"""

INVITE_PARTNER = f"""
mutation($programId: ID!, $customerExternalId: String!) {{
  invitePartner(programId: $programId, customerExternalId: $customerExternalId) {{
    partner {{ {PARTNER_FIELDS} }} linkCode
    userErrors {{ field code message }}
  }}
}}"""

DECIDE_PARTNER = f"""
mutation($partnerId: ID!, $decision: PartnerDecision!, $reason: String) {{
  decidePartner(partnerId: $partnerId, decision: $decision, reason: $reason) {{
    partner {{ {PARTNER_FIELDS} }}
    userErrors {{ field code message }}
  }}
}}"""

PARTNERS = f"""
query($programId: ID!, $status: PartnerStatus) {{
  partners(programId: $programId, status: $status) {{ {PARTNER_FIELDS} }}
}}"""

CREATE_PARTNER_GROUP = """
mutation($programId: ID!, $name: String!, $commissionBps: Int) {
  createPartnerGroup(programId: $programId, name: $name, commissionBps: $commissionBps) {
    group { id programId name commissionBps }
    userErrors { field code message }
  }
}"""

UPDATE_PARTNER_GROUP = """
mutation($groupId: ID!, $commissionBps: Int) {
  updatePartnerGroup(groupId: $groupId, commissionBps: $commissionBps) {
    group { id name commissionBps }
    userErrors { field code message }
  }
}"""

ASSIGN_PARTNER_GROUP = """
mutation($partnerId: ID!, $groupId: ID) {
  assignPartnerGroup(partnerId: $partnerId, groupId: $groupId) {
    partner { id groupId }
    userErrors { field code message }
  }
}"""

PARTNER_GROUPS = """query($programId: ID!) { partnerGroups(programId: $programId) { id name commissionBps } }"""

SET_COMMISSION_SPLIT = """
mutation($programId: ID!, $sku: String, $affiliateBps: Int, $parties: [SplitPartyInput!]!) {
  setCommissionSplit(programId: $programId, sku: $sku, affiliateBps: $affiliateBps, parties: $parties) {
    split { id sku version affiliateBps parties { customerExternalId shareBps } supersededAt }
    userErrors { field code message }
  }
}"""

COMMISSION_SPLIT_HISTORY = """
query($programId: ID!, $sku: String) {
  commissionSplitHistory(programId: $programId, sku: $sku) {
    id sku version affiliateBps parties { customerExternalId shareBps } createdAt supersededAt
  }
}"""

SALE_FIELDS = """id actionId orderId affiliateExternalId subId amount { amount currency } refundedAmount status
    notEarnedReason splitVersionId affiliateBps commission occurredAt
    shares { customerExternalId role shareBps amount reversedAmount netAmount unit }"""

PARTNER_SALES = f"""
query($programId: ID!, $from: DateTime!, $to: DateTime!, $orderId: String) {{
  partnerSales(programId: $programId, from: $from, to: $to, orderId: $orderId) {{ {SALE_FIELDS} }}
}}"""

PARTNER_REPORT = """
query($programId: ID!, $from: DateTime!, $to: DateTime!, $groupBy: PartnerReportGroupBy, $partnerExternalId: String,
      $signature: PartnerSignatureInput) {
  partnerReport(programId: $programId, from: $from, to: $to, groupBy: $groupBy, partnerExternalId: $partnerExternalId,
                signature: $signature) {
    partnerExternalId linkCode subId clicks conversions conversionRate
    revenue { amount currency } commissionEarned { amount currency } commissionHeld { amount currency }
    commissionPaid { amount currency }
  }
}"""

PARTNER_STATEMENT = f"""
query($programId: ID!, $from: DateTime!, $to: DateTime!, $customerExternalId: String, $signature: PartnerSignatureInput) {{
  partnerStatement(programId: $programId, from: $from, to: $to, customerExternalId: $customerExternalId,
                   signature: $signature) {{
    customerExternalId totals {{ amount currency }} lines {{ {SALE_FIELDS} }}
  }}
}}"""
