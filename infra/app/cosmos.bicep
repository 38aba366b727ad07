// Cosmos DB for NoSQL, serverless, Entra ID only: the account, the database, every container the
// code declares (infra/app/cosmos-containers.json, compared with shared_code.cosmos.CONTAINERS by
// tests/unit/test_infra.py) and data-plane role assignments scoped to the database. The app never
// creates any of these. Data-plane and control-plane requests are logged to Log Analytics.
param name string
param location string = resourceGroup().location
param tags object = {}
param databaseName string
@description('Principal id of the function app\'s managed identity.')
param appPrincipalId string
@description('Principal id of a developer who gets item read/write for local runs against the cloud; empty = none (production).')
param userPrincipalId string = ''
@description('Zone-redundant account (replicas in three availability zones). Fixed at account creation.')
param zoneRedundant bool = false
@description('True: no public endpoint; the app reaches the account through a private endpoint (network.bicep).')
param vnetEnabled bool = false
@description('Log Analytics workspace that receives the request logs.')
param logAnalyticsWorkspaceId string

// [{ name, partitionKey, defaultTtl? }]; defaultTtl -1 = TTL on, per item (`ttl` field).
// any(): defaultTtl exists on some entries only, which the inferred JSON type cannot express.
var containers = loadJsonContent('./cosmos-containers.json')
// Built-in "Cosmos DB Built-in Data Contributor": read/write items, no control-plane rights.
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'
// Role assignments cover this database only (not every database the account may ever hold).
var databaseScope = '${account.id}/dbs/${databaseName}'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  // checkov:skip=CKV_AZURE_101: the public endpoint exists only while vnetEnabled is false, and then accepts Entra ID tokens with a data role only (disableLocalAuth); vnetEnabled=true disables it.
  // checkov:skip=CKV_AZURE_99: no IP filter: the Flex Consumption app has no fixed outbound addresses; network restriction is the vnetEnabled private endpoint.
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
        isZoneRedundant: zoneRedundant
      }
    ]
    // Account keys are refused on the data plane: only Entra ID tokens with a Cosmos data role
    // (below) can read or write items, so there is no master key to leak or rotate.
    disableLocalAuth: true
    // Databases and containers can be changed only through ARM (this template), never with keys
    // or data-plane calls: the app cannot create or alter its own schema.
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    // vnetEnabled=false: public endpoint, identity-only (see disableLocalAuth). vnetEnabled=true:
    // private endpoint only, and no trusted-service bypass.
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAclBypass: 'None'
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
  name: guid(databaseScope, appPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: appPrincipalId
    scope: databaseScope
  }
}

// Only with grantDeveloperDataAccess (main.bicep passes an empty userPrincipalId otherwise).
resource userDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = if (!empty(userPrincipalId)) {
  parent: account
  name: guid(databaseScope, userPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: userPrincipalId
    scope: databaseScope
  }
}

// Audit trail: every data-plane request with the caller's Entra principal, and every control-plane
// change, in resource-specific tables (CDBDataPlaneRequests, CDBControlPlaneRequests).
resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'DataPlaneRequests'
        enabled: true
      }
      {
        category: 'ControlPlaneRequests'
        enabled: true
      }
    ]
  }
}

output name string = account.name
output resourceId string = account.id
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
