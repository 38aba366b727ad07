#!/bin/sh
# azd postdeploy hook (POSIX): subscribe each Event Grid blob trigger to blob-created events.
#
# On Flex Consumption the blob triggers use the Event Grid source: Event Grid posts each
# BlobCreated event of a container to the host's blobs_extension webhook for one function. Two
# triggers, two subscriptions on the same system topic, each filtered to its container:
#   record_upload        <- uploads container (functions/uploads.py)
#   verify_staged_upload <- upload staging container, direct uploads (functions/direct_uploads.py)
# The webhook's system key exists only once the code is deployed and indexed, so this runs after
# `azd deploy` rather than in Bicep. Idempotent: `create` replaces a subscription.
set -eu

: "${RESOURCE_GROUP:?run through azd (azd deploy / azd up)}"
: "${AZURE_FUNCTION_APP_NAME:?}" "${AZURE_FUNCTION_APP_URL:?}" "${UPLOADS_SYSTEM_TOPIC_NAME:?}" "${UPLOADS_CONTAINER:?}"
: "${UPLOAD_STAGING_CONTAINER:?}"
command -v az >/dev/null 2>&1 || { echo "postdeploy: the Azure CLI (az) is required" >&2; exit 1; }

# The host creates the key when it first indexes an Event Grid blob trigger: wait for it.
key=""
attempt=1
while [ -z "$key" ]; do
  key=$(az functionapp keys list --resource-group "$RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
        --query "systemKeys.blobs_extension" --output tsv 2>/dev/null || true)
  [ -n "$key" ] && break
  if [ "$attempt" -ge 12 ]; then
    echo "postdeploy: no blobs_extension key on $AZURE_FUNCTION_APP_NAME; is the code deployed? Re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "postdeploy: waiting for the function host to create the blobs_extension key, attempt $attempt"
  attempt=$((attempt + 1))
  sleep 10
done

# subscribe FUNCTION CONTAINER SUBSCRIPTION: BlobCreated events of CONTAINER reach FUNCTION.
subscribe() {
  endpoint="${AZURE_FUNCTION_APP_URL}/runtime/webhooks/blobs?functionName=Host.Functions.$1&code=${key}"
  filter="/blobServices/default/containers/$2/blobs/"
  # Event Grid validates the endpoint when subscribing; a cold instance can miss the first
  # handshake, so retry a few times.
  attempt=1
  until az eventgrid system-topic event-subscription create \
          --name "$3" \
          --resource-group "$RESOURCE_GROUP" \
          --system-topic-name "$UPLOADS_SYSTEM_TOPIC_NAME" \
          --endpoint-type webhook \
          --endpoint "$endpoint" \
          --included-event-types Microsoft.Storage.BlobCreated \
          --subject-begins-with "$filter" \
          --output none; do
    if [ "$attempt" -ge 3 ]; then
      echo "postdeploy: could not create the Event Grid subscription $3; re-run: azd hooks run postdeploy" >&2
      exit 1
    fi
    attempt=$((attempt + 1))
    sleep 20
  done
  echo "postdeploy: blob-created events of '$2' now reach $1"
}

# The blob triggers' function names (tests/unit/test_infra.py checks them against the app).
FUNCTION_NAME=record_upload
subscribe "$FUNCTION_NAME" "$UPLOADS_CONTAINER" uploads-blob-created
FUNCTION_NAME=verify_staged_upload
subscribe "$FUNCTION_NAME" "$UPLOAD_STAGING_CONTAINER" upload-staging-blob-created
