// Tenants: whoever stored a row owns it, and nobody else sees it. Without --api-keys
// there is one tenant; with them, each key line may name its tenant, and a key that names
// none is a tenant of its own.
import { createHash } from 'node:crypto';

/** The tenant of a gateway without keys, and of rows stored before tenants existed. */
export const DEFAULT_TENANT = 'default';

const TENANT_NAME = /^[A-Za-z0-9_.:@-]{1,64}$/;

/** A problem with a tenant name, or undefined when it is usable. */
export function tenantNameProblem(name: string): string | undefined {
  return TENANT_NAME.test(name) ? undefined : `"${name.slice(0, 80)}" is not a tenant name (1-64 of A-Z a-z 0-9 _ . : @ -)`;
}

/** The tenant of a key that names none: derived from the key, never the key itself. */
export function tenantOfKey(key: string): string {
  return `key-${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16)}`;
}
