/**
 * The local API of `regions gui` (regions_cli/gui_server.py). When the page is not served by it
 * (e.g. `vite preview` or a static copy) the editor runs standalone: open and export only.
 */

export interface FileState {
  /** The workflow file on disk, or null when `regions gui` was started without one. */
  path: string | null;
  text: string;
  exists: boolean;
  /** sha256 of the text on disk; sent back on save so a file changed meanwhile is not overwritten. */
  hash: string | null;
  /** The `$schema` path, relative to the file, for the comment line of a new workflow. */
  schema_ref?: string;
}

export interface VerifyResult {
  ok: boolean;
  findings: Array<{ rule: string; message: string; severity: string; line?: number | null; path?: string }>;
}

async function request<T>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = (await response.json().catch(() => ({}))) as { error?: string };
  if (!response.ok) throw new Error(payload.error ?? `${method} ${url}: HTTP ${response.status}`);
  return payload as T;
}

/**
 * The file `regions gui` was started with, or null when no `regions gui` serves this page.
 * Throws (with the server's one-line message) when the server cannot read the file.
 */
export async function loadFile(): Promise<FileState | null> {
  let response: Response;
  try {
    response = await fetch('api/file');
  } catch {
    return null;
  }
  if (!(response.headers.get('content-type') ?? '').includes('json')) return null;
  const payload = (await response.json()) as FileState & { error?: string };
  if (!response.ok) throw new Error(payload.error ?? `HTTP ${response.status}`);
  return payload;
}

export function saveFile(text: string, baseHash: string | null): Promise<{ hash: string; path: string }> {
  return request('PUT', 'api/file', { text, base_hash: baseHash });
}

export function verifyText(text: string): Promise<VerifyResult> {
  return request('POST', 'api/verify', { text });
}

/** Convert the original framework's JSON files to workflow YAML (same rules as `regions import`). */
export function importJson(files: Record<string, string>): Promise<{ text: string }> {
  return request('POST', 'api/import', { files });
}

/** The workflow as the original's registry and plan JSON (same rules as `regions export`). */
export function exportJson(text: string): Promise<{ files: Record<string, string>; dropped: string[] }> {
  return request('POST', 'api/export', { text });
}

export function startRun(): Promise<{ run: number }> {
  return request('POST', 'api/run', {});
}

/** The last run waits at a `wait:`: inject `text` to `region` and resume it. */
export function answerWait(region: string, text: string): Promise<{ run: number }> {
  return request('POST', 'api/answer', { region, text });
}

export interface RunEvent {
  kind: string;
  t: number;
  [field: string]: unknown;
}

/** Subscribe to the live run's events (server-sent events); returns the unsubscribe function. */
export function subscribeEvents(onEvent: (event: RunEvent) => void): () => void {
  const source = new EventSource('api/events');
  source.onmessage = (message) => onEvent(JSON.parse(message.data) as RunEvent);
  return () => source.close();
}

/** Offer `text` as a file download (standalone export). */
export function download(name: string, text: string, type = 'application/yaml'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}
