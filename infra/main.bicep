// TrustGate on Azure: one Flex Consumption function app, Cosmos DB (serverless), Blob Storage,
// Key Vault and Application Insights, all reached with one user-assigned managed identity and no
// keys; optionally (vnetEnabled) behind private endpoints. Shape and conventions follow the
// Azure-Samples azd function templates (functions-quickstart-python-http-azd,
// functions-quickstart-python-azd-eventgrid-blob). Production parameters and what they cost:
// README, "Deploy to Azure".
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

@description('Object id of whoever runs azd (AZURE_PRINCIPAL_ID, filled by azd). Gets write-only access to Key Vault secrets so the postprovision hook can create them; data access only with grantDeveloperDataAccess.')
param principalId string = ''

@description('Dev environments only: also give principalId read/write on Cosmos DB items, the data blob containers and every Key Vault secret (local runs against the cloud). Whoever holds it can decrypt every stored file.')
param grantDeveloperDataAccess bool = false

@description('SMTP relay host for one-time code mails (azd env set SMTP_HOST ...); empty until set.')
param smtpHost string = ''

@description('From address of one-time code mails (azd env set SMTP_SENDER ...).')
param smtpSender string = ''

@description('Upper bound of Flex Consumption instances (cost and downstream-throttling guard; Flex accepts 40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per Flex Consumption instance, MB.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Key Vault purge protection (irreversible once on): a purged pepper or master key makes every stored hash and wrapped key useless. Turn off only for throwaway environments that `azd down --purge` must remove at once.')
param keyVaultPurgeProtection bool = true

@description('Zone redundancy: ZRS storage, a zone-redundant Cosmos DB account (both fixed at creation) and a zone-redundant Flex Consumption plan (two always-ready instances per function group).')
param zoneRedundant bool = false

@description('Network isolation: a VNet, private endpoints for Storage, Cosmos DB and Key Vault, their public endpoints off, and the app\'s outbound traffic through the VNet.')
param vnetEnabled bool = false

@description('With vnetEnabled: comma-separated public IPv4 addresses/CIDR ranges allowed through the Key Vault firewall (the machine running azd, for the postprovision hook).')
param keyVaultAllowedIpAddresses string = ''

@description('Days a deleted blob or blob version stays recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param blobSoftDeleteRetentionDays int = 7

@description('Days a deleted blob container stays recoverable (soft delete).')
@minValue(1)
@maxValue(365)
param containerSoftDeleteRetentionDays int = 7

@description('Days a previous blob version (state before an overwrite or delete) is kept.')
@minValue(1)
param blobVersionRetentionDays int = 30

@description('Cosmos DB database name (COSMOS_DATABASE).')
param cosmosDatabaseName string = 'trustgate'

@description('Days each audit log blob stays immutable (time-based retention, protected appends allowed). The policy is created unlocked; lock it for production (README, Audit log).')
@minValue(1)
@maxValue(146000)
param auditRetentionDays int = 365

param resourceGroupName string = ''
param functionAppName string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}trustgate-${resourceToken}'
// Flex Consumption pulls the app package from this container (with the app's identity).
var deploymentStorageContainerName = 'app-package-${take(appName, 32)}-${take(toLower(uniqueString(appName, resourceToken)), 7)}'
var keyVaultAllowedIps = filter(split(keyVaultAllowedIpAddresses, ','), address => !empty(trim(address)))

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
    skuName: zoneRedundant ? 'Standard_ZRS' : 'Standard_LRS'
    blobSoftDeleteRetentionDays: blobSoftDeleteRetentionDays
    containerSoftDeleteRetentionDays: containerSoftDeleteRetentionDays
    blobVersionRetentionDays: blobVersionRetentionDays
    vnetEnabled: vnetEnabled
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
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
    userPrincipalId: grantDeveloperDataAccess ? principalId : ''
    zoneRedundant: zoneRedundant
    vnetEnabled: vnetEnabled
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
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
    vnetEnabled: vnetEnabled
    allowedIpAddresses: keyVaultAllowedIps
    publicNetworkAccess: vnetEnabled && empty(keyVaultAllowedIps) ? 'Disabled' : 'Enabled'
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

// Role assignments (Storage, Monitoring, Key Vault) for the app and the deployer.
module rbac 'app/rbac.bicep' = {
  name: 'rbacAssignments'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    managedIdentityPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    grantDeveloperDataAccess: grantDeveloperDataAccess
    deploymentStorageContainerName: deploymentStorageContainerName
    hostContainerNames: storage.outputs.hostContainerNames
  }
}

// Network isolation (vnetEnabled): the VNet and one private endpoint per service the app calls.
module network 'app/network.bicep' = if (vnetEnabled) {
  name: 'network'
  scope: rg
  params: {
    name: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
  }
}

// One private endpoint per service the app calls. The loop runs over names known when the
// deployment starts; the services' resource ids are looked up per target.
var privateEndpointTargets = [
  { name: 'blob', service: 'storage', groupId: 'blob', zone: 'privatelink.blob.${environment().suffixes.storage}' }
  { name: 'queue', service: 'storage', groupId: 'queue', zone: 'privatelink.queue.${environment().suffixes.storage}' }
  // Public-cloud zone names (Cosmos DB and Key Vault have no environment() suffix for them).
  { name: 'cosmos', service: 'cosmos', groupId: 'Sql', zone: 'privatelink.documents.azure.com' }
  { name: 'vault', service: 'vault', groupId: 'vault', zone: 'privatelink.vaultcore.azure.net' }
]
var privateLinkServiceIds = {
  storage: storage.outputs.resourceId
  cosmos: cosmos.outputs.resourceId
  vault: keyVault.outputs.resourceId
}

module privateEndpoints 'app/private-endpoint.bicep' = [for target in privateEndpointTargets: if (vnetEnabled) {
  name: 'private-endpoint-${target.name}'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${target.name}-${resourceToken}'
    location: location
    tags: tags
    privateLinkServiceId: privateLinkServiceIds[target.service]
    groupId: target.groupId
    privateDnsZoneName: target.zone
    vnetId: vnetEnabled ? network.outputs.resourceId : ''
    subnetId: vnetEnabled ? network.outputs.privateEndpointSubnetId : ''
  }
}]

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
    zoneRedundant: zoneRedundant
    virtualNetworkSubnetId: vnetEnabled ? network.outputs.appSubnetId : ''
    smtpHost: smtpHost
    smtpSender: smtpSender
    auditEnvironment: environmentName
  }
  // Key Vault references resolve with the app's identity at start, over the private endpoints
  // when vnetEnabled: grant and connect first.
  dependsOn: [rbac, privateEndpoints]
}

// Audit log: WORM retention with protected appends on the audit container, so even the
// operator cannot rewrite or delete a log segment or a published checkpoint within the period.
module auditStorage 'app/audit-storage.bicep' = {
  name: 'auditStorage'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: storage.outputs.containerSettings.AUDIT_CONTAINER
    retentionDays: auditRetentionDays
  }
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
// Resource id of the app, for the Key Vault reference refresh of the postprovision hook.
output AZURE_FUNCTION_APP_ID string = api.outputs.resourceId
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
// Direct uploads: the staging container, whose BlobCreated events postdeploy subscribes.
output UPLOAD_STAGING_CONTAINER string = first(filter(loadJsonContent('app/blob-containers.json'), c => c.setting == 'UPLOAD_STAGING_CONTAINER')).name
