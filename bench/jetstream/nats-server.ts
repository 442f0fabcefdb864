/**
 * One nats-server per benchmark run, the JetStream target's broker: Debian's `nats-server`
 * (2.9) on a free 127.0.0.1 port, JetStream with file storage in the run's temporary directory,
 * and TLS with client verification (`verify: true`), so every client presents a certificate of
 * the run's CA, as the hub's members do. The Debian package's own server on 127.0.0.1:4222 (if
 * one runs) has no TLS and is not used: the comparison is mTLS to mTLS.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../../src/infra/database.js';
import type { RunPki } from '../pki.js';

const DEFAULT_BINARY = '/usr/sbin/nats-server';
const READY_TIMEOUT_MS = 15_000;

export interface NatsServer {
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Where the binary is: `NATS_SERVER` if set, else Debian's path; undefined when there is none. */
export async function natsServerBinary(): Promise<string | undefined> {
  const binary = process.env['NATS_SERVER'] ?? DEFAULT_BINARY;
  try {
    await access(binary);
    return binary;
  } catch {
    return undefined;
  }
}

/** Starts nats-server with JetStream and mTLS under `dir` and waits until it accepts clients. */
export async function startNatsServer(dir: string, pki: RunPki, log: (message: string) => void): Promise<NatsServer> {
  const binary = await natsServerBinary();
  if (binary === undefined) throw new Error(`no nats-server at ${process.env['NATS_SERVER'] ?? DEFAULT_BINARY} (apt-get install nats-server, or set NATS_SERVER)`);
  const port = await freePort();
  const storeDir = path.join(dir, 'jetstream');
  await mkdir(storeDir, { recursive: true });
  const config = path.join(dir, 'nats-server.conf');
  // JSON is valid NATS configuration syntax, and quoting every path keeps odd characters safe.
  await writeFile(
    config,
    JSON.stringify(
      {
        listen: `127.0.0.1:${port}`,
        server_name: 'corridor-bench',
        max_payload: 1_048_576,
        // Hundreds of consumers each keep a few requests pending: the default is too small for 200 subscribers.
        max_pending: 268_435_456,
        jetstream: { store_dir: storeDir, max_memory_store: 1_073_741_824, max_file_store: 64_424_509_440 },
        tls: { cert_file: pki.server.certFile, key_file: pki.server.keyFile, ca_file: pki.caFile, verify: true, timeout: 5 },
      },
      null,
      2,
    ),
  );
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const { version } = await waitReady(child);
  const pid = child.pid;
  if (pid === undefined) throw new Error('nats-server has no pid');
  log(`jetstream: nats-server ${version} (pid ${pid}) on 127.0.0.1:${port}, mTLS, file store in ${storeDir}`);
  let stopped: Promise<void> | undefined;
  return {
    url: `tls://127.0.0.1:${port}`,
    pid,
    version,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      })),
  };
}

/** Reads the server's log (stderr) until "Server is ready"; rejects if it exits or takes too long. */
function waitReady(child: ChildProcess): Promise<{ version: string }> {
  return new Promise((resolve, reject) => {
    let output = '';
    let version = 'unknown';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nats-server was not ready within ${READY_TIMEOUT_MS} ms:\n${output.slice(-2000)}`));
    }, READY_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const match = /Version:\s+(\S+)/.exec(output);
      if (match?.[1] !== undefined) version = match[1];
      if (output.includes('Server is ready')) {
        clearTimeout(timer);
        // Keep draining the log so the server never blocks on a full pipe.
        child.stderr?.off('data', onData);
        child.stderr?.resume();
        child.off('exit', onExit);
        resolve({ version });
      }
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code}) before it was ready:\n${output.slice(-2000)}`));
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}
