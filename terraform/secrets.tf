# The signing key for links and sessions. Per-credential-set secrets are created by the code at
# run time (names start with local.credential_secret_prefix); iam.tf grants rights on those only.

resource "random_password" "signing_key" {
  # The value lives in the Terraform state too: keep the state in a private, encrypted backend.
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "signing_key" {
  # Rotate with `terraform apply -replace=random_password.signing_key`: a new version is added
  # and the functions are redeployed with it (existing links and sessions stop working).
  project   = var.project_id
  secret_id = "${var.prefix}-signing-key"

  replication {
    auto {}
  }

  labels = {
    app = "mailbridge"
  }

  depends_on = [google_project_service.service]
}

resource "google_secret_manager_secret_version" "signing_key" {
  secret      = google_secret_manager_secret.signing_key.id
  secret_data = random_password.signing_key.result
}
