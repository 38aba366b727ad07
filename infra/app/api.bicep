// The TrustGate function app on Flex Consumption (FC1, Linux, Python 3.11), running as the
// user-assigned identity, with its app settings:
//   app-settings.json (plain values)  ∪  blob container names (storage.bicep)
//   ∪ Key Vault references (keyvault.bicep)  ∪  computedSettings below (endpoints, identity).
// tests/unit/test_infra.py checks that together they cover every setting shared_code.config reads.
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
@description('Key Vault references, { SETTING: \'@Microsoft.KeyVault(SecretUri=...)\' }.')
param secretSettings object
@description('Blob container names, { UPLOADS_CONTAINER: \'uploads\', ... }.')
param containerSettings object
@description('SMTP relay for the one-time code mails (azd env SMTP_HOST); empty = accounts answer configuration_error.')
param smtpHost string = ''
@description('From address of the one-time code mails (azd env SMTP_SENDER).')
param smtpSender string = ''
param maximumInstanceCount int = 40
@description('Environment name in the audit log origin trustgate/<name>/audit (AUDIT_ENVIRONMENT).')
param auditEnvironment string = 'azure'
param instanceMemoryMB int = 2048

var plainSettings = loadJsonContent('./app-settings.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Settings derived from other resources. Everything is identity-based: no connection string,
// account key or instrumentation-key-only ingestion anywhere.
var computedSettings = {
  // Host storage (AzureWebJobsStorage) through the user-assigned identity.
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // The "STORAGE" connection of the upload blob trigger and of shared_code.blobs. A blob
  // trigger given blobServiceUri also needs queueServiceUri (poison messages).
  STORAGE__blobServiceUri: storage.properties.primaryEndpoints.blob
  STORAGE__queueServiceUri: storage.properties.primaryEndpoints.queue
  STORAGE__credential: 'managedidentity'
  STORAGE__clientId: identityClientId
  // shared_code: Cosmos DB with DefaultAzureCredential (no COSMOS_KEY), pinned to this identity.
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabaseName
  AZURE_CLIENT_ID: identityClientId
  // Telemetry authenticated with the identity (Application Insights has local auth disabled).
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // Operator-supplied mail relay (the password is a Key Vault reference, see key-vault-secrets.json).
  SMTP_HOST: smtpHost
  SMTP_SENDER: smtpSender
  // audit (issue 15): the log's origin names the azd environment.
  AUDIT_ENVIRONMENT: auditEnvironment
}

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
  properties: {
    // Linux
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
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
    siteConfig: {
      // Reject TLS 1.0/1.1 clients.
      minTlsVersion: '1.2'
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

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: union(plainSettings, containerSettings, secretSettings, computedSettings)
  }
}

output name string = functionApp.name
output uri string = 'https://${functionApp.properties.defaultHostName}'
