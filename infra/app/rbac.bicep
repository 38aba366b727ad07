// Consolidated Azure RBAC role assignments for the app's managed identity and, for local runs and
// the postprovision hook, the developer (principalId). Cosmos DB data access is granted in
// cosmos.bicep: it uses Cosmos's own sqlRoleAssignments.
param storageAccountName string
param appInsightsName string
param keyVaultName string
param managedIdentityPrincipalId string
@description('Developer principal; empty = no developer assignments.')
param userIdentityPrincipalId string = ''

// Built-in role definition ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
// Blob read/write/delete + user delegation keys (for user delegation SAS); Owner (not
// Contributor) because the Functions host also manages blob leases/ACLs for AzureWebJobsStorage.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Blob trigger receipts and poison queue, host coordination.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Host bookkeeping tables (timers, scale).
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Entra ID-authenticated telemetry ingestion (Application Insights has local auth disabled).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Read secret values only (Key Vault references); cannot list keys, write or delete.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Developer: create the generated secrets in the postprovision hook and read them for local runs.
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

var appRoles = [
  { scope: 'storage', role: storageBlobDataOwner }
  { scope: 'storage', role: storageQueueDataContributor }
  { scope: 'storage', role: storageTableDataContributor }
  { scope: 'insights', role: monitoringMetricsPublisher }
  { scope: 'vault', role: keyVaultSecretsUser }
]
var userRoles = [
  { scope: 'storage', role: storageBlobDataOwner }
  { scope: 'storage', role: storageQueueDataContributor }
  { scope: 'storage', role: storageTableDataContributor }
  { scope: 'insights', role: monitoringMetricsPublisher }
  { scope: 'vault', role: keyVaultSecretsOfficer }
]

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// Three resource types need three scoped loops (a role assignment's scope must be a symbol).
resource appStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in filter(appRoles, x => x.scope == 'storage'): {
  name: guid(storageAccount.id, managedIdentityPrincipalId, r.role)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: managedIdentityPrincipalId
    // Set explicitly: the identity is brand new and may not have replicated yet, and ARM skips
    // the principal lookup when the type is given.
    principalType: 'ServicePrincipal'
  }
}]

resource appInsightsRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in filter(appRoles, x => x.scope == 'insights'): {
  name: guid(applicationInsights.id, managedIdentityPrincipalId, r.role)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appVaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in filter(appRoles, x => x.scope == 'vault'): {
  name: guid(vault.id, managedIdentityPrincipalId, r.role)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Developer assignments: principalType left out, azd may run as a user or a service principal.
resource userStorageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in (empty(userIdentityPrincipalId) ? [] : filter(userRoles, x => x.scope == 'storage')): {
  name: guid(storageAccount.id, userIdentityPrincipalId, r.role)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: userIdentityPrincipalId
  }
}]

resource userInsightsRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in (empty(userIdentityPrincipalId) ? [] : filter(userRoles, x => x.scope == 'insights')): {
  name: guid(applicationInsights.id, userIdentityPrincipalId, r.role)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: userIdentityPrincipalId
  }
}]

resource userVaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for r in (empty(userIdentityPrincipalId) ? [] : filter(userRoles, x => x.scope == 'vault')): {
  name: guid(vault.id, userIdentityPrincipalId, r.role)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', r.role)
    principalId: userIdentityPrincipalId
  }
}]
