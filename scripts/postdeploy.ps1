# azd postdeploy hook (PowerShell): subscribe the upload blob trigger to blob-created events.
# Same contract as postdeploy.sh: the blobs_extension webhook key exists only once the code is
# deployed, so the Event Grid subscription is made here, not in Bicep. Idempotent.
$ErrorActionPreference = 'Stop'

# The blob trigger's function name (functions/uploads.py; tests/unit/test_infra.py checks it).
$FUNCTION_NAME = 'record_upload'
$SUBSCRIPTION_NAME = 'uploads-blob-created'

foreach ($name in 'RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_FUNCTION_APP_URL', 'UPLOADS_SYSTEM_TOPIC_NAME', 'UPLOADS_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { throw "postdeploy: $name is not set; run through azd (azd deploy / azd up)" }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'postdeploy: the Azure CLI (az) is required' }

# The host creates the key when it first indexes the Event Grid blob trigger: wait for it.
$key = ''
$ErrorActionPreference = 'Continue'   # az failures below are retried, not fatal
for ($attempt = 1; -not $key; $attempt++) {
    $key = az functionapp keys list --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --query 'systemKeys.blobs_extension' --output tsv 2>$null
    if ($key) { break }
    if ($attempt -ge 12) { throw "postdeploy: no blobs_extension key on $($env:AZURE_FUNCTION_APP_NAME); is the code deployed? Re-run: azd hooks run postdeploy" }
    Write-Host "postdeploy: waiting for the function host to create the blobs_extension key, attempt $attempt"
    Start-Sleep -Seconds 10
}

# The extra double quotes keep '&' inside one argument when PowerShell calls az (a .cmd on Windows).
$endpoint = '"' + $env:AZURE_FUNCTION_APP_URL + '/runtime/webhooks/blobs?functionName=Host.Functions.' + $FUNCTION_NAME + '&code=' + $key + '"'
$filter = '/blobServices/default/containers/' + $env:UPLOADS_CONTAINER + '/blobs/'

# Event Grid validates the endpoint when subscribing; a cold instance can miss the first handshake.
for ($attempt = 1; ; $attempt++) {
    az eventgrid system-topic event-subscription create `
        --name $SUBSCRIPTION_NAME `
        --resource-group $env:RESOURCE_GROUP `
        --system-topic-name $env:UPLOADS_SYSTEM_TOPIC_NAME `
        --endpoint-type webhook `
        --endpoint $endpoint `
        --included-event-types Microsoft.Storage.BlobCreated `
        --subject-begins-with $filter `
        --output none
    if ($LASTEXITCODE -eq 0) { break }
    if ($attempt -ge 3) { throw 'postdeploy: could not create the Event Grid subscription; re-run: azd hooks run postdeploy' }
    Start-Sleep -Seconds 20
}
Write-Host "postdeploy: blob-created events of '$($env:UPLOADS_CONTAINER)' now reach $FUNCTION_NAME"
