/**
 * The two record calls on the match stage's hot path (query, upsert), sent to Chroma's v2 REST API
 * over one keep-alive connection pool. chromadb's JS client builds a WHATWG Request, streams and a
 * clone for every call: 3.7-3.9 ms of client CPU per query here against 2.0 ms through this path
 * (`npm run bench:gallery` measures both). Collections are still created, read and deleted through
 * the client, which talks to the same host and port (it ignores any path in the URL, and so do we).
 */
import http from 'node:http';
import https from 'node:https';

export type QueryInclude = 'distances' | 'metadatas';

/** Chroma's query answer: one row per query embedding. */
export type QueryRows = {
  ids: string[][];
  distances?: (number | null)[][] | null;
  metadatas?: (Record<string, unknown> | null)[][] | null;
};

/** A non-2xx answer from Chroma, with its status and message. */
export class ChromaRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(`Chroma answered ${status}: ${message}`);
    this.name = 'ChromaRequestError';
  }
}

/**
 * Chroma 1.0's local server answers a query on a merchant's collection 500 "Error creating hnsw
 * segment reader: Nothing found on disk" for a moment after the collection's first writes (1-3
 * times per new merchant in `npm run eval:service`). Retried here after 50, 100 and 150 ms rather
 * than failing the job into a second of queue backoff.
 */
const INDEX_RETRIES = 3;
const INDEX_RETRY_MS = 50;

const isIndexNotYetOnDisk = (error: unknown) =>
  error instanceof ChromaRequestError && error.status === 500 && /hnsw segment reader: Nothing found on disk/.test(error.message);

const TENANT = 'default_tenant';
const DATABASE = 'default_database';
/** A request Chroma has not answered by then fails (the job retries); idle pooled sockets close after it too. */
const TIMEOUT_MS = 30_000;

export class ChromaRecords {
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly host: string;
  private readonly port: number | undefined;

  constructor(base: URL) {
    const secure = base.protocol === 'https:';
    this.request = secure ? https.request : http.request;
    const options = { keepAlive: true, timeout: TIMEOUT_MS };
    this.agent = secure ? new https.Agent(options) : new http.Agent(options);
    this.host = base.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = base.port ? Number(base.port) : undefined;
  }

  query(collectionId: string, embeddings: Float32Array[], nResults: number, include: QueryInclude[]): Promise<QueryRows> {
    return this.post(collectionId, 'query', {
      query_embeddings: embeddings.map((embedding) => Array.from(embedding)),
      n_results: nResults,
      include,
    }) as Promise<QueryRows>;
  }

  async upsert(collectionId: string, ids: string[], embeddings: Float32Array[], metadatas: Record<string, string>[]): Promise<void> {
    await this.post(collectionId, 'upsert', { ids, embeddings: embeddings.map((embedding) => Array.from(embedding)), metadatas });
  }

  /**
   * Both calls are idempotent: one that met a pooled socket the server had just closed is sent again,
   * and so is one refused while a new collection's index is not yet on disk (below).
   */
  private async post(collectionId: string, action: 'query' | 'upsert', body: unknown): Promise<unknown> {
    const payload = Buffer.from(JSON.stringify(body));
    const path = `/api/v2/tenants/${TENANT}/databases/${DATABASE}/collections/${encodeURIComponent(collectionId)}/${action}`;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(path, payload);
      } catch (error) {
        if (error instanceof StaleSocketError && attempt === 1) continue;
        if (!isIndexNotYetOnDisk(error) || attempt > INDEX_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, INDEX_RETRY_MS * attempt));
      }
    }
  }

  private send(path: string, payload: Buffer): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = this.request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) return reject(new ChromaRequestError(status, errorMessage(text)));
            let answer: unknown;
            try {
              answer = text ? JSON.parse(text) : {};
            } catch {
              return reject(new ChromaRequestError(status, `unreadable answer: ${text.slice(0, 200)}`));
            }
            if (answer === null || typeof answer !== 'object') return reject(new ChromaRequestError(status, `unexpected answer: ${text.slice(0, 200)}`));
            resolve(answer);
          });
        },
      );
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`Chroma did not answer within ${TIMEOUT_MS} ms`)));
      req.on('error', (error: NodeJS.ErrnoException) => reject(req.reusedSocket && error.code === 'ECONNRESET' ? new StaleSocketError() : error));
      req.end(payload);
    });
  }
}

class StaleSocketError extends Error {}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { message?: string; error?: string };
    return body.message ?? body.error ?? text.slice(0, 200);
  } catch {
    return text.slice(0, 200) || 'no message';
  }
}
