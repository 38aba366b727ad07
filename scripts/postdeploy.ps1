# azd postdeploy hook (PowerShell): subscribe each Event Grid blob trigger to blob-created events.
# Same contract as postdeploy.sh: record_upload gets the uploads container's events,
# verify_staged_upload (direct uploads) the upload staging container's; the blobs_extension
# webhook key exists only once the code is deployed, so the subscriptions are made here, not in
# Bicep. Idempotent.
$ErrorActionPreference = 'Stop'

foreach ($name in 'RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_URL', 'UPLOADS_SYSTEM_TOPIC_NAME', 'UPLOADS_CONTAINER', 'UPLOAD_STAGING_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { throw "postdeploy: $name is not set; run through azd (azd deploy / azd up)" }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'postdeploy: the Azure CLI (az) is required' }

# The host creates the key when it first indexes an Event Grid blob trigger: wait for it.
$key = ''
$ErrorActionPreference = 'Continue'   # az failures below are retried, not fatal
for ($attempt = 1; -not $key; $attempt++) {
    $key = az functionapp keys list --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --query 'systemKeys.blobs_extension' --output tsv 2>$null
    if ($key) { break }
    if ($attempt -ge 12) { throw "postdeploy: no blobs_extension key on $($env:AZURE_FUNCTION_APP_NAME); is the code deployed? Re-run: azd hooks run postdeploy" }
    Write-Host "postdeploy: waiting for the function host to create the blobs_extension key, attempt $attempt"
    Start-Sleep -Seconds 10
}

# BlobCreated events of $Container reach $Function through subscription $Subscription.
function Add-BlobSubscription([string]$Function, [string]$Container, [string]$Subscription) {
    # The extra double quotes keep '&' inside one argument when PowerShell calls az (a .cmd on Windows).
    $endpoint = '"' + $env:AZURE_FUNCTION_APP_URL + '/runtime/webhooks/blobs?functionName=Host.Functions.' + $Function + '&code=' + $key + '"'
    $filter = '/blobServices/default/containers/' + $Container + '/blobs/'
    # Event Grid validates the endpoint when subscribing; a cold instance can miss the first handshake.
    for ($attempt = 1; ; $attempt++) {
        az eventgrid system-topic event-subscription create `
            --name $Subscription `
            --resource-group $env:RESOURCE_GROUP `
            --system-topic-name $env:UPLOADS_SYSTEM_TOPIC_NAME `
            --endpoint-type webhook `
            --endpoint $endpoint `
            --included-event-types Microsoft.Storage.BlobCreated `
            --subject-begins-with $filter `
            --output none
        if ($LASTEXITCODE -eq 0) { break }
        if ($attempt -ge 3) { throw "postdeploy: could not create the Event Grid subscription $Subscription; re-run: azd hooks run postdeploy" }
        Start-Sleep -Seconds 20
    }
    Write-Host "postdeploy: blob-created events of '$Container' now reach $Function"
}

# The blob triggers' function names (tests/unit/test_infra.py checks them against the app).
$FUNCTION_NAME = 'record_upload'
Add-BlobSubscription $FUNCTION_NAME $env:UPLOADS_CONTAINER 'uploads-blob-created'
$FUNCTION_NAME = 'verify_staged_upload'
Add-BlobSubscription $FUNCTION_NAME $env:UPLOAD_STAGING_CONTAINER 'upload-staging-blob-created'
