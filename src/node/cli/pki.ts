/** `corridor pki init`: the dev PKI and region file under CORRIDOR_HOME. */
import { mkdir, readFile } from 'node:fs/promises';
import { parseRegion } from '../../core/region.js';
import type { Region } from '../../core/region.js';
import { parseStrictJson } from '../../core/strict-json.js';
import { pathExists, regionFile } from '../../infra/home.js';
import { DEMO_REGION } from '../demo/region.js';
import { initDevPki, readRegionFile, writeRegionFile } from '../pki/dev-pki.js';

export interface PkiInitOptions {
  home: string;
  region?: string;
  hubHost?: string[];
  validityDays?: string;
}

export interface PkiInitResult {
  readonly region: Region;
  readonly created: number;
  readonly reused: number;
}

/**
 * Creates what is missing of the dev PKI. The region comes from `--region FILE`, else the
 * region file already in the state directory, else the demo region.
 */
export async function pkiInit(options: PkiInitOptions): Promise<PkiInitResult> {
  // The embedded PostgreSQL runs as the `postgres` user when started by root: it must traverse home.
  await mkdir(options.home, { recursive: true, mode: 0o755 });
  let region: Region;
  if (options.region !== undefined) {
    region = parseRegion(parseStrictJson(await readFile(options.region, 'utf8'), `the region file ${options.region}`));
  } else if (await pathExists(regionFile(options.home))) {
    region = await readRegionFile(options.home);
  } else {
    region = parseRegion(DEMO_REGION);
  }
  const validityDays = options.validityDays === undefined ? undefined : Number(options.validityDays);
  const result = await initDevPki(options.home, region, {
    now: new Date(),
    ...(options.hubHost === undefined ? {} : { hubHosts: options.hubHost }),
    ...(validityDays === undefined ? {} : { validityDays }),
  });
  await writeRegionFile(options.home, result.region);
  return { region: result.region, created: result.created.length, reused: result.reused.length };
}
