// PostgreSQL for the tests: the server TEST_DATABASE_URL names, a throwaway schema per
// suite. Where no server can be reached the PostgreSQL suites are skipped, with the reason
// in the runner's summary; under CI (CI=true) that is a failure instead, since .ci/run
// provides the server.
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import pg from 'pg';

export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'];

let reachability: Promise<string | undefined> | undefined;

async function probe(url: string | undefined): Promise<string | undefined> {
  if (url === undefined) return 'TEST_DATABASE_URL is not set, so the PostgreSQL store was not tested (.ci/run sets it)';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return `PostgreSQL at TEST_DATABASE_URL cannot be reached (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Why the PostgreSQL tests cannot run here, or undefined when they can: pass it as a
 * suite's `skip` option. Under CI it throws, failing the suite's file.
 */
export async function postgresSkip(): Promise<string | undefined> {
  reachability ??= probe(TEST_DATABASE_URL);
  const reason = await reachability;
  if (reason !== undefined && process.env['CI'] === 'true') throw new Error(`${reason}: under CI this is a failure`);
  return reason;
}

/** TEST_DATABASE_URL, once postgresSkip() said it can be used. */
export function testDatabaseUrl(): string {
  if (TEST_DATABASE_URL === undefined) throw new Error('TEST_DATABASE_URL is not set');
  return TEST_DATABASE_URL;
}

export interface TestSchema {
  /** A connection string whose search_path is the new schema. */
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestSchema(baseUrl: string): Promise<TestSchema> {
  const schema = `rg_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}

/**
 * describe(), or, where `skip` gives a reason, a suite of one skipped test carrying it: the
 * runner's summary counts skipped tests, not skipped suites, and the reason must show there.
 */
export function describeUnlessSkipped(name: string, skip: string | undefined, suite: () => void): void {
  if (skip === undefined) describe(name, suite);
  else describe(name, () => it('needs what is missing here', { skip }, () => undefined));
}
