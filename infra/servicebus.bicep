// Service Bus namespace, topics, subscriptions and subject filters.
//
// The topology is not written here: it comes from shared/bus/topology.py through
// servicebus.topology.json (`python -m shared.bus.topology > infra/servicebus.topology.json`;
// tests/unit/test_topology.py fails when the two differ), so the local Postgres
// transport and Azure route the same subjects to the same subscriptions.

@description('Namespace name, globally unique (6-50 chars).')
param namespaceName string

param location string = resourceGroup().location
param tags object = {}

@description('Topics as rendered by shared.bus.topology.as_json(): [{name, duplicateDetectionMinutes, subscriptions: [{name, subjects, sqlFilter, maxDeliveryCount, lockDurationSeconds}]}].')
param topology array

@description('Principal (the Function App\'s managed identity) that publishes and consumes; empty: no role assignments.')
param principalId string = ''

@description('Log Analytics workspace for the namespace\'s logs and metrics; empty: none.')
param workspaceId string = ''

@description('Standard (credit-throttled, shared) or Premium (dedicated messaging units); docs/scale.md.')
@allowed([ 'Standard', 'Premium' ])
param sku string = 'Standard'

@description('Premium messaging units; ignored on Standard.')
@allowed([ 1, 2, 4, 8, 16 ])
param messagingUnits int = 1

@description('Messages not consumed within this ISO 8601 duration expire into the dead-letter queue.')
param messageTimeToLive string = 'P14D'

// Built-in role definition ids.
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: namespaceName
  location: location
  tags: tags
  // Standard is the cheapest tier with topics; duplicate detection works on it too. A bulk migration
  // outgrows its ~1,000 operations/s (docs/scale.md): Premium for that week.
  sku: {
    name: sku
    tier: sku
    capacity: sku == 'Premium' ? messagingUnits : null
  }
  properties: {
    minimumTlsVersion: '1.2'
    // Managed identity only: no SAS keys to leak or rotate.
    disableLocalAuth: true
  }
}

resource topics 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' = [for t in topology: {
  parent: namespace
  name: t.name
  properties: {
    // message_id is the outbox row id: a relay retry after a lost ack is dropped here.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT${t.duplicateDetectionMinutes}M'
    defaultMessageTimeToLive: messageTimeToLive
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
  }
}]

// Subscriptions and their `$Default` rule, one module per topic: a subscription's parent must be a single
// topic, and Bicep loops cannot nest. (Kept free of lambdas so checkov's Bicep parser reads every file.)
module topicSubscriptions 'servicebus-subscriptions.bicep' = [for (t, i) in topology: {
  name: 'sb-subscriptions-${t.name}'
  params: {
    namespaceName: namespace.name
    topicName: topics[i].name
    subscriptions: t.subscriptions
    messageTimeToLive: messageTimeToLive
  }
}]

resource senderRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(namespace.id, principalId, serviceBusDataSender)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiverRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(namespace.id, principalId, serviceBusDataReceiver)
  scope: namespace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(workspaceId)) {
  name: 'to-log-analytics'
  scope: namespace
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output name string = namespace.name
@description('The value for ServiceBusConnection__fullyQualifiedNamespace.')
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
