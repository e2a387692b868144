# One 2nd gen function per entry point in functions/main.py, all built from one archive of
# functions/ (with its requirements.txt). Each function is named after its entry point: the code
# links to "<MAILBRIDGE_FUNCTIONS_URL>/<function>".
#
# poll and push accept internal traffic only: Cloud Scheduler and Pub/Sub in the same project
# count as internal when they call the function's run.app URL (service_config[0].uri), which is
# what scheduler.tf and pubsub.tf target. Trigger a poll by hand with
# `gcloud scheduler jobs run <prefix>-poll --location <region>`.

locals {
  runtime = "python311"

  # Cloud Run services behind the browser-facing functions (see iam.tf for why they are public).
  browser_function_services = {
    admin          = google_cloudfunctions2_function.admin.service_config[0].service
    oauth_callback = google_cloudfunctions2_function.oauth_callback.service_config[0].service
    oauth_start    = google_cloudfunctions2_function.oauth_start.service_config[0].service
  }

  # Everything a function needs before it first starts: build rights and its own grants.
  function_dependencies = [
    google_project_iam_member.build,
    google_project_iam_member.build_storage,
    google_project_iam_member.credential_secret_reader,
    google_project_iam_member.firestore_user,
    google_project_iam_member.log_writer,
    google_secret_manager_secret_iam_member.signing_key_reader,
  ]
}

resource "google_cloudfunctions2_function" "oauth_start" {
  #checkov:skip=CKV_GCP_124:Opened by browsers from signed links; the link signature, expiry and single use are checked in code.
  name        = "oauth_start"
  project     = var.project_id
  location    = var.region
  description = "Browser GET with a signed, expiring link: redirects to Google's consent page for one credential set."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "oauth_start"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.function_memory
    timeout_seconds                = var.function_timeout_seconds
    max_instance_count             = var.function_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["oauth_start"].email
    environment_variables          = local.function_environment

    secret_environment_variables {
      key        = "MAILBRIDGE_SIGNING_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.signing_key.secret_id
      # A pinned version: replacing the key redeploys the functions with it.
      version = google_secret_manager_secret_version.signing_key.version
    }
  }

  depends_on = [local.function_dependencies]
}

resource "google_cloudfunctions2_function" "oauth_callback" {
  #checkov:skip=CKV_GCP_124:Google redirects the admin's browser here; the OAuth state and PKCE verifier are checked in code.
  name        = "oauth_callback"
  project     = var.project_id
  location    = var.region
  description = "Google's OAuth redirect: checks state, exchanges the code (PKCE), stores the refresh token in Secret Manager."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "oauth_callback"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.function_memory
    timeout_seconds                = var.function_timeout_seconds
    max_instance_count             = var.function_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["oauth_callback"].email
    environment_variables          = local.function_environment
  }

  depends_on = [local.function_dependencies]
}

resource "google_cloudfunctions2_function" "poll" {
  name        = "poll"
  project     = var.project_id
  location    = var.region
  description = "Called by Cloud Scheduler (OIDC): polls every connected mailbox of this instance."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "poll"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.poll_memory
    timeout_seconds                = var.poll_timeout_seconds
    max_instance_count             = var.poll_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["poll"].email
    environment_variables = merge(local.function_environment, {
      # Stop starting new mailbox work a minute before the function times out.
      MAILBRIDGE_POLL_TIME_BUDGET_S = tostring(var.poll_timeout_seconds - 60)
    })
  }

  depends_on = [local.function_dependencies]
}

resource "google_cloudfunctions2_function" "labels" {
  #checkov:skip=CKV_GCP_124:Private by IAM (no allUsers): callers need run.invoker and an identity token, from wherever the admin works.
  name        = "labels"
  project     = var.project_id
  location    = var.region
  description = "Lists and creates Gmail labels, validates the deletion label. Private: callers need run.invoker."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "labels"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.function_memory
    timeout_seconds                = var.function_timeout_seconds
    max_instance_count             = var.function_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["labels"].email
    environment_variables          = local.function_environment
  }

  depends_on = [local.function_dependencies]
}

resource "google_cloudfunctions2_function" "admin" {
  #checkov:skip=CKV_GCP_124:Admin pages for browsers; signed admin links and signed sessions are checked in code.
  name        = "admin"
  project     = var.project_id
  location    = var.region
  description = "Admin pages in the browser (signed admin links and sessions)."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "admin"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.function_memory
    timeout_seconds                = var.function_timeout_seconds
    max_instance_count             = var.function_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["admin"].email
    environment_variables          = local.function_environment

    secret_environment_variables {
      key        = "MAILBRIDGE_SIGNING_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.signing_key.secret_id
      # A pinned version: replacing the key redeploys the functions with it.
      version = google_secret_manager_secret_version.signing_key.version
    }
  }

  depends_on = [local.function_dependencies]
}

resource "google_cloudfunctions2_function" "push" {
  name        = "push"
  project     = var.project_id
  location    = var.region
  description = "Gmail watch notifications pushed by Pub/Sub (OIDC): incremental sync of one mailbox."

  labels = {
    app      = "mailbridge"
    instance = var.instance
  }

  build_config {
    runtime         = local.runtime
    entry_point     = "push"
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    available_memory               = var.poll_memory
    timeout_seconds                = var.function_timeout_seconds
    max_instance_count             = var.function_max_instances
    min_instance_count             = 0
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function["push"].email
    environment_variables          = local.function_environment
  }

  depends_on = [local.function_dependencies]
}
