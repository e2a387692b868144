"""What starts the functions: the Cloud Scheduler job that calls `poll`, and the Gmail push topic
whose publisher grant lets Gmail's watch() notify `push` (terraform/scheduler.tf, pubsub.tf)."""

from __future__ import annotations

from mailbridge.adapters.doctor.context import Context, Finding, read

GMAIL_PUSH_ACCOUNT = "serviceAccount:gmail-api-push@system.gserviceaccount.com"


def topic_url(context: Context) -> str:
    return f"https://pubsub.googleapis.com/v1/projects/{context.project}/topics/{context.prefix}-gmail-push"


def check_scheduler(context: Context) -> Finding:
    job_name = f"{context.prefix}-poll"
    name = f"scheduler job {job_name}"
    job = read(context, name, f"https://cloudscheduler.googleapis.com/v1/projects/{context.project}/locations/"
                              f"{context.region}/jobs/{job_name}", "the scheduler job", "roles/cloudscheduler.viewer",
               Finding(name, False, "missing", "terraform apply"))
    if isinstance(job, Finding):
        return job
    target = job.get("httpTarget") or {}
    token = target.get("oidcToken") or {}
    if token.get("serviceAccountEmail") != context.invoker or token.get("audience") != target.get("uri"):
        return Finding(name, False,
                       f"it calls {target.get('uri')} as {token.get('serviceAccountEmail')} for audience "
                       f"{token.get('audience')}; poll accepts {context.invoker} with its own URL as audience",
                       "terraform apply")
    if job.get("state") == "PAUSED":
        return Finding(name, False, "paused: no scheduled polls",
                       "set use_scheduling_service = true and terraform apply (or gcloud scheduler jobs resume "
                       f"{job_name} --location={context.region})")
    status = job.get("status") or {}
    if status.get("code"):
        return Finding(name, False,
                       f"its last attempt failed (code {status['code']}: {status.get('message', 'no message')})",
                       f"read the poll service's logs: gcloud logging read 'resource.labels.service_name="
                       f"\"{context.service_name('poll')}\"' --project={context.project} --limit=20")
    return Finding(name, True)


def check_push_topic(context: Context) -> Finding:
    name = "gmail push topic"
    # No topic: enable_push = false, polling alone, which is fine.
    policy = read(context, name, topic_url(context) + ":getIamPolicy", "the push topic's IAM policy",
                  "roles/pubsub.viewer", Finding(name, True))
    if isinstance(policy, Finding):
        return policy
    publishers = [member for binding in policy.get("bindings", []) if binding.get("role") == "roles/pubsub.publisher"
                  for member in binding.get("members", [])]
    if GMAIL_PUSH_ACCOUNT not in publishers:
        return Finding(name, False, f"{GMAIL_PUSH_ACCOUNT} may not publish to {context.prefix}-gmail-push, so "
                                    "Gmail's watch() is refused and mail arrives only by polling",
                       "terraform apply (under domain-restricted sharing, after the exception in terraform/README.md)")
    return Finding(name, True)
