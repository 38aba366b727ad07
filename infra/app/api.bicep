// The TrustGate function app on Flex Consumption (FC1, Linux, Python 3.11), running as the
// user-assigned identity, with its app settings (siteConfig.appSettings, one list):
//   app-settings.json (plain values)  +  blob container names (storage.bicep)
//   + Key Vault references (keyvault.bicep)  +  computedSettings below (endpoints, identity).
// tests/unit/test_infra.py checks that together they cover every setting shared_code.config
// reads, and that no name comes from two sources.
param name string
param planName string
param location string = resourceGroup().location
param tags object = {}
@description('azd deploys the code of the azure.yaml service with this name to this app.')
param serviceName string = 'api'
param identityId string
param identityClientId string
param applicationInsightsName string
param storageAccountName string
param deploymentStorageContainerName string
param cosmosEndpoint string
param cosmosDatabaseName string
@description('Key Vault references, [{ name: SETTING, value: \'@Microsoft.KeyVault(SecretUri=...)\' }].')
param secretSettings array
@description('Blob container names, [{ name: \'UPLOADS_CONTAINER\', value: \'uploads\' }, ...].')
param containerSettings array
@description('SMTP relay for the one-time code mails (azd env SMTP_HOST); empty = accounts answer configuration_error.')
param smtpHost string = ''
@description('From address of the one-time code mails (azd env SMTP_SENDER).')
param smtpSender string = ''
param maximumInstanceCount int = 40
@description('Environment name in the audit log origin trustgate/<name>/audit (AUDIT_ENVIRONMENT).')
param auditEnvironment string = 'azure'
param instanceMemoryMB int = 2048
@description('Zone-redundant plan (Flex Consumption then keeps two always-ready instances per function group).')
param zoneRedundant bool = false
@description('Subnet (delegated to Microsoft.App/environments) for outbound VNet integration; empty = none.')
param virtualNetworkSubnetId string = ''

var plainSettings = loadJsonContent('./app-settings.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Settings derived from other resources, as siteConfig.appSettings takes them ([{ name, value }];
// written out rather than looped over: a for-body may not use runtime values such as endpoints).
// Everything is identity-based: no connection string, account key or instrumentation-key-only
// ingestion anywhere.
var computedSettings = [
  // Host storage (AzureWebJobsStorage) through the user-assigned identity. No tableServiceUri:
  // nothing here uses tables (the host then skips its optional diagnostic-events table).
  { name: 'AzureWebJobsStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  // The "STORAGE" connection of the upload blob trigger and of shared_code.blobs. A blob
  // trigger given blobServiceUri also needs queueServiceUri (poison messages).
  { name: 'STORAGE__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
  { name: 'STORAGE__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
  { name: 'STORAGE__credential', value: 'managedidentity' }
  { name: 'STORAGE__clientId', value: identityClientId }
  // shared_code: Cosmos DB with DefaultAzureCredential (no COSMOS_KEY), pinned to this identity.
  { name: 'COSMOS_ENDPOINT', value: cosmosEndpoint }
  { name: 'COSMOS_DATABASE', value: cosmosDatabaseName }
  { name: 'AZURE_CLIENT_ID', value: identityClientId }
  // Telemetry authenticated with the identity (Application Insights has local auth disabled).
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  // Operator-supplied mail relay (the password is a Key Vault reference, see key-vault-secrets.json).
  { name: 'SMTP_HOST', value: smtpHost }
  { name: 'SMTP_SENDER', value: smtpSender }
  // audit: the log's origin names the azd environment.
  { name: 'AUDIT_ENVIRONMENT', value: auditEnvironment }
]

// The plain values of app-settings.json, listed the same way (known when the template compiles).
var plainAppSettings = [for setting in items(plainSettings): {
  name: setting.key
  value: setting.value
}]

// Create an App Service Plan to group applications under the same payment plan and SKU
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter; on Flex Consumption it keeps two always-ready instances per function group, billed around the clock, so it is a production choice (README), off by default.
  properties: {
    // Linux
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  // checkov:skip=CKV_AZURE_222: a public API: devices, users and the Event Grid webhook call it from the internet; requests are authenticated by the app (device signatures, sessions, bearer tokens).
  // checkov:skip=CKV_AZURE_17: client certificates do not fit a public device and browser API (authentication is at the application layer), and Flex Consumption does not support platform certificate features.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales each function group from zero; siteConfig.numberOfWorkers does not apply (always-ready instances do, see zoneRedundant).
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP/FTPS endpoint; siteConfig.ftpsState is on its list of deprecated site properties (ARM rejects it in some regions, error 51021).
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    // Plain HTTP is redirected to HTTPS: device tokens and bearer tokens travel in headers.
    httpsOnly: true
    // Key Vault references resolve with the user-assigned identity (the default would be a
    // system-assigned identity, which this app does not have).
    keyVaultReferenceIdentity: identityId
    // Outbound traffic through the VNet (network.bicep) when network isolation is on.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      // Reject TLS 1.0/1.1 clients; offer HTTP/2.
      minTlsVersion: '1.2'
      http20Enabled: true
      // The platform probes GET /health (Cosmos DB and Blob Storage reachable) on each instance
      // and stops routing to one that keeps failing.
      healthCheckPath: '/health'
      // Linux apps must route all traffic through the VNet to resolve Key Vault references over
      // a private endpoint (Key Vault references docs, network-restricted vaults).
      vnetRouteAllEnabled: !empty(virtualNetworkSubnetId)
      appSettings: concat(plainAppSettings, containerSettings, secretSettings, computedSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentStorageContainerName}'
          // The package is fetched with the identity: the storage account has no keys.
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic-auth (publishing profile) deployments: azd deploys with an Entra ID token.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output resourceId string = functionApp.id
output uri string = 'https://${functionApp.properties.defaultHostName}'
