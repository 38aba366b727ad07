// Azure RBAC role assignments, least privilege per scope. Cosmos DB data access is granted in
// cosmos.bicep (Cosmos's own sqlRoleAssignments, scoped to the database).
//
// The app's managed identity:
//   Storage Blob Data Contributor   each data container of blob-containers.json
//   Storage Blob Data Owner         the host's containers (azure-webjobs-hosts, -secrets), as
//                                   Microsoft documents for AzureWebJobsStorage
//   Storage Blob Data Contributor   the deployment package container: Flex Consumption publishes
//                                   and fetches the package with this identity
//   Storage Blob Delegator          the account: requests user delegation keys (read URLs, direct-upload URLs); a
//                                   SAS signed with one grants at most what the identity holds
//   Storage Queue Data Contributor  the account: the host's poison queue
//   Monitoring Metrics Publisher    Application Insights (Entra-only ingestion)
//   Key Vault Secrets User          the vault: resolves the Key Vault references
// No account-wide blob role: the app cannot read or write containers it does not use.
//
// The deployer (AZURE_PRINCIPAL_ID, filled by azd for whoever runs it):
//   "TrustGate Key Vault secret writer" (custom role below: set secrets, read secret names;
//   no secret values) so the postprovision hook can create the generated secrets. Nothing else.
// With grantDeveloperDataAccess (a dev environment only), also Key Vault Secrets Officer and
// Storage Blob Data Contributor on the data containers (+ Blob Delegator) for local runs.
param storageAccountName string
param appInsightsName string
param keyVaultName string
param managedIdentityPrincipalId string
@description('The principal running azd; empty = no deployer assignments.')
param deployerPrincipalId string = ''
@description('Also give the deployer read/write on the data (dev environments only).')
param grantDeveloperDataAccess bool = false
param deploymentStorageContainerName string
@description('The Functions host\'s own blob containers (storage.bicep).')
param hostContainerNames array

// Built-in role definition ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

var blobContainers = loadJsonContent('./blob-containers.json')
var hasDeployer = !empty(deployerPrincipalId)
var developerDataAccess = hasDeployer && grantDeveloperDataAccess

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storageAccount
  name: 'default'
}

resource dataContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for container in blobContainers: {
  parent: blobService
  name: container.name
}]

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for containerName in hostContainerNames: {
  parent: blobService
  name: containerName
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deploymentStorageContainerName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// principalType is set for the app's identity: it is brand new and may not have replicated yet,
// and ARM skips the principal lookup when the type is given. The deployer's type is left out:
// azd may run as a user or a service principal.

resource appDataContainerRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in blobContainers: {
  name: guid(dataContainers[i].id, managedIdentityPrincipalId, storageBlobDataContributor)
  scope: dataContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appHostContainerRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (containerName, i) in hostContainerNames: {
  name: guid(hostContainers[i].id, managedIdentityPrincipalId, storageBlobDataOwner)
  scope: hostContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource appDeploymentContainerRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, managedIdentityPrincipalId, storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appBlobDelegatorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, managedIdentityPrincipalId, storageBlobDelegator)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, managedIdentityPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTelemetryRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, managedIdentityPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecretsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, managedIdentityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: managedIdentityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Write-only access for the postprovision hook: create a secret or a new version, list secret
// names (to skip existing ones); never read a value, delete or purge. Built-in roles cannot do
// this: Key Vault Secrets Officer also reads every value (the peppers and the KMS master key).
// The definition is assignable in this resource group only; `azd down` leaves it in the tenant
// (delete it with `az role definition delete`).
resource secretWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (hasDeployer) {
  name: guid(resourceGroup().id, 'trustgate-key-vault-secret-writer')
  properties: {
    roleName: 'TrustGate Key Vault secret writer (${uniqueString(resourceGroup().id)})'
    description: 'Set Key Vault secrets and read their names, never their values (TrustGate postprovision hook).'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          'Microsoft.KeyVault/vaults/secrets/setSecret/action'
          'Microsoft.KeyVault/vaults/secrets/readMetadata/action'
        ]
        notDataActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

resource deployerSecretWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDeployer) {
  name: guid(vault.id, deployerPrincipalId, 'trustgate-key-vault-secret-writer')
  scope: vault
  properties: {
    roleDefinitionId: secretWriterRole.id
    principalId: deployerPrincipalId
  }
}

// Developer data access (grantDeveloperDataAccess): read/write every secret and the data
// containers. Never in production: whoever holds it can read the KMS master key, the wrapped
// keys and the ciphertexts, that is every stored file.
resource developerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerDataAccess) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
  }
}

resource developerDataContainerRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in blobContainers: if (developerDataAccess) {
  name: guid(dataContainers[i].id, deployerPrincipalId, storageBlobDataContributor)
  scope: dataContainers[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deployerPrincipalId
  }
}]

resource developerBlobDelegatorRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (developerDataAccess) {
  name: guid(storageAccount.id, deployerPrincipalId, storageBlobDelegator)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: deployerPrincipalId
  }
}
