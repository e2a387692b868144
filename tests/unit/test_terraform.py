"""Structure checks of terraform/ on the parsed HCL (python-hcl2), against the code it deploys.

No provider can be downloaded here, so these tests stand in for `terraform validate`/`plan` on
what matters for mailbridge: one function per entry point, least-privilege identities,
secret rights only under the prefix, OIDC for machine callers, and the Firestore indexes.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from pathlib import Path

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MAIN_PY = REPO / "functions" / "main.py"
INDEXES_PY = REPO / "functions" / "mailbridge" / "indexes.py"

BROWSER_FUNCTIONS = {"admin", "oauth_callback", "oauth_start"}
SECRET_ROLES = {"roles/secretmanager.secretAccessor", "roles/secretmanager.admin"}
IAM_MEMBER_TYPES = (
    "google_project_iam_member",
    "google_project_iam_binding",
    "google_cloud_run_service_iam_member",
    "google_cloud_run_service_iam_binding",
    "google_cloud_run_v2_service_iam_member",
    "google_cloudfunctions2_function_iam_member",
    "google_secret_manager_secret_iam_member",
    "google_storage_bucket_iam_member",
    "google_pubsub_topic_iam_member",
    "google_pubsub_subscription_iam_member",
    "google_service_account_iam_member",
)
BOUNDED_VERSION = re.compile(r"^>=\s*\d+(\.\d+)*,\s*<\s*\d+(\.\d+)*$")


# --- Loading ---------------------------------------------------------------------------------


@functools.cache
def parsed_files() -> dict[str, dict]:
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files, f"no .tf files in {TERRAFORM}"
    parsed = {}
    for path in files:
        with path.open() as handle:
            parsed[path.name] = hcl2.load(handle, serialization_options=options)
    return parsed


def blocks(kind: str) -> list[dict]:
    """Top-level blocks of one kind (resource, data, variable, output, locals, terraform)."""
    return [block for document in parsed_files().values() for block in document.get(kind, [])]


def resources(resource_type: str, kind: str = "resource") -> dict[str, dict]:
    found: dict[str, dict] = {}
    for block in blocks(kind):
        for name, body in block.get(resource_type, {}).items():
            assert name not in found, f"{resource_type}.{name} declared twice"
            found[name] = body
    return found


def locals_() -> dict:
    merged: dict = {}
    for block in blocks("locals"):
        merged.update(block)
    return merged


def names_in_set_expression(expression: str) -> set[str]:
    """The names in an HCL literal such as ${toset(["a", "b"])}."""
    return set(re.findall(r'"([^"]+)"', expression))


def resolve_name_set(expression: str) -> set[str]:
    """A literal set, or a reference to a local holding one."""
    reference = re.fullmatch(r"\$\{local\.(\w+)\}", expression)
    if reference:
        return resolve_name_set(locals_()[reference.group(1)])
    return names_in_set_expression(expression)


def one(value):
    """A nested block as hcl2 gives it (a list of one dict)."""
    assert isinstance(value, list) and len(value) == 1, f"expected one block, got {value!r}"
    return value[0]


def entry_points() -> set[str]:
    if not MAIN_PY.exists():
        pytest.fail(f"{MAIN_PY.relative_to(REPO)} does not exist: cannot check the functions against its entry points")
    tree = ast.parse(MAIN_PY.read_text(), filename=str(MAIN_PY))
    found = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (
                isinstance(target, ast.Attribute)
                and target.attr == "http"
                and isinstance(target.value, ast.Name)
                and target.value.id == "functions_framework"
            ):
                found.add(node.name)
    assert found, f"no @functions_framework.http function in {MAIN_PY.relative_to(REPO)}"
    return found


def functions() -> dict[str, dict]:
    return resources("google_cloudfunctions2_function")


def iam_members() -> list[tuple[str, str, dict]]:
    return [(kind, name, body) for kind in IAM_MEMBER_TYPES for name, body in resources(kind).items()]


def custom_role_permissions() -> dict[str, list[str]]:
    return {
        f"${{google_project_iam_custom_role.{name}.id}}": body["permissions"]
        for name, body in resources("google_project_iam_custom_role").items()
    }


# --- Functions -------------------------------------------------------------------------------


def test_every_entry_point_has_a_function_with_the_same_entry_point_and_name():
    declared = {name: one(body["build_config"])["entry_point"] for name, body in functions().items()}

    for entry_point in sorted(entry_points()):
        assert entry_point in declared, f"no google_cloudfunctions2_function for entry point {entry_point}"
        assert declared[entry_point] == entry_point
        # The code links to <MAILBRIDGE_FUNCTIONS_URL>/<function>: the function's name must match.
        assert functions()[entry_point]["name"] == entry_point
    assert set(declared) == entry_points(), "functions declared without an entry point in functions/main.py"


def test_function_names_local_lists_every_entry_point():
    # IAM (service accounts, Firestore, logs, secrets) is granted over local.function_names.
    assert names_in_set_expression(locals_()["function_names"]) == entry_points()


def test_every_function_runs_as_a_service_account_of_its_own():
    accounts = {}
    for name, body in functions().items():
        service_config = one(body["service_config"])
        account = service_config.get("service_account_email", "")
        assert account == f'${{google_service_account.function["{name}"].email}}', (
            f"{name} must run as google_service_account.function[\"{name}\"], not {account!r}"
        )
        accounts[name] = account
        assert one(body["build_config"]).get("service_account") == "${google_service_account.build.id}", (
            f"{name} must build with the dedicated build account, not the default one"
        )
    assert len(set(accounts.values())) == len(accounts)
    assert "function_account_ids" in resources("google_service_account")["function"]["for_each"]


def test_the_default_compute_account_appears_nowhere():
    for path in TERRAFORM.glob("*.tf"):
        text = path.read_text()
        assert "compute@developer.gserviceaccount.com" not in text, path.name
        assert "appspot.gserviceaccount.com" not in text, path.name


def test_environment_gives_the_functions_every_setting_they_read():
    environment = locals_()["function_environment"]
    for key in (
        "GOOGLE_CLOUD_PROJECT",
        "MAILBRIDGE_INSTANCE",
        "MAILBRIDGE_FUNCTIONS_URL",
        "MAILBRIDGE_PREFIX",
        "MAILBRIDGE_ATTACHMENTS_BUCKET",
        "MAILBRIDGE_PUBSUB_TOPIC",
    ):
        assert key in environment, key
    assert environment["MAILBRIDGE_FUNCTIONS_URL"] == "${local.functions_url}"
    assert locals_()["functions_url"] == "https://${var.region}-${var.project_id}.cloudfunctions.net"
    assert "MAILBRIDGE_SIGNING_KEY" not in environment, "the signing key comes from Secret Manager only"
    for name, body in functions().items():
        assert "local.function_environment" in one(body["service_config"])["environment_variables"], name


def test_signing_key_reaches_browser_functions_from_secret_manager_with_a_grant():
    readers = resolve_name_set(locals_()["signing_key_readers"])
    grant = resources("google_secret_manager_secret_iam_member")["signing_key_reader"]
    assert grant["for_each"] == "${local.signing_key_readers}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"

    with_key = set()
    for name, body in functions().items():
        for secret in one(body["service_config"]).get("secret_environment_variables", []):
            assert secret["key"] == "MAILBRIDGE_SIGNING_KEY"
            assert secret["secret"] == "${google_secret_manager_secret.signing_key.secret_id}"
            with_key.add(name)
    assert {"admin", "oauth_start"} <= with_key, "admin signs links and sessions, oauth_start verifies links"
    assert with_key == readers, "every function given the key needs the grant, and no other"


def test_signing_secret_name_comes_from_the_prefix():
    assert resources("google_secret_manager_secret")["signing_key"]["secret_id"].startswith("${var.prefix}-")
    assert not resources("random_id"), "names come from the prefix, never random_id"


def test_poll_has_a_timeout_fit_for_a_backlog():
    poll = one(functions()["poll"]["service_config"])
    assert poll["timeout_seconds"] == "${var.poll_timeout_seconds}"
    variable = variables()["poll_timeout_seconds"]
    assert variable["default"] >= 300


def test_functions_that_parse_mail_get_memory_for_gmails_largest_message():
    # poll and push parse mail: about 12 x the message plus ~100 MiB (docs/reliability.md)
    for name in ("poll", "push"):
        assert one(functions()[name]["service_config"])["available_memory"] == "${var.poll_memory}", name
    default = variables()["poll_memory"]["default"]
    number, unit = re.fullmatch(r"(\d+)(M|Mi|G|Gi)", default).groups()
    mebibytes = int(number) * (1024 if unit.startswith("G") else 1)
    assert mebibytes >= 12 * 50 + 100, default


def test_source_archive_is_functions_folder_with_its_requirements():
    archive = resources("archive_file", kind="data")["functions_source"]
    assert archive["source_dir"] == "${path.module}/../functions"
    assert (REPO / "functions" / "requirements.txt").exists()
    for pattern in archive.get("excludes", []):
        assert not fnmatch.fnmatch("requirements.txt", pattern), f"{pattern} would drop requirements.txt"
    source_object = resources("google_storage_bucket_object")["functions_source"]
    assert "output_md5" in source_object["name"], "the object name must change with the code"


# --- Who may call what -----------------------------------------------------------------------


def test_only_browser_functions_are_public():
    public = []
    for kind, name, body in iam_members():
        members = [body.get("member", "")] + list(body.get("members", []))
        if any(member in ("allUsers", "allAuthenticatedUsers") for member in members):
            public.append((kind, name, body))
    assert len(public) == 1, f"expected one public invoker grant, got {[(k, n) for k, n, _ in public]}"
    kind, name, body = public[0]
    assert kind == "google_cloud_run_service_iam_member"
    assert body["role"] == "roles/run.invoker"
    assert names_in_set_expression(body["for_each"]) == BROWSER_FUNCTIONS
    for private in ("poll", "push", "labels"):
        assert private not in locals_()["browser_function_services"]


def test_machine_called_functions_accept_internal_traffic_only():
    for name in ("poll", "push"):
        assert one(functions()[name]["service_config"])["ingress_settings"] == "ALLOW_INTERNAL_ONLY", name


def test_scheduler_posts_to_poll_with_an_oidc_token_for_poll():
    job = resources("google_cloud_scheduler_job")["poll"]
    target = one(job["http_target"])
    token = one(target["oidc_token"])

    assert target["http_method"] == "POST"
    assert target["uri"].startswith("${google_cloudfunctions2_function.poll.")
    assert token["audience"] == target["uri"]
    assert token["service_account_email"] == "${google_service_account.scheduler.email}"
    assert job["paused"] == "${!var.use_scheduling_service}"
    assert int(one(job["retry_config"])["retry_count"]) >= 1


def test_scheduler_account_may_invoke_poll_and_nothing_else():
    grants = [
        (kind, body)
        for kind, _, body in iam_members()
        if "google_service_account.scheduler." in body.get("member", "")
    ]
    assert len(grants) == 1, grants
    kind, body = grants[0]
    assert kind == "google_cloud_run_service_iam_member"
    assert body["role"] == "roles/run.invoker"
    assert body["service"] == "${google_cloudfunctions2_function.poll.service_config[0].service}"


def test_push_subscription_delivers_to_push_with_oidc_retries_and_dead_letters():
    subscription = resources("google_pubsub_subscription")["gmail_push"]
    push_config = one(subscription["push_config"])
    token = one(push_config["oidc_token"])

    assert push_config["push_endpoint"].startswith("${google_cloudfunctions2_function.push.")
    assert token["audience"] == push_config["push_endpoint"]
    assert token["service_account_email"] == "${google_service_account.push_invoker.email}"
    assert one(subscription["dead_letter_policy"])["dead_letter_topic"].startswith(
        "${google_pubsub_topic.gmail_push_dead_letter"
    )
    assert one(subscription["retry_policy"])["minimum_backoff"]
    invoker_grants = [
        body for _, _, body in iam_members() if body.get("member") == "${google_service_account.push_invoker.member}"
    ]
    assert [grant["service"] for grant in invoker_grants] == [
        "${google_cloudfunctions2_function.push.service_config[0].service}"
    ]


def test_gmail_may_publish_to_the_push_topic():
    grant = resources("google_pubsub_topic_iam_member")["gmail_publisher"]
    assert grant["member"] == "serviceAccount:gmail-api-push@system.gserviceaccount.com"
    assert grant["role"] == "roles/pubsub.publisher"
    assert grant["topic"].startswith("${google_pubsub_topic.gmail_push[")


# --- Secrets ---------------------------------------------------------------------------------


def test_no_project_wide_secret_rights_without_a_prefix_condition():
    custom_roles = custom_role_permissions()
    condition = locals_()["credential_secret_condition"]
    assert condition["expression"] == (
        'resource.name.startsWith("projects/${local.project_number}/secrets/${local.credential_secret_prefix}")'
    )
    assert locals_()["credential_secret_prefix"] == "${var.prefix}-cred-"

    conditioned = 0
    for kind in ("google_project_iam_member", "google_project_iam_binding"):
        for name, body in resources(kind).items():
            role = body["role"]
            assert role != "roles/secretmanager.admin", f"{kind}.{name}: never secretmanager.admin project-wide"
            permissions = custom_roles.get(role, [])
            if role.startswith("roles/secretmanager.") or any(p.startswith("secretmanager.") for p in permissions):
                if permissions == ["secretmanager.secrets.create"]:
                    # Checked on the parent project, so a secret-name condition could never match;
                    # creating an empty secret gives no access to any secret's data.
                    assert "condition" not in body
                    continue
                assert "condition" in body, f"{kind}.{name} grants {role} on every secret of the project"
                assert one(body["condition"])["expression"] == "${local.credential_secret_condition.expression}"
                conditioned += 1
    assert conditioned == 3, "expected conditioned reader, writer and revoker grants"
    assert not resources("google_project_iam_policy"), "authoritative project policies are out of scope"


def test_secret_rights_match_what_each_function_does():
    readers = resolve_name_set(locals_()["credential_secret_readers"])
    writers = resolve_name_set(locals_()["credential_secret_writers"])
    revokers = resolve_name_set(locals_()["credential_secret_revokers"])
    assert readers == entry_points()
    assert writers == {"admin", "oauth_callback"}
    assert revokers == {"admin"}
    roles = resources("google_project_iam_custom_role")
    assert roles["credential_secret_creator"]["permissions"] == ["secretmanager.secrets.create"]
    assert "secretmanager.versions.add" in roles["credential_secret_writer"]["permissions"]
    assert {"secretmanager.versions.destroy", "secretmanager.versions.list"} <= set(
        roles["credential_secret_revoker"]["permissions"]
    )
    for role in roles.values():
        assert "secretmanager.secrets.delete" not in role["permissions"]
        assert "secretmanager.secrets.setIamPolicy" not in role["permissions"]
    for grant in ("credential_secret_creator", "credential_secret_writer"):
        assert resources("google_project_iam_member")[grant]["for_each"] == "${local.credential_secret_writers}"
    assert resources("google_project_iam_member")["credential_secret_revoker"]["for_each"] == (
        "${local.credential_secret_revokers}"
    )


def test_no_broad_project_roles():
    for kind in ("google_project_iam_member", "google_project_iam_binding"):
        for name, body in resources(kind).items():
            assert body["role"] not in ("roles/owner", "roles/editor", "roles/viewer"), f"{kind}.{name}"


# --- Storage ---------------------------------------------------------------------------------


def test_attachments_bucket_is_private_versioned_and_expires_per_retention():
    bucket = resources("google_storage_bucket")["attachments"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert one(bucket["versioning"])["enabled"] is True
    ages = [one(rule["condition"]).get("age") for rule in bucket["lifecycle_rule"]]
    assert "${var.attachment_retention_days}" in ages
    writers = resolve_name_set(locals_()["attachment_writers"])
    assert writers == {"admin", "poll", "push"}


# --- Firestore -------------------------------------------------------------------------------


def declared_indexes() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    declared = set()
    for body in resources("google_firestore_index").values():
        fields = tuple(
            (field["field_path"], "ARRAY_CONTAINS" if field.get("array_config") == "CONTAINS" else field["order"])
            for field in body["fields"]
        )
        declared.add((body["collection"], fields))
    return declared


def code_indexes() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    tree = ast.parse(INDEXES_PY.read_text(), filename=str(INDEXES_PY))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(target, ast.Name) and target.id == "COMPOSITE_INDEXES" for target in targets):
            value = ast.literal_eval(node.value)
            return {(index["collection"], tuple(tuple(field) for field in index["fields"])) for index in value}
    pytest.fail(f"{INDEXES_PY.relative_to(REPO)} has no literal COMPOSITE_INDEXES")


def test_firestore_declares_every_composite_index_the_code_needs():
    if not INDEXES_PY.exists():
        pytest.skip(f"{INDEXES_PY.relative_to(REPO)} does not exist yet: no index list to compare with")
    missing = code_indexes() - declared_indexes()
    assert not missing, f"indexes used by the code but not declared in terraform/firestore.tf: {sorted(missing)}"


def test_firestore_declares_no_index_the_code_does_not_use():
    # Every index costs a write per indexed document: keep terraform/firestore.tf to the code's list.
    if not INDEXES_PY.exists():
        pytest.skip(f"{INDEXES_PY.relative_to(REPO)} does not exist yet: no index list to compare with")
    unused = declared_indexes() - code_indexes()
    assert not unused, f"indexes declared in terraform/firestore.tf but not in COMPOSITE_INDEXES: {sorted(unused)}"


def test_firestore_indexes_target_the_default_native_database():
    database = resources("google_firestore_database")["default"]
    assert database["name"] == "(default)"
    assert database["type"] == "FIRESTORE_NATIVE"
    for name, body in resources("google_firestore_index").items():
        assert body["database"] == "(default)", name
        assert len(body["fields"]) >= 2, f"{name}: a composite index has at least two fields"


# --- Variables, outputs, providers -----------------------------------------------------------


def variables() -> dict[str, dict]:
    found = {}
    for block in blocks("variable"):
        found.update(block)
    return found


def test_every_variable_has_a_description_and_a_type():
    for name, body in variables().items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"


def test_variables_are_declared_in_alphabetical_order():
    names = [name for block in parsed_files()["variables.tf"].get("variable", []) for name in block]
    assert names == sorted(names)
    assert set(names) == set(variables()), "variables belong in variables.tf"


def test_constrained_variables_are_validated():
    for name in (
        "attachment_retention_days",
        "function_memory",
        "function_timeout_seconds",
        "instance",
        "poll_timeout_seconds",
        "prefix",
        "project_id",
        "region",
        "schedule",
    ):
        assert variables()[name].get("validation"), f"variable {name} needs a validation block"
    assert variables()["schedule"]["default"] == "* * * * *"
    assert variables()["time_zone"]["default"] == "Etc/UTC"
    assert variables()["enable_push"]["default"] is True


def test_instance_validation_accepts_known_and_custom_names():
    condition = one(variables()["instance"]["validation"])["condition"]
    assert 'contains(["production", "uat", "dev"], var.instance)' in condition
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1)
    assert re.search(pattern, "staging-2")
    assert not re.search(pattern, "Prod Copy")


def test_prefix_validation_keeps_service_account_ids_within_30_characters():
    condition = one(variables()["prefix"]["validation"])["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1)
    longest_suffix = max(len("-" + name.replace("_", "-")) for name in entry_points() | {"push-invoker", "scheduler"})
    assert re.search(pattern, "mailbridge")
    assert re.search(pattern, "a" * (30 - longest_suffix))
    assert not re.search(pattern, "a" * (31 - longest_suffix))
    assert not re.search(pattern, "Mail_Bridge")


def test_every_output_has_a_description():
    outputs = {name: body for block in blocks("output") for name, body in block.items()}
    for name in ("function_urls", "oauth_redirect_uri", "admin_url_command", "signing_key_secret_id"):
        assert name in outputs, f"output {name} is missing"
    for name, body in outputs.items():
        assert body.get("description"), f"output {name} has no description"
    assert outputs["oauth_redirect_uri"]["value"] == '${local.function_urls["oauth_callback"]}'
    assert "scripts/mailbridge admin-url" in outputs["admin_url_command"]["value"]


def test_terraform_and_providers_are_bounded():
    settings = one(blocks("terraform"))
    assert re.match(r"^>=\s*1\.([5-9]|\d\d)", settings["required_version"])
    providers = one(settings["required_providers"])
    for name in ("google", "archive", "random"):
        assert name in providers, f"provider {name} is not declared"
    for name, requirement in providers.items():
        assert BOUNDED_VERSION.match(requirement["version"]), f"provider {name} must be bounded '>= x, < y'"


def test_services_enable_every_api_mailbridge_uses():
    services = names_in_set_expression(locals_()["services"])
    for api in (
        "cloudfunctions",
        "run",
        "cloudbuild",
        "artifactregistry",
        "firestore",
        "secretmanager",
        "cloudscheduler",
        "gmail",
        "iam",
        "storage",
        "pubsub",
    ):
        assert f"{api}.googleapis.com" in services, api
