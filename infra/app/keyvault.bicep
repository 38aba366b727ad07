// Key Vault (RBAC mode) for the app's secrets. The app reads them through Key Vault references
// in its app settings (see api.bicep), so no secret value ever appears in a template, a
// deployment history or azd's .env. Bicep creates the vault, not the values:
// - peppers and keys (generateBytes > 0) are generated once by scripts/postprovision.{sh,ps1}
//   from the OS CSPRNG and never overwritten: re-generating a pepper or master key on a later
//   `azd provision` would silently invalidate every stored hash and wrapped key;
// - third-party secrets (generateBytes = 0: SMTP password, Google credentials) are supplied by
//   the operator (`azd env set <SETTING> ...` before provisioning, or `az keyvault secret set`).
param name string
param location string = resourceGroup().location
param tags object = {}
param purgeProtection bool = false

// [{ setting, secretName, generateBytes }], compared with shared_code.config by the infra test.
var secrets = loadJsonContent('./key-vault-secrets.json')
// The vault URI from its name (known before deployment), so the lambda below needs no runtime
// property: https://<name>.vault.azure.net/ in the public cloud.
var vaultUri = 'https://${name}${environment().suffixes.keyvaultDns}/'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Azure RBAC instead of access policies: least-privilege roles per principal (the app gets
    // Key Vault Secrets User, read-only), managed and audited like every other assignment.
    enableRbacAuthorization: true
    // A deleted secret or vault stays recoverable for 90 days.
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // When true, nobody can purge before the retention ends (ARM accepts only true or null).
    enablePurgeProtection: purgeProtection ? true : null
    // No VNet in this template; access is by Entra ID + RBAC only. AzureServices lets the
    // Functions platform resolve Key Vault references.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// App settings that are Key Vault references, e.g.
// { DEVICE_TOKEN_PEPPER: '@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/device-token-pepper)' }.
// Versionless URIs: a new secret version reaches the app within 24 h (or at restart).
output referenceSettings object = toObject(secrets, s => s.setting, s => '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${s.secretName})')
// "secret-name:bytes secret-name:bytes" for the postprovision hook (random values, if absent).
output generatedSecrets string = join(map(filter(secrets, s => s.generateBytes > 0), s => '${s.secretName}:${s.generateBytes}'), ' ')
// "SETTING:secret-name ..." the operator supplies (hook copies them from the azd environment).
output suppliedSecrets string = join(map(filter(secrets, s => s.generateBytes == 0), s => '${s.setting}:${s.secretName}'), ' ')
