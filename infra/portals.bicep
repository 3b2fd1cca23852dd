// The portals (portals/web/out, a Next.js static export) on Azure Static Web Apps, Standard plan:
// its enterprise-grade edge is Azure Front Door, and the Function App is linked as the backend, so
// pages and /api share one origin as they do under devhost. The deployment uploads the export with
// `portal-config.json` written next to it from the outputs below (authority, client id, scope), so the
// same build signs in with Entra ID instead of devhost's local provider.

param name string
param location string
param tags object

@description('Resource id of the Function App serving /api.')
param functionAppId string

@description('Region of that Function App.')
param functionAppLocation string

@description('OIDC authority for the portals (Entra: https://login.microsoftonline.com/<tenant>/v2.0).')
param oidcAuthority string

@description('Client id of the portals\' single-page-application registration.')
param oidcClientId string

@description('Scopes the portals ask for, including the API\'s scope.')
param oidcScope string

resource site 'Microsoft.Web/staticSites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    enterpriseGradeCdnStatus: 'Enabled' // served from Azure Front Door's edge
    allowConfigFileUpdates: true
    stagingEnvironmentPolicy: 'Enabled'
  }
}

resource backend 'Microsoft.Web/staticSites/linkedBackends@2024-04-01' = {
  parent: site
  name: 'api'
  properties: {
    backendResourceId: functionAppId
    region: functionAppLocation
  }
}

output hostName string = site.properties.defaultHostname
output origin string = 'https://${site.properties.defaultHostname}'
output portalConfig object = {
  oidc: {
    authority: oidcAuthority
    client_id: oidcClientId
    scope: oidcScope
  }
}
