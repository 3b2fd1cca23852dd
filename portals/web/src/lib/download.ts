import { accessToken } from "./auth";
import { ApiProblem, problemFrom } from "./api";

/**
 * Starts the download of a licensed original. The API answers with a redirect to a short-lived link;
 * a fetch carries the bearer token, learns the link from where the redirect lands, stops reading, and
 * the browser then downloads the link itself (its own progress bar, the file's own name).
 */
export async function downloadLicensed(downloadUrl: string): Promise<void> {
  const token = await accessToken();
  const controller = new AbortController();
  let response: Response;
  try {
    response = await fetch(downloadUrl, {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      signal: controller.signal,
    });
  } catch {
    throw new ApiProblem(0, "The download link could not be reached. Try again in a moment.", "Offline");
  }
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => null);
    throw problemFrom(response.status, body);
  }
  controller.abort(); // only the final address was wanted
  window.location.assign(response.url);
}

/**
 * Saves a report the API makes for the signed-in person (CSV): a plain link would not carry the bearer
 * token, so the file is fetched here and handed to the browser as a download under `fileName`.
 */
export async function downloadReport(url: string, fileName: string): Promise<void> {
  const token = await accessToken();
  let response: Response;
  try {
    response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  } catch {
    throw new ApiProblem(0, "The report could not be reached. Try again in a moment.", "Offline");
  }
  if (!response.ok) {
    const body: unknown = await response.json().catch(() => null);
    throw problemFrom(response.status, body);
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
