# One service account per function, each with only the roles its code uses; the scheduler, the
# Pub/Sub push subscription and the builds have accounts of their own. The default compute
# account is never used.

locals {
  # Service account ids allow no '_': oauth_start -> <prefix>-oauth-start.
  function_account_ids = { for name in local.function_names : name => "${var.prefix}-${replace(name, "_", "-")}" }

  # Cloud Firestore reads and writes: every function works on mailbox, ticket or session state.
  firestore_users = local.function_names

  # Read the credential secrets (client secret, refresh token).
  credential_secret_readers = local.function_names

  # Create credential secrets and add versions: a credential set is added or its client secret
  # replaced (admin), or a refresh token arrives (oauth_callback).
  credential_secret_writers = toset(["admin", "oauth_callback"])

  # Destroy credential secret versions: disconnecting a mailbox (admin).
  credential_secret_revokers = toset(["admin"])

  # Sign or verify links and sessions: admin signs sign-in links and admin sessions,
  # oauth_start verifies sign-in links. (oauth_callback checks the stored OAuth state instead.)
  signing_key_readers = toset(["admin", "oauth_start"])

  # Store and read attachments.
  attachment_writers = toset(["admin", "poll", "push"])
}

resource "google_service_account" "function" {
  for_each = local.function_account_ids

  project      = var.project_id
  account_id   = each.value
  display_name = "mailbridge ${each.key} function"
  description  = "Runtime identity of the ${each.key} function (${var.prefix})."

  depends_on = [google_project_service.service]
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.prefix}-scheduler"
  display_name = "mailbridge scheduler"
  description  = "Cloud Scheduler calls poll with this identity; it may invoke poll and nothing else."

  depends_on = [google_project_service.service]
}

resource "google_service_account" "push_invoker" {
  project      = var.project_id
  account_id   = "${var.prefix}-push-invoker"
  display_name = "mailbridge Gmail push invoker"
  description  = "The Pub/Sub push subscription calls push with this identity; it may invoke push and nothing else."

  depends_on = [google_project_service.service]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.prefix}-build"
  display_name = "mailbridge function builds"
  description  = "Cloud Build builds the functions' images with this identity."

  depends_on = [google_project_service.service]
}

# --- Functions -------------------------------------------------------------------------------

resource "google_project_iam_member" "firestore_user" {
  for_each = local.firestore_users

  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "log_writer" {
  for_each = local.function_names

  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.function[each.key].member
}

# Credential secrets are created by the code at run time, so they cannot be granted one by one:
# the grants are project-level but conditioned on the secret name prefix.
resource "google_project_iam_member" "credential_secret_reader" {
  for_each = local.credential_secret_readers

  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.function[each.key].member

  condition {
    title       = local.credential_secret_condition.title
    description = local.credential_secret_condition.description
    expression  = local.credential_secret_condition.expression
  }
}

# Custom roles: the predefined role that can create secrets (secretmanager.admin) can also
# delete every secret and change its IAM policy.
resource "google_project_iam_custom_role" "credential_secret_writer" {
  project     = var.project_id
  role_id     = "${replace(var.prefix, "-", "_")}_credential_secret_writer"
  title       = "${var.prefix} credential secret writer"
  description = "Add versions to mailbridge credential secrets."
  permissions = [
    "secretmanager.secrets.get",
    "secretmanager.versions.add",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
  ]
}

# Secret Manager checks secrets.create on the parent project, whose name can never match the
# secret-name condition, so this one permission is granted without it. It lets the holder create
# empty secrets only: reading or adding versions still needs the conditioned roles, and a
# secret's creator gets no rights on it.
resource "google_project_iam_custom_role" "credential_secret_creator" {
  project     = var.project_id
  role_id     = "${replace(var.prefix, "-", "_")}_credential_secret_creator"
  title       = "${var.prefix} credential secret creator"
  description = "Create (empty) mailbridge credential secrets."
  permissions = [
    "secretmanager.secrets.create",
  ]
}

resource "google_project_iam_custom_role" "credential_secret_revoker" {
  project     = var.project_id
  role_id     = "${replace(var.prefix, "-", "_")}_credential_secret_revoker"
  title       = "${var.prefix} credential secret revoker"
  description = "Destroy versions of mailbridge credential secrets (disconnect)."
  permissions = [
    "secretmanager.secrets.get",
    "secretmanager.versions.destroy",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
  ]
}

resource "google_project_iam_member" "credential_secret_writer" {
  for_each = local.credential_secret_writers

  project = var.project_id
  role    = google_project_iam_custom_role.credential_secret_writer.id
  member  = google_service_account.function[each.key].member

  condition {
    title       = local.credential_secret_condition.title
    description = local.credential_secret_condition.description
    expression  = local.credential_secret_condition.expression
  }
}

resource "google_project_iam_member" "credential_secret_creator" {
  for_each = local.credential_secret_writers

  project = var.project_id
  role    = google_project_iam_custom_role.credential_secret_creator.id
  member  = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "credential_secret_revoker" {
  for_each = local.credential_secret_revokers

  project = var.project_id
  role    = google_project_iam_custom_role.credential_secret_revoker.id
  member  = google_service_account.function[each.key].member

  condition {
    title       = local.credential_secret_condition.title
    description = local.credential_secret_condition.description
    expression  = local.credential_secret_condition.expression
  }
}

# The signing key is one known secret: granted on that secret only.
resource "google_secret_manager_secret_iam_member" "signing_key_reader" {
  for_each = local.signing_key_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.signing_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.key].member
}

resource "google_storage_bucket_iam_member" "attachment_writer" {
  for_each = local.attachment_writers

  bucket = google_storage_bucket.attachments.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.function[each.key].member
}

# --- Invokers --------------------------------------------------------------------------------
# A 2nd gen function is served by a Cloud Run service: invoking it needs run.invoker there.

resource "google_cloud_run_service_iam_member" "scheduler_invokes_poll" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.poll.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_service_iam_member" "push_invoker_invokes_push" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.push.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push_invoker.member
}

# Browsers reach oauth_start (signed, expiring, single-use links), oauth_callback (Google's
# redirect, checked against the stored state and PKCE verifier) and admin (signed admin links
# and sessions), so they cannot require a Google identity token. The code protects them.
resource "google_cloud_run_service_iam_member" "public_browser_function" {
  #checkov:skip=CKV_GCP_102:oauth_start, oauth_callback and admin are opened by browsers; access is checked in code with signed links, OAuth state + PKCE and signed sessions.
  for_each = toset(["admin", "oauth_callback", "oauth_start"])

  project  = var.project_id
  location = var.region
  service  = local.browser_function_services[each.key]
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- Builds ----------------------------------------------------------------------------------

resource "google_project_iam_member" "build" {
  for_each = toset([
    "roles/artifactregistry.writer",
    "roles/logging.logWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.build.member
}

# Builds read the source from buckets Cloud Functions manages (gcf-v2-sources-*), whose names
# are not ours to know; they never need the attachments.
resource "google_project_iam_member" "build_storage" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = google_service_account.build.member

  condition {
    title       = "not the attachments bucket"
    description = "Function builds never read email attachments."
    expression  = "!resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.attachments.name}\")"
  }
}
