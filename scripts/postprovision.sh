#!/bin/sh
# azd postprovision hook (POSIX): put the app's secrets into Key Vault.
#
# - KEY_VAULT_GENERATED_SECRETS ("name:bytes ..."; peppers, master keys): a value of `bytes`
#   random bytes from the OS CSPRNG (openssl rand), base64, created ONLY when the secret does not
#   exist yet. Never overwritten: a new pepper or master key would invalidate every stored hash
#   and wrapped key. Bicep cannot do this (newGuid() is not a key generator and a parameter
#   default is re-evaluated on every deployment).
# - KEY_VAULT_SUPPLIED_SECRETS ("SETTING:name ..."; SMTP password, Google credentials): copied
#   from the azd environment variable SETTING when set (`azd env set SMTP_PASSWORD ...`), else a
#   reminder is printed.
# Values go through a private temp file, never through command-line arguments or the log.
set -eu

: "${AZURE_KEY_VAULT_NAME:?run through azd (azd provision / azd up)}"
command -v az >/dev/null 2>&1 || { echo "postprovision: the Azure CLI (az) is required" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || { echo "postprovision: openssl is required" >&2; exit 1; }

umask 077
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
changed=0

# exists NAME -> 0 if the secret exists, 1 if not; retries while the new role assignment propagates.
exists() {
  attempt=1
  while :; do
    if out=$(az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name "$1" --query id -o tsv 2>&1); then
      return 0
    fi
    case "$out" in
      *SecretNotFound*|*"was not found"*) return 1 ;;
    esac
    if [ "$attempt" -ge 12 ]; then
      echo "postprovision: cannot read Key Vault secret $1: $out" >&2
      exit 1
    fi
    echo "postprovision: waiting for Key Vault access (role assignment propagation), attempt $attempt"
    attempt=$((attempt + 1))
    sleep 15
  done
}

store() {  # store NAME (value in $tmp)
  az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name "$1" --file "$tmp" --encoding utf-8 --output none
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
  value=$(printenv "$setting" || true)
  if [ -n "$value" ]; then
    printf '%s' "$value" > "$tmp"
    store "$name"
    echo "postprovision: $name set from the azd environment ($setting)"
  elif ! exists "$name"; then
    echo "postprovision: $name is not set; features needing $setting stay off until you run:"
    echo "  azd env set $setting '<value>' && azd provision   (or: az keyvault secret set --vault-name $AZURE_KEY_VAULT_NAME --name $name --file <file>)"
  fi
done

# Key Vault references are resolved when the app (re)starts: pick up new values now.
if [ "$changed" = 1 ] && [ -n "${AZURE_FUNCTION_APP_NAME:-}" ]; then
  az functionapp restart --resource-group "$RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" --output none \
    || echo "postprovision: restart failed; new secrets reach the app at its next restart (or within 24 h)"
fi
