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
