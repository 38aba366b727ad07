#!/bin/sh
# azd postdeploy hook (POSIX): subscribe the upload blob trigger to blob-created events.
#
# On Flex Consumption the blob trigger uses the Event Grid source (functions/uploads.py): Event
# Grid posts each BlobCreated event of the uploads container to the host's blobs_extension
# webhook. The webhook's system key exists only once the code is deployed and indexed, so this
# runs after `azd deploy` rather than in Bicep. Idempotent: `create` replaces the subscription.
set -eu

# The blob trigger's function name (functions/uploads.py; tests/unit/test_infra.py checks it).
FUNCTION_NAME=record_upload
SUBSCRIPTION_NAME=uploads-blob-created

: "${RESOURCE_GROUP:?run through azd (azd deploy / azd up)}"
: "${AZURE_FUNCTION_APP_NAME:?}" "${AZURE_FUNCTION_APP_URL:?}" "${UPLOADS_SYSTEM_TOPIC_NAME:?}" "${UPLOADS_CONTAINER:?}"
command -v az >/dev/null 2>&1 || { echo "postdeploy: the Azure CLI (az) is required" >&2; exit 1; }

# The host creates the key when it first indexes the Event Grid blob trigger: wait for it.
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

endpoint="${AZURE_FUNCTION_APP_URL}/runtime/webhooks/blobs?functionName=Host.Functions.${FUNCTION_NAME}&code=${key}"
filter="/blobServices/default/containers/${UPLOADS_CONTAINER}/blobs/"

# Event Grid validates the endpoint when subscribing; a cold instance can miss the first
# handshake, so retry a few times.
attempt=1
until az eventgrid system-topic event-subscription create \
        --name "$SUBSCRIPTION_NAME" \
        --resource-group "$RESOURCE_GROUP" \
        --system-topic-name "$UPLOADS_SYSTEM_TOPIC_NAME" \
        --endpoint-type webhook \
        --endpoint "$endpoint" \
        --included-event-types Microsoft.Storage.BlobCreated \
        --subject-begins-with "$filter" \
        --output none; do
  if [ "$attempt" -ge 3 ]; then
    echo "postdeploy: could not create the Event Grid subscription; re-run: azd hooks run postdeploy" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 20
done
echo "postdeploy: blob-created events of '$UPLOADS_CONTAINER' now reach $FUNCTION_NAME"
