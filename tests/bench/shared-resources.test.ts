/**
 * What scenarios of one benchmark run share (bench/harness.ts `SharedResources`): a resource made
 * with another's help is disposed before it (the shared --quick hub before the embedded
 * PostgreSQL it uses: the other order stopped the database under the hub), a discarded one is
 * disposed at once and made again on the next use, and a failed creation is not kept.
 */
import { describe, expect, it } from 'vitest';
import { SharedResources } from '../../bench/harness.js';

function tracked(log: string[], name: string) {
  return async () => {
    log.push(`create ${name}`);
    return { value: name, dispose: async () => void log.push(`dispose ${name}`) };
  };
}

describe('shared resources of a benchmark run', () => {
  it('dispose a resource created with another\'s help before that other', async () => {
    const log: string[] = [];
    const resources = new SharedResources();
    // The run is asked for first, and makes the cluster while it is created, after other work
    // (as the shared run's region makes its database after its PKI).
    const run = await resources.get('run', async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      const cluster = await resources.get('cluster', tracked(log, 'cluster'));
      log.push(`create run on ${cluster}`);
      return { value: 'run', dispose: async () => void log.push('dispose run') };
    });
    expect(run).toBe('run');
    await resources.disposeAll(() => undefined);
    expect(log).toEqual(['create cluster', 'create run on cluster', 'dispose run', 'dispose cluster']);
  });

  it('create a resource once, and again after a discard, which disposes it at once', async () => {
    const log: string[] = [];
    const resources = new SharedResources();
    await resources.get('run', tracked(log, 'run'));
    await resources.get('run', tracked(log, 'run'));
    await resources.discard('run');
    await resources.discard('run');
    await resources.get('run', tracked(log, 'run'));
    await resources.disposeAll(() => undefined);
    expect(log).toEqual(['create run', 'dispose run', 'create run', 'dispose run']);
  });

  it('do not keep a creation that failed', async () => {
    const resources = new SharedResources();
    await expect(resources.get('run', () => Promise.reject(new Error('no hub')))).rejects.toThrow('no hub');
    await expect(resources.get('run', async () => ({ value: 'second', dispose: async () => undefined }))).resolves.toBe('second');
    await resources.disposeAll(() => undefined);
  });
});
