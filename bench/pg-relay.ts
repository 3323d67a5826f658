// npm run bench:pg-relay -- --to postgres://… [--delay-ms 1]
//
// PostgreSQL as if on another machine: a relay that hands the server's answers on
// `--delay-ms` late (1 by default: a network round trip between machines of one data
// centre is 0.1–1 ms), so that what a round trip costs shows beside the gateway's CPU.
// Prints the URL to give a gateway (`--db-url`; the path and options, such as a schema's
// search_path, are kept), and relays until it is stopped (Ctrl-C, SIGTERM).
//
//   npm run bench:pg-relay -- --to "$URL_A" &   # then, with the URL it prints:
//   npm run bench:ab -- before "--db-url <relay A>" after "--db-url <relay B>" --baseline-a DIR --case continue-100-store --connections 1
import { parseArgs } from 'node:util';
import { startRoundTripRelay } from './round-trip-relay.ts';

const { values } = parseArgs({ options: { to: { type: 'string' }, 'delay-ms': { type: 'string', default: '1' } } });
const delayMs = Number(values['delay-ms']);
if (values.to === undefined || !values.to.startsWith('postgres') || !(delayMs >= 0)) {
  console.error('usage: npm run bench:pg-relay -- --to postgres://… [--delay-ms 1]');
  process.exit(2);
}
const relay = await startRoundTripRelay(values.to, delayMs);
console.log(`relay (answers ${delayMs} ms late): ${relay.url}`);
const stop = (): void => void relay.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
