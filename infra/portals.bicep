// The portals (portals/web/out, a Next.js static export) on Azure Static Web Apps, Standard plan. The
// marketplace's own Front Door (frontdoor.bicep, with WAF) is the public entry: it routes / here and /api/*
// to the Function App, so pages and /api share one origin as they do under devhost; hence no linked
// backend and no second, SWA-managed edge. staticwebapp.config.json admits only that Front Door. The deployment uploads the export with
// `portal-config.json` written next to it from the outputs below (authority, client id, scope), so the
// same build signs in with Entra ID instead of devhost's local provider.

param name string
param location string
param tags object

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
    allowConfigFileUpdates: true
    // Preview environments would be reachable beside Front Door; releases go through azd instead.
    stagingEnvironmentPolicy: 'Disabled'
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
