# One service account per function, each with only the roles its code uses; one invoker account
# for every machine caller (Cloud Scheduler, Pub/Sub push, a later fan-out queue) and one for the
# image builds. The default compute account is never used. Grants that builds and the first
# requests rely on are followed by time_sleep.grants_propagate: IAM changes take a while to
# reach every Google service.

locals {
  # Cloud Firestore reads and writes: every function works on mailbox, ticket or session state.
  firestore_users = local.function_names

  # Read every credential secret (client secret and refresh token): they call Gmail or exchange
  # codes for tokens.
  # (api: a reply whose earlier send was interrupted is looked up in Gmail before any new send.)
  credential_secret_readers = toset(["admin", "api", "labels", "oauth_callback", "poll", "push"])

  # Read client secrets only: oauth_start builds the consent URL of one credential set.
  client_secret_readers = toset(["oauth_start"])

  # Create credential secrets and add versions: a credential set is added or its client secret
  # replaced (admin), or a refresh token arrives (oauth_callback).
  credential_secret_writers = toset(["admin", "oauth_callback"])

  # Destroy credential secret versions: disconnecting a mailbox (admin).
  credential_secret_revokers = toset(["admin"])

  # Sign or verify links and sessions: admin signs sign-in links and admin sessions,
  # oauth_start verifies sign-in links. (oauth_callback checks the stored OAuth state instead.)
  signing_key_readers = toset(["admin", "oauth_start"])

  # Store and read attachments (objectUser: objects only, no bucket IAM or settings); api serves
  # attachment downloads and stores the MIME of large replies.
  attachment_writers = toset(["admin", "api", "poll", "push"])

  # Machine-called services the invoker account may call (OIDC tokens with the service URL as
  # audience). A fan-out queue added later calls poll with the same account.
  invoked_by_machines = toset(["poll", "push"])
}

resource "google_service_account" "function" {
  for_each = local.service_names

  project      = var.project_id
  account_id   = each.value
  display_name = "mailbridge ${each.key} (${var.prefix})"
  description  = "Runtime identity of the ${each.key} service (${var.prefix})."

  depends_on = [time_sleep.apis_propagate]
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.prefix}-invoker"
  display_name = "mailbridge invoker (${var.prefix})"
  description  = "Cloud Scheduler, Pub/Sub push and the fan-out queue call poll and push with OIDC tokens of this account (MAILBRIDGE_INVOKER_SERVICE_ACCOUNT); it may invoke those two and nothing else."

  depends_on = [time_sleep.apis_propagate]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.prefix}-build"
  display_name = "mailbridge image builds (${var.prefix})"
  description  = "Cloud Build builds the functions' image with this identity."

  depends_on = [time_sleep.apis_propagate]
}

# --- Functions -------------------------------------------------------------------------------

resource "google_project_iam_member" "firestore_user" {
  for_each = local.firestore_users

  project = var.project_id
  role    = "roles/datastore.user"
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

resource "google_project_iam_member" "client_secret_reader" {
  for_each = local.client_secret_readers

  project = var.project_id
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.function[each.key].member

  condition {
    title       = local.client_secret_condition.title
    description = local.client_secret_condition.description
    expression  = local.client_secret_condition.expression
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

  depends_on = [time_sleep.apis_propagate]
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

  depends_on = [time_sleep.apis_propagate]
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

  depends_on = [time_sleep.apis_propagate]
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

# Known secrets: granted on the secret itself.
resource "google_secret_manager_secret_iam_member" "signing_key_reader" {
  for_each = local.signing_key_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.signing_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.key].member
}

resource "google_secret_manager_secret_iam_member" "admin_oauth_client_secret_reader" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.admin_oauth_client_secret.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function["admin"].member
}

resource "google_storage_bucket_iam_member" "attachment_writer" {
  for_each = local.attachment_writers

  bucket = google_storage_bucket.attachments.name
  role   = "roles/storage.objectUser"
  member = google_service_account.function[each.key].member
}

# --- Who may call what -----------------------------------------------------------------------
# No allUsers or allAuthenticatedUsers binding exists anywhere: organisations created since
# May 2024 enforce domain-restricted sharing (iam.allowedPolicyMemberDomains), which refuses
# them. Browsers reach admin, oauth_start and oauth_callback because those services have Cloud
# Run's invoker IAM check turned off (functions.tf, invoker_iam_disabled), the mechanism Google
# documents for public services under that policy. Browsers carry no Google identity token, so
# the code guards those three: signed, expiring, single-use links (oauth_start), the stored OAuth
# state and PKCE verifier (oauth_callback), Sign in with Google restricted to admin_emails /
# admin_domain and signed sessions (admin). Everything else keeps the IAM check.

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.invoked_by_machines

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.function[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.invoker.member
}

# The helpdesk's JSON API: only the service accounts in var.api_callers may invoke it (the code
# checks their OIDC tokens again: MAILBRIDGE_API_CALLERS, functions/mailbridge/http/invoker.py).
resource "google_cloud_run_v2_service_iam_member" "api_invoker" {
  for_each = toset(var.api_callers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.function["api"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}

# labels is internal-only with the IAM check on: the admin pages and the CLI run the same code
# in-process, so nobody calls it by default. It stays as the one HTTP endpoint through which
# automation inside the project (given here by var.labels_invokers) can list labels and
# validate a deletion label with an identity token.
resource "google_cloud_run_v2_service_iam_member" "labels_invoker" {
  for_each = toset(var.labels_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.function["labels"].name
  role     = "roles/run.invoker"
  member   = each.value
}

# The Pub/Sub service agent mints the push subscriptions' OIDC tokens for the invoker account
# (needed in projects created before April 2021) and moves undeliverable messages to the
# dead-letter topics (pubsub.tf, queue.tf). The work queue always pushes, so this always exists.
resource "google_service_account_iam_member" "pubsub_mints_invoker_tokens" {
  count = 1

  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# --- Builds ----------------------------------------------------------------------------------

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# Build inputs (staging/) and logs (logs/) live in the build bucket only; the build account has
# no rights on any other bucket (the attachments, a Terraform state bucket).
resource "google_storage_bucket_iam_member" "build_reads_sources_writes_logs" {
  bucket = google_storage_bucket.build.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.build.member
}

# Build steps' output also goes to Cloud Logging (Cloud Build's own logs, not the functions').
resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

# IAM is eventually consistent: the first build and the first secret read would otherwise fail
# with PERMISSION_DENIED on a fresh project.
resource "time_sleep" "grants_propagate" {
  create_duration = "90s"


  depends_on = [
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_storage_bucket_iam_member.build_reads_sources_writes_logs,
    google_project_iam_member.build_log_writer,
    google_project_iam_member.firestore_user,
    google_project_iam_member.credential_secret_reader,
    google_project_iam_member.client_secret_reader,
    google_project_iam_member.credential_secret_writer,
    google_project_iam_member.credential_secret_creator,
    google_project_iam_member.credential_secret_revoker,
    google_secret_manager_secret_iam_member.signing_key_reader,
    google_secret_manager_secret_iam_member.admin_oauth_client_secret_reader,
    google_storage_bucket_iam_member.attachment_writer,
  ]
}
