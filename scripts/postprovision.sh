#!/bin/sh
# azd postprovision hook (POSIX): put the app's generated secrets into Key Vault and make the
# app resolve its Key Vault references.
#
# - KEY_VAULT_GENERATED_SECRETS ("name:bytes ..."; peppers, master keys): a value of `bytes`
#   random bytes from the OS CSPRNG (openssl rand), base64, created ONLY when no secret of that
#   name exists. Never overwritten: a new pepper or master key would invalidate every stored hash
#   and wrapped key. Bicep cannot do this (newGuid() is not a key generator and a parameter
#   default is re-evaluated on every deployment).
# - KEY_VAULT_SUPPLIED_SECRETS ("SETTING:name ..."; SMTP password, Google credentials): stored by
#   the operator with `az keyvault secret set --file` (so they never sit in azd's .env in clear);
#   this hook lists the missing ones.
# - Then it asks App Service to re-resolve the Key Vault references (POST
#   .../config/configreferences/appsettings/refresh) and restarts the app if it wrote a secret.
#
# The deployer holds only "TrustGate Key Vault secret writer" (infra/app/rbac.bicep): it can list
# secret names and set secrets, never read a value. Values go through a private temp file, never
# through command-line arguments or the log.
set -eu

: "${AZURE_KEY_VAULT_NAME:?run through azd (azd provision / azd up)}"
command -v az >/dev/null 2>&1 || { echo "postprovision: the Azure CLI (az) is required" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || { echo "postprovision: openssl is required" >&2; exit 1; }

vault=$AZURE_KEY_VAULT_NAME
umask 077
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
changed=0

# The names of the secrets in the vault, one a line (metadata only). Retries while a new role
# assignment propagates; stops at once when the vault firewall refuses this machine.
attempt=1
until existing=$(az keyvault secret list --vault-name "$vault" --query "[].name" --output tsv 2>"$tmp"); do
  error=$(cat "$tmp")
  case "$error" in
    *ForbiddenByFirewall*|*ForbiddenByConnection*|*"Public network access is disabled"*|*"Client address is not authorized"*)
      echo "postprovision: the Key Vault firewall refuses this machine (vnetEnabled). Allow your public address:" >&2
      echo "  azd env set KEY_VAULT_ALLOWED_IP_ADDRESSES <your public IPv4>; azd provision" >&2
      echo "or run azd from inside the VNet. Key Vault said: $error" >&2
      exit 1 ;;
  esac
  if [ "$attempt" -ge 12 ]; then
    echo "postprovision: cannot list the secrets of $vault: $error" >&2
    exit 1
  fi
  echo "postprovision: waiting for Key Vault access (role assignment propagation), attempt $attempt"
  attempt=$((attempt + 1))
  sleep 15
done
: > "$tmp"

exists() {  # exists NAME: is there a secret of that name?
  printf '%s\n' "$existing" | grep -Fqx -- "$1"
}

store() {  # store NAME (value in $tmp)
  if ! az keyvault secret set --vault-name "$vault" --name "$1" --file "$tmp" --encoding utf-8 --output none; then
    : > "$tmp"
    echo "postprovision: could not store $1. If it was deleted, recover it (az keyvault secret recover --vault-name $vault --name $1): a new value would invalidate what the old one protects." >&2
    exit 1
  fi
  : > "$tmp"
  changed=1
}

for entry in ${KEY_VAULT_GENERATED_SECRETS:-}; do
  name=${entry%%:*}
  bytes=${entry##*:}
  if exists "$name"; then
    echo "postprovision: $name exists, kept"
  else
    openssl rand -base64 "$bytes" | tr -d '\n' > "$tmp"
    store "$name"
    echo "postprovision: $name generated ($bytes random bytes)"
  fi
done

for entry in ${KEY_VAULT_SUPPLIED_SECRETS:-}; do
  setting=${entry%%:*}
  name=${entry##*:}
  if [ -n "$(printenv "$setting" || true)" ]; then
    echo "postprovision: $setting is set in the azd environment, in clear text (.azure/<env>/.env); it is not used."
    echo "  Store it in Key Vault instead and delete that line: az keyvault secret set --vault-name $vault --name $name --file <file>"
  fi
  if ! exists "$name"; then
    echo "postprovision: $name is not set; features needing $setting stay off until you run:"
    echo "  az keyvault secret set --vault-name $vault --name $name --file <file>; azd hooks run postprovision"
  fi
done

# App Service resolves Key Vault references when it starts and caches them for 24 h; the refresh
# makes it fetch them now (on the first `azd up` they were created after the app).
if [ -n "${AZURE_FUNCTION_APP_ID:-}" ]; then
  if az rest --method post --url "${AZURE_FUNCTION_APP_ID}/config/configreferences/appsettings/refresh?api-version=2022-03-01" --output none; then
    unresolved=$(az rest --method get --url "${AZURE_FUNCTION_APP_ID}/config/configreferences/appsettings?api-version=2022-03-01" \
                   --query "value[?properties.status!='Resolved'].name" --output tsv 2>/dev/null || true)
    if [ -n "$unresolved" ]; then
      echo "postprovision: Key Vault references not resolved yet (missing secrets above, or access still propagating):"
      printf '  %s\n' $unresolved
    else
      echo "postprovision: every Key Vault reference resolved"
    fi
  else
    echo "postprovision: the Key Vault reference refresh failed; values reach the app at its next configuration change (or within 24 h)"
  fi
  # Running instances read the resolved values when they start.
  if [ "$changed" = 1 ]; then
    az functionapp restart --resource-group "$RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" --output none \
      || echo "postprovision: restart failed; new secrets reach running instances when they next start"
  fi
fi
