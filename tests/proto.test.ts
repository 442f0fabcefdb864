/** The wire contract: `buf lint` passes and the committed generated code is what `buf generate` makes. */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { VALIDATE_PROTO_PATH, renderValidateProto } from '../scripts/validate-proto.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const buf = path.join(root, 'node_modules', '.bin', 'buf');

describe('proto/vendor/buf/validate/validate.proto', () => {
  it('is what scripts/validate-proto.ts derives from the installed @bufbuild/protovalidate', async () => {
    expect(await readFile(path.join(root, VALIDATE_PROTO_PATH), 'utf8'), 'stale: run npm run gen').toBe(renderValidateProto());
  });

  it('declares every message, enum and extension of the descriptor it comes from', async () => {
    const text = await readFile(path.join(root, VALIDATE_PROTO_PATH), 'utf8');
    for (const name of ['FieldRules', 'MessageRules', 'OneofRules', 'PredefinedRules', 'StringRules', 'RepeatedRules', 'Ignore', 'KnownRegex']) {
      expect(text).toMatch(new RegExp(`^(message|enum) ${name} \\{$`, 'm'));
    }
    expect(text).toMatch(/^ {2}optional \.buf\.validate\.FieldRules field = 1159;$/m);
    expect(text).toMatch(/^ {2}extensions 1000 to max;$/m);
  });
});

describe('proto/corridor/v1', () => {
  it('passes buf lint', async () => {
    await expect(run(buf, ['lint'], { cwd: root })).resolves.toBeDefined();
  });

  it('matches the committed generated code', async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'corridor-gen-'));
    try {
      for (const entry of ['proto', 'buf.yaml', 'buf.gen.yaml']) await cp(path.join(root, entry), path.join(scratch, entry), { recursive: true });
      await run(buf, ['generate'], { cwd: scratch, env: { ...process.env, PATH: `${path.join(root, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}` } });
      const generated = path.join(scratch, 'src', 'gen', 'corridor', 'v1');
      const committed = path.join(root, 'src', 'gen', 'corridor', 'v1');
      const files = (await readdir(generated)).sort();
      expect(files).toEqual((await readdir(committed)).sort());
      for (const file of files) {
        expect(await readFile(path.join(generated, file), 'utf8'), `${file} is stale: run npm run gen`).toBe(await readFile(path.join(committed, file), 'utf8'));
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
