// The marketplace in one resource group: Function App (Flex Consumption, Python 3.11),
// storage with the image containers and an Event Grid-fed blob trigger, PostgreSQL
// Flexible Server with pgvector (Entra sign-in only), Service Bus (servicebus.bicep), Key Vault
// (keyvault.bicep: the Stripe secrets as Key Vault references, the tax-id key), the portals on
// Static Web Apps, Front Door with WAF in front of portals, API and public renditions
// (frontdoor.bicep), and diagnostic settings into one Log Analytics workspace.
// Every data-plane connection uses the app's user-assigned managed identity; no password or
// secret value sits in app settings. `azd up` (azure.yaml) provisions and deploys it all.
//
// Deploy twice: the Event Grid subscription needs the blob extension's system key,
// which exists only once the app's code (with its blob trigger) has started. So the
// first run leaves subscribeBlobTrigger=false; after publishing the code, run again
// with true (azd: a postdeploy hook), as in Azure-Samples/functions-quickstart-python-azd-eventgrid-blob.

@minLength(1)
@maxLength(20)
@description('Environment name; seeds the unique suffix of every resource name.')
param environmentName string

param location string = resourceGroup().location

@description('Origins the portals are served from (Front Door endpoint, custom domain): they may PUT uploads to SAS URLs.')
param portalOrigins array = []

@description('Region of the portals\' Static Web App (offered in fewer regions than the rest).')
@allowed([ 'westus2', 'centralus', 'eastus2', 'westeurope', 'eastasia' ])
param portalsLocation string = 'westeurope'

@description('OpenID issuer of bearer tokens (Entra External ID: https://<tenant>.ciamlogin.com/<tenant-id>/v2.0).')
param authIssuer string

@description('JWKS endpoint of that issuer (…/discovery/v2.0/keys).')
param authJwksUrl string

@description('Audience (application ID URI) the API accepts in tokens.')
param authAudience string

@secure()
@description('Stripe secret key (sk_live_… or sk_test_…); the app refuses to start with the local stand-in key.')
param stripeSecretKey string

@secure()
@description('Signing secret of the Stripe webhook endpoint (whsec_…); without it anyone could forge payments.')
param stripeWebhookSecret string

@secure()
@description('Signing secret of the Stripe Connect webhook endpoint (whsec_…) for connected accounts\' events at /api/webhooks/stripe-connect.')
param stripeConnectWebhookSecret string

@description('Create the Event Grid subscription that feeds the blob trigger (second deployment, see above).')
param subscribeBlobTrigger bool = false

@description('Name of the blob-triggered function on the `incoming` container (functions/ingestion).')
param blobTriggerFunctionName string = 'ingest_incoming_blob'

@description('Client id of the portals\' SPA app registration (Entra); they sign in with code + PKCE.')
param portalClientId string = ''

@description('Scopes the portals ask for: OpenID ones plus the API\'s (e.g. api://stock-marketplace/access).')
param portalScope string = 'openid profile offline_access'

// --- scale (docs/scale.md derives these from bench/pipeline.py) -----------------------------------

@description('Most Flex Consumption instances of the app. Each holds up to DATABASE_POOL_MAX + 1 Postgres connections, so keep instances x (pool + 1) under the server\'s user connections (844 on D2ds_v5).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Connections in each worker\'s pool (DATABASE_POOL_MAX). Handlers hold one only for a few statements, so 4 serve a processing instance\'s 16 concurrent messages.')
@minValue(1)
@maxValue(50)
param databasePoolMax int = 4

@description('Service Bus tier: Standard (credit-throttled, ~1,000 operations/s per namespace) or Premium (dedicated messaging units) for a bulk migration.')
@allowed([ 'Standard', 'Premium' ])
param serviceBusSku string = 'Standard'

@description('Premium messaging units (1, 2, 4, 8 or 16); ignored on Standard.')
@allowed([ 1, 2, 4, 8, 16 ])
param serviceBusMessagingUnits int = 1

var suffix = toLower(uniqueString(resourceGroup().id, environmentName))
// The Function App's and the Static Web App's names, known before either exists (Front Door needs both).
var functionAppName = 'func-${suffix}'
var tags = { 'azd-env-name': environmentName }
var databaseName = 'marketplace'
var deploymentContainer = 'app-package'
var imageContainers = [
  { name: 'incoming', public: false }
  { name: 'originals', public: false }
  { name: 'thumbnails', public: true }
  { name: 'watermarked', public: true }
  { name: 'quarantine', public: false }
]

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${suffix}'
  location: location
  tags: tags
}

// --- monitoring ----------------------------------------------------------------------

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    // Ingestion only with Entra auth (the identity holds Monitoring Metrics Publisher).
    DisableLocalAuth: true
  }
}

// --- storage -------------------------------------------------------------------------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the public rendition containers are Front Door's origin and upload SAS URLs are PUT from browsers; without Private Link origins the account must accept the internet (no account keys; RBAC and short SAS only).
  // checkov:skip=CKV_AZURE_43: the name is 'st' + uniqueString(): 15 lower-case letters and digits, which checkov cannot evaluate.
  // checkov:skip=CKV_AZURE_59: same as CKV_AZURE_35: public network access is needed for browser uploads and Front Door.
  name: 'st${suffix}'
  location: location
  tags: tags
  kind: 'StorageV2'
  // Zone- and geo-redundant: originals exist nowhere else.
  sku: { name: 'Standard_GZRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // No account keys: the app signs download SAS with user delegation keys.
    allowSharedKeyAccess: false
    // Needed for the public-read rendition containers; each container still opts in.
    allowBlobPublicAccess: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    // The contributor studio PUTs uploads straight to their write-only SAS URL from the portals' origin.
    cors: {
      corsRules: [
        {
          allowedOrigins: union(portalOrigins, [ 'https://${frontDoor.outputs.hostName}' ])
          allowedMethods: [ 'PUT', 'GET', 'HEAD' ]
          allowedHeaders: [ 'x-ms-blob-type', 'x-ms-version', 'x-ms-date', 'x-ms-client-request-id', 'content-type' ]
          exposedHeaders: [ 'etag', 'x-ms-request-id' ]
          maxAgeInSeconds: 3600
        }
      ]
    }
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for c in imageContainers: {
  parent: blobService
  name: c.name
  properties: {
    publicAccess: c.public ? 'Blob' : 'None'
  }
}]

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
}

// `incoming` keeps uploads briefly (ingestion moves them on); originals cool down after 30 days.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'incoming-expire'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: [ 'blockBlob' ], prefixMatch: [ 'incoming/' ] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: 7 } } }
          }
        }
        {
          name: 'originals-cool'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: [ 'blockBlob' ], prefixMatch: [ 'originals/' ] }
            actions: { baseBlob: { tierToCool: { daysAfterModificationGreaterThan: 30 } } }
          }
        }
      ]
    }
  }
}

// Owner (not just Contributor): the Functions host needs it for AzureWebJobsStorage.
// Delegator: user delegation keys for download SAS. Queue Data Contributor: the
// blob trigger's poison-blob queue.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in [
  roles.storageBlobDataOwner
  roles.storageBlobDelegator
  roles.storageQueueDataContributor
]: {
  name: guid(storage.id, identity.id, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource metricsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// --- Service Bus ---------------------------------------------------------------------

module serviceBus 'servicebus.bicep' = {
  name: 'servicebus'
  params: {
    namespaceName: 'sb-${suffix}'
    location: location
    tags: tags
    topology: loadJsonContent('servicebus.topology.json')
    principalId: identity.properties.principalId
    workspaceId: logs.id
    sku: serviceBusSku
    messagingUnits: serviceBusMessagingUnits
  }
}

// --- Azure AI Search (SEARCH_BACKEND=azure; the app creates the index and alias itself) ----------

module search 'search/search.bicep' = {
  name: 'search'
  params: {
    serviceName: 'srch-${suffix}'
    location: location
    tags: tags
    principalId: identity.properties.principalId
    workspaceId: logs.id
  }
}

// --- PostgreSQL ----------------------------------------------------------------------

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  // checkov:skip=CKV_AZURE_136: geo-redundant backup is a region-pair choice with a cost; zone-local backups plus 14 days of point-in-time restore are the chosen recovery (docs/operations.md).
  name: 'psql-${suffix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard_D2ds_v5'
    tier: 'GeneralPurpose'
  }
  properties: {
    version: '16'
    // Entra ID only: the app's identity is the server's Entra administrator and signs in with a token
    // (DATABASE_AUTH=entra); there is no password to leak or rotate.
    authConfig: {
      activeDirectoryAuth: 'Enabled'
      passwordAuth: 'Disabled'
      tenantId: subscription().tenantId
    }
    storage: { storageSizeGB: 128 }
    backup: {
      // Point-in-time restore reaches back this far (docs/operations.md).
      backupRetentionDays: 14
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: { mode: 'Disabled' }
  }
}

resource postgresAdmin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: postgres
  name: identity.properties.principalId
  properties: {
    principalType: 'ServicePrincipal'
    principalName: identity.name
    tenantId: subscription().tenantId
  }
  dependsOn: [ allowAzure ]
}

resource postgresDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: postgres
  properties: {
    workspaceId: logs.id
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

// pgvector must be allow-listed before `CREATE EXTENSION vector` (infra/sql) can run.
resource vectorExtension 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: postgres
  name: 'azure.extensions'
  properties: {
    value: 'VECTOR'
    source: 'user-override'
  }
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: postgres
  name: databaseName
  properties: {
    charset: 'UTF8'
    collation: 'en_US.utf8'
  }
  // The server accepts one change at a time; queue behind the configuration change.
  dependsOn: [ vectorExtension ]
}

// 0.0.0.0-0.0.0.0 is Azure's "allow Azure services" rule: Flex Consumption has no fixed
// outbound IPs without a VNet.
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  // checkov:skip=CKV_AZURE_28: not an open range: 0.0.0.0-0.0.0.0 admits Azure services only; Flex Consumption has no fixed outbound IPs without a VNet, and sign-in needs an Entra token of the app's identity.
  parent: postgres
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
  dependsOn: [ database ]
}

// --- Function App --------------------------------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is offered in some regions only; the plan scales out across instances on demand.
  // checkov:skip=CKV_AZURE_211: Flex Consumption (FC1) is the plan this app is built for: event-driven scale, no fixed SKU.
  name: 'plan-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the API is public through Front Door; access restrictions admit only Front Door (its X-Azure-FDID) and Event Grid (the blob trigger's webhook).
  // checkov:skip=CKV_AZURE_17: callers are browsers and Stripe: bearer tokens and signed webhooks authenticate them, not client certificates.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; there is no instance count to pin.
  // checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health check; Front Door probes /api/health and stops routing to a failing origin.
  // checkov:skip=CKV_AZURE_16: authentication is the app's own (Entra tokens checked at the edge, shared/http), not Easy Auth.
  // checkov:skip=CKV_AZURE_13: same as CKV_AZURE_16.
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (the Stripe secrets) resolve with the user-assigned identity.
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      ftpsState: 'Disabled'
      // CORS is the app's own allow-list (CORS_ALLOWED_ORIGINS); the platform's would answer first.
      cors: { allowedOrigins: [] }
      ipSecurityRestrictionsDefaultAction: 'Deny'
      ipSecurityRestrictions: [
        {
          name: 'front-door'
          priority: 100
          action: 'Allow'
          tag: 'ServiceTag'
          ipAddress: 'AzureFrontDoor.Backend'
          // Only our Front Door profile, not any customer's.
          headers: { 'x-azure-fdid': [ frontDoor.outputs.frontDoorId ] }
        }
        {
          name: 'event-grid'
          priority: 200
          action: 'Allow'
          tag: 'ServiceTag'
          ipAddress: 'AzureEventGrid'
        }
      ]
      scmIpSecurityRestrictionsUseMain: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        // One core per instance; a worker peaks at ~0.9 GiB (bench/pipeline.py), over the 512 MB size.
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
  dependsOn: [ storageRoles ]
}

// Flex Consumption sets the runtime in functionAppConfig: no FUNCTIONS_WORKER_RUNTIME here.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // This resource is the app-settings dictionary; checkov reads it as a site configuration and asks it for
  // properties that live elsewhere or do not apply to Functions on Flex Consumption:
  // checkov:skip=CKV_AZURE_13: authentication is the app's own (shared/http), not Easy Auth.
  // checkov:skip=CKV_AZURE_63: HTTP logs of a Function App go to Log Analytics as FunctionAppLogs (diagnostic setting below).
  // checkov:skip=CKV_AZURE_65: detailed error pages are an App Service (IIS) feature; errors are problem+json with a correlation id.
  // checkov:skip=CKV_AZURE_66: failed request tracing is an App Service (IIS) feature; requests are traced in Application Insights.
  // checkov:skip=CKV_AZURE_80: .NET Framework version does not apply to a Python app.
  // checkov:skip=CKV_AZURE_88: Azure Files mounts do not apply: the app keeps no files; blobs and Postgres hold state.
  // checkov:skip=CKV_AZURE_222: see the Function App: public only through Front Door and Event Grid.
  parent: functionApp
  name: 'appsettings'
  properties: {
    APP_ENV: 'azure'
    // DefaultAzureCredential (shared.bus, shared.storage) picks the user-assigned identity by this.
    AZURE_CLIENT_ID: identity.properties.clientId
    AzureWebJobsStorage__accountName: storage.name
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    STORAGE_ACCOUNT_URL: storage.properties.primaryEndpoints.blob
    BUS_TRANSPORT: 'servicebus'
    ServiceBusConnection__fullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: identity.properties.clientId
    // The identity signs in by name with an Entra token per connection (shared/db/entra.py): no password.
    DATABASE_URL: 'postgresql://${identity.name}@${postgres.properties.fullyQualifiedDomainName}:5432/${databaseName}?sslmode=require'
    DATABASE_AUTH: 'entra'
    DATABASE_POOL_MAX: string(databasePoolMax)
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    AUTH_ISSUER: authIssuer
    AUTH_JWKS_URL: authJwksUrl
    AUTH_AUDIENCE: authAudience
    // Key Vault references: the host resolves them with keyVaultReferenceIdentity; rotation = new version.
    STRIPE_SECRET_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.stripeSecretKeyUri})'
    STRIPE_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.stripeWebhookSecretUri})'
    STRIPE_CONNECT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.stripeConnectWebhookSecretUri})'
    // The key that wraps tax-id data keys; used through the identity (Key Vault Crypto User).
    PAYOUT_TIN_KEY_ID: keyVault.outputs.tinKeyId
    // Buyers, Stripe's return URLs and public renditions all go through Front Door.
    PUBLIC_BASE_URL: 'https://${frontDoor.outputs.hostName}'
    STORAGE_PUBLIC_BASE_URL: 'https://${frontDoor.outputs.hostName}'
    PAYOUT_ONBOARDING_RETURN_URL: 'https://${frontDoor.outputs.hostName}/api/contributor/payout-account'
    // Search through the managed identity (no AZURE_SEARCH_API_KEY).
    SEARCH_BACKEND: 'azure'
    AZURE_SEARCH_ENDPOINT: search.outputs.endpoint
    // Resolved by the Functions host for %OUTBOX_RELAY_SCHEDULE% in the relay's timer trigger. Only the
    // safety net: warm workers relay on commit (shared/runtime.py), so a slow tick costs nothing.
    OUTBOX_RELAY_SCHEDULE: '*/30 * * * * *'
    // Front Door and then Azure Functions' front end each append to X-Forwarded-For.
    TRUSTED_PROXY_HOPS: '2'
    // Two glibc malloc arenas per CPU (a 2,048 MB instance has about one): with glibc's default of eight
    // per core, the worker's threads kept freed memory in an arena each and passed 1 GiB at 200 images
    // (shared/memory.py, which applies the same cap under devhost; docs/scale.md).
    MALLOC_ARENA_MAX: '2'
  }
}

resource functionDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionApp
  properties: {
    workspaceId: logs.id
    logs: [ { category: 'FunctionAppLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logs.id
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'Transaction', enabled: true } ]
  }
}

// --- Key Vault, portals, Front Door ------------------------------------------------------

module keyVault 'keyvault.bicep' = {
  name: 'keyvault'
  params: {
    vaultName: 'kv-${suffix}'
    location: location
    tags: tags
    principalId: identity.properties.principalId
    workspaceId: logs.id
    stripeSecretKey: stripeSecretKey
    stripeWebhookSecret: stripeWebhookSecret
    stripeConnectWebhookSecret: stripeConnectWebhookSecret
  }
}

// The portals: Next.js static export (portals/web/out) on Static Web Apps (portals.bicep), deployed by azd;
// Front Door serves them at /. Deployed whether or not the sign-in client exists yet, so Front Door has its
// origin; the portals sign in once portalClientId is set.
module portals 'portals.bicep' = {
  name: 'portals'
  params: {
    name: 'swa-${suffix}'
    location: portalsLocation
    tags: union(tags, { 'azd-service-name': 'portals' })
    oidcAuthority: authIssuer // Entra's v2.0 issuer is its OIDC authority
    oidcClientId: portalClientId
    oidcScope: portalScope
  }
}

module frontDoor 'frontdoor.bicep' = {
  name: 'frontdoor'
  params: {
    profileName: 'afd-${suffix}'
    tags: tags
    apiHostName: '${functionAppName}.azurewebsites.net'
    portalsHostName: portals.outputs.hostName
    blobHostName: '${storage.name}.blob.${environment().suffixes.storage}'
    workspaceId: logs.id
  }
}

// --- Event Grid: BlobCreated on `incoming` -> blob trigger ------------------------------

resource storageEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-${suffix}'
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource eventDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storageEvents
  properties: {
    workspaceId: logs.id
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

// Behind the condition so ARM never asks for the key before the extension has created it.
var blobExtensionKey = subscribeBlobTrigger ? listKeys('${functionApp.id}/host/default', '2023-12-01').systemKeys.blobs_extension : ''

resource incomingBlobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (subscribeBlobTrigger) {
  parent: storageEvents
  name: 'incoming-blob-created'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        // The blob extension's webhook; Event Grid validates it on creation, hence the second deployment.
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${blobTriggerFunctionName}&code=${blobExtensionKey}'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: [ 'Microsoft.Storage.BlobCreated' ]
      subjectBeginsWith: '/blobServices/default/containers/incoming/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
  dependsOn: [ appSettings ]
}

output functionAppName string = functionApp.name
output publicUrl string = 'https://${frontDoor.outputs.hostName}'
// Read by the portals' packaging hook (shared/http/portal_config.py): CSP connect-src, and the header
// Static Web Apps requires so that only this Front Door reaches the pages.
output storageBlobEndpoint string = storage.properties.primaryEndpoints.blob
output frontDoorId string = frontDoor.outputs.frontDoorId
output keyVaultName string = keyVault.outputs.vaultName
output postgresServerName string = postgres.name
output resourceGroupName string = resourceGroup().name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output storageAccountName string = storage.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output postgresHost string = postgres.properties.fullyQualifiedDomainName
output managedIdentityClientId string = identity.properties.clientId
// Where people open the portals (and the redirect URI's origin of the SPA registration): Front Door.
output portalsOrigin string = 'https://${frontDoor.outputs.hostName}'
// Written as portal-config.json beside the uploaded export (portals/README.md).
output portalConfig object = portals.outputs.portalConfig
