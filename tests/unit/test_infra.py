"""infra/ (Bicep), azure.yaml, the azd hooks and .funcignore agree with the code.

No Bicep compiler runs here, so these tests check what can be checked from the text and the
JSON data files the Bicep loads (see tests/support/infra.py):
- every setting shared_code.platform.config reads is set in Azure (secrets as Key Vault references), or
  is key-based and deliberately absent, or is provided by the platform;
- every Cosmos container, blob container and queue the code names is provisioned as declared;
- identity-based connections for every trigger/binding connection and the host storage;
- the azd service name, the hooks, the function name the postdeploy hook subscribes, .funcignore;
- the security flags and role assignments the issue requires, and bracket balance per file.

To reconcile a new setting: plain value → infra/app/app-settings.json; secret →
infra/app/key-vault-secrets.json; blob container name → infra/app/blob-containers.json; a new
Cosmos container → infra/app/cosmos-containers.json.
"""

from __future__ import annotations

import fnmatch
import json
import re

import pytest
import yaml

import function_app
from devhost.server import indexed_functions
from shared_code.platform import config, cosmos
from tests.conftest import reset_app_state
from tests.support.infra import (
    INFRA,
    KEY_VAULT_REFERENCE,
    ROOT,
    azure_app_settings,
    bicep,
    load_json,
    object_entries,
    strip_comments,
    unbalanced,
)

# Key-based settings for emulators: must NOT be set in Azure (the app runs keyless there).
KEY_BASED_ONLY = {
    "COSMOS_KEY": "Cosmos DB has disableLocalAuth; the app uses COSMOS_ENDPOINT + its identity",
    "STORAGE": "the storage account has no shared keys; STORAGE__blobServiceUri + identity instead",
}
# devices (hardware attestation): dev-only settings that must never reach Azure.
DEV_ONLY = {
    "ATTESTATION_TEST_ROOTS": "trusts the dev stack's test attestation authority; production trusts only the pinned roots",
}
# Settings the platform reads (host, identity-based connections, telemetry), not shared_code.platform.config.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri", "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
    "STORAGE__queueServiceUri", "STORAGE__credential", "STORAGE__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

SPECS = {spec.name: spec for spec in config.SETTINGS}
BINDINGS = [(fn.get_function_name(), b.get_dict_repr()) for fn in indexed_functions(function_app.app)
            for b in fn.get_bindings()]


def test_every_setting_the_code_reads_is_set_in_azure():
    azure = azure_app_settings()
    missing = sorted(n for n in SPECS if n not in azure and n not in KEY_BASED_ONLY and n not in DEV_ONLY)
    secrets = [n for n in missing if SPECS[n].secret]
    plain = {n: SPECS[n].default if SPECS[n].default is not None else "<value for Azure>"
             for n in missing if not SPECS[n].secret}
    assert not missing, (
        "settings shared_code.platform.config reads but Azure does not set.\n"
        f"Secrets, add to infra/app/key-vault-secrets.json: {secrets}\n"
        f"Plain, add to infra/app/app-settings.json (blob container names: blob-containers.json):\n"
        + "\n".join(f"  {json.dumps(n)}: {json.dumps(v)}," for n, v in plain.items())
    )


def test_key_based_settings_are_not_set_in_azure():
    present = {n: why for n, why in KEY_BASED_ONLY.items() if n in azure_app_settings()}
    assert not present, f"key-based settings set in Azure: {present}"


def test_dev_only_settings_are_not_set_in_azure():
    present = {n: why for n, why in DEV_ONLY.items() if n in azure_app_settings()}
    assert not present, f"dev-only settings set in Azure: {present}"
    assert all(SPECS[n].default == "" for n in DEV_ONLY), "a dev-only setting must default to off"


def test_secret_settings_are_key_vault_references():
    azure = azure_app_settings()
    not_references = sorted(n for n, spec in SPECS.items()
                            if spec.secret and n in azure and not KEY_VAULT_REFERENCE.match(azure[n]))
    assert not not_references, f"secret settings with a plain value in Azure (move to key-vault-secrets.json): {not_references}"
    plain = load_json("app-settings.json")
    leaked = sorted(n for n in plain if n in SPECS and SPECS[n].secret)
    assert not leaked, f"secret settings in app-settings.json: {leaked}"


def test_every_azure_setting_is_read_by_the_code_or_the_platform():
    unknown = sorted(set(azure_app_settings()) - set(SPECS) - PLATFORM_SETTINGS)
    assert not unknown, f"Azure sets settings nothing reads (typo? declare them in shared_code.platform.config): {unknown}"


def test_azure_settings_parse(monkeypatch, tmp_path):
    """The plain values Azure sets are valid for shared_code.platform.config (secrets and endpoints taken
    from local.settings.example.json, since their Azure values exist only at run time)."""
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    azure = azure_app_settings()
    literal = {n: v for n, v in azure.items() if n in load_json("app-settings.json") or
               n in {c["setting"] for c in load_json("blob-containers.json")}}
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    config.load_settings({**example, **literal})


def test_cosmos_containers_match_the_code():
    declared = {(s.name, s.partition_key, s.default_ttl) for s in cosmos.CONTAINERS}
    provisioned = {(c["name"], c["partitionKey"], c.get("defaultTtl")) for c in load_json("cosmos-containers.json")}
    assert provisioned == declared, (
        f"infra/app/cosmos-containers.json vs shared_code.platform.cosmos.CONTAINERS (name, partition key, defaultTtl): "
        f"missing in Bicep {sorted(declared - provisioned, key=str)}, not in code {sorted(provisioned - declared, key=str)}"
    )


def test_cosmos_database_name_is_the_one_the_app_reads():
    main = strip_comments(bicep("main.bicep"))
    default = re.search(r"param cosmosDatabaseName string = '([^']+)'", main)
    assert default and default.group(1) == SPECS["COSMOS_DATABASE"].default
    assert object_entries(bicep("app/api.bicep"), "var computedSettings =")["COSMOS_DATABASE"] == "cosmosDatabaseName"


@pytest.fixture
def azure_environment(monkeypatch, tmp_path):
    """The process settings as the function app would see them in Azure (plain values only)."""
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    literal = {**load_json("app-settings.json"), **{c["setting"]: c["name"] for c in load_json("blob-containers.json")}}
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    for name, value in {**example, **literal}.items():
        monkeypatch.setenv(name, value)
    reset_app_state()
    yield literal
    monkeypatch.undo()
    reset_app_state()


def test_blob_containers_the_code_uses_in_azure_are_provisioned(azure_environment):
    from devhost.provision import blob_container_names

    provisioned = {c["name"] for c in load_json("blob-containers.json")}
    used = set(blob_container_names())
    for function, binding in BINDINGS:
        if binding["type"] in {"blobTrigger", "blob"}:
            container = binding["path"].split("/", 1)[0]
            used.add(re.sub(r"%([^%]+)%", lambda m: azure_environment.get(m.group(1), m.group(0)), container))
    assert used <= provisioned, f"blob containers used in Azure but not in infra/app/blob-containers.json: {sorted(used - provisioned)}"


def test_blob_container_entries_name_their_setting():
    for entry in load_json("blob-containers.json"):
        assert set(entry) == {"name", "setting"} and re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", entry["name"]), entry


def test_deployment_package_container_is_provisioned_and_used():
    storage, api = strip_comments(bicep("app/storage.bicep")), strip_comments(bicep("app/api.bicep"))
    assert re.search(r"resource \w+ 'containers' = \{\s*name: deploymentStorageContainerName", storage)
    assert "value: '${storage.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'" in api
    assert re.search(r"type: 'UserAssignedIdentity'\s*userAssignedIdentityResourceId: identityId", api)


def test_queues_the_code_uses_are_provisioned():
    provisioned = {q["name"] for q in load_json("storage-queues.json")}
    used = {b["queueName"] for _, b in BINDINGS if b["type"] in {"queueTrigger", "queue"}}
    assert used <= provisioned, f"queues not in infra/app/storage-queues.json: {sorted(used - provisioned)}"


def test_connections_are_identity_based():
    azure = azure_app_settings()
    connections = {b["connection"] for _, b in BINDINGS if b.get("connection")} | {"AzureWebJobsStorage"}
    problems = []
    for conn in sorted(connections):
        if conn in azure:
            problems.append(f"{conn} is a connection string")
        if azure.get(f"{conn}__credential") != "'managedidentity'" or azure.get(f"{conn}__clientId") != "identityClientId":
            problems.append(f"{conn}__credential/__clientId must select the user-assigned identity")
        if not ({f"{conn}__blobServiceUri", f"{conn}__serviceUri"} & set(azure)):
            problems.append(f"{conn} has no service URI")
    for conn in {b["connection"] for _, b in BINDINGS if b["type"] == "blobTrigger"}:
        if f"{conn}__blobServiceUri" in azure and f"{conn}__queueServiceUri" not in azure:
            problems.append(f"blob trigger connection {conn} needs {conn}__queueServiceUri with __blobServiceUri")
    assert azure.get("AZURE_CLIENT_ID") == "identityClientId"
    assert not problems, problems


def test_azure_yaml_service_is_the_function_apps_azd_service_name():
    document = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    api, main = strip_comments(bicep("app/api.bicep")), strip_comments(bicep("main.bicep"))
    tag_name = re.search(r"param serviceName string = '([^']+)'", api).group(1)
    assert "tags: union(tags, { 'azd-service-name': serviceName })" in api
    assert "serviceName:" not in main, "main.bicep overrides serviceName; keep azure.yaml in step"
    assert list(document["services"]) == [tag_name]
    assert document["services"][tag_name] == {"project": ".", "language": "python", "host": "function"}


def test_hooks_exist_for_both_shells():
    hooks = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))["hooks"]
    assert set(hooks) == {"postprovision", "postdeploy"}
    for hook in hooks.values():
        assert hook["posix"]["shell"] == "sh" and hook["windows"]["shell"] == "pwsh"
        for variant in ("posix", "windows"):
            assert (ROOT / hook[variant]["run"]).is_file(), hook[variant]["run"]


@pytest.mark.parametrize("script, pattern", [
    ("scripts/postdeploy.sh", r"^FUNCTION_NAME=(\w+)$"),
    ("scripts/postdeploy.ps1", r"^\$FUNCTION_NAME = '(\w+)'$"),
])
def test_postdeploy_subscribes_the_event_grid_blob_trigger(script, pattern):
    triggers = sorted(fn for fn, b in BINDINGS if b["type"] == "blobTrigger" and b.get("source") == "EventGrid")
    text = (ROOT / script).read_text(encoding="utf-8")
    assert [m.group(1) for m in re.finditer(pattern, text, re.MULTILINE)] == triggers
    assert "Host.Functions." in text and "systemKeys.blobs_extension" in text
    assert "/blobServices/default/containers/" in text


def test_hook_inputs_are_bicep_outputs():
    outputs = set(re.findall(r"^output (\w+) ", strip_comments(bicep("main.bicep")), re.MULTILINE))
    for script in ("postdeploy.sh", "postprovision.sh"):
        used = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", (ROOT / "scripts" / script).read_text(encoding="utf-8")))
        assert used - {"FUNCTION_NAME", "SUBSCRIPTION_NAME"} <= outputs, (script, sorted(used - outputs))


def test_key_vault_secrets_are_well_formed():
    secrets = load_json("key-vault-secrets.json")
    names = [s["secretName"] for s in secrets]
    assert len(set(names)) == len(names) and len({s["setting"] for s in secrets}) == len(secrets)
    for s in secrets:
        assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", s["secretName"]), s
        assert s["generateBytes"] == 0 or s["generateBytes"] >= 32, s


FUNCIGNORE_EXCLUDES = ["tests", "infra", "scripts", "devhost", "client", "benchmarks", "docs", "node_modules",
                       ".venv", ".azure", ".git", "local.settings.json", "local.settings.example.json", "azure.yaml",
                       "Makefile", "requirements-dev.txt", "package.json", "__pycache__"]
FUNCIGNORE_KEEPS = ["function_app.py", "host.json", "requirements.txt", "functions", "shared_code"]


def _funcignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p.rstrip("/").lstrip("/")) for p in patterns)


def test_funcignore_keeps_dev_material_out_of_the_package():
    patterns = [line.strip() for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    assert not [p for p in patterns if p.startswith("!")], "negations would need a real gitignore matcher"
    assert [n for n in FUNCIGNORE_EXCLUDES if not _funcignored(n, patterns)] == []
    assert [n for n in FUNCIGNORE_KEEPS if _funcignored(n, patterns)] == []


@pytest.mark.parametrize("path, required", [
    ("main.bicep", ["targetScope = 'subscription'", "param environmentName string", "param location string",
                    "param principalId string", "loadJsonContent('./abbreviations.json')",
                    "toLower(uniqueString(subscription().id, environmentName, location))",
                    "'azd-env-name': environmentName", "resource rg 'Microsoft.Resources/resourceGroups@",
                    "output AZURE_FUNCTION_APP_NAME string", "output AZURE_FUNCTION_APP_URL string",
                    "output AZURE_STORAGE_ACCOUNT_NAME string", "output COSMOS_ENDPOINT string"]),
    ("app/api.bicep", ["name: 'FC1'", "tier: 'FlexConsumption'", "kind: 'functionapp,linux'", "reserved: true",
                       "name: 'python'", "version: '3.11'", "type: 'UserAssigned'", "httpsOnly: true",
                       "keyVaultReferenceIdentity: identityId", "maximumInstanceCount: maximumInstanceCount",
                       "instanceMemoryMB: instanceMemoryMB"]),
    ("app/storage.bicep", ["allowSharedKeyAccess: false", "allowBlobPublicAccess: false",
                           "minimumTlsVersion: 'TLS1_2'", "supportsHttpsTrafficOnly: true", "'queueServices'",
                           "'tableServices'"]),
    ("app/cosmos.bicep", ["name: 'EnableServerless'", "disableLocalAuth: true",
                          "sqlRoleDefinitions/${dataContributorRoleId}", "'00000000-0000-0000-0000-000000000002'",
                          "principalId: appPrincipalId", "principalId: userPrincipalId",
                          "loadJsonContent('./cosmos-containers.json')", "defaultTtl: any(container).defaultTtl"]),
    ("app/keyvault.bicep", ["enableRbacAuthorization: true", "@Microsoft.KeyVault(SecretUri=",
                            "loadJsonContent('./key-vault-secrets.json')"]),
    ("app/monitoring.bicep", ["DisableLocalAuth: true", "WorkspaceResourceId: logAnalytics.id"]),
    ("app/rbac.bicep", ["'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'", "'974c5e8b-45b9-4653-ba55-5f855dd0fb88'",
                        "'0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'", "'3913510d-42f4-4e42-8a64-420c390055eb'",
                        "'4633458b-17de-408a-b874-0445c86b69e6'"]),
    ("app/eventgrid.bicep", ["topicType: 'Microsoft.Storage.StorageAccounts'", "source: storage.id"]),
])
def test_bicep_declares_what_the_issue_requires(path, required):
    code = strip_comments(bicep(path))
    assert [r for r in required if r not in code] == []


def test_parameters_file_feeds_every_parameter_it_names():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = set(re.findall(r"^param (\w+) ", strip_comments(bicep("main.bicep")), re.MULTILINE))
    assert set(parameters) <= declared
    assert {"environmentName", "location", "principalId"} <= set(parameters)


def test_modules_and_json_files_referenced_exist():
    for path in sorted(INFRA.rglob("*.bicep")):
        code = strip_comments(path.read_text(encoding="utf-8"))
        for ref in re.findall(r"^module \w+ '([^']+)'", code, re.MULTILINE) + re.findall(r"loadJsonContent\('([^']+)'\)", code):
            assert (path.parent / ref).is_file(), f"{path.relative_to(ROOT)} refers to missing {ref}"


@pytest.mark.parametrize("path", sorted(p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*.bicep")))
def test_bicep_brackets_balance(path):
    assert unbalanced(bicep(path)) is None


def test_bracket_check_catches_a_missing_brace():
    assert unbalanced("resource x 'a@1' = {\n  name: '}'\n") == "'{' opened on line 1 is never closed"
    assert unbalanced("var s = '${a}' // }\n") is None


def test_module_calls_pass_exactly_the_parameters_modules_declare():
    """What a Bicep compiler would reject first: unknown or missing module parameters."""
    for path in sorted(INFRA.rglob("*.bicep")):
        code = strip_comments(path.read_text(encoding="utf-8"))
        for symbol, ref in re.findall(r"^module (\w+) '([^']+)'", code, re.MULTILINE):
            target = strip_comments((path.parent / ref).read_text(encoding="utf-8"))
            declared = dict(re.findall(r"^param (\w+) [\w.]+( =)?", target, re.MULTILINE))
            required = {name for name, has_default in declared.items() if not has_default}
            body = object_entries(code, f"module {symbol} '{ref}' =")
            passed = set(object_entries(body["params"], "")) if "params" in body else set()
            where = f"{path.relative_to(ROOT)} module {symbol}"
            assert passed <= set(declared), f"{where} passes unknown {sorted(passed - set(declared))}"
            assert required <= passed, f"{where} misses required {sorted(required - passed)}"


def test_module_outputs_used_are_declared():
    for path in sorted(INFRA.rglob("*.bicep")):
        code = strip_comments(path.read_text(encoding="utf-8"))
        modules = dict(re.findall(r"^module (\w+) '([^']+)'", code, re.MULTILINE))
        for symbol, output in set(re.findall(r"\b(\w+)\.outputs\.(\w+)", code)):
            assert symbol in modules, f"{path.relative_to(ROOT)}: {symbol} is not a module"
            target = strip_comments((path.parent / modules[symbol]).read_text(encoding="utf-8"))
            assert re.search(rf"^output {output} ", target, re.MULTILINE), f"{path.relative_to(ROOT)}: {symbol}.outputs.{output} is not declared"


def test_binding_expressions_resolve_from_azure_app_settings():
    """The host resolves %NAME% in trigger/binding properties from app settings only (no code
    defaults), so each must be set in Azure."""
    azure = azure_app_settings()
    used = {(fn, name) for fn, b in BINDINGS for value in b.values() if isinstance(value, str)
            for name in re.findall(r"%([^%]+)%", value)}
    unset = sorted(f"{fn}: %{name}%" for fn, name in used if name not in azure)
    assert not unset, f"binding expressions with no Azure app setting: {unset}"
