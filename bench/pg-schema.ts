// A PostgreSQL schema of its own for a bench tool's gateways (created empty: the gateway
// migrates it), with the connection that made it, and its removal once they are gone.
import pg from 'pg';

export interface BenchSchema {
  readonly name: string;
  /** The database URL with `search_path` set to the schema. */
  readonly url: string;
  /** The connection that created it, for the tool's own queries. */
  readonly client: pg.Client;
  drop(): Promise<void>;
}

export async function createBenchSchema(baseUrl: string, prefix: string): Promise<BenchSchema> {
  const name = `${prefix}_${Date.now()}`;
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  await client.query(`CREATE SCHEMA ${name}`);
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${name}`);
  return {
    name,
    url: url.toString(),
    client,
    async drop() {
      await client.query(`DROP SCHEMA ${name} CASCADE`);
      await client.end();
    },
  };
}
