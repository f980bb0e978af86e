// shard-coordinator: the Node.js client of the shard_coordinator PostgreSQL
// extension.

export { jumpHash } from './jump-hash.js';
export { parseConnectionString } from './conninfo.js';
export type { ParsedConnectionString } from './conninfo.js';
