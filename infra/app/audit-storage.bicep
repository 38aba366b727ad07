// Audit log storage: a time-based retention policy on the audit container (created by
// storage.bicep from blob-containers.json) that still allows protected appends.
// - Append blobs (log segments, upper hash tiles, checkpoint segments) can only grow: existing
//   blocks can be neither modified nor deleted, new blocks can be appended.
// - New blobs (the next segment, a level-0 hash tile) can be created; no blob can be overwritten
//   or deleted until its retention period has passed.
// The policy is deployed *unlocked* so a dev environment stays deletable (`azd down` after
// `az storage container immutability-policy delete`); for production lock it once
// (`az storage container immutability-policy lock`, irreversible): then not even an account
// owner can shorten or remove it.
param storageAccountName string
param containerName string
@minValue(1)
param retentionDays int = 365

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName

  resource blobServices 'blobServices' existing = {
    name: 'default'

    resource auditContainer 'containers' existing = {
      name: containerName

      resource retention 'immutabilityPolicies' = {
        name: 'default'
        properties: {
          immutabilityPeriodSinceCreationInDays: retentionDays
          // New blocks may be appended to append blobs under the policy (the log grows); none
          // of the existing ones may change.
          allowProtectedAppendWrites: true
        }
      }
    }
  }
}

output containerName string = storage::blobServices::auditContainer.name
output retentionDays int = storage::blobServices::auditContainer::retention.properties.immutabilityPeriodSinceCreationInDays
