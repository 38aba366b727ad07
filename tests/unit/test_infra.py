"""infra/ (Bicep), azure.yaml, the azd hooks and .funcignore agree with the code.

No Bicep compiler runs here, so these tests check what can be checked from the text and the
JSON data files the Bicep loads (see tests/support/infra.py):
- every setting shared_code.platform.config reads is set in Azure (secrets as Key Vault references), or
  is key-based and deliberately absent, or is provided by the platform;
- every Cosmos container, blob container and queue the code names is provisioned as declared;
- identity-based connections for every trigger/binding connection and the host storage;
- the azd service name, the hooks, the function name the postdeploy hook subscribes, .funcignore;
- the security flags and role assignments the issue requires, and bracket balance per file;
- least privilege (no account-wide blob role for the app, developer data access only behind
  grantDeveloperDataAccess), data protection, audit logs and private endpoints for every service;
- checkov (the IaC scanner) parses every .bicep file and reports no failed check, and each
  inline skip suppresses a real finding and gives a reason.

To reconcile a new setting: plain value → infra/app/app-settings.json; secret →
infra/app/key-vault-secrets.json; blob container name → infra/app/blob-containers.json (with
optional "lifecycle" / "immutability", see infra/app/storage.bicep); a new Cosmos container →
infra/app/cosmos-containers.json.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
import yaml

import function_app
from devhost.server import indexed_functions
from shared_code.platform import config, cosmos
from tests.conftest import reset_app_state
from tests.support.infra import (
    CHECKOV_SKIP,
    INFRA,
    KEY_VAULT_REFERENCE,
    ROOT,
    azure_app_settings,
    bicep,
    checkov_available,
    computed_settings,
    copy_without_skips,
    declarations,
    load_json,
    object_entries,
    run_checkov,
    strip_comments,
    unbalanced,
    unparsable_bicep_files,
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
    "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",
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
    assert computed_settings()["COSMOS_DATABASE"] == "cosmosDatabaseName"


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


# Optional per-container options of blob-containers.json (shapes documented in storage.bicep):
# "lifecycle" is the actions object of a lifecycle management rule, "immutability" the properties
# of the container's time-based retention policy.
LIFECYCLE_ACTIONS = {"baseBlob", "snapshot", "version"}
IMMUTABILITY_PROPERTIES = {"immutabilityPeriodSinceCreationInDays", "allowProtectedAppendWrites",
                           "allowProtectedAppendWritesAll"}


def test_blob_container_entries_name_their_setting():
    entries = load_json("blob-containers.json")
    assert len({e["name"] for e in entries}) == len(entries) and len({e["setting"] for e in entries}) == len(entries)
    for entry in entries:
        assert {"name", "setting"} <= set(entry) <= {"name", "setting", "lifecycle", "immutability"}, entry
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", entry["name"]), entry
        assert not entry["name"].startswith(("azure-webjobs-", "app-package-")), f"{entry['name']} is a host/package name"
        lifecycle = entry.get("lifecycle", {})
        assert set(lifecycle) <= LIFECYCLE_ACTIONS, entry
        for target in lifecycle.values():
            # Delete is the only action valid for both block and append blobs.
            assert list(target) == ["delete"] and target["delete"], entry
            assert all(re.fullmatch(r"days\w+GreaterThan", condition) and isinstance(days, int) and days >= 0
                       for condition, days in target["delete"].items()), entry
        immutability = entry.get("immutability", {})
        assert set(immutability) <= IMMUTABILITY_PROPERTIES, entry
        if immutability:
            assert 1 <= immutability.get("immutabilityPeriodSinceCreationInDays", 0) <= 146000, entry


def test_container_options_reach_the_storage_bicep():
    """Options in the data file become resources: the loops the issues' additions flow through."""
    resources = {r.symbol: r for r in declarations(bicep("app/storage.bicep"))}
    assert resources["appContainers"].header == "[for container in blobContainers:"
    policy = resources["appContainerImmutability"]
    assert policy.type.startswith("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@")
    assert policy.header == "[for (container, i) in blobContainers: if (contains(container, 'immutability'))"
    assert policy.entries["parent"] == "appContainers[i]" and "immutability" in policy.entries["properties"]
    storage = strip_comments(bicep("app/storage.bicep"))
    assert "[for container in filter(blobContainers, c => contains(c, 'lifecycle')):" in storage
    assert "actions: any(container).lifecycle" in storage and "prefixMatch: ['${container.name}/']" in storage
    assert "rules: concat([versionRetentionRule], containerLifecycleRules)" in storage


def test_deployment_package_container_is_provisioned_and_used():
    storage, api = strip_comments(bicep("app/storage.bicep")), strip_comments(bicep("app/api.bicep"))
    assert re.search(r"resource \w+ 'Microsoft.Storage/storageAccounts/blobServices/containers@[\d-]+' = \{"
                     r"\s*parent: blobService\s*name: deploymentStorageContainerName", storage)
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
                       ".venv", ".venv-iac", ".azure", ".git", "local.settings.json", "local.settings.example.json",
                       "azure.yaml", "Makefile", "requirements-dev.txt", "requirements-iac.txt", "package.json",
                       "__pycache__"]
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
                    "output AZURE_STORAGE_ACCOUNT_NAME string", "output COSMOS_ENDPOINT string",
                    "output AZURE_FUNCTION_APP_ID string",
                    # Production defaults: no standing data access, purge protection on.
                    "param grantDeveloperDataAccess bool = false", "param keyVaultPurgeProtection bool = true",
                    "param zoneRedundant bool = false", "param vnetEnabled bool = false",
                    "userPrincipalId: grantDeveloperDataAccess ? principalId : ''",
                    # Flex Consumption's lowest maximum instance count.
                    "@minValue(40)\n@maxValue(1000)\nparam maximumInstanceCount int = 40"]),
    ("app/api.bicep", ["name: 'FC1'", "tier: 'FlexConsumption'", "kind: 'functionapp,linux'", "reserved: true",
                       "name: 'python'", "version: '3.11'", "type: 'UserAssigned'", "httpsOnly: true",
                       "keyVaultReferenceIdentity: identityId", "maximumInstanceCount: maximumInstanceCount",
                       "instanceMemoryMB: instanceMemoryMB", "minTlsVersion: '1.2'", "http20Enabled: true",
                       "healthCheckPath: '/health'", "zoneRedundant: zoneRedundant",
                       "virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId",
                       "vnetRouteAllEnabled: !empty(virtualNetworkSubnetId)",
                       "appSettings: concat(plainAppSettings, containerSettings, secretSettings, computedSettings)",
                       "'Microsoft.Web/sites/basicPublishingCredentialsPolicies@", "name: 'scm'", "allow: false"]),
    ("app/storage.bicep", ["allowSharedKeyAccess: false", "allowBlobPublicAccess: false",
                           "minimumTlsVersion: 'TLS1_2'", "supportsHttpsTrafficOnly: true",
                           "allowCrossTenantReplication: false", "isLocalUserEnabled: false",
                           "'Microsoft.Storage/storageAccounts/queueServices@", "isVersioningEnabled: true",
                           "deleteRetentionPolicy: {\n      enabled: true\n      days: blobSoftDeleteRetentionDays",
                           "containerDeleteRetentionPolicy: {\n      enabled: true\n      days: containerSoftDeleteRetentionDays",
                           "daysAfterCreationGreaterThan: blobVersionRetentionDays",
                           "publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
                           "var hostContainerNames = ['azure-webjobs-hosts', 'azure-webjobs-secrets']"]),
    ("app/cosmos.bicep", ["name: 'EnableServerless'", "disableLocalAuth: true", "disableKeyBasedMetadataWriteAccess: true",
                          "sqlRoleDefinitions/${dataContributorRoleId}", "'00000000-0000-0000-0000-000000000002'",
                          "principalId: appPrincipalId", "principalId: userPrincipalId",
                          "var databaseScope = '${account.id}/dbs/${databaseName}'",
                          "isZoneRedundant: zoneRedundant", "publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'",
                          "loadJsonContent('./cosmos-containers.json')", "defaultTtl: any(container).defaultTtl"]),
    ("app/keyvault.bicep", ["enableRbacAuthorization: true", "@Microsoft.KeyVault(SecretUri=",
                            "loadJsonContent('./key-vault-secrets.json')", "param purgeProtection bool = true",
                            "enablePurgeProtection: purgeProtection ? true : null", "enableSoftDelete: true",
                            "defaultAction: vnetEnabled ? 'Deny' : 'Allow'", "bypass: 'None'"]),
    ("app/monitoring.bicep", ["DisableLocalAuth: true", "WorkspaceResourceId: logAnalytics.id"]),
    ("app/rbac.bicep", ["'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'", "'ba92f5b4-2d11-453d-a403-e96b0029c9fe'",
                        "'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'", "'974c5e8b-45b9-4653-ba55-5f855dd0fb88'",
                        "'3913510d-42f4-4e42-8a64-420c390055eb'", "'4633458b-17de-408a-b874-0445c86b69e6'",
                        "'Microsoft.KeyVault/vaults/secrets/setSecret/action'",
                        "'Microsoft.KeyVault/vaults/secrets/readMetadata/action'"]),
    ("app/eventgrid.bicep", ["topicType: 'Microsoft.Storage.StorageAccounts'", "source: storage.id"]),
    ("app/network.bicep", ["serviceName: 'Microsoft.App/environments'", "privateEndpointNetworkPolicies: 'Enabled'"]),
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


def test_app_settings_come_from_one_source_each():
    """siteConfig.appSettings concatenates four lists; a name in two of them would be ambiguous."""
    sources = {
        "app-settings.json": set(load_json("app-settings.json")),
        "blob-containers.json": {c["setting"] for c in load_json("blob-containers.json")},
        "key-vault-secrets.json": {s["setting"] for s in load_json("key-vault-secrets.json")},
        "api.bicep computedSettings": set(computed_settings()),
    }
    seen: dict[str, str] = {}
    twice = []
    for source, names in sources.items():
        twice += [f"{n} ({seen[n]} and {source})" for n in names if n in seen]
        seen.update(dict.fromkeys(names, source))
    assert not twice, f"app settings set by two sources: {twice}"


def test_nothing_uses_table_storage():
    """The Table role and tableServiceUri were dropped: no code, binding or Bicep may need them."""
    code = [p for p in (ROOT / "shared_code").rglob("*.py")] + [p for p in (ROOT / "functions").rglob("*.py")]
    assert not [p for p in code if re.search(r"azure\.data\.tables|TableServiceClient", p.read_text(encoding="utf-8"))]
    assert not [b for _, b in BINDINGS if b["type"].lower().startswith("table")]
    for path in INFRA.rglob("*.bicep"):
        text = strip_comments(path.read_text(encoding="utf-8"))
        assert "tableServiceUri" not in text and "tableServices" not in text, path
        assert "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3" not in text, f"{path}: Storage Table Data Contributor"


ROLE_NAMES = {"storageBlobDataOwner", "storageBlobDataContributor", "storageBlobDelegator",
              "storageQueueDataContributor", "monitoringMetricsPublisher", "keyVaultSecretsUser",
              "keyVaultSecretsOfficer"}


def _role_assignments() -> list[tuple[str, str, str, str, str]]:
    """(symbol, loop/condition header, scope, role, principal) of every rbac.bicep assignment."""
    found = []
    for r in declarations(bicep("app/rbac.bicep")):
        if r.type.startswith("Microsoft.Authorization/roleAssignments@"):
            properties = object_entries(r.entries["properties"], "")
            role = re.search(r"roleDefinitions', (\w+)\)|^(\w+)\.id$", properties["roleDefinitionId"])
            found.append((r.symbol, r.header, r.entries["scope"], role.group(1) or role.group(2), properties["principalId"]))
    return found


def test_app_identity_holds_blob_roles_on_its_containers_only():
    app = [(h, scope, role) for _, h, scope, role, who in _role_assignments() if who == "managedIdentityPrincipalId"]
    assert {role for _, _, role in app} <= ROLE_NAMES
    blob_data = {(h, scope, role) for h, scope, role in app if role in {"storageBlobDataOwner", "storageBlobDataContributor"}}
    assert blob_data == {
        ("[for (container, i) in blobContainers:", "dataContainers[i]", "storageBlobDataContributor"),
        ("[for (containerName, i) in hostContainerNames:", "hostContainers[i]", "storageBlobDataOwner"),
        ("", "deploymentContainer", "storageBlobDataContributor"),
    }, "the app's blob data roles must be scoped to its containers, never the account"
    account_wide = {role for _, scope, role in app if scope == "storageAccount"}
    assert account_wide == {"storageBlobDelegator", "storageQueueDataContributor"}
    rbac = {r.symbol: r for r in declarations(bicep("app/rbac.bicep"))}
    assert rbac["dataContainers"].header == "[for container in blobContainers:"
    assert rbac["hostContainers"].header == "[for containerName in hostContainerNames:"
    main = object_entries(object_entries(bicep("main.bicep"), "module rbac 'app/rbac.bicep' =")["params"], "")
    assert main["hostContainerNames"] == "storage.outputs.hostContainerNames"


def test_deployer_gets_data_access_only_behind_grant_developer_data_access():
    deployer = [(symbol, h, role) for symbol, h, _, role, who in _role_assignments() if who == "deployerPrincipalId"]
    assert deployer, "the deployer needs the secret-writer role for the postprovision hook"
    for symbol, header, role in deployer:
        if role == "secretWriterRole":
            assert header == "if (hasDeployer)", symbol
        else:
            assert header.endswith("if (developerDataAccess)"), f"{symbol} gives the deployer {role} unconditionally"
    rbac = strip_comments(bicep("app/rbac.bicep"))
    assert "var developerDataAccess = hasDeployer && grantDeveloperDataAccess" in rbac
    writer = object_entries(object_entries(rbac, "resource secretWriterRole ")["properties"], "")
    permissions = writer["permissions"]
    assert re.findall(r"'(Microsoft\.KeyVault/[^']+)'", permissions) == [
        "Microsoft.KeyVault/vaults/secrets/setSecret/action", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
    assert "actions: []" in permissions and writer["assignableScopes"] == "[resourceGroup().id]"
    main = object_entries(object_entries(bicep("main.bicep"), "module rbac 'app/rbac.bicep' =")["params"], "")
    assert main["grantDeveloperDataAccess"] == "grantDeveloperDataAccess" and main["deployerPrincipalId"] == "principalId"


def test_cosmos_data_roles_are_scoped_to_the_database():
    assignments = [r for r in declarations(bicep("app/cosmos.bicep"))
                   if r.type.startswith("Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@")]
    assert len(assignments) == 2
    for r in assignments:
        assert object_entries(r.entries["properties"], "")["scope"] == "databaseScope", r.symbol


@pytest.mark.parametrize("path, scope, categories", [
    ("app/keyvault.bicep", "vault", ["AuditEvent"]),
    ("app/storage.bicep", "blobService", ["StorageRead", "StorageWrite", "StorageDelete"]),
    ("app/storage.bicep", "queueService", ["StorageRead", "StorageWrite", "StorageDelete"]),
    ("app/cosmos.bicep", "account", ["DataPlaneRequests", "ControlPlaneRequests"]),
])
def test_data_services_send_audit_logs_to_log_analytics(path, scope, categories):
    text = strip_comments(bicep(path))
    settings = [r for r in declarations(text) if r.type.startswith("Microsoft.Insights/diagnosticSettings@")
                and r.entries["scope"] == scope]
    assert len(settings) == 1, f"{path}: one diagnostic setting on {scope}"
    properties = object_entries(settings[0].entries["properties"], "")
    assert properties["workspaceId"] == "logAnalyticsWorkspaceId"
    logs = properties["logs"]
    listed = re.findall(r"category: '(\w+)'", logs) or load_categories(text, logs)
    assert listed == categories and "enabled: true" in logs
    module = Path(path).stem
    symbol = {"keyvault": "keyVault"}.get(module, module)
    call = object_entries(bicep("main.bicep"), f"module {symbol} 'app/{module}.bicep' =")
    assert object_entries(call["params"], "")["logAnalyticsWorkspaceId"] == "monitoring.outputs.logAnalyticsId"


def load_categories(text: str, logs: str) -> list[str]:
    """Categories of a ``[for category in <var>: ...]`` logs loop (the var's string list)."""
    variable = re.match(r"\[for category in (\w+):", logs).group(1)
    return re.findall(r"'(\w+)'", re.search(rf"^var {variable} = (\[.*\])$", text, re.MULTILINE).group(1))


def test_network_isolation_covers_every_service_the_app_calls():
    """vnetEnabled gives each data service the app reaches a private endpoint and turns its
    public endpoint off, and routes the app's outbound traffic through the VNet."""
    main = strip_comments(bicep("main.bicep"))
    targets = re.search(r"^var privateEndpointTargets = \[(.*?)^\]", main, re.MULTILINE | re.DOTALL).group(1)
    groups = re.findall(r"groupId: '(\w+)'", targets)
    azure = azure_app_settings()
    needed = set()
    if "STORAGE__blobServiceUri" in azure and "AzureWebJobsStorage__blobServiceUri" in azure:
        needed.add("blob")
    if "STORAGE__queueServiceUri" in azure or "AzureWebJobsStorage__queueServiceUri" in azure:
        needed.add("queue")
    if "COSMOS_ENDPOINT" in azure:
        needed.add("Sql")
    if any(KEY_VAULT_REFERENCE.match(v) for v in azure.values()):
        needed.add("vault")
    assert sorted(groups) == sorted(needed)
    modules = {r.symbol: r for r in declarations(main)}
    assert modules["network"].header == "if (vnetEnabled)"
    assert modules["privateEndpoints"].header == "[for target in privateEndpointTargets: if (vnetEnabled)"
    api = object_entries(modules["api"].entries["params"], "")
    assert api["virtualNetworkSubnetId"] == "vnetEnabled ? network.outputs.appSubnetId : ''"
    assert "privateEndpoints" in modules["api"].entries["dependsOn"]
    for module in ("storage", "cosmos", "keyVault"):
        assert object_entries(modules[module].entries["params"], "")["vnetEnabled"] == "vnetEnabled", module
    assert "publicNetworkAccess: vnetEnabled && empty(keyVaultAllowedIps) ? 'Disabled' : 'Enabled'" in main


def test_checkov_parses_every_bicep_file():
    assert checkov_available(), "checkov is missing: run `make test` (it builds .venv-iac from requirements-iac.txt)"
    assert unparsable_bicep_files() == {}, "checkov skips files pycep-parser cannot read"


@pytest.fixture(scope="module")
def checkov_report():
    assert checkov_available(), "checkov is missing: run `make test` (it builds .venv-iac from requirements-iac.txt)"
    return run_checkov(INFRA)


def test_checkov_finds_no_failed_check(checkov_report):
    summary = checkov_report["summary"]
    failed = [(r["check_id"], r["check_name"], r["file_path"], r["resource"])
              for r in checkov_report["results"].get("failed_checks", [])]
    assert summary["parsing_errors"] == 0 and summary["failed"] == 0, failed
    assert summary["passed"] > 0 and summary["resource_count"] > 0


def test_every_checkov_skip_is_inline_with_a_reason_and_suppresses_a_real_finding(checkov_report, tmp_path):
    for path in INFRA.rglob("*.bicep"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov:" in line or "bridgecrew:" in line:
                match = CHECKOV_SKIP.match(line)
                assert match and len(match.group("reason")) >= 40, f"{path.name}:{number}: `// checkov:skip=CKV_AZURE_n: reason`"
    skipped = {(r["check_id"], r["file_path"], r["resource"]) for r in checkov_report["results"].get("skipped_checks", [])}
    assert all(r["check_result"]["suppress_comment"].strip() for r in checkov_report["results"].get("skipped_checks", []))
    unsuppressed = run_checkov(copy_without_skips(tmp_path))
    failing = {(r["check_id"], r["file_path"], r["resource"]) for r in unsuppressed["results"].get("failed_checks", [])}
    assert skipped == failing, f"stale skips: {sorted(skipped - failing)}; unskipped failures: {sorted(failing - skipped)}"


def test_postprovision_writes_without_reading_and_refreshes_key_vault_references():
    for script in ("postprovision.sh", "postprovision.ps1"):
        text = (ROOT / "scripts" / script).read_text(encoding="utf-8")
        assert "config/configreferences/appsettings/refresh?api-version=" in text, script
        assert "az keyvault secret list" in text and "az keyvault secret set" in text, script
        # The deployer's role cannot read values (and must not need to).
        assert "secret show" not in text and "--query value" not in text, script
        # Operator-supplied secrets are never copied from azd's .env (clear text) into the vault:
        # the only values stored are generated ones.
        stored = re.findall(r"^\s*(?:store|Set-Secret) (.+)$", text, re.MULTILINE)
        assert stored == ['"$name"'] or stored == ["$name ([Convert]::ToBase64String($buffer))"], (script, stored)
        assert "in clear text" in text and "it is not used" in text, script


# azd environment variables of the production parameters (README, "Deploy to Azure").
PRODUCTION_PARAMETERS = {
    "grantDeveloperDataAccess": ("GRANT_DEVELOPER_DATA_ACCESS", "false"),
    "keyVaultPurgeProtection": ("KEY_VAULT_PURGE_PROTECTION", "true"),
    "vnetEnabled": ("VNET_ENABLED", "false"),
    "keyVaultAllowedIpAddresses": ("KEY_VAULT_ALLOWED_IP_ADDRESSES", ""),
    "zoneRedundant": ("ZONE_REDUNDANT", "false"),
    "blobSoftDeleteRetentionDays": ("BLOB_SOFT_DELETE_RETENTION_DAYS", "7"),
    "containerSoftDeleteRetentionDays": ("CONTAINER_SOFT_DELETE_RETENTION_DAYS", "7"),
    "blobVersionRetentionDays": ("BLOB_VERSION_RETENTION_DAYS", "30"),
}


def test_production_parameters_are_fed_by_azd_and_named_in_the_readme():
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    main = strip_comments(bicep("main.bicep"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deploy = readme[readme.index("## Deploy to Azure"):readme.index("## Tests and benchmarks")]
    for parameter, (variable, default) in PRODUCTION_PARAMETERS.items():
        assert parameters[parameter] == {"value": f"${{{variable}={default}}}"}, parameter
        declared = re.search(rf"^param {parameter} (\w+) = (.*)$", main, re.MULTILINE)
        assert declared and declared.group(2).strip("'") == default, parameter
        assert variable in deploy, f"README's Deploy to Azure section does not name {variable}"
