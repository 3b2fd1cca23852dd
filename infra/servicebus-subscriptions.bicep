// The subscriptions of one topic, each with the SQL filter shared.bus.topology wrote for it.

@description('The Service Bus namespace (already deployed by servicebus.bicep).')
param namespaceName string

@description('The topic these subscriptions belong to.')
param topicName string

@description('[{name, subjects, sqlFilter, maxDeliveryCount, lockDurationSeconds}] from servicebus.topology.json.')
param subscriptions array

@description('Messages not consumed within this ISO 8601 duration expire into the dead-letter queue.')
param messageTimeToLive string

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: namespaceName
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = {
  parent: namespace
  name: topicName
}

resource subscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2022-10-01-preview' = [for s in subscriptions: {
  parent: topic
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

// Replacing the `$Default` rule (a TrueFilter that matches everything) is what makes a subscription
// receive only its subjects; an extra rule would be OR-ed with it.
resource filter 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2022-10-01-preview' = [for (s, i) in subscriptions: {
  parent: subscription[i]
  name: '$Default'
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: s.sqlFilter
    }
  }
}]
