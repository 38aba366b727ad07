// Storage account: the app's blob containers (infra/app/blob-containers.json), the host's own
// containers and queues (AzureWebJobsStorage) and the Flex Consumption deployment package.
// Only Microsoft Entra ID (RBAC) access: no keys, no anonymous reads. Deleted or overwritten data
// stays recoverable (blob versioning, blob and container soft delete), and every data-plane call
// on blobs and queues is logged to Log Analytics (diagnostic settings below).
//
// blob-containers.json holds one entry per container the code uses:
//   { "name": "uploads", "setting": "UPLOADS_CONTAINER" }                    required
//   + "lifecycle": { <delete actions of a lifecycle management rule> }      optional
//       e.g. { "baseBlob": { "delete": { "daysAfterCreationGreaterThan": 1 } } }: applied to
//       the block and append blobs of this container (prefix "<name>/"); keys baseBlob,
//       snapshot, version, each { "delete": { <condition>: days } } (delete is the only action
//       valid for append blobs). ARM schema: managementPolicies, ManagementPolicyAction.
//   + "immutability": { <properties of the container's time-based retention policy> }  optional
//       e.g. { "immutabilityPeriodSinceCreationInDays": 365, "allowProtectedAppendWrites": true }:
//       Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies 'default'
//       (created unlocked; locking it is a deliberate, irreversible operator step).
// tests/unit/test_infra.py checks names, settings and these shapes against the code.
param name string
param location string = resourceGroup().location
param tags object = {}
@description('Blob container Flex Consumption deploys the app package from.')
param deploymentStorageContainerName string
@description('Standard_LRS (three copies in one datacenter) or Standard_ZRS (three availability zones).')
@allowed(['Standard_LRS', 'Standard_ZRS'])
param skuName string = 'Standard_LRS'
@description('Days a deleted blob (or blob version) stays recoverable.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteRetentionDays int = 7
@description('Days a deleted container stays recoverable.')
@minValue(1)
@maxValue(365)
param containerSoftDeleteRetentionDays int = 7
@description('Days a previous blob version (the state before an overwrite or delete) is kept before lifecycle management deletes it.')
@minValue(1)
param blobVersionRetentionDays int = 30
@description('True: no public endpoint; the app reaches the account through private endpoints (network.bicep).')
param vnetEnabled bool = false
@description('Log Analytics workspace that receives the blob and queue data-plane logs.')
param logAnalyticsWorkspaceId string

var blobContainers = loadJsonContent('./blob-containers.json')
// Queues the host writes to (blob trigger poison messages); it could create them itself, but
// declaring them keeps every storage resource visible in the template.
var storageQueues = loadJsonContent('./storage-queues.json')
// The Functions host's own containers (AzureWebJobsStorage): host locks, timer schedules and
// blob trigger receipts; function and host keys. Declared here, not left to the host, so that
// the app's identity needs rights on these containers only, not on the account (rbac.bicep).
var hostContainerNames = ['azure-webjobs-hosts', 'azure-webjobs-secrets']
var dataPlaneLogCategories = ['StorageRead', 'StorageWrite', 'StorageDelete']

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  // checkov:skip=CKV_AZURE_206: replication is the zoneRedundant parameter (ZRS); geo-replication (GRS) would copy device data and ciphertexts to a second region, a data-residency decision left to the operator.
  // checkov:skip=CKV_AZURE_35: default action Allow only while vnetEnabled is false (identity-only access); vnetEnabled=true denies all public traffic.
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
    // No SFTP/local users (they would authenticate outside Entra ID).
    isLocalUserEnabled: false
    isSftpEnabled: false
    // Reject TLS 1.0/1.1 clients and plain HTTP.
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    // vnetEnabled=false: a public endpoint that accepts only Entra ID tokens (the bypass has no
    // effect under defaultAction Allow). vnetEnabled=true: no public endpoint at all; the app
    // reaches blobs and queues through private endpoints. Event Grid needs no network path into
    // the account: the storage service itself publishes the blob events to the system topic.
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: vnetEnabled ? 'None' : 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // Every overwrite or delete keeps the previous state as a version (recoverable, and visible
    // to an investigation); lifecycle management below deletes versions after
    // blobVersionRetentionDays. Append Block does not create versions, so the message logs do
    // not multiply.
    isVersioningEnabled: true
    // A deleted blob or version stays recoverable for blobSoftDeleteRetentionDays, a deleted
    // container for containerSoftDeleteRetentionDays.
    deleteRetentionPolicy: {
      enabled: true
      days: blobSoftDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: containerSoftDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentStorageContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in hostContainerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource appContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in blobContainers: {
  parent: blobService
  name: container.name
  properties: {
    publicAccess: 'None'
  }
}]

// Time-based retention for the containers whose entry carries "immutability".
resource appContainerImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = [for (container, i) in blobContainers: if (contains(container, 'immutability')) {
  parent: appContainers[i]
  name: 'default'
  properties: (any(container)).?immutability ?? {}
}]

// Lifecycle management: previous versions expire after blobVersionRetentionDays everywhere, and
// each container entry with "lifecycle" adds its own rule for the blobs under its prefix.
var versionRetentionRule = {
  enabled: true
  name: 'expire-previous-versions'
  type: 'Lifecycle'
  definition: {
    filters: {
      blobTypes: ['blockBlob', 'appendBlob']
    }
    actions: {
      version: {
        delete: {
          daysAfterCreationGreaterThan: blobVersionRetentionDays
        }
      }
    }
  }
}
var containerLifecycleRules = [for container in filter(blobContainers, c => contains(c, 'lifecycle')): {
  enabled: true
  name: 'container-${container.name}'
  type: 'Lifecycle'
  definition: {
    filters: {
      blobTypes: ['blockBlob', 'appendBlob']
      prefixMatch: ['${container.name}/']
    }
    actions: any(container).lifecycle
  }
}]

resource lifecyclePolicy 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: concat([versionRetentionRule], containerLifecycleRules)
    }
  }
  dependsOn: [appContainers]
}

// Queues of the Functions host: blob trigger poison messages.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queue in storageQueues: {
  parent: queueService
  name: queue.name
}]

// Audit trail: every blob and queue read, write and delete, with the caller's identity
// (StorageBlobLogs / StorageQueueLogs tables of the workspace).
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [for category in dataPlaneLogCategories: {
      category: category
      enabled: true
    }]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [for category in dataPlaneLogCategories: {
      category: category
      enabled: true
    }]
  }
}

output name string = storage.name
output resourceId string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output hostContainerNames array = hostContainerNames
// App settings that carry blob container names, [{ name: 'UPLOADS_CONTAINER', value: 'uploads' }, ...].
output containerSettings array = [for container in blobContainers: {
  name: container.setting
  value: container.name
}]
output uploadsContainerName string = first(filter(blobContainers, c => c.setting == 'UPLOADS_CONTAINER')).name
