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

@description('Topics as rendered by shared.bus.topology.as_json(): [{name, duplicateDetectionMinutes, subscriptions: [{name, subjects, maxDeliveryCount, lockDurationSeconds}]}].')
param topology array

@description('Principal (the Function App\'s managed identity) that publishes and consumes; empty: no role assignments.')
param principalId string = ''

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

// One flat list of subscriptions, each knowing its topic's index: Bicep loops
// cannot nest, and a subscription's parent must be an element of `topics`.
var subscriptionList = flatten(map(range(0, length(topology)), i => map(topology[i].subscriptions, s => {
  topicIndex: i
  name: s.name
  maxDeliveryCount: s.maxDeliveryCount
  lockDurationSeconds: s.lockDurationSeconds
  // The subject travels as the message's Label (AMQP `subject`). A dead letter replayed by an admin
  // (shared/bus/servicebus_dead_letters.py) carries replay_to and reaches only that subscription.
  sqlFilter: 'sys.Label IN (${join(map(s.subjects, subject => '\'${subject}\''), ', ')}) AND (replay_to IS NULL OR replay_to = \'${s.name}\')'
})))

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

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = [for s in subscriptionList: {
  parent: topics[s.topicIndex]
  name: s.name
  properties: {
    maxDeliveryCount: s.maxDeliveryCount
    lockDuration: 'PT${s.lockDurationSeconds}S'
    deadLetteringOnMessageExpiration: true
    // A filter that cannot be evaluated parks the message instead of dropping it.
    deadLetteringOnFilterEvaluationExceptions: true
    defaultMessageTimeToLive: messageTimeToLive
    enableBatchedOperations: true
  }
}]

// Replacing the `$Default` rule (a TrueFilter that matches everything) is what
// makes a subscription receive only its subjects; an extra rule would be OR-ed with it.
resource filters 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2022-10-01-preview' = [for (s, i) in subscriptionList: {
  parent: subscriptions[i]
  name: '$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: s.sqlFilter
    }
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

output name string = namespace.name
@description('The value for ServiceBusConnection__fullyQualifiedNamespace.')
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
