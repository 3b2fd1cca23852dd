// Key Vault: the Stripe secrets (read by the app as Key Vault references, so rotating a secret is a new
// version and a restart, never an app-settings edit) and the key that wraps tax-id data keys (payouts).

@description('Vault name, globally unique (3-24 chars).')
param vaultName string

param location string = resourceGroup().location
param tags object = {}

@description('The app\'s managed identity: reads the secrets, wraps and unwraps with the key.')
param principalId string

@description('Log Analytics workspace receiving the vault\'s audit logs.')
param workspaceId string

@secure()
param stripeSecretKey string

@secure()
param stripeWebhookSecret string

@secure()
param stripeConnectWebhookSecret string

@description('Name of the RSA key that wraps the data keys of tax ids (PAYOUT_TIN_KEY_ID).')
param tinKeyName string = 'payout-tin-kek'

// Built-in role definition ids.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption without a VNet has no fixed outbound addresses, and Key Vault references are resolved from the app's workers; access is RBAC-only with the identity's two roles.
  // checkov:skip=CKV_AZURE_189: same reason: public network access is how the app reaches the vault without a VNet.
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

var secrets = [
  { name: 'stripe-secret-key', value: stripeSecretKey }
  { name: 'stripe-webhook-secret', value: stripeWebhookSecret }
  { name: 'stripe-connect-webhook-secret', value: stripeConnectWebhookSecret }
]

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for s in secrets: {
  // checkov:skip=CKV_AZURE_41: Stripe keys do not expire by date; they are rotated on demand (docs/operations.md), and an expiry would silently stop payments.
  parent: vault
  name: s.name
  properties: {
    value: s.value
    contentType: 'text/plain'
  }
}]

resource tinKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  // checkov:skip=CKV_AZURE_40: wrapped data keys name their key version, so old versions must keep unwrapping; rotation adds a version (rotationPolicy) instead of expiring the key.
  parent: vault
  name: tinKeyName
  properties: {
    kty: 'RSA-HSM'
    keySize: 3072
    keyOps: [ 'wrapKey', 'unwrapKey' ]
    rotationPolicy: {
      attributes: { expiryTime: 'P2Y' }
      lifetimeActions: [
        {
          trigger: { timeAfterCreate: 'P1Y' }
          action: { type: 'rotate' }
        }
      ]
    }
  }
}

resource secretsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource cryptoRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultCryptoUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output vaultUri string = vault.properties.vaultUri
output vaultName string = vault.name
// Unversioned secret URIs: a Key Vault reference then follows the latest version (rotation = new version).
output stripeSecretKeyUri string = secret[0].properties.secretUri
output stripeWebhookSecretUri string = secret[1].properties.secretUri
output stripeConnectWebhookSecretUri string = secret[2].properties.secretUri
// Versioned: the envelope cipher records which key version wrapped each data key.
output tinKeyId string = tinKey.properties.keyUriWithVersion
