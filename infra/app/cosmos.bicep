// Cosmos DB for NoSQL, serverless, Entra ID only: the account, the database, every container the
// code declares (infra/app/cosmos-containers.json, compared with shared_code.cosmos.CONTAINERS by
// tests/unit/test_infra.py) and data-plane role assignments. The app never creates any of these.
param name string
param location string = resourceGroup().location
param tags object = {}
param databaseName string
@description('Principal id of the function app\'s managed identity.')
param appPrincipalId string
@description('Principal id of the developer (local runs against the cloud); empty = none.')
param userPrincipalId string = ''

// [{ name, partitionKey, defaultTtl? }]; defaultTtl -1 = TTL on, per item (`ttl` field).
// any(): defaultTtl exists on some entries only, which the inferred JSON type cannot express.
var containers = loadJsonContent('./cosmos-containers.json')
// Built-in "Cosmos DB Built-in Data Contributor": read/write items, no control-plane rights.
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    // Serverless: billed per request unit and GB stored, nothing for idle time.
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    // Strong (single region): a read on any Function instance sees every committed write, so a
    // logout, a revoked grant or a revoked token is refused at once everywhere. Session
    // consistency would let another instance read a just-deleted session or grant for a moment.
    // The price is about twice the RUs per read, which serverless bills only when used.
    consistencyPolicy: {
      defaultConsistencyLevel: 'Strong'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    // Account keys are refused on the data plane: only Entra ID tokens with a Cosmos data role
    // (below) can read or write items, so there is no master key to leak or rotate.
    disableLocalAuth: true
    // Databases and containers can be changed only through ARM (this template), never with keys
    // or data-plane calls: the app cannot create or alter its own schema.
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    // No VNet in this template: public endpoint, identity-only (see disableLocalAuth).
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [for container in containers: {
  parent: database
  name: container.name
  properties: {
    resource: union({
      id: container.name
      partitionKey: {
        paths: [container.partitionKey]
        kind: 'Hash'
        version: 2
      }
    }, contains(container, 'defaultTtl') ? { defaultTtl: any(container).defaultTtl } : {})
  }
}]

// Cosmos data-plane RBAC is its own system (sqlRoleAssignments, not Microsoft.Authorization).
resource appDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: account
  name: guid(account.id, appPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: appPrincipalId
    scope: account.id
  }
}

resource userDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = if (!empty(userPrincipalId)) {
  parent: account
  name: guid(account.id, userPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: userPrincipalId
    scope: account.id
  }
}

output name string = account.name
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
