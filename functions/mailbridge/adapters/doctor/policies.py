"""The organisation policies Google sets by default on new organisations, and the ones that refuse
what the Terraform creates (terraform/README.md, "Organisation policies")."""

from __future__ import annotations

from mailbridge.adapters.doctor.context import Context, Finding, HttpError, unreadable
from mailbridge.adapters.doctor.triggers import GMAIL_PUSH_ACCOUNT, topic_url

# Region prefixes inside the multi-region value groups of gcp.resourceLocations.
LOCATION_GROUPS = {"in:eu-locations": "europe-", "in:europe-locations": "europe-", "in:us-locations": "us-",
                   "in:asia-locations": "asia-", "in:northamerica-locations": "northamerica-",
                   "in:southamerica-locations": "southamerica-", "in:australia-locations": "australia-",
                   "in:me-locations": "me-", "in:africa-locations": "africa-"}


def _effective_policy(context: Context, constraint: str) -> dict:
    """The policy in force on the project; {} when the constraint does not exist (yet) there."""
    try:
        return context.fetch(f"https://orgpolicy.googleapis.com/v2/projects/{context.project}/policies/"
                             f"{constraint}:getEffectivePolicy")
    except HttpError as e:
        if e.status == 404 or (e.status == 400 and "constraint" in e.message.lower()):
            return {}
        raise


def _rules(policy: dict) -> list[dict]:
    return (policy.get("spec") or {}).get("rules") or []


def _enforced(policy: dict) -> bool:
    return any(rule.get("enforce") is True for rule in _rules(policy))


def check_organisation_policies(context: Context) -> list[Finding]:
    try:
        domains = _effective_policy(context, "iam.allowedPolicyMemberDomains")
        members = _effective_policy(context, "iam.managed.allowedPolicyMembers")
        invoker = _effective_policy(context, "run.managed.requireInvokerIam")
        ingress = _effective_policy(context, "run.allowedIngress")
        locations = _effective_policy(context, "gcp.resourceLocations")
    except HttpError as e:
        return [unreadable("organisation policies", e, "the organisation policies",
                           "roles/orgpolicy.policyViewer (enable orgpolicy.googleapis.com)")]
    return [
        _check_member_restriction(context, domains, members),
        _check_invoker_policy(invoker),
        _check_ingress_policy(ingress),
        _check_locations(context, locations),
    ]


def _check_member_restriction(context: Context, domains: dict, members: dict) -> Finding:
    name = "policy: domain-restricted sharing"
    legacy = any(rule.get("values", {}).get("allowedValues") or rule.get("denyAll") for rule in _rules(domains))
    managed_rules = [rule for rule in _rules(members) if rule.get("enforce") is True]
    managed = bool(managed_rules) and not any(
        GMAIL_PUSH_ACCOUNT.split(":", 1)[1] in " ".join(
            (rule.get("parameters") or {}).get("allowedMemberSubjects", []))
        for rule in managed_rules)
    if not (legacy or managed):
        return Finding(name, True)
    if _gmail_may_publish(context):
        return Finding(name, True)  # restricted, but the exception for Gmail's account is in place
    constraint = "iam.allowedPolicyMemberDomains" if legacy else "iam.managed.allowedPolicyMembers"
    return Finding(
        name, False,
        f"{constraint} refuses the Gmail push publisher grant ({GMAIL_PUSH_ACCOUNT}); mailbridge itself needs "
        "no allUsers binding",
        "ask an organisation policy administrator for the project exception in terraform/README.md "
        "(\"Organisation policies\") and run terraform apply again, or set enable_push = false (polling only)")


def _gmail_may_publish(context: Context) -> bool:
    try:
        policy = context.fetch(topic_url(context) + ":getIamPolicy")
    except HttpError:
        return False
    return any(binding.get("role") == "roles/pubsub.publisher" and GMAIL_PUSH_ACCOUNT in binding.get("members", [])
               for binding in policy.get("bindings", []))


def _check_invoker_policy(policy: dict) -> Finding:
    name = "policy: Cloud Run invoker IAM"
    if not _enforced(policy):
        return Finding(name, True)
    return Finding(
        name, False,
        "run.managed.requireInvokerIam forbids turning the invoker IAM check off, so browsers cannot reach "
        "admin, oauth_start and oauth_callback",
        "ask for an exception for this project (terraform/README.md, \"Organisation policies\"); the code "
        "guards those three services itself")


def _check_ingress_policy(policy: dict) -> Finding:
    name = "policy: Cloud Run ingress"
    for rule in _rules(policy):
        allowed = (rule.get("values") or {}).get("allowedValues")
        if rule.get("denyAll") or (allowed and "all" not in allowed):
            return Finding(name, False,
                           f"run.allowedIngress allows only {allowed or 'nothing'}; the browser-facing services need "
                           "ingress 'all'",
                           "ask for 'all' on this project, or put the admin pages behind a load balancer "
                           "(not provided by terraform/)")
    return Finding(name, True)


def _check_locations(context: Context, policy: dict) -> Finding:
    name = "policy: resource locations"
    for rule in _rules(policy):
        allowed = (rule.get("values") or {}).get("allowedValues") or []
        if rule.get("denyAll"):
            return Finding(name, False, "gcp.resourceLocations denies every location",
                           "ask for the region's locations to be allowed on this project")
        if allowed and not any(_location_allows(value, context.region) for value in allowed):
            return Finding(name, False,
                           f"gcp.resourceLocations allows {', '.join(allowed)}, not {context.region}",
                           "choose an allowed region (variable region; firestore_location too) or ask for "
                           f"in:{context.region}-locations")
    return Finding(name, True)


def _location_allows(value: str, region: str) -> bool:
    if value in (region, f"in:{region}-locations"):
        return True
    return value in LOCATION_GROUPS and region.startswith(LOCATION_GROUPS[value])
