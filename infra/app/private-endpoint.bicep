// One private endpoint (vnetEnabled=true) with its private DNS zone, linked to the VNet, so the
// service's usual host name (e.g. <account>.blob.core.windows.net) resolves to the endpoint's
// private address inside the VNet. main.bicep instantiates it for blob, queue, Cosmos DB (Sql)
// and Key Vault (vault).
param name string
param location string = resourceGroup().location
param tags object = {}
@description('Resource id of the Storage account, Cosmos DB account or Key Vault.')
param privateLinkServiceId string
@description('Sub-resource: blob, queue, Sql or vault.')
param groupId string
@description('Private DNS zone of that sub-resource, e.g. privatelink.blob.core.windows.net.')
param privateDnsZoneName string
param vnetId string
param subnetId string

resource privateDnsZone 'Microsoft.Network/privateDnsZones@2020-06-01' = {
  name: privateDnsZoneName
  location: 'global'
  tags: tags
}

resource privateDnsZoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = {
  parent: privateDnsZone
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnetId
    }
  }
}

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: privateLinkServiceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource privateDnsZoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = {
  parent: privateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZone.id
        }
      }
    ]
  }
}

output name string = privateEndpoint.name
