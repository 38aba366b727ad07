// Key Vault (RBAC mode) for the app's secrets. The app reads them through Key Vault references
// in its app settings (see api.bicep), so no secret value appears in a template, a deployment
// history or azd's .env. Bicep creates the vault, not the values:
// - peppers and keys (generateBytes > 0) are generated once by scripts/postprovision.{sh,ps1}
//   from the OS CSPRNG and never overwritten: re-generating a pepper or master key on a later
//   `azd provision` would silently invalidate every stored hash and wrapped key;
// - third-party secrets (generateBytes = 0: SMTP password, Google credentials) are stored by the
//   operator with `az keyvault secret set --file` (README, "Deploy to Azure"); the hook only
//   reports which are missing.
// Every secret read or write is logged (AuditEvent) to Log Analytics.
param name string
param location string = resourceGroup().location
param tags object = {}
@description('Purge protection: nobody can purge a deleted secret or the vault before the retention ends. Irreversible once on.')
param purgeProtection bool = true
@description('Days a deleted secret or vault stays recoverable (7-90). Fixed once the vault exists.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90
@description('True: the vault has no public endpoint except for allowedIpAddresses; the app reaches it through a private endpoint (network.bicep).')
param vnetEnabled bool = false
@description('With vnetEnabled: public IPv4 addresses or CIDR ranges allowed through the vault firewall (the machine that runs azd, so the postprovision hook can write secrets). Empty: no public access at all.')
param allowedIpAddresses array = []
@description('Enabled unless vnetEnabled without allowedIpAddresses (main.bicep decides).')
@allowed(['Enabled', 'Disabled'])
param publicNetworkAccess string = 'Enabled'
@description('Log Analytics workspace that receives the vault audit log.')
param logAnalyticsWorkspaceId string

// [{ setting, secretName, generateBytes }], compared with shared_code.config by the infra test.
var secrets = loadJsonContent('./key-vault-secrets.json')
// The vault URI from its name (known before deployment): https://<name>.vault.azure.net/ in the
// public cloud.
var vaultUri = 'https://${name}${environment().suffixes.keyvaultDns}/'
var generatedSecretEntries = [for secret in filter(secrets, s => s.generateBytes > 0): '${secret.secretName}:${secret.generateBytes}']
var suppliedSecretEntries = [for secret in filter(secrets, s => s.generateBytes == 0): '${secret.setting}:${secret.secretName}']

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_110: purge protection is on by default (purgeProtection = true); the value is a conditional (ARM takes only true or null) that checkov does not evaluate.
  // checkov:skip=CKV_AZURE_42: soft delete is always on and purge protection is on by default (see CKV_AZURE_110).
  // checkov:skip=CKV_AZURE_109: the firewall denies by default only with vnetEnabled; otherwise the vault is public but answers Entra ID tokens with a Key Vault role only (RBAC mode, no access policies).
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC instead of access policies: least-privilege roles per principal (the app gets
    // Key Vault Secrets User, read-only), managed and audited like every other assignment.
    enableRbacAuthorization: true
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    // A deleted secret or vault stays recoverable for softDeleteRetentionInDays.
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // When true, nobody can purge before the retention ends (ARM accepts only true or null).
    enablePurgeProtection: purgeProtection ? true : null
    // vnetEnabled=false: public endpoint, Entra ID + RBAC only. vnetEnabled=true: Key Vault
    // references resolve through the app's VNet integration and the private endpoint; only
    // allowedIpAddresses (the operator running azd) may use the public one. No trusted-services
    // bypass: Key Vault references do not go through it (docs: give the app VNet access).
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
      bypass: 'None'
      ipRules: [for address in (vnetEnabled ? allowedIpAddresses : []): {
        value: trim(address)
      }]
    }
  }
}

// Audit trail of every secret read and write (AZKVAuditLogs / AzureDiagnostics).
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output resourceId string = vault.id
output uri string = vault.properties.vaultUri
// App settings that are Key Vault references, e.g.
// [{ name: 'DEVICE_TOKEN_PEPPER', value: '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/device-token-pepper)' }].
// Versionless URIs: a new secret version reaches the app at the next configuration change or
// reference refresh (the postprovision hook calls it), else within 24 h.
output referenceSettings array = [for secret in secrets: {
  name: secret.setting
  value: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${secret.secretName})'
}]
// "secret-name:bytes secret-name:bytes" for the postprovision hook (random values, if absent).
output generatedSecrets string = join(generatedSecretEntries, ' ')
// "SETTING:secret-name ..." the operator supplies (the hook reports the missing ones).
output suppliedSecrets string = join(suppliedSecretEntries, ' ')
