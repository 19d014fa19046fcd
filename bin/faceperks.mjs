#!/usr/bin/env node
// `npx faceperks ...`: runs the TypeScript CLI (src/cli/main.ts) through tsx, resolved from this package.
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../src/cli/main.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
// Pending timers or sockets must not keep a finished command alive.
process.exit(process.exitCode);
