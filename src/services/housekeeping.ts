/**
 * Periodic housekeeping (the sweeper, retention) driven by timers in the worker processes, not by
 * jobs in Redis: a Redis restarted empty or flushed cannot take it away. Each task runs under a
 * MySQL named lock, so however many processes schedule it, one runs it at a time; a run that
 * fails (MySQL or Redis down) is logged and tried again at the next tick.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { withNamedLock } from '../storage/named-lock.js';

export type HousekeepingTask = { name: string; everyMs: number; run(): Promise<object> };

export type Housekeeping = { stop(): Promise<void> };

export function startHousekeeping(deps: { db: Knex; databaseName: string; logger: Logger }, tasks: HousekeepingTask[]): Housekeeping {
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<void>>();
  let stopped = false;

  const tick = (task: HousekeepingTask) => {
    if (stopped) return;
    const run = withNamedLock(deps.db, `faceperks:${deps.databaseName}:${task.name}`, 0, task.run)
      .then((outcome) => {
        if (outcome.acquired) deps.logger.info({ task: task.name, ...outcome.value }, 'housekeeping done');
      })
      .catch((error: Error) => deps.logger.warn({ task: task.name, err: error.message }, 'housekeeping failed; retried at the next tick'))
      .finally(() => running.delete(run));
    running.add(run);
  };

  for (const task of tasks) {
    // Staggered first runs: a process starting after an outage catches up without waiting a whole period.
    timers.push(setTimeout(() => tick(task), Math.min(task.everyMs, 5000 + Math.random() * 5000)));
    timers.push(setInterval(() => tick(task), task.everyMs));
  }
  return {
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      await Promise.all(running);
    },
  };
}
