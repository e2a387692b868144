# Shared names and values. Every name derives from var.prefix; nothing is random, so two
# deployments (production and UAT) with different prefixes live side by side in one project.

# Read after the APIs are on: on a fresh project the Resource Manager API may still be off.
data "google_project" "this" {
  project_id = var.project_id

  depends_on = [time_sleep.apis_propagate]
}

locals {
  project_number = data.google_project.this.number

  # One Cloud Run service per entry point of functions/main.py, all from one image (build.tf).
  # concurrency: poll and push take one request at a time, so poll_memory is sized for one
  # message being parsed (README.md); pages and OAuth redirects are light.
  # browser: opened by people's browsers, so Cloud Run's invoker IAM check is off (iam.tf says
  # why); every other service keeps the check.
  # internet: takes traffic from anywhere: the browser pages, and api, which a helpdesk outside
  # the project calls with an OIDC token (the IAM check stays on); the rest is internal only.
  functions = {
    admin = {
      concurrency   = 20
      browser       = true
      internet      = true
      memory        = var.function_memory
      timeout_s     = local.timeouts.browser_timeout_s
      max_instances = var.function_max_instances
    }
    api = {
      concurrency   = 20
      browser       = false
      internet      = true
      memory        = var.function_memory
      timeout_s     = local.timeouts.api_timeout_s
      max_instances = var.function_max_instances
    }
    labels = {
      concurrency   = 20
      browser       = false
      internet      = false
      memory        = var.function_memory
      timeout_s     = local.timeouts.browser_timeout_s
      max_instances = var.function_max_instances
    }
    oauth_callback = {
      concurrency   = 20
      browser       = true
      internet      = true
      memory        = var.function_memory
      timeout_s     = local.timeouts.browser_timeout_s
      max_instances = var.function_max_instances
    }
    oauth_start = {
      concurrency   = 20
      browser       = true
      internet      = true
      memory        = var.function_memory
      timeout_s     = local.timeouts.browser_timeout_s
      max_instances = var.function_max_instances
    }
    poll = {
      concurrency   = 1
      browser       = false
      internet      = false
      memory        = var.poll_memory
      timeout_s     = local.timeouts.poll_timeout_s
      max_instances = var.poll_max_instances
    }
    push = {
      concurrency   = 1
      browser       = false
      internet      = false
      memory        = var.poll_memory
      timeout_s     = local.timeouts.push_timeout_s
      max_instances = var.function_max_instances
    }
  }
  function_names = toset(keys(local.functions))

  # Cloud Run service names allow no '_': oauth_start -> <prefix>-oauth-start.
  service_names = { for name in local.function_names : name => "${var.prefix}-${replace(name, "_", "-")}" }

  # Cloud Run's deterministic URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app) is known before
  # the services exist, so every service can be told every URL without a dependency cycle. The
  # code builds links, the OAuth redirect URI and the audience it expects in OIDC tokens from
  # MAILBRIDGE_FUNCTION_URLS (terraform/README.md, "What the functions receive").
  function_urls = {
    for name in local.function_names :
    name => "https://${local.service_names[name]}-${local.project_number}.${var.region}.run.app"
  }

  # Every timeout, derived here and nowhere else:
  #   poll budget < poll timeout <= scheduler attempt deadline
  #   push budget < push timeout  = push subscription ack deadline
  #   api reply wait = half the api timeout (then it answers 202: the outbox sends it later)
  # A budget is when the code stops starting new work, leaving time to finish what it started.
  timeouts = {
    api_timeout_s        = var.function_timeout_seconds
    api_reply_wait_s     = var.function_timeout_seconds / 2
    browser_timeout_s    = var.function_timeout_seconds
    poll_timeout_s       = var.poll_timeout_seconds
    poll_time_budget_s   = var.poll_timeout_seconds - 60
    scheduler_deadline_s = var.poll_timeout_seconds
    push_timeout_s       = var.push_timeout_seconds
    push_time_budget_s   = var.push_timeout_seconds - 15
    push_ack_deadline_s  = var.push_timeout_seconds
  }

  push_enabled = var.enable_push
  # With push, the scheduled poll is a safety net; without it, the only way mail comes in.
  poll_schedule = var.schedule != "" ? var.schedule : (local.push_enabled ? "*/5 * * * *" : "* * * * *")

  # Secrets the code creates at run time for each credential set:
  # <prefix>-cred-<hash>-client (client secret) and <prefix>-cred-<hash>-refresh (refresh token),
  # see functions/mailbridge/secrets.py. IAM conditions see names with the project number.
  credential_secret_prefix = "${var.prefix}-cred-"
  credential_secret_condition = {
    title       = "${var.prefix} credential secrets only"
    description = "Only secrets whose name starts with ${local.credential_secret_prefix} (created by mailbridge at run time)."
    expression  = "resource.name.startsWith(\"projects/${local.project_number}/secrets/${local.credential_secret_prefix}\")"
  }
  # Client secrets only (oauth_start needs the client, never a refresh token). Access is checked
  # on the version (projects/N/secrets/ID/versions/V), so the id is extracted from the name.
  client_secret_condition = {
    title       = "${var.prefix} OAuth client secrets only"
    description = "Only ${local.credential_secret_prefix}*-client secrets (client secrets, no refresh tokens)."
    expression  = "resource.name.startsWith(\"projects/${local.project_number}/secrets/${local.credential_secret_prefix}\") && resource.name.extract(\"/secrets/{id}/versions/\").endsWith(\"-client\")"
  }

  pubsub_topic_name = "${var.prefix}-gmail-push"

  # Environment shared by every function (read only by functions/mailbridge/config.py).
  function_environment = {
    GOOGLE_CLOUD_PROJECT               = var.project_id
    MAILBRIDGE_ATTACHMENTS_BUCKET      = google_storage_bucket.attachments.name
    MAILBRIDGE_FUNCTION_URLS           = jsonencode(local.function_urls)
    MAILBRIDGE_INSTANCE                = var.instance
    MAILBRIDGE_INVOKER_SERVICE_ACCOUNT = google_service_account.invoker.email
    MAILBRIDGE_PREFIX                  = var.prefix
    MAILBRIDGE_PUBSUB_TOPIC            = local.push_enabled ? google_pubsub_topic.gmail_push[0].id : ""
    MAILBRIDGE_WORK_TOPIC              = google_pubsub_topic.work.id
  }

  # Settings one function needs on top of the shared ones. The events topic goes to the
  # functions that may publish to it (local.event_publishers, events.tf).
  function_extra_environment = {
    admin = {
      MAILBRIDGE_ADMIN_DOMAIN                 = var.admin_domain
      MAILBRIDGE_ADMIN_EMAILS                 = join(",", var.admin_emails)
      MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID        = var.admin_oauth_client_id
      MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID = google_secret_manager_secret.admin_oauth_client_secret.secret_id
      MAILBRIDGE_EVENTS_TOPIC                 = google_pubsub_topic.events.id
    }
    api = {
      MAILBRIDGE_API_CALLERS  = join(",", var.api_callers)
      MAILBRIDGE_EVENTS_TOPIC = google_pubsub_topic.events.id
      MAILBRIDGE_REPLY_WAIT_S = tostring(local.timeouts.api_reply_wait_s)
    }
    labels         = {}
    oauth_callback = {}
    oauth_start    = {}
    poll = {
      MAILBRIDGE_EVENTS_TOPIC       = google_pubsub_topic.events.id
      MAILBRIDGE_POLL_TIME_BUDGET_S = tostring(local.timeouts.poll_time_budget_s)
    }
    push = {
      MAILBRIDGE_EVENTS_TOPIC       = google_pubsub_topic.events.id
      MAILBRIDGE_PUSH_TIME_BUDGET_S = tostring(local.timeouts.push_time_budget_s)
    }
  }

  labels = {
    app      = "mailbridge"
    instance = var.instance
    prefix   = var.prefix
  }
}
