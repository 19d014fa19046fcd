/**
 * What an operator would have seen during a scenario: how long /readyz named each check unready,
 * and which supervised processes died (the supervisor restarts them).
 */
import type { SupervisedService } from '../../src/service.js';

export type Observed = {
  /** `name (signal or exit code)` of each supervised process that died. */
  deaths: string[];
  /** Milliseconds each /readyz check was seen failing; `api` when /readyz did not answer at all. */
  unreadyMs: Map<string, number>;
};

export type ServiceWatch = { stop(): Promise<Observed> };

const POLL_MS = 250;

export function watchService(api: string, processes: SupervisedService): ServiceWatch {
  const observed: Observed = { deaths: [], unreadyMs: new Map() };
  const stopListening = processes.onExit((exit) => observed.deaths.push(`${exit.name} (${exit.signal ?? `exit code ${exit.code}`})`));
  let watching = true;
  const polling = (async () => {
    let last = Date.now();
    while (watching) {
      const unready = await unreadyChecks(api);
      const now = Date.now();
      for (const check of unready) observed.unreadyMs.set(check, (observed.unreadyMs.get(check) ?? 0) + now - last);
      last = now;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  })();
  return {
    async stop() {
      watching = false;
      stopListening();
      await polling;
      return observed;
    },
  };
}

async function unreadyChecks(api: string): Promise<string[]> {
  try {
    const response = await fetch(`${api}/readyz`, { signal: AbortSignal.timeout(5000) });
    const body = (await response.json()) as { checks?: Record<string, string> };
    return Object.entries(body.checks ?? {})
      .filter(([, status]) => status !== 'ok')
      .map(([name]) => name);
  } catch {
    return ['api'];
  }
}
