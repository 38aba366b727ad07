// Event Grid system topic for the storage account's blob events. Flex Consumption has no
// polling blob trigger: the upload trigger (source=EventGrid) is fed by an event subscription
// to its blobs_extension webhook, which scripts/postdeploy.{sh,ps1} create once the code (and
// so the webhook key) exists.
param name string
param location string = resourceGroup().location
param tags object = {}
param storageAccountName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
