// Lifecycle management of the app's storage account (direct uploads, issue 13): a staged blob is
// deleted one day after its last write. The staging verifier deletes every blob it judged within
// seconds, so what this catches is only what nobody will verify: a commit whose event was lost,
// a blob of a grant that expired. Uncommitted blocks are not blobs yet; Azure discards them by
// itself 7 days after their last Put Block.
// Kept out of storage.bicep on purpose (small, additive); an account has exactly one management
// policy ('default'), so a later rule for another container goes into this file.
param storageAccountName string

var blobContainers = loadJsonContent('./blob-containers.json')
var stagingContainerName = first(filter(blobContainers, c => c.setting == 'UPLOAD_STAGING_CONTAINER')).name

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  name: 'default'
  parent: storage
  properties: {
    policy: {
      rules: [
        {
          name: 'delete-staged-uploads'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              // prefixMatch starts with the container name: only the staging container.
              prefixMatch: ['${stagingContainerName}/']
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: 1
                }
              }
            }
          }
        }
      ]
    }
  }
}

output stagingContainerName string = stagingContainerName
