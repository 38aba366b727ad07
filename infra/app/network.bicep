// Network isolation (main.bicep vnetEnabled=true), after the Azure-Samples Flex Consumption
// templates: one VNet with a subnet delegated to Microsoft.App/environments for the function
// app's VNet integration (outbound) and a subnet for the private endpoints of Storage, Cosmos DB
// and Key Vault (private-endpoint.bicep). Inbound traffic to the app stays public: devices and
// the Event Grid webhook call it from the internet.
param name string
param location string = resourceGroup().location
param tags object = {}
@description('Address space of the VNet.')
param addressPrefix string = '10.0.0.0/16'
@description('Subnet of the private endpoints (inside addressPrefix).')
param privateEndpointSubnetPrefix string = '10.0.1.0/24'
@description('Subnet delegated to the function app\'s VNet integration (inside addressPrefix; Flex Consumption needs at least a /27).')
param appSubnetPrefix string = '10.0.2.0/24'

var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'

// The app subnet keeps the default rules (the app calls the private endpoints and, outbound, the
// internet: Google Play Integrity, the SMTP relay, Azure Monitor); add egress rules here to
// narrow that. The private endpoint subnet accepts HTTPS from inside the VNet only (the Python
// Cosmos SDK uses gateway mode, port 443); the rules apply to private endpoints because
// privateEndpointNetworkPolicies is Enabled.
resource appNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${name}-app-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource privateEndpointNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${name}-pe-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-https-from-vnet'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: 'VirtualNetwork'
          destinationPortRange: '443'
        }
      }
      {
        name: 'deny-all-other-inbound'
        properties: {
          priority: 4096
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [addressPrefix]
    }
    subnets: [
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled'
          privateLinkServiceNetworkPolicies: 'Enabled'
        }
      }
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appNsg.id
          }
          // Flex Consumption's VNet integration requires this delegation.
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

output name string = vnet.name
output resourceId string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
output privateEndpointSubnetId string = '${vnet.id}/subnets/${privateEndpointSubnetName}'
