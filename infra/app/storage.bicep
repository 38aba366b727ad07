// Storage account: the host's own storage (AzureWebJobsStorage), the deployment package, the
// app's blob containers (infra/app/blob-containers.json) and the queues the host uses.
// Only Microsoft Entra ID (RBAC) access; no keys, no anonymous reads.
param name string
param location string = resourceGroup().location
param tags object = {}
@description('Blob container Flex Consumption deploys the app package from.')
param deploymentStorageContainerName string

// One entry per blob container the code uses: { name, setting } where `setting` is the app
// setting that carries the name (tests/unit/test_infra.py compares this with the code).
var blobContainers = loadJsonContent('./blob-containers.json')
// Queues the host writes to (blob trigger poison messages); it could create them itself, but
// declaring them keeps every storage resource visible in the template.
var storageQueues = loadJsonContent('./storage-queues.json')

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    // Shared keys (and so account SAS and connection strings) are refused: every caller, the
    // Functions host included, must present an Entra ID token, which RBAC scopes and audits.
    allowSharedKeyAccess: false
    // The portal and tools default to Entra ID too, instead of trying the (disabled) keys.
    defaultToOAuthAuthentication: true
    // No container may ever be made anonymously readable: uploads are device data.
    allowBlobPublicAccess: false
    // Data cannot be replicated into another tenant's account by object replication.
    allowCrossTenantReplication: false
    // Reject TLS 1.0/1.1 clients and plain HTTP.
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    // No VNet in this template: public endpoint, but identity-only. Event Grid (a trusted Azure
    // service) must reach the account to deliver blob events.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentStorageContainerName
      properties: {
        publicAccess: 'None'
      }
    }

    resource appContainers 'containers' = [for container in blobContainers: {
      name: container.name
      properties: {
        publicAccess: 'None'
      }
    }]
  }

  // Required by the Functions host (AzureWebJobsStorage): queues for blob-trigger receipts and
  // poison messages, tables for timer/scale bookkeeping.
  resource queueServices 'queueServices' = {
    name: 'default'

    resource queues 'queues' = [for queue in storageQueues: {
      name: queue.name
    }]
  }

  resource tableServices 'tableServices' = {
    name: 'default'
  }
}

output name string = storage.name
output resourceId string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
// App settings that carry blob container names, e.g. { UPLOADS_CONTAINER: 'uploads' }.
output containerSettings object = toObject(blobContainers, c => c.setting, c => c.name)
output uploadsContainerName string = first(filter(blobContainers, c => c.setting == 'UPLOADS_CONTAINER')).name
