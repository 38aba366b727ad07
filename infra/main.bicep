// TrustGate on Azure: one Flex Consumption function app, Cosmos DB (serverless), Blob Storage,
// Key Vault and Application Insights, all reached with one user-assigned managed identity and no
// keys. Shape and conventions follow the Azure-Samples azd function templates
// (functions-quickstart-python-http-azd, functions-quickstart-python-azd-eventgrid-blob).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it seeds a short unique hash used in every resource name.')
param environmentName string

@minLength(1)
@description('Primary location for all resources (must offer Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the developer running azd (AZURE_PRINCIPAL_ID). Gets data access to Cosmos DB, Storage and Key Vault so the app can run locally against the cloud resources and the postprovision hook can write secrets. Leave empty in CI/production.')
param principalId string = ''

@description('SMTP relay host for one-time code mails (azd env set SMTP_HOST ...); empty until set.')
param smtpHost string = ''

@description('From address of one-time code mails (azd env set SMTP_SENDER ...).')
param smtpSender string = ''

@description('Upper bound of Flex Consumption instances (cost and downstream-throttling guard).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per Flex Consumption instance, MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Key Vault purge protection. Turn on for production: a purged pepper or master key makes every stored hash and wrapped key useless. Off by default so `azd down --purge` can clean up a dev environment.')
param keyVaultPurgeProtection bool = false

@description('Cosmos DB database name (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'trustgate'

param resourceGroupName string = ''
param functionAppName string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}trustgate-${resourceToken}'
// Flex Consumption pulls the app package from this container (with the app's identity).
var deploymentStorageContainerName = 'app-package-${take(appName, 32)}-${take(toLower(uniqueString(appName, resourceToken)), 7)}'

// Organize resources in a resource group
resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// One user-assigned identity for the app: it exists before the app, so every role assignment and
// the Cosmos data-plane assignment can be made in the same deployment, and AZURE_CLIENT_ID pins
// DefaultAzureCredential to it.
module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}trustgate-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentStorageContainerName: deploymentStorageContainerName
  }
}

module cosmos 'app/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    // Vault names are 3-24 characters: 'kv-' + 13-character token fits.
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    purgeProtection: keyVaultPurgeProtection
  }
}

// Direct uploads (issue 13): staged blobs nobody verified are deleted after one day.
module storageLifecycle 'app/storage-lifecycle.bicep' = {
  name: 'storageLifecycle'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
  }
}

// Consolidated role assignments (Storage, Monitoring, Key Vault) for the app and the developer.
module rbac 'app/rbac.bicep' = {
  name: 'rbacAssignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    managedIdentityPrincipalId: identity.outputs.principalId
    userIdentityPrincipalId: principalId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.resourceId
    identityClientId: identity.outputs.clientId
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
    deploymentStorageContainerName: deploymentStorageContainerName
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    secretSettings: keyVault.outputs.referenceSettings
    containerSettings: storage.outputs.containerSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    smtpHost: smtpHost
    smtpSender: smtpSender
  }
  // Key Vault references resolve with the app's identity at start: grant it first.
  dependsOn: [rbac]
}

// Blob-created events of the storage account; the postdeploy hook subscribes the upload blob
// trigger's webhook to it (the webhook key exists only once the code is deployed).
module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: '${abbrs.eventGridSystemTopics}storage-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
  }
}

// Outputs azd stores in .azure/<env>/.env (read by the hooks and for local runs)
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URL string = api.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output STORAGE__blobServiceUri string = storage.outputs.blobEndpoint
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmos.outputs.databaseName
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output KEY_VAULT_GENERATED_SECRETS string = keyVault.outputs.generatedSecrets
output KEY_VAULT_SUPPLIED_SECRETS string = keyVault.outputs.suppliedSecrets
output UPLOADS_CONTAINER string = storage.outputs.uploadsContainerName
output UPLOADS_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
// Direct uploads (issue 13): the staging container, whose BlobCreated events postdeploy subscribes.
output UPLOAD_STAGING_CONTAINER string = storageLifecycle.outputs.stagingContainerName
