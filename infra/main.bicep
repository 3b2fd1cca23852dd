// The marketplace in one resource group: Function App (Flex Consumption, Python 3.11),
// storage with the image containers and an Event Grid-fed blob trigger, PostgreSQL
// Flexible Server with pgvector, Service Bus (servicebus.bicep) and Application Insights.
// Every data-plane connection uses the app's user-assigned managed identity.
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

@description('PostgreSQL administrator login.')
param postgresAdminLogin string = 'marketadmin'

@secure()
@description('PostgreSQL administrator password (URL-safe characters: it is embedded in DATABASE_URL).')
param postgresAdminPassword string

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

@description('Create the Event Grid subscription that feeds the blob trigger (second deployment, see above).')
param subscribeBlobTrigger bool = false

@description('Name of the blob-triggered function on the `incoming` container (functions/ingestion).')
param blobTriggerFunctionName string = 'ingest_incoming_blob'

@description('Client id of the portals\' SPA app registration (Entra); they sign in with code + PKCE.')
param portalClientId string = ''

@description('Scopes the portals ask for: OpenID ones plus the API\'s (e.g. api://stock-marketplace/access).')
param portalScope string = 'openid profile offline_access'

@description('Region of the portals\' Static Web App (offered in fewer regions than the rest).')
param portalsLocation string = 'westeurope'

var suffix = toLower(uniqueString(resourceGroup().id, environmentName))
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
  name: 'st${suffix}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
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
      corsRules: empty(portalOrigins) ? [] : [
        {
          allowedOrigins: portalOrigins
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
  }
}

// --- PostgreSQL ----------------------------------------------------------------------

resource postgres 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: 'psql-${suffix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard_D2ds_v5'
    tier: 'GeneralPurpose'
  }
  properties: {
    version: '16'
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    storage: { storageSizeGB: 128 }
    backup: {
      backupRetentionDays: 7
      geoRedundantBackup: 'Disabled'
    }
    highAvailability: { mode: 'Disabled' }
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
  name: 'func-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
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
        maximumInstanceCount: 100
        instanceMemoryMB: 2048 // image decoding and ONNX inference need more than the 512 MB size
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
    DATABASE_URL: 'postgresql://${postgresAdminLogin}:${postgresAdminPassword}@${postgres.properties.fullyQualifiedDomainName}:5432/${databaseName}?sslmode=require'
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    AUTH_ISSUER: authIssuer
    AUTH_JWKS_URL: authJwksUrl
    AUTH_AUDIENCE: authAudience
    STRIPE_SECRET_KEY: stripeSecretKey
    STRIPE_WEBHOOK_SECRET: stripeWebhookSecret
    // Search through the managed identity (no AZURE_SEARCH_API_KEY).
    SEARCH_BACKEND: 'azure'
    AZURE_SEARCH_ENDPOINT: search.outputs.endpoint
    // Resolved by the Functions host for %OUTBOX_RELAY_SCHEDULE% in the relay's timer trigger. Only the
    // safety net: warm workers relay on commit (shared/runtime.py), so a slow tick costs nothing.
    OUTBOX_RELAY_SCHEDULE: '*/30 * * * * *'
    // Azure Functions' front end appends the client address to X-Forwarded-For (2 with Front Door).
    TRUSTED_PROXY_HOPS: '1'
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

// The portals' static export on Static Web Apps (Front Door edge), with this Function App as /api.
module portals 'portals.bicep' = if (!empty(portalClientId)) {
  name: 'portals'
  params: {
    name: 'swa-${suffix}'
    location: portalsLocation
    tags: tags
    functionAppId: functionApp.id
    functionAppLocation: location
    oidcAuthority: authIssuer // Entra's v2.0 issuer is its OIDC authority
    oidcClientId: portalClientId
    oidcScope: portalScope
  }
}

output functionAppName string = functionApp.name
output functionAppUrl string = 'https://${functionApp.properties.defaultHostName}'
output storageAccountName string = storage.name
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output postgresHost string = postgres.properties.fullyQualifiedDomainName
output managedIdentityClientId string = identity.properties.clientId
output portalsOrigin string = empty(portalClientId) ? '' : portals.outputs.origin
// Written as portal-config.json beside the uploaded export (portals/README.md).
output portalConfig object = empty(portalClientId) ? {} : portals.outputs.portalConfig
