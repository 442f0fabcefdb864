/**
 * C2SP signed-note. Vectors are ported from the Go reference, golang/mod `sumdb/note/note_test.go`
 * (PeterNeumann / EnochRoot keys and signatures), and from transparency-dev/formats
 * `log/note_test.go` (a real sum.golang.org checkpoint and its co-signers, and Go-generated
 * signer/verifier key pairs). Where Corridor deliberately differs from Go, the test says so.
 */
import { createHash, generateKeyPairSync, verify as edVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import {
  DEFAULT_NOTE_LIMITS,
  ed25519NoteSigner,
  ed25519NoteVerifier,
  encodeSignerKey,
  formatSignatureLine,
  noteKeyId,
  openNote,
  parseBase64,
  parseSignatureLine,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  signatureLineOf,
} from '../../src/core/note.js';
import type { Ed25519NoteSigner, NoteSigner } from '../../src/core/note.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// vectors: golang/mod sumdb/note/note_test.go

const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_B64 = 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
const ENOCH_B64 = 'rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=';
const PETER_SIG = `— PeterNeumann ${PETER_B64}\n`;
const ENOCH_SIG = `— EnochRoot ${ENOCH_B64}\n`;

// vectors: transparency-dev/formats log/note_test.go (Go-generated pairs, and a real sum.golang.org note)
const GO_KEY_PAIRS = [
  ['PRIVATE+KEY+Log+2271c621+AdEIq9FLRQni54Wg68T96VJO+iayOaulswav2DUMKgvQ', 'Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs'],
  ['PRIVATE+KEY+Known+451c786d+AQPRoE2+Z+Ed1HaHBA9F/FfracvcZ2rDU39kCecMEoci', 'Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH'],
  ['PRIVATE+KEY+KnownAgain+4893b26c+ARhZda/l25zjGZswYLDZsLNRzNpmv5wYTN9IoTr1OJ2+', 'KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj'],
  ['PRIVATE+KEY+Unknown+fdbb2e08+Aav2knTC6orbhXX8pMWuNiWgO+Wwk2DB+h1eU2Q1W1nU', 'Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots'],
] as const;
const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';
const SUMDB_NOTE =
  'go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n' +
  '— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n';
const SUMDB_COSIGNERS = [
  ['monkeys+db4d9f7e+AULaJMvTtDLHPUcUrjdDad9vDlh/PTfC2VV60JUtCfWT', '— monkeys 202ffh9ve46Mqbhuyb4wnC2Pwdan5EsXQym/tF1ggXJqhjGosU4T5intH4iKMRgDLxrnXuIjRaU2NbvAnaepM6Y+8ww=\n'],
  ['bananas+cf639f13+AaPjhFnPCQnid/Ql32KWhmh+uk72FVRfK+2DLmO3BI3M', '— bananas z2OfE+2bbsBZ7NLgfuslc0v7NFW2QyexJ7fhePpoL2N/P7N/COd5S+JNHbQEAlYzz2C5sg0E+x/MggS1mDR6t3/9rQw=\n'],
  ['witness+f13a86db+AdYV1Ztajd9BvyjP2HgpwrqYL6TjOwIjGMOq8Bu42xbN', '— witness 8TqG25yWGFLdT7WPf/WoyeG3LwqtkXP+8S3yykOVm6EMh4hPgCke6eSVPU4BdtXNMPJBXKF+UpDbGgCdcpR8SVSoqAU=\n'],
] as const;

// vector: C2SP signed-note.md (the key is not published, so it can only be parsed)
const SPEC_NOTE =
  'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n\n' +
  '— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';

// ---------------------------------------------------------------------------------------------
// helpers

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const peter = parseVerifierKey(PETER_VKEY);
const enoch = parseVerifierKey(ENOCH_VKEY);

function expectCode(fn: () => unknown, code: ErrorCode): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  return error as CorridorError;
}

/** Go slices strings by byte, and the em dash is three bytes: splice at a byte offset, as Go does. */
function insertAtByte(s: string, at: number, insert: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8');
  return new Uint8Array(Buffer.concat([bytes.subarray(0, at), Buffer.from(insert, 'utf8'), bytes.subarray(at)]));
}

/** Flips one bit of the decoded signature bytes of a line (after the key ID) and re-encodes it. */
function flipSignatureBit(line: string, byte: number, bit: number): string {
  const sig = parseSignatureLine(line);
  const flipped = new Uint8Array(sig.signature);
  flipped[byte] = (flipped[byte] ?? 0) ^ (1 << bit);
  return formatSignatureLine(sig.name, sig.keyId, flipped);
}

function freshSigner(name: string): Ed25519NoteSigner {
  return ed25519NoteSigner(name, generateKeyPairSync('ed25519').privateKey);
}

// ---------------------------------------------------------------------------------------------

describe('verifier keys (note_test.go TestNewVerifier)', () => {
  it('parses the PeterNeumann vkey and re-encodes it byte for byte', () => {
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(peter.vkey).toBe(PETER_VKEY);
    expect(peter.publicKey).toHaveLength(32);
    expect(enoch.keyId).toBe(0xaf0cfe78);
  });

  it('computes the key ID as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]', () => {
    const expected = createHash('sha256').update('PeterNeumann\n\x01').update(peter.publicKey).digest().readUInt32BE(0);
    expect(noteKeyId('PeterNeumann', 0x01, peter.publicKey)).toBe(expected);
    expect(expected).toBe(0xc74f20a3);
  });

  it('refuses every proper substring of the vkey', () => {
    const b = PETER_VKEY;
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(() => parseVerifierKey(b.slice(i, j)), b.slice(i, j)).toThrow(CorridorError);
      }
    }
  });

  it('refuses the vkey with any one character incremented', () => {
    for (let i = 0; i < PETER_VKEY.length; i++) {
      const mangled = PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1);
      expectCode(() => parseVerifierKey(mangled), 'CONFIG_INVALID');
    }
  });

  it('refuses a wrong-length key and an unknown algorithm even with adjusted key IDs', () => {
    expectCode(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='), 'CONFIG_INVALID');
    expectCode(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'), 'CONFIG_INVALID');
  });

  it('accepts upper-case hex in the key ID, as Go does', () => {
    expect(parseVerifierKey('PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').keyId).toBe(0xc74f20a3);
  });
});

describe('signer keys (note_test.go TestNewSigner)', () => {
  it('parses the PeterNeumann skey, whose public half is the PeterNeumann vkey', () => {
    const signer = parseSignerKey(PETER_SKEY);
    expect(signer.name).toBe('PeterNeumann');
    expect(signer.keyId).toBe(0xc74f20a3);
    expect(signer.verifier.vkey).toBe(PETER_VKEY);
  });

  it('refuses every proper substring of the skey and any one character incremented', () => {
    const b = PETER_SKEY;
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expectCode(() => parseSignerKey(b.slice(i, j)), 'CONFIG_INVALID');
      }
    }
    for (let i = 0; i < b.length; i++) {
      const mangled = b.slice(0, i) + String.fromCharCode(b.charCodeAt(i) + 1) + b.slice(i + 1);
      expectCode(() => parseSignerKey(mangled), 'CONFIG_INVALID');
    }
  });

  it('derives the published vkey from each Go-generated skey (transparency-dev/formats log/note_test.go)', () => {
    for (const [skey, vkey] of GO_KEY_PAIRS) expect(parseSignerKey(skey).verifier.vkey).toBe(vkey);
  });

  it('encodes a node:crypto key as an skey that parses back to the same key (TestGenerateKey, TestFromEd25519)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const skey = encodeSignerKey('EnochRoot', privateKey);
    expect(skey).toMatch(/^PRIVATE\+KEY\+EnochRoot\+[0-9a-f]{8}\+A[Q-Za-f]/);
    const signer = parseSignerKey(skey);
    const verifier = parseVerifierKey(ed25519NoteVerifier('EnochRoot', publicKey).vkey);
    expect(signer.keyId).toBe(verifier.keyId);
    expect(signer.verifier.vkey).toBe(verifier.vkey);

    const msg = enc('hi');
    const sig = signer.sign(msg);
    expect(verifier.verify(msg, sig)).toBe(true);
    expect(edVerify(null, msg, publicKey, sig)).toBe(true);
    const badSig = new Uint8Array(sig);
    badSig[0] = ((badSig[0] ?? 0) + 1) & 0xff;
    expect(verifier.verify(msg, badSig)).toBe(false);
    expect(verifier.verify(enc('ii'), sig)).toBe(false);
    expect(verifier.verify(msg, sig.subarray(1))).toBe(false);
  });

  it('refuses keys that are not Ed25519, a public key for signing, and a wrong-size raw key', () => {
    const x25519 = generateKeyPairSync('x25519');
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ed = generateKeyPairSync('ed25519');
    expectCode(() => ed25519NoteSigner('a', x25519.privateKey), 'CONFIG_INVALID');
    expectCode(() => ed25519NoteVerifier('a', p256.publicKey), 'CONFIG_INVALID');
    expectCode(() => ed25519NoteSigner('a', ed.publicKey), 'CONFIG_INVALID');
    expectCode(() => ed25519NoteVerifier('a', new Uint8Array(31)), 'CONFIG_INVALID');
    for (const name of ['', 'a b', 'a+b', 'a\u00a0b', 'a\u2028b', 'a\u0001b']) expectCode(() => ed25519NoteSigner(name, ed.privateKey), 'CONFIG_INVALID');
  });
});

describe('signNote (note_test.go TestSign)', () => {
  const signer = parseSignerKey(PETER_SKEY);

  it('produces the Go signature line byte for byte', () => {
    expect(signNote(TEXT, [signer])).toBe(`${TEXT}\n${PETER_SIG}`);
  });

  it('refuses texts and signer sets that would not make a note that opens', () => {
    expectCode(() => signNote('abc', [signer]), 'REQUEST_INVALID');
    expectCode(() => signNote(TEXT, []), 'REQUEST_INVALID');
    expectCode(() => signNote(TEXT, [signer, signer]), 'REQUEST_INVALID');
    expectCode(() => signNote(`a\tb\n`, [signer]), 'REQUEST_INVALID');
    expectCode(() => signNote(`a\r\n`, [signer]), 'REQUEST_INVALID');
    expectCode(() => signNote(`lone \ud800 surrogate\n`, [signer]), 'REQUEST_INVALID');
    const badName: NoteSigner = { name: 'bad name', keyId: signer.keyId, sign: (t) => signer.sign(t) };
    expectCode(() => signNote(TEXT, [badName]), 'REQUEST_INVALID');
  });

  it('signs texts that contain blank lines; the last blank line separates the signatures', () => {
    const s = freshSigner('quasimodo.example/salvatore');
    const text = 'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n';
    const opened = openNote(enc(signNote(text, [s])), [s.verifier]);
    expect(opened.text).toBe(text);
    const endsBlank = 'Note\n\n';
    expect(openNote(enc(signNote(endsBlank, [s])), [s.verifier]).text).toBe(endsBlank);
  });

  it('keeps a leading byte-order mark in the signed and opened text', () => {
    const s = freshSigner('bom');
    const text = '\ufeffhello\n';
    expect(openNote(enc(signNote(text, [s])), [s.verifier]).text).toBe(text);
  });
});

describe('openNote (note_test.go TestOpen)', () => {
  const note = `${TEXT}\n${PETER_SIG}${ENOCH_SIG}`;

  it('verifies the known signature and returns the unknown one unverified', () => {
    const n = openNote(enc(note), [peter]);
    expect(n.text).toBe(TEXT);
    expect(n.textBytes).toEqual(enc(TEXT));
    expect(n.verified.map((s) => [s.name, s.keyId, s.base64])).toEqual([['PeterNeumann', 0xc74f20a3, PETER_B64]]);
    expect(n.unverified.map((s) => [s.name, s.keyId, s.base64])).toEqual([['EnochRoot', 0xaf0cfe78, ENOCH_B64]]);
  });

  it('verifies both when both keys are known', () => {
    const n = openNote(enc(note), [peter, enoch]);
    expect(n.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(n.unverified).toEqual([]);
  });

  it('refuses a note with no signature by a known key', () => {
    expectCode(() => openNote(enc(note), []), 'JWS_UNKNOWN_KEY');
  });

  it('refuses a duplicated verifier only when a signature uses it (TestVerifierList)', () => {
    expectCode(() => openNote(enc(`${TEXT}\n${ENOCH_SIG}`), [enoch, peter, enoch]), 'CONFIG_INVALID');
    expect(openNote(enc(`${TEXT}\n${PETER_SIG}`), [enoch, peter, enoch]).verified).toHaveLength(1);
  });

  it('refuses more than 100 signatures before verifying any', () => {
    expectCode(() => openNote(enc(`${TEXT}\n${PETER_SIG.repeat(101)}`), [peter]), 'REQUEST_TOO_LARGE');
    expectCode(() => openNote(enc(`${TEXT}\n${PETER_SIG.repeat(101)}`), []), 'REQUEST_TOO_LARGE');
  });

  it('refuses an invalid signature by a known key (ABCD inserted at byte 60)', () => {
    expectCode(() => openNote(insertAtByte(`${TEXT}\n${PETER_SIG}`, TEXT.length + 1 + 60, 'ABCD'), [peter]), 'JWS_BAD_SIGNATURE');
  });

  it('refuses repeated signatures, which Go silently drops', () => {
    // Go accepts this note with one verified and two unverified signatures. Corridor refuses a
    // note carrying two signatures under one (name, key ID): it has no single meaning.
    const enochABCD = new TextDecoder().decode(insertAtByte(ENOCH_SIG, 60, 'ABCD'));
    const dup = `${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}${enochABCD}`;
    expectCode(() => openNote(enc(dup), [peter]), 'JWS_MALFORMED');
    expectCode(() => openNote(enc(`${TEXT}\n${PETER_SIG}${PETER_SIG}`), [peter]), 'JWS_MALFORMED');
    expectCode(() => openNote(enc(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}${enochABCD}`), [peter]), 'JWS_MALFORMED');
  });

  it('refuses the malformed messages of the Go test', () => {
    const bad: Uint8Array[] = [
      enc(TEXT),
      enc(`${TEXT}\n`),
      enc(`${TEXT}\n${PETER_SIG.slice(0, -1)}`),
      enc(`\x01${TEXT}\n${PETER_SIG}`),
      new Uint8Array(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${TEXT}\n${PETER_SIG}`)])),
      enc(`${TEXT}\n— Bad Name ${PETER_B64}`),
      enc(`${TEXT}\n${PETER_SIG}Unexpected line.\n`),
    ];
    for (const msg of bad) expectCode(() => openNote(msg, [peter]), 'JWS_MALFORMED');
  });

  it('treats a signature under another name or key ID as unknown (misnamed, wrong hash)', () => {
    const misnamed = PETER_SIG.replace('PeterNeumann', 'CarmenSandiego');
    const n = openNote(enc(`${TEXT}\n${PETER_SIG}${misnamed}`), [peter]);
    expect(n.unverified.map((s) => s.name)).toEqual(['CarmenSandiego']);
    expectCode(() => openNote(enc(`${TEXT}\n${misnamed}`), [peter]), 'JWS_UNKNOWN_KEY');
    const wrongHash = PETER_SIG.replace('x08g', 'xxxx');
    expectCode(() => openNote(enc(`${TEXT}\n${wrongHash}`), [peter]), 'JWS_UNKNOWN_KEY');
  });
});

describe('openNote: corrupted variants', () => {
  const good = `${TEXT}\n${PETER_SIG}`;

  it('opens the original', () => {
    expect(openNote(enc(good), [peter]).verified).toHaveLength(1);
  });

  it('refuses a flipped bit anywhere in the signature', () => {
    for (const [byte, bit] of [[0, 0], [31, 7], [32, 3], [63, 7]] as const) {
      expectCode(() => openNote(enc(`${TEXT}\n${flipSignatureBit(PETER_SIG, byte, bit)}`), [peter]), 'JWS_BAD_SIGNATURE');
    }
  });

  it('refuses altered text', () => {
    expectCode(() => openNote(enc(good.replace('cryptography', 'Cryptography')), [peter]), 'JWS_BAD_SIGNATURE');
    expectCode(() => openNote(enc(`x${good}`), [peter]), 'JWS_BAD_SIGNATURE');
  });

  it('refuses an extra blank line: it becomes part of the signed text', () => {
    expectCode(() => openNote(enc(`${TEXT}\n\n${PETER_SIG}`), [peter]), 'JWS_BAD_SIGNATURE');
  });

  it('refuses a note without its final newline, and one without the blank line', () => {
    expectCode(() => openNote(enc(good.slice(0, -1)), [peter]), 'JWS_MALFORMED');
    // The text always ends in a newline: drop it and the blank line is gone too.
    expectCode(() => openNote(enc(`${TEXT.slice(0, -1)}\n${PETER_SIG}`), [peter]), 'JWS_MALFORMED');
    expectCode(() => openNote(enc(`${TEXT}${PETER_SIG}`), [peter]), 'JWS_MALFORMED');
  });

  it('refuses control characters, CRLF, a missing em dash, extra spaces and non-canonical base64', () => {
    const bad = [
      good.replace('problem,', 'problem,\t'),
      good.replace(/\n/g, '\r\n'),
      `${TEXT}\n- PeterNeumann ${PETER_B64}\n`,
      `${TEXT}\n—PeterNeumann ${PETER_B64}\n`,
      `${TEXT}\n— PeterNeumann  ${PETER_B64}\n`,
      `${TEXT}\n— PeterNeumann ${PETER_B64.replace('AM=', 'AN=')}\n`,
      `${TEXT}\n— PeterNeumann ${PETER_B64.slice(0, -1)}\n`,
      `${TEXT}\n— Peter+Neumann ${PETER_B64}\n`,
      `${TEXT}\n— PeterNeumann AAAA\n`,
      `${TEXT}\n\n`,
    ];
    for (const msg of bad) expectCode(() => openNote(enc(msg), [peter]), 'JWS_MALFORMED');
  });

  it('ignores an unknown signature but keeps it, so the note can be passed on byte for byte', () => {
    const stranger = freshSigner('stranger.example/w1');
    const signed = signNote(TEXT, [stranger]);
    const line = signed.slice(TEXT.length + 1);
    const note = `${good}${line}`;
    const n = openNote(enc(note), [peter]);
    expect(n.unverified.map((s) => s.name)).toEqual(['stranger.example/w1']);
    const rebuilt = `${n.text}\n${[...n.verified, ...n.unverified].map(signatureLineOf).join('')}`;
    expect(rebuilt).toBe(note);
  });

  it('ignores a signature that shares the name but not the key ID of a known key', () => {
    const impostor = freshSigner('PeterNeumann');
    const n = openNote(enc(`${good}${signNote(TEXT, [impostor]).slice(TEXT.length + 1)}`), [peter]);
    expect(n.verified).toHaveLength(1);
    expect(n.unverified).toHaveLength(1);
  });
});

describe('openNote: limits', () => {
  it('accepts 16 signatures by 16 keys (the spec minimum)', () => {
    const signers = Array.from({ length: 16 }, (_, i) => freshSigner(`witness${i}.example`));
    const n = openNote(enc(signNote(TEXT, signers)), signers.map((s) => s.verifier));
    expect(n.verified).toHaveLength(16);
  });

  it('refuses a note over the size limit before parsing it', () => {
    const note = enc(`${TEXT}\n${PETER_SIG}`);
    expectCode(() => openNote(note, [peter], { maxBytes: note.byteLength - 1, maxSignatures: 100 }), 'REQUEST_TOO_LARGE');
    expect(openNote(note, [peter], { maxBytes: note.byteLength, maxSignatures: 1 }).verified).toHaveLength(1);
    expectCode(() => openNote(new Uint8Array(DEFAULT_NOTE_LIMITS.maxBytes + 1), [peter]), 'REQUEST_TOO_LARGE');
  });
});

describe('published notes', () => {
  it('opens the sum.golang.org checkpoint and its three co-signatures (transparency-dev/formats)', () => {
    const log = parseVerifierKey(SUMDB_VKEY);
    expect(openNote(enc(SUMDB_NOTE), [log]).text).toBe('go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n');
    const cosigned = SUMDB_NOTE + SUMDB_COSIGNERS.map(([, line]) => line).join('');
    const n = openNote(enc(cosigned), [log, ...SUMDB_COSIGNERS.map(([vkey]) => parseVerifierKey(vkey))]);
    expect(n.verified.map((s) => s.name)).toEqual(['sum.golang.org', 'monkeys', 'bananas', 'witness']);
    // A co-signature copied under another name is a different, unknown key.
    const renamed = SUMDB_NOTE + (SUMDB_COSIGNERS[2]?.[1] ?? '').replace('witness', 'random1');
    expect(openNote(enc(renamed), [log]).unverified.map((s) => s.name)).toEqual(['random1']);
  });

  it('parses the signed-note.md example, whose key is unpublished, as a note with no known signer', () => {
    expectCode(() => openNote(enc(SPEC_NOTE), [peter]), 'JWS_UNKNOWN_KEY');
    expect(parseSignatureLine(SPEC_NOTE.slice(SPEC_NOTE.lastIndexOf('—'))).name).toBe('quasimodo.example/salvatore');
  });
});

describe('parseBase64', () => {
  it('accepts only canonical padded standard base64', () => {
    expect(parseBase64('YmFuYW5hcw==')).toEqual(enc('bananas'));
    expect(parseBase64('')).toEqual(new Uint8Array(0));
    for (const bad of ['YmFuYW5hcw', 'YmFuYW5hcx==', 'YmFu YW5hcw==', 'YmFuYW5hcw-_', 'YmFuYW5hcw=', 'Ym\nFu']) {
      expect(parseBase64(bad), bad).toBeUndefined();
    }
  });
});
