// Runtime settings, read from /portal-config.json so one static build serves every environment:
// devhost answers it from its settings (its own /auth provider); on Azure the deployment writes
// the same file with Entra ID's authority, the app registration's client id and the API scope.
export type PortalConfig = {
  oidc: { authority: string; client_id: string; scope: string };
};

let pending: Promise<PortalConfig> | null = null;

export function portalConfig(): Promise<PortalConfig> {
  pending ??= fetch("/portal-config.json", { cache: "no-store" }).then(async (response) => {
    if (!response.ok) {
      pending = null;
      throw new Error(`The site's sign-in settings could not be loaded (HTTP ${response.status}). Reload the page.`);
    }
    return (await response.json()) as PortalConfig;
  });
  return pending;
}
