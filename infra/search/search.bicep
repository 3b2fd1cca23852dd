// Azure AI Search service for SEARCH_BACKEND=azure (shared/search/azure_ai_search.py).
//
// Only the service and its role assignments live here: indexes and the alias are data-plane
// objects. The app creates them from infra/search/images-index.json on first use
// (AzureAISearchIndex.ensure_ready) and the search_sync reindex command rebuilds a new
// index aside and swaps the alias to it (AzureAISearchIndex.rebuild), so schema changes ship
// with the code that needs them.
//
// main.bicep deploys it as module `search` and sets SEARCH_BACKEND=azure and AZURE_SEARCH_ENDPOINT
// (no AZURE_SEARCH_API_KEY: the Function App's managed identity is used).

@description('Search service name, globally unique (2-60 chars, lowercase letters, digits, dashes).')
param serviceName string

param location string = resourceGroup().location
param tags object = {}

@description('Pricing tier. basic is enough for a demo; standard (S1) holds 5M images with 384-d vectors in one partition.')
@allowed(['basic', 'standard', 'standard2', 'standard3'])
param sku string = 'standard'

@description('Replicas serve queries in parallel: 2 for the read SLA, 3 for read-write; add more for 10K searches/min peaks.')
@minValue(1)
@maxValue(12)
param replicaCount int = 3

@description('Partitions hold the index (storage and vector quota).')
@allowed([1, 2, 3, 4, 6, 12])
param partitionCount int = 1

@description('Semantic ranker plan; the adapter uses it only when constructed with semantic_ranker=True.')
@allowed(['disabled', 'free', 'standard'])
param semanticSearch string = 'free'

@description('Principal (the Function App\'s managed identity) that writes documents and manages indexes and aliases; empty: no role assignments.')
param principalId string = ''

@description('Disable API keys so that only Entra ID (managed identity) can call the service.')
param disableLocalAuth bool = true

// Built-in role definition ids.
var searchIndexDataContributor = '8ebe5a00-799e-43f5-93ac-243d3dce84a7' // documents: upload, delete, query
var searchServiceContributor = '7ca78c08-252a-4471-8644-bb5ff32d4ba0' // indexes and aliases: create, swap, drop

@description('Log Analytics workspace for the service\'s logs and metrics; empty: none.')
param workspaceId string = ''

resource search 'Microsoft.Search/searchServices@2023-11-01' = {
  name: serviceName
  location: location
  tags: tags
  sku: { name: sku }
  properties: {
    replicaCount: replicaCount
    partitionCount: partitionCount
    hostingMode: 'default'
    publicNetworkAccess: 'enabled'
    semanticSearch: semanticSearch
    disableLocalAuth: disableLocalAuth
    // With keys enabled, a request without a valid key gets 401 with a bearer challenge,
    // so clients using Entra ID tokens are told what to do.
    authOptions: disableLocalAuth ? null : { aadOrApiKey: { aadAuthFailureMode: 'http401WithBearerChallenge' } }
  }
}

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(search.id, principalId, searchIndexDataContributor)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', searchIndexDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(search.id, principalId, searchServiceContributor)
  scope: search
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', searchServiceContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(workspaceId)) {
  name: 'to-log-analytics'
  scope: search
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output endpoint string = 'https://${search.name}.search.windows.net'
output name string = search.name
