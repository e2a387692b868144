# Secrets Terraform knows by name. None of their values is ever in the state or the plan:
# - the signing key is drawn from an ephemeral random_password and written with the write-only
#   secret_data_wo (Terraform >= 1.11);
# - the admin sign-in client secret is added by a person with gcloud (terraform/README.md).
# Per-credential-set secrets are created by the code at run time (names start with
# local.credential_secret_prefix); iam.tf grants rights on those only.

ephemeral "random_password" "signing_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "signing_key" {
  project   = var.project_id
  secret_id = "${var.prefix}-signing-key"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis_propagate]
}

resource "google_secret_manager_secret_version" "signing_key" {
  secret = google_secret_manager_secret.signing_key.id
  # Rotate by raising var.signing_key_version: a new version is written and the services move to
  # it (open links and sessions stop working).
  secret_data_wo         = ephemeral.random_password.signing_key.result
  secret_data_wo_version = var.signing_key_version
}

# Client secret of the OAuth client that admins sign in with. Added outside Terraform:
#   printf %s "$SECRET" | gcloud secrets versions add <prefix>-admin-oauth-client-secret --data-file=-
# The admin function reads its latest version when someone signs in, so a deployment without it
# still starts and says what is missing (scripts/mailbridge doctor checks it).
resource "google_secret_manager_secret" "admin_oauth_client_secret" {
  project   = var.project_id
  secret_id = "${var.prefix}-admin-oauth-client-secret"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis_propagate]
}
