// Azure Front Door (Premium, with the managed WAF rule sets) in front of everything the public reaches:
// the portals (Static Web Apps) at /, the API (Function App) at /api/*, and the public rendition
// containers at /thumbnails/* and /watermarked/*. One origin for pages and API: no CORS in Azure.

@description('Front Door profile name.')
param profileName string

param tags object = {}

@description('Host name of the Function App (func-….azurewebsites.net).')
param apiHostName string

@description('Default host name of the portals\' Static Web App.')
param portalsHostName string

@description('Blob endpoint host of the storage account (st….blob.core.windows.net).')
param blobHostName string

@description('Log Analytics workspace receiving access and WAF logs.')
param workspaceId string

resource profile 'Microsoft.Cdn/profiles@2024-02-01' = {
  name: profileName
  location: 'global'
  tags: tags
  sku: { name: 'Premium_AzureFrontDoor' }
  properties: {
    originResponseTimeoutSeconds: 120 // search by image and checkout may take a while on a cold worker
  }
}

resource endpoint 'Microsoft.Cdn/profiles/afdEndpoints@2024-02-01' = {
  parent: profile
  name: 'ep-${uniqueString(profile.id)}'
  location: 'global'
  tags: tags
  properties: { enabledState: 'Enabled' }
}

var origins = [
  { name: 'api', host: apiHostName, probePath: '/api/health', probe: true }
  { name: 'portals', host: portalsHostName, probePath: '/', probe: true }
  // Blob storage answers 400/404 to a bare probe; with one origin the probe adds nothing.
  { name: 'media', host: blobHostName, probePath: '/', probe: false }
]

resource originGroup 'Microsoft.Cdn/profiles/originGroups@2024-02-01' = [for o in origins: {
  parent: profile
  name: o.name
  properties: {
    loadBalancingSettings: { sampleSize: 4, successfulSamplesRequired: 3, additionalLatencyInMilliseconds: 50 }
    healthProbeSettings: o.probe ? {
      probePath: o.probePath
      probeRequestType: 'HEAD'
      probeProtocol: 'Https'
      probeIntervalInSeconds: 100
    } : null
    sessionAffinityState: 'Disabled'
  }
}]

resource origin 'Microsoft.Cdn/profiles/originGroups/origins@2024-02-01' = [for (o, i) in origins: {
  parent: originGroup[i]
  name: o.name
  properties: {
    hostName: o.host
    originHostHeader: o.host
    httpsPort: 443
    httpPort: 80
    priority: 1
    weight: 1000
    enforceCertificateNameCheck: true
    enabledState: 'Enabled'
  }
}]

var routes = [
  // The API is never cached here: responses are per caller (the app says no-store where it matters).
  { name: 'api', group: 0, patterns: [ '/api/*' ], cache: false }
  { name: 'portals', group: 1, patterns: [ '/*' ], cache: true }
  { name: 'media', group: 2, patterns: [ '/thumbnails/*', '/watermarked/*' ], cache: true }
]

resource route 'Microsoft.Cdn/profiles/afdEndpoints/routes@2024-02-01' = [for r in routes: {
  parent: endpoint
  name: r.name
  properties: {
    originGroup: { id: originGroup[r.group].id }
    patternsToMatch: r.patterns
    supportedProtocols: [ 'Http', 'Https' ]
    httpsRedirect: 'Enabled'
    forwardingProtocol: 'HttpsOnly'
    linkToDefaultDomain: 'Enabled'
    cacheConfiguration: r.cache ? {
      queryStringCachingBehavior: 'UseQueryString'
      compressionSettings: { isCompressionEnabled: true, contentTypesToCompress: [ 'text/html', 'text/css', 'application/javascript', 'application/json', 'image/svg+xml' ] }
    } : null
  }
  dependsOn: [ origin ]
}]

resource waf 'Microsoft.Network/FrontDoorWebApplicationFirewallPolicies@2024-02-01' = {
  name: replace('waf${profileName}', '-', '')
  location: 'global'
  tags: tags
  sku: { name: 'Premium_AzureFrontDoor' }
  properties: {
    policySettings: {
      enabledState: 'Enabled'
      mode: 'Prevention'
      requestBodyCheck: 'Enabled'
    }
    managedRules: {
      managedRuleSets: [
        { ruleSetType: 'Microsoft_DefaultRuleSet', ruleSetVersion: '2.1', ruleSetAction: 'Block' }
        { ruleSetType: 'Microsoft_BotManagerRuleSet', ruleSetVersion: '1.1' }
      ]
    }
  }
}

resource securityPolicy 'Microsoft.Cdn/profiles/securityPolicies@2024-02-01' = {
  parent: profile
  name: 'waf'
  properties: {
    parameters: {
      type: 'WebApplicationFirewall'
      wafPolicy: { id: waf.id }
      associations: [ { domains: [ { id: endpoint.id } ], patternsToMatch: [ '/*' ] } ]
    }
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: profile
  properties: {
    workspaceId: workspaceId
    logs: [ { categoryGroup: 'allLogs', enabled: true } ]
    metrics: [ { category: 'AllMetrics', enabled: true } ]
  }
}

output hostName string = endpoint.properties.hostName
@description('The X-Azure-FDID header value Front Door sends; the Function App admits only requests carrying it.')
output frontDoorId string = profile.properties.frontDoorId
