// One file PUT straight to its write-only SAS URL. XMLHttpRequest, not fetch: only XHR reports upload
// progress. Storage answers errors as XML with a <Message>; that is what the person is shown.

export class UploadAborted extends Error {
  constructor() {
    super("Cancelled");
    this.name = "UploadAborted";
  }
}

export interface Transfer {
  done: Promise<void>;
  abort: () => void;
}

export function storageMessage(status: number, body: string): string {
  const message = /<Message>([\s\S]*?)<\/Message>/.exec(body)?.[1]?.split("\n")[0]?.trim();
  if (status === 403) return "The upload link expired or was refused. Retry to get a new one.";
  return message ? `Storage refused the file: ${message}` : `Storage refused the file (HTTP ${status}). Retry.`;
}

export function putToSas(
  file: Blob,
  url: string,
  headers: Record<string, string>,
  onProgress: (loaded: number) => void,
): Transfer {
  const xhr = new XMLHttpRequest();
  const done = new Promise<void>((resolve, reject) => {
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    if (file.type) xhr.setRequestHeader("Content-Type", file.type);
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(storageMessage(xhr.status, xhr.responseText)));
    xhr.onerror = () => reject(new Error("The connection to storage dropped. Check your connection and retry."));
    xhr.onabort = () => reject(new UploadAborted());
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
